//! `Log`: the handle that ties segments, the stream registry, the writer's
//! critical section and the background threads together.
//!
//! Append path (back of the envelope, 128-byte event): validate outside any
//! lock; inside the tail mutex look the stream up (one hash probe), check the
//! expected version, encode the frame straight into the mapping (one copy of
//! the payload, one CRC pass, ~200 bytes touched) and, unless the caller
//! waits for a sync, publish. No allocation, no syscall, no thread hop: a
//! few hundred nanoseconds. Under `Durability::Sync` the caller then waits
//! for a sync round, which pays one `msync` (~0.1-0.3 ms here) for every
//! append that arrived while the previous round ran; a lone caller runs
//! that round itself (see `Shared::wait_durable`).

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::consumer::Consumer;
use crate::error::{Error, Result};
use crate::event::{AppendRequest, AppendResult, EventData, EventRef, ExpectedVersion};
use crate::frame::{self, BatchMeta, Checksum, NO_PREV_FRAME};
use crate::index::SegmentIndex;
use crate::layout;
use crate::limits;
use crate::options::{Durability, Options};
use crate::position::{MAX_LOG_OFFSET, Position};
use crate::quarantine::Quarantined;
use crate::read::{self, ReadAll, ReadStream};
use crate::recovery;
use crate::segment::{HEADER_BYTES, OpenSegment, Segment, SegmentWriter};
use crate::storage::{Storage, filesystem};
use crate::streams::{Head, IndexEntry, Lookahead, NameHash, Names, Streams};
use crate::subscribe::Subscription;
use crate::watch::Watch;
use crate::writer::{self, Msg, SyncCursor};

/// Appends of an `append_many` call whose registry entries are being
/// loaded while the current one is written: enough misses in flight to
/// cover one (~150 ns) with the work of the appends before it.
const PREFETCH_AHEAD: usize = 16;

/// An open event log. `Send + Sync`: share one between threads with `Arc`.
///
/// Dropping it closes it cleanly (like [`Log::close`], ignoring errors).
pub struct Log {
    pub(crate) shared: Arc<Shared>,
    /// Held by the handle, not by `Shared`: readers that outlive the handle
    /// keep their mappings but not the directory.
    _lock: File,
}

/// The sync and preparer threads, started by the first append
/// ([`Shared::appending`]) rather than by `open`: an open that only reads
/// spawns none (two spawns were 30-90 us of a ~400 us reopen), and its
/// close writes nothing.
enum Background {
    /// Not started yet: what they start from.
    Idle(Start),
    Running(Threads),
    /// The handle closed (or, in a follower, there never are any).
    Stopped,
}

/// What the threads start from, as open left it.
struct Start {
    rx: Receiver<Msg>,
    /// The active segment's slot still says `CLEAN` (see
    /// [`recovery::Recovered::clean_tail`]).
    clean_tail: bool,
    /// The active segment's index file on disk describes all of it.
    index_current: bool,
    active: Arc<Segment>,
}

struct Threads {
    sync: JoinHandle<Result<()>>,
    preparer: Option<JoinHandle<()>>,
}

/// The next segment, made ahead of the writer by the preparer thread.
pub(crate) enum Spare {
    /// The preparer should create the segment starting at this offset.
    Wanted(u64),
    /// Being created. `awaited`: the writer reached the end of the active
    /// segment and waits for this one, so the preparer hands it over as it
    /// is, its zero-fill unfinished (`writer::run_preparer`).
    Creating { base: u64, awaited: bool },
    /// Ready to become the active segment.
    Ready(OpenSegment),
    /// Creation failed; the writer will retry when it needs the segment.
    Failed,
    /// The log is closing.
    Stop,
}

/// The registry and the writer's side of the tail: only the holder of
/// this lock appends.
pub(crate) struct Tail {
    pub(crate) streams: Streams,
    /// `None` in a read-only follower ([`Reader`](crate::Reader)), which
    /// applies what another process appends.
    write: Option<TailWrite>,
}

pub(crate) struct TailWrite {
    writer: SegmentWriter,
    /// What the active segment adds to the registry, for its index file.
    index: SegmentIndex,
    last_timestamp_us: u64,
    /// The active segment may be written: its slot no longer says `CLEAN`
    /// on disk. A copy of [`Durable::writable`] read under the tail lock
    /// alone, so appends check the durable lock only until it is set.
    writable: bool,
}

impl Tail {
    /// The registry of a follower.
    pub(crate) fn follower(streams: Streams) -> Tail {
        Tail {
            streams,
            write: None,
        }
    }
}

struct Durable {
    /// Log offset below which everything is on disk.
    synced_end: u64,
    poison: Option<String>,
    /// The sync thread dropped the clean flag of the active segment's slot
    /// (or open found nothing to drop): appends may write.
    writable: bool,
}

