//! How one event is shown by `dump`, `get`, `stream` and `tail`: a table
//! row for people, a JSON object for scripts (`--json`), a field list for
//! `get`. One place, so the four commands show an event alike and a script
//! written against one reads them all.
//!
//! Payload and metadata are bytes the log never interprets. They are shown
//! as `--payload` says; by default as JSON (compact, one line) when they
//! parse as JSON, else as UTF-8 text, else in hex. A table cuts long ones
//! with a marker (`get` shows them whole); JSON never cuts.

use clap::ValueEnum;
use seglog::{PayloadState, RecordedEvent};
use serde_json::{Map, Value};

use crate::failure::Failure;
use crate::out::{Out, Paint, Table, units};

/// How payloads (and metadata) are shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum PayloadArg {
    /// JSON (compact, one line) when it parses as JSON, else UTF-8 text,
    /// else hex.
    #[default]
    Auto,
    /// JSON; bytes that are not JSON are shown in hex.
    Json,
    /// UTF-8 text; bytes that are not UTF-8 show as U+FFFD.
    Text,
    /// Hex, always.
    Hex,
    /// Left out (JSON and `get` still give its size).
    None,
}

/// The most characters of a payload a table cell shows; past it the cell
/// ends with `…` and the payload's size (`get` shows it whole).
const TABLE_PAYLOAD_CHARS: usize = 64;

/// Rows a table holds before it is printed: a dump of a whole log is
/// printed in chunks of this many rows, each chunk aligned on its own
/// (keeping the widths of the chunks before it), so memory stays bounded
/// by one chunk however long the log is.
const CHUNK_ROWS: usize = 1_000;

/// Bytes as they are shown, with the encoding that says how to read them.
enum Shown {
    Json(Value),
    Text(String),
    Hex(String),
}

impl Shown {
    /// `bytes` shown as `mode` says (`None` for [`PayloadArg::None`]).
    fn of(bytes: &[u8], mode: PayloadArg) -> Option<Shown> {
        let json = || serde_json::from_slice::<Value>(bytes).ok().map(Shown::Json);
        let text = || {
            std::str::from_utf8(bytes)
                .ok()
                .map(|t| Shown::Text(t.to_string()))
        };
        let hex = || Shown::Hex(to_hex(bytes));
        match mode {
            PayloadArg::Auto => Some(json().or_else(text).unwrap_or_else(hex)),
            PayloadArg::Json => Some(json().unwrap_or_else(hex)),
            PayloadArg::Text => Some(Shown::Text(String::from_utf8_lossy(bytes).into_owned())),
            PayloadArg::Hex => Some(hex()),
            PayloadArg::None => None,
        }
    }

    /// The encoding's name, as the JSON output and `get` give it.
    fn encoding(&self) -> &'static str {
        match self {
            Shown::Json(_) => "json",
            Shown::Text(_) => "text",
            Shown::Hex(_) => "hex",
        }
    }

    /// As one line of text: JSON compact, text with control characters
    /// escaped (a newline would break a table or a field list).
    fn to_line(&self) -> String {
        match self {
            Shown::Json(value) => value.to_string(),
            Shown::Text(text) => one_line(text),
            Shown::Hex(hex) => hex.clone(),
        }
    }

    /// As a JSON value: JSON embedded as itself, text and hex as strings.
    fn into_json(self) -> Value {
        match self {
            Shown::Json(value) => value,
            Shown::Text(text) | Shown::Hex(text) => Value::String(text),
        }
    }
}

/// `bytes` as lowercase hex digits.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `text` on one line: control characters escaped (`\n`, `\t`, `\u{1b}`).
pub(crate) fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `text` cut to [`TABLE_PAYLOAD_CHARS`], with `…` and the full size
/// (`len` bytes) when it was longer.
fn cut(text: String, len: usize) -> String {
    if text.chars().count() <= TABLE_PAYLOAD_CHARS {
        return text;
    }
    let head: String = text.chars().take(TABLE_PAYLOAD_CHARS).collect();
    format!("{head}… ({})", units::bytes(len as u64))
}

/// An event id as 32 hex digits (as `verify` prints a log id).
pub(crate) fn id_text(id: Option<u128>) -> Option<String> {
    id.map(|id| format!("{id:032x}"))
}

