//! Upcasting on every read path, in this process and in a `Reader` process:
//! a change, a rename, a split, a drop and a failing step, checked against
//! what a plain function of the stored events says each read must hand out.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use seglog::{
    Durability, Error, EventData, EventRef, ExpectedVersion, Filter, Log, Options, Position,
    Reader, RecordedEvent, Subscription, Upcasted, Upcasters,
};

const CHILD_ENV: &str = "SEGLOG_UPCAST_CHILD_DIR";

/// Held for writing while a test spawns a process, for reading while one
/// closes and reopens a log: a process forked by another test thread holds
/// a copy of every open lock file until it execs (`Command::spawn`
/// returns after the exec), and a reopen in that window would find the
/// log still locked.
static SPAWNING: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// v1 `OrderPlaced` "amount" -> v2 "amount;EUR" -> v3 renamed `OrderCreated`;
/// v1 `AddressChanged` "street|city" -> v2 `StreetChanged` + `CityChanged`;
/// v1 `Debug` dropped; v1 `Fragile` fails on "bad".
fn upcasters() -> Upcasters {
    Upcasters::builder()
        .step("OrderPlaced", 1, &["OrderPlaced"], |e| {
            let mut p = e.payload().to_vec();
            p.extend_from_slice(b";EUR");
            Ok(vec![
                Upcasted::new("OrderPlaced", p).with_metadata(e.metadata().to_vec()),
            ])
        })
        .step("OrderPlaced", 2, &["OrderCreated"], |e| {
            Ok(vec![
                Upcasted::new("OrderCreated", e.payload().to_vec())
                    .with_metadata(e.metadata().to_vec()),
            ])
        })
        .step(
            "AddressChanged",
            1,
            &["StreetChanged", "CityChanged"],
            |e| {
                let text = std::str::from_utf8(e.payload()).map_err(|e| e.to_string())?;
                let (street, city) = text.split_once('|').ok_or("no '|'")?;
                Ok(vec![
                    Upcasted::new("StreetChanged", street.as_bytes().to_vec()),
                    Upcasted::new("CityChanged", city.as_bytes().to_vec()),
                ])
            },
        )
        .step("Debug", 1, &[], |_| Ok(Vec::new()))
        .step("Fragile", 1, &["Fragile"], |e| {
            if e.payload() == b"bad" {
                Err("cannot read a bad payload".to_string())
            } else {
                Ok(vec![Upcasted::from_input(e)])
            }
        })
        .build()
        .expect("a whole chain")
}

/// What a read hands out of one event: type, schema version handed out,
/// stored schema version, payload, output index and count.
type Out = (String, u16, u16, Vec<u8>, (u16, u16));

/// The outputs of one stored event (type, schema version, payload), as the
/// chain above defines them.
fn expected_outputs(t: &str, v: u16, payload: &[u8]) -> Vec<(String, u16, Vec<u8>)> {
    let p = payload.to_vec();
    match (t, v) {
        ("OrderPlaced", 1) => vec![("OrderCreated".into(), 3, [&p[..], b";EUR"].concat())],
        ("OrderPlaced", 2) => vec![("OrderCreated".into(), 3, p)],
        ("AddressChanged", 1) => {
            let text = String::from_utf8(p).expect("utf-8");
            let (street, city) = text.split_once('|').expect("|");
            vec![
                ("StreetChanged".into(), 2, street.as_bytes().to_vec()),
                ("CityChanged".into(), 2, city.as_bytes().to_vec()),
            ]
        }
        ("Debug", 1) => vec![],
        ("Fragile", 1) => vec![("Fragile".into(), 2, p)],
        _ => vec![(t.to_string(), v, p)],
    }
}

/// The stored events: (stream, type, schema version, payload).
const STORED: &[(&str, &str, u16, &[u8])] = &[
    ("order-1", "OrderPlaced", 1, b"10"),
    ("order-1", "Debug", 1, b"trace"),
    ("customer-1", "AddressChanged", 1, b"Main St 1|Springfield"),
    ("order-2", "OrderPlaced", 2, b"20;USD"),
    ("order-1", "OrderCreated", 3, b"30;EUR"),
    ("customer-1", "Renamed", 1, b"Bob"),
    ("order-2", "Fragile", 1, b"good"),
    ("customer-1", "AddressChanged", 1, b"Elm St 2|Shelbyville"),
];

