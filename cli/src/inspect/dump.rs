//! `seglog dump DIR`: the log's events in log order, from a position or a
//! time on, chosen by stream and type: what is in a log, without writing
//! code.
//!
//! A dump shows the log as it was when the dump started (it stops at the
//! end published then, so it ends even beside a writer faster than the
//! output), streams its output (JSON line by line, tables in chunks: see
//! [`Printer`]) and never holds the log in memory. `--stream` reads that
//! stream through its index, so its cost grows with the stream, not with
//! the log.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use seglog::{Position, Reader, RecordedEvent};

use super::LogArgs;
use super::event::{PayloadArg, Printer};
use super::filter::{FromArg, Limit, Select, check_stream, read_stream};
use crate::failure::Failure;
use crate::out::{Out, Progress};

// The flags of `seglog dump` (its help is the variant's doc comment in
// main.rs).
#[derive(Args)]
pub(crate) struct DumpCommand {
    /// The log's directory.
    #[arg(required_unless_present = "segment", conflicts_with = "segment")]
    dir: Option<PathBuf>,
    /// A file holding the log's master key (32 bytes, raw or as 64 hex
    /// digits), to show encrypted payloads decrypted.
    #[arg(long, value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// Dump one segment file alone instead of a log (forensics on a copy:
    /// no other file is needed); each frame is checked, and the dump stops
    /// at damage with status 1. Takes --limit and --payload only.
    #[arg(long, value_name = "FILE")]
    segment: Option<PathBuf>,
    #[command(flatten)]
    from: FromArg,
    #[command(flatten)]
    select: Select,
    #[command(flatten)]
    limit: Limit,
    /// How payloads are shown.
    #[arg(long, value_enum, default_value_t)]
    payload: PayloadArg,
}

/// Events read, boxed: the whole log or one stream.
type Events = Box<dyn Iterator<Item = seglog::Result<RecordedEvent>>>;

impl DumpCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        let log = match (&self.dir, &self.segment) {
            (Some(dir), _) => LogArgs {
                dir: dir.clone(),
                master_key_file: self.master_key_file.clone(),
            },
            (None, Some(file)) => {
                if self.from.from.is_some()
                    || self.select.stream.is_some()
                    || !self.select.types.is_empty()
                {
                    return Err(Failure::usage("--segment takes --limit and --payload only"));
                }
                return super::segment::dump(out, file, self.payload, self.limit.limit);
            }
            (None, None) => {
                return Err(Failure::usage(
                    "give the log's directory, or --segment FILE",
                ));
            }
        };
        self.dump(out, &log)
    }

    /// Dumps the log `log` names.
    fn dump(&self, out: &mut Out, log: &LogArgs) -> Result<(), Failure> {
        let dir = &log.dir;
        let reader = log.open()?;
        let end = reader.refresh().map_err(|e| Failure::from_log(dir, e))?;
        let from = self.from.position(&reader, dir, end)?;
        let events = self.events(&reader, dir, from)?;
        // Progress for a whole-log dump into a file or a pipe; on a
        // terminal the events scrolling by are the progress.
        let mut progress = (self.select.stream.is_none() && !std::io::stdout().is_terminal())
            .then(|| Progress::new(end.frame_offset() - from.frame_offset(), "dump"));
        let mut printer = Printer::new(out, self.payload);
        for (read, e) in events.enumerate() {
            let e = e.map_err(|e| Failure::from_log(dir, e))?;
            if e.position() >= end || self.limit.reached(printer.shown()) {
                break;
            }
            if let Some(progress) = progress.as_mut()
                && read % 1024 == 0
            {
                progress.set(e.position().frame_offset() - from.frame_offset());
            }
            if self.select.keeps(&e) {
                printer.event(out, &e)?;
            }
        }
        if let Some(progress) = progress {
            progress.finish();
        }
        printer.finish(out)
    }

    /// The events from `from` on: the whole log, or `--stream`'s events
    /// at or after `from`.
    fn events(&self, reader: &Reader, dir: &Path, from: Position) -> Result<Events, Failure> {
        let read = match &self.select.stream {
            None => reader.read_all(from).map(|r| Box::new(r) as Events),
            Some(name) => {
                check_stream(reader, dir, name)?;
                read_stream(reader, name, None, None).map(|r| {
                    let at_or_after = move |e: &seglog::Result<RecordedEvent>| {
                        e.as_ref().map_or(true, |e| e.position() >= from)
                    };
                    Box::new(r.filter(at_or_after)) as Events
                })
            }
        };
        read.map_err(|e| Failure::from_log(dir, e))
    }
}
