//! `seglog-compare`: runs the same workloads on seglog, a raw framed-file
//! baseline and peer engines (okaywal, fjall, redb, SQLite, commitlog), one
//! engine after another in one process, and prints medians beside their
//! ratio to the baseline. See `benches/compare/README.md`.
#![forbid(unsafe_code)]

mod engines;
mod limits;
mod table;
mod targets;
mod workloads;

use std::process::Command;

use clap::Parser;

use engines::{Engine, Result};
use table::{Table, Unit};
use workloads::Sizes;

/// Side-by-side comparison of seglog with peer engines.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Runs; each figure is the median over runs (each run = every engine once).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Multiplies event counts and durations (0.1 for a quick smoke run).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Seconds per W3 lane (and budget of time-bounded loops) at scale 1.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// How many of the runs also run W7 (about a minute per run at scale 1;
    /// default: every run, so its figures are medians like the others').
    #[arg(long)]
    w7_runs: Option<usize>,
    /// Comma-separated engines to run (default: all).
    #[arg(long, value_delimiter = ',')]
    engines: Vec<String>,
    /// Internal: run W7 for one engine and print its figures (child process).
    #[arg(long, hide = true)]
    w7_only: Option<String>,
}

/// W3's thread counts.
const W3_THREADS: [usize; 3] = [1, 4, 16];

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("seglog-compare: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let sizes = Sizes::new(args.scale, args.seconds);
    let all = engines::all();
    if let Some(name) = &args.w7_only {
        let engine = all
            .iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| format!("no engine {name}"))?;
        let r = workloads::w7(&**engine, sizes)?;
        // Parsed by the parent: see `w7_child`.
        println!("W7 {} {} {}", r.append_rate, r.read_rate, r.peak_rss);
        return Ok(());
    }
    let engines: Vec<&dyn Engine> = all
        .iter()
        .map(|e| &**e)
        .filter(|e| args.engines.is_empty() || args.engines.iter().any(|n| n == e.name()))
        .collect();
    if args.runs == 0 || engines.is_empty() {
        return Err("nothing to run".into());
    }
    let probe = tempfile::tempdir()?;
    let limits = limits::measure(probe.path(), args.scale)?;
    limits.print();
    drop(probe);
    print_setup(&args, sizes, &engines);

    let mut table = Table::new(args.runs, engines.iter().map(|e| e.name()).collect());
    for run in 0..args.runs {
        one_run(run, &args, sizes, &engines, &mut table);
    }
    table.note(
        "fjall and redb replay (W4) iterate in key order (stream, version), not commit order"
            .to_string(),
    );
    table.print();
    let scanners: Vec<&str> = engines
        .iter()
        .filter(|e| e.scans_for_streams())
        .map(|e| e.name())
        .collect();
    let caveat = targets::caveat(args.runs, args.scale, engines.len(), all.len());
    targets::print(&table, &scanners, limits.memcpy, caveat);
    Ok(())
}

/// Prints the workloads' sizes and each engine's setup.
fn print_setup(args: &Args, sizes: Sizes, engines: &[&dyn Engine]) {
    println!(
        "\nworkloads: {} events of {} B over {} streams (W1/W2/W4-W6), W3 {:.1} s per lane, \
         W7 {} streams x 3; {} run(s), scale {}",
        workloads::count(sizes.events),
        workloads::PAYLOAD_BYTES,
        workloads::STREAMS,
        sizes.budget.as_secs_f64(),
        workloads::count(sizes.w7_streams),
        args.runs,
        args.scale
    );
    println!("\nengines:");
    for e in engines {
        println!("  {:<10} {}", e.name(), e.setup());
    }
}

/// Run `run`: every workload on every engine once, into `table`.
fn one_run(run: usize, args: &Args, sizes: Sizes, engines: &[&dyn Engine], table: &mut Table) {
    let names = workloads::names(workloads::STREAMS);
    table.start_run(run);
    // Rotate the order each run so drift (page cache, writeback) does
    // not always hit the same engine.
    let mut order = engines.to_vec();
    order.rotate_left(run % engines.len());
    eprintln!("run {}/{}", run + 1, args.runs);
    for e in &order {
        step(
            e,
            "W1/W4-W6",
            workloads::w1_w4_w5_w6(*e, sizes, &names, table),
        );
    }
    for e in &order {
        step(e, "W2", workloads::w2(*e, sizes, &names, table));
    }
    for threads in W3_THREADS {
        for e in order.iter().filter(|e| e.has_durable_lane()) {
            step(e, "W3", workloads::w3(*e, threads, sizes, &names, table));
        }
    }
    if run < args.w7_runs.unwrap_or(args.runs) {
        for e in &order {
            w7_step(*e, args, sizes, table);
        }
    }
    for e in engines.iter().filter(|e| !e.has_durable_lane()) {
        table.note(format!(
            "{}: no durable lane (its flush does not fsync), left out of W3",
            e.name()
        ));
    }
}

/// W7 for `engine`, in a child process, into `table`; or a note why not.
fn w7_step(engine: &dyn Engine, args: &Args, sizes: Sizes, table: &mut Table) {
    if engine.always_syncs() {
        table.note(format!(
            "{}: W7 left out (a commit always fsyncs: 3 x {} single appends would \
             take far too long)",
            engine.name(),
            workloads::count(sizes.w7_streams)
        ));
        return;
    }
    let r = w7_child(engine.name(), args).map(|r| {
        let w7 = format!("W7 {} streams x 3", workloads::count(sizes.w7_streams));
        table.put(
            &w7,
            "append",
            Unit::EventsPerSec,
            engine.name(),
            r.append_rate,
        );
        table.put(
            &w7,
            workloads::W7_READ_METRIC,
            Unit::StreamsPerSec,
            engine.name(),
            r.read_rate,
        );
        table.put(
            &w7,
            "peak RSS",
            Unit::Bytes,
            engine.name(),
            r.peak_rss as f64,
        );
    });
    step(&engine, "W7", r);
}

/// Reports a failed step on stderr and goes on: one engine's failure must
/// not lose the others' figures.
fn step(engine: &&dyn Engine, what: &str, result: Result<()>) {
    if let Err(e) = result {
        eprintln!("{} {what} failed: {e}", engine.name());
    }
}

/// Runs W7 for `engine` in a child process of this binary, so its peak RSS
/// is the engine's alone.
fn w7_child(engine: &str, args: &Args) -> Result<workloads::W7> {
    let out = Command::new(std::env::current_exe()?)
        .args(["--w7-only", engine])
        .args(["--scale", &args.scale.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("child failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("W7 "))
        .ok_or("child printed no W7 line")?;
    let f: Vec<f64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()?;
    match f[..] {
        [append_rate, read_rate, peak_rss] => Ok(workloads::W7 {
            append_rate,
            read_rate,
            peak_rss: peak_rss as u64,
        }),
        _ => Err(format!("bad W7 line: {line}").into()),
    }
}
