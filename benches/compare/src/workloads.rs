//! The workloads, each written once against [`Engine`]/[`Store`].

use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use crate::engines::{Engine, Result, Store, StreamRef, Tally};
use crate::limits::pattern;
use crate::table::{Table, Unit};

/// Payload size of every event.
pub const PAYLOAD_BYTES: usize = 128;
/// Events per batch in W2.
pub const BATCH: usize = 100;
/// Streams of W1/W2.
pub const STREAMS: usize = 1_000;
/// Streams read one by one in W5.
pub const W5_STREAMS: usize = 100;
/// Random streams read in W7.
pub const W7_READS: usize = 10_000;
/// The table's name for W7's second half (10,000 reads).
pub const W7_READ_METRIC: &str = "read 10k random";

/// Sizes derived from `--scale`.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// W1/W2 events (1M at scale 1).
    pub events: usize,
    /// W7 streams (1M at scale 1), 3 events each.
    pub w7_streams: usize,
    /// Duration of each W3 lane and the budget of time-bounded loops.
    pub budget: Duration,
}

impl Sizes {
    /// Sizes for `scale`, with `w3_secs` per W3 lane at scale 1.
    pub fn new(scale: f64, w3_secs: f64) -> Self {
        let events = ((1_000_000.0 * scale) as usize).max(STREAMS * 10);
        Sizes {
            // Whole batches per stream: round down to a multiple of STREAMS * BATCH.
            events: (events / (STREAMS * BATCH)).max(1) * STREAMS * BATCH,
            w7_streams: ((1_000_000.0 * scale) as usize).max(W7_READS),
            budget: Duration::from_secs_f64((w3_secs * scale).max(0.3)),
        }
    }
}

/// The 1 MiB pool payloads are cut from, leaked once so every engine can
/// take `&'static` slices (seglog wraps them in `Bytes` without a copy).
fn pool() -> &'static [u8] {
    static POOL: OnceLock<&'static [u8]> = OnceLock::new();
    POOL.get_or_init(|| Vec::leak(pattern(1 << 20)))
}

/// The payload of event `i`: a window of the pool at a varying offset, so
/// compressing engines see incompressible data.
pub fn payload(i: usize) -> &'static [u8] {
    let pool = pool();
    let at = (i * 131) % (pool.len() - PAYLOAD_BYTES);
    &pool[at..at + PAYLOAD_BYTES]
}

/// Fixed-width stream name: never a prefix of another (fjall prefix scans).
pub fn stream_name(id: usize) -> String {
    format!("stream-{id:07}")
}

/// The names of the W1/W2 streams.
pub fn names(n: usize) -> Vec<String> {
    (0..n).map(stream_name).collect()
}

fn stream(names: &[String], id: usize) -> StreamRef<'_> {
    StreamRef {
        id: id as u32,
        name: &names[id],
    }
}

/// How long appends took: up to their last call, and with the sync after.
#[derive(Debug, Clone, Copy)]
struct Took {
    before_sync: Duration,
    with_sync: Duration,
}

/// Appends `events` single events round robin over `names`, then syncs.
/// Stops early once `deadline` passes (engines that fsync every commit).
/// Returns the events appended and the time taken.
fn single_appends(
    store: &dyn Store,
    names: &[String],
    events: usize,
    deadline: Option<Instant>,
) -> Result<(usize, Took)> {
    let start = Instant::now();
    let mut done = 0;
    for i in 0..events {
        let s = i % names.len();
        store.append(stream(names, s), (i / names.len()) as u64, payload(i))?;
        done += 1;
        if deadline.is_some_and(|d| i % 64 == 0 && Instant::now() > d) {
            break;
        }
    }
    let before_sync = start.elapsed();
    store.sync()?;
    Ok((
        done,
        Took {
            before_sync,
            with_sync: start.elapsed(),
        },
    ))
}

/// Appends `events` in batches of [`BATCH`], each to one stream, then syncs.
fn batched_appends(store: &dyn Store, names: &[String], events: usize) -> Result<Took> {
    let start = Instant::now();
    let mut payloads = Vec::with_capacity(BATCH);
    for b in 0..events / BATCH {
        let s = b % names.len();
        let first = b * BATCH;
        payloads.clear();
        payloads.extend((first..first + BATCH).map(payload));
        let first_version = ((b / names.len()) * BATCH) as u64;
        store.append_batch(stream(names, s), first_version, &payloads)?;
    }
    let before_sync = start.elapsed();
    store.sync()?;
    Ok(Took {
        before_sync,
        with_sync: start.elapsed(),
    })
}

