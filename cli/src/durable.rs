//! `seglog durable`: durable appends (`Durability::Sync`) from several
//! thread counts, one run after another: events/s and latency percentiles.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use seglog::{EventData, ExpectedVersion, Log, Options, Preallocate};

use crate::args::PreallocateArg;
use serde_json::json;

use crate::out::report;
use crate::workdir::with_dir;

// The flags of `seglog durable` (its help line is the variant's doc comment
// in main.rs; a doc comment here would replace it).
#[derive(Args)]
pub(crate) struct DurableCommand {
    /// Directory to create the logs under (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Thread counts to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16")]
    threads: Vec<usize>,
    /// Seconds per run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 128)]
    payload: usize,
    /// How new segments reserve their blocks.
    #[arg(long, value_enum, default_value_t = PreallocateArg::Fallocate)]
    preallocate: PreallocateArg,
}

impl DurableCommand {
    /// Runs every thread count under `--dir` or a temporary directory.
    pub(crate) fn run(self) -> Result<(), String> {
        with_dir(self.dir, |root| {
            durable(
                root,
                &self.threads,
                self.seconds,
                self.payload,
                self.preallocate.to_option(),
            )
        })
    }
}

/// The latency at quantile `q` of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn durable(
    root: &Path,
    threads: &[usize],
    seconds: f64,
    payload: usize,
    preallocate: Preallocate,
) -> Result<(), String> {
    report(
        &format!(
            "durable appends of {payload} B events, Durability::Sync, {preallocate:?}, {seconds} s per run\n\
             threads   events/s   p50 us   p99 us  p999 us"
        ),
        json!({"payload_bytes": payload, "preallocate": format!("{preallocate:?}"), "seconds": seconds}),
    );
    let payload = Bytes::from(vec![0x3Cu8; payload]);
    for &n in threads {
        let dir = root.join(format!("durable-{n}"));
        let log = Options::new()
            .preallocate(preallocate)
            .open(&dir)
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let per_thread = append_until(&log, n, deadline, &payload);
        let elapsed = started.elapsed();
        let mut all = Vec::new();
        for latencies in per_thread {
            all.extend(latencies.map_err(|e| e.to_string())?);
        }
        log.close().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        all.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let events_per_s = all.len() as f64 / elapsed.as_secs_f64();
        let [p50, p99, p999] = [0.50, 0.99, 0.999].map(|q| us(quantile(&all, q)));
        report(
            &format!("{n:>7} {events_per_s:>10.0} {p50:>8.0} {p99:>8.0} {p999:>8.0}"),
            json!({"threads": n, "events_per_s": events_per_s, "p50_us": p50, "p99_us": p99, "p999_us": p999}),
        );
    }
    Ok(())
}

/// Appends from `threads` threads (at least one), each to a stream of its
/// own, until `deadline`: each thread's append latencies, or its error.
fn append_until(
    log: &Log,
    threads: usize,
    deadline: Instant,
    payload: &Bytes,
) -> Vec<seglog::Result<Vec<Duration>>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|t| {
                let payload = payload.clone();
                s.spawn(move || {
                    let stream = format!("thread-{t}");
                    let event = [EventData::new("DurableEvent", payload)];
                    let mut latencies = Vec::new();
                    while Instant::now() < deadline {
                        let at = Instant::now();
                        log.append(&stream, ExpectedVersion::Any, &event)?;
                        latencies.push(at.elapsed());
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    })
}
