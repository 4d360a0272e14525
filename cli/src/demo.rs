//! `seglog demo`: append events over many streams, sync, replay them
//! (borrowed, then owned) and print the rates.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position, Preallocate};

use crate::args::{DurabilityArg, PreallocateArg};
use serde_json::json;

use crate::out::{bar, report};
use crate::workdir::with_dir;

// The flags of `seglog demo` (its help line is the variant's doc comment in
// main.rs; a doc comment here would replace it).
#[derive(Args)]
pub(crate) struct DemoCommand {
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
}

impl DemoCommand {
    /// Runs the demo in `--dir` or a temporary directory.
    pub(crate) fn run(self) -> Result<(), String> {
        let args = DemoArgs {
            events: self.events,
            streams: self.streams,
            payload: self.payload,
            batch: self.batch,
            durability: self.durability.to_option(),
            segment_bytes: self.segment_mib << 20,
            preallocate: self.preallocate.to_option(),
        };
        with_dir(self.dir, |dir| demo(dir, &args))
    }
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

/// What the three phases measured.
struct Rates {
    /// Append calls made.
    calls: u64,
    /// Appending every event, then one sync.
    append_time: Duration,
    /// Events the borrowed replay saw, and their payload bytes.
    seen: u64,
    bytes: u64,
    replay_time: Duration,
    /// Reading every event owned (`read_all`).
    owned_time: Duration,
}

fn demo(dir: &Path, args: &DemoArgs) -> Result<(), String> {
    run_demo(dir, args).map_err(|e| e.to_string())?
}

/// Runs the demo; `Ok(Err(..))` when the log read back differs from what was written.
fn run_demo(dir: &Path, args: &DemoArgs) -> seglog::Result<Result<(), String>> {
    let log = Options::new()
        .segment_size(args.segment_bytes)
        .durability(args.durability)
        .preallocate(args.preallocate)
        .open(dir)?;
    let (calls, append_time) = append(&log, args)?;
    let (seen, bytes, replay_time) = replay_borrowed(&log, args.events)?;
    let (owned, owned_time) = read_owned(&log)?;
    log.close()?;
    if seen != args.events || owned != bytes {
        return Ok(Err(format!(
            "replayed {seen} events ({owned} vs {bytes} payload bytes), expected {}",
            args.events
        )));
    }
    print_rates(
        args,
        &Rates {
            calls,
            append_time,
            seen,
            bytes,
            replay_time,
            owned_time,
        },
    );
    Ok(Ok(()))
}

/// Appends `args.events` events in calls of `args.batch`, round robin over
/// the streams, then syncs: returns the calls made and the time taken.
fn append(log: &Log, args: &DemoArgs) -> seglog::Result<(u64, Duration)> {
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
    Ok((call, append_time))
}

/// Replays the whole log through borrowed views: returns the events seen,
/// their payload bytes and the time taken.
fn replay_borrowed(log: &Log, events: u64) -> seglog::Result<(u64, u64, Duration)> {
    let progress = bar(events, "replay");
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
    Ok((seen, bytes, replay_time))
}

/// Reads the whole log as owned events: returns their payload bytes and
/// the time taken.
fn read_owned(log: &Log) -> seglog::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut owned = 0u64;
    for e in log.read_all(Position::START)? {
        owned += e?.payload().len() as u64;
    }
    Ok((owned, started.elapsed()))
}

fn print_rates(args: &DemoArgs, r: &Rates) {
    let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64();
    let gbs = |t: Duration| r.bytes as f64 / t.as_secs_f64() / 1e9;
    report(
        &format!(
            "appended {} events ({} B payload, {} per call, {} streams) in {:.3} s: {:.0} appends/s, {:.0} events/s",
            args.events,
            args.payload,
            args.batch.max(1),
            args.streams,
            r.append_time.as_secs_f64(),
            rate(r.calls, r.append_time),
            rate(args.events, r.append_time)
        ),
        json!({
            "phase": "append", "events": args.events, "payload_bytes": args.payload,
            "per_call": args.batch.max(1), "streams": args.streams,
            "seconds": r.append_time.as_secs_f64(),
            "appends_per_s": rate(r.calls, r.append_time),
            "events_per_s": rate(args.events, r.append_time),
        }),
    );
    for (phase, t) in [("borrowed", r.replay_time), ("owned", r.owned_time)] {
        report(
            &format!(
                "replayed ({phase}){} {} events in {:.3} s: {:.0} events/s, {:.2} GB/s of payload",
                if phase == "owned" { "   " } else { "" },
                r.seen,
                t.as_secs_f64(),
                rate(r.seen, t),
                gbs(t)
            ),
            json!({
                "phase": format!("replay_{phase}"), "events": r.seen,
                "seconds": t.as_secs_f64(), "events_per_s": rate(r.seen, t),
                "payload_gb_per_s": gbs(t),
            }),
        );
    }
}