/// State shared by the handle, readers and background threads.
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) log_id: u128,
    pub(crate) checksum: Checksum,
    pub(crate) names: Names,
    /// Starts each append's registry lookup before the tail lock.
    lookahead: Lookahead,
    pub(crate) quarantine: Vec<Quarantined>,
    segments: RwLock<Vec<Arc<Segment>>>,
    pub(crate) tail: Mutex<Tail>,
    durable: Mutex<Durable>,
    durable_changed: Condvar,
    /// `Durable::synced_end`, readable without the lock: each frame records
    /// it, which is how recovery tells a torn write from damaged data.
    durable_end: AtomicU64,
    poisoned: AtomicBool,
    /// The end below which appenders waiting for a sync are released:
    /// stored after the round's publish, so an append that returns finds
    /// its events published.
    released_end: AtomicU64,
    /// Bumped after every change of `released_end` or `poisoned`; the word
    /// sync waiters sleep on.
    released_seq: AtomicU32,
    /// Sync requests since a round last took the group: the size of the
    /// group forming now.
    pub(crate) sync_requests: AtomicUsize,
    /// The size of the previous group: the request that completes it again
    /// rings the sync thread, which waits for it (see `writer::gather`); a
    /// request that finds it at one runs its own round.
    pub(crate) gather_target: AtomicUsize,
    /// How far syncing got. Whoever holds it runs a sync round: the sync
    /// thread, or a lone appender (see [`Shared::wait_durable`]).
    sync_cursor: Mutex<SyncCursor>,
    /// Bumped each time a round takes the group counted so far: the sync
    /// thread's sign that a lone appender synced the group it was waiting
    /// for.
    pub(crate) sync_rounds: AtomicU64,
    doorbell: Sender<Msg>,
    background: Mutex<Background>,
    spare: Mutex<Spare>,
    spare_changed: Condvar,
    /// Index files of sealed segments, waiting for their data to be durable.
    pub(crate) sealed_indexes: Mutex<Vec<SegmentIndex>>,
    /// The published end, for subscribers waiting at the head.
    pub(crate) watch: Watch,
    /// Names of the consumers open now.
    pub(crate) consumers: Mutex<HashSet<String>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks cannot leave torn state behind
    // that matters more than refusing service would: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_us() -> u64 {
    // `as_micros` divides a u128: 5% of an append to a cold stream (perf).
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs() * 1_000_000 + u64::from(d.subsec_micros())
    })
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

