//! Reading the global log: a frame walker shared by the owned iterator
//! (`ReadAll`) and the borrowed callback path (`replay`).
//!
//! Readers take no lock of the writer's: they read each segment up to its
//! published offset, which only grows and below which bytes never change.
//! Replay of small events costs one CRC pass over the frame plus a header
//! parse per event; the owned path adds one reference-count increment per
//! field (payloads are slices of one `Bytes` per segment, never copies).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;

use crate::ahead::{self, Ahead};
use crate::error::{Error, Result};
use crate::event::{EventRef, RecordedEvent};
use crate::frame::{self, Checksum, DecodeError, EventIter, Frame};
use crate::position::Position;
use crate::quarantine;
use crate::segment::{HEADER_BYTES, Segment, corrupt};
use crate::view::LogView;
use crate::view::{frame_bytes, not_the_stream};
use crate::walk::FrameInfo;

/// Remembers the last event type found to be UTF-8: types repeat, so most
/// events cost a short compare instead of a validation.
#[derive(Debug, Default)]
struct TypeCache {
    last: String,
}

impl TypeCache {
    #[inline]
    fn check(&mut self, raw: &[u8]) -> Option<&str> {
        if !same_bytes(raw, self.last.as_bytes()) {
            self.replace(raw)?;
        }
        Some(&self.last)
    }

    /// Validates `raw` and remembers it: once per change of type.
    #[cold]
    fn replace(&mut self, raw: &[u8]) -> Option<()> {
        let valid = std::str::from_utf8(raw).ok()?;
        self.last.clear();
        self.last.push_str(valid);
        Some(())
    }
}

/// `a == b` without a call to `memcmp` for the short strings event types
/// mostly are: of equal lengths up to 16, two loads of each that overlap
/// (its first and its last bytes) cover every byte.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn ends<const N: usize>(a: &[u8], b: &[u8]) -> bool {
        a.first_chunk::<N>() == b.first_chunk::<N>() && a.last_chunk::<N>() == b.last_chunk::<N>()
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last(),
        4..=7 => ends::<4>(a, b),
        8..=16 => ends::<8>(a, b),
        _ => a == b,
    }
}

/// Walks frames from a position through the published part of the log.
pub(crate) struct Walker {
    shared: Arc<LogView>,
    index: usize,
    seg: Option<Arc<Segment>>,
    offset: u64,
    skip: u16,
    /// A caller-given position not yet proven to be a frame boundary.
    unproven: Option<Position>,
    /// A helper checking checksums ahead (see `ahead.rs`), with the run of
    /// checked frames it was last seen to have and frames since the walker
    /// last said where it is.
    ahead: Option<Arc<Ahead>>,
    trusted: Range<u64>,
    frames: u32,
}

impl Walker {
    pub(crate) fn new(shared: Arc<LogView>, from: Position) -> Walker {
        let at = from.frame_offset();
        let found = shared.segment_for(at);
        let (index, seg, offset, skip, unproven) = match found {
            Some((index, seg)) if at >= seg.base() + HEADER_BYTES => {
                let unproven = Some(from);
                (
                    index,
                    Some(seg.clone()),
                    at - seg.base(),
                    from.index_in_frame(),
                    unproven,
                )
            }
            Some((index, seg)) => (index, Some(seg), HEADER_BYTES, 0, None),
            // No segment at all: nothing to walk, now or later.
            None => (usize::MAX, None, HEADER_BYTES, 0, None),
        };
        Walker {
            shared,
            index,
            seg,
            offset,
            skip,
            unproven,
            ahead: None,
            trusted: 0..0,
            frames: 0,
        }
    }

    /// Whether the helper `ahead` checked the frame at log offset `at`
    /// already; `trusted` caches the run of checked frames it was last
    /// seen to have (a run, once published, stays checked).
    #[inline]
    fn is_verified(ahead: Option<&Ahead>, trusted: &mut Range<u64>, at: u64) -> bool {
        let Some(ahead) = ahead else {
            return false;
        };
        if !trusted.contains(&at) {
            *trusted = ahead.verified();
        }
        trusted.contains(&at)
    }

