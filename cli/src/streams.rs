//! `seglog streams`: many short streams. Append rounds over them, close,
//! reopen (timed), read a sample both ways, print counts, timings and the
//! process's memory; or, with `--reopen-only`, only open an existing log.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use seglog::{Durability, EventData, ExpectedVersion, Log, Options};

use crate::out::bar;
use serde_json::json;

use crate::out::report;
use crate::workdir::with_dir;

// The flags of `seglog streams` (its help line is the variant's doc comment
// in main.rs; a doc comment here would replace it).
#[derive(Args)]
pub(crate) struct StreamsCommand {
    /// Directory of the log (default: a temporary directory, removed
    /// after; required with `--reopen-only`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Number of streams.
    #[arg(long, default_value_t = 1_000_000)]
    streams: u64,
    /// Events per stream (each its own append).
    #[arg(long, default_value_t = 10)]
    events_per_stream: u64,
    /// Payload bytes per event.
    #[arg(long, default_value_t = 128)]
    payload: usize,
    /// Segment size in MiB (a power of two from 1 to 1024).
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Only open the existing log in `--dir`, read a few streams, print
    /// the figures: what `/usr/bin/time -v` should measure.
    #[arg(long)]
    reopen_only: bool,
    /// Streams to read back (spread over the range).
    #[arg(long, default_value_t = 8)]
    sample: u64,
}

impl StreamsCommand {
    /// Runs in `--dir` or a temporary directory; `--reopen-only` needs an
    /// existing `--dir`.
    pub(crate) fn run(self) -> Result<(), String> {
        let args = StreamsArgs {
            streams: self.streams,
            events_per_stream: self.events_per_stream,
            payload: self.payload,
            segment_bytes: self.segment_mib << 20,
            sample: self.sample,
        };
        let reopen_only = self.reopen_only;
        if reopen_only && self.dir.is_none() {
            Err("--reopen-only needs --dir (an existing log)".to_string())
        } else if reopen_only && !self.dir.as_ref().is_some_and(|d| d.is_dir()) {
            Err("--reopen-only: --dir is not an existing directory".to_string())
        } else {
            with_dir(self.dir, |d| streams(d, &args, reopen_only))
        }
    }
}

struct StreamsArgs {
    streams: u64,
    events_per_stream: u64,
    payload: usize,
    segment_bytes: u64,
    sample: u64,
}

fn stream_name(out: &mut String, i: u64) -> &str {
    out.clear();
    let _ = write!(out, "stream-{i}");
    out
}

/// This process's memory from `/proc/self/status`, in KiB: resident
/// (`VmRSS`), of which anonymous (`RssAnon`: the heap) and file-backed
/// (`RssFile`: mapped segment pages), and the peak (`VmHWM`). `None` off
/// Linux.
fn memory_kib() -> Option<[u64; 4]> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some([
        field("VmRSS:")?,
        field("RssAnon:")?,
        field("RssFile:")?,
        field("VmHWM:")?,
    ])
}

fn streams(dir: &Path, args: &StreamsArgs, reopen_only: bool) -> Result<(), String> {
    run_streams(dir, args, reopen_only).map_err(|e| e.to_string())?
}

/// Runs `seglog streams`; `Ok(Err(..))` when what is read back is not what
/// the arguments say was written.
fn run_streams(
    dir: &Path,
    args: &StreamsArgs,
    reopen_only: bool,
) -> seglog::Result<Result<(), String>> {
    let options = Options::new()
        .segment_size(args.segment_bytes)
        .durability(Durability::None);
    let streams = args.streams.max(1);
    if !reopen_only {
        append_rounds(options.clone(), dir, args, streams)?;
    }
    let log = reopen(options, dir)?;
    let count = log.stream_count() as u64;
    if count != streams {
        return Ok(Err(format!(
            "{count} streams in the log, expected {streams}"
        )));
    }
    if let Err(wrong) = read_sample(&log, args, streams)? {
        return Ok(Err(wrong));
    }
    print_memory(count);
    log.close()?;
    Ok(Ok(()))
}

