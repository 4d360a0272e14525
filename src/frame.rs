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
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use crate::event::EventData;
use crate::limits;

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

/// The checksum of one log: CRC-32 seeded with the log's id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checksum {
    initial: u32,
}

impl Checksum {
    pub(crate) fn new(log_id: u128) -> Self {
        Checksum {
            initial: crc32fast::hash(&log_id.to_le_bytes()),
        }
    }

    /// CRC of a frame (`frame` is exactly its unpadded bytes) at `position`.
    ///
    /// One pass over the bytes after the CRC field, started from a state that
    /// mixes the log id, the frame's position and its length. CRC is affine
    /// in its starting state, so a frame read at another position, in another
    /// log or with another length fails the check unless the 32-bit mixes
    /// collide. A single `update` keeps small frames on crc32fast's fast path
    /// (separate 4- and 8-byte updates cost more than the mixing).
    #[inline]
    fn of_frame(&self, frame: &[u8], position: u64) -> u32 {
        let initial = self.initial ^ mix(position, frame.len() as u64);
        let mut hasher = crc32fast::Hasher::new_with_initial(initial);
        hasher.update(frame.get(8..).unwrap_or_default());
        hasher.finalize()
    }
}

/// Folds a frame's position and length into 32 bits: two rounds of a
/// 64-bit multiply-xorshift (splitmix64's finaliser), so nearby positions and
/// lengths land far apart.
#[inline]
fn mix(position: u64, len: u64) -> u32 {
    let mut x = position ^ len.rotate_right(13);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x ^ (x >> 32)) as u32
}

/// How far behind a frame at `position` the durable end was, as stored.
fn durable_lag(position: u64, durable_end: u64) -> u32 {
    debug_assert!(durable_end <= position);
    u32::try_from(position.saturating_sub(durable_end)).unwrap_or(LAG_UNKNOWN)
}

/// Rounds a frame length up to the next frame boundary.
pub(crate) fn padded(len: u64) -> u64 {
    len.next_multiple_of(ALIGN)
}

/// Encoded size of one event.
pub(crate) fn event_len(event: &EventData) -> u64 {
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
    /// Log offset of the stream's previous frame, or [`NO_PREV_FRAME`].
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
        let flags = if event.id.is_some() {
            EVENT_FLAG_HAS_ID
        } else {
            0
        };
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

pub(crate) fn seal_crc(out: &mut [u8], len: usize, position: u64, checksum: &Checksum) {
    let crc = checksum.of_frame(out.get(..len).unwrap_or_default(), position);
    if let Some(field) = out.get_mut(4..8) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Why bytes did not decode as a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Length and CRC are zero: never-written space.
    Zero,
    /// The length field is below the smallest frame or not a whole frame.
    BadLength(u32),
    /// The length claims more bytes than exist.
    Truncated { len: u64, available: u64 },
    /// The checksum does not match.
    Checksum { stored: u32, computed: u32 },
    /// The checksum matched but the contents break the format's rules.
    Malformed(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Zero => write!(f, "zero bytes where a frame was expected"),
            DecodeError::BadLength(len) => write!(f, "invalid frame length {len}"),
            DecodeError::Truncated { len, available } => {
                write!(
                    f,
                    "frame length {len} exceeds the {available} bytes present"
                )
            }
            DecodeError::Checksum { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            DecodeError::Malformed(what) => write!(f, "malformed frame: {what}"),
        }
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// One append's events.
    Events(EventsFrame<'a>),
    /// The end of this segment's data: the log continues in the next segment.
    End,
}

/// An events frame whose checksum and structure were verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventsFrame<'a> {
    /// The frame's unpadded bytes.
    pub(crate) bytes: &'a [u8],
    pub(crate) stream_id: u32,
    pub(crate) defines: Option<&'a str>,
    pub(crate) first_version: u64,
    pub(crate) prev_frame: u64,
    pub(crate) timestamp_us: u64,
    pub(crate) event_count: u32,
    pub(crate) events_start: usize,
    /// How far behind this frame the durable end was when it was written
    /// ([`LAG_UNKNOWN`]: further than 4 GiB, or never synced).
    pub(crate) durable_lag: u32,
}

impl EventsFrame<'_> {
    /// Log offset below which everything was durable when the frame at
    /// `position` was written, if it says.
    pub(crate) fn durable_end(&self, position: u64) -> Option<u64> {
        (self.durable_lag != LAG_UNKNOWN)
            .then(|| position.saturating_sub(u64::from(self.durable_lag)))
    }
}

/// One event inside a verified frame; `*_start` are offsets in the frame, so
/// owners of the frame's bytes can slice them without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawEvent<'a> {
    /// UTF-8 only if the frame passed [`decode`]; [`decode_lazy`] leaves the
    /// check to the reader, which caches it per type.
    pub(crate) event_type: &'a [u8],
    pub(crate) schema_version: u16,
    pub(crate) id: Option<u128>,
    pub(crate) metadata: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) event_type_start: usize,
    pub(crate) metadata_start: usize,
    pub(crate) payload_start: usize,
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

