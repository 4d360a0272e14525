//! `Log`: the handle on a log this process writes. It ties the read side
//! every reader shares (`view.rs`) to the append side only a `Log` has
//! (`append/`, with group commit in `commit.rs`), and holds the
//! directory's lock.
//!
//! The path of an append: validate outside any lock; under the append
//! side's lock and the registry's, look the stream up, check the expected
//! version, encode the frame into the mapping (`append/tail.rs`); then,
//! under `Durability::Sync`, wait for a sync round (`commit.rs`), which a
//! lone appender runs itself.

use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::append::checked::{append_unchecked, now_us, validate, validate_stream};
use crate::append::{AppendParts, AppendSide};
use crate::chain::Digest;
use crate::consumer::Consumer;
use crate::error::{Error, Result};
use crate::event::{
    AppendRequest, AppendResult, EventData, EventRef, ExpectedVersion, RecordedEvent,
};
use crate::layout;
use crate::limits;
use crate::options::Options;
use crate::position::Position;
use crate::quarantine::Quarantined;
use crate::read::{self, ReadAll, ReadStream};
use crate::recovery;
use crate::shred::{self, KeyRing};
use crate::snapshot::{self, Rebuilt, Snapshot, Snapshots};
use crate::storage::{Storage, filesystem};
use crate::subscribe::Subscription;
use crate::system;
use crate::view::{LogView, ViewParts};

/// An open event log. `Send + Sync`: share one between threads with `Arc`.
///
/// Dropping it closes it cleanly (like [`Log::close`], ignoring errors).
pub struct Log {
    pub(crate) view: Arc<LogView>,
    pub(crate) append: Arc<AppendSide>,
    /// How many snapshots to keep, and the locks saves take.
    snapshots: Snapshots,
    /// Retention's runs, explicit and in the background (`retention.rs`).
    pub(crate) retention: crate::retention::Retention,
    /// Held by the handle, not by the view: readers that outlive the handle
    /// keep their mappings but not the directory.
    _lock: File,
}

/// Opens (creating it if missing) the lock file and takes its lock. Never
/// truncated, and never followed if it is a link: whoever can write into
/// the directory must not make open write elsewhere.
fn lock_dir(storage: &dyn Storage, dir: &Path) -> Result<File> {
    let path = dir.join(layout::LOCK_FILE);
    let file = storage
        .open_or_create(&path)
        .map_err(|e| Error::io(&path, e))?;
    match storage.try_lock(&file, &path) {
        Ok(true) => Ok(file),
        Ok(false) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(e) => Err(Error::io(&path, e)),
    }
}

