//! The `seglog` command-line tool: `seglog demo` appends a million events into
//! a temporary directory, syncs, replays them and prints the rates;
//! `seglog durable` measures durable appends; `seglog streams` builds a log of
//! many short streams, reopens it and reads a few (with `--reopen-only`, it
//! only opens an existing log: run it under `/usr/bin/time -v` to measure the
//! resident memory of a reopened log).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use seglog::{Durability, EventData, ExpectedVersion, Options, Position, Preallocate};

#[derive(Parser)]
#[command(
    name = "seglog",
    version,
    about = "seglog: an embedded append-only event log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    /// Acknowledge after each group's sync.
    Sync,
    /// Sync every 10 ms in the background.
    Periodic,
    /// Let the OS write back; one sync at the end.
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum PreallocateArg {
    /// fallocate(2): cheap to create.
    Fallocate,
    /// Write zeros ahead of the writer.
    ZeroFill,
}

#[derive(Subcommand)]
enum Command {
    /// Append events over many streams, sync, replay them, print the rates.
    Demo {
        /// Directory of the log (default: a temporary directory, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Events to append.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Streams the events are spread over (round robin).
        #[arg(long, default_value_t = 1_000)]
        streams: u64,
        /// Payload bytes per event.
        #[arg(long, default_value_t = 128)]
        payload: usize,
        /// Events per append call.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// When appends are acknowledged.
        #[arg(long, value_enum, default_value_t = DurabilityArg::None)]
        durability: DurabilityArg,
        /// Segment size in MiB (a power of two from 1 to 1024).
        #[arg(long, default_value_t = 64)]
        segment_mib: u64,
        /// How new segments reserve their blocks.
        #[arg(long, value_enum, default_value_t = PreallocateArg::Fallocate)]
        preallocate: PreallocateArg,
    },
    /// Durable appends (Durability::Sync) from several thread counts: events/s
    /// and append latency percentiles, one run after another.
    Durable {
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
    },
    /// Many short streams: append `--events-per-stream` rounds over
    /// `--streams` streams (one event per append, round robin,
    /// Durability::None), close, reopen (timed), read a few streams, print
    /// counts, timings and memory. `--reopen-only` skips the append phase
    /// and opens an existing `--dir`.
    Streams {
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
    },
}

impl PreallocateArg {
    fn to_option(self) -> Preallocate {
        match self {
            PreallocateArg::Fallocate => Preallocate::Fallocate,
            PreallocateArg::ZeroFill => Preallocate::ZeroFill,
        }
    }
}

/// The latency at quantile `q` of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn durable(
    root: &std::path::Path,
    threads: &[usize],
    seconds: f64,
    payload: usize,
    preallocate: Preallocate,
) -> Result<(), String> {
    println!(
        "durable appends of {payload} B events, Durability::Sync, {preallocate:?}, {seconds} s per run"
    );
    println!("threads   events/s   p50 us   p99 us  p999 us");
    let payload = bytes::Bytes::from(vec![0x3Cu8; payload]);
    for &n in threads {
        let dir = root.join(format!("durable-{n}"));
        let log = Options::new()
            .preallocate(preallocate)
            .open(&dir)
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let per_thread: Vec<seglog::Result<Vec<Duration>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n.max(1))
                .map(|t| {
                    let log = &log;
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
        });
        let elapsed = started.elapsed();
        let mut all = Vec::new();
        for latencies in per_thread {
            all.extend(latencies.map_err(|e| e.to_string())?);
        }
        log.close().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        all.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{n:>7} {:>10.0} {:>8.0} {:>8.0} {:>8.0}",
            all.len() as f64 / elapsed.as_secs_f64(),
            us(quantile(&all, 0.50)),
            us(quantile(&all, 0.99)),
            us(quantile(&all, 0.999)),
        );
    }
    Ok(())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

