//! The one frame walker: every loop over frames (recovery's scan, the
//! reads' walk and replay, the helper that checks checksums ahead of a
//! replay, a follower applying what a writer published, the search for a
//! frame boundary) steps through a segment with a [`FrameCursor`], so the
//! rules of the frame stream live in one place:
//!
//! - frames follow each other at their padded lengths from `HEADER_BYTES`;
//! - an end marker ends the segment's data; so does a place where no frame
//!   fits before the segment's end (a quarantined range ran to it);
//! - an events frame leaves room for the end marker after it;
//! - a range a repair quarantined is stepped over;
//! - anything else that does not decode is [`Step::Bad`], zero bytes
//!   ([`DecodeError::Zero`]) included: what that means (a torn tail, the
//!   unpublished end, damage) is the walker's caller's to decide.
//!
//! Crossing into the next segment is the caller's too: each finds its
//! segments its own way (the view's list, recovery's open files, a
//! follower's directory).
#![deny(clippy::indexing_slicing)]

use std::ops::Range;

use crate::frame::{self, Checksum, DecodeError, EventsFrame, Frame, Verified};
use crate::position::Position;
use crate::quarantine::{self, Quarantined};
use crate::segment::Segment;

/// How [`FrameCursor::next`] checks each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Checksum, header and every event: recovery, followers.
    Full,
    /// Checksum and header; each event is checked when it is read: readers.
    Lazy,
}

/// Where frames already checked by someone else lie: a walk takes those
/// without computing their checksums again (see `read/ahead.rs`).
pub(crate) trait Checked {
    /// The run of log offsets whose frames' checksums matched.
    fn verified(&self) -> Range<u64>;
}

/// What a [`FrameCursor`] found; the cursor is past it.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// An events frame and its padded length.
    Events(EventsFrame<'a>, u64),
    /// The segment's end marker.
    End,
    /// A range a repair quarantined, stepped over.
    Quarantined,
    /// No frame fits between here and the segment's end: its data ends
    /// here, without an end marker.
    NoRoom,
    /// The end of the bytes this walk may read.
    Limit,
    /// Bytes that are not a frame; the cursor stays where they start.
    Bad(DecodeError),
}

/// What [`FrameCursor::next_summed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Summed {
    /// An events frame of this padded length whose checksum matched.
    Events(u64),
    /// The segment's end marker, checksum matching.
    End,
    /// Anything else: a frame that does not check, no room, the limit.
    Stop,
}

/// A cursor over the frames of one segment, from a frame boundary up to a
/// limit (the published, committed or written end, or the segment's size).
pub(crate) struct FrameCursor<'a> {
    /// The segment's bytes from `start` to the limit.
    bytes: &'a [u8],
    start: u64,
    /// The segment's log offset and size.
    base: u64,
    size: u64,
    /// Segment offset of the next frame.
    offset: u64,
    checksum: &'a Checksum,
    quarantine: &'a [Quarantined],
    /// Someone who checked frames ahead, and the run they were last seen
    /// to have checked (a run, once published, stays checked).
    checked: Option<&'a dyn Checked>,
    trusted: Range<u64>,
}

