//! Time travel: commit times that never go back, whatever the clock says;
//! `position_at` against a linear search over every event's time, in the
//! writer, after a reopen (time entries read from index files, or rebuilt
//! without them) and in a `Reader`; reads and subscriptions from a time;
//! a stream as of a version, a position and a time against a model.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{MIB, Rng, copy_dir, remove_index_files};
use seglog::{AsOf, Clock, EventData, ExpectedVersion, Log, Options, Position, Reader};

/// A clock the test sets, in microseconds since the epoch.
#[derive(Debug, Default)]
struct TestClock(AtomicU64);

impl TestClock {
    fn set(&self, us: u64) {
        self.0.store(us, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0.load(Ordering::SeqCst))
    }
}

fn at(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

fn options(clock: &Arc<TestClock>) -> Options {
    Options::new()
        .segment_size(MIB)
        .clock(Arc::clone(clock) as Arc<dyn Clock>)
}

/// What the model keeps of each event.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    stream: String,
    version: u64,
    position: Position,
    time_us: u64,
}

fn everything(log: &Log) -> Vec<Seen> {
    log.read_all(Position::START)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            Seen {
                stream: e.stream().to_string(),
                version: e.version(),
                position: e.position(),
                time_us: e.timestamp_micros(),
            }
        })
        .collect()
}

#[test]
fn commit_times_never_go_back_when_the_clock_does_even_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    let log = options(&clock).open(dir.path()).unwrap();
    let ev = || [EventData::new("e", &b"x"[..])];
    for us in [1_000, 2_000, 1_500, 500, 3_000] {
        clock.set(us);
        log.append("s", ExpectedVersion::Any, &ev()).unwrap();
    }
    let times: Vec<u64> = everything(&log).iter().map(|s| s.time_us).collect();
    assert_eq!(times, [1_000, 2_000, 2_000, 2_000, 3_000]);
    log.close().unwrap();

    // A clock far behind after a restart: the log goes on from 3,000.
    clock.set(100);
    let log = options(&clock).open(dir.path()).unwrap();
    log.append("s", ExpectedVersion::Any, &ev()).unwrap();
    let times: Vec<u64> = everything(&log).iter().map(|s| s.time_us).collect();
    assert_eq!(times, [1_000, 2_000, 2_000, 2_000, 3_000, 3_000]);
    // Equal times: the first of them is the answer.
    assert_eq!(
        log.position_at(at(2_000)).unwrap(),
        everything(&log)[1].position
    );
    drop(log);

    // Also after a crash (a copy of the open log: no clean close, the
    // tail is scanned).
    let log = options(&clock).open(dir.path()).unwrap();
    log.append("s", ExpectedVersion::Any, &ev()).unwrap();
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    drop(log);
    let log = options(&clock).open(crashed.path()).unwrap();
    log.append("s", ExpectedVersion::Any, &ev()).unwrap();
    let times: Vec<u64> = everything(&log).iter().map(|s| s.time_us).collect();
    assert_eq!(times[5..], [3_000, 3_000, 3_000]);
}

/// Appends `n` events over `streams` streams (some in batches) through
/// several 1 MiB segments, the clock moving by 0 to 3 µs each time.
fn write_history(log: &Log, clock: &TestClock, n: usize, rng: &mut Rng) {
    let payload = vec![7u8; 600];
    let mut now = 1_000_000;
    let mut written = 0;
    while written < n {
        now += rng.below(4);
        clock.set(now);
        let stream = format!("s-{}", rng.below(7));
        let count = 1 + rng.below(3) as usize;
        let events: Vec<EventData> = (0..count)
            .map(|_| EventData::new("e", payload.clone()))
            .collect();
        log.append(&stream, ExpectedVersion::Any, &events).unwrap();
        written += count;
    }
}

/// The position `position_at(t)` must return, by a linear search.
fn expected_at(all: &[Seen], end: Position, t: u64) -> Position {
    match all.iter().position(|s| s.time_us >= t) {
        Some(0) => Position::START,
        Some(i) => all[i].position,
        None => end,
    }
}

/// Every time from before the first event to after the last, against the
/// model: each event's time, one below and one above.
fn check_position_at(all: &[Seen], end: Position, position_at: impl Fn(u64) -> Position) {
    let mut times = vec![0, 1, u64::MAX];
    for s in all {
        times.extend([s.time_us - 1, s.time_us, s.time_us + 1]);
    }
    for t in times {
        assert_eq!(position_at(t), expected_at(all, end, t), "time {t}");
    }
}

