//! An event as a JetStream message's headers, and back.
//!
//! Header values may not hold `\r` or `\n` (the client replaces them), so
//! the stream name and the event type travel as subject tokens
//! ([`crate::subject`]), the metadata and the id as hex; numbers in
//! decimal. The payload is the message's payload, as is.

use std::fmt::Write;

use async_nats::HeaderMap;
use seglog::{Position, RecordedEvent};

use crate::subject;

/// The source log's id, 32 hex digits.
pub const LOG_ID: &str = "Seglog-Log-Id";
/// The event's position ([`Position::as_u64`]).
pub const POSITION: &str = "Seglog-Position";
/// Where a reader resumes after it ([`RecordedEvent::next_position`]).
pub const NEXT_POSITION: &str = "Seglog-Next-Position";
/// The position of the event published before it to the same stream
/// ([`Position::as_u64`]), absent on the first: a mirror checks that no
/// message is missing between the two. (The previous event's
/// `Seglog-Next-Position` cannot serve: when a segment ends after it, the
/// next event is in the next segment, past the end marker and the
/// header.)
pub const PREVIOUS_POSITION: &str = "Seglog-Previous-Position";
/// The stream name, as a subject token.
pub const STREAM: &str = "Seglog-Stream";
/// The event's version in its stream.
pub const VERSION: &str = "Seglog-Version";
/// The event type, as a subject token.
pub const EVENT_TYPE: &str = "Seglog-Type";
/// The schema version handed out.
pub const SCHEMA_VERSION: &str = "Seglog-Schema-Version";
/// The event id, 32 hex digits, when it has one.
pub const EVENT_ID: &str = "Seglog-Event-Id";
/// The commit time, microseconds since the Unix epoch.
pub const TIME: &str = "Seglog-Time";
/// The metadata, hex.
pub const METADATA: &str = "Seglog-Metadata";
/// `index/count` among its stored event's outputs (upcasting splits).
pub const OUTPUT: &str = "Seglog-Output";

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The message id of an event: log, position and output, so a republish
/// of the same output is dropped by the server and the outputs of a split
/// are not.
pub fn message_id(log_id: u128, e: &RecordedEvent) -> String {
    message_id_at(log_id, e.position(), e.output().0)
}

/// The message id of output `index` of the event at `position`.
pub fn message_id_at(log_id: u128, position: Position, index: u16) -> String {
    format!("{log_id:032x}:{}:{index}", position.as_u64())
}

/// The headers that describe `e` of log `log_id`, published after the
/// event at `previous` (`None` for the first message of a stream).
pub fn encode_after(log_id: u128, e: &RecordedEvent, previous: Option<Position>) -> HeaderMap {
    let mut h = encode(log_id, e);
    if let Some(previous) = previous {
        h.insert(PREVIOUS_POSITION, previous.as_u64().to_string().as_str());
    }
    h
}

/// The headers that describe `e` of log `log_id`, without
/// [`PREVIOUS_POSITION`].
pub fn encode(log_id: u128, e: &RecordedEvent) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(LOG_ID, format!("{log_id:032x}").as_str());
    h.insert(POSITION, e.position().as_u64().to_string().as_str());
    h.insert(
        NEXT_POSITION,
        e.next_position().as_u64().to_string().as_str(),
    );
    h.insert(STREAM, subject::encode(e.stream()).as_str());
    h.insert(VERSION, e.version().to_string().as_str());
    h.insert(EVENT_TYPE, subject::encode(e.event_type()).as_str());
    h.insert(SCHEMA_VERSION, e.schema_version().to_string().as_str());
    if let Some(id) = e.id() {
        h.insert(EVENT_ID, format!("{id:032x}").as_str());
    }
    h.insert(TIME, e.timestamp_micros().to_string().as_str());
    h.insert(METADATA, hex(e.metadata()).as_str());
    let (index, count) = e.output();
    h.insert(OUTPUT, format!("{index}/{count}").as_str());
    h
}

/// An event read back from a message's headers (its payload is the
/// message's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The source log's id.
    pub log_id: u128,
    /// Its position in the source log.
    pub position: Position,
    /// Where the source log goes on after it.
    pub next_position: Position,
    /// The position of the event published before it, if any.
    pub previous: Option<Position>,
    /// The stream name.
    pub stream: String,
    /// The version in its stream.
    pub version: u64,
    /// The event type.
    pub event_type: String,
    /// The schema version.
    pub schema_version: u16,
    /// The event id, if any.
    pub id: Option<u128>,
    /// The commit time in the source log, µs since the epoch.
    pub time_us: u64,
    /// The metadata.
    pub metadata: Vec<u8>,
    /// `(index, count)` among its stored event's outputs.
    pub output: (u16, u16),
}

/// Why a message's headers do not describe an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHeaders(pub String);

/// The event `h` describes.
pub fn decode(h: &HeaderMap) -> Result<Received, BadHeaders> {
    let get = |name: &str| {
        h.get(name)
            .map(|v| v.as_str().to_string())
            .ok_or_else(|| BadHeaders(format!("no {name} header")))
    };
    let bad = |name: &str| BadHeaders(format!("{name} header malformed"));
    let num = |name: &str| get(name)?.parse::<u64>().map_err(|_| bad(name));
    let hex128 = |name: &str| u128::from_str_radix(&get(name)?, 16).map_err(|_| bad(name));
    let token = |name: &str| subject::decode(&get(name)?).map_err(|_| bad(name));
    let output = get(OUTPUT)?;
    let (index, count) = output.split_once('/').ok_or_else(|| bad(OUTPUT))?;
    Ok(Received {
        log_id: hex128(LOG_ID)?,
        position: Position::from_u64(num(POSITION)?),
        next_position: Position::from_u64(num(NEXT_POSITION)?),
        previous: match h.get(PREVIOUS_POSITION) {
            Some(_) => Some(Position::from_u64(num(PREVIOUS_POSITION)?)),
            None => None,
        },
        stream: token(STREAM)?,
        version: num(VERSION)?,
        event_type: token(EVENT_TYPE)?,
        schema_version: u16::try_from(num(SCHEMA_VERSION)?).map_err(|_| bad(SCHEMA_VERSION))?,
        id: match h.get(EVENT_ID) {
            Some(_) => Some(hex128(EVENT_ID)?),
            None => None,
        },
        time_us: num(TIME)?,
        metadata: unhex(&get(METADATA)?).ok_or_else(|| bad(METADATA))?,
        output: (
            index.parse().map_err(|_| bad(OUTPUT))?,
            count.parse().map_err(|_| bad(OUTPUT))?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_odd_or_foreign_digits() {
        for bytes in [&b""[..], b"\x00\xff", b"{\"k\":1}\r\n"] {
            assert_eq!(unhex(&hex(bytes)).as_deref(), Some(bytes));
        }
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn missing_or_malformed_headers_are_named() {
        let mut h = HeaderMap::new();
        assert_eq!(
            decode(&h),
            Err(BadHeaders("no Seglog-Output header".into()))
        );
        h.insert(OUTPUT, "0/1");
        h.insert(LOG_ID, "not hex");
        assert_eq!(
            decode(&h),
            Err(BadHeaders("Seglog-Log-Id header malformed".into()))
        );
    }
}