/// A cheap filter before [`decode`] when hunting for frames at arbitrary
/// offsets (repair, recovery's look-ahead): the length fits, the kind is
/// known and an events header's counts are in range. Random bytes almost
/// never pass, so the CRC is computed rarely.
pub(crate) fn plausible(buf: &[u8]) -> bool {
    let Some(h) = buf.first_chunk::<16>() else {
        return false;
    };
    let [l0, l1, l2, l3, _, _, _, _, kind, _, n0, n1, c0, c1, c2, c3] = *h;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    if len > buf.len() {
        return false;
    }
    match kind {
        KIND_END => len == END_BYTES,
        KIND_EVENTS => {
            let name_len = usize::from(u16::from_le_bytes([n0, n1]));
            let count = u32::from_le_bytes([c0, c1, c2, c3]) as usize;
            len >= HEADER_BYTES
                && name_len <= limits::MAX_STREAM_NAME_BYTES
                && (1..=limits::MAX_EVENTS_PER_APPEND).contains(&count)
        }
        _ => false,
    }
}

/// Decodes and fully validates the frame at the start of `buf` (the bytes
/// from the frame to the end of what may be read), which sits at log offset
/// `position`: checksum, header and every event. Returns the frame and its
/// padded length. Every length is checked against `buf` before use; nothing
/// is allocated. Recovery uses this; readers use [`decode_lazy`].
pub(crate) fn decode<'a>(
    buf: &'a [u8],
    position: u64,
    checksum: &Checksum,
) -> Result<(Frame<'a>, u64), DecodeError> {
    let (frame, len) = decode_lazy(buf, position, checksum)?;
    if let Frame::Events(f) = &frame {
        validate_events(f)?;
    }
    Ok((frame, len))
}

/// Like [`decode`] but checks only the checksum and the header: events are
/// checked one by one as [`EventIter`] reaches them. Once the checksum
/// matches, the bytes are what the writer encoded, so the replay path
/// walks each event once instead of twice.
#[inline]
pub(crate) fn decode_lazy<'a>(
    buf: &'a [u8],
    position: u64,
    checksum: &Checksum,
) -> Result<(Frame<'a>, u64), DecodeError> {
    decode_header_checked(buf, position, Some(checksum))
}

/// Like [`decode_lazy`] for a frame whose checksum [`verify`] already
/// matched over these same bytes (which never change once published): the
/// header and lengths are still checked, the checksum is not computed again.
#[inline]
pub(crate) fn decode_verified(buf: &[u8]) -> Result<(Frame<'_>, u64), DecodeError> {
    decode_header_checked(buf, 0, None)
}

/// What [`verify`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verified {
    /// An events frame whose checksum matches, of this padded length.
    Events(u64),
    /// A segment's end marker, checksum matching.
    End,
}

/// Checks only the length and checksum of the frame at the start of `buf`
/// (at log offset `position`), for a reader verifying ahead of another;
/// `None` when they do not hold (that reader then checks for itself).
#[inline]
pub(crate) fn verify(buf: &[u8], position: u64, checksum: &Checksum) -> Option<Verified> {
    match framed(buf, position, Some(checksum)).ok()? {
        (_, Kind::End, _) => Some(Verified::End),
        (_, Kind::Events, padded_len) => Some(Verified::Events(padded_len)),
    }
}

/// The padded length of the events frame at the start of `buf`, from its
/// length field and kind alone (no checksum): how a walker that only needs
/// frame boundaries steps, the same step every reader takes over an events
/// frame. `None` for anything else (an end marker, never-written space, a
/// length past `buf`).
#[inline]
pub(crate) fn events_step(buf: &[u8]) -> Option<u64> {
    let len = u32_at(buf, 0)? as usize;
    if len < HEADER_BYTES || len > buf.len() || buf.get(8) != Some(&KIND_EVENTS) {
        return None;
    }
    Some(padded(len as u64))
}

