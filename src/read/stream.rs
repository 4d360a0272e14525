//! One stream, forward or backward: found through its sparse index, then
//! read by following its back-links, so no unrelated event is decoded.

use std::sync::Arc;

use super::owned::{OwnedFrame, SegmentBytes, TypeCache};
use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::frame::{self, Frame};
use crate::position::Position;
use crate::segment::{Segment, corrupt};
use crate::start::LogStart;
use crate::streams::IndexEntry;
use crate::upcast::Pending;
use crate::view::{LogView, frame_bytes, not_the_stream};
use crate::walk::FrameInfo;

/// A frame a forward read planned: where it is, its checksum checked.
/// Kept this small (16 bytes) because a plan moves each one twice; its
/// header is decoded again when it is read ([`planned_info`]).
#[derive(Debug, Clone, Copy)]
struct Planned {
    /// Its segment's place in the read's [`Segs`].
    seg: u32,
    /// Readers may see it (see [`StreamFrame::published`](crate::view::StreamFrame::published)).
    published: bool,
    /// Its offset in the segment.
    start: u64,
}

/// What planning needs of a frame to go on along its chain.
#[derive(Debug, Clone, Copy)]
struct Link {
    planned: Planned,
    prev_frame: u64,
    first_version: u64,
}

/// The segments a forward read's current plan touches. A plan loads ~500
/// frames, nearly all in one or two segments: looking each frame's segment
/// up here instead of in the log's list saves a read lock and a reference
/// count per frame, and planned frames hold a `u32` instead of an `Arc`.
#[derive(Debug, Default)]
pub(super) struct Segs {
    list: Vec<Arc<Segment>>,
    /// The entry that held the last offset looked up.
    last: usize,
}

/// Entries [`Segs::find`] searches, newest first, before it asks the log: a
/// sparse stream's plan can cross hundreds of small segments, and each
/// lookup stays bounded (the list then holds a segment more than once, at
/// most one entry per planned frame).
const SEGS_SEARCHED: usize = 8;

impl Segs {
    /// The segment holding log offset `at`, found here or in the log's list.
    fn find(&mut self, shared: &LogView, at: u64) -> Option<(u32, &Arc<Segment>)> {
        let holds = |s: &Arc<Segment>| s.base() <= at && at < s.end();
        if !self.list.get(self.last).is_some_and(holds) {
            let recent = self.list.len().saturating_sub(SEGS_SEARCHED);
            match self.list[recent..].iter().rposition(holds) {
                Some(i) => self.last = recent + i,
                None => {
                    let (_, seg) = shared.segment_for(at)?;
                    self.last = self.list.len();
                    self.list.push(seg);
                }
            }
        }
        // At most one entry per planned frame, far below `u32::MAX`.
        let slot = u32::try_from(self.last).ok()?;
        Some((slot, &self.list[self.last]))
    }

    pub(super) fn get(&self, i: u32) -> &Arc<Segment> {
        &self.list[i as usize]
    }

    /// Forgets every segment: only when no planned frame refers to one.
    fn clear(&mut self) {
        self.list.clear();
        self.last = 0;
    }
}

/// Index intervals a forward stream read plans at once: each a chain of
/// back-links walked in step with the others, so that many misses overlap.
/// 16 chains of `K` = 32 frames plan ~512 frames (~70 bytes each).
const PLAN_INTERVALS: usize = 16;

/// One index interval's back-link chain while a forward read plans it.
#[derive(Default)]
struct Chain {
    /// The next frame to load, newest first; `None` once the chain ended.
    next: Option<u64>,
    /// The anchor frame below the chain (not part of it); `None` for the
    /// oldest chain, which ends at the frame holding the version sought.
    stop: Option<u64>,
    /// Its frames, newest first, below the anchor above the chain (the
    /// index entry it ends at; none for the head's chain). Popped, they
    /// come oldest first and the anchor last.
    frames: Vec<Planned>,
}

/// Lines prefetched per frame: its length is unknown until its header is
/// read, and the checksum reads it whole; 256 bytes cover a single-event
/// frame with a 128-byte payload.
const PREFETCH_FRAME_LINES: usize = 4;

