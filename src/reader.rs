//! `Reader`: a read-only handle on a log that another process (or another
//! `Log` handle) writes. It never takes the writer's directory lock and
//! never writes a byte the writer reads, except a waiter count.
//!
//! The protocol. Each segment's header page holds live words outside every
//! checksum (docs/FORMAT.md): the offset up to which the writer has
//! published the segment, the same offset's low 32 bits as a futex word, and
//! a count of follower processes waiting on that word. The writer stores the
//! offset after the frames below it are complete (release), so a follower
//! that loads it (acquire) may read everything below it: those frames are
//! published, so acknowledged, and never written again. The writer, after a
//! `SeqCst` fence, wakes the futex only when the waiter count is non-zero,
//! so a log nobody follows pays two stores and a load per publish.
//!
//! A follower applies what is committed to a registry of its own (names,
//! heads, sparse index) before it lets its readers see it, so an event is
//! never handed out before the name of its stream is known. A background
//! thread sleeps on the futex word of the newest segment and applies each
//! publish as it comes, then wakes this process's subscribers; reads
//! (`read_all`, `read_stream`, ...) apply what is committed first, so they
//! see at least everything published before the call.
//!
//! A segment ends at its end marker; the writer creates the next segment's
//! file before it writes the marker, so the follower opens the next file
//! when it applies the marker. Sealed segments are loaded from their index
//! files when they fit, as at open.
//!
//! While a writer that crashed has not been reopened yet, a live word may
//! point past frames a power cut lost; the follower stops at zeroed bytes
//! and goes on when the writer's recovery has lowered the word.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::chain::{Chain, Digest};
use crate::commit::lock;
use crate::consumer::Consumer;
use crate::error::{Error, Result};
use crate::event::{EventRef, RecordedEvent};
use crate::frame::{Checksum, DecodeError};
use crate::index::SegmentIndex;
use crate::layout;
use crate::options::Options;
use crate::position::Position;
use crate::quarantine;
use crate::read::{self, ReadAll, ReadStream};
use crate::segment::{HEADER_BYTES, OpenSegment, SLOT_SEALED, Segment, corrupt};
use crate::shred::KeyRing;
use crate::snapshot::{self, Rebuilt, Snapshot};
use crate::start::{self, LogStart};
use crate::storage::RealStorage;
use crate::streams::{Names, Streams};
use crate::subscribe::Subscription;
use crate::view::{LogView, ViewParts};
use crate::walk::{Check, FrameCursor, Step};

/// Longest the follow thread sleeps without looking at the log: a backstop
/// for a missed wake (a writer restarted, a segment rolled under it).
const FOLLOW_BACKSTOP: Duration = Duration::from_millis(100);

/// Where the follower has applied the log up to.
struct FollowAt {
    /// Index of the segment being applied.
    index: usize,
    /// Offset in it of the next frame to apply.
    offset: u64,
}

struct Follower {
    shared: Arc<LogView>,
    at: Mutex<FollowAt>,
    checksum: Checksum,
    stop: AtomicBool,
}

/// A read-only handle on a log directory, for another process (or thread)
/// than the writer's: reads, stream reads and subscriptions that follow the
/// writer live. It takes no lock the writer takes, and the writer never
/// waits for it.
///
/// ```
/// use seglog::{EventData, ExpectedVersion, Log, Position, Reader};
/// # fn main() -> seglog::Result<()> {
/// let dir = tempfile::tempdir().expect("temporary directory");
/// let log = Log::open(dir.path())?;
/// log.append("order-1", ExpectedVersion::NoStream, &[EventData::new("Placed", &b"{}"[..])])?;
///
/// let reader = Reader::open(dir.path())?; // usually in another process
/// let mut live = reader.subscribe_all(Position::START)?;
/// assert_eq!(live.next_timeout(std::time::Duration::from_secs(5))?.map(|e| e.version()), Some(0));
/// log.append("order-1", ExpectedVersion::Exact(0), &[EventData::new("Paid", &b"{}"[..])])?;
/// let paid = live.next_timeout(std::time::Duration::from_secs(5))?.expect("published");
/// assert_eq!((paid.stream(), paid.event_type()), ("order-1", "Paid"));
/// # Ok(())
/// # }
/// ```
pub struct Reader {
    follower: Arc<Follower>,
    thread: Option<JoinHandle<()>>,
    /// The hash chain, started by the first digest from the segments'
    /// records.
    chain: OnceLock<Chain>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("dir", &self.follower.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Opens the log in `dir` read-only: applies what the writer has
    /// published so far and starts a thread that follows it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Reader> {
        Reader::open_with(dir, &Options::new())
    }

