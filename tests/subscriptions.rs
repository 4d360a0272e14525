//! Subscriptions: history then live, each event once and in commit order,
//! whatever the appenders do meanwhile; filters; waiting at the head; the
//! end of a closed log.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use seglog::{
    Durability, Error, EventData, ExpectedVersion, Filter, Log, Options, Position, RecordedEvent,
    Subscription,
};

/// Longest any test waits for an event it knows is coming.
const PATIENCE: Duration = Duration::from_secs(20);
const STREAMS: u64 = 12;

/// What identifies an event in the log.
fn key(e: &RecordedEvent) -> (Position, String, u64) {
    (e.position(), e.stream().to_string(), e.version())
}

/// What `sub` hands out until it waits 20 ms for nothing.
fn drain(sub: &mut Subscription) -> Vec<(Position, String, u64)> {
    let mut got = Vec::new();
    while let Some(e) = sub
        .next_timeout(Duration::from_millis(20))
        .expect("subscription")
    {
        got.push(key(&e));
    }
    got
}

/// Events from `sub` up to and including the first of type `Done` (of
/// `stream`, if given).
fn until_done(sub: &mut Subscription, stream: Option<&str>) -> Vec<RecordedEvent> {
    let mut got = Vec::new();
    let started = Instant::now();
    loop {
        let left = PATIENCE.saturating_sub(started.elapsed());
        let e = sub
            .next_timeout(left)
            .expect("subscription")
            .unwrap_or_else(|| panic!("no Done within {PATIENCE:?} after {} events", got.len()));
        let done = e.event_type() == "Done" && stream.is_none_or(|s| e.stream() == s);
        got.push(e);
        if done {
            return got;
        }
    }
}