/// Appends `args.events_per_stream` rounds of one event to each of
/// `streams` streams, closes the log and prints the rate.
fn append_rounds(
    options: Options,
    dir: &Path,
    args: &StreamsArgs,
    streams: u64,
) -> seglog::Result<()> {
    let total = streams * args.events_per_stream;
    let mut name = String::new();
    let log = options.open(dir)?;
    let event = [EventData::new("StreamEvent", vec![0xC3u8; args.payload])];
    let progress = bar(total, "append");
    let started = Instant::now();
    let mut appended = 0u64;
    for _ in 0..args.events_per_stream {
        for s in 0..streams {
            log.append(stream_name(&mut name, s), ExpectedVersion::Any, &event)?;
            appended += 1;
            if appended.is_multiple_of(65_536) {
                progress.set_position(appended);
            }
        }
    }
    let append_time = started.elapsed();
    progress.finish_and_clear();
    let started = Instant::now();
    log.close()?;
    let close_time = started.elapsed().as_secs_f64();
    let rate = total as f64 / append_time.as_secs_f64();
    report(
        &format!(
            "appended {total} events ({} B payload) over {streams} streams in {:.3} s: {rate:.0} appends/s; close {close_time:.3} s",
            args.payload,
            append_time.as_secs_f64(),
        ),
        json!({"phase": "append", "events": total, "payload_bytes": args.payload, "streams": streams,
               "seconds": append_time.as_secs_f64(), "appends_per_s": rate, "close_seconds": close_time}),
    );
    Ok(())
}

/// Opens the log in `dir` and prints how long that took and how many
/// streams it holds.
fn reopen(options: Options, dir: &Path) -> seglog::Result<Log> {
    let started = Instant::now();
    let log = options.open(dir)?;
    let open_time = started.elapsed();
    let ms = open_time.as_secs_f64() * 1e3;
    report(
        &format!(
            "reopened {} in {ms:.1} ms: {} streams",
            dir.display(),
            log.stream_count()
        ),
        json!({"phase": "reopen", "ms": ms, "streams": log.stream_count()}),
    );
    Ok(log)
}

/// Reads `args.sample` streams spread over the range (and the last), both
/// ways, and prints the time taken; `Ok(Err(..))` when a stream's versions
/// or `stream_version` are not what `args` says was written.
fn read_sample(log: &Log, args: &StreamsArgs, streams: u64) -> seglog::Result<Result<(), String>> {
    let mut name = String::new();
    let started = Instant::now();
    let mut read = 0u64;
    let step = (streams / args.sample.max(1)).max(1);
    let mut sample: Vec<u64> = (0..streams).step_by(step as usize).collect();
    sample.push(streams - 1);
    sample.dedup();
    for &s in &sample {
        let name = stream_name(&mut name, s);
        let forward: Vec<u64> = log
            .read_stream(name, 0)?
            .map(|e| e.map(|e| e.version()))
            .collect::<seglog::Result<_>>()?;
        let backward = log.read_stream_backward(name, u64::MAX)?.count() as u64;
        let want: Vec<u64> = (0..args.events_per_stream).collect();
        if forward != want || backward != args.events_per_stream {
            return Ok(Err(format!(
                "{name}: read versions {forward:?} forward and {backward} events backward, expected {} events",
                args.events_per_stream
            )));
        }
        if log.stream_version(name) != args.events_per_stream.checked_sub(1) {
            return Ok(Err(format!("{name}: wrong stream_version")));
        }
        read += forward.len() as u64 + backward;
    }
    let read_time = started.elapsed();
    let ms = read_time.as_secs_f64() * 1e3;
    report(
        &format!(
            "read {read} events of {} streams, both ways, in {ms:.3} ms",
            sample.len()
        ),
        json!({"phase": "read", "events": read, "streams": sample.len(), "ms": ms}),
    );
    Ok(Ok(()))
}

/// Prints this process's memory after the reopen and the reads, and the
/// heap per stream of the `count` streams.
fn print_memory(count: u64) {
    match memory_kib() {
        Some([rss, anon, file, peak]) => {
            let mib = |kib: u64| kib as f64 / 1024.0;
            let per_stream = anon as f64 * 1024.0 / count as f64;
            report(
                &format!(
                    "resident after reopen and reads: {:.1} MiB ({:.1} MiB heap = {per_stream:.0} bytes per stream, {:.1} MiB mapped segment pages); peak {:.1} MiB",
                    mib(rss),
                    mib(anon),
                    mib(file),
                    mib(peak),
                ),
                json!({"phase": "memory", "rss_mib": mib(rss), "heap_mib": mib(anon),
                       "heap_bytes_per_stream": per_stream, "mapped_mib": mib(file), "peak_mib": mib(peak)}),
            )
        }
        None => report("resident memory: unavailable", json!({"phase": "memory"})),
    }
}
