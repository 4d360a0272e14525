//! The export format, one event a line: encoded by `seglog export`,
//! decoded by `seglog import`. Both sides live in this one file so they
//! cannot drift apart; cli/README.md ("Export format") documents it for
//! people and for other programs.
//!
//! A line is a JSON object, fields in this order: `stream`, `version`,
//! `type`, `schema_version`, `id` (32 lowercase hex digits or `null`),
//! `time` and `position` (informational: an import ignores them),
//! `metadata` and `payload`. Bytes that are text (UTF-8 without control
//! characters other than tab, line feed and carriage return) are a JSON
//! string holding exactly them; other bytes go in `metadata_base64` /
//! `payload_base64` (standard base64), so a round trip is byte-exact. An
//! erased event has `"erased": true` and no payload field.

use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use seglog::RecordedEvent;
use seglog::limits::{MAX_EVENT_TYPE_BYTES, MAX_STREAM_NAME_BYTES, MAX_VERSION};
use serde_json::{Map, Value};

use crate::out::units;

/// What a line may take besides its payload and metadata: a stream name
/// and a type (256 bytes each, 1,536 escaped at worst), numbers, the time,
/// the position, field names, with room to spare.
const LINE_SLACK_BYTES: u64 = 64 << 10;

/// The longest line an import reads when an event must fit a segment of
/// `segment_bytes`: payload and metadata together are at most a segment,
/// and the export writes neither at over twice its size (text escapes at
/// most one byte to two; base64 writes three bytes as four). A longer
/// line is refused with its number, never read whole into memory.
pub(crate) fn max_line_bytes(segment_bytes: u64) -> usize {
    let bytes = segment_bytes
        .saturating_mul(2)
        .saturating_add(LINE_SLACK_BYTES);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// One event as a line holds it, checked: what an import appends.
#[derive(Debug)]
pub(crate) struct Line {
    /// The stream (1 to 256 bytes).
    pub(crate) stream: String,
    /// Its version in the stream.
    pub(crate) version: u64,
    /// The event type (1 to 256 bytes).
    pub(crate) event_type: String,
    /// The schema version it was stored with.
    pub(crate) schema_version: u16,
    /// The event id, if it had one.
    pub(crate) id: Option<u128>,
    /// The metadata, exactly (empty when none).
    pub(crate) metadata: Vec<u8>,
    /// The payload, exactly; `None` for an erased event.
    pub(crate) payload: Option<Vec<u8>>,
}

/// What [`encode`] keeps between lines: the last commit time formatted
/// (the events of one append share it, so it is formatted once a frame).
#[derive(Default)]
pub(crate) struct Scratch {
    time_us: Option<u64>,
    time: String,
}

/// Appends `event` to `line` as one line, its newline included.
pub(crate) fn encode(
    line: &mut Vec<u8>,
    event: &RecordedEvent,
    scratch: &mut Scratch,
) -> io::Result<()> {
    line.extend_from_slice(b"{\"stream\":");
    string(line, event.stream())?;
    line.extend_from_slice(b",\"version\":");
    decimal(line, event.version());
    line.extend_from_slice(b",\"type\":");
    string(line, event.event_type())?;
    // The stored one: an export reads without upcasters, and an import
    // must store what was stored.
    line.extend_from_slice(b",\"schema_version\":");
    decimal(line, u64::from(event.stored_schema_version()));
    line.extend_from_slice(b",\"id\":");
    match event.id() {
        Some(id) => write!(line, "\"{id:032x}\"")?,
        None => line.extend_from_slice(b"null"),
    }
    let t = event.timestamp_micros();
    if scratch.time_us != Some(t) {
        scratch.time_us = Some(t);
        scratch.time = units::time(t);
    }
    line.extend_from_slice(b",\"time\":\"");
    line.extend_from_slice(scratch.time.as_bytes());
    line.extend_from_slice(b"\",\"position\":\"");
    decimal(line, event.position().frame_offset());
    line.push(b':');
    decimal(line, u64::from(event.position().index_in_frame()));
    line.push(b'"');
    bytes_field(line, "metadata", event.metadata());
    if event.is_erased() {
        line.extend_from_slice(b",\"erased\":true");
    } else {
        bytes_field(line, "payload", event.payload());
    }
    line.extend_from_slice(b"}\n");
    Ok(())
}

/// `n` in decimal, without the formatting machinery (a line holds four
/// numbers, and `write!` cost more than the rest of the line's fields).
fn decimal(line: &mut Vec<u8>, n: u64) {
    line.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `text` as a JSON string.
fn string(line: &mut Vec<u8>, text: &str) -> io::Result<()> {
    serde_json::to_writer(line, text).map_err(io::Error::from)
}

/// `,"NAME":"text"` for text, else `,"NAME_base64":"..."`, the base64
/// encoded straight into the line.
fn bytes_field(line: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    line.extend_from_slice(b",\"");
    line.extend_from_slice(name.as_bytes());
    match as_text(bytes) {
        Some(text) => {
            line.extend_from_slice(b"\":");
            // Writing into a Vec cannot fail, nor can a `&str` serialise
            // wrongly: the result needs no handling.
            let _ = string(line, text);
        }
        None => {
            line.extend_from_slice(b"_base64\":\"");
            let at = line.len();
            line.resize(at + bytes.len().div_ceil(3) * 4, 0);
            let written = line
                .get_mut(at..)
                .and_then(|room| STANDARD.encode_slice(bytes, room).ok())
                .unwrap_or(0);
            line.truncate(at + written);
            line.push(b'"');
        }
    }
}

/// `bytes` as text a person reads, if they are: UTF-8 with no control
/// character but tab, line feed and carriage return. Anything else (a
/// binary encoding that happens to be ASCII, say) is clearer, and never
/// over 4/3 of its size, in base64; JSON would escape each control
/// character to six bytes.
fn as_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let plain = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'));
    plain.then_some(text)
}

/// The event a line holds, or what is wrong with it (said for a person;
/// the caller adds the line number).
pub(crate) fn decode(text: &[u8]) -> Result<Line, String> {
    let value: Value =
        serde_json::from_slice(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err("not a JSON object".to_string());
    };
    let stream = name(&mut fields, "stream", MAX_STREAM_NAME_BYTES)?;
    let version = number(&mut fields, "version", MAX_VERSION)?
        .ok_or("no \"version\": the event's version in its stream")?;
    let event_type = name(&mut fields, "type", MAX_EVENT_TYPE_BYTES)?;
    let schema_version = number(&mut fields, "schema_version", u16::MAX.into())?
        .map_or(Ok(1), u16::try_from)
        .map_err(|_| "\"schema_version\" is over 65535")?;
    let id = id(fields.remove("id"))?;
    let metadata = bytes(&mut fields, "metadata")?.unwrap_or_default();
    let erased = match fields.remove("erased") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => return Err(format!("\"erased\" is {other}, not true or false")),
    };
    let payload = bytes(&mut fields, "payload")?;
    let payload = match (payload, erased) {
        (Some(_), true) => return Err("an erased event with a payload".to_string()),
        (None, false) => return Err("no \"payload\" nor \"payload_base64\"".to_string()),
        (payload, _) => payload,
    };
    // Informational: an import gives events its own times and positions.
    fields.remove("time");
    fields.remove("position");
    if let Some(unknown) = fields.keys().next() {
        return Err(format!("unknown field {unknown:?}"));
    }
    Ok(Line {
        stream,
        version,
        event_type,
        schema_version,
        id,
        metadata,
        payload,
    })
}

