//! Idempotent retries: an append whose events all carry ids, repeating an
//! append already made, returns the original result and writes nothing.

use crate::error::Result;
use crate::event::{AppendRequest, AppendResult, EventData, ExpectedVersion};
use crate::frame::{self, EventIter};
use crate::streams::{Found, IndexEntry, Streams};
use crate::view::{LogView, StreamFrame};

use super::AppendSide;

impl AppendSide {
    /// If `request` repeats an append already in the stream `found` (a
    /// client retry: every event has an id, and they match the original's
    /// in order), the original result and the log offset its frame ends at.
    ///
    /// The window: a retry with `Exact(n)` or `NoStream` is matched against
    /// the append that followed version `n` (or created the stream), however
    /// long ago, found through the sparse index in O(log n + K) frame reads;
    /// a retry with `Any` or `StreamExists` only against the stream's last
    /// append. Runs under the append side's lock, only for batches that
    /// carry ids.
    pub(crate) fn find_retry(
        &self,
        streams: &Streams,
        found: Found,
        request: &AppendRequest<'_>,
    ) -> Result<Option<(AppendResult, u64)>> {
        if !request.events.iter().all(|e| e.id.is_some()) {
            return Ok(None);
        }
        let (id, head) = (found.id, found.head);
        let view = &*self.view;
        let frame = match request.expected {
            ExpectedVersion::Exact(n) if n < head.last_version => {
                let above = streams.entry_above(id, n + 1);
                frame_starting_at(view, id, head.last_frame, above, n + 1)?
            }
            ExpectedVersion::NoStream => {
                // A creating batch longer than the interval has an entry at 0.
                let above = streams.entry_above(id, 0);
                frame_starting_at(view, id, head.last_frame, above, 0)?
            }
            ExpectedVersion::Any | ExpectedVersion::StreamExists if view.kept(head.last_frame) => {
                Some(view.stream_frame(id, head.last_frame)?)
            }
            // The stream's frames went with retention: nothing to retry.
            ExpectedVersion::Any | ExpectedVersion::StreamExists => None,
            ExpectedVersion::Exact(_) => None,
        };
        match frame {
            Some(f) => same_append(&f, request.events),
            None => Ok(None),
        }
    }
}

/// Finds the frame of stream `id` that starts at `version`, walking back
/// from the newest frame before the first index entry above `version` (or
/// from `head_frame`). `None` when no frame starts there.
fn frame_starting_at(
    view: &LogView,
    id: u32,
    head_frame: u64,
    entry_above: Option<IndexEntry>,
    version: u64,
) -> Result<Option<StreamFrame>> {
    let mut at = match entry_above {
        Some(entry) if view.kept(entry.frame) => view.stream_frame(id, entry.frame)?.prev_frame,
        Some(_) => return Ok(None),
        None => head_frame,
    };
    // Retention may have taken the frame looked for: not a retry then.
    while at != frame::NO_PREV_FRAME && view.kept(at) {
        let f = view.stream_frame(id, at)?;
        if f.info.first_version <= version {
            return Ok((f.info.first_version == version).then_some(f));
        }
        at = f.prev_frame;
    }
    Ok(None)
}

/// If frame `f` holds exactly `events`' ids in order (a retried append),
/// the result the original append returned and the log offset it ends at.
fn same_append(f: &StreamFrame, events: &[EventData]) -> Result<Option<(AppendResult, u64)>> {
    if f.info.count as usize != events.len() {
        return Ok(None);
    }
    let end = f.info.start + f.info.len;
    let Some(bytes) = f.seg.written_bytes(f.info.start, end) else {
        return Ok(None);
    };
    for (raw, event) in EventIter::new(bytes, f.info.events_start, f.info.count).zip(events) {
        let raw = raw.map_err(|e| crate::segment::corrupt(&f.seg, f.info.start, e))?;
        if raw.id.is_none() || raw.id != event.id {
            return Ok(None);
        }
    }
    let last_index = (f.info.count - 1) as u16;
    let result = AppendResult {
        first_version: f.info.first_version,
        last_version: f.info.last_version(),
        first_position: f.info.position(0),
        last_position: f.info.position(last_index),
    };
    Ok(Some((result, f.info.next_global)))
}
