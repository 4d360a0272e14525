//! Frame encoding and decoding: pure, no I/O, so fuzzers and property tests
//! drive it directly. The byte layout is documented in `docs/FORMAT.md`.
//!
//! One frame holds one append call (so an append is atomic):
//! `[len u32][crc u32][kind u8][flags u8][name_len u16][event_count u32]
//!  [stream_id u32][durable_lag u32][first_version u64][prev_frame u64]
//!  [timestamp_us u64][stream name?][events...][zero padding to 8]`.
//! The CRC covers everything after the CRC field, starting from a state that
//! mixes the log's id, the frame's own log position and its length, so a torn
//! length, a frame copied to another place and a frame from another log all
//! fail the check.
//!
//! One concern a file: [`checksum`] computes and seals a frame's CRC,
//! [`encode`] writes frames, [`decode`](mod@decode) checks and reads their
//! headers, and [`events`] walks the events inside a checked frame. What
//! the rest of the crate uses is re-exported here, at `crate::frame::*`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

mod checksum;
mod decode;
mod encode;
mod events;
#[cfg(test)]
mod tests;

pub(crate) use checksum::{Checksum, seal_crc};
pub(crate) use decode::{
    DecodeError, EventsFrame, Frame, Verified, decode, decode_lazy, decode_verified, events_step,
    plausible, verify,
};
pub(crate) use encode::{BatchMeta, batch_len, encode_batch, encode_end};
pub(crate) use events::{EventIter, RawEvent, parse_event};

/// Bytes of the fixed part of an events frame.
pub(crate) const HEADER_BYTES: usize = 48;
/// Bytes of the end-of-segment marker frame; the writer always leaves room for it.
pub(crate) const END_BYTES: usize = 16;
/// Bytes of the fixed part of each event.
pub(crate) const EVENT_HEADER_BYTES: usize = 16;
/// Bytes of an event id, present only when the event has one.
pub(crate) const EVENT_ID_BYTES: usize = 16;
/// Frames start on multiples of this.
pub(crate) const ALIGN: u64 = 8;
/// `prev_frame` of a stream's first frame.
pub(crate) const NO_PREV_FRAME: u64 = u64::MAX;
/// `durable_lag` when the durable end is further back than a `u32` reaches.
pub(crate) const LAG_UNKNOWN: u32 = u32::MAX;

const KIND_EVENTS: u8 = 1;
const KIND_END: u8 = 2;
const FLAG_DEFINES_STREAM: u8 = 1;
const EVENT_FLAG_HAS_ID: u8 = 1;
/// Event flag: the stored payload is an envelope (`shred/envelope.rs`).
pub(crate) const EVENT_FLAG_PAYLOAD_SEALED: u8 = 2;
/// Event flag: the stored metadata is an envelope.
pub(crate) const EVENT_FLAG_METADATA_SEALED: u8 = 4;
/// Either envelope flag.
pub(crate) const EVENT_FLAGS_SEALED: u8 = EVENT_FLAG_PAYLOAD_SEALED | EVENT_FLAG_METADATA_SEALED;

/// Rounds a frame length up to the next frame boundary.
#[inline]
pub(crate) fn padded(len: u64) -> u64 {
    len.next_multiple_of(ALIGN)
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

#[inline]
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[inline]
fn u128_at(b: &[u8], at: usize) -> Option<u128> {
    Some(u128::from_le_bytes(
        b.get(at..at.checked_add(16)?)?.try_into().ok()?,
    ))
}
