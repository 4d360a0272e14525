//! `seglog info DIR`: what is in a log, from its segments' headers and
//! time indexes and its streams' versions, never a walk of its events:
//! the answer costs the same for a thousand events as for ten million.

use clap::Args;
use seglog::inspect::{ConsumerInfo, LogInfo};
use seglog::{Digest, Reader};
use serde_json::json;

use crate::consumers::consumer_json;
use crate::failure::Failure;
use crate::out::{Out, Paint, Table, units};

use super::LogArgs;

// The flags of `seglog info` (its help is the variant's doc comment in
// main.rs).
#[derive(Args)]
pub(crate) struct InfoCommand {
    #[command(flatten)]
    log: LogArgs,
}

impl InfoCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        let reader = self.log.open()?;
        let failed = |e| Failure::from_log(&self.log.dir, e);
        let info = reader.info().map_err(failed)?;
        let digest = reader.digest().map_err(failed)?;
        let consumers = reader.consumers().map_err(failed)?;
        if out.json() {
            out.object(&to_json(&reader, &info, &digest, &consumers))
        } else {
            print(out, &reader, &info, &digest)?;
            print_consumers(out, &consumers)
        }
    }
}

fn time_range(first: Option<u64>, last: Option<u64>) -> String {
    match (first, last) {
        (Some(first), Some(last)) => format!("{} .. {}", units::time(first), units::time(last)),
        _ => "no events".to_string(),
    }
}

fn print(out: &mut Out, reader: &Reader, info: &LogInfo, digest: &Digest) -> Result<(), Failure> {
    let used: u64 = info.segments.iter().map(|s| s.used_bytes).sum();
    let lines = [
        (
            "log",
            format!("{:032x}  {}", info.log_id, reader.dir().display()),
        ),
        ("positions", format!("{} .. {}", info.log_start, info.end)),
        (
            "events",
            format!(
                "{} in {} streams (appended; retention's removals counted)",
                units::count(info.events),
                units::count(info.streams)
            ),
        ),
        ("time", time_range(info.first_time_us, info.last_time_us)),
        ("chain", digest.to_string()),
        (
            "disk",
            format!(
                "{} ({} of events)",
                units::bytes(info.disk_bytes),
                units::bytes(used)
            ),
        ),
    ];
    for (name, value) in lines {
        out.line(&format!("{:<10} {value}", out.paint(name, Paint::Bold)))?;
    }
    out.line("")?;
    let mut table = Table::new(&[
        "segment",
        ">base",
        ">size",
        ">used",
        "sealed",
        "first event",
        "last event",
    ]);
    for s in &info.segments {
        let name = s
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        table.row(vec![
            name,
            s.base.to_string(),
            units::bytes(s.size_bytes),
            units::bytes(s.used_bytes),
            if s.sealed { "yes" } else { "no" }.to_string(),
            s.first_time_us.map_or_else(String::new, units::time),
            s.last_time_us.map_or_else(String::new, units::time),
        ]);
    }
    out.table(&table)
}

fn print_consumers(out: &mut Out, consumers: &[ConsumerInfo]) -> Result<(), Failure> {
    out.line("")?;
    crate::consumers::print(out, consumers)
}

fn to_json(
    reader: &Reader,
    info: &LogInfo,
    digest: &Digest,
    consumers: &[ConsumerInfo],
) -> serde_json::Value {
    let segments: Vec<serde_json::Value> = info
        .segments
        .iter()
        .map(|s| {
            json!({
                "path": s.path.display().to_string(),
                "base": s.base,
                "size_bytes": s.size_bytes,
                "used_bytes": s.used_bytes,
                "sealed": s.sealed,
                "first_time": s.first_time_us.map(units::time),
                "last_time": s.last_time_us.map(units::time),
            })
        })
        .collect();
    json!({
        "dir": reader.dir().display().to_string(),
        "log_id": format!("{:032x}", info.log_id),
        "log_start": info.log_start.to_string(),
        "end": info.end.to_string(),
        "events": info.events,
        "streams": info.streams,
        "first_time": info.first_time_us.map(units::time),
        "last_time": info.last_time_us.map(units::time),
        "chain_head": digest.to_string(),
        "disk_bytes": info.disk_bytes,
        "segments": segments,
        "consumers": consumers.iter().map(consumer_json).collect::<Vec<_>>(),
    })
}
