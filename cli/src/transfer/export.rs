//! `seglog export DIR`: the log's events as JSON lines (`line.rs`), read
//! through a `Reader` so it runs beside the service that writes the log
//! and changes nothing. It stops at the end the log had when it started,
//! and says where that is (`next`), so the next export continues there
//! with `--from`. The engine's `$audit` stream is left out unless asked
//! for (it records what happened to this log, not to its streams); the
//! deletions in `$streams` are kept, for an import to apply them again.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use seglog::{AUDIT_STREAM, Error, Position, ReadStream, Reader, RecordedEvent};
use serde_json::json;

use crate::failure::Failure;
use crate::inspect::LogArgs;
use crate::out::{Out, Progress, units};

use super::line;

/// Bytes buffered before a write to the output: few syscalls per event.
const OUTPUT_BUFFER_BYTES: usize = 1 << 20;

/// Events between two updates of the progress bar.
const PROGRESS_EVERY: u64 = 1024;

// The flags of `seglog export` (its help is the variant's doc comment in
// main.rs).
#[derive(Args)]
pub(crate) struct ExportCommand {
    #[command(flatten)]
    log: LogArgs,
    /// Start at this position (`OFFSET:INDEX`, as printed) or at the first
    /// event committed at or after this time (RFC 3339); default: the
    /// log's start.
    #[arg(long, value_name = "POSITION|TIME", value_parser = units::parse_from)]
    from: Option<units::From>,
    /// Only the events of this stream.
    #[arg(long, value_name = "NAME")]
    stream: Option<String>,
    /// Write the lines to FILE (created or replaced, synced at the end)
    /// and print a summary; default: the lines on stdout, no summary.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Export the engine's record of what it did to this log ($audit:
    /// retention runs, forgotten keys) too; an import skips it. The
    /// deletions of $streams are always exported: an import applies them.
    #[arg(long)]
    include_system: bool,
}

/// What an export wrote.
#[derive(Default)]
struct Written {
    events: u64,
    streams: HashSet<Box<str>>,
    bytes: u64,
    audit_skipped: u64,
}

/// Where the lines go, counting the bytes.
struct Sink {
    w: BufWriter<Box<dyn Write>>,
    file: Option<File>,
    bytes: u64,
    /// One line, built whole and handed to `w` in one write: the writer
    /// behind `w` is dynamic, and a call per field cost more than the
    /// encoding did.
    line: Vec<u8>,
}

impl ExportCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        let reader = self.log.open()?;
        let dir = &self.log.dir;
        let end = reader.refresh().map_err(|e| Failure::from_log(dir, e))?;
        let start = match self.from {
            None => reader.log_start(),
            Some(units::From::Position(p)) => p,
            Some(units::From::Time(t)) => reader
                .position_at(t)
                .map_err(|e| Failure::from_log(dir, e))?,
        };
        let mut sink = self.sink()?;
        let written = self.write(&reader, start, end, &mut sink)?;
        sink.finish()?;
        if let Some(file) = &self.output {
            summary(out, file, &written, start, end)?;
        }
        Ok(())
    }

    /// The output: FILE, or stdout.
    fn sink(&self) -> Result<Sink, Failure> {
        let (w, file): (Box<dyn Write>, _) = match &self.output {
            None => (Box::new(io::stdout().lock()), None),
            Some(path) => {
                let file = File::create(path).map_err(|e| {
                    Failure::failed(format!("cannot create {}: {e}", path.display()))
                })?;
                let copy = file.try_clone().map_err(|e| {
                    Failure::failed(format!("cannot write {}: {e}", path.display()))
                })?;
                (Box::new(copy), Some(file))
            }
        };
        Ok(Sink {
            w: BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, w),
            file,
            bytes: 0,
            line: Vec::new(),
        })
    }

    /// Writes the events from `start` up to `end` that the flags ask for.
    fn write(
        &self,
        reader: &Reader,
        start: Position,
        end: Position,
        sink: &mut Sink,
    ) -> Result<Written, Failure> {
        let dir = &self.log.dir;
        let events: Box<dyn Iterator<Item = seglog::Result<RecordedEvent>>> = match &self.stream {
            Some(name) => Box::new(stream_events(reader, name)?),
            None => Box::new(
                reader
                    .read_all(start)
                    .map_err(|e| Failure::from_log(dir, e))?,
            ),
        };
        let span = end.frame_offset().saturating_sub(start.frame_offset());
        let mut progress = Progress::new(span, "export");
        let mut written = Written::default();
        let mut scratch = line::Scratch::default();
        for event in events {
            let event = event.map_err(|e| Failure::from_log(dir, e))?;
            let at = event.position();
            if at >= end {
                break;
            }
            if at < start {
                continue;
            }
            if self.stream.is_none() && !self.include_system && event.stream() == AUDIT_STREAM {
                written.audit_skipped += 1;
                continue;
            }
            sink.event(&event, &mut scratch)?;
            written.events += 1;
            if !written.streams.contains(event.stream()) {
                written.streams.insert(event.stream().into());
            }
            if written.events.is_multiple_of(PROGRESS_EVERY) {
                progress.set(at.frame_offset().saturating_sub(start.frame_offset()));
            }
        }
        progress.finish();
        written.bytes = sink.bytes;
        Ok(written)
    }
}