    /// Decodes the frame at the start of `buf` (log offset `at`), without
    /// its checksum if the helper's run holds it.
    #[inline]
    fn decode<'a>(
        ahead: Option<&Ahead>,
        trusted: &mut Range<u64>,
        checksum: &Checksum,
        buf: &'a [u8],
        at: u64,
    ) -> std::result::Result<(Frame<'a>, u64), DecodeError> {
        if Walker::is_verified(ahead, trusted, at) {
            #[cfg(test)]
            ahead::TRUSTED.with(|n| n.set(n.get() + 1));
            frame::decode_verified(buf)
        } else {
            frame::decode_lazy(buf, at, checksum)
        }
    }

    /// Tells the helper, every few frames, where the next frame is.
    #[inline]
    fn passed_frame(&mut self, next: u64) {
        Walker::passed(self.ahead.as_deref(), &mut self.frames, next);
    }

    /// [`Walker::passed_frame`] on borrowed fields, for a loop that holds
    /// the walker's segment.
    #[inline]
    fn passed(ahead: Option<&Ahead>, frames: &mut u32, next: u64) {
        if let Some(ahead) = ahead {
            *frames += 1;
            if frames.is_multiple_of(ahead::FRAMES_PER_STORE) {
                ahead.replay_at(next);
            }
        }
    }

    fn segment(&self) -> Option<&Arc<Segment>> {
        self.seg.as_ref()
    }

    /// The next events frame, `None` at the end of what is published.
    fn next_frame(&mut self) -> Result<Option<FrameInfo>> {
        loop {
            if self.seg.is_none() {
                // Past an end marker whose next segment a follower has not
                // seen yet: look again each time.
                self.seg = self.shared.segment_at(self.index);
            }
            let Some(seg) = self.seg.as_ref() else {
                return Ok(None);
            };
            let published = seg.published();
            if self.offset + frame::END_BYTES as u64 > seg.size() {
                // No frame fits past here: a quarantined range ran to the
                // segment's end, taking its end marker.
                self.skip = 0;
                self.index += 1;
                self.seg = self.shared.segment_at(self.index);
                self.offset = HEADER_BYTES;
                continue;
            }
            let Some(buf) = seg.bytes(self.offset, published).filter(|b| !b.is_empty()) else {
                return Ok(None);
            };
            let at = seg.base() + self.offset;
            let decoded = Walker::decode(
                self.ahead.as_deref(),
                &mut self.trusted,
                &self.shared.checksum,
                buf,
                at,
            );
            match decoded {
                Ok((Frame::Events(f), padded)) => {
                    // A caller's index past the frame's last event names no
                    // event: refuse it rather than resume at the next frame.
                    if let Some(position) = self.unproven.take()
                        && u32::from(self.skip) >= f.event_count
                    {
                        return Err(Error::InvalidPosition { position });
                    }
                    let skip = std::mem::take(&mut self.skip);
                    let info = FrameInfo::new(seg, self.offset, &f, padded, skip);
                    self.offset += padded;
                    self.passed_frame(at + padded);
                    return Ok(Some(info));
                }
                Ok((Frame::End, _)) => {
                    if let Some(position) = self.unproven.take()
                        && self.skip > 0
                    {
                        return Err(Error::InvalidPosition { position });
                    }
                    self.skip = 0;
                    self.index += 1;
                    self.seg = self.shared.segment_at(self.index);
                    self.offset = HEADER_BYTES;
                }
                Err(error) => {
                    if let Some(q) = quarantine::find(&self.shared.quarantine, at) {
                        self.offset = q.global_end - seg.base();
                        self.skip = 0;
                        continue;
                    }
                    if let Some(position) = self.unproven.take()
                        && !self.is_frame_boundary(seg, self.offset)
                    {
                        return Err(Error::InvalidPosition { position });
                    }
                    return Err(corrupt(seg, self.offset, error));
                }
            }
        }
    }

    /// Hands `f` the events of up to `left` frames that follow in the
    /// current segment, up to its published end as read once here: the
    /// common case of [`Walker::next_frame`] without its per-frame segment
    /// fetch, `published` load and `FrameInfo` hand-over. It stops before
    /// anything else (an end marker, damage, the published end, a position
    /// still to prove), which `next_frame` then handles. Returns where to
    /// resume after the last frame it handed out, if any.
    fn replay_run<F>(
        &mut self,
        types: &mut TypeCache,
        f: &mut F,
        left: &mut usize,
    ) -> Result<Option<Position>>
    where
        F: FnMut(EventRef<'_>),
    {
        if self.unproven.is_some() || self.skip > 0 {
            return Ok(None);
        }
        let Some(seg) = self.seg.as_deref() else {
            return Ok(None);
        };
        let Some(data) = seg.bytes(self.offset, seg.published()) else {
            return Ok(None);
        };
        let first = self.offset;
        let mut done = 0;
        let mut resume = None;
        let result = loop {
            let Some(buf) = data.get(done..).filter(|b| *left > 0 && !b.is_empty()) else {
                break Ok(());
            };
            let start = first + done as u64;
            let at = seg.base() + start;
            let decoded = Walker::decode(
                self.ahead.as_deref(),
                &mut self.trusted,
                &self.shared.checksum,
                buf,
                at,
            );
            // A frame that decodes fits the segment, as `next_frame`'s size
            // check asks; anything else goes back to `next_frame`.
            let Ok((Frame::Events(decoded), padded)) = decoded else {
                break Ok(());
            };
            done += padded as usize;
            Walker::passed(self.ahead.as_deref(), &mut self.frames, at + padded);
            let info = FrameInfo::new(seg, start, &decoded, padded, 0);
            resume = Some(Position::new(info.next_global, 0));
            *left -= 1;
            if let Err(e) = frame_events(&self.shared, seg, decoded.bytes, &info, types, f) {
                break Err(e);
            }
        };
        self.offset = first + done as u64;
        result.map(|()| resume)
    }

    /// Whether `target` is where a frame starts, walking from the segment's
    /// first frame. A damaged frame on the way leaves it undecided (`true`:
    /// report the damage rather than blame the caller).
    fn is_frame_boundary(&self, seg: &Segment, target: u64) -> bool {
        let mut o = HEADER_BYTES;
        while o < target {
            let Some(buf) = seg.bytes(o, seg.published()) else {
                return false;
            };
            match frame::decode(buf, seg.base() + o, &self.shared.checksum) {
                Ok((_, len)) => o += len,
                Err(DecodeError::Zero) => return false,
                Err(_) => return true,
            }
        }
        o == target
    }
}