impl Log {
    /// Opens (or creates) the log in `dir` with the default [`Options`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        Log::open_with(dir, Options::new())
    }

    /// Opens (or creates) the log in `dir`: takes the directory lock and
    /// recovers (see `docs/ARCHITECTURE.md`). The sync and preparer threads
    /// start with the first append.
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Log> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        filesystem::check_log_dir(&dir, options.allow_unsupported_filesystem)?;
        let lock_file = lock_dir(&*options.storage, &dir)?;
        let recovery::Recovered {
            log_id,
            mut sealed,
            active,
            writer,
            spare,
            names,
            streams,
            quarantine,
            index,
            clean_tail,
            index_current,
            start,
        } = recovery::recover(&dir, &options)?;
        let end = active.base() + writer.cursor();
        let lookahead = streams.lookahead();
        let snapshots = Snapshots::new(options.snapshots_kept);
        let keys = match &options.master_key {
            Some(master) => Some(Arc::new(KeyRing::open(
                &dir,
                Arc::clone(&options.storage),
                log_id,
                master,
                true,
            )?)),
            None => None,
        };
        sealed.push(Arc::clone(&active));
        let view = Arc::new(LogView::new(ViewParts {
            dir,
            log_id,
            names,
            quarantine,
            storage: Arc::clone(&options.storage),
            segments: sealed,
            streams,
            end,
            upcasters: options.upcasters.clone(),
            start,
            keys,
        }));
        let parts = AppendParts {
            options,
            lookahead,
            active,
            writer,
            index,
            spare,
            clean_tail,
            index_current,
        };
        crate::read::deletions::refresh(&view)?;
        let append = Arc::new(AppendSide::new(Arc::clone(&view), parts));
        let retention = crate::retention::Retention::start(&view, &append)?;
        Ok(Log {
            view,
            append,
            snapshots,
            retention,
            _lock: lock_file,
        })
    }

    /// Appends `events` to `stream` as one atomic frame, if the stream's
    /// version matches `expected`. Returns the versions and positions given.
    ///
    /// Under [`Durability::Sync`](crate::Durability::Sync) it returns once
    /// the events are on disk; otherwise once they are in the log and
    /// visible to readers.
    ///
    /// Idempotent for retries: when every event carries an id
    /// ([`EventData::with_id`]) and the same events (ids in the same order)
    /// were already appended, it returns the original result and writes
    /// nothing. A retry with `Exact(n)` or `NoStream` is recognised however
    /// old the original append; with `Any` or `StreamExists`, only if the
    /// original is the stream's last append.
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult> {
        if system::is_reserved(stream) {
            return Err(Error::ReservedStreamName {
                stream: stream.to_string(),
            });
        }
        self.append_system(stream, expected, events)
    }

    /// [`Log::append`] without the check for the engine's own streams.
    pub(crate) fn append_system(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<AppendResult> {
        append_unchecked(&self.append, stream, expected, events)
    }

    /// Several appends, to any streams, under one acquisition of the tail
    /// and (under [`Durability::Sync`](crate::Durability::Sync)) one wait
    /// for the disk. Each is its own atomic frame with its own
    /// expected-version check, made in order (a later one sees the earlier
    /// ones' versions); each succeeds or fails alone, as [`Log::append`]
    /// would, and the results come back in the same order.
    ///
    /// Why: an append to a stream that is not in cache waits for a memory
    /// miss on its registry entry, as long as a whole append to a hot
    /// stream. Here the entries of the next 16 appends are loaded while
    /// the current one is written, so appends spread over millions of
    /// streams run nearly as fast as over a few.
    ///
    /// At most [`MAX_APPENDS_PER_CALL`](crate::limits::MAX_APPENDS_PER_CALL)
    /// appends. The outer error is for the whole call: too many appends, or
    /// a failed sync (none of them is then acknowledged).
    pub fn append_many(&self, requests: &[AppendRequest<'_>]) -> Result<Vec<Result<AppendResult>>> {
        if requests.len() > limits::MAX_APPENDS_PER_CALL {
            return Err(Error::TooManyAppends {
                count: requests.len(),
                max: limits::MAX_APPENDS_PER_CALL,
            });
        }
        let sealed = self.seal_requests(requests)?;
        let sealed_requests: Vec<AppendRequest<'_>>;
        let requests = match &sealed {
            Some(events) => {
                sealed_requests = requests
                    .iter()
                    .zip(events)
                    .map(|(r, sealed)| AppendRequest {
                        events: sealed.as_deref().unwrap_or(r.events),
                        ..*r
                    })
                    .collect();
                &sealed_requests[..]
            }
            None => requests,
        };
        let append = &self.append;
        let max_frame = append.max_frame_bytes();
        let check = |r: &AppendRequest<'_>| {
            if system::is_reserved(r.stream) {
                return Err(Error::ReservedStreamName {
                    stream: r.stream.to_string(),
                });
            }
            validate(r.stream, r.events, max_frame)
        };
        let (results, end) =
            append.append_many(requests, check, now_us(append.options.clock.as_deref()))?;
        append.after_append(end)?;
        Ok(results)
    }

    /// The events of `requests` sealed, when any asks to be: each
    /// request's events (`None`: as given), after one key store rewrite
    /// for every new subject among them all.
    #[allow(clippy::type_complexity)]
    fn seal_requests(
        &self,
        requests: &[AppendRequest<'_>],
    ) -> Result<Option<Vec<Option<Vec<EventData>>>>> {
        if requests
            .iter()
            .all(|r| r.events.iter().all(|e| e.seal.is_none()))
        {
            return Ok(None);
        }
        let keys = self.view.keys.as_deref().ok_or(Error::NoMasterKey)?;
        let subjects = requests
            .iter()
            .filter(|r| validate_stream(r.stream, r.events).is_ok())
            .flat_map(|r| shred::subjects(r.stream, r.events));
        keys.ensure(subjects)?;
        let sealed = requests
            .iter()
            .map(|r| match validate_stream(r.stream, r.events) {
                // Refused whole by its own check, under the lock.
                Err(_) => Ok(None),
                Ok(()) => shred::seal_batch(Some(keys), r.stream, r.events),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(sealed))
    }

    /// The last version of `stream`, or `None` for a stream never written.
    /// Counts appends whose sync is still in flight: it is the version the
    /// next append's expected-version check compares with.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        self.view.registry().version(stream)
    }

    /// Every event at or after `from`, in commit order, as owned events that
    /// share the mapping. Yields what is visible when each frame is reached;
    /// a damaged frame yields [`Error::Corrupt`] and ends the iteration.
    pub fn read_all(&self, from: Position) -> Result<ReadAll> {
        ReadAll::new(Arc::clone(&self.view), from)
    }

    /// Calls `f` with a borrowed view of every event at or after `from`,
    /// straight from the mapping (no copy, no allocation per event).
    /// Returns the position after the last event seen: resume from there.
    pub fn replay<F>(&self, from: Position, f: F) -> Result<Position>
    where
        F: FnMut(EventRef<'_>),
    {
        read::replay(&self.view, from, f)
    }

    /// The events of `stream` with versions `>= from_version`, oldest first.
    /// A stream never written reads as empty. Finding the start costs a
    /// binary search of the stream's sparse index plus at most one index
    /// interval of frames; then only this stream's frames are read.
    pub fn read_stream(&self, stream: &str, from_version: u64) -> Result<ReadStream> {
        let head = self.view.stream_head(stream);
        ReadStream::new(Arc::clone(&self.view), head, from_version, false)
    }

    /// Calls `f` with a borrowed view of every event of `stream` with a
    /// version `>= from_version`, oldest first, straight from the mapping:
    /// [`Log::read_stream`] without an owned event (and its reference
    /// counts) per event, the way [`Log::replay`] is [`Log::read_all`]'s.
    /// Returns the version after the last event seen: resume from there
    /// (`from_version` if there was none).
    pub fn replay_stream<F>(&self, stream: &str, from_version: u64, f: F) -> Result<u64>
    where
        F: FnMut(EventRef<'_>),
    {
        let head = self.view.stream_head(stream);
        read::replay_stream(&self.view, head, from_version, f)
    }

    /// The events of `stream` with versions `<= from_version`, newest first;
    /// a `from_version` past the end starts at the stream's last event
    /// (`u64::MAX` reads the whole stream backward).
    pub fn read_stream_backward(&self, stream: &str, from_version: u64) -> Result<ReadStream> {
        let head = self.view.stream_head(stream);
        ReadStream::new(Arc::clone(&self.view), head, from_version, true)
    }

    /// Every event from `from` on, in commit order, then each event as it is
    /// published, for ever: history and live in one sequence, each event
    /// once. `from` is a position this log handed out
    /// ([`RecordedEvent::next_position`] to go on after an event) or
    /// [`Position::START`]; one past the published end is refused.
    ///
    /// [`RecordedEvent::next_position`]: crate::RecordedEvent::next_position
    pub fn subscribe_all(&self, from: Position) -> Result<Subscription> {
        Subscription::all(Arc::clone(&self.view), from)
    }

    /// The events of `stream` from `from_version` on, then each new one as
    /// it is published. The history is read through the stream's index; a
    /// stream that does not exist yet is waited for.
    pub fn subscribe_stream(&self, stream: &str, from_version: u64) -> Result<Subscription> {
        Subscription::stream(Arc::clone(&self.view), stream, from_version)
    }

    /// The durable consumer `name`: a `$all` subscription that resumes after
    /// its last checkpoint (see [`Consumer`]).
    pub fn consumer(&self, name: &str) -> Result<Consumer> {
        Consumer::open(Arc::clone(&self.view), name)
    }

    /// The hash chain's digest of everything published so far: the log
    /// id, the position it covers up to and the chain's hash there
    /// (docs/ARCHITECTURE.md, "Hash chain"). Links what the background
    /// hasher has not reached yet. Damaged frames are `Error::Corrupt`.
    pub fn digest(&self) -> Result<Digest> {
        let head = self.append.chain.advance(&self.view)?;
        Ok(Digest::of(self.view.log_id, &head))
    }

    /// Checks the log end to end as far as it is published now: every
    /// frame's CRC and events, the hash chain from its start, each
    /// segment's chain record, each index file against its segment, and,
    /// given `against` (an earlier digest), that the log still holds
    /// exactly what it committed to. A damaged or altered log is `Ok` with
    /// [`Verification::failure`](crate::Verification) naming the first
    /// failure's segment, offset and position.
    pub fn verify(&self, against: Option<&Digest>) -> Result<crate::Verification> {
        crate::verify::verify_view(&self.view, against, &mut |_, _| {})
    }

    /// The log's id: random, fixed when the log was created, in every
    /// segment's header and seeding every frame's checksum. Names the log
    /// outside it (a bridge's message ids, say).
    pub fn log_id(&self) -> u128 {
        self.view.log_id
    }

    /// Returns once everything appended before the call is on disk.
    pub fn sync(&self) -> Result<()> {
        self.append.sync()
    }

    /// Ranges skipped by a repair (see [`Options::repair`]), this open or an
    /// earlier one. Empty for a log that never needed repair.
    pub fn quarantined(&self) -> &[Quarantined] {
        &self.view.quarantine
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.view.dir
    }

    /// A summary of the log: segments, streams, events counted, times,
    /// disk use (see [`LogInfo`](crate::inspect::LogInfo)). It costs a
    /// look at each segment and stream, not a walk of events.
    pub fn info(&self) -> Result<crate::inspect::LogInfo> {
        crate::inspect::info(&self.view)
    }

    /// Every durable consumer's checkpoint, by name, and how far behind
    /// the published end it is.
    pub fn consumers(&self) -> Result<Vec<crate::inspect::ConsumerInfo>> {
        crate::inspect::consumers(&self.view)
    }

    /// Number of streams in the log.
    pub fn stream_count(&self) -> usize {
        self.view.registry().len()
    }

    /// Syncs everything, marks the log cleanly closed, writes the active
    /// segment's index file so the next open scans nothing, and stops the
    /// threads.
    pub fn close(self) -> Result<()> {
        self.retention.stop();
        self.append.shutdown()
    }
}

/// Snapshots (`snapshot/`): derived state beside the log, see
/// docs/ARCHITECTURE.md "Snapshots".
impl Log {
    /// Saves `bytes` as `stream`'s state at `version` (every event up to
    /// and including it applied), in the caller's `schema_version`; then
    /// keeps the stream's newest [`Options::snapshots_kept`] snapshots
    /// (a failure to remove an older one is a warning).
    ///
    /// The events up to `version` are made durable first (a [`Log::sync`]
    /// when they are not yet), so a snapshot never names a version a crash
    /// can take away; the file is written crash-safely (a temporary file,
    /// fsync, rename, fsync of its directory). Saving at a version that has
    /// a snapshot replaces it.
    ///
    /// Errors, nothing written: [`Error::UnknownStream`] for a stream the
    /// log does not hold, [`Error::SnapshotAhead`] for a version past the
    /// stream's last, [`Error::SnapshotTooLarge`] over
    /// [`MAX_SNAPSHOT_BYTES`](limits::MAX_SNAPSHOT_BYTES), the stream name
    /// errors of [`Log::append`].
    pub fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        schema_version: u16,
        bytes: impl Into<Bytes>,
    ) -> Result<()> {
        let bytes = bytes.into();
        let save = snapshot::Save {
            stream,
            version,
            schema_version,
            bytes: &bytes,
        };
        self.snapshots
            .save(&self.view, &save, || self.append.sync())
    }

    /// [`Log::append`], then a snapshot of the state those events produce
    /// at the append's last version (what an event-sourcing framework's
    /// `persist(events, snapshot)` needs). The events are made durable
    /// before the snapshot is written, so a crash may leave the events
    /// without their snapshot, never a snapshot without its events.
    ///
    /// The snapshot is checked before anything is appended
    /// ([`Error::SnapshotTooLarge`]). `Err` means the events were not
    /// appended, or (under a durability other than `Sync`) that the sync
    /// making them durable failed ([`Error::Poisoned`]). Once the events
    /// are durable, a snapshot that cannot be written is a warning, not an
    /// error: the events are the truth, the next save replaces it.
    pub fn append_with_snapshot(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
        schema_version: u16,
        snapshot: impl Into<Bytes>,
    ) -> Result<AppendResult> {
        let bytes = snapshot.into();
        snapshot::check(stream, bytes.len())?;
        let result = self.append(stream, expected, events)?;
        self.append.sync()?;
        let save = snapshot::Save {
            stream,
            version: result.last_version,
            schema_version,
            bytes: &bytes,
        };
        if let Err(e) = self.snapshots.save(&self.view, &save, || Ok(())) {
            log::warn!(
                "seglog: snapshot of {stream:?} at {} not saved: {e}",
                result.last_version
            );
        }
        Ok(result)
    }

    /// The newest usable snapshot of `stream` at or before version
    /// `at_or_before` (`u64::MAX`: the newest). A snapshot file that is
    /// damaged, unreadable, of another log, or names a version the stream
    /// does not have is skipped with a warning and the next older one
    /// tried. `None` when there is none: also for a stream the log does
    /// not hold (it has no events a snapshot could reflect).
    pub fn load_snapshot(&self, stream: &str, at_or_before: u64) -> Result<Option<Snapshot>> {
        Ok(snapshot::load(&self.view, stream, at_or_before))
    }

    /// The versions of `stream`'s snapshot files, newest first, as listed
    /// (not read or checked: [`Log::load_snapshot`] checks).
    pub fn snapshot_versions(&self, stream: &str) -> Vec<u64> {
        snapshot::versions(&self.view, stream)
    }

    /// `stream`'s current state: from the newest snapshot whose schema
    /// version is `schema_version` and that `decode` accepts (others are
    /// skipped with a warning), else from `init()`, then every later event
    /// through `apply`. A stream the log does not hold gives `init()` at
    /// version `None`. Equal to a full replay whenever every snapshot was
    /// saved from one.
    pub fn rebuild<S, E: std::fmt::Display>(
        &self,
        stream: &str,
        schema_version: u16,
        decode: impl FnMut(&Snapshot) -> std::result::Result<S, E>,
        init: impl FnOnce() -> S,
        apply: impl FnMut(&mut S, &RecordedEvent),
    ) -> Result<Rebuilt<S>> {
        self.rebuild_at(stream, u64::MAX, schema_version, decode, init, apply)
    }

    /// [`Log::rebuild`] as of version `at_or_before`: only snapshots at or
    /// before it, and no event after it (time travel from a snapshot). A
    /// bound past the stream's end is its end; [`Rebuilt::version`] says
    /// where the state stands.
    pub fn rebuild_at<S, E: std::fmt::Display>(
        &self,
        stream: &str,
        at_or_before: u64,
        schema_version: u16,
        decode: impl FnMut(&Snapshot) -> std::result::Result<S, E>,
        init: impl FnOnce() -> S,
        apply: impl FnMut(&mut S, &RecordedEvent),
    ) -> Result<Rebuilt<S>> {
        let ask = snapshot::Rebuild {
            stream,
            at_or_before,
            schema_version,
        };
        snapshot::rebuild(&self.view, ask, decode, init, apply)
    }
}

impl Options {
    /// Opens (or creates) the log in `dir` with these options.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Log> {
        Log::open_with(dir, self)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.retention.stop();
        if let Err(e) = self.append.shutdown() {
            log::warn!("seglog: closing {:?} on drop failed: {e}", self.view.dir);
        }
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.view.dir)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Durability;

    #[test]
    fn log_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Log>();
        assert_send_sync::<crate::ReadAll>();
    }

    fn event(payload: &'static [u8]) -> [EventData; 1] {
        [EventData::new("T", payload)]
    }

    /// `Periodic` acknowledges before the sync and syncs within the interval
    /// by itself; `None` syncs only when asked.
    #[test]
    fn periodic_syncs_by_itself_and_none_on_request() {
        let durable = |log: &Log| log.append.commit.durable_end();
        let dir = tempfile::tempdir().unwrap();
        let periodic = std::time::Duration::from_millis(5);
        let log = Options::new()
            .durability(Durability::Periodic(periodic))
            .open(dir.path())
            .unwrap();
        let r = log.append("s", ExpectedVersion::Any, &event(b"p")).unwrap();
        let end = r.last_position.frame_offset() + 8;
        let started = std::time::Instant::now();
        while durable(&log) < end {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "no periodic sync"
            );
            std::thread::sleep(periodic);
        }
        log.close().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let log = Options::new()
            .durability(Durability::None)
            .open(dir.path())
            .unwrap();
        let before = durable(&log);
        log.append("s", ExpectedVersion::Any, &event(b"n")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(durable(&log), before, "Durability::None synced by itself");
        log.sync().unwrap();
        assert!(durable(&log) > before);
    }

    /// Under `Sync` the sync thread runs the rounds of groups, also of one
    /// that stops short of the previous group's size, and a lone appender
    /// runs its own: four appenders dwindling to one each find their
    /// append durable when it returns, and the last, alone, is a group of
    /// one, synced once per append.
    #[test]
    fn a_group_that_shrinks_to_one_appender_is_still_synced() {
        let durable = |log: &Log| log.append.commit.durable_end();
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(
            Options::new()
                .durability(Durability::Sync)
                .open(dir.path())
                .unwrap(),
        );
        let (done, finished) = crossbeam_channel::bounded(1);
        let appenders = Arc::clone(&log);
        std::thread::spawn(move || {
            let log = &*appenders;
            let start = std::sync::Barrier::new(4);
            std::thread::scope(|s| {
                for t in 0..4 {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        for _ in 0..if t == 0 { 200 } else { 20 + 10 * t } {
                            let r = log
                                .append(&format!("s{t}"), ExpectedVersion::Any, &event(b"x"))
                                .unwrap();
                            assert!(durable(log) > r.last_position.frame_offset());
                        }
                    });
                }
            });
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("an appender failed or never returned");
        let (rounds, target) = log.append.commit.rounds_and_target();
        assert_eq!(target, 1);
        log.append("s0", ExpectedVersion::Any, &event(b"y"))
            .unwrap();
        assert_eq!(log.append.commit.rounds_and_target().0, rounds + 1);
        assert_eq!(log.stream_version("s0"), Some(200));
    }

    #[test]
    fn a_reader_outliving_the_log_keeps_its_data_but_not_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        log.append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("T", &b"kept"[..])],
        )
        .unwrap();
        let mut reader = log.read_all(Position::START).unwrap();
        log.close().unwrap();
        let again = Log::open(dir.path()).unwrap();
        let event = reader.next().unwrap().unwrap();
        assert_eq!(&event.payload()[..], b"kept");
        drop(again);
    }
}
