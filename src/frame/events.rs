//! The events inside a frame whose checksum and header were checked: one
//! event's fields, the iterator over a frame's events, and the full walk
//! that [`decode`](fn@super::decode) makes before it accepts a frame.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::{
    DecodeError, EVENT_FLAG_HAS_ID, EVENT_HEADER_BYTES, EVENT_ID_BYTES, EventsFrame, u128_at,
};
use crate::limits;

/// One event inside a verified frame; `*_start` are offsets in the frame, so
/// owners of the frame's bytes can slice them without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawEvent<'a> {
    /// UTF-8 only if the frame passed [`decode`](fn@super::decode);
    /// [`decode_lazy`](super::decode_lazy) leaves the check to the reader,
    /// which caches it per type.
    pub(crate) event_type: &'a [u8],
    pub(crate) schema_version: u16,
    /// The event's flags: which of its fields are envelopes
    /// ([`EVENT_FLAGS_SEALED`](super::EVENT_FLAGS_SEALED)).
    pub(crate) flags: u8,
    pub(crate) id: Option<u128>,
    pub(crate) metadata: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) event_type_start: usize,
    pub(crate) metadata_start: usize,
    pub(crate) payload_start: usize,
}

impl<'a> EventsFrame<'a> {
    /// The frame's events in order.
    pub(crate) fn events(&self) -> EventIter<'a> {
        EventIter::new(self.bytes, self.events_start, self.event_count)
    }
}

/// Iterates the events of a frame.
#[derive(Debug, Clone)]
pub(crate) struct EventIter<'a> {
    bytes: &'a [u8],
    at: usize,
    left: u32,
}

impl<'a> EventIter<'a> {
    /// Events of a frame already verified by [`decode`](fn@super::decode):
    /// `bytes` are the frame's bytes, `events_start` and `count` from its
    /// header.
    pub(crate) fn new(bytes: &'a [u8], events_start: usize, count: u32) -> Self {
        EventIter {
            bytes,
            at: events_start,
            left: count,
        }
    }
}

impl<'a> Iterator for EventIter<'a> {
    type Item = Result<RawEvent<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        let result = parse_event(self.bytes, self.at);
        match result {
            Ok((event, next)) => {
                self.at = next;
                Some(Ok(event))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

#[inline]
/// Parses the event at `at` of a frame's bytes; returns it and where the next starts.
pub(crate) fn parse_event(b: &[u8], at: usize) -> Result<(RawEvent<'_>, usize), DecodeError> {
    let h: &[u8; EVENT_HEADER_BYTES] = b
        .get(at..)
        .and_then(<[u8]>::first_chunk)
        .ok_or(DecodeError::Malformed("event header past the frame"))?;
    let [
        t0,
        t1,
        v0,
        v1,
        flags,
        _,
        _,
        _,
        m0,
        m1,
        m2,
        m3,
        p0,
        p1,
        p2,
        p3,
    ] = *h;
    let type_len = usize::from(u16::from_le_bytes([t0, t1]));
    let schema_version = u16::from_le_bytes([v0, v1]);
    let metadata_len = u32::from_le_bytes([m0, m1, m2, m3]) as usize;
    let payload_len = u32::from_le_bytes([p0, p1, p2, p3]) as usize;
    if type_len == 0 || type_len > limits::MAX_EVENT_TYPE_BYTES {
        return Err(DecodeError::Malformed("event type length out of range"));
    }
    let mut cursor = at.saturating_add(EVENT_HEADER_BYTES);
    let id = if flags & EVENT_FLAG_HAS_ID != 0 {
        let id = u128_at(b, cursor).ok_or(DecodeError::Malformed("event id past the frame"))?;
        cursor = cursor.saturating_add(EVENT_ID_BYTES);
        Some(id)
    } else {
        None
    };
    let past = DecodeError::Malformed("event body past the frame");
    let event_type_start = cursor;
    let metadata_start = event_type_start.checked_add(type_len).ok_or(past.clone())?;
    let payload_start = metadata_start
        .checked_add(metadata_len)
        .ok_or(past.clone())?;
    let end = payload_start.checked_add(payload_len).ok_or(past.clone())?;
    let event_type = b
        .get(event_type_start..metadata_start)
        .ok_or(past.clone())?;
    let metadata = b.get(metadata_start..payload_start).ok_or(past.clone())?;
    let payload = b.get(payload_start..end).ok_or(past)?;
    Ok((
        RawEvent {
            event_type,
            schema_version,
            flags,
            id,
            metadata,
            payload,
            event_type_start,
            metadata_start,
            payload_start,
        },
        end,
    ))
}

/// Walks every event of a frame so that iterating it cannot fail halfway and
/// the events fill the frame exactly.
pub(super) fn validate_events(frame: &EventsFrame<'_>) -> Result<(), DecodeError> {
    let mut end = frame.events_start;
    let mut events = frame.events();
    for _ in 0..frame.event_count {
        match events.next() {
            Some(Ok(event)) => {
                std::str::from_utf8(event.event_type)
                    .map_err(|_| DecodeError::Malformed("event type not UTF-8"))?;
                end = events.at;
            }
            Some(Err(e)) => return Err(e),
            None => return Err(DecodeError::Malformed("fewer events than counted")),
        }
    }
    if end != frame.bytes.len() {
        return Err(DecodeError::Malformed("bytes left after the last event"));
    }
    Ok(())
}