/// Starts loading the frame at log offset `at` if it is in `seg` (a
/// back-link usually stays in its segment or the one before).
fn prefetch_frame(seg: &Segment, at: u64) {
    if let Some(addr) = at
        .checked_sub(seg.base())
        .and_then(|offset| seg.addr_of(offset))
    {
        for line in 0..PREFETCH_FRAME_LINES {
            crate::prefetch::prefetch(addr + 64 * line);
        }
    }
}

/// Like [`LogView::stream_frame`] for a forward read's plan: the frame of stream
/// `id` at log offset `at`, in `seg` (its place `index` in the read's
/// [`Segs`]), checksum checked, reduced to what the plan keeps.
#[inline]
fn link_in(
    seg: &Segment,
    index: u32,
    checksum: &frame::Checksum,
    id: u32,
    at: u64,
) -> Result<Link> {
    let start = at.saturating_sub(seg.base());
    let (bytes, published) = frame_bytes(seg, start)?;
    match frame::decode_lazy(bytes, at, checksum) {
        Ok((Frame::Events(f), _)) if f.stream_id == id => Ok(Link {
            planned: Planned {
                seg: index,
                published,
                start,
            },
            prev_frame: f.prev_frame,
            first_version: f.first_version,
        }),
        Ok(_) => Err(not_the_stream(seg, start)),
        Err(e) => Err(corrupt(seg, start, e)),
    }
}

/// The header of planned frame `p` in `seg`, decoded again: its checksum
/// matched when it was planned, over these same bytes (which never change
/// once written).
/// Written into `out` rather than returned: a `Result<FrameInfo>` went
/// through the stack, and copying it stalled on the stores that had just
/// written it (a stream replay ran a quarter slower).
#[inline]
fn planned_info(seg: &Segment, p: Planned, out: &mut FrameInfo) -> Result<()> {
    let (bytes, _) = frame_bytes(seg, p.start)?;
    match frame::decode_verified(bytes) {
        Ok((Frame::Events(f), padded)) => {
            *out = FrameInfo::new(seg, p.start, &f, padded, 0);
            Ok(())
        }
        Ok(_) => Err(not_the_stream(seg, p.start)),
        Err(e) => Err(corrupt(seg, p.start, e)),
    }
}

/// Iterator over one stream, returned by [`Log::read_stream`](crate::Log::read_stream)
/// and [`Log::read_stream_backward`](crate::Log::read_stream_backward).
///
/// It finds its start through the stream's sparse index (O(log n)) and then
/// reads only that stream's frames, following their back-links: no unrelated
/// event is decoded. It reads the stream as it was when created.
pub struct ReadStream {
    shared: Arc<LogView>,
    id: u32,
    backward: bool,
    /// The stream's newest frame and version when the read began.
    head_frame: u64,
    last_version: u64,
    /// The next version to hand out (forward: up, backward: down).
    pub(super) next_version: u64,
    /// Forward: the plan's chains still to read, `chains[current..live]`.
    live: usize,
    current: usize,
    /// Forward: the segments of the plan's frames.
    pub(super) segs: Segs,
    /// Forward: the back-link chains of the plan being read (kept for
    /// their vectors).
    chains: Vec<Chain>,
    /// Backward: the next (older) frame to visit.
    back_link: u64,
    /// Backward: the log's start when the read began; the stream's events
    /// below it are gone.
    start_base: u64,
    /// The first version a soft delete left visible (0: none).
    floor: u64,
    /// Backward: the current frame's events, oldest first.
    pending: Vec<RecordedEvent>,
    cache: SegmentBytes,
    frame: Option<OwnedFrame>,
    types: TypeCache,
    pub(super) done: bool,
    /// Outputs of an upcast event still to hand out.
    upcast: Pending,
}

impl std::fmt::Debug for ReadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadStream")
            .field("id", &self.id)
            .field("backward", &self.backward)
            .field("next_version", &self.next_version)
            .finish_non_exhaustive()
    }
}