struct DemoArgs {
    events: u64,
    streams: u64,
    payload: usize,
    batch: usize,
    durability: Durability,
    segment_bytes: u64,
    preallocate: Preallocate,
}

fn demo(dir: &std::path::Path, args: &DemoArgs) -> Result<(), String> {
    run_demo(dir, args).map_err(|e| e.to_string())?
}

/// Runs the demo; `Ok(Err(..))` when the log read back differs from what was written.
fn run_demo(dir: &std::path::Path, args: &DemoArgs) -> seglog::Result<Result<(), String>> {
    let log = Options::new()
        .segment_size(args.segment_bytes)
        .durability(args.durability)
        .preallocate(args.preallocate)
        .open(dir)?;
    let payload = bytes::Bytes::from(vec![0xA5u8; args.payload]);
    let names: Vec<String> = (0..args.streams.max(1))
        .map(|i| format!("stream-{i}"))
        .collect();
    let progress = bar(args.events, "append");
    let batch = args.batch.max(1);
    let started = Instant::now();
    let mut appended = 0u64;
    let mut call = 0u64;
    let mut events = Vec::with_capacity(batch);
    while appended < args.events {
        let n = batch.min((args.events - appended) as usize);
        events.clear();
        events.extend((0..n).map(|_| EventData::new("DemoEvent", payload.clone())));
        let stream = &names[(call % names.len() as u64) as usize];
        log.append(stream, ExpectedVersion::Any, &events)?;
        appended += n as u64;
        call += 1;
        if call.is_multiple_of(4096) {
            progress.set_position(appended);
        }
    }
    log.sync()?;
    let append_time = started.elapsed();
    progress.finish_and_clear();

    let progress = bar(args.events, "replay");
    let started = Instant::now();
    let mut seen = 0u64;
    let mut bytes = 0u64;
    log.replay(Position::START, |e| {
        seen += 1;
        bytes += e.payload().len() as u64;
        if seen.is_multiple_of(65_536) {
            progress.set_position(seen);
        }
    })?;
    let replay_time = started.elapsed();
    progress.finish_and_clear();

    let started = Instant::now();
    let mut owned = 0u64;
    for e in log.read_all(Position::START)? {
        owned += e?.payload().len() as u64;
    }
    let owned_time = started.elapsed();
    log.close()?;
    if seen != args.events || owned != bytes {
        return Ok(Err(format!(
            "replayed {seen} events ({owned} vs {bytes} payload bytes), expected {}",
            args.events
        )));
    }
    let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64();
    let gbs = |t: Duration| bytes as f64 / t.as_secs_f64() / 1e9;
    println!(
        "appended {} events ({} B payload, {} per call, {} streams) in {:.3} s: {:.0} appends/s, {:.0} events/s",
        args.events,
        args.payload,
        batch,
        args.streams,
        append_time.as_secs_f64(),
        rate(call, append_time),
        rate(args.events, append_time)
    );
    println!(
        "replayed (borrowed) {} events in {:.3} s: {:.0} events/s, {:.2} GB/s of payload",
        seen,
        replay_time.as_secs_f64(),
        rate(seen, replay_time),
        gbs(replay_time)
    );
    println!(
        "replayed (owned)    {} events in {:.3} s: {:.0} events/s, {:.2} GB/s of payload",
        seen,
        owned_time.as_secs_f64(),
        rate(seen, owned_time),
        gbs(owned_time)
    );
    Ok(Ok(()))
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

fn streams(dir: &std::path::Path, args: &StreamsArgs, reopen_only: bool) -> Result<(), String> {
    run_streams(dir, args, reopen_only).map_err(|e| e.to_string())?
}

/// Runs `seglog streams`; `Ok(Err(..))` when what is read back is not what
/// the arguments say was written.
fn run_streams(
    dir: &std::path::Path,
    args: &StreamsArgs,
    reopen_only: bool,
) -> seglog::Result<Result<(), String>> {
    let options = Options::new()
        .segment_size(args.segment_bytes)
        .durability(Durability::None);
    let streams = args.streams.max(1);
    let total = streams * args.events_per_stream;
    let mut name = String::new();
    if !reopen_only {
        let log = options.clone().open(dir)?;
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
        println!(
            "appended {total} events ({} B payload) over {streams} streams in {:.3} s: {:.0} appends/s; close {:.3} s",
            args.payload,
            append_time.as_secs_f64(),
            total as f64 / append_time.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }

    let started = Instant::now();
    let log = options.open(dir)?;
    let open_time = started.elapsed();
    let count = log.stream_count() as u64;
    println!(
        "reopened {} in {:.1} ms: {count} streams",
        dir.display(),
        open_time.as_secs_f64() * 1e3
    );
    if count != streams {
        return Ok(Err(format!(
            "{count} streams in the log, expected {streams}"
        )));
    }
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
    println!(
        "read {read} events of {} streams, both ways, in {:.3} ms",
        sample.len(),
        read_time.as_secs_f64() * 1e3
    );
    match memory_kib() {
        Some([rss, anon, file, peak]) => {
            let mib = |kib: u64| kib as f64 / 1024.0;
            println!(
                "resident after reopen and reads: {:.1} MiB ({:.1} MiB heap = {:.0} bytes per stream, {:.1} MiB mapped segment pages); peak {:.1} MiB",
                mib(rss),
                mib(anon),
                anon as f64 * 1024.0 / count as f64,
                mib(file),
                mib(peak),
            )
        }
        None => println!("resident memory: unavailable"),
    }
    log.close()?;
    Ok(Ok(()))
}

fn with_dir(
    dir: Option<PathBuf>,
    run: impl FnOnce(&std::path::Path) -> Result<(), String>,
) -> Result<(), String> {
    match dir {
        Some(dir) => run(&dir),
        None => tempfile::tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))
            .and_then(|tmp| run(tmp.path())),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo {
            dir,
            events,
            streams,
            payload,
            batch,
            durability,
            segment_mib,
            preallocate,
        } => {
            let args = DemoArgs {
                events,
                streams,
                payload,
                batch,
                durability: match durability {
                    DurabilityArg::Sync => Durability::Sync,
                    DurabilityArg::Periodic => Durability::Periodic(Duration::from_millis(10)),
                    DurabilityArg::None => Durability::None,
                },
                segment_bytes: segment_mib << 20,
                preallocate: preallocate.to_option(),
            };
            match dir {
                Some(dir) => demo(&dir, &args),
                None => tempfile::tempdir()
                    .map_err(|e| format!("cannot create a temporary directory: {e}"))
                    .and_then(|tmp| demo(tmp.path(), &args)),
            }
        }
        Command::Durable {
            dir,
            threads,
            seconds,
            payload,
            preallocate,
        } => {
            let run = |root: &std::path::Path| {
                durable(root, &threads, seconds, payload, preallocate.to_option())
            };
            match dir {
                Some(dir) => run(&dir),
                None => tempfile::tempdir()
                    .map_err(|e| format!("cannot create a temporary directory: {e}"))
                    .and_then(|tmp| run(tmp.path())),
            }
        }
        Command::Streams {
            dir,
            streams: stream_count,
            events_per_stream,
            payload,
            segment_mib,
            reopen_only,
            sample,
        } => {
            let args = StreamsArgs {
                streams: stream_count,
                events_per_stream,
                payload,
                segment_bytes: segment_mib << 20,
                sample,
            };
            if reopen_only && dir.is_none() {
                Err("--reopen-only needs --dir (an existing log)".to_string())
            } else if reopen_only && !dir.as_ref().is_some_and(|d| d.is_dir()) {
                Err("--reopen-only: --dir is not an existing directory".to_string())
            } else {
                with_dir(dir, |d| streams(d, &args, reopen_only))
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seglog: {e}");
            ExitCode::FAILURE
        }
    }
}