fn state_name(state: PayloadState) -> &'static str {
    match state {
        PayloadState::Plain => "plain",
        PayloadState::Decrypted => "decrypted",
        PayloadState::Erased => "erased",
    }
}

/// The table's columns: position, time, stream, version, type, schema,
/// id, then payload unless it is left out.
pub(crate) fn headings(payload: PayloadArg) -> Vec<&'static str> {
    let mut headings = vec![
        "position", "time", "stream", ">version", "type", ">schema", "id",
    ];
    if payload != PayloadArg::None {
        headings.push("payload");
    }
    headings
}

/// `bytes` (`len` of them) as a table cell shows them in `mode`: one
/// line, cut past [`TABLE_PAYLOAD_CHARS`].
pub(crate) fn cell(bytes: &[u8], mode: PayloadArg) -> String {
    Shown::of(bytes, mode)
        .map(|s| cut(s.to_line(), bytes.len()))
        .unwrap_or_default()
}

/// The event as a table row (see [`headings`]).
pub(crate) fn row(e: &RecordedEvent, payload: PayloadArg) -> Vec<String> {
    let mut cells = vec![
        e.position().to_string(),
        units::time(e.timestamp_micros()),
        one_line(e.stream()),
        e.version().to_string(),
        one_line(e.event_type()),
        e.schema_version().to_string(),
        id_text(e.id()).unwrap_or_default(),
    ];
    if payload != PayloadArg::None {
        cells.push(if e.is_erased() {
            "(erased)".to_string()
        } else {
            cell(e.payload(), payload)
        });
    }
    cells
}

/// The event as one JSON object: every field, payload and metadata whole.
/// An erased event's payload (and metadata, if it was encrypted too) is
/// `null`; `--payload none` leaves both out and keeps their sizes.
pub(crate) fn to_json(e: &RecordedEvent, payload: PayloadArg) -> Value {
    let mut o = Map::new();
    o.insert("position".into(), e.position().to_string().into());
    o.insert("next_position".into(), e.next_position().to_string().into());
    o.insert("time".into(), units::time(e.timestamp_micros()).into());
    o.insert("time_us".into(), e.timestamp_micros().into());
    o.insert("stream".into(), e.stream().into());
    o.insert("version".into(), e.version().into());
    o.insert("type".into(), e.event_type().into());
    o.insert("schema_version".into(), e.schema_version().into());
    o.insert("id".into(), id_text(e.id()).into());
    o.insert("payload_state".into(), state_name(e.payload_state()).into());
    bytes_json(&mut o, "payload", e.payload(), e.is_erased(), payload);
    let metadata_erased = e.is_erased() && e.metadata().is_empty();
    bytes_json(&mut o, "metadata", e.metadata(), metadata_erased, payload);
    Value::Object(o)
}

/// `NAME_bytes`, `NAME_encoding` and `NAME` for payload or metadata.
pub(crate) fn bytes_json(
    o: &mut Map<String, Value>,
    name: &str,
    bytes: &[u8],
    erased: bool,
    mode: PayloadArg,
) {
    o.insert(format!("{name}_bytes"), bytes.len().into());
    if mode == PayloadArg::None {
        return;
    }
    let shown = if erased { None } else { Shown::of(bytes, mode) };
    o.insert(
        format!("{name}_encoding"),
        shown.as_ref().map(Shown::encoding).into(),
    );
    o.insert(
        name.to_string(),
        shown.map_or(Value::Null, Shown::into_json),
    );
}

/// The event as `get` shows it to people: one `field: value` line per
/// field, payload and metadata whole (on one line, control characters
/// escaped).
pub(crate) fn print_fields(
    out: &mut Out,
    e: &RecordedEvent,
    payload: PayloadArg,
) -> Result<(), Failure> {
    let fields = [
        ("position", e.position().to_string()),
        ("next", e.next_position().to_string()),
        ("time", units::time(e.timestamp_micros())),
        ("stream", one_line(e.stream())),
        ("version", e.version().to_string()),
        ("type", one_line(e.event_type())),
        ("schema", e.schema_version().to_string()),
        ("id", id_text(e.id()).unwrap_or_else(|| "-".into())),
        ("state", state_name(e.payload_state()).into()),
        ("metadata", bytes_field(e.metadata(), false, payload)),
        ("payload", bytes_field(e.payload(), e.is_erased(), payload)),
    ];
    for (name, value) in fields {
        let label = out.paint(&format!("{name}:"), Paint::Bold);
        // Padded by the label's own width: paint adds invisible bytes.
        let pad = " ".repeat(10usize.saturating_sub(name.len() + 1));
        out.line(&format!("{label}{pad}{value}"))?;
    }
    Ok(())
}

