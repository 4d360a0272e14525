//! Criterion benches of the core engine, each beside its plain-file
//! baseline in the same run, each over a temporary directory:
//! - single-event appends (128 B, `Durability::None`) vs one framed record
//!   per append through a `BufWriter<File>`;
//! - batched appends (100 x 128 B per call) vs the same framed bytes;
//! - full replay of 1M events (borrowed and owned) vs a buffered `File`
//!   reader that checks every record's CRC;
//! - durable appends from 1, 4 and 16 threads (`Durability::Sync`): events/s
//!   from criterion, and p50/p99/p999 latency of every append of the run,
//!   printed after the group.
//!
//! Reading one stream and reopening are in `benches/streams.rs`; the
//! side-by-side comparison with other engines is `benches/compare`.
//!
//! Run: `cargo bench --bench core`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};

const PAYLOAD_BYTES: usize = 128;
const STREAMS: usize = 1_000;
const BATCH: usize = 100;
const APPEND_EVENTS: usize = 200_000;
const REPLAY_EVENTS: usize = 1_000_000;

/// Bytes of seglog's frame for one 128-byte event of type "BenchEvent"
/// (docs/FORMAT.md: 48-byte frame header, 16-byte event header, the type,
/// the payload, padded to 8): the baselines write records of this size so
/// they move the same bytes and checksum the same bytes.
const FRAME_1_BYTES: usize = (48 + 16 + 10 + PAYLOAD_BYTES).next_multiple_of(8);
/// The same for a frame of `BATCH` such events.
const FRAME_100_BYTES: usize = (48 + BATCH * (16 + 10 + PAYLOAD_BYTES)).next_multiple_of(8);

fn payload() -> Bytes {
    Bytes::from(vec![0x5Au8; PAYLOAD_BYTES])
}

fn names() -> Vec<String> {
    (0..STREAMS).map(|i| format!("stream-{i}")).collect()
}

/// The baseline's record: `[len u32][crc u32][payload]`, like seglog's frame.
fn write_raw_record(out: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    out.write_all(&(payload.len() as u32).to_le_bytes())?;
    out.write_all(&crc32fast::hash(payload).to_le_bytes())?;
    out.write_all(payload)
}

/// Reads `[len][crc][record]` records with a buffered reader, checking each
/// CRC; returns the record bytes read.
fn read_raw(path: &std::path::Path) -> usize {
    let mut input = BufReader::with_capacity(1 << 16, File::open(path).expect("open"));
    let mut header = [0u8; 8];
    let mut record = Vec::new();
    let mut bytes = 0usize;
    while input.read_exact(&mut header).is_ok() {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        record.resize(len, 0);
        input.read_exact(&mut record).expect("record");
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        assert_eq!(crc32fast::hash(&record), crc);
        bytes += len;
    }
    bytes
}

/// Appends of `per_call` 128-byte events per call (`Durability::None`),
/// `APPEND_EVENTS` events per iteration, beside a `BufWriter<File>` writing
/// one record of the same framed size per call.
fn appends(c: &mut Criterion, group_name: &str, per_call: usize, frame_bytes: usize) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    group.throughput(Throughput::Elements(APPEND_EVENTS as u64));
    let names = names();
    let events: Vec<EventData> = (0..per_call)
        .map(|_| EventData::new("BenchEvent", payload()))
        .collect();
    let calls = APPEND_EVENTS / per_call;
    // Steady state: one log (and one file) for every iteration, so segment
    // creation and prefaulting run ahead of the writer as they do in service.
    group.bench_function("seglog_none", |b| {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Options::new()
            .durability(Durability::None)
            .open(dir.path())
            .expect("open");
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                for i in 0..calls {
                    log.append(&names[i % STREAMS], ExpectedVersion::Any, &events)
                        .expect("append");
                }
            }
            started.elapsed()
        });
        log.close().expect("close");
    });
    group.bench_function("raw_bufwriter_same_bytes", |b| {
        let record = vec![0x5Au8; frame_bytes - 8];
        let dir = tempfile::tempdir().expect("tempdir");
        let file = File::create(dir.path().join("raw.log")).expect("create");
        let mut out = BufWriter::with_capacity(1 << 16, file);
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                for _ in 0..calls {
                    write_raw_record(&mut out, &record).expect("write");
                }
                out.flush().expect("flush");
            }
            started.elapsed()
        });
    });
    group.finish();
}

fn single_appends(c: &mut Criterion) {
    appends(c, "single_append_128B", 1, FRAME_1_BYTES);
}

