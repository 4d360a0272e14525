//! What crypto-shredding costs: 100k events of 128 bytes over 100 streams,
//! one event per append under `Durability::None` (the CPU's share, not the
//! disk's), plain against encrypted under the stream's key; then an owned
//! replay (`read_all`) of each log, and a borrowed one (`replay`).
//!
//! Run: `cargo bench --bench shred`.

use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use seglog::{Durability, EventData, ExpectedVersion, Log, MasterKey, Options, Position};

const EVENTS: usize = 100_000;
const STREAMS: usize = 100;

fn open(dir: &std::path::Path) -> Log {
    Options::new()
        .durability(Durability::None)
        .master_key(MasterKey::from_bytes([7; 32]))
        .open(dir)
        .expect("open")
}

fn fill(log: &Log, names: &[String], encrypted: bool) {
    let payload = Bytes::from(vec![0x5Au8; 128]);
    for i in 0..EVENTS {
        let mut event = EventData::new("BenchEvent", payload.clone());
        if encrypted {
            event = event.encrypted();
        }
        log.append(&names[i % STREAMS], ExpectedVersion::Any, &[event])
            .expect("append");
    }
}

fn appends(c: &mut Criterion, names: &[String]) {
    let mut group = c.benchmark_group("shred_append_100k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(EVENTS as u64));
    for (label, encrypted) in [("plain", false), ("encrypted", true)] {
        group.bench_function(label, |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let log = open(dir.path());
                    // Keys made before the timing: a new subject is a key
                    // store rewrite, paid once per subject, not per event.
                    fill_keys(&log, names, encrypted);
                    (dir, log)
                },
                |(dir, log)| {
                    fill(&log, names, encrypted);
                    (dir, log)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn fill_keys(log: &Log, names: &[String], encrypted: bool) {
    for name in names {
        let mut event = EventData::new("Key", Bytes::new());
        if encrypted {
            event = event.encrypted();
        }
        log.append(name, ExpectedVersion::Any, &[event])
            .expect("append");
    }
}

fn replays(c: &mut Criterion, names: &[String]) {
    let mut group = c.benchmark_group("shred_replay_100k");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(EVENTS as u64));
    for (label, encrypted) in [("plain", false), ("encrypted", true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path());
        fill(&log, names, encrypted);
        group.bench_function(format!("read_all {label}"), |b| {
            b.iter(|| {
                let mut bytes = 0;
                for e in log.read_all(Position::START).expect("read") {
                    bytes += e.expect("event").payload().len();
                }
                assert_eq!(bytes, EVENTS * 128);
            })
        });
        group.bench_function(format!("replay {label}"), |b| {
            b.iter(|| {
                let mut bytes = 0;
                log.replay(Position::START, |e| bytes += e.payload().len())
                    .expect("replay");
                assert_eq!(bytes, EVENTS * 128);
            })
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let names: Vec<String> = (0..STREAMS).map(|i| format!("stream-{i}")).collect();
    appends(c, &names);
    replays(c, &names);
}

criterion_group!(benches, bench);
criterion_main!(benches);