/// The published bytes of one segment from `HEADER_BYTES` on, as one
/// `Bytes` that every event sliced from it shares: one allocation per
/// segment (and per growth of the active one), not per event.
#[derive(Default)]
struct SegmentBytes {
    bytes: Bytes,
    base: Option<u64>,
    end: u64,
}

impl SegmentBytes {
    /// The bytes of the frame `info` of `seg`.
    fn frame(&mut self, seg: &Arc<Segment>, info: &FrameInfo) -> Result<Bytes> {
        let end = info.start + info.len;
        if self.base != Some(seg.base()) || end > self.end {
            let published = seg.published();
            let owner = seg
                .slice(HEADER_BYTES, published)
                .ok_or_else(|| corrupt(seg, info.start, "frame beyond the published end"))?;
            self.bytes = Bytes::from_owner(owner);
            self.base = Some(seg.base());
            self.end = published;
        }
        if end > self.end {
            return Err(corrupt(seg, info.start, "frame beyond the published end"));
        }
        Ok(self
            .bytes
            .slice((info.start - HEADER_BYTES) as usize..(end - HEADER_BYTES) as usize))
    }
}

/// The events of one frame, handed out as owned `RecordedEvent`s.
struct OwnedFrame {
    seg: Arc<Segment>,
    info: FrameInfo,
    bytes: Bytes,
    stream: ByteString,
    at: usize,
    index: u16,
}