fn batched_appends(c: &mut Criterion) {
    appends(c, "batched_append_100x128B", BATCH, FRAME_100_BYTES);
}

fn replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let names = names();
    {
        let log = Options::new()
            .durability(Durability::None)
            .open(dir.path())
            .expect("open");
        let event = [EventData::new("BenchEvent", payload())];
        for i in 0..REPLAY_EVENTS {
            log.append(&names[i % STREAMS], ExpectedVersion::Any, &event)
                .expect("append");
        }
        log.close().expect("close");
    }
    let raw_path = dir.path().join("raw.log");
    let min_path = dir.path().join("raw-min.log");
    {
        let same = vec![0x5Au8; FRAME_1_BYTES - 8];
        let mut out = BufWriter::new(File::create(&raw_path).expect("create"));
        let mut min = BufWriter::new(File::create(&min_path).expect("create"));
        for _ in 0..REPLAY_EVENTS {
            write_raw_record(&mut out, &same).expect("write");
            write_raw_record(&mut min, &payload()).expect("write");
        }
        out.flush().expect("flush");
        min.flush().expect("flush");
    }
    let log = Log::open(dir.path()).expect("reopen");
    let mut group = c.benchmark_group("replay_1M_x128B");
    group.sample_size(10);
    group.throughput(Throughput::Elements(REPLAY_EVENTS as u64));
    group.bench_function("seglog_borrowed", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            log.replay(Position::START, |e| bytes += e.payload().len())
                .expect("replay");
            assert_eq!(bytes, REPLAY_EVENTS * PAYLOAD_BYTES);
        });
    });
    group.bench_function("seglog_owned", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for e in log.read_all(Position::START).expect("read_all") {
                bytes += e.expect("event").payload().len();
            }
            assert_eq!(bytes, REPLAY_EVENTS * PAYLOAD_BYTES);
        });
    });
    for (name, path, record_bytes) in [
        ("raw_bufreader_crc_same_bytes", &raw_path, FRAME_1_BYTES - 8),
        ("raw_bufreader_crc_128B_records", &min_path, PAYLOAD_BYTES),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let records = read_raw(path);
                assert_eq!(records, REPLAY_EVENTS * record_bytes);
            });
        });
    }
    group.finish();
}

/// The latency at quantile `q` of sorted `samples`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let at = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or_default()
}

fn durable_appends(c: &mut Criterion) {
    const PER_THREAD: usize = 400;
    let mut group = c.benchmark_group("durable_append_128B");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let mut report = Vec::new();
    for threads in [1usize, 4, 16] {
        let mut latencies: Vec<Duration> = Vec::new();
        group.throughput(Throughput::Elements((threads * PER_THREAD) as u64));
        group.bench_with_input(
            BenchmarkId::new("seglog_sync", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tempfile::tempdir().expect("tempdir");
                        let log = Arc::new(Log::open(dir.path()).expect("open"));
                        let started = Instant::now();
                        let timed: Vec<Vec<Duration>> = std::thread::scope(|s| {
                            let workers: Vec<_> = (0..threads)
                                .map(|t| {
                                    let log = Arc::clone(&log);
                                    s.spawn(move || {
                                        let event = [EventData::new("BenchEvent", payload())];
                                        let stream = format!("thread-{t}");
                                        let mut own = Vec::with_capacity(PER_THREAD);
                                        for _ in 0..PER_THREAD {
                                            let sent = Instant::now();
                                            log.append(&stream, ExpectedVersion::Any, &event)
                                                .expect("append");
                                            own.push(sent.elapsed());
                                        }
                                        own
                                    })
                                })
                                .collect();
                            workers
                                .into_iter()
                                .map(|w| w.join().expect("worker"))
                                .collect()
                        });
                        total += started.elapsed();
                        latencies.extend(timed.into_iter().flatten());
                    }
                    total
                });
            },
        );
        latencies.sort_unstable();
        report.push((threads, latencies));
    }
    group.finish();
    println!("durable_append_128B latency of every append timed (warm-up included):");
    println!("threads   appends   p50 us   p99 us  p999 us");
    for (threads, sorted) in &report {
        let us = |q| quantile(sorted, q).as_secs_f64() * 1e6;
        println!(
            "{threads:>7} {:>9} {:>8.0} {:>8.0} {:>8.0}",
            sorted.len(),
            us(0.5),
            us(0.99),
            us(0.999)
        );
    }
}

criterion_group!(
    benches,
    single_appends,
    batched_appends,
    replay,
    durable_appends
);
criterion_main!(benches);
