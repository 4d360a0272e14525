//! Writing frames: the sizes of a batch and its events, the events frame
//! and the end-of-segment marker, each sealed with its checksum last.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::{
    Checksum, END_BYTES, EVENT_FLAG_HAS_ID, EVENT_HEADER_BYTES, EVENT_ID_BYTES,
    FLAG_DEFINES_STREAM, HEADER_BYTES, KIND_END, KIND_EVENTS, LAG_UNKNOWN, padded, seal_crc,
};
use crate::event::EventData;
use crate::limits;

/// How far behind a frame at `position` the durable end was, as stored.
fn durable_lag(position: u64, durable_end: u64) -> u32 {
    debug_assert!(durable_end <= position);
    u32::try_from(position.saturating_sub(durable_end)).unwrap_or(LAG_UNKNOWN)
}

/// Encoded size of one event.
fn event_len(event: &EventData) -> u64 {
    let id = if event.id.is_some() {
        EVENT_ID_BYTES
    } else {
        0
    };
    [
        EVENT_HEADER_BYTES,
        id,
        event.event_type.as_str().len(),
        event.metadata.len(),
        event.payload.len(),
    ]
    .iter()
    .fold(0u64, |sum, &n| sum.saturating_add(n as u64))
}

/// The stream-level fields of an events frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta<'a> {
    pub(crate) stream_id: u32,
    /// Set on the stream's first frame: it defines the id's name.
    pub(crate) defines: Option<&'a str>,
    pub(crate) first_version: u64,
    /// Log offset of the stream's previous frame, or [`NO_PREV_FRAME`](super::NO_PREV_FRAME).
    pub(crate) prev_frame: u64,
    pub(crate) timestamp_us: u64,
    /// Log offset below which everything was durable when this frame was
    /// written (the sync thread's last durable end).
    pub(crate) durable_end: u64,
}

/// Unpadded length of the frame for `events` (sum of checked sizes; the
/// caller validated each size against the limits first).
pub(crate) fn batch_len(defines: Option<&str>, events: &[EventData]) -> u64 {
    let name = defines.map_or(0, str::len) as u64;
    events.iter().map(event_len).fold(
        (HEADER_BYTES as u64).saturating_add(name),
        u64::saturating_add,
    )
}

/// Appends bytes into a fixed buffer; running past its end is a bug in the
/// length computation, caught by the debug assertion and by the read-back check.
struct Filler<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Filler<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        match self.out.get_mut(self.at..end) {
            Some(dst) => dst.copy_from_slice(bytes),
            None => debug_assert!(false, "frame buffer too small"),
        }
        self.at = end;
    }
}

/// Encodes an events frame into `out`, which must be exactly
/// `padded(batch_len(..))` bytes; padding is written as zeros.
pub(crate) fn encode_batch(
    out: &mut [u8],
    position: u64,
    checksum: &Checksum,
    meta: &BatchMeta<'_>,
    events: &[EventData],
) {
    let len = batch_len(meta.defines, events);
    debug_assert_eq!(out.len() as u64, padded(len));
    debug_assert!(!events.is_empty() && events.len() <= limits::MAX_EVENTS_PER_APPEND);
    let name = meta.defines.unwrap_or_default();
    let flags = if meta.defines.is_some() {
        FLAG_DEFINES_STREAM
    } else {
        0
    };
    let mut c = Filler { out, at: 0 };
    c.put(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    c.put(&[0; 4]); // CRC, filled in last.
    c.put(&[KIND_EVENTS, flags]);
    c.put(&(name.len() as u16).to_le_bytes());
    c.put(&(events.len() as u32).to_le_bytes());
    c.put(&meta.stream_id.to_le_bytes());
    c.put(&durable_lag(position, meta.durable_end).to_le_bytes());
    c.put(&meta.first_version.to_le_bytes());
    c.put(&meta.prev_frame.to_le_bytes());
    c.put(&meta.timestamp_us.to_le_bytes());
    c.put(name.as_bytes());
    for event in events {
        let id_flag = if event.id.is_some() {
            EVENT_FLAG_HAS_ID
        } else {
            0
        };
        let flags = id_flag | event.envelopes;
        c.put(&(event.event_type.as_str().len() as u16).to_le_bytes());
        c.put(&event.schema_version.to_le_bytes());
        c.put(&[flags, 0, 0, 0]);
        c.put(&(event.metadata.len() as u32).to_le_bytes());
        c.put(&(event.payload.len() as u32).to_le_bytes());
        if let Some(id) = event.id {
            c.put(&id.to_le_bytes());
        }
        c.put(event.event_type.as_str().as_bytes());
        c.put(&event.metadata);
        c.put(&event.payload);
    }
    let at = c.at;
    let out = c.out;
    if let Some(padding) = out.get_mut(at..) {
        padding.fill(0);
    }
    seal_crc(out, len as usize, position, checksum);
}

/// Encodes the end-of-segment marker into `out` (exactly [`END_BYTES`]).
pub(crate) fn encode_end(out: &mut [u8], position: u64, checksum: &Checksum) {
    debug_assert_eq!(out.len(), END_BYTES);
    out.fill(0);
    if let Some(len) = out.get_mut(..4) {
        len.copy_from_slice(&(END_BYTES as u32).to_le_bytes());
    }
    if let Some(kind) = out.get_mut(8) {
        *kind = KIND_END;
    }
    seal_crc(out, END_BYTES, position, checksum);
}
