//! Reading frames: the length, checksum and kind every decode shares, the
//! events frame's header and its rules, and the cheaper checks walkers use
//! to step over frames or verify ahead of a reader.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::events::validate_events;
use super::{
    Checksum, END_BYTES, FLAG_DEFINES_STREAM, HEADER_BYTES, KIND_END, KIND_EVENTS, LAG_UNKNOWN,
    padded, u32_at, u64_at,
};
use crate::limits;

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
/// checked one by one as [`EventIter`](super::EventIter) reaches them. Once the checksum
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

/// Reads an events frame's header and stream name from its bytes, checked
/// against the format's rules; its events are left to [`EventIter`](super::EventIter).
#[inline]
fn decode_events(bytes: &[u8]) -> Result<EventsFrame<'_>, DecodeError> {
    // One bounds check for the whole header; fields are then read at
    // constant offsets of a fixed-size array.
    let h: &[u8; HEADER_BYTES] = bytes
        .first_chunk()
        .ok_or(DecodeError::Malformed("frame shorter than its header"))?;
    let header = EventsHeader::read(h);
    let defines_stream = header.check()?;
    let name_end = HEADER_BYTES.saturating_add(header.name_len);
    let defines = if defines_stream {
        Some(stream_name(bytes, name_end)?)
    } else {
        None
    };
    Ok(EventsFrame {
        bytes,
        stream_id: header.stream_id,
        defines,
        first_version: header.first_version,
        prev_frame: header.prev_frame,
        timestamp_us: header.timestamp_us,
        event_count: header.event_count,
        events_start: name_end,
        durable_lag: header.durable_lag,
    })
}

/// The fields of an events frame's fixed header, as stored.
struct EventsHeader {
    flags: u8,
    name_len: usize,
    event_count: u32,
    stream_id: u32,
    durable_lag: u32,
    first_version: u64,
    prev_frame: u64,
    timestamp_us: u64,
}

impl EventsHeader {
    /// Reads every field at its constant offset in the header.
    #[inline(always)]
    fn read(h: &[u8; HEADER_BYTES]) -> EventsHeader {
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
        EventsHeader {
            flags,
            name_len: usize::from(u16::from_le_bytes([n0, n1])),
            event_count: u32::from_le_bytes([c0, c1, c2, c3]),
            stream_id: u32::from_le_bytes([s0, s1, s2, s3]),
            durable_lag: u32::from_le_bytes([l0, l1, l2, l3]),
            first_version: u64_at(h, 24).unwrap_or_default(),
            prev_frame: u64_at(h, 32).unwrap_or_default(),
            timestamp_us: u64_at(h, 40).unwrap_or_default(),
        }
    }

    /// Checks the header against the format's rules: the event count, the
    /// stream definition and the version range. Returns whether the frame
    /// defines its stream (a name follows the header).
    #[inline(always)]
    fn check(&self) -> Result<bool, DecodeError> {
        if self.event_count == 0 || self.event_count as usize > limits::MAX_EVENTS_PER_APPEND {
            return Err(DecodeError::Malformed("event count out of range"));
        }
        let defines_stream = self.flags & FLAG_DEFINES_STREAM != 0;
        if defines_stream != (self.name_len > 0) || self.name_len > limits::MAX_STREAM_NAME_BYTES {
            return Err(DecodeError::Malformed("bad stream definition"));
        }
        if self
            .first_version
            .checked_add(u64::from(self.event_count))
            .is_none_or(|end| end > limits::MAX_VERSION)
        {
            return Err(DecodeError::Malformed("version out of range"));
        }
        Ok(defines_stream)
    }
}

/// The stream name a defining frame carries after its header, up to `name_end`.
#[inline(always)]
fn stream_name(bytes: &[u8], name_end: usize) -> Result<&str, DecodeError> {
    let raw = bytes
        .get(HEADER_BYTES..name_end)
        .ok_or(DecodeError::Malformed("stream name past the frame"))?;
    std::str::from_utf8(raw).map_err(|_| DecodeError::Malformed("stream name not UTF-8"))
}