/// Puts a lane's rate with its final sync ("append", the target's figure)
/// and without it: the second shows what the appends cost before the
/// disk does.
fn put_appends(table: &mut Table, workload: &str, engine: &'static str, events: usize, took: Took) {
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    table.put(
        workload,
        "append",
        Unit::EventsPerSec,
        engine,
        rate(took.with_sync),
    );
    table.put(
        workload,
        "before sync",
        Unit::EventsPerSec,
        engine,
        rate(took.before_sync),
    );
}

/// W1, then on the same data after a clean close: W6 (reopen), W4 (replay),
/// W5 (100 streams one by one).
pub fn w1_w4_w5_w6(
    engine: &dyn Engine,
    sizes: Sizes,
    names: &[String],
    table: &mut Table,
) -> Result<()> {
    let name = engine.name();
    let dir = tempfile::tempdir()?;
    let events = sizes.events;
    let w1 = format!("W1 {} single appends", count(events));
    let store = engine.open(dir.path(), false)?;
    if engine.always_syncs() {
        let deadline = Instant::now() + sizes.budget;
        let (done, took) = single_appends(&*store, names, events, Some(deadline))?;
        put_appends(table, &w1, name, done, took);
        table.note(format!(
            "{name}: W1 time-bounded to {:.1} s (a commit always fsyncs); W4-W6 read a data set of \
             the same events written in entries of {BATCH}",
            sizes.budget.as_secs_f64()
        ));
        store.close()?;
        let dir2 = tempfile::tempdir()?;
        let store = engine.open(dir2.path(), false)?;
        batched_appends(&*store, names, events)?;
        store.close()?;
        return reads(engine, sizes, names, dir2.path(), table);
    }
    let (_, took) = single_appends(&*store, names, events, None)?;
    put_appends(table, &w1, name, events, took);
    store.close()?;
    reads(engine, sizes, names, dir.path(), table)
}

/// W6, W4 and W5 over a closed store in `dir` holding `sizes.events` events.
fn reads(
    engine: &dyn Engine,
    sizes: Sizes,
    names: &[String],
    dir: &std::path::Path,
    table: &mut Table,
) -> Result<()> {
    let name = engine.name();
    let events = sizes.events;
    let start = Instant::now();
    let store = engine.open(dir, false)?;
    let w6 = format!("W6 reopen after {}", count(events));
    table.put(
        &w6,
        "open",
        Unit::Seconds,
        name,
        start.elapsed().as_secs_f64(),
    );
    replays(&*store, name, events, table)?;

    // 100 streams spread over the 1,000.
    let ids: Vec<usize> = (0..W5_STREAMS)
        .map(|i| i * names.len() / W5_STREAMS)
        .collect();
    let per_stream = (events / names.len()) as u64;
    let (read, secs) = read_streams(&*store, names, &ids, per_stream, sizes.budget)?;
    let w5 = format!("W5 read {W5_STREAMS} streams");
    table.put(
        &w5,
        "streams",
        Unit::StreamsPerSec,
        name,
        read as f64 / secs,
    );
    if engine.scans_for_streams() {
        table.note(format!(
            "{name}: W5/W7 reads scan the whole log per stream (no stream index), time-bounded \
             to {:.1} s; the rate is over the streams read",
            sizes.budget.as_secs_f64()
        ));
    }
    store.close()?;
    Ok(())
}

/// W4: replays the `events` events of `store` (engine `name`), borrowed
/// and, where the engine has one, owned.
fn replays(store: &dyn Store, name: &'static str, events: usize, table: &mut Table) -> Result<()> {
    let w4 = format!("W4 replay {}", count(events));
    let start = Instant::now();
    let tally = store.replay()?;
    let secs = start.elapsed().as_secs_f64();
    check(name, "W4", tally.events, events as u64)?;
    table.put(
        &w4,
        "events",
        Unit::EventsPerSec,
        name,
        tally.events as f64 / secs,
    );
    table.put(
        &w4,
        "payload",
        Unit::BytesPerSec,
        name,
        tally.payload_bytes as f64 / secs,
    );
    let start = Instant::now();
    if let Some(owned) = store.replay_owned() {
        let tally = owned?;
        let secs = start.elapsed().as_secs_f64();
        check(name, "W4 owned", tally.events, events as u64)?;
        table.put(
            &w4,
            "events (owned)",
            Unit::EventsPerSec,
            name,
            tally.events as f64 / secs,
        );
    }
    Ok(())
}