fn write_log(dir: &Path) -> Log {
    let log = Options::new()
        .durability(Durability::None)
        .upcasters(upcasters())
        .open(dir)
        .expect("open");
    for (stream, t, v, payload) in STORED {
        let event = EventData::new(*t, payload.to_vec())
            .with_schema_version(*v)
            .with_metadata(b"meta".to_vec());
        log.append(stream, ExpectedVersion::Any, &[event])
            .expect("append");
    }
    log
}

/// What every forward read of `stream` (`None`: the whole log) must hand
/// out, with each output's index and count.
fn expected(stream: Option<&str>) -> Vec<Out> {
    let mut out = Vec::new();
    for (s, t, v, payload) in STORED {
        if stream.is_some_and(|want| want != *s) {
            continue;
        }
        let outputs = expected_outputs(t, *v, payload);
        let count = outputs.len() as u16;
        for (i, (t, sv, p)) in outputs.into_iter().enumerate() {
            out.push((t, sv, *v, p, (i as u16, count)));
        }
    }
    out
}

fn owned(e: &RecordedEvent) -> Out {
    (
        e.event_type().to_string(),
        e.schema_version(),
        e.stored_schema_version(),
        e.payload().to_vec(),
        e.output(),
    )
}

fn borrowed(e: &EventRef<'_>) -> Out {
    (
        e.event_type().to_string(),
        e.schema_version(),
        e.stored_schema_version(),
        e.payload().to_vec(),
        e.output(),
    )
}

fn drain(mut sub: Subscription) -> Vec<Out> {
    let mut got = Vec::new();
    while let Some(e) = sub.next_timeout(Duration::ZERO).expect("subscription") {
        got.push(owned(&e));
    }
    got
}

fn streams() -> Vec<&'static str> {
    let mut s: Vec<&str> = STORED.iter().map(|e| e.0).collect();
    s.sort_unstable();
    s.dedup();
    s
}

/// Every read path of `log` against the expectation.
fn check_log(log: &Log) {
    let all: Vec<Out> = log
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| owned(&e.expect("event")))
        .collect();
    assert_eq!(all, expected(None), "read_all");
    let mut replayed = Vec::new();
    log.replay(Position::START, |e| replayed.push(borrowed(&e)))
        .expect("replay");
    assert_eq!(replayed, expected(None), "replay");
    assert_eq!(
        drain(log.subscribe_all(Position::START).expect("subscribe")),
        expected(None),
        "subscribe_all"
    );
    for stream in streams() {
        let want = expected(Some(stream));
        let forward: Vec<Out> = log
            .read_stream(stream, 0)
            .expect("read_stream")
            .map(|e| owned(&e.expect("event")))
            .collect();
        assert_eq!(forward, want, "read_stream {stream}");
        let mut backward: Vec<Out> = log
            .read_stream_backward(stream, u64::MAX)
            .expect("backward")
            .map(|e| owned(&e.expect("event")))
            .collect();
        backward.reverse();
        assert_eq!(backward, want, "read_stream_backward {stream}, reversed");
        let mut replayed = Vec::new();
        log.replay_stream(stream, 0, |e| replayed.push(borrowed(&e)))
            .expect("replay_stream");
        assert_eq!(replayed, want, "replay_stream {stream}");
        assert_eq!(
            drain(log.subscribe_stream(stream, 0).expect("subscribe")),
            want,
            "subscribe_stream {stream}"
        );
    }
}

#[test]
fn every_read_path_of_the_writer_upcasts_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(dir.path());
    check_log(&log);
    let _no_spawn = SPAWNING.read().unwrap_or_else(|p| p.into_inner());
    log.close().expect("close");
    // After a reopen, from the files.
    let log = Options::new()
        .upcasters(upcasters())
        .open(dir.path())
        .expect("reopen");
    check_log(&log);
    // Without upcasters the stored events come back as stored.
    log.close().expect("close");
    let plain = Log::open(dir.path()).expect("plain");
    let stored: Vec<(String, u16, Vec<u8>)> = plain
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| {
            let e = e.expect("event");
            assert_eq!(e.schema_version(), e.stored_schema_version());
            assert_eq!(e.output(), (0, 1));
            (
                e.event_type().to_string(),
                e.schema_version(),
                e.payload().to_vec(),
            )
        })
        .collect();
    let want: Vec<(String, u16, Vec<u8>)> = STORED
        .iter()
        .map(|(_, t, v, p)| (t.to_string(), *v, p.to_vec()))
        .collect();
    assert_eq!(stored, want);
}

