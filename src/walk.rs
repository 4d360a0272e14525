//! Walking frames: what a walk finds of each events frame.

use crate::frame;
use crate::position::Position;
use crate::segment::Segment;

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
