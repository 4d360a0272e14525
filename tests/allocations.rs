//! Hot paths do not allocate per event: a counting global allocator (this
//! test binary only) counts the allocations made by the test's own thread
//! while it appends to existing streams, replays, and reads the log and a
//! stream back (owned and borrowed). Each bound is a small constant against 20,000 events, so a
//! single allocation per event, anywhere on the path, fails it.
//!
//! The background threads (sync, preparer) are not counted: they work per
//! segment or per sync, not per event.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use seglog::{Durability, EventData, EventType, ExpectedVersion, Log, Options, Position};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// only addition is a thread-local counter, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) this thread makes while running `f`.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

const STREAMS: usize = 10;
const EVENTS: usize = 20_000;
/// Allowed for a whole pass over `EVENTS` events: amortised growth (each
/// stream's sparse-index list and the segment's list of entries double as
/// they grow, ~log2 of their length each), an iterator's buffers, one
/// segment's shared owner. Far below one per event.
const BOUND: u64 = 128;

/// A log in `dir` holding `STREAMS` streams of one event, their names and
/// the event appended to them. Creating a stream allocates (its name is
/// kept): the tests create them before they count.
fn log_with_streams(dir: &std::path::Path) -> (Log, Vec<String>, [EventData; 1]) {
    let log = Options::new()
        .durability(Durability::None)
        .open(dir)
        .expect("open");
    let names: Vec<String> = (0..STREAMS).map(|i| format!("account-{i}")).collect();
    let event = [EventData::new("Deposited", Bytes::from(vec![7u8; 128]))];
    for name in &names {
        log.append(name, ExpectedVersion::NoStream, &event)
            .expect("create");
    }
    (log, names, event)
}

/// Allocations for `EVENTS` appends round robin over `names`.
fn appends_counted(log: &Log, names: &[String], event: &[EventData]) -> u64 {
    allocations(|| {
        for i in 0..EVENTS {
            log.append(&names[i % STREAMS], ExpectedVersion::Any, event)
                .expect("append");
        }
    })
    .0
}

#[test]
fn appends_replay_and_reads_do_not_allocate_per_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, names, event) = log_with_streams(dir.path());

    let appending = appends_counted(&log, &names, &event);
    assert!(
        appending <= BOUND,
        "{appending} allocations for {EVENTS} appends to existing streams"
    );

    let requests: Vec<seglog::AppendRequest<'_>> = (0..100)
        .map(|i| seglog::AppendRequest {
            stream: &names[i % STREAMS],
            expected: ExpectedVersion::Any,
            events: &event,
        })
        .collect();
    let (batching, ()) = allocations(|| {
        for _ in 0..EVENTS / requests.len() {
            let results = log.append_many(&requests).expect("append_many");
            assert!(results.iter().all(Result::is_ok));
        }
    });
    // The results vector is the only allocation of a call.
    let calls = (EVENTS / requests.len()) as u64;
    assert!(
        batching <= calls + BOUND,
        "{batching} allocations for {calls} append_many calls of 100"
    );

    let (replaying, seen) = allocations(|| {
        let mut seen = 0usize;
        log.replay(Position::START, |e| seen += e.payload().len())
            .expect("replay");
        seen
    });
    assert_eq!(seen, (2 * EVENTS + STREAMS) * 128);
    assert!(replaying <= BOUND, "{replaying} allocations to replay");

    let (reading, seen) = allocations(|| {
        let mut seen = 0usize;
        for e in log.read_all(Position::START).expect("read_all") {
            seen += e.expect("event").payload().len();
        }
        seen
    });
    assert_eq!(seen, (2 * EVENTS + STREAMS) * 128);
    assert!(reading <= BOUND, "{reading} allocations for read_all");

    let per_stream = 2 * EVENTS / STREAMS + 1;
    let (stream_reading, seen) = allocations(|| {
        let mut seen = 0usize;
        for e in log.read_stream(&names[7], 0).expect("read_stream") {
            seen += usize::from(e.expect("event").version() < per_stream as u64);
        }
        seen
    });
    assert_eq!(seen, per_stream);
    assert!(
        stream_reading <= BOUND,
        "{stream_reading} allocations to read a {per_stream}-event stream"
    );
    let (stream_replaying, seen) = allocations(|| {
        let mut seen = 0usize;
        log.replay_stream(&names[7], 0, |e| {
            seen += usize::from(e.version() < per_stream as u64)
        })
        .expect("replay_stream");
        seen
    });
    assert_eq!(seen, per_stream);
    assert!(
        stream_replaying <= BOUND,
        "{stream_replaying} allocations to replay a {per_stream}-event stream"
    );
    eprintln!(
        "allocations for {EVENTS} events: append {appending}, append_many {batching} \
         ({calls} calls); for {} events: replay {replaying}, read_all {reading}; \
         read_stream of {per_stream}: {stream_reading}, replay_stream: {stream_replaying}",
        2 * EVENTS + STREAMS
    );
    log.close().expect("close");
}

