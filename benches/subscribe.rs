//! Append-to-delivery latency of a `$all` subscriber waiting at the head.
//!
//! One thread appends single 128-byte events, one at a time, and waits for
//! the subscriber thread to report each before it appends the next
//! (ping-pong: no queue builds up, so what is measured is latency, not
//! backlog). The event carries the time just before its `append` as
//! nanoseconds since an `Instant` both threads share; the subscriber
//! subtracts it from the time the subscription handed the event out.
//!
//! Four runs, each over its own temporary log:
//! - `none_append_to_delivery`: `Durability::None`, published by the
//!   append itself, which also wakes the waiting subscriber;
//! - `none_append_only`: the same with no subscriber, to show what that
//!   wake adds to the append;
//! - `sync_append_to_delivery`: `Durability::Sync`, published by the sync
//!   thread once the frame is on disk;
//! - `sync_append_only`: `Durability::Sync` with no subscriber, the fsync
//!   latency alone, to judge whether delivery comes within one group
//!   commit of the fsync.
//!
//! Criterion times one iteration as "append, then wait for the subscriber's
//! report" (just the append for the `_append_only` runs). After the group,
//! p50/p99/p999/max of every event timed (warm-up included) are printed:
//! append to delivery, and append to the append's return.
//!
//! Run: `cargo bench --bench subscribe` (about 25 s once built).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_channel::Receiver;
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};

/// Payload size, as in `benches/core.rs`; the first 8 bytes carry the stamp.
const PAYLOAD_BYTES: usize = 128;

/// A log, and for the delivery runs a subscriber thread at its head that
/// sends back each event's append-to-delivery latency.
struct Rig {
    _dir: tempfile::TempDir,
    log: Log,
    /// The common time base of the timestamps in the payloads.
    base: Instant,
    subscriber: Option<(Receiver<Duration>, JoinHandle<()>)>,
}

/// Latencies of every event of a run, in nanoseconds: 4 bytes a sample
/// keeps the millions of `none_append_only` small and quick to sort.
#[derive(Default)]
struct Timings {
    /// From just before `append` to the subscriber holding the event.
    delivered: Vec<u32>,
    /// From just before `append` to its return.
    returned: Vec<u32>,
    /// Events the subscriber held before their append had returned.
    delivered_first: usize,
}

impl Rig {
    /// A fresh log under `durability`, with a subscriber at its (empty)
    /// head if `subscribe`.
    fn new(durability: Durability, subscribe: bool) -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Options::new()
            .durability(durability)
            .open(dir.path())
            .expect("open");
        let base = Instant::now();
        let subscriber = subscribe.then(|| {
            let sub = log.subscribe_all(Position::START).expect("subscribe");
            // Capacity 1 is enough: the appender waits for each report.
            let (report, reports) = crossbeam_channel::bounded(1);
            let thread = std::thread::spawn(move || {
                // The blocking iterator: it waits at the head and ends when
                // the log is closed.
                for e in sub {
                    let got = base.elapsed();
                    let stamp = e.expect("event").payload()[..8]
                        .try_into()
                        .expect("8 bytes");
                    let sent = Duration::from_nanos(u64::from_le_bytes(stamp));
                    if report.send(got.saturating_sub(sent)).is_err() {
                        return;
                    }
                }
            });
            (reports, thread)
        });
        Rig {
            _dir: dir,
            log,
            base,
            subscriber,
        }
    }

    /// Appends one event stamped with the time just before the call, then
    /// waits for the subscriber's report of it, if there is a subscriber.
    fn ping(&self, timings: &mut Timings) {
        let mut payload = [0x5Au8; PAYLOAD_BYTES];
        let sent = self.base.elapsed();
        // Nanoseconds since `base` fit a u64 for 584 years.
        payload[..8].copy_from_slice(&(sent.as_nanos() as u64).to_le_bytes());
        let event = [EventData::new("Ping", Bytes::copy_from_slice(&payload))];
        self.log
            .append("ping", ExpectedVersion::Any, &event)
            .expect("append");
        let returned = ns(self.base.elapsed() - sent);
        timings.returned.push(returned);
        if let Some((reports, _)) = &self.subscriber {
            let delivered = ns(reports.recv().expect("the subscriber's report"));
            timings.delivered.push(delivered);
            timings.delivered_first += usize::from(delivered < returned);
        }
    }

    /// Closes the log, which ends the subscriber's iterator.
    fn close(self) {
        self.log.close().expect("close");
        if let Some((_, thread)) = self.subscriber {
            thread.join().expect("subscriber");
        }
    }
}

/// Nanoseconds, saturating at 4.29 s: no latency here comes near.
fn ns(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// The latency at quantile `q` of sorted `samples`, in microseconds.
fn quantile_us(sorted: &[u32], q: f64) -> f64 {
    let at = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    f64::from(sorted.get(at).copied().unwrap_or_default()) / 1e3
}

/// The four runs, then their percentiles.
fn append_to_delivery(c: &mut Criterion) {
    let mut group = c.benchmark_group("subscribe_latency_128B");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    // Seconds of measurement: the fsync runs get more, for their p999.
    let runs = [
        ("none_append_to_delivery", Durability::None, true, 2),
        ("none_append_only", Durability::None, false, 2),
        ("sync_append_to_delivery", Durability::Sync, true, 5),
        ("sync_append_only", Durability::Sync, false, 5),
    ];
    let mut report = Vec::new();
    for (name, durability, subscribe, seconds) in runs {
        group.measurement_time(Duration::from_secs(seconds));
        // One log and one subscriber for every sample: set up once, so the
        // subscriber is waiting at the head as it would in service.
        let rig = Rig::new(durability, subscribe);
        let mut timings = Timings::default();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    rig.ping(&mut timings);
                }
                started.elapsed()
            });
        });
        rig.close();
        timings.delivered.sort_unstable();
        timings.returned.sort_unstable();
        report.push((name, timings));
    }
    group.finish();

    println!("subscribe_latency_128B, every event timed (warm-up included), microseconds:");
    println!(
        "{:<24} {:<20} {:>7} {:>8} {:>8} {:>8} {:>9}",
        "run", "from append to", "events", "p50", "p99", "p999", "max"
    );
    for (name, timings) in &report {
        for (what, sorted) in [
            ("delivery", &timings.delivered),
            ("append's return", &timings.returned),
        ] {
            if sorted.is_empty() {
                continue;
            }
            let us = |q| quantile_us(sorted, q);
            println!(
                "{name:<24} {what:<20} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>9.1}",
                sorted.len(),
                us(0.5),
                us(0.99),
                us(0.999),
                us(1.0)
            );
        }
        if !timings.delivered.is_empty() {
            println!(
                "{name:<24} delivered before the append returned: {} of {}",
                timings.delivered_first,
                timings.delivered.len()
            );
        }
    }
}

criterion_group! {
    name = benches;
    // The percentiles printed after the group are the result; criterion's
    // plots of the ping-pong's mean would double the run time.
    config = Criterion::default().without_plots();
    targets = append_to_delivery
}
criterion_main!(benches);
