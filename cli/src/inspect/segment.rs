//! `seglog dump --segment FILE`: the events of one segment file read
//! alone, with no other file beside it: forensics on a copy. Every frame
//! is checked in full; the dump stops at the first damage and exits 1
//! naming its offset. Streams defined in an earlier segment show as
//! `#ID`; encrypted payloads as `(sealed)`: without the log and its
//! master key they are envelopes.

use std::path::Path;

use seglog::inspect::{FileEvent, FileFrame, SegmentFile};
use serde_json::{Map, Value};

use super::event::{PayloadArg, bytes_json, cell, id_text, one_line};
use crate::failure::Failure;
use crate::out::{Out, Table, units};

/// Rows printed at a time: the table is aligned per chunk.
const CHUNK_ROWS: usize = 1_000;

/// Dumps the segment file at `path`, up to `limit` events.
pub(crate) fn dump(
    out: &mut Out,
    path: &Path,
    payload: PayloadArg,
    limit: Option<u64>,
) -> Result<(), Failure> {
    let file = SegmentFile::open(path).map_err(|e| Failure::from_log(path, e))?;
    let mut table = (!out.json()).then(|| {
        Table::new(&[
            "offset", "position", "time", "stream", ">version", "type", ">schema", "id", "payload",
        ])
    });
    if !out.json() {
        out.line(&format!(
            "segment {}: log {:032x}, base {}, {}, {}",
            path.display(),
            file.log_id(),
            file.base(),
            units::bytes(file.size()),
            if file.is_sealed() {
                "sealed"
            } else {
                "not sealed"
            }
        ))?;
    }
    let mut shown = 0u64;
    for frame in file.frames() {
        let frame = frame.map_err(|e| Failure::from_log(path, e))?;
        for (i, event) in frame.events.iter().enumerate() {
            if limit.is_some_and(|n| shown >= n) {
                return finish(out, table);
            }
            shown += 1;
            match &mut table {
                None => out.object(&to_json(&frame, i, event, payload))?,
                Some(t) => {
                    t.row(row(&frame, i, event, payload));
                    if t.len() >= CHUNK_ROWS {
                        out.table(t)?;
                        *t = t.next_chunk();
                    }
                }
            }
        }
    }
    finish(out, table)
}

fn finish(out: &mut Out, table: Option<Table>) -> Result<(), Failure> {
    match table {
        Some(t) if t.len() > 0 => out.table(&t),
        _ => Ok(()),
    }
}

fn stream_name(frame: &FileFrame) -> String {
    frame
        .stream
        .as_deref()
        .map_or_else(|| format!("#{}", frame.stream_id), one_line)
}

fn position(frame: &FileFrame, i: usize) -> String {
    format!("{}:{i}", frame.position.frame_offset())
}

fn row(frame: &FileFrame, i: usize, e: &FileEvent, payload: PayloadArg) -> Vec<String> {
    vec![
        frame.offset.to_string(),
        position(frame, i),
        units::time(frame.timestamp_us),
        stream_name(frame),
        (frame.first_version + i as u64).to_string(),
        one_line(&e.event_type),
        e.schema_version.to_string(),
        id_text(e.id).unwrap_or_default(),
        if e.payload_sealed {
            "(sealed)".to_string()
        } else {
            cell(&e.payload, payload)
        },
    ]
}

fn to_json(frame: &FileFrame, i: usize, e: &FileEvent, payload: PayloadArg) -> Value {
    let mut o = Map::new();
    o.insert("offset".into(), frame.offset.into());
    o.insert("position".into(), position(frame, i).into());
    o.insert("time".into(), units::time(frame.timestamp_us).into());
    o.insert("time_us".into(), frame.timestamp_us.into());
    o.insert("stream".into(), frame.stream.clone().into());
    o.insert("stream_id".into(), frame.stream_id.into());
    o.insert("version".into(), (frame.first_version + i as u64).into());
    o.insert("type".into(), e.event_type.clone().into());
    o.insert("schema_version".into(), e.schema_version.into());
    o.insert("id".into(), id_text(e.id).into());
    o.insert("payload_sealed".into(), e.payload_sealed.into());
    o.insert("metadata_sealed".into(), e.metadata_sealed.into());
    bytes_json(&mut o, "payload", &e.payload, e.payload_sealed, payload);
    bytes_json(&mut o, "metadata", &e.metadata, e.metadata_sealed, payload);
    Value::Object(o)
}
