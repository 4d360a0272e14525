//! Criterion benches of issue 3's targets ("Streams at scale"), each beside
//! its baseline in the same run:
//! - reading one stream of 1,000 events from a 1M-event log interleaved over
//!   1,000 streams (one 128-byte event per append), forward (owned and
//!   borrowed) and backward,
//!   vs a full scan that filters by stream name (`read_all`, and the
//!   borrowed `replay`); target: >= 50x faster than the `read_all` scan;
//! - reopening a cleanly closed 1M-event log (time of `open` only; the close
//!   after it is not timed); target: < 50 ms median. Over 1,000 streams (the
//!   log above) and over 1M streams (one event each);
//! - single-event appends (`Durability::None`, 128 B), each iteration into a
//!   fresh log (opened and closed outside the timing); target: 1M streams
//!   within 2x of 1,000:
//!   - into an empty log: round robin over 1,000 new streams, vs 1M appends
//!     each creating a stream (the registry grows to 1M);
//!   - after 1M untimed appends that made the streams: round robin over
//!     1,000 existing streams, vs round robin over 1M, vs the 1M in a random
//!     order (every structure touched at random, not just the hash table).
//!
//! Run: `cargo bench --bench streams` (~2.5 minutes here; up to ~0.7 GB in
//! the temporary directory at once).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};

const PAYLOAD_BYTES: usize = 128;
const EVENTS: usize = 1_000_000;
const STREAMS: usize = 1_000;
/// The stream read in the read benches (one of the 1,000).
const READ_STREAM: usize = 500;

fn payload() -> Bytes {
    Bytes::from(vec![0x5Au8; PAYLOAD_BYTES])
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("stream-{i:07}")).collect()
}

fn options() -> Options {
    Options::new().durability(Durability::None)
}

/// Writes `EVENTS` single-event appends round robin over `streams` streams
/// into `dir` and closes the log cleanly.
fn build(dir: &Path, names: &[String]) {
    let log = options().open(dir).expect("open");
    let event = [EventData::new("BenchEvent", payload())];
    for i in 0..EVENTS {
        log.append(&names[i % names.len()], ExpectedVersion::Any, &event)
            .expect("append");
    }
    log.close().expect("close");
}

fn read_one_stream(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = names(STREAMS);
    build(dir.path(), &names);
    let log = options().open(dir.path()).expect("reopen");
    let stream = names[READ_STREAM].as_str();
    let per_stream = EVENTS / STREAMS;

    let mut group = c.benchmark_group("read_1k_stream_of_1M_log");
    group.sample_size(10);
    group.throughput(Throughput::Elements(per_stream as u64));
    group.bench_function("read_stream_forward", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in log.read_stream(stream, 0).expect("read_stream") {
                n += black_box(e.expect("event").payload().len());
            }
            assert_eq!(n, per_stream * PAYLOAD_BYTES);
        });
    });
    group.bench_function("replay_stream_forward", |b| {
        b.iter(|| {
            let mut n = 0usize;
            log.replay_stream(stream, 0, |e| n += black_box(e.payload().len()))
                .expect("replay_stream");
            assert_eq!(n, per_stream * PAYLOAD_BYTES);
        });
    });
    group.bench_function("read_stream_backward", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in log
                .read_stream_backward(stream, u64::MAX)
                .expect("read_stream_backward")
            {
                n += black_box(e.expect("event").payload().len());
            }
            assert_eq!(n, per_stream * PAYLOAD_BYTES);
        });
    });
    group.bench_function("scan_read_all_filter", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in log.read_all(Position::START).expect("read_all") {
                let e = e.expect("event");
                if e.stream() == stream {
                    n += black_box(e.payload().len());
                }
            }
            assert_eq!(n, per_stream * PAYLOAD_BYTES);
        });
    });
    group.bench_function("scan_replay_filter", |b| {
        b.iter(|| {
            let mut n = 0usize;
            log.replay(Position::START, |e| {
                if e.stream() == stream {
                    n += black_box(e.payload().len());
                }
            })
            .expect("replay");
            assert_eq!(n, per_stream * PAYLOAD_BYTES);
        });
    });
    group.finish();
    log.close().expect("close");
}

fn reopen(c: &mut Criterion) {
    let mut group = c.benchmark_group("reopen_1M_event_log");
    group.sample_size(10);
    for (label, streams) in [("1k_streams", STREAMS), ("1M_streams", EVENTS)] {
        let dir = tempfile::tempdir().expect("tempdir");
        build(dir.path(), &names(streams));
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let log = options().open(dir.path()).expect("open");
                    total += started.elapsed();
                    assert_eq!(log.stream_count(), streams);
                    log.close().expect("close");
                }
                total
            });
        });
    }
    group.finish();
}

/// Times `EVENTS` single-event appends into a fresh log, to
/// `stream_of(i)` for append `i`, after `prepare` (untimed).
fn time_appends(
    iters: u64,
    prepare: impl Fn(&Log),
    stream_of: impl Fn(usize) -> usize,
    names: &[String],
) -> Duration {
    let event = [EventData::new("BenchEvent", payload())];
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = options().open(dir.path()).expect("open");
        prepare(&log);
        // Let the preparer get ahead of the writer, as in a running service.
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        for i in 0..EVENTS {
            log.append(&names[stream_of(i)], ExpectedVersion::Any, &event)
                .expect("append");
        }
        total += started.elapsed();
        log.close().expect("close");
    }
    total
}

/// A permutation of `0..n` (xorshift Fisher-Yates: the same every run).
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

fn appends(c: &mut Criterion) {
    let names = names(EVENTS);
    let order = shuffled(EVENTS);
    let mut group = c.benchmark_group("append_1M_x128B_none");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(EVENTS as u64));
    // Each "existing" case first writes 1M events untimed, so that both
    // sides of a comparison start from a log of the same size, with the
    // same amount of dirty page cache behind it.
    let prewrite = |stream_of: fn(usize) -> usize| {
        let names = &names;
        move |log: &Log| {
            let event = [EventData::new("BenchEvent", payload())];
            for i in 0..EVENTS {
                log.append(&names[stream_of(i)], ExpectedVersion::Any, &event)
                    .expect("append");
            }
        }
    };
    group.bench_function("1k_streams", |b| {
        b.iter_custom(|iters| time_appends(iters, |_| {}, |i| i % STREAMS, &names));
    });
    group.bench_function("1M_new_streams", |b| {
        b.iter_custom(|iters| time_appends(iters, |_| {}, |i| i, &names));
    });
    group.bench_function("1k_existing_streams", |b| {
        let prepare = prewrite(|i| i % STREAMS);
        b.iter_custom(|iters| time_appends(iters, prepare, |i| i % STREAMS, &names));
    });
    group.bench_function("1M_existing_streams", |b| {
        let prepare = prewrite(|i| i);
        b.iter_custom(|iters| time_appends(iters, prepare, |i| i, &names));
    });
    group.bench_function("1M_existing_streams_random_order", |b| {
        let prepare = prewrite(|i| i);
        b.iter_custom(|iters| time_appends(iters, prepare, |i| order[i], &names));
    });
    group.finish();
}

criterion_group!(benches, read_one_stream, reopen, appends);
criterion_main!(benches);