/// A required string field of 1 to `max` bytes.
fn name(fields: &mut Map<String, Value>, field: &str, max: usize) -> Result<String, String> {
    match fields.remove(field) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(s),
        Some(Value::String(s)) => Err(format!(
            "\"{field}\" is {} bytes long, not 1 to {max}",
            s.len()
        )),
        Some(other) => Err(format!("\"{field}\" is {other}, not a string")),
        None => Err(format!("no \"{field}\"")),
    }
}

/// An optional whole-number field from 0 to `max`.
fn number(fields: &mut Map<String, Value>, field: &str, max: u64) -> Result<Option<u64>, String> {
    match fields.remove(field) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= max => Ok(Some(v)),
            _ => Err(format!(
                "\"{field}\" is {n}, not a whole number from 0 to {max}"
            )),
        },
        Some(other) => Err(format!("\"{field}\" is {other}, not a number")),
    }
}

/// The `id` field: 32 hex digits, `null`, or absent.
fn id(value: Option<Value>) -> Result<Option<u128>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u128::from_str_radix(&s, 16)
                .map(Some)
                .map_err(|e| format!("\"id\" {s:?}: {e}"))
        }
        Some(other) => Err(format!("\"id\" is {other}, not 32 hex digits or null")),
    }
}

/// The bytes of `NAME` (a string) or `NAME_base64`; `None` when neither
/// is there, an error when both are.
fn bytes(fields: &mut Map<String, Value>, field: &str) -> Result<Option<Vec<u8>>, String> {
    let base64_field = format!("{field}_base64");
    match (fields.remove(field), fields.remove(&base64_field)) {
        (None, None) => Ok(None),
        (Some(Value::String(s)), None) => Ok(Some(s.into_bytes())),
        (None, Some(Value::String(s))) => STANDARD
            .decode(s.as_bytes())
            .map(Some)
            .map_err(|e| format!("\"{base64_field}\" is not standard base64: {e}")),
        (Some(_), Some(_)) => Err(format!("both \"{field}\" and \"{base64_field}\"")),
        (Some(other), None) => Err(format!("\"{field}\" is {}, not a string", kind(&other))),
        (None, Some(other)) => Err(format!(
            "\"{base64_field}\" is {}, not a string",
            kind(&other)
        )),
    }
}

