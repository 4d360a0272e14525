//! The `seglog` command-line tool: `seglog demo` appends a million events into
//! a temporary directory, syncs, replays them and prints the rates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use seglog::{Durability, EventData, ExpectedVersion, Options, Position, Preallocate};

#[derive(Parser)]
#[command(version, about = "seglog: an embedded append-only event log")]
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seglog: {e}");
            ExitCode::FAILURE
        }
    }
}
