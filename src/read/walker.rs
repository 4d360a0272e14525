//! The walk over the published log behind `read_all`, `replay` and
//! subscriptions: frame after frame, segment after segment, from a
//! position a caller gave (proved a frame boundary by the first frame).

use std::ops::Range;
use std::sync::Arc;

use super::ahead::{self, Ahead};
use crate::error::{Error, Result};
use crate::frame::DecodeError;
use crate::position::Position;
use crate::segment::{HEADER_BYTES, Segment, corrupt};
use crate::view::LogView;
use crate::walk::{Check, Checked, FrameCursor, FrameInfo, Step};

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
    /// The base of the segment after the last one walked: where to say
    /// the read stood if retention removed it.
    removed_base: u64,
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
            removed_base: 0,
        }
    }

    /// A cursor over the published bytes of `seg` from `offset`, stepping
    /// over quarantined ranges and taking frames the helper checked
    /// without their checksums.
    #[inline]
    pub(super) fn frames<'a>(
        view: &'a LogView,
        seg: &'a Segment,
        offset: u64,
        ahead: Option<&'a Ahead>,
        trusted: Range<u64>,
    ) -> FrameCursor<'a> {
        FrameCursor::over(
            seg,
            seg.bytes(offset, seg.published()),
            offset,
            &view.checksum,
        )
        .skipping(&view.quarantine)
        .trusting(ahead.map(|a| a as &dyn Checked), trusted)
    }

    /// Tells the helper, every few frames, where the replay's next frame
    /// is (on borrowed fields, for a loop that holds the walker's segment).
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
                if self.seg.is_none() && self.shared.is_removed(self.index) {
                    // Retention removed it while this read was behind.
                    let start = self.shared.log_start();
                    return Err(Error::BeforeLogStart {
                        position: Position::new(self.removed_base, 0),
                        log_start: start.position(),
                    });
                }
            }
            let Some(seg) = self.seg.as_deref() else {
                return Ok(None);
            };
            let start = self.offset;
            let trusted = std::mem::take(&mut self.trusted);
            let mut frames =
                Walker::frames(&self.shared, seg, start, self.ahead.as_deref(), trusted);
            let step = frames.next(Check::Lazy);
            self.trusted = frames.trusted();
            self.offset = frames.offset();
            match step {
                Step::Events(f, padded) => {
                    // A caller's index past the frame's last event names no
                    // event: refuse it rather than resume at the next frame.
                    if let Some(position) = self.unproven.take()
                        && u32::from(self.skip) >= f.event_count
                    {
                        return Err(Error::InvalidPosition { position });
                    }
                    let skip = std::mem::take(&mut self.skip);
                    let info = FrameInfo::new(seg, start, &f, padded, skip);
                    Walker::passed(self.ahead.as_deref(), &mut self.frames, info.next_global);
                    return Ok(Some(info));
                }
                Step::End => {
                    if let Some(position) = self.unproven.take()
                        && self.skip > 0
                    {
                        return Err(Error::InvalidPosition { position });
                    }
                    self.next_segment();
                }
                // A quarantined range ran to the segment's end, taking its
                // end marker.
                Step::NoRoom => self.next_segment(),
                Step::Quarantined => self.skip = 0,
                Step::Limit => return Ok(None),
                Step::Bad(error) => {
                    if let Some(position) = self.unproven.take()
                        && !is_frame_boundary(&self.shared, seg, start)
                    {
                        return Err(Error::InvalidPosition { position });
                    }
                    return Err(corrupt(seg, start, error));
                }
            }
        }
    }

    /// Moves to the start of the next segment.
    fn next_segment(&mut self) {
        if let Some(seg) = &self.seg {
            self.removed_base = seg.end();
        }
        self.skip = 0;
        self.index += 1;
        self.seg = self.shared.segment_at(self.index);
        self.offset = HEADER_BYTES;
    }
}

/// Whether `target` is where a frame starts in `seg`, walking from its
/// first frame. A damaged frame on the way leaves it undecided (`true`:
/// report the damage rather than blame the caller).
fn is_frame_boundary(view: &LogView, seg: &Segment, target: u64) -> bool {
    let bytes = seg.bytes(HEADER_BYTES, seg.published());
    let mut frames = FrameCursor::over(seg, bytes, HEADER_BYTES, &view.checksum);
    while frames.offset() < target {
        match frames.next(Check::Full) {
            Step::Events(..) | Step::End => {}
            Step::Bad(DecodeError::Zero) | Step::Limit | Step::NoRoom => return false,
            Step::Bad(_) | Step::Quarantined => return true,
        }
    }
    frames.offset() == target
}