/// What kind of JSON value `value` is, without printing it (a payload may
/// be large).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(text: &str) -> Result<Line, String> {
        decode(text.as_bytes())
    }

    #[test]
    fn text_is_a_string_and_anything_else_base64() {
        assert_eq!(as_text(b"{\"a\":1}\n\ttab"), Some("{\"a\":1}\n\ttab"));
        assert_eq!(as_text("注文 €".as_bytes()), Some("注文 €"));
        assert_eq!(as_text(b"\x08\x96\x01"), None, "ASCII, not text");
        assert_eq!(as_text(b"\xff\xfe"), None, "not UTF-8");
        let mut out = Vec::new();
        bytes_field(&mut out, "payload", b"\0\xff");
        assert_eq!(out, b",\"payload_base64\":\"AP8=\"");
    }

    #[test]
    fn a_line_decodes_with_its_defaults() {
        let line = decoded(r#"{"stream":"s","version":3,"type":"T","payload_base64":"AP8="}"#)
            .expect("ok");
        assert_eq!((line.stream.as_str(), line.version), ("s", 3));
        assert_eq!((line.schema_version, line.id), (1, None));
        assert_eq!(line.payload.as_deref(), Some(&b"\0\xff"[..]));
        assert!(line.metadata.is_empty());
        let line = decoded(
            r#"{"stream":"s","version":0,"type":"T","id":"000000000000000000000000000000ff","erased":true,"time":"x","position":"0:0"}"#,
        )
        .expect("ok");
        assert_eq!((line.id, line.payload), (Some(255), None));
    }

    #[test]
    fn what_is_wrong_with_a_line_is_said() {
        let cases = [
            ("[1]", "not a JSON object"),
            ("{\"stream\":", "not a JSON object"),
            (r#"{"version":0,"type":"T","payload":""}"#, "no \"stream\""),
            (
                r#"{"stream":"","version":0,"type":"T","payload":""}"#,
                "0 bytes long",
            ),
            (
                r#"{"stream":"s","version":-1,"type":"T","payload":""}"#,
                "\"version\" is -1",
            ),
            (
                r#"{"stream":"s","type":"T","payload":""}"#,
                "no \"version\"",
            ),
            (r#"{"stream":"s","version":0,"type":"T"}"#, "no \"payload\""),
            (
                r#"{"stream":"s","version":0,"type":"T","payload":"","payload_base64":""}"#,
                "both",
            ),
            (
                r#"{"stream":"s","version":0,"type":"T","payload_base64":"!"}"#,
                "not standard base64",
            ),
            (
                r#"{"stream":"s","version":0,"type":"T","payload":"","id":"12"}"#,
                "32 hex digits",
            ),
            (
                r#"{"stream":"s","version":0,"type":"T","payload":"","paylod":""}"#,
                "unknown field \"paylod\"",
            ),
            (
                r#"{"stream":"s","version":0,"type":"T","payload":"","erased":true}"#,
                "erased event with a payload",
            ),
            (
                r#"{"stream":"s","version":0,"type":"T","payload":"","schema_version":70000}"#,
                "from 0 to 65535",
            ),
        ];
        for (text, wanted) in cases {
            let error = decoded(text).expect_err(text);
            assert!(error.contains(wanted), "{text}: {error}");
        }
    }
}
