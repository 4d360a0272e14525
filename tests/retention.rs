//! Retention by whole segments (issue 28, item 3): what goes, what stays,
//! what a read before the start gets, and that the chain still proves the
//! rest, across reopen and through a `Reader`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seglog::{
    AUDIT_STREAM, Clock, Error, EventData, ExpectedVersion, Log, Options, Position,
    RETENTION_EVENT, Reader,
};

const MIB: u64 = 1 << 20;
const DAY_US: u64 = 86_400_000_000;

#[derive(Debug, Default)]
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0.load(Ordering::SeqCst))
    }
}

fn options(clock: &Arc<TestClock>) -> Options {
    Options::new()
        .segment_size(MIB)
        .clock(Arc::clone(clock) as Arc<dyn Clock>)
        .retain_max_age(Duration::from_secs(30 * 86_400))
}

/// 40 appends of 3 events of 10 KiB: about 1.2 MiB, so over a segment.
fn fill(log: &Log, tag: &str, streams: usize) -> Vec<(String, u64, Position)> {
    let mut appended = Vec::new();
    for i in 0..40usize {
        let stream = format!("{tag}-{}", i % streams);
        let events: Vec<_> = (0..3u8)
            .map(|k| EventData::new("E", vec![k ^ i as u8; 10 * 1024]))
            .collect();
        let r = log.append(&stream, ExpectedVersion::Any, &events).unwrap();
        appended.push((stream.clone(), r.first_version, r.first_position));
        appended.push((stream.clone(), r.last_version, r.last_position));
    }
    appended
}

/// The `$audit` events the log holds, from the first one kept.
fn audit_events(log: &Log) -> Vec<seglog::RecordedEvent> {
    let read = match log.read_stream(AUDIT_STREAM, 0) {
        Err(Error::StreamBeforeLogStart { first_version, .. }) => {
            log.read_stream(AUDIT_STREAM, first_version)
        }
        other => other,
    };
    read.unwrap().map(|e| e.unwrap()).collect()
}

fn positions(log: &Log, from: Position) -> Vec<Position> {
    log.read_all(from)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.stream() != AUDIT_STREAM)
        .map(|e| e.position())
        .collect()
}

#[test]
fn old_segments_go_and_reads_before_the_start_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    clock.0.store(1_000 * DAY_US, Ordering::SeqCst);
    let log = options(&clock).open(dir.path()).unwrap();
    let old = fill(&log, "old", 4);
    let early = log.digest().unwrap();
    let old = [old, fill(&log, "old", 4)].concat();
    clock.0.store(1_040 * DAY_US, Ordering::SeqCst);
    let new = fill(&log, "new", 2);
    let before = log.digest().unwrap();
    let everything = positions(&log, Position::START);

    let retained = log.apply_retention().unwrap();
    assert!(retained.segments >= 2, "{retained:?}");
    assert_eq!(retained.bytes, retained.segments * MIB);
    let start = log.log_start();
    assert_eq!(retained.log_start, start);
    assert!(start > old[0].2);
    assert!(start <= new[0].2, "no new event removed");

    // What the log holds from its start is exactly what was appended there.
    let expected: Vec<Position> = everything.iter().copied().filter(|&p| p >= start).collect();
    assert!(expected.len() < everything.len());
    assert_eq!(positions(&log, start), expected);
    let kept = positions(&log, start);
    assert!(
        old.iter()
            .chain(&new)
            .all(|a| (a.2 >= start) == kept.contains(&a.2))
    );
    match log.read_all(Position::START) {
        Err(Error::BeforeLogStart {
            position,
            log_start,
        }) => assert_eq!((position, log_start), (Position::START, start)),
        other => panic!("expected BeforeLogStart, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        log.subscribe_all(Position::START),
        Err(Error::BeforeLogStart { .. })
    ));

    // A stream whose early events went: refused below its first kept
    // version, whole from it, and it goes on from its last version.
    let (stream, first_kept) = old
        .iter()
        .filter(|a| a.2 >= start)
        .map(|a| (a.0.clone(), a.1))
        .next()
        .unwrap();
    match log.read_stream(&stream, 0) {
        Err(Error::StreamBeforeLogStart {
            stream: s,
            version: 0,
            first_version,
            log_start,
        }) => {
            assert_eq!((s.as_str(), log_start), (stream.as_str(), start));
            assert!(first_version <= first_kept);
        }
        other => panic!("expected StreamBeforeLogStart, got {:?}", other.map(|_| ())),
    }
    let back: Vec<u64> = log
        .read_stream_backward(&stream, u64::MAX)
        .unwrap()
        .map(|e| e.unwrap().version())
        .collect();
    assert!(back.windows(2).all(|w| w[0] == w[1] + 1), "{back:?}");
    assert!(*back.last().unwrap() <= first_kept);

    // The removal is in the audit stream, and the chain proves the rest.
    let audit: Vec<_> = log
        .read_stream(AUDIT_STREAM, 0)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event_type(), RETENTION_EVENT);
    assert_eq!(Some(audit[0].position()), retained.audit);
    let text = std::str::from_utf8(audit[0].payload()).unwrap();
    assert!(
        text.contains(&format!("\"log_start\":{}", start.as_u64())),
        "{text}"
    );
    assert!(
        text.contains("\"policy\":\"max_age=2592000s max_bytes=none"),
        "{text}"
    );
    let report = log.verify(None).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.start.position, start);
    // A digest past the start is checked: the start's link carries what
    // was removed. One from before the start commits to removed events.
    let held = log.verify(Some(&before)).unwrap();
    assert_eq!(held.against, Some(before), "{held}");
    let gone = log.verify(Some(&early)).unwrap();
    let failure = gone
        .failure
        .expect("a digest before the start cannot be checked");
    assert_eq!(failure.kind, seglog::FailureKind::Digest);
    assert!(failure.reason.contains("retention removed"), "{failure}");

    let digest = log.digest().unwrap();
    log.close().unwrap();
    for i in 0..2 {
        let log = options(&clock).open(dir.path()).unwrap();
        assert_eq!(log.log_start(), start, "reopen {i}");
        let now = positions(&log, start);
        assert_eq!(now[..expected.len()], expected[..], "reopen {i}");
        assert_eq!(now.len(), expected.len() + i, "and the appends since");
        assert!(log.verify(Some(&digest)).unwrap().is_intact());
        let r = log
            .append(&stream, ExpectedVersion::Any, &[EventData::new("E", "x")])
            .unwrap();
        assert!(r.first_version > first_kept);
        let reader = Reader::open(dir.path()).unwrap();
        assert_eq!(reader.log_start(), start);
        assert!(matches!(
            reader.read_all(Position::START),
            Err(Error::BeforeLogStart { .. })
        ));
        assert!(
            seglog::verify(dir.path(), Some(&digest))
                .unwrap()
                .is_intact()
        );
        log.close().unwrap();
    }
}

