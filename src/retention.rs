//! Retention by whole segments (docs/ARCHITECTURE.md, "Retention"): the
//! sealed segments at the head of the log that are past the age or size
//! the options allow are removed, never the active one (it is sealed first
//! when its own newest event is too old).
//!
//! One run, in this order, so that a crash anywhere leaves a log that
//! opens with a consistent start and nothing after it lost:
//! 1. the segments chosen are sealed, durable and linked into the chain
//!    (their chain records written): the link at the new start is known;
//! 2. their frames are read once for the streams they define and the heads
//!    those streams have at the new start (`start.rs`): a read of the
//!    bytes removed, sequential, and the only cost that grows with them;
//! 3. an `$audit` event saying what goes is appended and made durable;
//! 4. the `start` file is replaced (temporary file, fsync, rename, fsync
//!    of the directory): from here on the removal has happened, and an
//!    open finishes it;
//! 5. readers stop finding the segments; their files are unlinked.
//!
//! Reads holding a removed segment keep their mapping and finish; a read
//! that reaches one afterwards, or asks for a position before the start,
//! gets [`Error::BeforeLogStart`].

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use crate::append::AppendSide;
use crate::append::checked::{append_unchecked, now_us};
use crate::audit::{self, JsonObject};
use crate::consumer;
use crate::error::{Error, Result};
use crate::event::{EventData, ExpectedVersion, RecordedEvent};
use crate::layout;
use crate::limits::MAX_EVENTS_PER_APPEND;
use crate::log::Log;
use crate::options::Retention as Policy;
use crate::position::Position;
use crate::read::ReadStream;
use crate::segment::{HEADER_BYTES, Segment, corrupt};
use crate::start::{self, LogStart, StartStream};
use crate::streams::Head;
use crate::system::AUDIT_STREAM;
use crate::view::LogView;
use crate::walk::{Check, FrameCursor, Step};

/// What one [`Log::apply_retention`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// Segment files removed.
    pub segments: u64,
    /// Their bytes on disk.
    pub bytes: u64,
    /// The first position the log holds now.
    pub log_start: Position,
    /// The [`AUDIT_STREAM`](crate::AUDIT_STREAM) event recording the
    /// removal; `None` when nothing was removed.
    pub audit: Option<Position>,
}

impl Log {
    /// The first position the log holds: [`Position::START`] until
    /// retention removes segments, then the first event of the oldest
    /// segment kept. Reads from before it get [`Error::BeforeLogStart`].
    pub fn log_start(&self) -> Position {
        self.view.log_start().position()
    }

    /// Removes the segments at the head of the log that the retention
    /// options ([`Options::retain_max_age`](crate::Options::retain_max_age),
    /// [`Options::retain_max_bytes`](crate::Options::retain_max_bytes)) let
    /// go, records the removal in [`AUDIT_STREAM`](crate::AUDIT_STREAM),
    /// and moves [`Log::log_start`]. Without those options it removes
    /// nothing. A background thread does the same every
    /// [`Options::retention_interval`](crate::Options::retention_interval);
    /// runs take turns, and appends and reads go on meanwhile.
    ///
    /// The chain still proves everything after the start:
    /// [`verify`](crate::verify()) goes on from the link the `start` file
    /// keeps. A crash at any point leaves either the old start with every
    /// segment, or the new one (an open removes what is left below it).
    pub fn apply_retention(&self) -> Result<Retained> {
        match &self.retention.runner {
            Some(runner) => runner.run(),
            None => Ok(Retained {
                segments: 0,
                bytes: 0,
                log_start: self.log_start(),
                audit: None,
            }),
        }
    }
}

