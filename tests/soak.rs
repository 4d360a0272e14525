//! Concurrency soak: writers, per-stream readers, `read_all` tailers and
//! subscriptions (`$all` and one stream) run together, checking all the time that readers see only whole,
//! acknowledged-or-about-to-be events, each version once and in order, and
//! positions that only increase.
//!
//! A one-second smoke runs in `cargo test`; `SEGLOG_SOAK_SECS=600 cargo test
//! --release --test soak` soaks for ten minutes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position, RecordedEvent};

const WRITERS: u64 = 3;
const STREAMS_PER_WRITER: u64 = 4;

fn stream(writer: u64, s: u64) -> String {
    format!("w{writer}-s{s}")
}

/// The payload of `version` of `stream`: its own name and version, then a
/// fill derived from both, so a torn or misplaced event cannot pass.
fn payload(stream: &str, version: u64) -> Vec<u8> {
    let mut p = format!("{stream}/{version}/").into_bytes();
    let len = 16 + (version % 7) as usize * 300;
    let seed = version.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.len() as u64;
    p.extend(payload_for(seed, len));
    p
}

fn check(stream: &str, version: u64, bytes: &[u8]) {
    assert!(
        bytes == payload(stream, version).as_slice(),
        "{stream} v{version}: payload is not what was written"
    );
}

#[test]
fn writers_readers_and_tailers_agree() {
    let secs = std::env::var("SEGLOG_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let dir = tempdir();
    let log = Options::new()
        .segment_size(MIB)
        .durability(Durability::Periodic(Duration::from_millis(2)))
        .open(dir.path())
        .expect("open");
    let stop = AtomicBool::new(false);
    // Highest version acknowledged per stream, plus one.
    let acked: Vec<AtomicU64> = (0..WRITERS * STREAMS_PER_WRITER)
        .map(|_| AtomicU64::new(0))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (tailed, read_streams) = std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (log, stop, acked) = (&log, &stop, &acked);
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let k = i % STREAMS_PER_WRITER;
                    let name = stream(w, k);
                    let slot = &acked[(w * STREAMS_PER_WRITER + k) as usize];
                    let next = slot.load(Ordering::Relaxed);
                    let n = 1 + i % 3;
                    let events: Vec<EventData> = (next..next + n)
                        .map(|v| EventData::new("Soak", payload(&name, v)))
                        .collect();
                    let expected = match next {
                        0 => ExpectedVersion::NoStream,
                        v => ExpectedVersion::Exact(v - 1),
                    };
                    let r = log.append(&name, expected, &events).expect("append");
                    assert_eq!(r.first_version, next);
                    slot.store(next + n, Ordering::Release);
                    i += 1;
                }
            });
        }
        let tailers: Vec<_> = (0..2)
            .map(|_| {
                let (log, stop) = (&log, &stop);
                s.spawn(move || tail(log, stop))
            })
            .collect();
        let reader = {
            let (log, stop, acked) = (&log, &stop, &acked);
            s.spawn(move || read_streams_loop(log, stop, acked))
        };
        let subscriber = {
            let (log, stop) = (&log, &stop);
            s.spawn(move || subscribe_loop(log, stop))
        };
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        let tailed: u64 = tailers.into_iter().map(|t| t.join().expect("tailer")).sum();
        let subscribed = subscriber.join().expect("subscriber");
        assert!(subscribed > 0, "the subscribers ran");
        (tailed, reader.join().expect("reader"))
    });
    assert!(tailed > 0 && read_streams > 0, "readers ran");
    // Everything acknowledged is there, once, after a reopen.
    log.close().expect("close");
    let log = Options::new().open(dir.path()).expect("reopen");
    let mut per_stream = vec![0u64; acked.len()];
    for e in log.read_all(Position::START).expect("read_all") {
        let e = e.expect("event");
        let (w, k) = parse(e.stream());
        let slot = (w * STREAMS_PER_WRITER + k) as usize;
        assert_eq!(e.version(), per_stream[slot], "{}", e.stream());
        check(e.stream(), e.version(), e.payload());
        per_stream[slot] += 1;
    }
    let want: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    assert_eq!(per_stream, want);
}