/// Callers build an `EventData` for each append: a short type name from a
/// `&str` and a payload `Bytes` they hold cost no allocation, nor does a
/// long name kept as an `EventType` constant. (A `String` per event type
/// cost one per event before.)
#[test]
fn building_an_event_per_append_does_not_allocate() {
    const LONG: EventType = EventType::from_static("com.example.accounts.v2.MoneyDeposited");
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, names, _) = log_with_streams(dir.path());
    let payload = Bytes::from(vec![7u8; 128]);
    let (appending, ()) = allocations(|| {
        for i in 0..EVENTS {
            let event = if i % 2 == 0 {
                EventData::new("Deposited", payload.clone())
            } else {
                EventData::new(LONG.clone(), payload.clone())
            };
            log.append(&names[i % STREAMS], ExpectedVersion::Any, &[event])
                .expect("append");
        }
    });
    assert!(
        appending <= BOUND,
        "{appending} allocations for {EVENTS} appends, each building its event"
    );
    let mut types = std::collections::HashSet::new();
    log.replay(Position::START, |e| {
        types.insert(e.event_type().to_owned());
    })
    .expect("replay");
    assert_eq!(
        types,
        ["Deposited", LONG.as_str()]
            .map(String::from)
            .into_iter()
            .collect()
    );
    // A long name given at run time still works: one allocation for it.
    let long = "x".repeat(200);
    let (made, event) = allocations(|| EventData::new(long.as_str(), payload.clone()));
    assert_eq!(made, 1);
    assert_eq!(event.event_type(), long);
    log.close().expect("close");
}

/// Subscriptions are cursors over the log, not queues: subscribers that do
/// not read cost appends nothing, catching up allocates per segment, not
/// per event, and a filter passes over what it does not match without
/// building events.
#[test]
fn subscriptions_hold_no_copies_and_filters_build_nothing_they_skip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, names, event) = log_with_streams(dir.path());
    // Slow subscribers: they never read while the appends run.
    let mut idle = log.subscribe_all(Position::START).expect("subscribe");
    let mut nothing = log
        .subscribe_all(Position::START)
        .expect("subscribe")
        .filter(seglog::Filter::stream_prefix("nobody-"));
    let mut rare = log
        .subscribe_all(Position::START)
        .expect("subscribe")
        .filter(seglog::Filter::all().event_types(["Closed"]));
    let appending = appends_counted(&log, &names, &event);
    assert!(
        appending <= BOUND,
        "{appending} allocations for {EVENTS} appends with slow subscribers"
    );
    log.append(
        "account-3",
        ExpectedVersion::Any,
        &[EventData::new("Closed", &b""[..])],
    )
    .expect("append");
    let end = log
        .read_all(Position::START)
        .expect("read")
        .last()
        .expect("events")
        .expect("event")
        .next_position();

    let no_wait = std::time::Duration::ZERO;
    let (catching_up, seen) = allocations(|| {
        let mut seen = 0usize;
        while let Some(e) = idle.next_timeout(no_wait).expect("next") {
            seen += e.payload().len();
        }
        seen
    });
    assert_eq!(seen, (EVENTS + STREAMS) * 128);
    assert!(
        catching_up <= BOUND,
        "{catching_up} allocations to catch up"
    );
    // A zero timeout returns every few thousand frames: go on until the end.
    let (skipping, ()) = allocations(|| {
        while nothing.position() < end {
            assert!(nothing.next_timeout(no_wait).expect("next").is_none());
        }
    });
    assert_eq!(nothing.position(), end);
    assert!(
        skipping <= 8,
        "{skipping} allocations passing over every frame"
    );
    let (finding, got) = allocations(|| {
        loop {
            if let Some(e) = rare.next_timeout(no_wait).expect("next") {
                return e;
            }
        }
    });
    assert_eq!(got.event_type(), "Closed");
    assert!(
        finding <= 8,
        "{finding} allocations to find one event among {EVENTS}"
    );
    eprintln!(
        "allocations: {EVENTS} appends with 3 slow subscribers {appending}, catching up \
         {catching_up}, a filter matching nothing {skipping}, a rare type {finding}"
    );
    log.close().expect("close");
}
