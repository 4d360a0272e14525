//! The engine's own streams: their names, the types of the events it
//! appends there, and the payload of a deletion event. Vocabulary every
//! layer may use; the features that write them are `audit.rs`,
//! `delete.rs` and `retention.rs`.

use bytes::Bytes;

/// The system stream the engine records its own removals in (retention,
/// `forget`). Only the engine appends to it (and to [`STREAMS_STREAM`]):
/// an append to either is [`Error::ReservedStreamName`](crate::Error::ReservedStreamName).
/// Anyone reads them like any stream.
pub const AUDIT_STREAM: &str = "$audit";

/// The event type of a retention run that removed segments. Payload, one
/// JSON object: `log_start` and `previous_log_start` (positions as
/// numbers), `segments` and `bytes` removed, `newest_removed_us` (the
/// newest removed commit time, µs since the epoch) and `policy`.
pub const RETENTION_EVENT: &str = "seglog.retention";

/// The event type of a subject's key destroyed ([`Log::forget`](crate::Log::forget)).
/// Payload: `{"key_id":N,"subject_hash":"H"}`: `N` the key store's id of
/// the key (each envelope starts with it), `H` the subject's keyed hash
/// ([`Log::subject_hash`](crate::Log::subject_hash)), never the subject
/// itself, which may be personal data the forget was asked to erase.
pub const FORGET_EVENT: &str = "seglog.forget";

/// The system stream deletions are recorded in.
pub const STREAMS_STREAM: &str = "$streams";

/// The event type of a soft delete ([`Log::truncate_stream`](crate::Log::truncate_stream)).
pub const TRUNCATE_EVENT: &str = "seglog.truncate";

/// The event type of a hard delete ([`Log::delete_stream`](crate::Log::delete_stream)).
pub const TOMBSTONE_EVENT: &str = "seglog.tombstone";

/// Whether only the engine may append to `stream`.
pub(crate) fn is_reserved(stream: &str) -> bool {
    stream == AUDIT_STREAM || stream == STREAMS_STREAM
}

/// A deletion event's payload: the version (8 bytes, little-endian; 0 for
/// a tombstone), then the stream's name in UTF-8.
pub(crate) fn encode_deletion(before: u64, stream: &str) -> Bytes {
    let mut out = Vec::with_capacity(8 + stream.len());
    out.extend_from_slice(&before.to_le_bytes());
    out.extend_from_slice(stream.as_bytes());
    Bytes::from(out)
}

/// The version and stream name of a deletion event's payload.
pub(crate) fn decode_deletion(payload: &[u8]) -> Option<(u64, &str)> {
    let (version, name) = payload.split_at_checked(8)?;
    let before = u64::from_le_bytes(version.try_into().ok()?);
    Some((before, std::str::from_utf8(name).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_payloads_round_trip_and_short_ones_are_refused() {
        let payload = encode_deletion(7, "order-\u{e9}");
        assert_eq!(decode_deletion(&payload), Some((7, "order-\u{e9}")));
        assert_eq!(decode_deletion(b"1234567"), None);
        assert_eq!(decode_deletion(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff]), None);
    }

    #[test]
    fn only_the_system_streams_are_reserved() {
        assert!(is_reserved(AUDIT_STREAM) && is_reserved(STREAMS_STREAM));
        assert!(!is_reserved("$audit2") && !is_reserved("audit"));
    }
}