impl OwnedFrame {
    fn new(
        shared: &LogView,
        cache: &mut SegmentBytes,
        seg: &Arc<Segment>,
        info: FrameInfo,
    ) -> Result<OwnedFrame> {
        let bytes = cache.frame(seg, &info)?;
        let stream = shared
            .names
            .get(info.stream_id as usize)
            .cloned()
            .ok_or_else(|| {
                corrupt(
                    seg,
                    info.start,
                    format!("unknown stream id {}", info.stream_id),
                )
            })?;
        Ok(OwnedFrame {
            seg: Arc::clone(seg),
            info,
            bytes,
            stream,
            at: info.events_start,
            index: 0,
        })
    }

    /// The next event at or after the frame's skip point; `None` at its end.
    fn next_event(&mut self, types: &mut TypeCache) -> Option<Result<RecordedEvent>> {
        self.next_kept(types, &mut |_, _| true)
    }

    /// [`OwnedFrame::next_event`] for which `keep(version, event type)`
    /// holds: the others are passed over after parsing their header, without
    /// a `RecordedEvent` or a reference count made for them.
    fn next_kept(
        &mut self,
        types: &mut TypeCache,
        keep: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Option<Result<RecordedEvent>> {
        loop {
            if u32::from(self.index) >= self.info.count {
                return None;
            }
            let parsed = frame::parse_event(&self.bytes, self.at);
            let (raw, next) = match parsed {
                Ok(ok) => ok,
                Err(e) => {
                    self.index = u16::MAX;
                    return Some(Err(corrupt(&self.seg, self.info.start, e)));
                }
            };
            let index = self.index;
            self.at = next;
            self.index += 1;
            let version = self.info.first_version + u64::from(index);
            if index < self.info.skip || !keep(version, raw.event_type) {
                continue;
            }
            if types.check(raw.event_type).is_none() {
                self.index = u16::MAX;
                return Some(Err(corrupt(
                    &self.seg,
                    self.info.start,
                    DecodeError::Malformed("event type not UTF-8"),
                )));
            }
            let slice = |start: usize, len: usize| self.bytes.slice(start..start + len);
            return Some(Ok(RecordedEvent {
                stream: self.stream.clone(),
                version,
                position: self.info.position(index),
                next_position: self.info.next_position(index),
                event_type: slice(raw.event_type_start, raw.event_type.len()),
                schema_version: raw.schema_version,
                id: raw.id,
                timestamp_us: self.info.timestamp_us,
                metadata: slice(raw.metadata_start, raw.metadata.len()),
                payload: slice(raw.payload_start, raw.payload.len()),
            }));
        }
    }
}

/// Decides, frame by frame and then event by event, what a [`Cursor`]
/// hands out. Frames it refuses are passed over whole: no event parsed, no
/// name looked up.
pub(crate) trait Select {
    /// Whether any event of a frame of stream `stream_id` holding versions
    /// `first..=last` may be kept.
    fn frame(&mut self, shared: &LogView, stream_id: u32, first: u64, last: u64) -> bool;
    /// Whether the event at `version`, of type `event_type`, is kept.
    fn event(&mut self, version: u64, event_type: &[u8]) -> bool;
}

/// Keeps every event: what `read_all` hands out.
pub(crate) struct Everything;

impl Select for Everything {
    fn frame(&mut self, _: &LogView, _: u32, _: u64, _: u64) -> bool {
        true
    }

    fn event(&mut self, _: u64, _: &[u8]) -> bool {
        true
    }
}

/// What [`Cursor::next`] found.
// Moved straight out to the caller; boxing the event would allocate per event.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step {
    Event(RecordedEvent),
    /// The end of what is published.
    End,
    /// The frame budget ran out first; call again to go on.
    Budget,
}

