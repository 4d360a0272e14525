//! Many short streams across a reopen: N streams x 3 events, appended in
//! three interleaved rounds (every stream's v0, then every v1, then every
//! v2), closed and reopened, then again with every index file deleted.
//! Counts, versions, reads of a sample of streams both ways and the full
//! log must be exact, and identical across the two reopens.
//!
//! N = 20,000 by default (CI). `SEGLOG_SLOW=1` runs the scale,
//! N = 1,000,000 (3M events; a few minutes in a debug build, use
//! `cargo test --release --test many_streams` for speed).

mod common;

use std::time::Instant;

use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};

const ROUNDS: u64 = 3;

/// (streams, segment size): the CI size, or the scale under
/// `SEGLOG_SLOW=1`.
fn scale() -> (u64, u64) {
    if std::env::var("SEGLOG_SLOW").is_ok_and(|v| v == "1") {
        // SLOW PATH: the 1M streams x 3 events.
        (1_000_000, 16 << 20)
    } else {
        (20_000, 1 << 20)
    }
}

fn name(stream: u64) -> String {
    format!("account-{stream:07}")
}

/// Payload of version `round` of stream `stream`: both numbers, so a read
/// can tell exactly which event it got.
fn payload(stream: u64, round: u64) -> Vec<u8> {
    let mut p = stream.to_le_bytes().to_vec();
    p.extend_from_slice(&round.to_le_bytes());
    p
}

fn options(segment: u64) -> Options {
    Options::new()
        .segment_size(segment)
        // Every stream's third event makes a sparse entry: persisted and
        // reloaded for every stream.
        .index_interval(2)
        .durability(Durability::None)
}

/// The streams whose reads are checked: both ends and an even spread.
fn sample(n: u64) -> Vec<u64> {
    let mut s: Vec<u64> = (0..n).step_by((n / 97).max(1) as usize).collect();
    s.extend([1, n / 2, n - 2, n - 1]);
    s.sort_unstable();
    s.dedup();
    s
}

/// (version, position as u64) of each event of a read of `stream`, each
/// checked against the stream's payloads.
fn read(log: &Log, stream: u64, from: u64, backward: bool) -> Vec<(u64, u64)> {
    let name = name(stream);
    let iter = if backward {
        log.read_stream_backward(&name, from)
    } else {
        log.read_stream(&name, from)
    };
    iter.expect("read_stream")
        .map(|e| {
            let e = e.expect("event");
            assert_eq!(e.stream(), name);
            assert_eq!(
                &e.payload()[..],
                &payload(stream, e.version())[..],
                "{name} v{}",
                e.version()
            );
            (e.version(), e.position().as_u64())
        })
        .collect()
}

/// Checks everything about the reopened log; returns the positions the
/// sample reads found, to compare between reopens.
fn check(log: &Log, n: u64) -> Vec<(u64, u64)> {
    assert_eq!(log.stream_count() as u64, n, "stream_count");
    assert_eq!(log.stream_version("account-none"), None);
    assert_eq!(log.read_stream("account-none", 0).expect("read").count(), 0);
    let mut positions = Vec::new();
    for s in sample(n) {
        assert_eq!(
            log.stream_version(&name(s)),
            Some(ROUNDS - 1),
            "{}",
            name(s)
        );
        let forward = read(log, s, 0, false);
        let versions: Vec<u64> = forward.iter().map(|e| e.0).collect();
        assert_eq!(versions, [0, 1, 2], "{} forward", name(s));
        let mut backward = read(log, s, u64::MAX, true);
        backward.reverse();
        assert_eq!(backward, forward, "{} backward from the end", name(s));
        let tail: Vec<u64> = read(log, s, 1, true).iter().map(|e| e.0).collect();
        assert_eq!(tail, [1, 0], "{} backward from 1", name(s));
        let tail: Vec<u64> = read(log, s, 2, false).iter().map(|e| e.0).collect();
        assert_eq!(tail, [2], "{} forward from 2", name(s));
        assert!(
            read(log, s, 3, false).is_empty(),
            "{} forward from 3",
            name(s)
        );
        assert_eq!(
            read(log, s, 0, true)
                .iter()
                .map(|e| e.0)
                .collect::<Vec<_>>(),
            [0],
            "{} backward from 0",
            name(s)
        );
        positions.extend(forward);
    }
    // The whole log, in commit order: round by round, stream by stream.
    let mut k = 0u64;
    for e in log.read_all(Position::START).expect("read_all") {
        let e = e.expect("event");
        let (round, stream) = (k / n, k % n);
        assert_eq!((e.stream(), e.version()), (name(stream).as_str(), round));
        assert_eq!(&e.payload()[..], &payload(stream, round)[..]);
        k += 1;
    }
    assert_eq!(k, n * ROUNDS, "read_all count");
    positions
}

#[test]
fn many_short_streams_survive_reopen_with_and_without_index_files() {
    let (n, segment) = scale();
    let dir = common::tempdir();
    let log = options(segment).open(dir.path()).expect("open");
    let started = Instant::now();
    for round in 0..ROUNDS {
        let expected = match round {
            0 => ExpectedVersion::NoStream,
            r => ExpectedVersion::Exact(r - 1),
        };
        for s in 0..n {
            let event = [EventData::new("E", payload(s, round))];
            let r = log.append(&name(s), expected, &event).expect("append");
            assert_eq!(r.first_version, round);
        }
    }
    eprintln!("appended {} events in {:?}", n * ROUNDS, started.elapsed());
    log.close().expect("close");
    let segments = common::segment_files(dir.path()).len();
    assert!(segments > 3, "only {segments} segments: no roll tested");

    let started = Instant::now();
    let log = options(segment).open(dir.path()).expect("reopen");
    eprintln!("reopened with index files in {:?}", started.elapsed());
    let first = check(&log, n);
    log.close().expect("close");

    common::remove_index_files(dir.path());
    let started = Instant::now();
    let log = options(segment).open(dir.path()).expect("reopen");
    eprintln!("reopened without index files in {:?}", started.elapsed());
    assert_eq!(check(&log, n), first, "identical reads without index files");
    log.close().expect("close");
}