/// Where a read of `stream` (its id and head; `None`: empty) from
/// `next_version` starts once deletions and retention are accounted for:
/// that version, the soft delete's cut (reads hide what is below it), and
/// whether nothing is left to read. A deleted stream, or versions
/// retention removed, are errors that name the stream (its name copied
/// only then).
fn kept_range(
    shared: &LogView,
    start: &LogStart,
    stream: Option<(u32, crate::streams::Head)>,
    next_version: u64,
    backward: bool,
) -> Result<(u64, u64, bool)> {
    let Some((id, _)) = stream else {
        return Ok((next_version, 0, true));
    };
    let deletion = shared.deleted.get(id);
    let name = || {
        shared
            .names
            .get(id as usize)
            .map_or("", |n| &**n)
            .to_string()
    };
    if deletion.is_some_and(|d| d.tombstone) {
        return Err(Error::StreamDeleted { stream: name() });
    }
    let floor = deletion.map_or(0, |d| d.before);
    let next_version = if backward {
        next_version
    } else {
        next_version.max(floor)
    };
    let first_version = start.first_version(id);
    if next_version >= floor && next_version < first_version {
        return Err(Error::StreamBeforeLogStart {
            stream: name(),
            version: next_version,
            first_version,
            log_start: start.position(),
        });
    }
    Ok((next_version, floor, next_version < floor))
}

impl ReadStream {
    /// A read of stream `id` whose head was `head` (`None`: empty stream).
    pub(crate) fn new(
        shared: Arc<LogView>,
        stream: Option<(u32, crate::streams::Head)>,
        from_version: u64,
        backward: bool,
    ) -> Result<ReadStream> {
        let (id, head_frame, last_version) = match stream {
            Some((id, head)) => (id, head.last_frame, head.last_version),
            None => (0, frame::NO_PREV_FRAME, 0),
        };
        let next_version = if backward {
            from_version.min(last_version)
        } else {
            from_version
        };
        let start = shared.log_start();
        let start_base = start.base;
        let (next_version, floor, done) =
            kept_range(&shared, &start, stream, next_version, backward)?;
        let done = done || next_version > last_version;
        let shared_upcasters = shared.upcasters.clone();
        let types = TypeCache::new(&shared);
        let mut read = ReadStream {
            shared,
            id,
            backward,
            head_frame,
            last_version,
            next_version,
            live: 0,
            current: 0,
            segs: Segs::default(),
            chains: Vec::new(),
            back_link: frame::NO_PREV_FRAME,
            start_base,
            pending: Vec::new(),
            upcast: Pending::new(shared_upcasters.clone(), backward),
            cache: SegmentBytes::default(),
            frame: None,
            types,
            floor,
            done,
        };
        if backward && !read.done {
            read.back_link = read.start_above(read.next_version)?;
        }
        Ok(read)
    }

    /// The newest frame that may hold `version` or older events: the frame
    /// before the first index entry above `version`, or the head. Walking
    /// back from it reaches `version` within one index interval.
    fn start_above(&self, version: u64) -> Result<u64> {
        let anchor = self.shared.index_entry_above(self.id, version);
        match anchor {
            Some(entry) if entry.frame <= self.head_frame => {
                Ok(self.shared.stream_frame(self.id, entry.frame)?.prev_frame)
            }
            _ => Ok(self.head_frame),
        }
    }

    /// Forward: plans the frames from the one holding `next_version` up to
    /// (not including) the first index entry past [`PLAN_INTERVALS`] of
    /// them, or to the head.
    ///
    /// Each index interval is a chain of back-links, and each link is a
    /// frame header in a page the reader has likely not touched: a cache
    /// or page miss that the next link waits for. The chains of different
    /// intervals are independent, so they are walked in lockstep, each
    /// step prefetching the next frame of its chain: up to
    /// `PLAN_INTERVALS` misses are in flight instead of one.
    fn plan(&mut self) -> Result<()> {
        debug_assert!(
            self.chains[..self.live].iter().all(|c| c.frames.is_empty()),
            "a plan replaced frames not yet handed out"
        );
        // No planned frame refers to a segment any more.
        self.segs.clear();
        let (entries, whole) = self.anchors();
        let count = entries.len() + usize::from(whole);
        // The chains' vectors are kept from plan to plan: a long read
        // allocates them once, not once per plan.
        let mut chains = std::mem::take(&mut self.chains);
        chains.resize_with(count.max(chains.len()), Chain::default);
        let walked = self
            .start_chains(&mut chains[..count], &entries)
            .and_then(|()| self.walk_chains(&mut chains[..count]));
        self.chains = chains;
        // A failed plan leaves no chain to hand out.
        self.live = if walked.is_ok() { count } else { 0 };
        walked?;
        self.current = 0;
        Ok(())
    }