/// Owned events of the global log from a position on, through what is
/// published: the walk behind `read_all` and subscriptions.
pub(crate) struct Cursor {
    walker: Walker,
    cache: SegmentBytes,
    frame: Option<OwnedFrame>,
    types: TypeCache,
    /// Where a reader that stopped here would go on.
    resume: Position,
    /// A helper checking checksums ahead (see `ahead.rs`), asked for once,
    /// when the first frame proved the start a boundary: a cursor far
    /// behind (`read_all`, a subscription catching up) gets one; it returns
    /// at the published end and is stopped when the cursor is dropped.
    helper: Option<ahead::Running>,
    asked_for_helper: bool,
}

impl Cursor {
    pub(crate) fn new(shared: Arc<LogView>, from: Position) -> Cursor {
        Cursor {
            walker: Walker::new(shared, from),
            cache: SegmentBytes::default(),
            frame: None,
            types: TypeCache::default(),
            resume: from,
            helper: None,
            asked_for_helper: false,
        }
    }

    /// Starts a helper at the walker's next frame, if a read from there is
    /// long enough and a CPU is spare.
    fn ask_for_helper(&mut self) {
        self.asked_for_helper = true;
        let walker = &mut self.walker;
        let Some(at) = walker.seg.as_ref().map(|seg| seg.base() + walker.offset) else {
            return;
        };
        if let Some(running) = ahead::Running::start(&walker.shared, at) {
            walker.ahead = Some(running.ahead());
            self.helper = Some(running);
        }
    }

    /// The position after the last event handed out or passed over.
    pub(crate) fn resume(&self) -> Position {
        self.resume
    }

    /// The next event `select` keeps, reading at most `budget` more frames.
    pub(crate) fn next<S: Select + ?Sized>(
        &mut self,
        select: &mut S,
        mut budget: usize,
    ) -> Result<Step> {
        loop {
            if let Some(f) = self.frame.as_mut() {
                match f.next_kept(&mut self.types, &mut |v, t| select.event(v, t)) {
                    Some(Ok(event)) => {
                        self.resume = event.next_position;
                        return Ok(Step::Event(event));
                    }
                    Some(Err(e)) => return Err(e),
                    None => {
                        self.resume = Position::new(f.info.next_global, 0);
                        self.frame = None;
                    }
                }
                continue;
            }
            if budget == 0 {
                return Ok(Step::Budget);
            }
            budget -= 1;
            let Some(info) = self.walker.next_frame()? else {
                return Ok(Step::End);
            };
            if !self.asked_for_helper {
                self.ask_for_helper();
            }
            let Some(seg) = self.walker.segment() else {
                return Ok(Step::End);
            };
            let first = info.first_version + u64::from(info.skip);
            if !select.frame(
                &self.walker.shared,
                info.stream_id,
                first,
                info.last_version(),
            ) {
                self.resume = Position::new(info.next_global, 0);
                continue;
            }
            self.frame = Some(OwnedFrame::new(
                &self.walker.shared,
                &mut self.cache,
                seg,
                info,
            )?);
        }
    }
}

/// Iterator over the global log returned by [`Log::read_all`](crate::Log::read_all).
pub struct ReadAll {
    cursor: Cursor,
    done: bool,
}

impl std::fmt::Debug for ReadAll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAll")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ReadAll {
    pub(crate) fn new(shared: Arc<LogView>, from: Position) -> Result<ReadAll> {
        Ok(ReadAll {
            cursor: Cursor::new(shared, from),
            done: false,
        })
    }
}