/// Reads the streams `ids` one by one (stopping after `budget` once at
/// least one is read), checking each holds `per_stream` events. Returns
/// the streams read and the seconds taken.
pub fn read_streams(
    store: &dyn Store,
    names: &[String],
    ids: &[usize],
    per_stream: u64,
    budget: Duration,
) -> Result<(usize, f64)> {
    let start = Instant::now();
    let mut read = 0;
    let mut total = Tally::default();
    for &id in ids {
        let tally = store.read_stream(stream(names, id))?;
        check("read_stream", names[id].as_str(), tally.events, per_stream)?;
        total.fold = total.fold.wrapping_add(tally.fold);
        read += 1;
        if start.elapsed() > budget {
            break;
        }
    }
    std::hint::black_box(total);
    Ok((read, start.elapsed().as_secs_f64()))
}

/// W2: the same events in batches of [`BATCH`].
pub fn w2(engine: &dyn Engine, sizes: Sizes, names: &[String], table: &mut Table) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = engine.open(dir.path(), false)?;
    let took = batched_appends(&*store, names, sizes.events)?;
    let w2 = format!("W2 {} in batches of {BATCH}", count(sizes.events));
    put_appends(table, &w2, engine.name(), sizes.events, took);
    if engine.always_syncs() {
        table.note(format!(
            "{}: W2 fsyncs every batch (every commit does)",
            engine.name()
        ));
    }
    store.close()?;
    Ok(())
}

/// W3: durable appends from `threads` threads for `sizes.budget`, each
/// thread to its own stream; events/s and latency percentiles.
pub fn w3(
    engine: &dyn Engine,
    threads: usize,
    sizes: Sizes,
    names: &[String],
    table: &mut Table,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::from(engine.open(dir.path(), true)?);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let budget = sizes.budget;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let name = names[t].clone();
            std::thread::spawn(move || -> Result<Vec<u64>> {
                let s = StreamRef {
                    id: t as u32,
                    name: &name,
                };
                let mut lat = Vec::new();
                barrier.wait();
                let start = Instant::now();
                let mut v = 0u64;
                while start.elapsed() < budget {
                    let t0 = Instant::now();
                    store.append(s, v, payload(v as usize + t))?;
                    lat.push(t0.elapsed().as_nanos() as u64);
                    v += 1;
                }
                Ok(lat)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.join().map_err(|_| "W3 thread panicked")??);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let row = format!(
        "W3 durable, {threads} thread{}",
        if threads == 1 { "" } else { "s" }
    );
    let name = engine.name();
    table.put(
        &row,
        "events",
        Unit::EventsPerSec,
        name,
        lat.len() as f64 / secs,
    );
    for (label, q) in [("p50", 0.50), ("p99", 0.99), ("p999", 0.999)] {
        table.put(&row, label, Unit::Seconds, name, percentile(&lat, q) / 1e9);
    }
    drop(store);
    Ok(())
}

/// The `q` quantile of sorted nanoseconds.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[i] as f64
}

/// What one W7 child reports.
#[derive(Debug, Clone, Copy)]
pub struct W7 {
    /// Appends per second.
    pub append_rate: f64,
    /// Random streams read per second.
    pub read_rate: f64,
    /// Peak resident memory of the process (VmHWM).
    pub peak_rss: u64,
}

/// W7 (run in a child process): `sizes.w7_streams` streams x 3 single
/// appends (no-fsync lane), then 10,000 random streams read.
pub fn w7(engine: &dyn Engine, sizes: Sizes) -> Result<W7> {
    let dir = tempfile::tempdir()?;
    let names = names(sizes.w7_streams);
    let store = engine.open(dir.path(), false)?;
    let n = names.len();
    let start = Instant::now();
    for i in 0..3 * n {
        store.append(stream(&names, i % n), (i / n) as u64, payload(i))?;
    }
    store.sync()?;
    let append_rate = (3 * n) as f64 / start.elapsed().as_secs_f64();
    // A fixed-seed LCG: the same "random" streams for every engine.
    let mut x: u64 = 42;
    let ids: Vec<usize> = (0..W7_READS)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) as usize) % n
        })
        .collect();
    let (read, secs) = read_streams(
        &*store,
        &names,
        &ids,
        3,
        sizes.budget.max(Duration::from_secs(2)),
    )?;
    let peak_rss = peak_rss()?;
    store.close()?;
    Ok(W7 {
        append_rate,
        read_rate: read as f64 / secs,
        peak_rss,
    })
}

/// VmHWM of this process, in bytes.
fn peak_rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// Fails when a read saw the wrong number of events.
fn check(engine: &str, what: &str, got: u64, want: u64) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{engine} {what}: read {got} events, expected {want}").into())
    }
}

/// `1000000` -> `1M`, `100000` -> `100k`.
pub fn count(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}