impl<'a> FrameCursor<'a> {
    /// A cursor at segment offset `start` (a frame boundary) of the segment
    /// at log offset `base`, `size` bytes long, over `bytes`: the
    /// segment's bytes from `start` to the walk's limit.
    #[inline]
    pub(crate) fn new(
        (base, size): (u64, u64),
        start: u64,
        bytes: &'a [u8],
        checksum: &'a Checksum,
    ) -> FrameCursor<'a> {
        debug_assert!(start + bytes.len() as u64 <= size);
        FrameCursor {
            bytes,
            start,
            base,
            size,
            offset: start,
            checksum,
            quarantine: &[],
            checked: None,
            trusted: 0..0,
        }
    }

    /// A cursor over `bytes`, `seg`'s bytes from segment offset `start`
    /// to a limit; an empty one when they are not there to read.
    #[inline]
    pub(crate) fn over(
        seg: &'a Segment,
        bytes: Option<&'a [u8]>,
        start: u64,
        checksum: &'a Checksum,
    ) -> FrameCursor<'a> {
        FrameCursor::new(
            (seg.base(), seg.size()),
            start,
            bytes.unwrap_or_default(),
            checksum,
        )
    }

    /// Steps over the ranges in `list` where a frame fails to decode.
    #[inline]
    pub(crate) fn skipping(mut self, list: &'a [Quarantined]) -> Self {
        self.quarantine = list;
        self
    }

    /// Takes frames `checked` verified without their checksums, starting
    /// from the run `trusted` last seen.
    #[inline]
    pub(crate) fn trusting(
        mut self,
        checked: Option<&'a dyn Checked>,
        trusted: Range<u64>,
    ) -> Self {
        self.checked = checked;
        self.trusted = trusted;
        self
    }

    /// Segment offset of the next frame.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Log offset of the next frame.
    #[inline]
    pub(crate) fn at(&self) -> u64 {
        self.base + self.offset
    }

    /// Goes back to segment offset `offset`, a boundary this cursor passed
    /// (or forward to one a caller found, such as the end of a range it
    /// quarantined).
    #[inline]
    pub(crate) fn seek(&mut self, offset: u64) {
        debug_assert!(offset >= self.start);
        self.offset = offset;
    }

    /// The run of checked frames last seen, for the next cursor.
    #[inline]
    pub(crate) fn trusted(&self) -> Range<u64> {
        self.trusted.clone()
    }

    /// Whether the frame at log offset `at` was checked by someone else.
    #[inline]
    fn is_checked(&mut self, at: u64) -> bool {
        let Some(checked) = self.checked else {
            return false;
        };
        if !self.trusted.contains(&at) {
            self.trusted = checked.verified();
        }
        let hit = self.trusted.contains(&at);
        #[cfg(test)]
        if hit {
            TRUSTED.with(|n| n.set(n.get() + 1));
        }
        hit
    }

    /// The bytes from the next frame to the limit, or why there is no
    /// frame to look at.
    #[inline]
    fn here(&self) -> Result<&'a [u8], Step<'a>> {
        if self.offset + frame::END_BYTES as u64 > self.size {
            return Err(Step::NoRoom);
        }
        let bytes: &'a [u8] = self.bytes;
        self.offset
            .checked_sub(self.start)
            .and_then(|from| bytes.get(from as usize..))
            .filter(|b| !b.is_empty())
            .ok_or(Step::Limit)
    }

    /// The next frame (see [`Step`]), checked as `check` says.
    #[inline]
    pub(crate) fn next(&mut self, check: Check) -> Step<'a> {
        let buf = match self.here() {
            Ok(buf) => buf,
            Err(step) => return step,
        };
        let at = self.base + self.offset;
        let decoded = match check {
            Check::Full => frame::decode(buf, at, self.checksum),
            Check::Lazy => {
                if self.is_checked(at) {
                    frame::decode_verified(buf)
                } else {
                    frame::decode_lazy(buf, at, self.checksum)
                }
            }
        };
        match decoded {
            Ok((Frame::Events(f), padded)) => {
                if self.offset + padded + frame::END_BYTES as u64 > self.size {
                    return Step::Bad(DecodeError::Malformed(
                        "frame overlaps the end marker's room",
                    ));
                }
                self.offset += padded;
                Step::Events(f, padded)
            }
            Ok((Frame::End, padded)) => {
                self.offset += padded;
                Step::End
            }
            Err(error) => self.bad(at, error),
        }
    }

    /// The next frame's length and checksum only, events frames stepped
    /// over by their lengths: for the helper checking ahead of a replay.
    #[inline]
    pub(crate) fn next_summed(&mut self) -> Summed {
        let Ok(buf) = self.here() else {
            return Summed::Stop;
        };
        match frame::verify(buf, self.base + self.offset, self.checksum) {
            Some(Verified::Events(padded)) => {
                self.offset += padded;
                Summed::Events(padded)
            }
            Some(Verified::End) => {
                self.offset += frame::END_BYTES as u64;
                Summed::End
            }
            None => Summed::Stop,
        }
    }

    /// The next events frame's padded length from its length field and
    /// kind alone (no checksum), stepping over it: the same step every
    /// walk takes over an events frame, for a walker that only needs frame
    /// boundaries. `None`, and no step, at anything else.
    #[inline]
    pub(crate) fn next_unchecked(&mut self) -> Option<u64> {
        let buf = self.here().ok()?;
        let padded = frame::events_step(buf)?;
        if self.offset + padded + frame::END_BYTES as u64 > self.size {
            return None;
        }
        self.offset += padded;
        Some(padded)
    }

    /// A frame at log offset `at` that failed with `error`: a quarantined
    /// range is stepped over, anything else is the caller's.
    #[cold]
    fn bad(&mut self, at: u64, error: DecodeError) -> Step<'a> {
        match quarantine::find(self.quarantine, at) {
            Some(q) => {
                self.offset = q.global_end - self.base;
                Step::Quarantined
            }
            None => Step::Bad(error),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Frames this thread's walks took as checked by someone else.
    pub(crate) static TRUSTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A verified events frame found by the walker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameInfo {
    /// Offset of the frame in its segment.
    pub(crate) start: u64,
    /// Unpadded length.
    pub(crate) len: u64,
    /// Log offset of the frame.
    pub(crate) global: u64,
    /// Log offset of the next frame.
    pub(crate) next_global: u64,
    pub(crate) stream_id: u32,
    pub(crate) first_version: u64,
    pub(crate) timestamp_us: u64,
    pub(crate) count: u32,
    pub(crate) events_start: usize,
    /// Events of this frame before the requested start position.
    pub(crate) skip: u16,
}

impl FrameInfo {
    /// A placeholder for a walk to write into.
    pub(crate) const EMPTY: FrameInfo = FrameInfo {
        start: 0,
        len: 0,
        global: 0,
        next_global: 0,
        stream_id: 0,
        first_version: 0,
        timestamp_us: 0,
        count: 0,
        events_start: 0,
        skip: 0,
    };

    /// The info of events frame `f` at offset `start` of `seg`, `padded` long.
    pub(crate) fn new(
        seg: &Segment,
        start: u64,
        f: &frame::EventsFrame<'_>,
        padded: u64,
        skip: u16,
    ) -> Self {
        let global = seg.base() + start;
        FrameInfo {
            start,
            len: f.bytes.len() as u64,
            global,
            next_global: global + padded,
            stream_id: f.stream_id,
            first_version: f.first_version,
            timestamp_us: f.timestamp_us,
            count: f.event_count,
            events_start: f.events_start,
            skip,
        }
    }

    pub(crate) fn last_version(&self) -> u64 {
        self.first_version + u64::from(self.count) - 1
    }

    pub(crate) fn position(&self, index: u16) -> Position {
        Position::new(self.global, index)
    }

    pub(crate) fn next_position(&self, index: u16) -> Position {
        if u32::from(index) + 1 < self.count {
            Position::new(self.global, index + 1)
        } else {
            Position::new(self.next_global, 0)
        }
    }
}