/// Appenders run while subscribers start at random points of the log (the
/// start, an event in the middle, the head) on `$all` and on single
/// streams. When the appenders are done, a `Done` event goes to every
/// stream and to `control`; each subscriber must then have seen exactly
/// what a read from its starting point returns.
fn handover(durability: Durability, appends_per_writer: u64, subscribers: u64) {
    let dir = tempdir();
    let log = Arc::new(
        Options::new()
            .segment_size(MIB)
            .durability(durability)
            .open(dir.path())
            .expect("open"),
    );
    const WRITERS: u64 = 3;
    let total = WRITERS * appends_per_writer;
    let appended = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = Arc::clone(&log);
            let appended = Arc::clone(&appended);
            std::thread::spawn(move || {
                let mut rng = Rng::new(70 + w);
                for a in 0..appends_per_writer {
                    let stream = format!("s-{}", rng.below(STREAMS));
                    let events: Vec<EventData> = (0..1 + a % 3)
                        .map(|_| {
                            let len = rng.below(1500) as usize;
                            EventData::new("Tick", rng.bytes(len))
                        })
                        .collect();
                    log.append(&stream, ExpectedVersion::Any, &events)
                        .expect("append");
                    appended.fetch_add(1, Ordering::SeqCst);
                    if a % 8 == 0 {
                        // Give subscribers a chance to start mid-stream.
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let subs: Vec<_> = (0..subscribers)
        .map(|s| {
            let log = Arc::clone(&log);
            let appended = Arc::clone(&appended);
            std::thread::spawn(move || {
                let mut rng = Rng::new(900 + s);
                // Start somewhere in the first 90% of the appends.
                let after = rng.below(total * 9 / 10);
                while appended.load(Ordering::SeqCst) < after {
                    std::thread::yield_now();
                }
                let mid_stream = appended.load(Ordering::SeqCst) < total;
                let (start, got) = if s % 3 == 2 {
                    let stream = format!("s-{}", rng.below(STREAMS));
                    // Up to a few versions past the head: a live batch may
                    // straddle the version sought.
                    let from = rng.below(log.stream_version(&stream).map_or(1, |v| v + 8));
                    let mut sub = log.subscribe_stream(&stream, from).expect("subscribe");
                    let got = until_done(&mut sub, Some(&stream));
                    (Err((stream, from)), got)
                } else {
                    let seen = read_all(&log);
                    let from = match rng.below(3) {
                        0 => Position::START,
                        1 if !seen.is_empty() => {
                            seen[rng.below(seen.len() as u64) as usize].position()
                        }
                        _ => seen.last().map_or(Position::START, |e| e.next_position()),
                    };
                    let mut sub = log.subscribe_all(from).expect("subscribe");
                    let got = until_done(&mut sub, Some("control"));
                    (Ok(from), got)
                };
                (start, got, mid_stream)
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    for s in 0..STREAMS {
        let stream = format!("s-{s}");
        log.append(
            &stream,
            ExpectedVersion::Any,
            &[EventData::new("Done", &b""[..])],
        )
        .expect("done");
    }
    log.append(
        "control",
        ExpectedVersion::Any,
        &[EventData::new("Done", &b""[..])],
    )
    .expect("done");
    let all = read_all(&log);
    assert!(all.len() > 100);
    let mut mid_stream_starts = 0;
    for sub in subs {
        let (start, got, mid_stream) = sub.join().expect("subscriber");
        mid_stream_starts += u64::from(mid_stream);
        let got: Vec<_> = got.iter().map(key).collect();
        let want: Vec<_> = match &start {
            Ok(from) => all
                .iter()
                .filter(|e| e.position() >= *from)
                .map(key)
                .collect(),
            Err((stream, from)) => log
                .read_stream(stream, *from)
                .expect("read_stream")
                .map(|e| key(&e.expect("event")))
                .collect(),
        };
        assert_eq!(got.len(), want.len(), "{start:?}");
        assert!(
            got == want,
            "subscription from {start:?} differs from the log"
        );
    }
    assert!(
        mid_stream_starts * 2 >= subscribers,
        "only {mid_stream_starts} of {subscribers} subscribers started while appends ran"
    );
    assert!(
        segment_files(dir.path()).len() >= 3,
        "the test should roll segments"
    );
}

#[test]
fn handover_under_concurrent_appends_is_exact_without_sync() {
    handover(Durability::None, 600, 12);
}

#[test]
fn handover_under_concurrent_appends_is_exact_with_sync() {
    handover(Durability::Sync, 250, 6);
}

#[test]
fn a_subscriber_at_the_head_waits_and_wakes_on_append() {
    let dir = tempdir();
    let log = Arc::new(Log::open(dir.path()).expect("open"));
    let mut sub = log.subscribe_all(Position::START).expect("subscribe");
    let started = Instant::now();
    assert!(
        sub.next_timeout(Duration::from_millis(50))
            .expect("wait")
            .is_none()
    );
    assert!(started.elapsed() >= Duration::from_millis(50));

    let appender = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            log.append(
                "a",
                ExpectedVersion::NoStream,
                &[EventData::new("E", &b"x"[..])],
            )
            .expect("append")
        })
    };
    let e = sub.next_timeout(PATIENCE).expect("wait").expect("an event");
    let appended = appender.join().expect("appender");
    assert_eq!(e.position(), appended.first_position);
    assert_eq!(e.payload().as_ref(), b"x");
    assert_eq!(sub.position(), e.next_position());
}

#[test]
fn closing_the_log_ends_subscriptions_after_what_was_published() {
    let dir = tempdir();
    let log = Log::open(dir.path()).expect("open");
    for i in 0..5u8 {
        log.append("a", ExpectedVersion::Any, &[EventData::new("E", vec![i])])
            .expect("append");
    }
    let mut pulled = log.subscribe_all(Position::START).expect("subscribe");
    let iterated = log.subscribe_all(Position::START).expect("subscribe");
    let mut stream = log.subscribe_stream("a", 3).expect("subscribe");
    assert_eq!(
        pulled
            .next_timeout(PATIENCE)
            .expect("event")
            .map(|e| e.version()),
        Some(0)
    );
    log.close().expect("close");
    for v in 1..5 {
        assert_eq!(
            pulled
                .next_timeout(PATIENCE)
                .expect("event")
                .map(|e| e.version()),
            Some(v)
        );
    }
    assert!(matches!(pulled.next_timeout(PATIENCE), Err(Error::Closed)));
    let versions: Vec<u64> = iterated.map(|e| e.expect("event").version()).collect();
    assert_eq!(versions, [0, 1, 2, 3, 4]);
    let versions: Vec<u64> = std::iter::from_fn(|| stream.next())
        .map(|e| e.expect("event").version())
        .collect();
    assert_eq!(versions, [3, 4]);
}

#[test]
fn filters_pass_only_matching_streams_and_types() {
    let dir = tempdir();
    let log = Options::new()
        .segment_size(MIB)
        .durability(Durability::None)
        .open(dir.path())
        .expect("open");
    let mut rng = Rng::new(5);
    let types = ["Placed", "Paid", "Shipped", "Cancelled"];
    for _ in 0..3_000 {
        let stream = match rng.below(3) {
            0 => format!("order-{}", rng.below(50)),
            1 => format!("invoice-{}", rng.below(50)),
            _ => format!("orders-archive-{}", rng.below(5)),
        };
        let events: Vec<EventData> = (0..rng.range(1, 4))
            .map(|_| {
                let event_type = types[rng.below(4) as usize];
                let len = rng.below(600) as usize;
                EventData::new(event_type, rng.bytes(len))
            })
            .collect();
        log.append(&stream, ExpectedVersion::Any, &events)
            .expect("append");
    }
    let all = read_all(&log);
    let end = all.last().expect("events").next_position();
    let filters = [
        Filter::stream_prefix("order-").event_types(["Placed", "Paid"]),
        Filter::stream_prefix("invoice-").or_stream_prefix("orders-"),
        Filter::all().event_types(["Cancelled"]),
        Filter::stream_prefix("nothing-"),
        Filter::all(),
    ];
    for filter in filters {
        let from = all[all.len() / 3].position();
        let mut sub = log
            .subscribe_all(from)
            .expect("subscribe")
            .filter(filter.clone());
        let got = drain(&mut sub);
        let want: Vec<_> = all
            .iter()
            .filter(|e| e.position() >= from && filter.matches(e.stream(), e.event_type()))
            .map(key)
            .collect();
        assert!(
            got == want,
            "{filter:?}: {} events, want {}",
            got.len(),
            want.len()
        );
        // Passed-over events still move the resume point to the head.
        assert_eq!(sub.position(), end, "{filter:?}");
    }
    // A stream subscription filters by type too.
    let mut sub = log
        .subscribe_stream("order-7", 0)
        .expect("subscribe")
        .filter(Filter::all().event_types(["Paid"]));
    let got = drain(&mut sub);
    let want: Vec<_> = all
        .iter()
        .filter(|e| e.stream() == "order-7" && e.event_type() == "Paid")
        .map(key)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn a_stream_subscription_waits_for_a_stream_that_does_not_exist_yet() {
    let dir = tempdir();
    let log = Log::open(dir.path()).expect("open");
    log.append(
        "other",
        ExpectedVersion::Any,
        &[EventData::new("E", &b""[..])],
    )
    .expect("append");
    let mut sub = log.subscribe_stream("late", 0).expect("subscribe");
    assert!(
        sub.next_timeout(Duration::from_millis(10))
            .expect("wait")
            .is_none()
    );
    for v in 0..3u8 {
        log.append(
            "other",
            ExpectedVersion::Any,
            &[EventData::new("E", &b""[..])],
        )
        .expect("append");
        log.append(
            "late",
            ExpectedVersion::Any,
            &[EventData::new("L", vec![v])],
        )
        .expect("append");
    }
    for v in 0..3u64 {
        let e = sub.next_timeout(PATIENCE).expect("event").expect("some");
        assert_eq!(
            (e.stream(), e.version(), e.payload().as_ref()),
            ("late", v, &[v as u8][..])
        );
    }
    assert!(
        sub.next_timeout(Duration::from_millis(10))
            .expect("wait")
            .is_none()
    );
}

#[test]
fn positions_past_the_end_are_refused() {
    let dir = tempdir();
    let log = Log::open(dir.path()).expect("open");
    let r = log
        .append("a", ExpectedVersion::Any, &[EventData::new("E", &b""[..])])
        .expect("append");
    let past = Position::from_u64(r.first_position.as_u64() + (1 << 40));
    assert!(matches!(
        log.subscribe_all(past),
        Err(Error::InvalidPosition { position }) if position == past
    ));
}

/// Read-your-writes under `Sync`: when `append` returns, its events are
/// published, for the appender's own reads and for every subscriber.
#[test]
fn an_append_that_returned_is_readable_at_once_under_sync() {
    let dir = tempdir();
    let log = Arc::new(
        Options::new()
            .durability(Durability::Sync)
            .open(dir.path())
            .expect("open"),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..60u8 {
                    let r = log
                        .append(
                            &format!("t-{t}"),
                            ExpectedVersion::Any,
                            &[EventData::new("E", vec![i])],
                        )
                        .expect("append");
                    let e = log
                        .read_all(r.first_position)
                        .expect("read_all")
                        .next()
                        .expect("the event just appended")
                        .expect("event");
                    assert_eq!(
                        (e.position(), e.payload().as_ref()),
                        (r.first_position, &[i][..])
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("appender");
    }
}