/// The events of stream `name`, from its first version the log still
/// holds (retention may have removed earlier ones).
fn stream_events(reader: &Reader, name: &str) -> Result<ReadStream, Failure> {
    let dir = reader.dir();
    match reader.read_stream(name, 0) {
        Err(Error::StreamBeforeLogStart { first_version, .. }) => reader
            .read_stream(name, first_version)
            .map_err(|e| Failure::from_log(dir, e)),
        other => other.map_err(|e| Failure::from_log(dir, e)),
    }
}

impl Sink {
    /// One event's line.
    fn event(&mut self, event: &RecordedEvent, scratch: &mut line::Scratch) -> Result<(), Failure> {
        self.line.clear();
        line::encode(&mut self.line, event, scratch).map_err(Failure::output)?;
        self.w.write_all(&self.line).map_err(Failure::output)?;
        self.bytes += self.line.len() as u64;
        Ok(())
    }

    /// Everything written out; a file synced, so an export that reports
    /// success is on the disk (it may be the only copy of a backup).
    fn finish(self) -> Result<(), Failure> {
        let Sink { w, file, .. } = self;
        w.into_inner()
            .map_err(|e| Failure::output(e.into_error()))?;
        // Only a regular file is synced: a device or a pipe given as the
        // output (`--output /dev/null`) has nothing to make durable and
        // refuses fsync.
        let regular = |f: &std::fs::File| f.metadata().is_ok_and(|m| m.is_file());
        if let Some(file) = file.filter(regular) {
            file.sync_all()
                .map_err(|e| Failure::failed(format!("cannot sync the output: {e}")))?;
        }
        Ok(())
    }
}

/// What was written to `file`, for a person or (`--json`) a script.
fn summary(
    out: &mut Out,
    file: &std::path::Path,
    w: &Written,
    start: Position,
    next: Position,
) -> Result<(), Failure> {
    if out.json() {
        return out.object(&json!({
            "file": file.display().to_string(),
            "events": w.events,
            "streams": w.streams.len(),
            "bytes": w.bytes,
            "audit_skipped": w.audit_skipped,
            "from": start.to_string(),
            "next": next.to_string(),
        }));
    }
    out.line(&format!(
        "exported  {} events of {} streams, {} to {}",
        units::count(w.events),
        units::count(w.streams.len() as u64),
        units::bytes(w.bytes),
        file.display()
    ))?;
    if w.audit_skipped > 0 {
        out.line(&format!(
            "skipped   {} events of $audit (--include-system exports them)",
            units::count(w.audit_skipped)
        ))?;
    }
    out.line(&format!("from      {start}"))?;
    out.line(&format!(
        "next      {next} (--from {next} exports what comes after)"
    ))
}
