//! Deletions carried by an export: the `$streams` events that truncated
//! or deleted a stream. An export keeps them so that an import applies
//! them again, in their place among the events: without them, a deleted
//! stream would come back to life in the target, and a truncated one
//! would show the versions it hid. Applied once: a deletion the target
//! holds already is passed over, so a re-run changes nothing.

use std::path::Path;

use seglog::{Error, Log, STREAMS_STREAM, TOMBSTONE_EVENT, TRUNCATE_EVENT};

use super::line::Line;
use crate::failure::Failure;

/// What became of one `$streams` line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Applied {
    /// The deletion is applied now.
    Done,
    /// The target holds it already.
    Already,
    /// Not applied: the target holds no such stream (an export from a
    /// later position than the stream's events), or it is not a deletion.
    Skipped,
}

/// Applies the deletion that line `number` holds (`line.stream` is
/// [`STREAMS_STREAM`]) to the log in `dir`.
pub(super) fn apply(log: &Log, dir: &Path, number: u64, line: &Line) -> Result<Applied, Failure> {
    debug_assert_eq!(line.stream, STREAMS_STREAM);
    let kind = line.event_type.as_str();
    if kind != TOMBSTONE_EVENT && kind != TRUNCATE_EVENT {
        return Ok(Applied::Skipped);
    }
    let (before, stream) = line.payload.as_deref().and_then(decode).ok_or_else(|| {
        Failure::damage(format!(
            "line {number}: a {kind} event whose payload names no stream"
        ))
    })?;
    let result = if kind == TOMBSTONE_EVENT {
        log.delete_stream(stream).map(|_| Applied::Done)
    } else {
        truncate(log, stream, before)
    };
    match result {
        Ok(applied) => Ok(applied),
        Err(Error::StreamDeleted { .. }) => Ok(Applied::Already),
        Err(Error::UnknownStream { .. }) => Ok(Applied::Skipped),
        Err(e) => {
            let failure = Failure::from_log(dir, e);
            Err(Failure {
                message: format!("line {number}: {kind} of {stream:?}: {}", failure.message),
                ..failure
            })
        }
    }
}

/// Truncates `stream` before version `before`, unless its reads start
/// there or later already (a truncation writes an event each time).
fn truncate(log: &Log, stream: &str, before: u64) -> seglog::Result<Applied> {
    if log.stream_version(stream).is_none() {
        return Ok(Applied::Skipped);
    }
    // A read from version 0 starts at the cut; none at all when every
    // version is hidden, which is as far as a cut goes.
    let first = log.read_stream(stream, 0)?.next().transpose()?;
    if first.is_none_or(|e| e.version() >= before) {
        return Ok(Applied::Already);
    }
    log.truncate_stream(stream, before).map(|_| Applied::Done)
}

/// The version and stream name of a deletion event's payload: the version
/// in 8 bytes little-endian (0 for a tombstone), then the name in UTF-8.
fn decode(payload: &[u8]) -> Option<(u64, &str)> {
    let (version, name) = payload.split_at_checked(8)?;
    let before = u64::from_le_bytes(version.try_into().ok()?);
    let name = std::str::from_utf8(name).ok()?;
    (!name.is_empty()).then_some((before, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deletion_payload_reads_as_the_engine_writes_it() {
        let mut payload = 7u64.to_le_bytes().to_vec();
        payload.extend_from_slice("order-1".as_bytes());
        assert_eq!(decode(&payload), Some((7, "order-1")));
        assert_eq!(decode(&payload[..8]), None, "no name");
        assert_eq!(decode(&payload[..5]), None, "short");
        assert_eq!(decode(b"\0\0\0\0\0\0\0\0\xff"), None, "not UTF-8");
    }
}
