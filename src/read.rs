//! Reading the global log: a frame walker shared by the owned iterator
//! (`ReadAll`) and the borrowed callback path (`replay`).
//!
//! Readers take no lock of the writer's: they read each segment up to its
//! published offset, which only grows and below which bytes never change.
//! Replay of small events costs one CRC pass over the frame plus a header
//! parse per event; the owned path adds one reference-count increment per
//! field (payloads are slices of one `Bytes` per segment, never copies).

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::event::{EventRef, RecordedEvent};
use crate::frame::{self, DecodeError, EventIter, Frame};
use crate::log::Shared;
use crate::position::Position;
use crate::quarantine;
use crate::segment::{HEADER_BYTES, Segment};

/// A verified events frame found by the walker.
#[derive(Debug, Clone, Copy)]
struct FrameInfo {
    /// Offset of the frame in its segment.
    start: u64,
    /// Unpadded length.
    len: u64,
    /// Log offset of the frame.
    global: u64,
    /// Log offset of the next frame.
    next_global: u64,
    stream_id: u32,
    first_version: u64,
    timestamp_us: u64,
    count: u32,
    events_start: usize,
    /// Events of this frame before the requested start position.
    skip: u16,
}

impl FrameInfo {
    fn position(&self, index: u16) -> Position {
        Position::new(self.global, index)
    }

    fn next_position(&self, index: u16) -> Position {
        if u32::from(index) + 1 < self.count {
            Position::new(self.global, index + 1)
        } else {
            Position::new(self.next_global, 0)
        }
    }
}

fn corrupt(seg: &Segment, offset: u64, reason: impl ToString) -> Error {
    Error::Corrupt {
        segment: seg.path().to_path_buf(),
        offset,
        reason: reason.to_string(),
    }
}

/// Remembers the last event type found to be UTF-8: types repeat, so most
/// events cost a short compare instead of a validation.
#[derive(Debug, Default)]
struct TypeCache {
    last: String,
}

impl TypeCache {
    fn check(&mut self, raw: &[u8]) -> Option<&str> {
        if raw != self.last.as_bytes() {
            let valid = std::str::from_utf8(raw).ok()?;
            self.last.clear();
            self.last.push_str(valid);
        }
        Some(&self.last)
    }
}

/// Walks frames from a position through the published part of the log.
struct Walker {
    shared: Arc<Shared>,
    index: usize,
    seg: Option<Arc<Segment>>,
    offset: u64,
    skip: u16,
    /// A caller-given position not yet proven to be a frame boundary.
    unproven: Option<Position>,
}

