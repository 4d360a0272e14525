//! `seglog import DIR [FILE]`: appends the events of an export (JSON
//! lines, `line.rs`) into the log in DIR, as its writer.
//!
//! Stream versions are kept, and the stream's current version decides
//! each line: a version the log holds is skipped (an event id that
//! differs from the one stored is a conflict), the next version is
//! appended, a later one is a gap; the deletions of `$streams` are
//! applied again in their place (`deletions.rs`). So an import run twice, or resumed
//! after a failure, appends each event once. Consecutive lines of one
//! stream are one append, with the expected version of what the log
//! holds. Appends are not synced one by one (`Durability::None`): one
//! sync at the end, before success is reported, which a re-run after a
//! crash makes safe.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use clap::Args;
use seglog::limits::MAX_EVENTS_PER_APPEND;
use seglog::{
    Durability, Error, EventData, ExpectedVersion, Log, Options, ReadStream, STREAMS_STREAM,
};
use serde_json::json;

use crate::failure::{Failure, check_log_dir};
use crate::inspect::read_master_key;
use crate::out::{Out, Progress, units};

use super::deletions::{self, Applied};
use super::is_system;
use super::line::{self, Line};

/// The subject an erased event is sealed under on import, then forgotten:
/// it reads as erased in the target as it did in the source.
const ERASED_SUBJECT: &str = "seglog-import:erased";

/// Bytes read from the input at a time.
const INPUT_BUFFER_BYTES: usize = 1 << 20;

/// Bytes counted per event besides its type, metadata and payload, when a
/// batch is sized (the frame's per-event header and id, rounded up).
const EVENT_OVERHEAD_BYTES: u64 = 64;

// The flags of `seglog import` (its help is the variant's doc comment in
// main.rs).
#[derive(Args)]
pub(crate) struct ImportCommand {
    /// The log's directory (created when missing).
    dir: PathBuf,
    /// The export to read; `-` or none: standard input.
    file: Option<PathBuf>,
    /// A file holding the log's master key (32 bytes, raw or as 64 hex
    /// digits): needed for events erased in the export, which the import
    /// erases again in this log.
    #[arg(long, value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// Size of the segments the import writes, in MiB (a power of two
    /// from 1 to 1024): the largest event it can append is a little less.
    #[arg(long, default_value_t = 64, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    segment_mib: u64,
}

/// What an import did, line by line.
#[derive(Default)]
struct Counts {
    /// Lines holding an event.
    lines: u64,
    /// Events appended.
    imported: u64,
    /// Events the log held already: skipped.
    present: u64,
    /// Events of the engine's own streams not applied: skipped.
    system: u64,
    /// Erased events appended, erased again.
    erased: u64,
    /// Deletions and truncations of streams applied again.
    deletions: u64,
    /// Streams named by the lines (the engine's aside).
    streams: HashSet<Box<str>>,
}

/// The input, line by line, each line at most `max_bytes`.
struct Lines {
    input: Box<dyn BufRead>,
    buf: Vec<u8>,
    number: u64,
    max_bytes: usize,
    /// Bytes consumed so far, for the progress bar.
    consumed: u64,
}

/// The events waiting to be appended: consecutive lines of one stream.
struct Batch {
    stream: String,
    /// The stream's version before the first waiting event.
    before: Option<u64>,
    events: Vec<EventData>,
    bytes: u64,
    /// The line of the first waiting event.
    first_line: u64,
}

/// An open read of a stream the log holds, at the version a skipped line
/// is compared with next.
struct Present {
    stream: String,
    next: u64,
    events: ReadStream,
}

/// The state of one import.
struct Import<'a> {
    log: &'a Log,
    dir: &'a Path,
    /// Whether a master key was given, to erase erased events again.
    can_erase: bool,
    /// Whether an erased event was met (appended now or by an earlier run).
    met_erased: bool,
    max_batch_bytes: u64,
    batch: Batch,
    present: Option<Present>,
    counts: Counts,
}