    /// The index entries above `next_version` that the next plan anchors
    /// its chains on (their frames prefetched), and whether they are all
    /// of them: then one more chain runs back from the head.
    fn anchors(&mut self) -> (Vec<IndexEntry>, bool) {
        let mut entries =
            self.shared
                .index_entries_above(self.id, self.next_version, PLAN_INTERVALS);
        let fetched = entries.len();
        // Entries of frames appended after this read began are not its to
        // read: the stream ends at the head it saw.
        entries.retain(|e| e.frame <= self.head_frame);
        for entry in &entries {
            if let Some((_, seg)) = self.segs.find(&self.shared, entry.frame) {
                prefetch_frame(seg, entry.frame);
            }
        }
        let whole = fetched < PLAN_INTERVALS || entries.len() < fetched;
        (entries, whole)
    }

    /// Chain `j` runs back from the frame before anchor `j` (the frame of
    /// entry `j`) to anchor `j - 1`, exclusive (chain 0: to the frame
    /// holding `next_version`); a chain past the last entry runs back from
    /// the head to the last anchor. Otherwise the plan ends at the last
    /// anchor and the next plan goes on from there.
    fn start_chains(&mut self, chains: &mut [Chain], entries: &[IndexEntry]) -> Result<()> {
        for (j, chain) in chains.iter_mut().enumerate() {
            chain.frames.clear();
            chain.stop = j
                .checked_sub(1)
                .and_then(|below| entries.get(below))
                .map(|e| e.frame);
            chain.next = Some(match entries.get(j) {
                Some(entry) => {
                    let anchor = self.load(entry.frame)?;
                    chain.frames.push(anchor.planned);
                    anchor.prev_frame
                }
                None => self.head_frame,
            });
        }
        Ok(())
    }

    /// Follows every chain's back-links one step a round until each has
    /// reached its stop (or, for chain 0, the frame holding
    /// `next_version`).
    fn walk_chains(&mut self, chains: &mut [Chain]) -> Result<()> {
        let mut open = true;
        while open {
            open = false;
            for chain in chains.iter_mut() {
                let Some(at) = chain.next.filter(|&at| Some(at) != chain.stop) else {
                    chain.next = None;
                    continue;
                };
                if at == frame::NO_PREV_FRAME {
                    return Err(corrupt(
                        &self.shared.stream_frame(self.id, self.head_frame)?.seg,
                        0,
                        "stream back-links end before the version sought",
                    ));
                }
                let link = self.load(at)?;
                let reached = chain.stop.is_none() && link.first_version <= self.next_version;
                chain.next = (!reached).then_some(link.prev_frame);
                if !reached {
                    prefetch_frame(self.segs.get(link.planned.seg), link.prev_frame);
                    open = true;
                }
                chain.frames.push(link.planned);
            }
        }
        Ok(())
    }

    /// Loads and verifies this stream's frame at log offset `at`, looking
    /// its segment up in the plan's [`Segs`].
    #[inline]
    fn load(&mut self, at: u64) -> Result<Link> {
        let Some((index, seg)) = self.segs.find(&self.shared, at) else {
            return Err(Error::InvalidPosition {
                position: Position::new(at, 0),
            });
        };
        link_in(seg, index, &self.shared.checksum, self.id, at)
    }