impl Iterator for ReadAll {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.cursor.next(&mut Everything, usize::MAX) {
            Ok(Step::Event(event)) => Some(Ok(event)),
            Ok(Step::End | Step::Budget) => {
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

/// A frame a forward read planned: where it is, its checksum checked.
/// Kept this small (16 bytes) because a plan moves each one twice; its
/// header is decoded again when it is read ([`planned_info`]).
#[derive(Debug, Clone, Copy)]
struct Planned {
    /// Its segment's place in the read's [`Segs`].
    seg: u32,
    /// Readers may see it (see [`StreamFrame::published`]).
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
struct Segs {
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

    fn get(&self, i: u32) -> &Arc<Segment> {
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

/// Like [`stream_frame`] for a forward read's plan: the frame of stream
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
#[inline]
fn planned_info(seg: &Segment, p: Planned) -> Result<FrameInfo> {
    let (bytes, _) = frame_bytes(seg, p.start)?;
    match frame::decode_verified(bytes) {
        Ok((Frame::Events(f), padded)) => Ok(FrameInfo::new(seg, p.start, &f, padded, 0)),
        Ok(_) => Err(not_the_stream(seg, p.start)),
        Err(e) => Err(corrupt(seg, p.start, e)),
    }
}

/// Whether `position` names a published event: a verified events frame
/// starts at its offset and holds its index. One checksum pass over the
/// frame.
pub(crate) fn is_event(shared: &LogView, position: Position) -> bool {
    let at = position.frame_offset();
    let Some((_, seg)) = shared.segment_for(at) else {
        return false;
    };
    let Some(buf) = at
        .checked_sub(seg.base())
        .and_then(|start| seg.bytes(start, seg.published()))
    else {
        return false;
    };
    matches!(
        frame::decode_lazy(buf, at, &shared.checksum),
        Ok((Frame::Events(f), _)) if u32::from(position.index_in_frame()) < f.event_count
    )
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
    next_version: u64,
    /// Forward: the plan's chains still to read, `chains[current..live]`.
    live: usize,
    current: usize,
    /// Forward: the segments of the plan's frames.
    segs: Segs,
    /// Forward: the back-link chains of the plan being read (kept for
    /// their vectors).
    chains: Vec<Chain>,
    /// Backward: the next (older) frame to visit.
    back_link: u64,
    /// Backward: the current frame's events, oldest first.
    pending: Vec<RecordedEvent>,
    cache: SegmentBytes,
    frame: Option<OwnedFrame>,
    types: TypeCache,
    done: bool,
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

impl ReadStream {
    /// A read of stream `id` whose head was `head` (`None`: empty stream).
    pub(crate) fn new(
        shared: Arc<LogView>,
        stream: Option<(u32, crate::streams::Head)>,
        from_version: u64,
        backward: bool,
    ) -> Result<ReadStream> {
        let (id, head_frame, last_version, done) = match stream {
            Some((id, head)) => (id, head.last_frame, head.last_version, false),
            None => (0, frame::NO_PREV_FRAME, 0, true),
        };
        let next_version = if backward {
            from_version.min(last_version)
        } else {
            from_version
        };
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
            pending: Vec::new(),
            cache: SegmentBytes::default(),
            frame: None,
            types: TypeCache::default(),
            done: done || (!backward && from_version > last_version),
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
    /// frame header in a page the reader has likely not touched: a miss
    /// (~150 ns here) that the next link waits for. The chains of different
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
        // Chain `j` runs back from the frame before anchor `j` (the frame
        // of entry `j`) to anchor `j - 1`, exclusive (chain 0: to the frame
        // holding `next_version`). When every entry above `next_version`
        // was fetched, one more chain runs back from the head to the last
        // anchor; otherwise the plan ends at the last anchor and the next
        // plan goes on from there.
        let whole = fetched < PLAN_INTERVALS || entries.len() < fetched;
        let count = entries.len() + usize::from(whole);
        // The chains' vectors are kept from plan to plan: a long read
        // allocates them once, not once per plan.
        let mut chains = std::mem::take(&mut self.chains);
        chains.resize_with(count.max(chains.len()), Chain::default);
        for (j, chain) in chains[..count].iter_mut().enumerate() {
            chain.frames.clear();
            chain.stop = j.checked_sub(1).map(|below| entries[below].frame);
            chain.next = Some(match entries.get(j) {
                Some(entry) => {
                    let anchor = self.load(entry.frame)?;
                    chain.frames.push(anchor.planned);
                    anchor.prev_frame
                }
                None => self.head_frame,
            });
        }
        let live = &mut chains[..count];
        let mut open = true;
        while open {
            open = false;
            for chain in live.iter_mut() {
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
        self.chains = chains;
        self.live = count;
        self.current = 0;
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
    fn next_frame_forward(&mut self) -> Result<Option<(u32, FrameInfo)>> {
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
            let mut info = planned_info(self.segs.get(p.seg), p)?;
            if info.last_version() < self.next_version {
                continue;
            }
            info.skip = u16::try_from(self.next_version.saturating_sub(info.first_version))
                .unwrap_or(u16::MAX);
            return Ok(Some((p.seg, info)));
        }
    }

    fn next_backward(&mut self) -> Result<Option<RecordedEvent>> {
        loop {
            if let Some(event) = self.pending.pop() {
                self.next_version = event.version.saturating_sub(1);
                return Ok(Some(event));
            }
            if self.back_link == frame::NO_PREV_FRAME {
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
                self.pending.push(event);
            }
        }
    }
}

impl Iterator for ReadStream {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
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

/// The borrowed stream read behind
/// [`Log::replay_stream`](crate::Log::replay_stream): the frames a forward
/// [`ReadStream`] plans, handed out as `EventRef`s straight from the
/// mapping. Returns the version after the last event seen.
pub(crate) fn replay_stream<F>(
    shared: &Arc<LogView>,
    stream: Option<(u32, crate::streams::Head)>,
    from_version: u64,
    mut f: F,
) -> Result<u64>
where
    F: FnMut(EventRef<'_>),
{
    let mut read = ReadStream::new(Arc::clone(shared), stream, from_version, false)?;
    if read.done {
        return Ok(from_version);
    }
    let mut types = TypeCache::default();
    while let Some((seg, info)) = read.next_frame_forward()? {
        frame_refs(shared, read.segs.get(seg), &info, &mut types, &mut f)?;
        read.next_version = info.last_version() + 1;
    }
    Ok(read.next_version)
}

/// Calls `f` with a borrowed view of each event of the frame `info` of
/// `seg` from its skip point on: the one loop behind both borrowed paths.
fn frame_refs<F>(
    shared: &LogView,
    seg: &Segment,
    info: &FrameInfo,
    types: &mut TypeCache,
    f: &mut F,
) -> Result<()>
where
    F: FnMut(EventRef<'_>),
{
    let bytes = seg
        .bytes(info.start, info.start + info.len)
        .ok_or_else(|| corrupt(seg, info.start, "frame beyond the published end"))?;
    frame_events(shared, seg, bytes, info, types, f)
}

/// [`frame_refs`] for the frame's unpadded `bytes`, already found published.
// Always inlined: the replay's loop then keeps the frame's fields in
// registers instead of building a `FrameInfo` in memory for a call.
#[inline(always)]
fn frame_events<F>(
    shared: &LogView,
    seg: &Segment,
    bytes: &[u8],
    info: &FrameInfo,
    types: &mut TypeCache,
    f: &mut F,
) -> Result<()>
where
    F: FnMut(EventRef<'_>),
{
    let stream = shared.names.get(info.stream_id as usize).ok_or_else(|| {
        corrupt(
            seg,
            info.start,
            format!("unknown stream id {}", info.stream_id),
        )
    })?;
    for (i, raw) in EventIter::new(bytes, info.events_start, info.count).enumerate() {
        let raw = raw.map_err(|e| corrupt(seg, info.start, e))?;
        let index = i as u16;
        if index < info.skip {
            continue;
        }
        let event_type = types
            .check(raw.event_type)
            .ok_or_else(|| corrupt(seg, info.start, "event type not UTF-8"))?;
        f(EventRef {
            stream,
            version: info.first_version + i as u64,
            position: info.position(index),
            next_position: info.next_position(index),
            event_type,
            schema_version: raw.schema_version,
            id: raw.id,
            timestamp_us: info.timestamp_us,
            metadata: raw.metadata,
            payload: raw.payload,
        });
    }
    Ok(())
}

/// The borrowed replay path behind [`Log::replay`](crate::Log::replay).
///
/// A long replay (see `ahead.rs`) gets a helper thread checking checksums
/// ahead of it, started once the first frame proved the start a boundary.
pub(crate) fn replay<F>(shared: &Arc<LogView>, from: Position, mut f: F) -> Result<Position>
where
    F: FnMut(EventRef<'_>),
{
    let mut walker = Walker::new(Arc::clone(shared), from);
    let mut types = TypeCache::default();
    let Some(next) = replay_frames(shared, &mut walker, &mut types, &mut f, Some(1))? else {
        return Ok(from);
    };
    let Some(slot) = ahead::Slot::take(shared, next.frame_offset()) else {
        return Ok(replay_frames(shared, &mut walker, &mut types, &mut f, None)?.unwrap_or(next));
    };
    let helper = Arc::new(Ahead::new(next.frame_offset()));
    std::thread::scope(|s| {
        let theirs = &helper;
        let spawned = std::thread::Builder::new()
            .name("seglog-verify".into())
            .spawn_scoped(s, move || {
                ahead::verify(shared, theirs);
                drop(slot);
            });
        if spawned.is_ok() {
            walker.ahead = Some(Arc::clone(&helper));
        }
        let _stop = ahead::StopOnDrop(&helper);
        Ok(replay_frames(shared, &mut walker, &mut types, &mut f, None)?.unwrap_or(next))
    })
}

#[cfg(test)]
impl Walker {
    /// Walks with `ahead` as its helper, whatever that helper does.
    pub(crate) fn set_ahead_for_tests(&mut self, ahead: Arc<Ahead>) {
        self.ahead = Some(ahead);
    }
}

/// Replays every frame `walker` reaches into `f`, with no helper of its own.
#[cfg(test)]
pub(crate) fn replay_with<F>(shared: &LogView, walker: &mut Walker, mut f: F) -> Result<()>
where
    F: FnMut(EventRef<'_>),
{
    let mut types = TypeCache::default();
    replay_frames(shared, walker, &mut types, &mut f, None).map(|_| ())
}

/// Replays up to `limit` frames (all with `None`); returns where to resume
/// after the last one, `None` if there was none.
fn replay_frames<F>(
    shared: &LogView,
    walker: &mut Walker,
    types: &mut TypeCache,
    f: &mut F,
    limit: Option<usize>,
) -> Result<Option<Position>>
where
    F: FnMut(EventRef<'_>),
{
    let mut resume = None;
    let mut left = limit.unwrap_or(usize::MAX);
    loop {
        if let Some(run) = walker.replay_run(types, f, &mut left)? {
            resume = Some(run);
        }
        if left == 0 {
            break;
        }
        let Some(info) = walker.next_frame()? else {
            break;
        };
        let Some(seg) = walker.segment() else { break };
        frame_refs(shared, seg, &info, types, f)?;
        resume = Some(Position::new(info.next_global, 0));
        left -= 1;
    }
    Ok(resume)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `same_bytes` is `==` for every length it compares by parts, with a
    /// difference at any byte.
    #[test]
    fn same_bytes_is_equality() {
        for n in 0..=20usize {
            let a: Vec<u8> = (0..n).map(|i| b'a' + i as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            if let Some(shorter) = n.checked_sub(1) {
                assert!(!same_bytes(&a, &a[..shorter]));
            }
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x80;
                assert!(!same_bytes(&a, &b), "length {n}, byte {i}");
            }
        }
    }

    /// The cache hands out a type only once it is UTF-8, and a changed
    /// type only once that one is.
    #[test]
    fn type_cache_checks_each_new_type() {
        let mut types = TypeCache::default();
        assert_eq!(types.check(b"OrderPlaced"), Some("OrderPlaced"));
        assert_eq!(types.check(b"OrderPlaced"), Some("OrderPlaced"));
        assert_eq!(types.check(b"OrderPlace\xff"), None);
        assert_eq!(types.check(b"e"), Some("e"));
        assert_eq!(types.check(b"\xff"), None);
        assert_eq!(types.check(b"e"), Some("e"));
    }
}