/// The two kinds of frame.
enum Kind {
    Events,
    End,
}

#[inline(always)]
fn decode_header_checked<'a>(
    buf: &'a [u8],
    position: u64,
    checksum: Option<&Checksum>,
) -> Result<(Frame<'a>, u64), DecodeError> {
    match framed(buf, position, checksum)? {
        (_, Kind::End, padded_len) => Ok((Frame::End, padded_len)),
        (bytes, Kind::Events, padded_len) => Ok((Frame::Events(decode_events(bytes)?), padded_len)),
    }
}

/// The framing every decode shares: the frame's unpadded bytes, its kind
/// and padded length, once its length fits `buf` and (with `checksum`) its
/// checksum matches.
#[inline(always)]
fn framed<'a>(
    buf: &'a [u8],
    position: u64,
    checksum: Option<&Checksum>,
) -> Result<(&'a [u8], Kind, u64), DecodeError> {
    let available = buf.len() as u64;
    let (Some(len), Some(stored)) = (u32_at(buf, 0), u32_at(buf, 4)) else {
        return Err(if buf.iter().all(|&b| b == 0) {
            DecodeError::Zero
        } else {
            DecodeError::Truncated { len: 8, available }
        });
    };
    if len == 0 && stored == 0 {
        return Err(DecodeError::Zero);
    }
    if (len as usize) < END_BYTES {
        return Err(DecodeError::BadLength(len));
    }
    let Some(bytes) = buf.get(..len as usize) else {
        return Err(DecodeError::Truncated {
            len: u64::from(len),
            available,
        });
    };
    if let Some(checksum) = checksum {
        let computed = checksum.of_frame(bytes, position);
        if computed != stored {
            return Err(DecodeError::Checksum { stored, computed });
        }
    }
    let padded_len = padded(u64::from(len));
    match bytes.get(8) {
        Some(&KIND_END) if len as usize == END_BYTES => Ok((bytes, Kind::End, padded_len)),
        Some(&KIND_EVENTS) => Ok((bytes, Kind::Events, padded_len)),
        _ => Err(DecodeError::Malformed("unknown frame kind")),
    }
}