/// Checks what can be checked without the log's state: nothing here depends
/// on a lock, so bad input never delays other writers.
fn validate(stream: &str, events: &[EventData], max_frame_bytes: u64) -> Result<()> {
    if stream.is_empty() {
        return Err(Error::EmptyStreamName);
    }
    if stream.len() > limits::MAX_STREAM_NAME_BYTES {
        return Err(Error::StreamNameTooLong {
            len: stream.len(),
            max: limits::MAX_STREAM_NAME_BYTES,
        });
    }
    if events.is_empty() {
        return Err(Error::EmptyBatch);
    }
    if events.len() > limits::MAX_EVENTS_PER_APPEND {
        return Err(Error::TooManyEvents {
            count: events.len(),
            max: limits::MAX_EVENTS_PER_APPEND,
        });
    }
    for (index, event) in events.iter().enumerate() {
        let len = event.event_type.as_str().len();
        if len == 0 {
            return Err(Error::EmptyEventType { index });
        }
        if len > limits::MAX_EVENT_TYPE_BYTES {
            return Err(Error::EventTypeTooLong {
                index,
                len,
                max: limits::MAX_EVENT_TYPE_BYTES,
            });
        }
        let alone = frame::padded(frame::batch_len(Some(stream), std::slice::from_ref(event)));
        if alone > max_frame_bytes {
            return Err(Error::EventTooLarge {
                index,
                size_bytes: alone,
                max_bytes: max_frame_bytes,
            });
        }
    }
    Ok(())
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
        let rec = recovery::recover(&dir, &options)?;
        let mut segments = rec.sealed;
        segments.push(Arc::clone(&rec.active));
        let cursor = SyncCursor {
            index: segments.len() - 1,
            synced: rec.writer.cursor(),
        };
        let synced_end = rec.active.base() + rec.writer.cursor();
        let spare = match rec.spare {
            Some(seg) => Spare::Ready(seg),
            None => Spare::Wanted(rec.active.end()),
        };
        let (doorbell, rx) = crossbeam_channel::bounded(limits::SYNC_QUEUE_DEPTH);
        let shared = Arc::new(Shared {
            dir,
            checksum: Checksum::new(rec.log_id),
            log_id: rec.log_id,
            names: rec.names,
            lookahead: rec.streams.lookahead(),
            quarantine: rec.quarantine,
            segments: RwLock::new(segments),
            tail: Mutex::new(Tail {
                streams: rec.streams,
                write: Some(TailWrite {
                    writer: rec.writer,
                    index: rec.index,
                    last_timestamp_us: 0,
                    writable: false,
                }),
            }),
            durable: Mutex::new(Durable {
                synced_end,
                poison: None,
                writable: !rec.clean_tail,
            }),
            durable_changed: Condvar::new(),
            durable_end: AtomicU64::new(synced_end),
            poisoned: AtomicBool::new(false),
            released_end: AtomicU64::new(synced_end),
            released_seq: AtomicU32::new(0),
            sync_requests: AtomicUsize::new(0),
            gather_target: AtomicUsize::new(0),
            doorbell,
            sync_cursor: Mutex::new(cursor),
            sync_rounds: AtomicU64::new(0),
            background: Mutex::new(Background::Idle(Start {
                rx,
                clean_tail: rec.clean_tail,
                index_current: rec.index_current,
                active: rec.active,
            })),
            spare: Mutex::new(spare),
            spare_changed: Condvar::new(),
            sealed_indexes: Mutex::new(Vec::new()),
            watch: Watch::new(synced_end),
            consumers: Mutex::new(HashSet::new()),
            options,
        });
        Ok(Log {
            shared,
            _lock: lock_file,
        })
    }

    /// Appends `events` to `stream` as one atomic frame, if the stream's
    /// version matches `expected`. Returns the versions and positions given.
    ///
    /// Under [`Durability::Sync`] it returns once the events are on disk;
    /// otherwise once they are in the log and visible to readers.
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
        let shared = &*self.shared;
        // Everything up to the lookup overlaps the miss on a cold stream.
        let hash = shared.lookahead.prefetch(stream);
        let max_frame = shared.max_frame_bytes();
        validate(stream, events, max_frame)?;
        let now = now_us();
        let request = AppendRequest {
            stream,
            expected,
            events,
        };
        let (result, end) = self
            .shared
            .appending(|streams, w| shared.append_locked(streams, w, hash, &request, now))??;
        if shared.options.durability == Durability::Sync {
            shared.wait_durable(end)?;
        } else {
            shared.watch.wake();
        }
        Ok(result)
    }

    /// Several appends, to any streams, under one acquisition of the tail
    /// and (under [`Durability::Sync`]) one wait for the disk. Each is its
    /// own atomic frame with its own expected-version check, made in order
    /// (a later one sees the earlier ones' versions); each succeeds or
    /// fails alone, as [`Log::append`] would, and the results come back in
    /// the same order.
    ///
    /// Why: an append to a stream that is not in cache waits for a memory
    /// miss on its registry entry (~150 ns here, as long as a whole append
    /// to a hot stream). Here the entries of the next 16 appends are
    /// loaded while the current one is written, so appends spread over
    /// millions of streams run nearly as fast as over a few.
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
        let shared = &*self.shared;
        let max_frame = shared.max_frame_bytes();
        // The hashes of the appends whose entries are on their way, in a
        // ring: append `i`'s sits in slot `i % PREFETCH_AHEAD`.
        let mut hashes = [NameHash::default(); PREFETCH_AHEAD];
        let prefetch = |r: &AppendRequest<'_>| shared.lookahead.prefetch(r.stream);
        for (slot, request) in hashes.iter_mut().zip(requests) {
            *slot = prefetch(request);
        }
        let mut results = Vec::with_capacity(requests.len());
        let now = now_us();
        let mut end = 0;
        self.shared.appending(|streams, w| {
            for (i, request) in requests.iter().enumerate() {
                let slot = i % PREFETCH_AHEAD;
                let hash = hashes[slot];
                if let Some(ahead) = requests.get(i + PREFETCH_AHEAD) {
                    hashes[slot] = prefetch(ahead);
                }
                let appended = validate(request.stream, request.events, max_frame)
                    .and_then(|()| shared.append_locked(streams, w, hash, request, now));
                results.push(appended.map(|(result, frame_end)| {
                    end = end.max(frame_end);
                    result
                }));
            }
        })?;
        if shared.options.durability == Durability::Sync {
            if end > 0 {
                shared.wait_durable(end)?;
            }
        } else {
            shared.watch.wake();
        }
        Ok(results)
    }

    /// The last version of `stream`, or `None` for a stream never written.
    /// Counts appends whose sync is still in flight: it is the version the
    /// next append's expected-version check compares with.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        lock(&self.shared.tail).streams.version(stream)
    }

    /// Every event at or after `from`, in commit order, as owned events that
    /// share the mapping. Yields what is visible when each frame is reached;
    /// a damaged frame yields [`Error::Corrupt`] and ends the iteration.
    pub fn read_all(&self, from: Position) -> Result<ReadAll> {
        ReadAll::new(Arc::clone(&self.shared), from)
    }

    /// Calls `f` with a borrowed view of every event at or after `from`,
    /// straight from the mapping (no copy, no allocation per event).
    /// Returns the position after the last event seen: resume from there.
    pub fn replay<F>(&self, from: Position, f: F) -> Result<Position>
    where
        F: FnMut(EventRef<'_>),
    {
        read::replay(&self.shared, from, f)
    }

    /// The events of `stream` with versions `>= from_version`, oldest first.
    /// A stream never written reads as empty. Finding the start costs a
    /// binary search of the stream's sparse index plus at most one index
    /// interval of frames; then only this stream's frames are read.
    pub fn read_stream(&self, stream: &str, from_version: u64) -> Result<ReadStream> {
        let head = self.shared.stream_head(stream);
        ReadStream::new(Arc::clone(&self.shared), head, from_version, false)
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
        let head = self.shared.stream_head(stream);
        read::replay_stream(&self.shared, head, from_version, f)
    }

    /// The events of `stream` with versions `<= from_version`, newest first;
    /// a `from_version` past the end starts at the stream's last event
    /// (`u64::MAX` reads the whole stream backward).
    pub fn read_stream_backward(&self, stream: &str, from_version: u64) -> Result<ReadStream> {
        let head = self.shared.stream_head(stream);
        ReadStream::new(Arc::clone(&self.shared), head, from_version, true)
    }

    /// Every event from `from` on, in commit order, then each event as it is
    /// published, for ever: history and live in one sequence, each event
    /// once. `from` is a position this log handed out
    /// ([`RecordedEvent::next_position`] to go on after an event) or
    /// [`Position::START`]; one past the published end is refused.
    ///
    /// [`RecordedEvent::next_position`]: crate::RecordedEvent::next_position
    pub fn subscribe_all(&self, from: Position) -> Result<Subscription> {
        Subscription::all(Arc::clone(&self.shared), from)
    }

    /// The events of `stream` from `from_version` on, then each new one as
    /// it is published. The history is read through the stream's index; a
    /// stream that does not exist yet is waited for.
    pub fn subscribe_stream(&self, stream: &str, from_version: u64) -> Result<Subscription> {
        Subscription::stream(Arc::clone(&self.shared), stream, from_version)
    }

    /// The durable consumer `name`: a `$all` subscription that resumes after
    /// its last checkpoint (see [`Consumer`]).
    pub fn consumer(&self, name: &str) -> Result<Consumer> {
        Consumer::open(Arc::clone(&self.shared), name)
    }

    /// Returns once everything appended before the call is on disk.
    pub fn sync(&self) -> Result<()> {
        let end = {
            let tail = lock(&self.shared.tail);
            tail.write
                .as_ref()
                .map_or(0, |w| w.writer.segment().base() + w.writer.cursor())
        };
        // Durable already (nothing appended since open, say): no round, and
        // no threads started for it.
        if end <= self.shared.durable_end.load(Ordering::Acquire) {
            return Ok(());
        }
        self.shared.wait_durable(end)
    }

    /// Ranges skipped by a repair (see [`Options::repair`]), this open or an
    /// earlier one. Empty for a log that never needed repair.
    pub fn quarantined(&self) -> &[Quarantined] {
        &self.shared.quarantine
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Number of streams in the log.
    pub fn stream_count(&self) -> usize {
        lock(&self.shared.tail).streams.len()
    }

    /// Syncs everything, marks the log cleanly closed, writes the active
    /// segment's index file so the next open scans nothing, and stops the
    /// threads.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let shared = &self.shared;
        let background = std::mem::replace(&mut *lock(&shared.background), Background::Stopped);
        let threads = match background {
            Background::Stopped => return Ok(()),
            Background::Idle(start) => {
                // Nothing was appended through this handle. After a clean
                // close the files say so already; after recovery (or for a
                // new log) the tail is marked clean here, no thread needed.
                shared.watch.close();
                if start.clean_tail && start.index_current {
                    return Ok(());
                }
                if !start.clean_tail {
                    writer::mark_clean(shared, *shared.lock_sync_cursor())?;
                }
                return shared.write_tail_index();
            }
            Background::Running(threads) => threads,
        };
        let sent = shared.doorbell.send(Msg::Shutdown);
        let synced = threads.sync.join().unwrap_or_else(|_| {
            Err(Error::Poisoned {
                reason: "the sync thread panicked".into(),
            })
        });
        // Nothing is published through this handle from here on.
        shared.watch.close();
        *lock(&shared.spare) = Spare::Stop;
        shared.spare_changed();
        if let Some(preparer) = threads.preparer {
            let _ = preparer.join();
        }
        if sent.is_err() {
            return Err(shared.poison_error());
        }
        synced?;
        if shared.is_poisoned() {
            return Err(shared.poison_error());
        }
        shared.write_tail_index()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::warn!("seglog: closing {:?} on drop failed: {e}", self.shared.dir);
        }
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The state of a read-only follower of the log in `dir`: no writer, no
    /// background threads of the log's; the follower fills `segments` and
    /// the registry as it applies what the writer publishes.
    pub(crate) fn follower(
        dir: PathBuf,
        log_id: u128,
        options: Options,
        quarantine: Vec<Quarantined>,
        first: Arc<Segment>,
    ) -> Shared {
        let streams = Streams::new(options.index_interval);
        // Nothing is ever sent: a follower never syncs.
        let (doorbell, _) = crossbeam_channel::bounded(1);
        Shared {
            dir,
            checksum: Checksum::new(log_id),
            log_id,
            names: Names::new(),
            lookahead: streams.lookahead(),
            quarantine,
            watch: Watch::new(first.base() + HEADER_BYTES),
            segments: RwLock::new(vec![first]),
            tail: Mutex::new(Tail::follower(streams)),
            durable: Mutex::new(Durable {
                synced_end: 0,
                poison: None,
                writable: false,
            }),
            durable_changed: Condvar::new(),
            durable_end: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            released_end: AtomicU64::new(0),
            released_seq: AtomicU32::new(0),
            sync_requests: AtomicUsize::new(0),
            gather_target: AtomicUsize::new(0),
            sync_cursor: Mutex::new(SyncCursor {
                index: 0,
                synced: HEADER_BYTES,
            }),
            sync_rounds: AtomicU64::new(0),
            doorbell,
            background: Mutex::new(Background::Stopped),
            spare: Mutex::new(Spare::Stop),
            spare_changed: Condvar::new(),
            sealed_indexes: Mutex::new(Vec::new()),
            consumers: Mutex::new(HashSet::new()),
            options,
        }
    }

    /// Every segment, oldest first.
    pub(crate) fn segments_snapshot(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds the next segment a follower reached.
    pub(crate) fn push_segment(&self, seg: Arc<Segment>) {
        self.segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(seg);
    }

    /// The largest frame a segment created from now on can hold.
    fn max_frame_bytes(&self) -> u64 {
        self.options.segment_size_bytes - HEADER_BYTES - frame::END_BYTES as u64
    }

    pub(crate) fn segment_at(&self, index: usize) -> Option<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(index)
            .cloned()
    }

    /// The index of the segment holding log offset `at` (the first segment
    /// when `at` lies before the log), and that segment.
    pub(crate) fn segment_for(&self, at: u64) -> Option<(usize, Arc<Segment>)> {
        let segs = self.segments.read().unwrap_or_else(|p| p.into_inner());
        let index = segs.partition_point(|s| s.base() <= at).saturating_sub(1);
        segs.get(index).map(|s| (index, Arc::clone(s)))
    }

    /// Runs `f` with the registry and the writer under the tail lock, then
    /// publishes what it appended. A poisoned log refuses.
    fn appending<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Streams, &mut TailWrite) -> R,
    ) -> Result<R> {
        let mut tail = lock(&self.tail);
        if self.is_poisoned() {
            return Err(self.poison_error());
        }
        let Tail { streams, write } = &mut *tail;
        // Only a `Reader`'s registry has no writer, and it never appends.
        let Some(w) = write.as_mut() else {
            return Err(Error::Closed);
        };
        if !w.writable {
            self.start_background()?;
            self.wait_writable()?;
            w.writable = true;
        }
        let out = f(streams, w);
        self.publish_tail(w);
        Ok(out)
    }

    /// One append under the tail lock: look the stream up, check, encode the
    /// frame into the mapping and record it. Publishes nothing (see
    /// [`Shared::publish_tail`]). Returns what the append assigned (or, for
    /// a retry, what the original did) and the log offset it ends at.
    fn append_locked(
        &self,
        streams: &mut Streams,
        w: &mut TailWrite,
        hash: NameHash,
        request: &AppendRequest<'_>,
        now: u64,
    ) -> Result<(AppendResult, u64)> {
        let AppendRequest {
            stream,
            expected,
            events,
        } = *request;
        let max_frame = self.max_frame_bytes();
        let count = events.len() as u64;
        let found = streams.find_hashed(hash, stream);
        let id = found.map(|f| f.id);
        let head = found.map(|f| f.head);
        let actual = head.map(|h| h.last_version);
        if let (Some(id), Some(head)) = (id, head)
            && let Some(original) = self.find_retry(streams, id, head, expected, events)?
        {
            return Ok(original);
        }
        if !expected.matches(actual) {
            return Err(Error::WrongExpectedVersion {
                stream: stream.to_string(),
                expected,
                actual,
            });
        }
        let first_version = actual.map_or(0, |v| v + 1);
        if first_version + count - 1 > limits::MAX_VERSION {
            return Err(Error::LogFull);
        }
        let defines = id.is_none().then_some(stream);
        let len = frame::padded(frame::batch_len(defines, events));
        if len > max_frame {
            return Err(Error::BatchTooLarge {
                size_bytes: len,
                max_bytes: max_frame,
            });
        }
        if len + frame::END_BYTES as u64 > w.writer.remaining() {
            self.roll(w, streams)?;
        }
        let seg_base = w.writer.segment().base();
        let at = seg_base + w.writer.cursor();
        if at + len >= MAX_LOG_OFFSET {
            return Err(Error::LogFull);
        }
        let last_version = first_version + count - 1;
        let id = match id {
            Some(id) => id,
            None => {
                let head = Head {
                    last_version,
                    last_frame: at,
                };
                // The lookup above found no stream: only the limit can refuse.
                streams
                    .insert(&self.names, stream, head)
                    .map_err(|_| Error::TooManyStreams {
                        max: limits::MAX_STREAMS,
                    })?
            }
        };
        w.last_timestamp_us = w.last_timestamp_us.max(now);
        let meta = BatchMeta {
            stream_id: id,
            defines,
            first_version,
            prev_frame: head.map_or(NO_PREV_FRAME, |h| h.last_frame),
            timestamp_us: w.last_timestamp_us,
            durable_end: self.durable_end.load(Ordering::Acquire).min(at),
        };
        let checksum = &self.checksum;
        w.writer.append(len, |out| {
            frame::encode_batch(out, at, checksum, &meta, events);
            debug_assert!(
                frame::decode(out, at, checksum).is_ok(),
                "a frame must decode right after it is encoded"
            );
        });
        let recorded = match found {
            Some(found) => streams.record_found(found, first_version, last_version, at),
            None => streams.record(id, first_version, last_version, at),
        };
        let first_here = head.is_none_or(|h| h.last_frame < seg_base);
        w.index
            .record(defines.is_some(), &recorded, first_here, w.writer.cursor());
        if writer::crossed_prefault_chunk(at - seg_base, w.writer.cursor()) {
            self.spare_changed();
        }
        let last_index = (count - 1) as u16;
        let result = AppendResult {
            first_version,
            last_version,
            first_position: Position::new(at, 0),
            last_position: Position::new(at, last_index),
        };
        Ok((result, at + len))
    }

    /// Makes what was appended visible (unless the sync thread does it,
    /// under `Sync`). The caller wakes subscribers after the tail lock.
    fn publish_tail(&self, w: &TailWrite) {
        if self.options.durability != Durability::Sync {
            let seg = w.writer.segment();
            seg.publish(w.writer.cursor());
            self.announce(seg, seg.base() + w.writer.cursor());
        }
    }

    /// After `seg` was published up to log offset `end`: advances the watch
    /// and wakes follower processes waiting on `seg`. The caller wakes this
    /// process's subscribers (`watch.wake()`) once its locks are released.
    pub(crate) fn announce(&self, seg: &Segment, end: u64) {
        self.watch.advance(end);
        seg.wake_followers();
    }

    /// Whether log offset `at` lies past what readers may see. Segments
    /// publish before the watch advances, so a subscriber can hand out an
    /// event the watch does not cover yet; this asks the segments.
    pub(crate) fn is_past_published(&self, at: u64) -> bool {
        self.segment_for(at)
            .is_none_or(|(_, seg)| at > seg.base() + seg.published())
    }

    /// If `events` repeat an append already in stream `id` (a client retry:
    /// every event has an id, and they match the original's in order), the
    /// original result and the log offset its frame ends at.
    ///
    /// The window: a retry with `Exact(n)` or `NoStream` is matched against
    /// the append that followed version `n` (or created the stream), however
    /// long ago, found through the sparse index in O(log n + K) frame reads;
    /// a retry with `Any` or `StreamExists` only against the stream's last
    /// append. Runs under the tail lock, only for batches that carry ids.
    fn find_retry(
        &self,
        streams: &Streams,
        id: u32,
        head: Head,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<Option<(AppendResult, u64)>> {
        if !events.iter().all(|e| e.id.is_some()) {
            return Ok(None);
        }
        let frame = match expected {
            ExpectedVersion::Exact(n) if n < head.last_version => {
                let above = streams.entry_above(id, n + 1);
                read::frame_starting_at(self, id, head.last_frame, above, n + 1)?
            }
            ExpectedVersion::NoStream => {
                // A creating batch longer than the interval has an entry at 0.
                let above = streams.entry_above(id, 0);
                read::frame_starting_at(self, id, head.last_frame, above, 0)?
            }
            ExpectedVersion::Any | ExpectedVersion::StreamExists => {
                Some(read::stream_frame(self, id, head.last_frame)?)
            }
            ExpectedVersion::Exact(_) => None,
        };
        match frame {
            Some(f) => read::same_append(&f, events),
            None => Ok(None),
        }
    }

    /// Stream `name`'s id and head, taken in one short critical section.
    pub(crate) fn stream_head(&self, name: &str) -> Option<(u32, Head)> {
        let tail = lock(&self.tail);
        tail.streams.find(name).map(|f| (f.id, f.head))
    }

    /// Up to `n` sparse index entries of stream `id` above `version`,
    /// oldest first.
    pub(crate) fn index_entries_above(&self, id: u32, version: u64, n: usize) -> Vec<IndexEntry> {
        lock(&self.tail).streams.entries_above(id, version, n)
    }

    /// The first sparse index entry of stream `id` above `version`.
    pub(crate) fn index_entry_above(&self, id: u32, version: u64) -> Option<IndexEntry> {
        lock(&self.tail).streams.entry_above(id, version)
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn poison_error(&self) -> Error {
        let reason = lock(&self.durable)
            .poison
            .clone()
            .unwrap_or_else(|| "the sync thread stopped".into());
        Error::Poisoned { reason }
    }

    /// Refuses every later write: after a failed sync the kernel may have
    /// dropped dirty pages, so retrying could report lost data as durable.
    pub(crate) fn poison(&self, error: &Error) {
        log::error!("seglog: refusing further writes: {error}");
        let mut d = lock(&self.durable);
        d.poison.get_or_insert_with(|| error.to_string());
        self.poisoned.store(true, Ordering::Release);
        self.durable_changed.notify_all();
        drop(d);
        self.release_waiters();
        self.watch.close();
    }

    /// Wakes every appender waiting for a sync, to look again.
    fn release_waiters(&self) {
        self.released_seq.fetch_add(1, Ordering::Release);
        atomic_wait::wake_all(&self.released_seq);
    }

    /// Records that `[.., end)` is durable, runs `publish` and only then
    /// releases the appenders waiting for it: a reader that sees a
    /// published event knows its append can only return `Ok` (the durable
    /// end is set first), and an appender that returns finds its events
    /// published (read-your-writes). The waiters are woken after the lock
    /// is dropped: they look at atomics only, so none of them wakes into a
    /// held lock.
    pub(crate) fn set_durable(&self, end: u64, publish: impl FnOnce()) {
        let mut d = lock(&self.durable);
        debug_assert!(end >= d.synced_end, "durable end went back");
        d.synced_end = d.synced_end.max(end);
        self.durable_end.store(d.synced_end, Ordering::Release);
        publish();
        self.released_end.store(d.synced_end, Ordering::Release);
        drop(d);
        self.release_waiters();
    }

    /// Writes the active segment's index file, so the next open scans
    /// nothing. Only after the tail's last frame is durable.
    fn write_tail_index(&self) -> Result<()> {
        let mut tail = lock(&self.tail);
        let Tail { streams, write } = &mut *tail;
        let Some(w) = write.as_mut() else {
            return Ok(());
        };
        debug_assert_eq!(w.index.covered, w.writer.cursor());
        w.index.finalize(streams);
        w.index
            .write(&*self.options.storage, &self.dir, self.log_id, &self.names)
    }

    /// Starts the sync and preparer threads if they are not running yet
    /// (the first append of this handle, under the tail lock). A thread that
    /// cannot be spawned poisons the log: nothing was written yet, and
    /// nothing can be made durable without it.
    fn start_background(self: &Arc<Self>) -> Result<()> {
        let mut background = lock(&self.background);
        let start = match std::mem::replace(&mut *background, Background::Stopped) {
            Background::Idle(start) => start,
            Background::Stopped => return Err(Error::Closed),
            running => {
                *background = running;
                return Ok(());
            }
        };
        let spawn_err = |e| Error::io(&self.dir, e);
        let cursor = *self.lock_sync_cursor();
        let Start {
            rx,
            clean_tail,
            active,
            ..
        } = start;
        let sync = {
            let shared = Arc::clone(self);
            std::thread::Builder::new()
                .name("seglog-sync".into())
                .spawn(move || writer::run_sync(shared, rx, clean_tail))
                .map_err(spawn_err)
        };
        let sync = match sync {
            Ok(sync) => sync,
            Err(e) => {
                self.poison(&e);
                return Err(e);
            }
        };
        let preparer = {
            let shared = Arc::clone(self);
            std::thread::Builder::new()
                .name("seglog-prepare".into())
                .spawn(move || writer::run_preparer(shared, active, cursor.synced))
                .map_err(spawn_err)
        };
        let (preparer, failed) = match preparer {
            Ok(preparer) => (Some(preparer), None),
            Err(e) => {
                self.poison(&e);
                (None, Some(e))
            }
        };
        *background = Background::Running(Threads { sync, preparer });
        failed.map_or(Ok(()), Err)
    }

    /// Lets appends write to the active segment: its slot no longer says
    /// `CLEAN` on disk.
    pub(crate) fn open_for_writes(&self) {
        lock(&self.durable).writable = true;
        self.durable_changed.notify_all();
    }

    /// Waits until appends may write (see [`Shared::open_for_writes`]). The
    /// first append after a clean open waits here for at most the one
    /// header sync the sync thread starts at open.
    fn wait_writable(&self) -> Result<()> {
        self.wait_until(|d| d.writable)
    }

    /// Waits on the `durable` lock until `ready` holds or the log is
    /// poisoned; `ready` is asked first, so what was reached before a later
    /// failure still counts.
    fn wait_until(&self, ready: impl Fn(&Durable) -> bool) -> Result<()> {
        let mut d = lock(&self.durable);
        loop {
            if ready(&d) {
                return Ok(());
            }
            if let Some(reason) = &d.poison {
                return Err(Error::Poisoned {
                    reason: reason.clone(),
                });
            }
            d = self
                .durable_changed
                .wait(d)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Hands the sync thread `msg` if its queue has room (a full queue has a
    /// sync due already).
    pub(crate) fn ring(&self, msg: Msg) {
        let _ = self.doorbell.try_send(msg);
    }

    /// The sync cursor: holding it is running a sync round.
    pub(crate) fn lock_sync_cursor(&self) -> MutexGuard<'_, SyncCursor> {
        lock(&self.sync_cursor)
    }

    /// Counts a sync request and waits until `[.., end)` is durable.
    ///
    /// A lone appender (a request that starts a group when the previous
    /// group was of one) runs the round itself ([`writer::sync_group`]),
    /// after any round in flight: handing it to the sync thread and being
    /// woken by it cost two cross-core wake-ups a round, ~25 us of a
    /// one-thread durable append's ~85 us here (okaywal's
    /// `synchronize_locked` does the same). A group of several is the sync
    /// thread's: the request that starts it rings, and so does the one
    /// that makes it as large as the previous group, which ends the sync
    /// thread's wait for it (`writer::gather`); requests in between only
    /// count, for ringing each would wake the sync thread once per
    /// appender. An appender running the round of a group instead kept the
    /// sync thread awake on the other core during that round's `msync`,
    /// which then had to shoot down its TLB entries there: 16.4k of those
    /// interrupts in a 3 s run of 4 threads against 263, and fewer
    /// appends a round at 16 threads (PERFORMANCE.md, "Durable append and
    /// group commit (W3)").
    fn wait_durable(&self, end: u64) -> Result<()> {
        let n = self.sync_requests.fetch_add(1, Ordering::AcqRel) + 1;
        let target = self.gather_target.load(Ordering::Acquire);
        if n == 1 && target <= 1 {
            // A failed round poisoned the log; `wait_released` reports it
            // unless an earlier round made `[.., end)` durable.
            let synced = writer::sync_group(self);
            debug_assert!(synced.is_ok() || self.is_poisoned());
        } else if n == 1 || n == target {
            match self.doorbell.try_send(Msg::Sync) {
                // A full queue means a round is already due and will cover us.
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return Err(self.poison_error()),
            }
        }
        self.wait_released(end)
    }

    /// Waits until a sync round released `[.., end)`, or the log is
    /// poisoned. Sleeps on `released_seq` (a futex word) rather than a
    /// condition variable: a condition variable wakes every waiter into its
    /// mutex, one at a time, which on two cores cost a group of 16 more
    /// than its fsync.
    fn wait_released(&self, end: u64) -> Result<()> {
        // Durable before a later sync failed is durable: subscribers may
        // have seen it, so its append must not report a failure.
        loop {
            let seq = self.released_seq.load(Ordering::Acquire);
            if self.released_end.load(Ordering::Acquire) >= end {
                return Ok(());
            }
            if self.poisoned.load(Ordering::Acquire) {
                return Err(self.poison_error());
            }
            atomic_wait::wait(&self.released_seq, seq);
        }
    }

    pub(crate) fn lock_spare(&self) -> MutexGuard<'_, Spare> {
        lock(&self.spare)
    }

    pub(crate) fn wait_spare<'a>(&self, guard: MutexGuard<'a, Spare>) -> MutexGuard<'a, Spare> {
        self.spare_changed
            .wait(guard)
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a change of the spare segment's state, at most `timeout`.
    pub(crate) fn wait_spare_timeout<'a>(
        &self,
        guard: MutexGuard<'a, Spare>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, Spare> {
        self.spare_changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// The segment the writer appends to now (the newest).
    pub(crate) fn active_segment(&self) -> Option<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .cloned()
    }

    pub(crate) fn spare_changed(&self) {
        self.spare_changed.notify_all();
    }

    /// The segment starting at `base`: the preparer's if ready (waiting if it
    /// is being made), else made here. A full disk fails here, cleanly.
    fn next_segment(&self, base: u64) -> Result<OpenSegment> {
        let mut spare = self.lock_spare();
        loop {
            match &mut *spare {
                Spare::Ready(seg) if seg.segment().base() == base => {
                    let next = seg.segment().end();
                    if let Spare::Ready(seg) = std::mem::replace(&mut *spare, Spare::Wanted(next)) {
                        self.spare_changed();
                        return Ok(seg);
                    }
                }
                Spare::Creating { base: b, awaited } if *b == base => {
                    *awaited = true;
                    spare = self.wait_spare(spare);
                }
                _ => break,
            }
        }
        // Made while holding the lock so the preparer cannot race us to it.
        match OpenSegment::create(
            &self.options.storage,
            &self.dir,
            base,
            self.options.segment_size_bytes,
            self.log_id,
            self.options.preallocate,
        ) {
            Ok(seg) => {
                *spare = Spare::Wanted(base + seg.segment().size());
                self.spare_changed();
                Ok(seg)
            }
            Err(e) => {
                *spare = Spare::Failed;
                Err(e)
            }
        }
    }

    /// Seals the active segment and makes the next one active. Nothing
    /// changes if the next segment cannot be created.
    fn roll(&self, tail: &mut TailWrite, streams: &Streams) -> Result<()> {
        let old = Arc::clone(tail.writer.segment());
        let next = self.next_segment(old.end())?;
        let (seg, next_writer) = next.into_active(HEADER_BYTES);
        // Readers must find the next segment before they can see the marker.
        self.segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(seg);
        let mut old_writer = std::mem::replace(&mut tail.writer, next_writer);
        let at = old.base() + old_writer.cursor();
        let checksum = &self.checksum;
        old_writer.append(frame::END_BYTES as u64, |out| {
            frame::encode_end(out, at, checksum);
        });
        let mut index =
            std::mem::replace(&mut tail.index, SegmentIndex::new(old.end(), HEADER_BYTES));
        index.covered = old_writer.cursor();
        index.finalize(streams);
        // The sync thread writes it once the segment is durable and sealed.
        lock(&self.sealed_indexes).push(index);
        if self.options.durability != Durability::Sync {
            old.publish(old_writer.cursor());
            // Followers waiting on the old segment must see its end marker.
            std::sync::atomic::fence(Ordering::SeqCst);
            old.wake_followers();
        }
        old_writer.seal();
        // Under None and Periodic the preparer rings the sync thread for
        // the sealed segment once it has dropped the segment's pages from
        // the page tables: a sync of it here, still mapped, cost appenders
        // a storm of TLB-shootdown interrupts (perf).
        if self.options.durability == Durability::Sync {
            let _ = self.doorbell.try_send(Msg::Sync);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let durable = |log: &Log| log.shared.durable_end.load(Ordering::Acquire);
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
        let durable = |log: &Log| log.shared.durable_end.load(Ordering::Acquire);
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
        assert_eq!(log.shared.gather_target.load(Ordering::Acquire), 1);
        let rounds = log.shared.sync_rounds.load(Ordering::Acquire);
        log.append("s0", ExpectedVersion::Any, &event(b"y"))
            .unwrap();
        assert_eq!(log.shared.sync_rounds.load(Ordering::Acquire), rounds + 1);
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