#[test]
fn position_at_matches_a_linear_search_in_the_writer_after_reopen_and_in_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    let log = options(&clock).open(dir.path()).unwrap();
    let mut rng = Rng::seeded(26);
    write_history(&log, &clock, 6_000, &mut rng);
    let all = everything(&log);
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count();
    assert!(
        segments >= 4,
        "the history spans several segments: {segments}"
    );
    let end = log
        .read_all(Position::START)
        .unwrap()
        .last()
        .unwrap()
        .unwrap()
        .next_position();
    check_position_at(&all, end, |t| log.position_at(at(t)).unwrap());

    let reader = Reader::open(dir.path()).unwrap();
    check_position_at(&all, end, |t| reader.position_at(at(t)).unwrap());
    drop(reader);
    log.close().unwrap();

    // Reopened: sealed segments' time entries come from their index files.
    let log = options(&clock).open(dir.path()).unwrap();
    check_position_at(&all, end, |t| log.position_at(at(t)).unwrap());
    log.close().unwrap();
    // Without index files: rebuilt by the scan.
    remove_index_files(dir.path());
    let log = options(&clock).open(dir.path()).unwrap();
    check_position_at(&all, end, |t| log.position_at(at(t)).unwrap());
}

#[test]
fn reads_and_subscriptions_start_from_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    let log = options(&clock).open(dir.path()).unwrap();
    let mut rng = Rng::seeded(260);
    write_history(&log, &clock, 3_000, &mut rng);
    let all = everything(&log);
    let reader = Reader::open(dir.path()).unwrap();
    for pick in [0, 1, 1_234, all.len() - 1] {
        let t = all[pick].time_us;
        let from = all.iter().position(|s| s.time_us >= t).unwrap();
        let want: Vec<Position> = all[from..].iter().map(|s| s.position).collect();
        let owned =
            |r: seglog::ReadAll| -> Vec<Position> { r.map(|e| e.unwrap().position()).collect() };
        assert_eq!(owned(log.read_all_since(at(t)).unwrap()), want);
        assert_eq!(owned(reader.read_all_since(at(t)).unwrap()), want);
        let mut replayed = Vec::new();
        log.replay_since(at(t), |e| replayed.push(e.position()))
            .unwrap();
        assert_eq!(replayed, want);
        let mut replayed = Vec::new();
        reader
            .replay_since(at(t), |e| replayed.push(e.position()))
            .unwrap();
        assert_eq!(replayed, want);
        for sub in [
            log.subscribe_all_since(at(t)),
            reader.subscribe_all_since(at(t)),
        ] {
            let mut sub = sub.unwrap();
            let got: Vec<Position> = (0..want.len())
                .map(|_| {
                    sub.next_timeout(Duration::from_secs(5))
                        .unwrap()
                        .unwrap()
                        .position()
                })
                .collect();
            assert_eq!(got, want);
        }
    }
    // After the last event: nothing to read, and a subscription gets what
    // comes next.
    let later = at(all.last().unwrap().time_us + 1);
    assert_eq!(log.read_all_since(later).unwrap().count(), 0);
    let mut sub = log.subscribe_all_since(later).unwrap();
    clock.set(all.last().unwrap().time_us + 10);
    log.append(
        "late",
        ExpectedVersion::NoStream,
        &[EventData::new("e", &b"1"[..])],
    )
    .unwrap();
    let next = sub.next_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(next.stream(), "late");
}

/// What `read_stream_as_of` must return, from the model.
fn model_as_of(all: &[Seen], stream: &str, keep: impl Fn(&Seen) -> bool) -> Vec<u64> {
    all.iter()
        .filter(|s| s.stream == stream && keep(s))
        .map(|s| s.version)
        .collect()
}

fn versions(read: seglog::Result<seglog::ReadStream>) -> Vec<u64> {
    read.unwrap().map(|e| e.unwrap().version()).collect()
}

