//! Per-stream reads: forward and backward from every version, across segment
//! rolls, reopens and deleted index files, against the global log.

mod common;

use std::collections::HashMap;

use common::*;
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};

/// One event whose payload is `v`, to find in a read by [`number`].
fn numbered(v: u64) -> [EventData; 1] {
    [EventData::new("E", v.to_le_bytes().to_vec())]
}

/// The `v` of an event made by [`numbered`].
fn number(payload: &[u8]) -> u64 {
    u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"))
}

/// (version, payload) of every event of every stream, from `read_all`.
fn model(log: &Log) -> HashMap<String, Vec<(u64, Vec<u8>)>> {
    let mut streams: HashMap<String, Vec<(u64, Vec<u8>)>> = HashMap::new();
    for e in log.read_all(Position::START).expect("read_all") {
        let e = e.expect("event");
        streams
            .entry(e.stream().to_string())
            .or_default()
            .push((e.version(), e.payload().to_vec()));
    }
    streams
}

fn forward(log: &Log, stream: &str, from: u64) -> Vec<(u64, Vec<u8>)> {
    log.read_stream(stream, from)
        .expect("read_stream")
        .map(|e| {
            let e = e.expect("event");
            assert_eq!(e.stream(), stream);
            (e.version(), e.payload().to_vec())
        })
        .collect()
}

fn backward(log: &Log, stream: &str, from: u64) -> Vec<(u64, Vec<u8>)> {
    log.read_stream_backward(stream, from)
        .expect("read_stream_backward")
        .map(|e| {
            let e = e.expect("event");
            (e.version(), e.payload().to_vec())
        })
        .collect()
}

fn build(dir: &std::path::Path) -> Log {
    let log = Options::new()
        .segment_size(MIB)
        .index_interval(4)
        .durability(Durability::None)
        .open(dir)
        .expect("open");
    let mut rng = Rng::new(33);
    for i in 0..3_000u64 {
        // Stream 0 is long; the others are short and interleaved with it.
        let stream = if rng.chance(0.3) {
            "long".to_string()
        } else {
            format!("s{}", rng.below(40))
        };
        let count = rng.range(1, 4) as usize;
        let events: Vec<EventData> = (0..count)
            .map(|k| {
                let len = rng.range(0, 600) as usize;
                let mut p = payload_for(i * 10 + k as u64, len);
                p.extend_from_slice(&i.to_le_bytes());
                EventData::new("E", p)
            })
            .collect();
        log.append(&stream, ExpectedVersion::Any, &events)
            .expect("append");
    }
    log
}

/// Opens the log `build` made, with the same segment size and interval.
fn reopen(dir: &std::path::Path) -> Log {
    Options::new()
        .segment_size(MIB)
        .index_interval(4)
        .open(dir)
        .expect("reopen")
}

fn check_every_version(log: &Log, streams: &HashMap<String, Vec<(u64, Vec<u8>)>>) {
    for (name, events) in streams {
        let n = events.len() as u64;
        assert_eq!(log.stream_version(name), Some(n - 1));
        // Every version of the short streams; the long one (O(n^2) events to
        // read them all) at every version near its ends and a stride between.
        let froms: Vec<u64> = if name == "long" {
            (0..=n + 1)
                .filter(|v| *v < 40 || *v + 40 > n || v % 37 == 0)
                .collect()
        } else {
            (0..=n + 1).collect()
        };
        for from in froms {
            let want: Vec<_> = events.iter().filter(|(v, _)| *v >= from).cloned().collect();
            assert_eq!(forward(log, name, from), want, "{name} forward from {from}");
            let mut want: Vec<_> = events.iter().filter(|(v, _)| *v <= from).cloned().collect();
            want.reverse();
            assert_eq!(
                backward(log, name, from),
                want,
                "{name} backward from {from}"
            );
        }
    }
    assert!(forward(log, "never", 0).is_empty());
    assert!(backward(log, "never", u64::MAX).is_empty());
}

#[test]
fn read_stream_from_every_version_both_ways_and_after_reopen() {
    let dir = tempdir();
    let log = build(dir.path());
    let streams = model(&log);
    assert!(streams["long"].len() > 1_500, "{}", streams["long"].len());
    check_every_version(&log, &streams);
    log.close().expect("close");
    assert!(segment_files(dir.path()).len() > 3, "several segments");

    // With index files, and with every index file deleted: identical reads.
    for delete in [false, true] {
        if delete {
            remove_index_files(dir.path());
        }
        let log = reopen(dir.path());
        assert_eq!(model(&log), streams);
        check_every_version(&log, &streams);
        log.close().expect("close");
    }
}

#[test]
fn read_stream_sees_only_what_was_visible_and_continues_after_appends() {
    let dir = tempdir();
    let log = Options::new()
        .index_interval(2)
        .open(dir.path())
        .expect("open");
    for v in 0..10u64 {
        log.append("a", ExpectedVersion::Any, &numbered(v))
            .expect("append");
    }
    let reader = log.read_stream("a", 3).expect("read");
    log.append(
        "a",
        ExpectedVersion::Exact(9),
        &[EventData::new("E", &b"late"[..])],
    )
    .expect("append");
    let versions: Vec<u64> = reader.map(|e| e.expect("event").version()).collect();
    assert_eq!(
        versions,
        (3..10).collect::<Vec<_>>(),
        "reads the stream as it was"
    );
    let versions: Vec<u64> = log
        .read_stream("a", 9)
        .expect("read")
        .map(|e| e.expect("event").version())
        .collect();
    assert_eq!(versions, vec![9, 10]);
}