/// Payload or metadata as a `get` field: `(encoding, size) content`.
fn bytes_field(bytes: &[u8], erased: bool, mode: PayloadArg) -> String {
    let size = units::bytes(bytes.len() as u64);
    if erased {
        return "(erased: its key was destroyed)".into();
    }
    match Shown::of(bytes, mode) {
        Some(shown) => format!("({}, {size}) {}", shown.encoding(), shown.to_line()),
        None => format!("({size}, not shown)"),
    }
}

/// Prints a run of events in the form asked for: JSON lines, or a table
/// printed in chunks of [`CHUNK_ROWS`] rows (never the whole read held in
/// memory).
pub(crate) struct Printer {
    payload: PayloadArg,
    /// The chunk being filled; `None` with `--json`.
    table: Option<Table>,
    shown: u64,
}

impl Printer {
    /// A printer for `out`'s form, payloads shown as `payload` says.
    pub(crate) fn new(out: &Out, payload: PayloadArg) -> Printer {
        Printer {
            payload,
            table: (!out.json()).then(|| Table::new(&headings(payload))),
            shown: 0,
        }
    }

    /// Events shown so far.
    pub(crate) fn shown(&self) -> u64 {
        self.shown
    }

    /// Shows `e`: at once with `--json`, else in the current chunk,
    /// printed when it is full.
    pub(crate) fn event(&mut self, out: &mut Out, e: &RecordedEvent) -> Result<(), Failure> {
        self.shown += 1;
        match &mut self.table {
            None => out.object(&to_json(e, self.payload)),
            Some(table) => {
                table.row(row(e, self.payload));
                if table.len() >= CHUNK_ROWS {
                    self.flush(out)?;
                }
                Ok(())
            }
        }
    }

    /// Prints the rows of the current chunk, if any (a follower calls it
    /// after each event; the next chunk keeps this one's columns).
    pub(crate) fn flush(&mut self, out: &mut Out) -> Result<(), Failure> {
        if let Some(table) = &mut self.table
            && table.len() > 0
        {
            out.table(table)?;
            *table = table.next_chunk();
        }
        Ok(())
    }

    /// Prints what is left; says so to people when nothing was shown.
    pub(crate) fn finish(mut self, out: &mut Out) -> Result<(), Failure> {
        self.flush(out)?;
        if self.shown == 0 && !out.json() {
            out.line(&out.paint("no events", Paint::Dim))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_show_as_json_then_text_then_hex() {
        let line = |b: &[u8], m| Shown::of(b, m).map(|s| (s.encoding(), s.to_line()));
        assert_eq!(
            line(br#"{ "a": 1 }"#, PayloadArg::Auto),
            Some(("json", r#"{"a":1}"#.into()))
        );
        assert_eq!(
            line(b"two\nlines", PayloadArg::Auto),
            Some(("text", r"two\nlines".into()))
        );
        assert_eq!(
            line(&[0xff, 0x00], PayloadArg::Auto),
            Some(("hex", "ff00".into()))
        );
        assert_eq!(
            line(b"plain", PayloadArg::Json),
            Some(("hex", "706c61696e".into()))
        );
        assert_eq!(
            line(&[0xff], PayloadArg::Text),
            Some(("text", "\u{fffd}".into()))
        );
        assert_eq!(line(b"{}", PayloadArg::None), None);
    }

    #[test]
    fn long_cells_are_cut_with_a_marker() {
        let long = "x".repeat(100);
        let cell = cut(long, 100);
        assert!(cell.starts_with(&"x".repeat(TABLE_PAYLOAD_CHARS)));
        assert!(cell.ends_with("… (100 B)"));
        assert_eq!(cut("short".into(), 5), "short");
    }
}
