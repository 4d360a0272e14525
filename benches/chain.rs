//! The hash chain's read-side costs on a 1M-event log (128-byte payloads
//! over 1,000 streams, one event per append, 64 MiB segments, closed
//! cleanly so every segment holds its chain record):
//! - `verify`: every CRC, the chain from its genesis against each record,
//!   every index file claim by claim (one pass over the log);
//! - `digest` right after an open: the close recorded how far it linked,
//!   so the open links nothing.
//!
//! Run: `cargo bench --bench chain`.

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use seglog::{Durability, EventData, ExpectedVersion, Log, Options};

const EVENTS: usize = 1_000_000;
const STREAMS: usize = 1_000;

fn fill(log: &Log) {
    let payload = Bytes::from(vec![0x5Au8; 128]);
    let names: Vec<String> = (0..STREAMS).map(|i| format!("stream-{i}")).collect();
    for i in 0..EVENTS {
        let event = EventData::new("BenchEvent", payload.clone());
        log.append(&names[i % STREAMS], ExpectedVersion::Any, &[event])
            .expect("append");
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Options::new()
        .durability(Durability::None)
        .open(dir.path())
        .expect("open");
    fill(&log);
    let digest = log.digest().expect("digest");
    log.close().expect("close");

    let mut group = c.benchmark_group("chain_1M");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("verify against a digest", |b| {
        b.iter(|| {
            let report = seglog::verify(dir.path(), Some(&digest)).expect("verify");
            assert!(report.is_intact(), "{report}");
        })
    });
    group.bench_function("open and digest", |b| {
        b.iter(|| {
            let log = Log::open(dir.path()).expect("open");
            assert_eq!(log.digest().expect("digest"), digest);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