#[test]
fn a_stream_as_of_a_version_a_position_and_a_time_matches_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    // A small index interval: as-of reads start from index entries.
    let log = options(&clock).index_interval(4).open(dir.path()).unwrap();
    let mut rng = Rng::seeded(2600);
    write_history(&log, &clock, 2_000, &mut rng);
    let all = everything(&log);
    let reader = Reader::open(dir.path()).unwrap();
    for _ in 0..200 {
        let pick = &all[rng.below(all.len() as u64) as usize];
        let stream = format!("s-{}", rng.below(7));
        let last = |v: &[u64]| v.last().copied();

        let want = model_as_of(&all, &stream, |s| s.version <= pick.version);
        assert_eq!(
            versions(log.read_stream_as_of(&stream, AsOf::Version(pick.version))),
            want
        );
        assert_eq!(
            log.stream_version_as_of(&stream, AsOf::Version(pick.version))
                .unwrap(),
            last(&want)
        );

        let want = model_as_of(&all, &stream, |s| s.position < pick.position);
        let as_of = AsOf::Position(pick.position);
        assert_eq!(versions(log.read_stream_as_of(&stream, as_of)), want);
        assert_eq!(versions(reader.read_stream_as_of(&stream, as_of)), want);
        assert_eq!(
            log.stream_version_as_of(&stream, as_of).unwrap(),
            last(&want)
        );

        let want = model_as_of(&all, &stream, |s| s.time_us <= pick.time_us);
        let as_of = AsOf::Time(at(pick.time_us));
        assert_eq!(versions(log.read_stream_as_of(&stream, as_of)), want);
        assert_eq!(versions(reader.read_stream_as_of(&stream, as_of)), want);
        assert_eq!(
            reader.stream_version_as_of(&stream, as_of).unwrap(),
            last(&want)
        );
        // From a version (after a snapshot, say).
        let from = want.len() as u64 / 2;
        let tail: Vec<u64> = want.iter().copied().filter(|&v| v >= from).collect();
        assert_eq!(
            versions(log.read_stream_as_of_from(&stream, from, as_of)),
            tail
        );
    }
}

#[test]
fn bad_points_in_time_have_documented_answers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock::default());
    let log = options(&clock).open(dir.path()).unwrap();
    // An empty log: every time maps to the start.
    assert_eq!(log.position_at(at(5)).unwrap(), Position::START);
    assert_eq!(log.read_all_since(at(5)).unwrap().count(), 0);
    clock.set(1_000);
    let batch: Vec<EventData> = (0..3).map(|_| EventData::new("e", &b"x"[..])).collect();
    let r = log
        .append("order", ExpectedVersion::NoStream, &batch)
        .unwrap();

    // Before the first event; the epoch; before the epoch.
    assert_eq!(log.position_at(at(999)).unwrap(), Position::START);
    assert_eq!(
        log.position_at(UNIX_EPOCH - Duration::from_secs(1))
            .unwrap(),
        Position::START
    );
    assert_eq!(
        versions(log.read_stream_as_of("order", AsOf::Time(at(999)))),
        Vec::<u64>::new()
    );
    assert_eq!(
        log.stream_version_as_of("order", AsOf::Time(at(999)))
            .unwrap(),
        None
    );
    // After the last: the end, where the next append goes.
    let end = log.position_at(at(1_001)).unwrap();
    assert!(end > r.last_position);
    assert_eq!(log.position_at(at(u64::MAX / 2)).unwrap(), end);
    // A version past the stream's end: the whole stream.
    assert_eq!(
        versions(log.read_stream_as_of("order", AsOf::Version(99))),
        [0, 1, 2]
    );
    assert_eq!(
        log.stream_version_as_of("order", AsOf::Version(99))
            .unwrap(),
        Some(2)
    );
    // A position inside the batch's frame: the events before it.
    let second = Position::from_u64(r.first_position.as_u64() + 1);
    assert_eq!(
        versions(log.read_stream_as_of("order", AsOf::Position(second))),
        [0]
    );
    assert_eq!(
        versions(log.read_stream_as_of("order", AsOf::Position(r.first_position))),
        Vec::<u64>::new()
    );
    // An unknown stream: empty, no version.
    assert_eq!(
        versions(log.read_stream_as_of("nobody", AsOf::Version(0))),
        Vec::<u64>::new()
    );
    assert_eq!(
        log.stream_version_as_of("nobody", AsOf::Time(at(5_000)))
            .unwrap(),
        None
    );
}
