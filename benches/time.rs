//! Time travel on a 10M-event log (128-byte payloads over 1,000 streams,
//! appended in batches of 10 from one thread, so ~10 events share each
//! commit time's microsecond and the log spans a few seconds):
//! - `position_at`: the first event at or after a time, for times spread
//!   over the whole log (the budget: under 20 µs);
//! - one stream's 1,000 events as of a time half-way through the log,
//!   against `read_stream` of the same events (as of: no dearer).
//!
//! Run: `cargo bench --bench time`.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use seglog::{AsOf, Durability, EventData, ExpectedVersion, Log, Options, Position};

const EVENTS: usize = 10_000_000;
const STREAMS: usize = 1_000;
const BATCH: usize = 10;

fn fill(log: &Log) {
    let payload = Bytes::from(vec![0x5Au8; 128]);
    let names: Vec<String> = (0..STREAMS).map(|i| format!("stream-{i}")).collect();
    for i in 0..EVENTS / BATCH {
        let events: Vec<EventData> = (0..BATCH)
            .map(|_| EventData::new("BenchEvent", payload.clone()))
            .collect();
        log.append(&names[i % STREAMS], ExpectedVersion::Any, &events)
            .expect("append");
    }
}

/// 1,024 commit times spread over the log, read back from its events.
fn sample_times(log: &Log) -> Vec<SystemTime> {
    let step = EVENTS / 1_024;
    let mut times = Vec::with_capacity(1_024);
    let mut i = 0usize;
    log.replay(Position::START, |e| {
        if i.is_multiple_of(step) {
            times.push(e.timestamp());
        }
        i += 1;
    })
    .expect("replay");
    times
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Options::new()
        .durability(Durability::None)
        .segment_size(256 << 20)
        .open(dir.path())
        .expect("open");
    fill(&log);
    log.close().expect("close");
    // Reopened: sealed segments' time entries come from their index files.
    let log = Options::new().open(dir.path()).expect("reopen");
    let times = sample_times(&log);
    let mut group = c.benchmark_group("time_10M");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    let mut next = 0usize;
    group.bench_function("position_at", |b| {
        b.iter(|| {
            next = (next + 1) % times.len();
            log.position_at(times[next]).expect("position_at")
        })
    });
    let middle = times[times.len() / 2];
    let stream = "stream-500";
    let versions = log
        .stream_version_as_of(stream, AsOf::Time(middle))
        .expect("version as of")
        .expect("the stream has events by then");
    let count = versions as usize + 1;
    group.bench_function(BenchmarkId::new("stream", "read_stream_as_of"), |b| {
        b.iter(|| {
            let read = log
                .read_stream_as_of(stream, AsOf::Time(middle))
                .expect("as of");
            assert_eq!(read.count(), count);
        })
    });
    group.bench_function(BenchmarkId::new("stream", "read_stream"), |b| {
        b.iter(|| {
            let read = log.read_stream(stream, 0).expect("read");
            assert_eq!(read.take(count).count(), count);
        })
    });
    group.finish();
    log.close().expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