    /// [`Reader::open`] with the options that apply to reading: the
    /// [upcasters](Options::upcasters) and the [master key](Options::master_key)
    /// (the key store is read, never written, and read again when the
    /// writer rewrote it: each read sees the keys made and forgotten
    /// before it). The others (segment size,
    /// durability, repair, ...) are the writer's and are not used here.
    pub fn open_with(dir: impl AsRef<Path>, options: &Options) -> Result<Reader> {
        let dir = dir.as_ref().to_path_buf();
        let (open, start) = open_first(&dir)?;
        let log_id = open.segment().log_id();
        let quarantine = quarantine::load(&dir)?;
        let sealed = is_sealed(&open);
        let seg = open.into_followed();
        let names = Names::new();
        let mut streams = Streams::new(Options::new().index_interval);
        start
            .seed(&names, &mut streams)
            .map_err(|reason| Error::Corrupt {
                segment: dir.join(layout::START_FILE),
                offset: 0,
                reason,
            })?;
        let keys = match &options.master_key {
            Some(master) => Some(Arc::new(KeyRing::open(
                &dir,
                Arc::new(RealStorage),
                log_id,
                master,
                false,
            )?)),
            None => None,
        };
        let shared = Arc::new(LogView::new(ViewParts {
            dir,
            log_id,
            names,
            quarantine,
            // A follower makes nothing durable: its files bypass the seam,
            // which exists for the writer's fault tests.
            storage: Arc::new(RealStorage),
            end: seg.base() + HEADER_BYTES,
            segments: vec![Arc::clone(&seg)],
            streams,
            upcasters: options.upcasters.clone(),
            start,
            keys,
        }));
        let follower = Arc::new(Follower {
            checksum: Checksum::new(log_id),
            shared,
            at: Mutex::new(FollowAt {
                index: 0,
                offset: HEADER_BYTES,
            }),
            stop: AtomicBool::new(false),
        });
        if let Some(watermark) = sealed {
            follower.load_index(&seg, watermark, &mut lock(&follower.at));
        }
        follower.apply()?;
        let thread = {
            let follower = Arc::clone(&follower);
            std::thread::Builder::new()
                .name("seglog-follow".into())
                .spawn(move || follower.run())
        }
        .map_err(|e| Error::io(&follower.shared.dir, e))?;
        Ok(Reader {
            follower,
            thread: Some(thread),
            chain: OnceLock::new(),
        })
    }

    fn shared(&self) -> &Arc<LogView> {
        &self.follower.shared
    }

    /// The view, with everything the writer has published applied: what
    /// each read of this reader starts from.
    pub(crate) fn applied(&self) -> Result<&Arc<LogView>> {
        self.follower.apply()?;
        Ok(self.shared())
    }

    /// The log's id (see [`Log::log_id`](crate::Log::log_id)).
    pub fn log_id(&self) -> u128 {
        self.shared().log_id
    }

    /// The first position the log held when this reader opened (see
    /// [`Log::log_start`](crate::Log::log_start)). Segments retention
    /// removes later stay readable here while this reader maps them.
    pub fn log_start(&self) -> Position {
        self.shared().log_start().position()
    }

    /// Applies everything the writer has published by now; returns the
    /// position where the log ends for this reader.
    pub fn refresh(&self) -> Result<Position> {
        self.follower.apply()?;
        Ok(Position::new(self.shared().watch.end(), 0))
    }

    /// A summary of the log as published now: segments, streams, events
    /// counted, times, disk use (see [`LogInfo`](crate::inspect::LogInfo)).
    /// It costs a look at each segment and stream, not a walk of events.
    pub fn info(&self) -> Result<crate::inspect::LogInfo> {
        crate::inspect::info(self.applied()?)
    }

