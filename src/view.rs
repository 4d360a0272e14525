//! The read side of a log, shared by [`Log`](crate::Log) and
//! [`Reader`](crate::Reader) and by every read they hand out: the
//! segments, the stream registry, the quarantine list and the published
//! end subscribers wait on. Nothing here writes a frame.
//!
//! Synchronisation: the segment list and the registry each have a lock of
//! their own, held only for in-memory work. An append takes the registry's
//! for its lookup and update (after the append side's own lock); a stream
//! read takes it for one head or a few index entries. Neither is ever held
//! across a syscall, so a read never waits for a segment being created or
//! a sync (see `append/` and `commit.rs`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::frame::{self, Checksum, Frame};
use crate::position::Position;
use crate::quarantine::Quarantined;
use crate::segment::{Segment, corrupt};
use crate::shred::KeyRing;
use crate::start::LogStart;
use crate::storage::Storage;
use crate::streams::deleted::Deleted;
use crate::streams::{Head, IndexEntry, Names, Streams};
use crate::upcast::Upcasters;
use crate::walk::FrameInfo;
use crate::watch::Watch;

/// What every read of one log shares.
#[derive(Debug)]
pub(crate) struct LogView {
    pub(crate) dir: PathBuf,
    pub(crate) log_id: u128,
    /// Every frame's CRC is seeded with the log id.
    pub(crate) checksum: Checksum,
    /// Stream names by id, appended to as streams are defined.
    pub(crate) names: Names,
    /// Ranges a repair skipped: every walk steps over them.
    pub(crate) quarantine: Vec<Quarantined>,
    /// Where consumers write their checkpoints (the operating system, or a
    /// fault-injecting double).
    pub(crate) storage: Arc<dyn Storage>,
    segments: RwLock<Segments>,
    /// Where the log starts (`start.rs`): what retention removed.
    start: RwLock<Arc<LogStart>>,
    registry: RwLock<Streams>,
    /// The published end, for subscribers waiting at the head.
    pub(crate) watch: Watch,
    /// Truncated and deleted streams (`delete.rs`).
    pub(crate) deleted: Deleted,
    /// Names of the consumers open now.
    pub(crate) consumers: Mutex<HashSet<String>>,
    /// What every read applies ([`Options::upcasters`](crate::Options::upcasters)).
    pub(crate) upcasters: Option<Upcasters>,
    /// The subjects' keys every read opens envelopes with (`None`: no
    /// [`Options::master_key`](crate::Options::master_key)).
    pub(crate) keys: Option<Arc<KeyRing>>,
}

/// What a [`LogView`] starts from.
pub(crate) struct ViewParts {
    pub(crate) dir: PathBuf,
    pub(crate) log_id: u128,
    pub(crate) names: Names,
    pub(crate) quarantine: Vec<Quarantined>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) streams: Streams,
    /// The published end at the start.
    pub(crate) end: u64,
    pub(crate) upcasters: Option<Upcasters>,
    pub(crate) start: LogStart,
    /// The key store, when the options carry a master key.
    pub(crate) keys: Option<Arc<KeyRing>>,
}

/// The segments a handle holds, oldest first. A segment's index (what
/// walkers and the sync thread step through) counts from the first
/// segment this handle opened: retention removing segments from the front
/// does not move the others' indexes.
#[derive(Debug)]
struct Segments {
    list: Vec<Arc<Segment>>,
    /// Segments removed from the front since the handle opened.
    removed: usize,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding one of these locks leaves nothing torn that
    // matters more than refusing service would: keep going.
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl LogView {
    pub(crate) fn new(parts: ViewParts) -> LogView {
        let deleted = Deleted::default();
        for (id, d) in parts.start.deletions.iter() {
            deleted.update(*id, |had| *had = *d);
        }
        LogView {
            checksum: Checksum::new(parts.log_id),
            dir: parts.dir,
            log_id: parts.log_id,
            names: parts.names,
            quarantine: parts.quarantine,
            storage: parts.storage,
            segments: RwLock::new(Segments {
                list: parts.segments,
                removed: 0,
            }),
            start: RwLock::new(Arc::new(parts.start)),
            registry: RwLock::new(parts.streams),
            watch: Watch::new(parts.end),
            deleted,
            consumers: Mutex::new(HashSet::new()),
            upcasters: parts.upcasters,
            keys: parts.keys,
        }
    }

    /// Every segment, oldest first.
    pub(crate) fn segments_snapshot(&self) -> Vec<Arc<Segment>> {
        read(&self.segments).list.clone()
    }

    /// Adds the next segment: the writer's, before it writes the end marker
    /// of the one before (readers must find it first), or the one a
    /// follower reached.
    pub(crate) fn push_segment(&self, seg: Arc<Segment>) {
        write(&self.segments).list.push(seg);
    }

    /// The segment at `index`; `None` past the newest, and for one
    /// retention removed ([`LogView::is_removed`]).
    pub(crate) fn segment_at(&self, index: usize) -> Option<Arc<Segment>> {
        let segs = read(&self.segments);
        segs.list.get(index.checked_sub(segs.removed)?).cloned()
    }

    /// Whether the segment at `index` was removed by retention.
    pub(crate) fn is_removed(&self, index: usize) -> bool {
        index < read(&self.segments).removed
    }

    /// The index of the segment holding log offset `at` (the first segment
    /// when `at` lies before the log), and that segment.
    pub(crate) fn segment_for(&self, at: u64) -> Option<(usize, Arc<Segment>)> {
        let segs = read(&self.segments);
        let index = segs
            .list
            .partition_point(|s| s.base() <= at)
            .saturating_sub(1);
        segs.list
            .get(index)
            .map(|s| (index + segs.removed, Arc::clone(s)))
    }

    /// Where the log starts now.
    pub(crate) fn log_start(&self) -> Arc<LogStart> {
        Arc::clone(&read(&self.start))
    }

    /// Moves the log's start to `start`, dropping the segments before it:
    /// reads that hold one keep it mapped until they let it go.
    pub(crate) fn advance_start(&self, start: LogStart) {
        let mut segs = write(&self.segments);
        let gone = segs.list.partition_point(|s| s.base() < start.base);
        segs.list.drain(..gone);
        segs.removed += gone;
        *write(&self.start) = Arc::new(start);
    }

    /// Whether log offset `at` is at or after the log's start: back-links
    /// below it lead to what retention removed.
    pub(crate) fn kept(&self, at: u64) -> bool {
        at >= read(&self.start).base
    }

    /// Refuses a read from `from` when retention removed what it names.
    pub(crate) fn check_from(&self, from: Position) -> Result<()> {
        let start = self.log_start();
        if from.frame_offset() < start.base {
            return Err(Error::BeforeLogStart {
                position: from,
                log_start: start.position(),
            });
        }
        Ok(())
    }

    /// The newest commit time of the log (0 when it holds no event).
    pub(crate) fn last_commit_us(&self) -> u64 {
        read(&self.segments)
            .list
            .iter()
            .rev()
            .find_map(|s| s.times.last_us())
            .unwrap_or(0)
    }

    /// The newest segment: the one the writer appends to.
    pub(crate) fn newest_segment(&self) -> Option<Arc<Segment>> {
        read(&self.segments).list.last().cloned()
    }

    /// Whether log offset `at` lies past what readers may see. Segments
    /// publish before the watch advances, so a subscriber can hand out an
    /// event the watch does not cover yet; this asks the segments.
    pub(crate) fn is_past_published(&self, at: u64) -> bool {
        self.segment_for(at)
            .is_none_or(|(_, seg)| at > seg.base() + seg.published())
    }

    /// After `seg` was published up to log offset `end`: advances the watch
    /// and wakes follower processes waiting on `seg`. The caller wakes this
    /// process's subscribers (`watch.wake()`) once its locks are released.
    pub(crate) fn announce(&self, seg: &Segment, end: u64) {
        self.watch.advance(end);
        seg.wake_followers();
    }

    /// The registry, to read.
    pub(crate) fn registry(&self) -> RwLockReadGuard<'_, Streams> {
        read(&self.registry)
    }