/// A forward read plans 16 index intervals at a time, walking their
/// back-link chains side by side: a stream of many intervals, interleaved
/// with another, reads whole and in order from every version (owned and
/// borrowed alike), and a read
/// that began before later appends ends at the head it saw even when the
/// new frames add index entries past several plans.
#[test]
fn forward_reads_across_many_planned_intervals() {
    let dir = tempdir();
    let log = Options::new()
        .index_interval(2)
        .durability(seglog::Durability::None)
        .open(dir.path())
        .expect("open");
    for v in 0..150u64 {
        log.append("long", ExpectedVersion::Any, &numbered(v))
            .expect("append");
        // Frames of several events too, so intervals hold unequal counts.
        let batch: Vec<EventData> = (0..v % 3 + 1)
            .map(|i| EventData::new("F", vec![i as u8]))
            .collect();
        log.append("other", ExpectedVersion::Any, &batch)
            .expect("append");
    }
    for from in 0..150u64 {
        let read: Vec<u64> = log
            .read_stream("long", from)
            .expect("read")
            .map(|e| {
                let e = e.expect("event");
                let payload = number(e.payload());
                assert_eq!(
                    payload,
                    e.version(),
                    "event {} holds its own version",
                    e.version()
                );
                e.version()
            })
            .collect();
        assert_eq!(read, (from..150).collect::<Vec<_>>(), "from {from}");
        // The borrowed path hands out the same events.
        let mut borrowed = Vec::new();
        let resume = log
            .replay_stream("long", from, |e| {
                assert_eq!(e.stream(), "long");
                let payload = number(e.payload());
                assert_eq!(payload, e.version());
                borrowed.push(e.version());
            })
            .expect("replay_stream");
        assert_eq!(borrowed, read, "replay_stream from {from}");
        assert_eq!(resume, 150);
    }
    let mut none = 0;
    assert_eq!(
        log.replay_stream("never", 7, |_| none += 1)
            .expect("replay"),
        7
    );
    assert_eq!(
        log.replay_stream("long", 150, |_| none += 1)
            .expect("replay"),
        150
    );
    assert_eq!(none, 0);
    let reader = log.read_stream("long", 0).expect("read");
    for v in 150..250u64 {
        log.append("long", ExpectedVersion::Exact(v - 1), &numbered(v))
            .expect("append");
    }
    let read: Vec<u64> = reader.map(|e| e.expect("event").version()).collect();
    assert_eq!(read, (0..150).collect::<Vec<_>>(), "the stream as it was");
    let read = log.read_stream("long", 140).expect("read").count();
    assert_eq!(read, 110);
    log.close().expect("close");
}

/// Segments are the only source of truth: with every other file of the
/// directory deleted (index files, the lock file), a reopen reads the same.
#[test]
fn only_segment_files_are_needed() {
    let dir = tempdir();
    let log = build(dir.path());
    let streams = model(&log);
    let long_backward = backward(&log, "long", u64::MAX);
    log.close().expect("close");
    let mut deleted = 0;
    for entry in std::fs::read_dir(dir.path()).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "seg") {
            std::fs::remove_file(&path).expect("remove");
            deleted += 1;
        }
    }
    assert!(
        deleted > 3,
        "index files and the lock file were there: {deleted}"
    );
    let log = reopen(dir.path());
    assert_eq!(model(&log), streams);
    assert_eq!(backward(&log, "long", u64::MAX), long_backward);
    for name in streams.keys() {
        assert_eq!(forward(&log, name, 0), streams[name]);
    }
}

/// A sparse stream whose one plan crosses more segments than a read keeps
/// track of by search: two frames per 1 MiB segment, 24 segments, an index
/// entry every 8 versions, so 7 chains walk back in step and each comes
/// back to a segment it saw a few lookups before. Every event comes back,
/// forward on both paths and backward, also after reopen.
#[test]
fn a_plan_across_many_small_segments() {
    let dir = tempdir();
    let open = || {
        Options::new()
            .segment_size(1 << 20)
            .index_interval(8)
            .durability(Durability::None)
            .open(dir.path())
            .expect("open")
    };
    let log = open();
    let filler: Vec<EventData> = (0..7)
        .map(|_| EventData::new("Fill", vec![0u8; 128 << 10]))
        .collect();
    for v in 0..48u64 {
        log.append("sparse", ExpectedVersion::Any, &numbered(v))
            .expect("append");
        if v % 2 == 0 {
            continue;
        }
        log.append("filler", ExpectedVersion::Any, &filler)
            .expect("append");
    }
    let want: Vec<u64> = (0..48).collect();
    let check = |log: &Log| {
        assert!(
            segment_files(dir.path()).len() >= 24,
            "two events per segment"
        );
        for from in [0u64, 5, 23, 47] {
            let forward: Vec<u64> = log
                .read_stream("sparse", from)
                .expect("read")
                .map(|e| number(e.expect("event").payload()))
                .collect();
            assert_eq!(forward, want[from as usize..], "read_stream from {from}");
            let mut borrowed = Vec::new();
            log.replay_stream("sparse", from, |e| borrowed.push(number(e.payload())))
                .expect("replay_stream");
            assert_eq!(borrowed, want[from as usize..], "replay_stream from {from}");
        }
        let backward: Vec<u64> = log
            .read_stream_backward("sparse", u64::MAX)
            .expect("read")
            .map(|e| e.expect("event").version())
            .collect();
        assert_eq!(backward, want.iter().rev().copied().collect::<Vec<_>>());
    };
    check(&log);
    log.close().expect("close");
    let log = open();
    check(&log);
    log.close().expect("close");
}