impl ImportCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        let (input, len) = self.input()?;
        let log = self.open()?;
        let segment_bytes = self.segment_bytes();
        let mut lines = Lines {
            input,
            buf: Vec::new(),
            number: 0,
            max_bytes: line::max_line_bytes(segment_bytes),
            consumed: 0,
        };
        // Half a segment: a batch always fits the frame a segment holds.
        let max_batch_bytes = segment_bytes / 2;
        let can_erase = self.master_key_file.is_some();
        let mut import = Import::new(&log, &self.dir, can_erase, max_batch_bytes);
        let mut progress = len.map(|len| Progress::new(len, "import"));
        let mut result = Ok(());
        while let Some((number, text)) = lines.next() {
            result = text.and_then(|text| import.line(number, &text));
            if result.is_err() {
                break;
            }
            if let Some(progress) = progress.as_mut() {
                progress.set(lines.consumed);
            }
        }
        if let Some(progress) = progress {
            progress.finish();
        }
        // What came before a failing line is appended and synced too: a
        // re-run after the fix goes on from there.
        let finished = import.finish();
        result.and(finished)?;
        let counts = import.counts;
        log.close().map_err(|e| Failure::from_log(&self.dir, e))?;
        summary(out, &self.dir, &counts)
    }

    /// The size of the segments written, in bytes.
    fn segment_bytes(&self) -> u64 {
        self.segment_mib << 20
    }

    /// The input and its length in bytes (unknown for standard input).
    fn input(&self) -> Result<(Box<dyn BufRead>, Option<u64>), Failure> {
        let path = match &self.file {
            Some(path) if path.as_os_str() != "-" => path,
            _ => {
                let stdin = BufReader::with_capacity(INPUT_BUFFER_BYTES, io::stdin());
                return Ok((Box::new(stdin), None));
            }
        };
        let cannot = |e: io::Error| Failure::failed(format!("cannot read {}: {e}", path.display()));
        let file = File::open(path).map_err(cannot)?;
        let len = file.metadata().map_err(cannot)?.len();
        let file = BufReader::with_capacity(INPUT_BUFFER_BYTES, file);
        Ok((Box::new(file), Some(len)))
    }

    /// The log in `dir` as its writer: created in a missing or empty
    /// directory, refused in a directory of something else.
    fn open(&self) -> Result<Log, Failure> {
        let empty = match std::fs::read_dir(&self.dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(Failure::failed(format!("{}: {e}", self.dir.display()))),
        };
        if !empty {
            check_log_dir(&self.dir)?;
        }
        let mut options = Options::new()
            .durability(Durability::None)
            .segment_size(self.segment_bytes());
        if let Some(file) = &self.master_key_file {
            options = options.master_key(read_master_key(file)?);
        }
        let log = options.open(&self.dir).map_err(|e| match e {
            Error::InvalidOption { reason, .. } => {
                Failure::usage(format!("--segment-mib {}: {reason}", self.segment_mib))
            }
            e => Failure::from_log(&self.dir, e),
        })?;
        Ok(log)
    }
}

impl Lines {
    /// The next line's number and bytes (a trailing carriage return
    /// removed), `None` at the end of the input. Blank lines are passed
    /// over. A line over the bound is refused before it is read whole.
    fn next(&mut self) -> Option<(u64, Result<Vec<u8>, Failure>)> {
        loop {
            self.number += 1;
            match self.read_line() {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => return Some((self.number, Err(e))),
            }
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Some((self.number, Ok(std::mem::take(&mut self.buf))));
            }
        }
    }

    /// Reads one line into `buf`, without its newline; false at the end.
    fn read_line(&mut self) -> Result<bool, Failure> {
        self.buf.clear();
        loop {
            let chunk = self
                .input
                .fill_buf()
                .map_err(|e| Failure::failed(format!("cannot read line {}: {e}", self.number)))?;
            if chunk.is_empty() {
                return Ok(!self.buf.is_empty());
            }
            let (taken, done, found) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (chunk.get(..at).unwrap_or_default(), at + 1, true),
                None => (chunk, chunk.len(), false),
            };
            self.buf.extend_from_slice(taken);
            self.input.consume(done);
            self.consumed += done as u64;
            if self.buf.len() > self.max_bytes {
                return Err(Failure::damage(format!(
                    "line {} is longer than {} (the most an event of this log's segments can \
                     need): not an export, or --segment-mib is too small for its events",
                    self.number,
                    units::bytes(self.max_bytes as u64)
                )));
            }
            if found {
                return Ok(true);
            }
        }
    }
}

