//! The `$audit` system stream: every removal the engine makes itself
//! (retention deleting segments, `forget` destroying a subject's key) is an
//! event there, made durable before the removal starts. The trail is in
//! the chained log, so it is as tamper-evident as the events it speaks of,
//! and it survives the removal it records.
//!
//! Payloads are one JSON object each, written here by hand: numbers and
//! escaped strings only, so the engine needs no serialiser for them.

use bytes::Bytes;

use crate::error::Result;
use crate::event::{EventData, ExpectedVersion};
use crate::log::Log;
use crate::position::Position;

/// The system stream the engine records its own removals in. Only the
/// engine appends to it ([`Error::ReservedStreamName`](crate::Error::ReservedStreamName)
/// otherwise); anyone reads it like any stream.
pub const AUDIT_STREAM: &str = "$audit";

/// The event type of a retention run that removed segments. Payload:
/// `{"log_start":P,"previous_log_start":P,"segments":N,"bytes":B,"events_before":T}`
/// where `P` are positions, `N` segments and `B` bytes were removed, and
/// `T` is the commit time (µs since the epoch) of the newest removed event.
pub const RETENTION_EVENT: &str = "seglog.retention";

/// The event type of a subject's key destroyed (`Log::forget`). Payload:
/// `{"key_id":N,"subject_hash":"H"}`: `N` the key store's id of the key
/// (each envelope starts with it), `H` the subject's keyed hash
/// ([`Log::subject_hash`](crate::Log::subject_hash)), never the subject
/// itself, which may be personal data the forget was asked to erase.
pub const FORGET_EVENT: &str = "seglog.forget";

/// Whether only the engine may append to `stream`.
pub(crate) fn is_reserved(stream: &str) -> bool {
    stream == AUDIT_STREAM
}

/// A flat JSON object, built field by field.
pub(crate) struct JsonObject(String);

impl JsonObject {
    pub(crate) fn new() -> JsonObject {
        JsonObject(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        push_json_str(&mut self.0, key);
        self.0.push(':');
    }

    pub(crate) fn num(mut self, key: &str, value: u64) -> JsonObject {
        self.key(key);
        self.0.push_str(&value.to_string());
        self
    }

    pub(crate) fn str(mut self, key: &str, value: &str) -> JsonObject {
        self.key(key);
        push_json_str(&mut self.0, value);
        self
    }

    pub(crate) fn finish(mut self) -> Bytes {
        self.0.push('}');
        Bytes::from(self.0)
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends one audit event and makes it durable: the removal it announces
/// may start once this returns. Its position names it.
pub(crate) fn record(log: &Log, event_type: &str, payload: Bytes) -> Result<Position> {
    let event = EventData::new(event_type, payload).with_metadata("application/json");
    let result = log.append_system(AUDIT_STREAM, ExpectedVersion::Any, &[event])?;
    log.sync()?;
    Ok(result.first_position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_escape_their_strings() {
        let json = JsonObject::new()
            .num("n", 7)
            .str("s", "a\"b\\c\n\u{e9}")
            .finish();
        let expected = "{\"n\":7,\"s\":\"a\\\"b\\\\c\\u000a\u{e9}\"}";
        assert_eq!(std::str::from_utf8(&json).unwrap(), expected);
    }
}