fn parse(name: &str) -> (u64, u64) {
    let (w, s) = name.split_once("-s").expect("stream name");
    (
        w.trim_start_matches('w').parse().expect("writer"),
        s.parse().expect("stream"),
    )
}

/// Checks that `e` is the next version of its stream, whole, and counts it.
fn check_next(e: &RecordedEvent, next_version: &mut [u64]) {
    let (w, k) = parse(e.stream());
    let slot = (w * STREAMS_PER_WRITER + k) as usize;
    assert_eq!(
        e.version(),
        next_version[slot],
        "{} in order, once",
        e.stream()
    );
    check(e.stream(), e.version(), e.payload());
    next_version[slot] += 1;
}

/// Follows the log with `read_all` from where it last stopped; returns how
/// many events it saw.
fn tail(log: &Log, stop: &AtomicBool) -> u64 {
    let mut from = Position::START;
    let mut next_version = vec![0u64; (WRITERS * STREAMS_PER_WRITER) as usize];
    let mut seen = 0;
    loop {
        let done = stop.load(Ordering::Relaxed);
        for e in log.read_all(from).expect("read_all") {
            let e = e.expect("event");
            assert!(e.position() >= from, "positions only increase");
            check_next(&e, &mut next_version);
            from = e.next_position();
            seen += 1;
        }
        if done {
            return seen;
        }
    }
}

/// A `$all` subscription and a subscription to one stream, both from the
/// start, live while the writers run: each event once, in order, whole.
/// Returns how many events they handed out.
fn subscribe_loop(log: &Log, stop: &AtomicBool) -> u64 {
    let mut all = log.subscribe_all(Position::START).expect("subscribe");
    let one_name = stream(1, 2);
    let mut one = log.subscribe_stream(&one_name, 0).expect("subscribe");
    let mut next_version = vec![0u64; (WRITERS * STREAMS_PER_WRITER) as usize];
    let mut one_next = 0;
    let mut last = None;
    let mut seen = 0;
    let wait = Duration::from_millis(1);
    loop {
        let done = stop.load(Ordering::Relaxed);
        while let Some(e) = all.next_timeout(wait).expect("subscription") {
            assert!(Some(e.position()) > last, "positions only increase");
            last = Some(e.position());
            check_next(&e, &mut next_version);
            seen += 1;
        }
        while let Some(e) = one.next_timeout(Duration::ZERO).expect("subscription") {
            assert_eq!((e.stream(), e.version()), (one_name.as_str(), one_next));
            check(e.stream(), e.version(), e.payload());
            one_next += 1;
            seen += 1;
        }
        if done {
            return seen;
        }
    }
}

/// Reads whole streams, forward and backward, checking each against what
/// was acknowledged before the read began; returns how many reads it made.
fn read_streams_loop(log: &Log, stop: &AtomicBool, acked: &[AtomicU64]) -> u64 {
    let mut reads = 0;
    while !stop.load(Ordering::Relaxed) {
        for w in 0..WRITERS {
            for k in 0..STREAMS_PER_WRITER {
                let name = stream(w, k);
                let floor = acked[(w * STREAMS_PER_WRITER + k) as usize].load(Ordering::Acquire);
                let mut n = 0;
                for e in log.read_stream(&name, 0).expect("read_stream") {
                    let e = e.expect("event");
                    assert_eq!(e.version(), n);
                    check(&name, n, e.payload());
                    n += 1;
                }
                assert!(n >= floor, "{name}: read {n} events, {floor} acknowledged");
                // Newest first, each version once, down to 0; the stream
                // may have grown since the forward read.
                let mut prev: Option<u64> = None;
                for e in log.read_stream_backward(&name, u64::MAX).expect("backward") {
                    let v = e.expect("event").version();
                    match prev {
                        Some(p) => assert_eq!(v + 1, p, "{name} backward"),
                        None => assert!(v + 1 >= n, "{name}: backward starts at {v} below {n}"),
                    }
                    prev = Some(v);
                }
                assert!(
                    prev.is_none_or(|p| p == 0),
                    "{name}: backward stops at {prev:?}"
                );
                reads += 1;
            }
        }
    }
    reads
}