impl<'a> Import<'a> {
    fn new(log: &'a Log, dir: &'a Path, can_erase: bool, max_batch_bytes: u64) -> Import<'a> {
        Import {
            log,
            dir,
            can_erase,
            met_erased: false,
            max_batch_bytes,
            batch: Batch {
                stream: String::new(),
                before: None,
                events: Vec::new(),
                bytes: 0,
                first_line: 0,
            },
            present: None,
            counts: Counts::default(),
        }
    }

    /// Line `number`: decoded, then skipped, appended or refused.
    fn line(&mut self, number: u64, text: &[u8]) -> Result<(), Failure> {
        let line =
            line::decode(text).map_err(|e| Failure::damage(format!("line {number}: {e}")))?;
        self.counts.lines += 1;
        if is_system(&line.stream) {
            return self.system(number, &line);
        }
        if !self.counts.streams.contains(line.stream.as_str()) {
            self.counts.streams.insert(line.stream.as_str().into());
        }
        if line.payload.is_none() {
            self.met_erased = true;
        }
        let next = self.next_version(&line.stream)?;
        match line.version.cmp(&next) {
            std::cmp::Ordering::Less => self.compare(number, &line),
            std::cmp::Ordering::Equal => self.add(number, line),
            std::cmp::Ordering::Greater => Err(Failure::damage(format!(
                "line {number}: stream {:?} version {} follows version {} in {}: versions \
                 {next} to {} are missing from the input (an export --from a later position? \
                 import the earlier export first)",
                line.stream,
                line.version,
                next.checked_sub(1)
                    .map_or("none".to_string(), |v| v.to_string()),
                self.dir.display(),
                line.version - 1,
            ))),
        }
    }

    /// A line of the engine's own streams: a deletion applied again, else
    /// skipped.
    fn system(&mut self, number: u64, line: &Line) -> Result<(), Failure> {
        if line.stream != STREAMS_STREAM {
            self.counts.system += 1;
            return Ok(());
        }
        // In its place: after the events before it, of its stream too.
        self.flush()?;
        self.present = None;
        match deletions::apply(self.log, self.dir, number, line)? {
            Applied::Done => self.counts.deletions += 1,
            Applied::Already => self.counts.present += 1,
            Applied::Skipped => self.counts.system += 1,
        }
        Ok(())
    }

    /// The version the log (with the waiting batch) expects next in
    /// `stream`; the batch of another stream is appended first.
    fn next_version(&mut self, stream: &str) -> Result<u64, Failure> {
        if self.batch.stream != stream {
            self.flush()?;
            self.batch.stream.clear();
            self.batch.stream.push_str(stream);
            self.batch.before = self.log.stream_version(stream);
        }
        let waiting = self.batch.events.len() as u64;
        Ok(self.batch.before.map_or(0, |v| v + 1) + waiting)
    }

    /// A line whose version the log holds: skipped, unless the log's
    /// event there has another id.
    fn compare(&mut self, number: u64, line: &Line) -> Result<(), Failure> {
        // The waiting events first, so that the read below sees them.
        self.flush()?;
        let stored = self.stored_id(&line.stream, line.version)?;
        if let (Some(stored), Some(given)) = (stored, line.id)
            && stored != given
        {
            return Err(Failure::damage(format!(
                "line {number}: stream {:?} version {} is event {stored:032x} in {}, but \
                 event {given:032x} in the input: they are different events (an export of \
                 another log?)",
                line.stream,
                line.version,
                self.dir.display()
            )));
        }
        self.counts.present += 1;
        Ok(())
    }

    /// The id of the event the log holds at `version` of `stream`,
    /// reading on from the last one compared when it can.
    fn stored_id(&mut self, stream: &str, version: u64) -> Result<Option<u128>, Failure> {
        let from_log = |e| Failure::from_log(self.dir, e);
        let mut present = match self.present.take() {
            Some(p) if p.stream == stream && p.next == version => p,
            _ => match self.log.read_stream(stream, version) {
                // Deleted: its events cannot be read to compare.
                Err(Error::StreamDeleted { .. }) => return Ok(None),
                events => Present {
                    stream: stream.to_string(),
                    next: version,
                    events: events.map_err(from_log)?,
                },
            },
        };
        let event = present.events.next().transpose().map_err(from_log)?;
        match event {
            Some(e) if e.version() == version => {
                present.next = version + 1;
                self.present = Some(present);
                Ok(e.id())
            }
            // Hidden by a truncation: reads start past it.
            Some(e) if e.version() > version => Ok(None),
            _ => Err(Failure::failed(format!(
                "stream {stream:?} of {} reads without its version {version}",
                self.dir.display()
            ))),
        }
    }

    /// A line of the next version: added to the batch, which is appended
    /// first when it is full.
    fn add(&mut self, number: u64, line: Line) -> Result<(), Failure> {
        let size = EVENT_OVERHEAD_BYTES
            + (line.event_type.len() + line.metadata.len()) as u64
            + line.payload.as_ref().map_or(0, |p| p.len() as u64);
        let full = self.batch.events.len() >= MAX_EVENTS_PER_APPEND
            || self.batch.bytes.saturating_add(size) > self.max_batch_bytes;
        if full && !self.batch.events.is_empty() {
            self.flush()?;
        }
        let event = match line.payload {
            Some(payload) => EventData::new(line.event_type, payload),
            None if self.can_erase => {
                self.counts.erased += 1;
                EventData::new(line.event_type, Bytes::new()).encrypted_for(ERASED_SUBJECT)
            }
            None => {
                return Err(Failure::failed(format!(
                    "line {number}: stream {:?} version {} is erased in the input: give \
                     --master-key-file (this log's master key, or a new one for a new log) so \
                     the import erases it here too",
                    line.stream, line.version
                )));
            }
        };
        let mut event = event
            .with_metadata(line.metadata)
            .with_schema_version(line.schema_version);
        if let Some(id) = line.id {
            event = event.with_id(id);
        }
        if self.batch.events.is_empty() {
            self.batch.first_line = number;
        }
        self.batch.events.push(event);
        self.batch.bytes += size;
        Ok(())
    }

    /// Appends the waiting events, as one append expecting the version the
    /// log holds.
    fn flush(&mut self) -> Result<(), Failure> {
        if self.batch.events.is_empty() {
            return Ok(());
        }
        let batch = &mut self.batch;
        let expected = batch
            .before
            .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let appended = self
            .log
            .append(&batch.stream, expected, &batch.events)
            .map_err(|e| {
                let failure = Failure::from_log(self.dir, e);
                Failure {
                    message: format!(
                        "lines {} to {} (stream {:?}): {}",
                        batch.first_line,
                        batch.first_line + batch.events.len() as u64 - 1,
                        batch.stream,
                        failure.message
                    ),
                    ..failure
                }
            })?;
        self.counts.imported += batch.events.len() as u64;
        batch.before = Some(appended.last_version);
        batch.events.clear();
        batch.bytes = 0;
        // A read opened before this append may not see it.
        if self
            .present
            .as_ref()
            .is_some_and(|p| p.stream == batch.stream)
        {
            self.present = None;
        }
        Ok(())
    }

    /// The last events appended, erased events erased, all synced.
    fn finish(&mut self) -> Result<(), Failure> {
        self.flush()?;
        if self.can_erase && self.met_erased {
            // Also after a run that crashed between its appends and this:
            // a subject forgotten already is no error.
            match self.log.forget(ERASED_SUBJECT) {
                Ok(_) | Err(Error::UnknownSubject { .. }) => {}
                Err(e) => return Err(Failure::from_log(self.dir, e)),
            }
        }
        self.log.sync().map_err(|e| Failure::from_log(self.dir, e))
    }
}

/// What the import did, for a person or (`--json`) a script.
fn summary(out: &mut Out, dir: &Path, c: &Counts) -> Result<(), Failure> {
    if out.json() {
        return out.object(&json!({
            "dir": dir.display().to_string(),
            "lines": c.lines,
            "imported": c.imported,
            "present": c.present,
            "system": c.system,
            "erased": c.erased,
            "deletions": c.deletions,
            "streams": c.streams.len(),
        }));
    }
    out.line(&format!(
        "imported  {} events into {} ({} of them erased again)",
        units::count(c.imported),
        dir.display(),
        units::count(c.erased)
    ))?;
    out.line(&format!(
        "present   {} events the log held already (skipped)",
        units::count(c.present)
    ))?;
    out.line(&format!(
        "deleted   {} streams deleted or truncated again",
        units::count(c.deletions)
    ))?;
    out.line(&format!(
        "system    {} other events of $audit and $streams (skipped: the engine's own)",
        units::count(c.system)
    ))?;
    out.line(&format!(
        "streams   {} in {} lines",
        units::count(c.streams.len() as u64),
        units::count(c.lines)
    ))
}