#[test]
fn size_retention_keeps_the_newest_segments_and_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Options::new()
        .segment_size(MIB)
        .retain_max_bytes(3 * MIB)
        .open(dir.path())
        .unwrap();
    for round in 0..5 {
        fill(&log, &format!("r{round}"), 3);
    }
    let all = positions(&log, Position::START);
    let retained = log.apply_retention().unwrap();
    assert!(retained.segments >= 2, "{retained:?}");
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
        .count();
    // Three segments of the log, and perhaps the writer's spare.
    assert!((3..=4).contains(&segments), "{segments} segment files");
    let start = log.log_start();
    let kept: Vec<Position> = all.into_iter().filter(|&p| p >= start).collect();
    assert_eq!(positions(&log, start), kept);
    assert_eq!(
        log.apply_retention().unwrap().segments,
        0,
        "nothing more to do"
    );
}

#[test]
fn an_idle_active_segment_is_sealed_and_goes_when_it_is_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    clock.0.store(1_000 * DAY_US, Ordering::SeqCst);
    let log = options(&clock).open(dir.path()).unwrap();
    log.append("a", ExpectedVersion::Any, &[EventData::new("E", "old")])
        .unwrap();
    clock.0.store(1_031 * DAY_US, Ordering::SeqCst);
    let retained = log.apply_retention().unwrap();
    assert_eq!(retained.segments, 1, "{retained:?}");
    assert!(matches!(
        log.read_stream("a", 0),
        Err(Error::StreamBeforeLogStart {
            first_version: 1,
            ..
        })
    ));
    assert_eq!(log.stream_version("a"), Some(0));
    let r = log
        .append(
            "a",
            ExpectedVersion::Exact(0),
            &[EventData::new("E", "new")],
        )
        .unwrap();
    assert_eq!(r.first_version, 1);
    let events: Vec<_> = log
        .read_stream("a", 1)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(&events[0].payload()[..], b"new");
    log.close().unwrap();
    let log = options(&clock).open(dir.path()).unwrap();
    assert_eq!(log.stream_version("a"), Some(1));
    assert!(log.verify(None).unwrap().is_intact());
}

