//! `$all` as owned events: the cursor behind `read_all` and the
//! subscriptions, under a [`Select`] that decides frame by frame and
//! event by event what is handed out.

use std::sync::Arc;

use super::ahead;
use super::owned::{OwnedFrame, SegmentBytes, TypeCache};
use super::walker::Walker;
use crate::error::Result;
use crate::event::RecordedEvent;
use crate::position::Position;
use crate::upcast::Pending;
use crate::view::LogView;

/// Decides, frame by frame and then event by event, what a [`LogCursor`]
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

/// What [`LogCursor::next`] found.
// Moved straight out to the caller; boxing the event would allocate per event.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Fetched {
    Event(RecordedEvent),
    /// The end of what is published.
    End,
    /// The frame budget ran out first; call again to go on.
    Budget,
}

/// Owned events of the global log from a position on, through what is
/// published: the walk behind `read_all` and subscriptions.
pub(crate) struct LogCursor {
    pub(super) walker: Walker,
    pub(super) cache: SegmentBytes,
    pub(super) frame: Option<OwnedFrame>,
    pub(super) types: TypeCache,
    /// Where a reader that stopped here would go on.
    pub(super) resume: Position,
    /// A helper checking checksums ahead (see `ahead.rs`), asked for once,
    /// when the first frame proved the start a boundary: a cursor far
    /// behind (`read_all`, a subscription catching up) gets one; it returns
    /// at the published end and is stopped when the cursor is dropped.
    pub(super) helper: Option<ahead::Running>,
    pub(super) asked_for_helper: bool,
}

impl LogCursor {
    pub(crate) fn new(shared: Arc<LogView>, from: Position) -> LogCursor {
        LogCursor {
            types: TypeCache::new(&shared),
            walker: Walker::new(shared, from),
            cache: SegmentBytes::default(),
            frame: None,
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
    ) -> Result<Fetched> {
        loop {
            if let Some(f) = self.frame.as_mut() {
                match f.next_kept(&mut self.types, &mut |v, t| select.event(v, t)) {
                    Some(Ok(event)) => {
                        self.resume = event.next_position;
                        return Ok(Fetched::Event(event));
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
                return Ok(Fetched::Budget);
            }
            budget -= 1;
            let Some(info) = self.walker.next_frame()? else {
                return Ok(Fetched::End);
            };
            if !self.asked_for_helper {
                self.ask_for_helper();
            }
            let Some(seg) = self.walker.segment() else {
                return Ok(Fetched::End);
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
    cursor: LogCursor,
    done: bool,
    /// Outputs of an upcast event still to hand out.
    pending: Pending,
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
        shared.check_from(from)?;
        Ok(ReadAll {
            pending: Pending::new(shared.upcasters.clone(), false),
            cursor: LogCursor::new(shared, from),
            done: false,
        })
    }
}

impl Iterator for ReadAll {
    type Item = Result<RecordedEvent>;

    /// The next event, upcast. An [`Error::Upcast`](crate::Error::Upcast)
    /// is one item: the read goes on after it. Any other error ends it.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(output) = self.pending.pop() {
                return Some(Ok(output));
            }
            // An event with nothing to upcast is returned straight from
            // here: matched together with the upcast guard, it was copied
            // into the result through a `memcpy` call per event.
            let event = match self.next_stored()? {
                Ok(event) => event,
                Err(e) => return Some(Err(e)),
            };
            if !event.needs_upcast() {
                return Some(Ok(event));
            }
            match self.pending.upcast(event) {
                Ok(Some(output)) => return Some(Ok(output)),
                // Dropped by an upcaster.
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl ReadAll {
    /// The next stored event.
    #[inline(always)]
    fn next_stored(&mut self) -> Option<Result<RecordedEvent>> {
        if self.done {
            return None;
        }
        match self.cursor.next(&mut Everything, usize::MAX) {
            Ok(Fetched::Event(event)) => Some(Ok(event)),
            Ok(Fetched::End | Fetched::Budget) => {
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