/// Walks every event of a frame so that iterating it cannot fail halfway and
/// the events fill the frame exactly.
fn validate_events(frame: &EventsFrame<'_>) -> Result<(), DecodeError> {
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

#[inline]
fn decode_events(bytes: &[u8]) -> Result<EventsFrame<'_>, DecodeError> {
    // One bounds check for the whole header; fields are then read at
    // constant offsets of a fixed-size array.
    let h: &[u8; HEADER_BYTES] = bytes
        .first_chunk()
        .ok_or(DecodeError::Malformed("frame shorter than its header"))?;
    let [
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        _,
        flags,
        n0,
        n1,
        c0,
        c1,
        c2,
        c3,
        s0,
        s1,
        s2,
        s3,
        l0,
        l1,
        l2,
        l3,
        ..,
    ] = *h;
    let name_len = usize::from(u16::from_le_bytes([n0, n1]));
    let event_count = u32::from_le_bytes([c0, c1, c2, c3]);
    let stream_id = u32::from_le_bytes([s0, s1, s2, s3]);
    let durable_lag = u32::from_le_bytes([l0, l1, l2, l3]);
    let first_version = u64_at(h, 24).unwrap_or_default();
    let prev_frame = u64_at(h, 32).unwrap_or_default();
    let timestamp_us = u64_at(h, 40).unwrap_or_default();
    if event_count == 0 || event_count as usize > limits::MAX_EVENTS_PER_APPEND {
        return Err(DecodeError::Malformed("event count out of range"));
    }
    let defines_stream = flags & FLAG_DEFINES_STREAM != 0;
    if defines_stream != (name_len > 0) || name_len > limits::MAX_STREAM_NAME_BYTES {
        return Err(DecodeError::Malformed("bad stream definition"));
    }
    if first_version
        .checked_add(u64::from(event_count))
        .is_none_or(|end| end > limits::MAX_VERSION)
    {
        return Err(DecodeError::Malformed("version out of range"));
    }
    let name_end = HEADER_BYTES.saturating_add(name_len);
    let defines = if defines_stream {
        let raw = bytes
            .get(HEADER_BYTES..name_end)
            .ok_or(DecodeError::Malformed("stream name past the frame"))?;
        Some(
            std::str::from_utf8(raw)
                .map_err(|_| DecodeError::Malformed("stream name not UTF-8"))?,
        )
    } else {
        None
    };
    Ok(EventsFrame {
        bytes,
        stream_id,
        defines,
        first_version,
        prev_frame,
        timestamp_us,
        event_count,
        events_start: name_end,
        durable_lag,
    })
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
    /// Events of a frame already verified by [`decode`]: `bytes` are the
    /// frame's bytes, `events_start` and `count` from its header.
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

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn sample() -> Vec<EventData> {
        vec![
            EventData::new("OrderPlaced", &b"payload-1"[..]).with_metadata(&b"m"[..]),
            EventData::new("OrderPaid", Vec::new())
                .with_id(0xfeed_beef)
                .with_schema_version(3),
        ]
    }

    fn encode(position: u64, meta: &BatchMeta<'_>, events: &[EventData]) -> Vec<u8> {
        let len = padded(batch_len(meta.defines, events)) as usize;
        let mut out = vec![0xAA; len];
        encode_batch(&mut out, position, &Checksum::new(7), meta, events);
        out
    }

    const META: BatchMeta<'static> = BatchMeta {
        stream_id: 3,
        defines: Some("order-42"),
        first_version: 5,
        prev_frame: NO_PREV_FRAME,
        timestamp_us: 1_700_000_000_000_000,
        durable_end: 1024,
    };

    #[test]
    fn round_trip() {
        let events = sample();
        let buf = encode(4096, &META, &events);
        assert_eq!(buf.len() % 8, 0);
        let (frame, len) = decode(&buf, 4096, &Checksum::new(7)).unwrap();
        assert_eq!(len as usize, buf.len());
        let Frame::Events(f) = frame else {
            panic!("not events")
        };
        assert_eq!(f.stream_id, 3);
        assert_eq!(f.defines, Some("order-42"));
        assert_eq!(f.first_version, 5);
        assert_eq!(f.durable_end(4096), Some(1024));
        let got: Vec<_> = f.events().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].event_type, b"OrderPlaced");
        assert_eq!(got[0].payload, b"payload-1");
        assert_eq!(got[0].metadata, b"m");
        assert_eq!(got[0].id, None);
        assert_eq!(got[1].id, Some(0xfeed_beef));
        assert_eq!(got[1].schema_version, 3);
        assert_eq!(&buf[got[0].payload_start..][..9], b"payload-1");
    }

    #[test]
    fn zeros_never_decode() {
        let zeros = [0u8; 64];
        assert_eq!(
            decode(&zeros, 4096, &Checksum::new(7)),
            Err(DecodeError::Zero)
        );
        assert_eq!(
            decode(&zeros[..3], 4096, &Checksum::new(7)),
            Err(DecodeError::Zero)
        );
    }

    #[test]
    fn wrong_position_or_log_fails_checksum() {
        let buf = encode(4096, &META, &sample());
        assert!(matches!(
            decode(&buf, 4104, &Checksum::new(7)),
            Err(DecodeError::Checksum { .. })
        ));
        assert!(matches!(
            decode(&buf, 4096, &Checksum::new(8)),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let buf = encode(4096, &META, &sample());
        let len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
        for cut in 0..len {
            assert!(
                decode(&buf[..cut], 4096, &Checksum::new(7)).is_err(),
                "cut {cut}"
            );
        }
        for byte in 0..len {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode(&bad, 4096, &Checksum::new(7)).is_err(),
                    "{byte}:{bit}"
                );
            }
        }
    }

    #[test]
    fn end_marker_round_trips() {
        let mut out = [0xFFu8; END_BYTES];
        encode_end(&mut out, 8192, &Checksum::new(1));
        assert_eq!(
            decode(&out, 8192, &Checksum::new(1)),
            Ok((Frame::End, END_BYTES as u64))
        );
    }

    #[test]
    fn huge_length_fails_without_reading() {
        let mut buf = encode(4096, &META, &sample());
        buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&buf, 4096, &Checksum::new(7)),
            Err(DecodeError::Truncated { .. })
        ));
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)] // Test inputs are generated in range.
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn event() -> impl Strategy<Value = EventData> {
        (
            "[A-Za-z][A-Za-z0-9.]{0,30}",
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(any::<u8>(), 0..40),
            any::<u16>(),
            proptest::option::of(any::<u128>()),
        )
            .prop_map(|(event_type, payload, metadata, schema, id)| {
                let e = EventData::new(event_type, payload)
                    .with_metadata(metadata)
                    .with_schema_version(schema);
                match id {
                    Some(id) => e.with_id(id),
                    None => e,
                }
            })
    }

    fn batch() -> impl Strategy<Value = (u64, Option<String>, u32, u64, u64, Vec<EventData>)> {
        (
            (512u64..1 << 40).prop_map(|p| p * ALIGN),
            proptest::option::of("[a-z0-9-]{1,60}"),
            any::<u32>(),
            0u64..1 << 48,
            any::<u64>(),
            proptest::collection::vec(event(), 1..6),
        )
    }

    fn encoded(position: u64, meta: &BatchMeta<'_>, events: &[EventData]) -> Vec<u8> {
        let len = padded(batch_len(meta.defines, events)) as usize;
        let mut out = vec![0; len];
        encode_batch(&mut out, position, &Checksum::new(42), meta, events);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("SEGLOG_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
        ))]

        /// Every valid batch decodes, with both decoders, to exactly what was
        /// encoded.
        #[test]
        fn every_valid_frame_round_trips(
            (position, defines, stream_id, first_version, timestamp_us, events) in batch()
        ) {
            let meta = BatchMeta {
                stream_id,
                defines: defines.as_deref(),
                first_version,
                prev_frame: position - ALIGN,
                timestamp_us,
                durable_end: position - 4096,
            };
            let buf = encoded(position, &meta, &events);
            for decoded in [
                decode(&buf, position, &Checksum::new(42)),
                decode_lazy(&buf, position, &Checksum::new(42)),
            ] {
                let (frame, len) = decoded.expect("a valid frame decodes");
                prop_assert_eq!(len as usize, buf.len());
                let Frame::Events(f) = frame else { panic!("not an events frame") };
                prop_assert_eq!(f.stream_id, stream_id);
                prop_assert_eq!(f.defines, defines.as_deref());
                prop_assert_eq!(f.first_version, first_version);
                prop_assert_eq!(f.prev_frame, position - ALIGN);
                prop_assert_eq!(f.timestamp_us, timestamp_us);
                prop_assert_eq!(f.durable_end(position), Some(position - 4096));
                let got: Vec<RawEvent<'_>> = f.events().collect::<Result<_, _>>().expect("events");
                prop_assert_eq!(got.len(), events.len());
                for (g, e) in got.iter().zip(&events) {
                    prop_assert_eq!(g.event_type, e.event_type.as_str().as_bytes());
                    prop_assert_eq!(g.payload, &e.payload[..]);
                    prop_assert_eq!(g.metadata, &e.metadata[..]);
                    prop_assert_eq!(g.schema_version, e.schema_version);
                    prop_assert_eq!(g.id, e.id);
                }
            }
        }

        /// Any change to any byte of a frame's length, checksum or content
        /// is detected by both decoders; so is the frame at another position
        /// or under another log's id.
        #[test]
        fn any_byte_change_is_detected(
            (position, defines, stream_id, first_version, timestamp_us, events) in batch(),
            at in any::<prop::sample::Index>(),
            xor in 1u8..,
        ) {
            let meta = BatchMeta {
                stream_id,
                defines: defines.as_deref(),
                first_version,
                prev_frame: NO_PREV_FRAME,
                timestamp_us,
                durable_end: 0,
            };
            let buf = encoded(position, &meta, &events);
            let unpadded = batch_len(meta.defines, &events) as usize;
            let mut bad = buf.clone();
            let i = at.index(unpadded);
            bad[i] ^= xor;
            prop_assert!(decode(&bad, position, &Checksum::new(42)).is_err(), "byte {} changed", i);
            prop_assert!(decode_lazy(&bad, position, &Checksum::new(42)).is_err(), "byte {} changed (lazy)", i);
            prop_assert!(decode(&buf, position + ALIGN, &Checksum::new(42)).is_err());
            prop_assert!(decode(&buf, position, &Checksum::new(43)).is_err());
        }
    }
}