    /// Every durable consumer's checkpoint, by name, and how far behind
    /// the published end it is.
    pub fn consumers(&self) -> Result<Vec<crate::inspect::ConsumerInfo>> {
        crate::inspect::consumers(self.applied()?)
    }

    /// Like [`Log::read_all`](crate::Log::read_all), over everything
    /// published when called.
    pub fn read_all(&self, from: Position) -> Result<ReadAll> {
        self.follower.apply()?;
        ReadAll::new(Arc::clone(self.shared()), from)
    }

    /// Like [`Log::replay`](crate::Log::replay): borrowed views straight
    /// from the mapping, over everything published when called.
    pub fn replay<F>(&self, from: Position, f: F) -> Result<Position>
    where
        F: FnMut(EventRef<'_>),
    {
        self.follower.apply()?;
        read::replay(self.shared(), from, f)
    }

    /// Like [`Log::replay_stream`](crate::Log::replay_stream).
    pub fn replay_stream<F>(&self, stream: &str, from_version: u64, f: F) -> Result<u64>
    where
        F: FnMut(EventRef<'_>),
    {
        self.follower.apply()?;
        let head = self.shared().stream_head(stream);
        read::replay_stream(self.shared(), head, from_version, f)
    }

    /// Like [`Log::read_stream`](crate::Log::read_stream).
    pub fn read_stream(&self, stream: &str, from_version: u64) -> Result<ReadStream> {
        self.follower.apply()?;
        let head = self.shared().stream_head(stream);
        ReadStream::new(Arc::clone(self.shared()), head, from_version, false)
    }

    /// Like [`Log::read_stream_backward`](crate::Log::read_stream_backward).
    pub fn read_stream_backward(&self, stream: &str, from_version: u64) -> Result<ReadStream> {
        self.follower.apply()?;
        let head = self.shared().stream_head(stream);
        ReadStream::new(Arc::clone(self.shared()), head, from_version, true)
    }

    /// The last version of `stream` the writer has published, if any.
    pub fn stream_version(&self, stream: &str) -> Result<Option<u64>> {
        self.follower.apply()?;
        Ok(self
            .shared()
            .stream_head(stream)
            .map(|(_, h)| h.last_version))
    }

    /// Like [`Log::digest`](crate::Log::digest), over what the writer has
    /// published: this reader links the frames past the newest segment
    /// record itself.
    pub fn digest(&self) -> Result<Digest> {
        self.follower.apply()?;
        let view = self.shared();
        let head = self
            .chain
            .get_or_init(|| Chain::start(view, false))
            .advance(view)?;
        Ok(Digest::of(view.log_id, &head))
    }

    /// Like [`Log::verify`](crate::Log::verify), beside the writer: up to
    /// the end published when it starts.
    pub fn verify(&self, against: Option<&Digest>) -> Result<crate::Verification> {
        self.verify_with_progress(against, &mut |_, _| {})
    }

    /// [`Reader::verify`], calling `progress(bytes checked, bytes to
    /// check)` as segments are done and at the end.
    pub fn verify_with_progress(
        &self,
        against: Option<&Digest>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<crate::Verification> {
        self.follower.apply()?;
        crate::verify::verify_view(self.shared(), against, progress)
    }

    /// Like [`Log::subscribe_all`](crate::Log::subscribe_all): history,
    /// then each event as the writer publishes it. Ends with
    /// [`Error::Closed`] when this reader is dropped.
    pub fn subscribe_all(&self, from: Position) -> Result<Subscription> {
        self.follower.apply()?;
        Subscription::all(Arc::clone(self.shared()), from)
    }

    /// Like [`Log::subscribe_stream`](crate::Log::subscribe_stream).
    pub fn subscribe_stream(&self, stream: &str, from_version: u64) -> Result<Subscription> {
        self.follower.apply()?;
        Subscription::stream(Arc::clone(self.shared()), stream, from_version)
    }

    /// A durable consumer whose checkpoint this process keeps (see
    /// [`Consumer`]); one per name per reader at a time.
    pub fn consumer(&self, name: &str) -> Result<Consumer> {
        self.follower.apply()?;
        Consumer::open(Arc::clone(self.shared()), name)
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared().dir
    }
}

/// Snapshots, read-only: a `Reader` never writes or removes one.
impl Reader {
    /// Like [`Log::load_snapshot`](crate::Log::load_snapshot), against what
    /// the writer has published.
    pub fn load_snapshot(&self, stream: &str, at_or_before: u64) -> Result<Option<Snapshot>> {
        self.follower.apply()?;
        Ok(snapshot::load(self.shared(), stream, at_or_before))
    }

    /// Like [`Log::rebuild`](crate::Log::rebuild).
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

    /// Like [`Log::rebuild_at`](crate::Log::rebuild_at).
    pub fn rebuild_at<S, E: std::fmt::Display>(
        &self,
        stream: &str,
        at_or_before: u64,
        schema_version: u16,
        decode: impl FnMut(&Snapshot) -> std::result::Result<S, E>,
        init: impl FnOnce() -> S,
        apply: impl FnMut(&mut S, &RecordedEvent),
    ) -> Result<Rebuilt<S>> {
        self.follower.apply()?;
        let ask = snapshot::Rebuild {
            stream,
            at_or_before,
            schema_version,
        };
        snapshot::rebuild(self.shared(), ask, decode, init, apply)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.follower.stop.store(true, Ordering::SeqCst);
        for seg in self.shared().segments_snapshot() {
            seg.wake_local_waiter();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared().watch.close();
    }
}

/// The base of the first segment file in `dir`.
fn first_segment(dir: &Path) -> Result<u64> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut first = None;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(base) = entry
            .file_name()
            .to_str()
            .and_then(layout::parse_segment_file)
        {
            first = first.min(Some(base)).or(Some(base));
        }
    }
    first.ok_or_else(|| {
        Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no segment files: not a log"),
        )
    })
}

/// The log's first segment, opened, and where the log starts. Retention
/// may run in the writer meanwhile: its `start` file is in place before it
/// unlinks a segment, so a first segment that vanished, or one below the
/// start, is looked for again.
fn open_first(dir: &Path) -> Result<(OpenSegment, LogStart)> {
    const TRIES: usize = 8;
    let mut tries = 0;
    loop {
        tries += 1;
        let first = first_segment(dir)?;
        let path = dir.join(layout::segment_file(first));
        let open = match OpenSegment::open_follower(&path, first) {
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && tries < TRIES =>
            {
                continue;
            }
            other => other?,
        };
        let start = start::load(dir, open.segment().log_id())?;
        if start.base <= first {
            return Ok((open, start));
        }
        let path = dir.join(layout::segment_file(start.base));
        match OpenSegment::open_follower(&path, start.base) {
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && tries < TRIES => {}
            other => return Ok((other?, start)),
        }
    }
}

/// The watermark of a segment whose slot says it is sealed.
fn is_sealed(open: &OpenSegment) -> Option<u64> {
    open.slot()
        .filter(|s| s.flags & SLOT_SEALED != 0)
        .map(|s| s.watermark)
}

impl Follower {
    /// The follow thread: apply, then sleep on the newest segment's futex
    /// word until the writer publishes past what was applied.
    fn run(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            if let Err(e) = self.apply() {
                log::warn!("seglog: following {:?}: {e}", self.shared.dir);
            }
            let (seg, applied) = {
                let at = lock(&self.at);
                (self.shared.segment_at(at.index), at.offset)
            };
            match seg {
                // Also when the word is past what could be applied (zeroed
                // bytes after a crash): wait for it to change.
                Some(seg) => seg.wait_committed(seg.committed().max(applied), FOLLOW_BACKSTOP),
                // The next segment's file is not there yet.
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    /// Applies sealed segment `seg`'s index file, if it fits, and moves
    /// past the segment.
    fn load_index(&self, seg: &Arc<Segment>, watermark: u64, at: &mut FollowAt) -> bool {
        let Some(mut index) = SegmentIndex::read(&self.shared.dir, self.shared.log_id, seg.base())
        else {
            return false;
        };
        if index.covered != watermark {
            return false;
        }
        let applied = {
            let mut streams = self.shared.registry_mut();
            index.apply(&self.shared.names, &mut streams)
        };
        if let Err(e) = applied {
            log::warn!("seglog: index of {:?} unusable ({e}); scanning", seg.path());
            return false;
        }
        index.load_times(&seg.times);
        seg.follow_to(watermark, true);
        at.index += 1;
        at.offset = HEADER_BYTES;
        true
    }

    /// Applies every frame published since the last call, segment after
    /// segment, then lets this process's readers and subscribers see them.
    fn apply(&self) -> Result<()> {
        // Keys the writer made or forgot since: one `stat` of the store.
        if let Some(keys) = &self.shared.keys {
            keys.refresh()?;
        }
        let mut at = lock(&self.at);
        loop {
            let Some(seg) = self.shared.segment_at(at.index) else {
                if self.open_next(&mut at)? {
                    continue;
                }
                break;
            };
            let (o, ended) = self.apply_segment(&seg, at.offset)?;
            if o > at.offset || ended {
                seg.follow_to(o, ended);
                at.offset = o;
            }
            if !ended {
                break;
            }
            at.index += 1;
            at.offset = HEADER_BYTES;
        }
        // Past an end marker whose next segment is not open yet, the log
        // ends with that marker.
        let end = match self.shared.segment_at(at.index) {
            Some(seg) => seg.base() + at.offset,
            None => self
                .shared
                .newest_segment()
                .map_or(0, |seg| seg.base() + seg.published()),
        };
        // Deletions the writer recorded apply before anyone sees the end.
        crate::read::deletions::refresh(&self.shared)?;
        if end > self.shared.watch.end() {
            self.shared.watch.advance(end);
            self.shared.watch.wake();
        }
        Ok(())
    }

    /// Applies the frames of `seg` the writer committed from segment
    /// offset `from` on: where that left off, and whether the segment ended
    /// there.
    fn apply_segment(&self, seg: &Segment, from: u64) -> Result<(u64, bool)> {
        let committed = seg.committed();
        let bytes = seg
            .committed_bytes(from, committed)
            .ok_or_else(|| corrupt(seg, from, "live word out of range"))?;
        let mut frames = FrameCursor::over(seg, Some(bytes), from, &self.checksum)
            .skipping(&self.shared.quarantine);
        let lenient = !self.shared.quarantine.is_empty();
        let mut streams = self.shared.registry_mut();
        loop {
            let (start, global) = (frames.offset(), frames.at());
            match frames.next(Check::Full) {
                Step::Events(f, _) => {
                    streams
                        .apply(&self.shared.names, &f, global, lenient)
                        .map_err(|e| corrupt(seg, start, e))?;
                    seg.times.note(start, f.timestamp_us);
                }
                Step::Quarantined => {}
                // A quarantined range may have run to the segment's end.
                Step::End | Step::NoRoom => return Ok((frames.offset(), true)),
                // A live word past what survived a crash: wait for the
                // writer's recovery.
                Step::Limit | Step::Bad(DecodeError::Zero) => return Ok((frames.offset(), false)),
                Step::Bad(e) => return Err(corrupt(seg, start, e)),
            }
        }
    }

    /// Opens the segment after the last one, if its file exists, applying
    /// its index file when it is sealed and the index fits. `false` when
    /// there is no such file yet.
    fn open_next(&self, at: &mut FollowAt) -> Result<bool> {
        let Some(prev) = at
            .index
            .checked_sub(1)
            .and_then(|i| self.shared.segment_at(i))
        else {
            return Ok(false);
        };
        let base = prev.end();
        let path = self.shared.dir.join(layout::segment_file(base));
        let open = match OpenSegment::open_follower(&path, base) {
            Ok(open) => open,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if open.segment().log_id() != self.shared.log_id {
            return Err(Error::UnsupportedFormat {
                path,
                reason: "segment belongs to another log".into(),
            });
        }
        let sealed = is_sealed(&open);
        let seg = open.into_followed();
        self.shared.push_segment(Arc::clone(&seg));
        if let Some(watermark) = sealed {
            self.load_index(&seg, watermark, at);
        }
        Ok(true)
    }
}
