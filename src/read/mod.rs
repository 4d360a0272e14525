//! Reading: the global log (`all`, owned; `replay`, borrowed) through
//! one walk over the published frames (`walker`), one stream (`stream`),
//! and owned events sharing the mapping (`owned`).
//!
//! Readers take no lock of the writer's: they read each segment up to its
//! published offset, which only grows and below which bytes never change.
//! Replay of small events costs one CRC pass over the frame plus a header
//! parse per event; the owned path adds one reference-count increment per
//! field (payloads are slices of one `Bytes` per segment, never copies).

use crate::frame::{self, Frame};
use crate::position::Position;
use crate::view::LogView;

pub(crate) mod ahead;
mod all;
pub(crate) mod deletions;
mod owned;
mod replay;
mod stream;
mod time;
mod walker;

pub use all::ReadAll;
pub(crate) use all::{Fetched, LogCursor, Select};
#[cfg(test)]
pub(crate) use replay::replay_with;
pub(crate) use replay::{replay, replay_stream};
pub use stream::ReadStream;
pub use time::AsOf;
pub(crate) use time::{micros, position_at, read_stream_as_of, stream_version_as_of};
#[cfg(test)]
pub(crate) use walker::Walker;

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