/// A log's retention: its policy's runner, and the thread that runs it
/// every interval.
#[derive(Debug)]
pub(crate) struct Retention {
    /// `None` without a policy.
    runner: Option<Arc<Runner>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What a run needs: a log's two sides, its policy, and the turn.
#[derive(Debug)]
struct Runner {
    view: Arc<LogView>,
    append: Arc<AppendSide>,
    policy: Policy,
    one_at_a_time: Mutex<()>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Retention {
    /// The retention of a log just opened: with a policy and an interval,
    /// its thread started.
    pub(crate) fn start(view: &Arc<LogView>, append: &Arc<AppendSide>) -> Result<Retention> {
        let policy = append.options.retention;
        let runner = policy.is_set().then(|| {
            Arc::new(Runner {
                view: Arc::clone(view),
                append: Arc::clone(append),
                policy,
                one_at_a_time: Mutex::new(()),
                stopped: Mutex::new(false),
                wake: Condvar::new(),
            })
        });
        let thread = match (&runner, policy.interval) {
            (Some(runner), Some(every)) => {
                let runner = Arc::clone(runner);
                let thread = std::thread::Builder::new()
                    .name("seglog-retention".into())
                    .spawn(move || runner.run_every(every))
                    .map_err(|e| Error::io(&view.dir, e))?;
                Some(thread)
            }
            _ => None,
        };
        Ok(Retention {
            runner,
            thread: Mutex::new(thread),
        })
    }

    /// Stops the thread, after the run it is in, if any.
    pub(crate) fn stop(&self) {
        let Some(runner) = &self.runner else { return };
        *lock(&runner.stopped) = true;
        runner.wake.notify_all();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Runner {
    /// The background thread: a run every `every` until stopped. A failed
    /// run is a warning and the next one tries again; a log that refuses
    /// writes (poisoned, closed) ends the thread.
    fn run_every(&self, every: Duration) {
        loop {
            let stopped = lock(&self.stopped);
            let (stopped, _) = self
                .wake
                .wait_timeout_while(stopped, every, |stopped| !*stopped)
                .unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return;
            }
            drop(stopped);
            match self.run() {
                Ok(_) => {}
                Err(e @ (Error::Poisoned { .. } | Error::Closed)) => {
                    log::warn!("seglog: retention stops: {e}");
                    return;
                }
                Err(e) => log::warn!("seglog: a retention run failed, to be tried again: {e}"),
            }
        }
    }

    /// One run (see the module docs).
    fn run(&self) -> Result<Retained> {
        let _turn = lock(&self.one_at_a_time);
        let view = &*self.view;
        let mut retained = Retained {
            segments: 0,
            bytes: 0,
            log_start: view.log_start().position(),
            audit: None,
        };
        let now = now_us(self.append.options.clock.as_deref());
        if !self.due(now) {
            return Ok(retained);
        }
        if let Some(age) = self.policy.max_age {
            self.roll_if_aged(now, age)?;
        }
        self.append.sync()?;
        self.append.link_and_record(&self.append.chain)?;
        let pinned = self.pinned_by_consumers()?;
        let doomed = choose(&view.segments_snapshot(), self.policy, now, pinned);
        let Some(last) = doomed.last() else {
            return Ok(retained);
        };
        let start = next_start(&self.view, &doomed, last)?;
        retained.segments = doomed.len() as u64;
        retained.bytes = doomed.iter().map(|s| s.size()).sum();
        retained.log_start = start.position();
        self.carry_audit(start.base)?;
        retained.audit = Some(self.audit_removal(&doomed, &retained)?);
        start::store(&*view.storage, &view.dir, view.log_id, &start)?;
        view.advance_start(start);
        remove_files(view, &doomed)?;
        Ok(retained)
    }

    /// Whether a run may remove anything: the active segment's events are
    /// past the age, or a sealed segment is past the age or the size (its
    /// chain record and the consumers are checked later). A run that is
    /// not due syncs and links nothing.
    fn due(&self, now: u64) -> bool {
        let segs = self.view.segments_snapshot();
        let cutoff = self
            .policy
            .max_age
            .map(|age| now.saturating_sub(micros(age)));
        let aged = |s: &Segment| cutoff.is_some_and(|c| s.times.last_us().is_some_and(|t| t < c));
        let total: u64 = segs.iter().map(|s| s.size()).sum();
        let big = self.policy.max_bytes.is_some_and(|max| total > max);
        big || segs.iter().any(|s| aged(s))
    }

    /// Seals the active segment when its newest event is older than
    /// `age`: it alone holds events retention should let go.
    fn roll_if_aged(&self, now: u64, age: Duration) -> Result<()> {
        let cutoff = now.saturating_sub(micros(age));
        let active = self.view.newest_segment();
        if active
            .and_then(|s| s.times.last_us())
            .is_some_and(|t| t < cutoff)
        {
            self.append.roll_active()?;
        }
        Ok(())
    }

    /// The log offset below which every named consumer has checkpointed,
    /// when the options keep segments for them (else no bound).
    fn pinned_by_consumers(&self) -> Result<u64> {
        if !self.policy.for_consumers {
            return Ok(u64::MAX);
        }
        let found = consumer::checkpoints(&self.view.dir, self.view.log_id)?;
        Ok(found
            .iter()
            .map(|(_, p)| p.frame_offset())
            .min()
            .unwrap_or(u64::MAX))
    }

    /// Appends again the `$audit` events below log offset `below`, which
    /// the run removes: the trail outlives the removals it records. Each
    /// copy's JSON payload begins with where and when the event was first
    /// recorded (`carried_from`, `recorded_us`), kept through later runs.
    /// A run cut short by a crash after this may carry an event twice.
    fn carry_audit(&self, below: u64) -> Result<()> {
        let Some((id, head)) = self.view.stream_head(AUDIT_STREAM) else {
            return Ok(());
        };
        let first = self.view.log_start().first_version(id);
        let read = ReadStream::new(Arc::clone(&self.view), Some((id, head)), first, false)?;
        let mut carried = Vec::new();
        for event in read.stored_only() {
            let event = event?;
            if event.position().frame_offset() >= below {
                break;
            }
            carried.push(carried_copy(&event));
        }
        for batch in carried.chunks(MAX_EVENTS_PER_APPEND) {
            append_unchecked(&self.append, AUDIT_STREAM, ExpectedVersion::Any, batch)?;
        }
        Ok(())
    }

    /// Appends the `$audit` event of a removal and makes it durable.
    fn audit_removal(&self, doomed: &[Arc<Segment>], retained: &Retained) -> Result<Position> {
        let newest = doomed.iter().filter_map(|s| s.times.last_us()).max();
        let payload = JsonObject::new()
            .num("log_start", retained.log_start.as_u64())
            .num(
                "previous_log_start",
                self.view.log_start().position().as_u64(),
            )
            .num("segments", retained.segments)
            .num("bytes", retained.bytes)
            .num("newest_removed_us", newest.unwrap_or(0))
            .str("policy", &describe(self.policy))
            .finish();
        audit::record(&self.append, crate::system::RETENTION_EVENT, payload)
    }
}

/// An `$audit` event to append again: its payload says where and when it
/// was first recorded, once (a copy of a copy keeps the original's).
fn carried_copy(event: &RecordedEvent) -> EventData {
    let payload = event.payload();
    let payload = match payload.strip_prefix(b"{") {
        Some(rest) if !payload.starts_with(b"{\"carried_from\":") => {
            let mut out = format!(
                "{{\"carried_from\":{},\"recorded_us\":{}",
                event.position().as_u64(),
                event.timestamp_micros()
            )
            .into_bytes();
            if rest != b"}" {
                out.push(b',');
            }
            out.extend_from_slice(rest);
            Bytes::from(out)
        }
        _ => payload.clone(),
    };
    EventData::new(event.event_type(), payload).with_metadata(event.metadata().clone())
}

/// The policy in words, for the audit trail: `max_age=2592000s
/// max_bytes=none for_consumers=false`.
fn describe(policy: Policy) -> String {
    let age = policy
        .max_age
        .map_or("none".to_string(), |a| format!("{}s", a.as_secs()));
    let bytes = policy
        .max_bytes
        .map_or("none".to_string(), |b| b.to_string());
    format!(
        "max_age={age} max_bytes={bytes} for_consumers={}",
        policy.for_consumers
    )
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The sealed segments at the head of `segs` to remove: each has its
/// chain record (its seal durable, its frames linked), lies wholly before
/// `pinned`, and is past the age or the size the policy allows. The first
/// that is not ends the run: only the head of the log goes.
fn choose(segs: &[Arc<Segment>], policy: Policy, now: u64, pinned: u64) -> Vec<Arc<Segment>> {
    let Some((_active, sealed)) = segs.split_last() else {
        return Vec::new();
    };
    let mut total: u64 = segs.iter().map(|s| s.size()).sum();
    let cutoff = policy.max_age.map(|age| now.saturating_sub(micros(age)));
    let mut doomed = Vec::new();
    for seg in sealed {
        let linked = seg.chain_record().is_some_and(|r| !r.open);
        let old = cutoff.is_some_and(|c| seg.times.last_us().is_none_or(|t| t < c));
        let big = policy.max_bytes.is_some_and(|max| total > max);
        if !linked || seg.end() > pinned || !(old || big) {
            break;
        }
        total -= seg.size();
        doomed.push(Arc::clone(seg));
    }
    doomed
}

/// The start after `doomed` is removed: the chain's link at the end of
/// `last` (its record), and the streams the removed segments define,
/// with their heads there.
fn next_start(view: &Arc<LogView>, doomed: &[Arc<Segment>], last: &Segment) -> Result<LogStart> {
    let record = last
        .chain_record()
        .ok_or_else(|| corrupt(last, 0, "a segment to remove lost its chain record"))?;
    let old = view.log_start();
    let mut streams: Vec<StartStream> = (*old.streams).clone();
    for seg in doomed {
        streams_in(view, seg, &mut streams)?;
    }
    crate::read::deletions::refresh(view)?;
    Ok(LogStart {
        base: last.end(),
        links: record.links,
        link: record.head,
        streams: Arc::new(streams),
        deletions: Arc::new(view.deleted.recorded()),
    })
}

/// Reads `seg`'s frames into `streams`: each stream it defines added, in
/// id order, each stream it appends to given the head there.
fn streams_in(view: &LogView, seg: &Segment, streams: &mut Vec<StartStream>) -> Result<()> {
    let bytes = seg.bytes(HEADER_BYTES, seg.published());
    let mut cursor =
        FrameCursor::over(seg, bytes, HEADER_BYTES, &view.checksum).skipping(&view.quarantine);
    loop {
        let at = cursor.at();
        let f = match cursor.next(Check::Full) {
            Step::Events(f, _) => f,
            Step::Quarantined => continue,
            Step::End | Step::NoRoom => return Ok(()),
            Step::Limit => return Err(corrupt(seg, at - seg.base(), "no end marker")),
            Step::Bad(e) => return Err(corrupt(seg, at - seg.base(), e)),
        };
        let head = Head {
            last_version: f.first_version + u64::from(f.event_count) - 1,
            last_frame: at,
        };
        let id = f.stream_id as usize;
        match f.defines {
            Some(name) if id == streams.len() => streams.push(StartStream {
                name: name.to_string(),
                head,
            }),
            None if id < streams.len() => streams[id].head = head,
            _ => {
                let reason = format!("stream id {id} out of order (a repaired log?)");
                return Err(corrupt(seg, at - seg.base(), reason));
            }
        }
    }
}

/// Unlinks the removed segments' files and their index files, then syncs
/// the directory. The start has moved already: a file left here by an
/// error is removed by the next open.
fn remove_files(view: &LogView, doomed: &[Arc<Segment>]) -> Result<()> {
    let storage = &*view.storage;
    for seg in doomed {
        let path = seg.path();
        storage.remove(path).map_err(|e| Error::io(path, e))?;
        let index = view.dir.join(layout::index_file(seg.base()));
        match storage.remove(&index) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&index, e));
            }
            _ => {}
        }
    }
    storage
        .sync_dir(&view.dir)
        .map_err(|e| Error::io(&view.dir, e))
}