#[test]
fn a_named_consumer_keeps_what_it_has_not_passed_when_asked_to() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    clock.0.store(1_000 * DAY_US, Ordering::SeqCst);
    let log = options(&clock)
        .retain_for_consumers(true)
        .open(dir.path())
        .unwrap();
    let first = fill(&log, "a", 2);
    let mut consumer = log.consumer("billing").unwrap();
    consumer.ack(first[5].2).unwrap();
    consumer.checkpoint().unwrap();
    drop(consumer);
    fill(&log, "b", 2);
    fill(&log, "c", 2);
    clock.0.store(1_100 * DAY_US, Ordering::SeqCst);
    assert_eq!(log.apply_retention().unwrap().segments, 0, "pinned");
    let consumer = log.consumer("billing").unwrap();
    assert!(consumer.subscribe().is_ok());
    drop(consumer);
    log.close().unwrap();

    // Without the option, the consumer left behind is told where the log
    // starts now.
    let log = options(&clock).open(dir.path()).unwrap();
    assert!(log.apply_retention().unwrap().segments >= 2);
    let consumer = log.consumer("billing").unwrap();
    match consumer.subscribe() {
        Err(Error::BeforeLogStart { log_start, .. }) => assert_eq!(log_start, log.log_start()),
        other => panic!("expected BeforeLogStart, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_read_behind_the_removal_is_told_rather_than_skipped_forward() {
    let dir = tempfile::tempdir().unwrap();
    let log = Options::new()
        .segment_size(MIB)
        .retain_max_bytes(2 * MIB)
        .open(dir.path())
        .unwrap();
    for round in 0..4 {
        fill(&log, &format!("r{round}"), 3);
    }
    let mut read = log.read_all(Position::START).unwrap();
    read.next().unwrap().unwrap();
    assert!(log.apply_retention().unwrap().segments >= 2);
    let end = read
        .find_map(|e| e.err())
        .expect("the read ends in an error");
    assert!(matches!(end, Error::BeforeLogStart { .. }), "{end:?}");
}

#[test]
fn a_damaged_start_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = Options::new()
        .segment_size(MIB)
        .retain_max_bytes(MIB)
        .open(dir.path())
        .unwrap();
    for round in 0..3 {
        fill(&log, &format!("r{round}"), 3);
    }
    assert!(log.apply_retention().unwrap().segments > 0);
    log.close().unwrap();
    let path = dir.path().join("start");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    match Log::open(dir.path()) {
        Err(Error::Corrupt {
            segment, reason, ..
        }) => {
            assert_eq!(segment, path);
            assert!(reason.contains("start file"), "{reason}");
        }
        other => panic!("expected Corrupt, got {:?}", other.err()),
    }
    assert!(matches!(
        Reader::open(dir.path()),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn appending_to_the_audit_stream_is_the_engines_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let event = [EventData::new("E", "x")];
    assert!(matches!(
        log.append(AUDIT_STREAM, ExpectedVersion::Any, &event),
        Err(Error::ReservedStreamName { stream }) if stream == AUDIT_STREAM
    ));
    let request = seglog::AppendRequest {
        stream: AUDIT_STREAM,
        expected: ExpectedVersion::Any,
        events: &event,
    };
    let results = log.append_many(&[request]).unwrap();
    assert!(matches!(results[0], Err(Error::ReservedStreamName { .. })));
    assert_eq!(log.stream_version(AUDIT_STREAM), None);
}

#[test]
fn the_background_thread_applies_the_policy_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        Options::new()
            .segment_size(MIB)
            .retain_max_bytes(2 * MIB)
            .retention_interval(Duration::from_millis(20))
    };
    let log = options().open(dir.path()).unwrap();
    for round in 0..4 {
        fill(&log, &format!("r{round}"), 3);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log.log_start() == Position::START {
        assert!(std::time::Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!audit_events(&log).is_empty());
    log.close().unwrap();
    // Without the thread, only an explicit call removes anything.
    let log = options()
        .retention_interval(Duration::ZERO)
        .open(dir.path())
        .unwrap();
    let start = log.log_start();
    assert!(start > Position::START);
    for round in 4..7 {
        fill(&log, &format!("r{round}"), 3);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(log.log_start(), start, "no thread ran");
    assert!(log.apply_retention().unwrap().segments > 0);
    assert!(log.log_start() > start);
    assert!(log.verify(None).unwrap().is_intact());
}

#[test]
fn the_audit_trail_outlives_the_segments_it_was_written_in() {
    let dir = tempfile::tempdir().unwrap();
    let log = Options::new()
        .segment_size(MIB)
        .retain_max_bytes(2 * MIB)
        .retention_interval(Duration::ZERO)
        .open(dir.path())
        .unwrap();
    let mut runs = Vec::new();
    for round in 0..6 {
        fill(&log, &format!("r{round}"), 3);
        let retained = log.apply_retention().unwrap();
        if let Some(at) = retained.audit {
            runs.push((at, retained.log_start));
        }
    }
    assert!(runs.len() >= 3, "{runs:?}");
    let trail = audit_events(&log);
    // Every run is there once: the older ones as copies that say where
    // they were first recorded (a copy may come after a later original).
    assert_eq!(trail.len(), runs.len(), "{trail:?}");
    for (at, start) in &runs {
        let carried = format!("{{\"carried_from\":{},", at.as_u64());
        let found: Vec<&str> = trail
            .iter()
            .filter(|e| {
                let text = std::str::from_utf8(e.payload()).unwrap();
                e.position() == *at || text.starts_with(&carried)
            })
            .map(|e| std::str::from_utf8(e.payload()).unwrap())
            .collect();
        assert_eq!(found.len(), 1, "the run at {at}: {found:?}");
        assert!(found[0].contains(&format!("\"log_start\":{}", start.as_u64())));
        assert!(found[0].matches("carried_from").count() <= 1);
    }
    assert!(log.verify(None).unwrap().is_intact());
}
