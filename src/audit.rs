//! The `$audit` system stream: every removal the engine makes itself
//! (retention deleting segments, `forget` destroying a subject's key) is an
//! event there, made durable before the removal starts. The trail is in
//! the chained log, so it is as tamper-evident as the events it speaks of,
//! and it survives the removal it records.
//!
//! Payloads are one JSON object each, written here by hand: numbers and
//! escaped strings only, so the engine needs no serialiser for them.

use std::sync::Arc;

use bytes::Bytes;

use crate::append::AppendSide;
use crate::append::checked::append_unchecked;
use crate::error::Result;
use crate::event::{EventData, ExpectedVersion};
use crate::position::Position;
use crate::system::AUDIT_STREAM;

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
pub(crate) fn record(
    append: &Arc<AppendSide>,
    event_type: &str,
    payload: Bytes,
) -> Result<Position> {
    let event = EventData::new(event_type, payload).with_metadata("application/json");
    let result = append_unchecked(append, AUDIT_STREAM, ExpectedVersion::Any, &[event])?;
    append.sync()?;
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