#[test]
fn a_reader_in_this_process_upcasts_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(dir.path());
    let options = Options::new().upcasters(upcasters());
    let reader = Reader::open_with(dir.path(), &options).expect("reader");
    let all: Vec<Out> = reader
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| owned(&e.expect("event")))
        .collect();
    assert_eq!(all, expected(None));
    let mut replayed = Vec::new();
    reader
        .replay(Position::START, |e| replayed.push(borrowed(&e)))
        .expect("replay");
    assert_eq!(replayed, expected(None));
    for stream in streams() {
        let got: Vec<Out> = reader
            .read_stream(stream, 0)
            .expect("read_stream")
            .map(|e| owned(&e.expect("event")))
            .collect();
        assert_eq!(got, expected(Some(stream)), "{stream}");
        assert_eq!(
            drain(reader.subscribe_stream(stream, 0).expect("subscribe")),
            expected(Some(stream))
        );
    }
    log.close().expect("close");
}

#[test]
fn a_reader_process_upcasts_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path()).close().expect("close");
    let spawning = SPAWNING.write().unwrap_or_else(|p| p.into_inner());
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["child_reader", "--ignored", "--exact", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    drop(spawning);
    let out = child.wait_with_output().expect("child");
    assert!(out.status.success(), "the reader process failed");
    let seen: Vec<String> = BufReader::new(&out.stdout[..])
        .lines()
        .map(|l| l.expect("line"))
        .filter_map(|l| l.split_once("EVENT ").map(|(_, e)| e.to_string()))
        .collect();
    let want: Vec<String> = expected(None).iter().map(|o| format!("{o:?}")).collect();
    assert_eq!(seen, want);
}

#[test]
#[ignore = "run by a_reader_process_upcasts_the_same"]
fn child_reader() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let options = Options::new().upcasters(upcasters());
    let reader = Reader::open_with(Path::new(&dir), &options).expect("reader");
    for e in drain(reader.subscribe_all(Position::START).expect("subscribe")) {
        println!("EVENT {e:?}");
    }
}

#[test]
fn a_filter_on_types_sees_the_upcast_types() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(dir.path());
    let sub = log
        .subscribe_all(Position::START)
        .expect("subscribe")
        .filter(Filter::all().event_types(["OrderCreated", "CityChanged"]));
    let got = drain(sub);
    let want: Vec<Out> = expected(None)
        .into_iter()
        .filter(|o| o.0 == "OrderCreated" || o.0 == "CityChanged")
        .collect();
    // Two stored as `OrderPlaced`, one stored as `OrderCreated`, and the
    // second half of each split `AddressChanged`.
    assert_eq!(got.len(), 5);
    assert_eq!(got, want);
    log.close().expect("close");
}

#[test]
fn the_outputs_of_a_split_share_a_position_and_resume_without_a_skip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(dir.path());
    let events: Vec<RecordedEvent> = log
        .read_stream("customer-1", 0)
        .expect("read")
        .map(|e| e.expect("event"))
        .collect();
    let (street, city) = (&events[0], &events[1]);
    assert_eq!(
        (street.event_type(), city.event_type()),
        ("StreetChanged", "CityChanged")
    );
    assert_eq!(street.position(), city.position());
    assert_eq!((street.version(), city.version()), (0, 0));
    assert!(!street.is_last_output() && city.is_last_output());
    // Resuming after the first output repeats the stored event's outputs.
    assert_eq!(street.next_position(), street.position());
    let again: Vec<String> = log
        .read_all(street.next_position())
        .expect("read")
        .take(2)
        .map(|e| e.expect("event").event_type().to_string())
        .collect();
    assert_eq!(again, ["StreetChanged", "CityChanged"]);
    // After the last, the read goes on with the next stored event.
    let next = log
        .read_all(city.next_position())
        .expect("read")
        .next()
        .expect("one")
        .expect("event");
    assert_eq!(next.event_type(), "OrderCreated");
    log.close().expect("close");
}