    /// The registry, to change: an append, or a follower applying frames.
    pub(crate) fn registry_mut(&self) -> RwLockWriteGuard<'_, Streams> {
        write(&self.registry)
    }

    /// Stream `name`'s id and head, taken in one short critical section.
    pub(crate) fn stream_head(&self, name: &str) -> Option<(u32, Head)> {
        self.registry().find(name).map(|f| (f.id, f.head))
    }

    /// Up to `n` sparse index entries of stream `id` above `version`,
    /// oldest first.
    pub(crate) fn index_entries_above(&self, id: u32, version: u64, n: usize) -> Vec<IndexEntry> {
        self.registry().entries_above(id, version, n)
    }

    /// The first sparse index entry of stream `id` whose frame is at or
    /// after log offset `frame`.
    pub(crate) fn first_entry_from_frame(&self, id: u32, frame: u64) -> Option<IndexEntry> {
        self.registry().entry_from_frame(id, frame)
    }

    /// The first sparse index entry of stream `id` above `version`.
    pub(crate) fn index_entry_above(&self, id: u32, version: u64) -> Option<IndexEntry> {
        self.registry().entry_above(id, version)
    }
}

/// A frame of one stream found by following its index and back-links.
pub(crate) struct StreamFrame {
    pub(crate) seg: Arc<Segment>,
    pub(crate) info: FrameInfo,
    pub(crate) prev_frame: u64,
    /// Readers may see it (a sync in flight under `Durability::Sync` may not
    /// have published the stream's newest frames yet).
    pub(crate) published: bool,
}

impl LogView {
    /// Loads and verifies the frame of stream `id` at log offset `at`.
    pub(crate) fn stream_frame(&self, id: u32, at: u64) -> Result<StreamFrame> {
        if !self.kept(at) {
            self.check_from(Position::new(at, 0))?;
        }
        let Some((_, seg)) = self.segment_for(at) else {
            return Err(Error::InvalidPosition {
                position: Position::new(at, 0),
            });
        };
        let start = at.saturating_sub(seg.base());
        let (bytes, published) = frame_bytes(&seg, start)?;
        match frame::decode_lazy(bytes, at, &self.checksum) {
            Ok((Frame::Events(f), padded)) if f.stream_id == id => Ok(StreamFrame {
                info: FrameInfo::new(&seg, start, &f, padded, 0),
                prev_frame: f.prev_frame,
                published,
                seg,
            }),
            Ok(_) => Err(not_the_stream(&seg, start)),
            Err(e) => Err(corrupt(&seg, start, e)),
        }
    }
}

/// The bytes from offset `start` of `seg` to where a stream read may look:
/// the published end, or for a frame past it, the written end (frames are
/// published whole: one that starts below the published end ends below
/// it). Also whether they are published.
#[inline]
pub(crate) fn frame_bytes(seg: &Segment, start: u64) -> Result<(&[u8], bool)> {
    match seg.bytes(start, seg.published()).filter(|b| !b.is_empty()) {
        Some(b) => Ok((b, true)),
        None => seg
            .written_bytes(start, seg.written())
            .map(|b| (b, false))
            .ok_or_else(|| corrupt(seg, start, "stream back-link points past the log")),
    }
}

pub(crate) fn not_the_stream(seg: &Segment, start: u64) -> Error {
    corrupt(
        seg,
        start,
        "stream back-link points at another stream's frame",
    )
}