    fn next_forward(&mut self) -> Result<Option<RecordedEvent>> {
        loop {
            if let Some(f) = self.frame.as_mut() {
                match f.next_event(&mut self.types) {
                    // A read as of a version may end inside a frame.
                    Some(Ok(event)) if event.version > self.last_version => {
                        self.frame = None;
                        self.done = true;
                        return Ok(None);
                    }
                    Some(event) => {
                        let event = event?;
                        self.next_version = event.version + 1;
                        return Ok(Some(event));
                    }
                    None => self.frame = None,
                }
            }
            let Some((seg, info)) = self.next_frame_forward()? else {
                return Ok(None);
            };
            self.frame = Some(OwnedFrame::new(
                &self.shared,
                &mut self.cache,
                self.segs.get(seg),
                info,
            )?);
        }
    }

    /// Forward: the next planned frame that holds `next_version` or later,
    /// its skip set to `next_version`; `None` past what this read may see.
    #[inline]
    pub(super) fn next_frame_forward(&mut self) -> Result<Option<(u32, FrameInfo)>> {
        let mut info = FrameInfo::EMPTY;
        Ok(self.next_frame_into(&mut info)?.map(|seg| (seg, info)))
    }

    /// [`ReadStream::next_frame_forward`] writing the frame's info into
    /// `out`, for the stream replay's loop (see [`planned_info`]).
    #[inline]
    pub(super) fn next_frame_into(&mut self, out: &mut FrameInfo) -> Result<Option<u32>> {
        loop {
            if self.next_version > self.last_version {
                return Ok(None);
            }
            let Some(chain) = self.chains[..self.live].get_mut(self.current) else {
                self.plan()?;
                continue;
            };
            let Some(p) = chain.frames.pop() else {
                self.current += 1;
                continue;
            };
            if !p.published {
                return Ok(None);
            }
            planned_info(self.segs.get(p.seg), p, out)?;
            if out.last_version() < self.next_version {
                continue;
            }
            out.skip = u16::try_from(self.next_version.saturating_sub(out.first_version))
                .unwrap_or(u16::MAX);
            return Ok(Some(p.seg));
        }
    }

    fn next_backward(&mut self) -> Result<Option<RecordedEvent>> {
        loop {
            if let Some(event) = self.pending.pop() {
                self.next_version = event.version.saturating_sub(1);
                return Ok(Some(event));
            }
            // A back-link below the log's start leads to what retention
            // removed: the stream's kept events end here.
            let below_floor = self.floor > 0 && self.next_version < self.floor;
            if below_floor
                || self.back_link == frame::NO_PREV_FRAME
                || self.back_link < self.start_base
            {
                return Ok(None);
            }
            let f = self.shared.stream_frame(self.id, self.back_link)?;
            self.back_link = f.prev_frame;
            if !f.published || f.info.first_version > self.next_version {
                continue;
            }
            let mut frame = OwnedFrame::new(&self.shared, &mut self.cache, &f.seg, f.info)?;
            while let Some(event) = frame.next_event(&mut self.types) {
                let event = event?;
                if event.version > self.next_version {
                    break;
                }
                if event.version >= self.floor {
                    self.pending.push(event);
                }
            }
        }
    }
}

impl ReadStream {
    /// This read, handing out events as stored: for a subscription, which
    /// upcasts what it hands out itself.
    pub(crate) fn stored_only(mut self) -> ReadStream {
        self.upcast = Pending::new(None, self.backward);
        self
    }

    /// The next stored event, in the read's direction.
    #[inline(always)]
    fn next_stored(&mut self) -> Option<Result<RecordedEvent>> {
        if self.done {
            return None;
        }
        let next = if self.backward {
            self.next_backward()
        } else {
            self.next_forward()
        };
        match next {
            Ok(Some(event)) => Some(Ok(event)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for ReadStream {
    type Item = Result<RecordedEvent>;

    /// The next event, upcast (a split's outputs newest first when
    /// backward). An [`Error::Upcast`](crate::Error::Upcast) is one item:
    /// the read goes on after it. Any other error ends it.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(output) = self.upcast.pop() {
                return Some(Ok(output));
            }
            match self.next_stored()? {
                Ok(event) if event.needs_upcast() => match self.upcast.upcast(event) {
                    Ok(Some(output)) => return Some(Ok(output)),
                    // Dropped by an upcaster.
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                },
                other => return Some(other),
            }
        }
    }
}
