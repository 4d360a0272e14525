//! The walk over the published log behind `read_all`, `replay` and
//! subscriptions: frame after frame, segment after segment, from a
//! position a caller gave (proved a frame boundary by the first frame).

use std::ops::Range;
use std::sync::Arc;

use super::ahead::{self, Ahead};
use crate::error::{Error, Result};
use crate::frame::{self, Checksum, DecodeError, Frame};
use crate::position::Position;
use crate::quarantine;
use crate::segment::{HEADER_BYTES, Segment, corrupt};
use crate::view::LogView;
use crate::walk::FrameInfo;

/// Walks frames from a position through the published part of the log.
pub(crate) struct Walker {
    pub(super) shared: Arc<LogView>,
    pub(super) index: usize,
    pub(super) seg: Option<Arc<Segment>>,
    pub(super) offset: u64,
    pub(super) skip: u16,
    /// A caller-given position not yet proven to be a frame boundary.
    pub(super) unproven: Option<Position>,
    /// A helper checking checksums ahead (see `ahead.rs`), with the run of
    /// checked frames it was last seen to have and frames since the walker
    /// last said where it is.
    pub(super) ahead: Option<Arc<Ahead>>,
    pub(super) trusted: Range<u64>,
    pub(super) frames: u32,
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
    pub(super) fn decode<'a>(
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
    pub(super) fn passed(ahead: Option<&Ahead>, frames: &mut u32, next: u64) {
        if let Some(ahead) = ahead {
            *frames += 1;
            if frames.is_multiple_of(ahead::FRAMES_PER_STORE) {
                ahead.replay_at(next);
            }
        }
    }

    pub(super) fn segment(&self) -> Option<&Arc<Segment>> {
        self.seg.as_ref()
    }

    /// The next events frame, `None` at the end of what is published.
    pub(super) fn next_frame(&mut self) -> Result<Option<FrameInfo>> {
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