impl Walker {
    fn new(shared: Arc<Shared>, from: Position) -> Walker {
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
            None => (0, None, HEADER_BYTES, 0, None),
        };
        Walker {
            shared,
            index,
            seg,
            offset,
            skip,
            unproven,
        }
    }

    fn segment(&self) -> Option<&Arc<Segment>> {
        self.seg.as_ref()
    }

    /// The next events frame, `None` at the end of what is published.
    fn next_frame(&mut self) -> Result<Option<FrameInfo>> {
        loop {
            let Some(seg) = self.seg.as_ref() else {
                return Ok(None);
            };
            let published = seg.published();
            let Some(buf) = seg.bytes(self.offset, published).filter(|b| !b.is_empty()) else {
                return Ok(None);
            };
            let at = seg.base() + self.offset;
            match frame::decode_lazy(buf, at, &self.shared.checksum) {
                Ok((Frame::Events(f), padded)) => {
                    // A caller's index past the frame's last event names no
                    // event: refuse it rather than resume at the next frame.
                    if let Some(position) = self.unproven.take()
                        && u32::from(self.skip) >= f.event_count
                    {
                        return Err(Error::InvalidPosition { position });
                    }
                    let info = FrameInfo {
                        start: self.offset,
                        len: f.bytes.len() as u64,
                        global: at,
                        next_global: at + padded,
                        stream_id: f.stream_id,
                        first_version: f.first_version,
                        timestamp_us: f.timestamp_us,
                        count: f.event_count,
                        events_start: f.events_start,
                        skip: std::mem::take(&mut self.skip),
                    };
                    self.offset += padded;
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

/// Iterator over the global log returned by [`Log::read_all`](crate::Log::read_all).
pub struct ReadAll {
    walker: Walker,
    /// The current segment's published bytes from `HEADER_BYTES` on, shared
    /// by every event sliced from it: one allocation per segment, not per event.
    seg_bytes: Bytes,
    seg_bytes_end: u64,
    /// Which segment (by index) `seg_bytes` belongs to.
    seg_bytes_index: Option<usize>,
    frame: Option<OwnedFrame>,
    types: TypeCache,
    done: bool,
}

struct OwnedFrame {
    seg: Arc<Segment>,
    info: FrameInfo,
    bytes: Bytes,
    stream: Arc<str>,
    at: usize,
    index: u16,
}

impl std::fmt::Debug for ReadAll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAll")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ReadAll {
    pub(crate) fn new(shared: Arc<Shared>, from: Position) -> Result<ReadAll> {
        Ok(ReadAll {
            walker: Walker::new(shared, from),
            seg_bytes: Bytes::new(),
            seg_bytes_end: 0,
            seg_bytes_index: None,
            frame: None,
            types: TypeCache::default(),
            done: false,
        })
    }

    fn load_frame(&mut self) -> Result<bool> {
        let Some(info) = self.walker.next_frame()? else {
            return Ok(false);
        };
        let Some(seg) = self.walker.segment() else {
            return Ok(false);
        };
        let end = info.start + info.len;
        if self.seg_bytes_index != Some(self.walker.index) || end > self.seg_bytes_end {
            let published = seg.published();
            let owner = seg
                .slice(HEADER_BYTES, published)
                .ok_or_else(|| corrupt(seg, info.start, "frame beyond the published end"))?;
            self.seg_bytes = Bytes::from_owner(owner);
            self.seg_bytes_end = published;
            self.seg_bytes_index = Some(self.walker.index);
        }
        let bytes = self
            .seg_bytes
            .slice((info.start - HEADER_BYTES) as usize..(end - HEADER_BYTES) as usize);
        let stream = self
            .walker
            .shared
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
        self.frame = Some(OwnedFrame {
            seg: Arc::clone(seg),
            info,
            bytes,
            stream,
            at: info.events_start,
            index: 0,
        });
        Ok(true)
    }
}

impl Iterator for ReadAll {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let Some(f) = self.frame.as_mut() else {
                match self.load_frame() {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            };
            if u32::from(f.index) >= f.info.count {
                self.frame = None;
                continue;
            }
            let parsed = frame::parse_event(&f.bytes, f.at).and_then(|(raw, next)| {
                match self.types.check(raw.event_type) {
                    Some(_) => Ok((raw, next)),
                    None => Err(DecodeError::Malformed("event type not UTF-8")),
                }
            });
            let (raw, next) = match parsed {
                Ok(ok) => ok,
                Err(e) => {
                    self.done = true;
                    return Some(Err(corrupt(&f.seg, f.info.start, e)));
                }
            };
            let index = f.index;
            f.at = next;
            f.index += 1;
            if index < f.info.skip {
                continue;
            }
            let slice = |start: usize, len: usize| f.bytes.slice(start..start + len);
            return Some(Ok(RecordedEvent {
                stream: Arc::clone(&f.stream),
                version: f.info.first_version + u64::from(index),
                position: f.info.position(index),
                next_position: f.info.next_position(index),
                event_type: slice(raw.event_type_start, raw.event_type.len()),
                schema_version: raw.schema_version,
                id: raw.id,
                timestamp_us: f.info.timestamp_us,
                metadata: slice(raw.metadata_start, raw.metadata.len()),
                payload: slice(raw.payload_start, raw.payload.len()),
            }));
        }
    }
}

/// The borrowed replay path behind [`Log::replay`](crate::Log::replay).
pub(crate) fn replay<F>(shared: &Arc<Shared>, from: Position, mut f: F) -> Result<Position>
where
    F: FnMut(EventRef<'_>),
{
    let mut walker = Walker::new(Arc::clone(shared), from);
    let mut types = TypeCache::default();
    let mut resume = from;
    while let Some(info) = walker.next_frame()? {
        let Some(seg) = walker.segment() else { break };
        let bytes = seg
            .bytes(info.start, info.start + info.len)
            .ok_or_else(|| corrupt(seg, info.start, "frame beyond the published end"))?;
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
        resume = Position::new(info.next_global, 0);
    }
    Ok(resume)
}