#[test]
fn a_consumer_that_stops_inside_a_split_gets_its_outputs_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(dir.path());
    {
        let mut consumer = log.consumer("projector").expect("consumer");
        let mut sub = consumer.subscribe().expect("subscribe");
        // OrderCreated, then StreetChanged: the first half of a split.
        for _ in 0..2 {
            let e = sub
                .next_timeout(Duration::ZERO)
                .expect("next")
                .expect("one");
            consumer.ack_event(&e).expect("ack");
        }
        consumer.checkpoint().expect("checkpoint");
    }
    let consumer = log.consumer("projector").expect("again");
    let resumed: Vec<String> = drain(consumer.subscribe().expect("subscribe"))
        .into_iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(resumed[..2], ["StreetChanged", "CityChanged"]);
    assert_eq!(resumed.len(), expected(None).len() - 1);
    log.close().expect("close");
}

#[test]
fn a_failing_step_names_the_event_and_reads_go_on_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = write_log(dir.path());
    let bad = log
        .append(
            "order-9",
            ExpectedVersion::Any,
            &[EventData::new("Fragile", b"bad".to_vec())],
        )
        .expect("append")
        .first_position;
    log.append(
        "order-9",
        ExpectedVersion::Any,
        &[EventData::new("After", b"x".to_vec())],
    )
    .expect("append");
    let check = |e: &Error| match e {
        Error::Upcast {
            position,
            event_type,
            schema_version,
            reason,
            ..
        } => {
            assert_eq!(*position, bad);
            assert_eq!((event_type.as_str(), *schema_version), ("Fragile", 1));
            assert!(reason.contains("bad payload"), "{reason}");
        }
        other => panic!("unexpected {other}"),
    };
    // An iterator hands the error out as one item and goes on.
    let items: Vec<_> = log.read_stream("order-9", 0).expect("read").collect();
    assert_eq!(items.len(), 2);
    check(items[0].as_ref().expect_err("the failed step"));
    assert_eq!(items[1].as_ref().expect("after").event_type(), "After");
    // A replay stops at it; `next` resumes after it.
    let mut seen = 0;
    let err = log
        .replay(Position::START, |_| seen += 1)
        .expect_err("replay stops");
    check(&err);
    let Error::Upcast { next, .. } = err else {
        unreachable!()
    };
    let mut after = Vec::new();
    log.replay(next, |e| after.push(e.event_type().to_string()))
        .expect("resumed");
    assert_eq!(after, ["After"]);
    assert_eq!(seen, expected(None).len());
    // A subscription reports it and goes on.
    let mut sub = log.subscribe_stream("order-9", 0).expect("subscribe");
    check(
        &sub.next_timeout(Duration::ZERO)
            .expect_err("the failed step"),
    );
    let next = sub
        .next_timeout(Duration::ZERO)
        .expect("goes on")
        .expect("one");
    assert_eq!(next.event_type(), "After");
    log.close().expect("close");
}

#[test]
fn chains_with_a_gap_or_too_many_steps_are_refused_when_built() {
    let same = |e: &seglog::UpcastInput<'_>| Ok(vec![Upcasted::from_input(e)]);
    let gap = Upcasters::builder()
        .step("A", 1, &["B"], same)
        .step("B", 3, &["B"], same)
        .build()
        .expect_err("B has no step from 2");
    assert!(
        matches!(&gap, Error::UpcasterChain { event_type, schema_version: 1, reason }
            if event_type == "A" && reason.contains("gap")),
        "{gap}"
    );
    let mut long = Upcasters::builder();
    for v in 1..=(seglog::limits::MAX_UPCAST_STEPS as u16 + 1) {
        long = long.step("A", v, &["A"], same);
    }
    let err = long.build().expect_err("too long");
    assert!(matches!(err, Error::UpcasterChain { .. }), "{err}");
    let twice = Upcasters::builder()
        .step("A", 1, &["A"], same)
        .step("A", 1, &["A"], same)
        .build()
        .expect_err("twice");
    assert!(twice.to_string().contains("twice"), "{twice}");
}
