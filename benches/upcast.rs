//! What upcasting costs a borrowed replay and an owned read of 1M events
//! of 128 B (type "BenchEvent", schema version 1), in one run:
//! - `none`: no upcasters registered;
//! - `other_types`: upcasters registered for types the log does not hold
//!   (what most events of a living log meet: steps exist, not for them);
//! - `every_event`: one step for every event (v1 -> v2, the payload
//!   handed on unchanged, copied into the output).
//!
//! Run: `cargo bench --bench upcast`.

use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position, Upcasted, Upcasters};

const EVENTS: usize = 1_000_000;
const STREAMS: usize = 1_000;
const BATCH: usize = 100;

fn same(e: &seglog::UpcastInput<'_>) -> seglog::UpcastResult {
    Ok(vec![Upcasted::from_input(e)])
}

/// Steps for ten types none of which the log holds.
fn other_types() -> Upcasters {
    let mut b = Upcasters::builder();
    for t in [
        "OrderPlaced",
        "OrderPaid",
        "OrderShipped",
        "CustomerRegistered",
        "AddressChanged",
        "InvoiceIssued",
        "PaymentFailed",
        "CartAbandoned",
        "ItemAdded",
        "ItemRemoved",
    ] {
        b = b.step(t, 1, &[t], same);
    }
    b.build().expect("upcasters")
}

fn every_event() -> Upcasters {
    Upcasters::builder()
        .step("BenchEvent", 1, &["BenchEvent"], same)
        .build()
        .expect("upcasters")
}

fn fill(dir: &std::path::Path) {
    let log = Options::new()
        .durability(Durability::None)
        .open(dir)
        .expect("open");
    let payload = Bytes::from(vec![0x5Au8; 128]);
    let names: Vec<String> = (0..STREAMS).map(|i| format!("stream-{i}")).collect();
    for i in 0..EVENTS / BATCH {
        let events: Vec<EventData> = (0..BATCH)
            .map(|_| EventData::new("BenchEvent", payload.clone()))
            .collect();
        log.append(&names[i % STREAMS], ExpectedVersion::Any, &events)
            .expect("append");
    }
    log.close().expect("close");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(dir.path());
    let cases: [(&str, Option<Upcasters>); 3] = [
        ("none", None),
        ("other_types", Some(other_types())),
        ("every_event", Some(every_event())),
    ];
    let mut group = c.benchmark_group("upcast_1M");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(EVENTS as u64));
    for (name, upcasters) in cases {
        let options = match upcasters {
            Some(u) => Options::new().upcasters(u),
            None => Options::new(),
        };
        let log: Log = options.open(dir.path()).expect("reopen");
        group.bench_function(BenchmarkId::new("replay", name), |b| {
            b.iter(|| {
                let mut n = 0usize;
                log.replay(Position::START, |e| n += e.payload().len())
                    .expect("replay");
                assert_eq!(n, EVENTS * 128);
            })
        });
        group.bench_function(BenchmarkId::new("read_all", name), |b| {
            b.iter(|| {
                let n = log
                    .read_all(Position::START)
                    .expect("read_all")
                    .map(|e| e.expect("event").payload().len())
                    .sum::<usize>();
                assert_eq!(n, EVENTS * 128);
            })
        });
        log.close().expect("close");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
