//! A snapshot file's bytes (docs/FORMAT.md, "Snapshot files"): encode and
//! decode, pure, no I/O, so hostile bytes are tested without files.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `SEGLOGSN` |
//! | 8 | 4 | format version, 1 |
//! | 12 | 2 | stream name length `n` |
//! | 14 | 2 | the snapshot's schema version |
//! | 16 | 16 | log id |
//! | 32 | 8 | stream version the snapshot reflects |
//! | 40 | 8 | payload length `p` |
//! | 48 | `n` | stream name, UTF-8 |
//! | 48 + `n` | `p` | payload |
//! | 48 + `n` + `p` | 4 | CRC-32 of everything before |

use bytes::Bytes;

use crate::limits::{MAX_SNAPSHOT_BYTES, MAX_STREAM_NAME_BYTES};

use super::Snapshot;

const MAGIC: [u8; 8] = *b"SEGLOGSN";
const FORMAT_VERSION: u32 = 1;
/// Magic, format version, name length, schema version, log id, stream
/// version, payload length.
const FIXED_BYTES: usize = 8 + 4 + 2 + 2 + 16 + 8 + 8;
const CRC_BYTES: usize = 4;
/// The largest snapshot file: a longer one is refused unread.
pub(crate) const MAX_FILE_BYTES: u64 =
    (FIXED_BYTES + MAX_STREAM_NAME_BYTES + MAX_SNAPSHOT_BYTES + CRC_BYTES) as u64;

/// What one snapshot file says, before it is encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contents<'a> {
    pub(crate) log_id: u128,
    pub(crate) stream: &'a str,
    pub(crate) version: u64,
    pub(crate) schema_version: u16,
    pub(crate) payload: &'a [u8],
}

/// The file's bytes. The caller has checked the name's and the payload's
/// lengths against their limits (so both fit their fields).
pub(crate) fn encode(c: &Contents<'_>) -> Vec<u8> {
    debug_assert!(c.stream.len() <= MAX_STREAM_NAME_BYTES);
    debug_assert!(c.payload.len() <= MAX_SNAPSHOT_BYTES);
    let mut out = Vec::with_capacity(FIXED_BYTES + c.stream.len() + c.payload.len() + CRC_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(c.stream.len() as u16).to_le_bytes());
    out.extend_from_slice(&c.schema_version.to_le_bytes());
    out.extend_from_slice(&c.log_id.to_le_bytes());
    out.extend_from_slice(&c.version.to_le_bytes());
    out.extend_from_slice(&(c.payload.len() as u64).to_le_bytes());
    out.extend_from_slice(c.stream.as_bytes());
    out.extend_from_slice(c.payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// `N` bytes at `at` of `body`.
fn field<const N: usize>(body: &[u8], at: usize) -> Result<[u8; N], &'static str> {
    body.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or("too short")
}

/// The snapshot of `stream` in log `log_id` that `raw` holds, its payload
/// sharing `raw`; or why the bytes are unusable. Every length is checked
/// against the bytes there before it is used.
pub(crate) fn decode(raw: &Bytes, log_id: u128, stream: &str) -> Result<Snapshot, &'static str> {
    let body_len = raw.len().checked_sub(CRC_BYTES).ok_or("too short")?;
    let (body, crc) = raw.split_at(body_len);
    if body.len() < FIXED_BYTES {
        return Err("too short");
    }
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch");
    }
    if field::<8>(body, 0)? != MAGIC {
        return Err("not a snapshot file");
    }
    if u32::from_le_bytes(field(body, 8)?) != FORMAT_VERSION {
        return Err("unknown snapshot format version");
    }
    if u128::from_le_bytes(field(body, 16)?) != log_id {
        return Err("snapshot of another log");
    }
    let name_len = usize::from(u16::from_le_bytes(field(body, 12)?));
    let payload_len = u64::from_le_bytes(field(body, 40)?);
    let payload_len = usize::try_from(payload_len)
        .ok()
        .filter(|&p| p <= MAX_SNAPSHOT_BYTES)
        .ok_or("payload length over the limit")?;
    if body.len() != FIXED_BYTES + name_len + payload_len {
        return Err("lengths do not match the file's size");
    }
    let name_end = FIXED_BYTES + name_len;
    if body.get(FIXED_BYTES..name_end) != Some(stream.as_bytes()) {
        return Err("snapshot of another stream");
    }
    Ok(Snapshot {
        stream: stream.to_string(),
        version: u64::from_le_bytes(field(body, 32)?),
        schema_version: u16::from_le_bytes(field(body, 14)?),
        bytes: raw.slice(name_end..name_end + payload_len),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Bytes {
        Bytes::from(encode(&Contents {
            log_id: 7,
            stream: "order-42",
            version: 1_000_000_007,
            schema_version: 3,
            payload,
        }))
    }

    #[test]
    fn round_trip_shares_the_payload() {
        let raw = sample(b"state of the order");
        let s = decode(&raw, 7, "order-42").unwrap();
        assert_eq!(s.stream(), "order-42");
        assert_eq!(s.version(), 1_000_000_007);
        assert_eq!(s.schema_version(), 3);
        assert_eq!(&s.bytes()[..], b"state of the order");
        assert_eq!(raw.len(), FIXED_BYTES + 8 + 18 + CRC_BYTES);
        let empty = decode(&sample(b""), 7, "order-42").unwrap();
        assert!(empty.bytes().is_empty());
    }

    #[test]
    fn another_log_or_stream_is_refused() {
        let raw = sample(b"x");
        assert_eq!(decode(&raw, 8, "order-42"), Err("snapshot of another log"));
        assert_eq!(
            decode(&raw, 7, "order-4"),
            Err("snapshot of another stream")
        );
        assert_eq!(
            decode(&raw, 7, "order-420"),
            Err("snapshot of another stream")
        );
    }

    /// Every single flipped bit, every truncation and every extension is
    /// refused, and nothing panics.
    #[test]
    fn hostile_bytes_are_refused_never_a_panic() {
        let raw = sample(b"0123456789abcdef");
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x40, 0x80] {
                let mut bad = raw.to_vec();
                bad[i] ^= bit;
                assert!(
                    decode(&Bytes::from(bad), 7, "order-42").is_err(),
                    "byte {i}"
                );
            }
        }
        for len in 0..raw.len() {
            assert!(
                decode(&raw.slice(..len), 7, "order-42").is_err(),
                "len {len}"
            );
        }
        let mut longer = raw.to_vec();
        longer.push(0);
        assert!(decode(&Bytes::from(longer), 7, "order-42").is_err());
    }

    /// Lengths that lie, under a checksum that matches them: refused by
    /// the length checks, not by luck.
    #[test]
    fn lying_lengths_with_a_valid_checksum_are_refused() {
        let raw = sample(b"payload");
        let body = &raw[..raw.len() - CRC_BYTES];
        let reseal = |mut body: Vec<u8>| {
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            Bytes::from(body)
        };
        for (at, value) in [
            (12usize, u64::from(u16::MAX)),
            (40, u64::MAX),
            (40, MAX_SNAPSHOT_BYTES as u64 + 1),
            (40, 6),
        ] {
            let mut bad = body.to_vec();
            if at == 12 {
                bad[12..14].copy_from_slice(&(value as u16).to_le_bytes());
            } else {
                bad[40..48].copy_from_slice(&value.to_le_bytes());
            }
            assert!(decode(&reseal(bad), 7, "order-42").is_err(), "{at} {value}");
        }
        let mut other_version = body.to_vec();
        other_version[8] = 2;
        assert_eq!(
            decode(&reseal(other_version), 7, "order-42"),
            Err("unknown snapshot format version")
        );
        let mut zeros = vec![0u8; FIXED_BYTES];
        zeros.extend_from_slice(&crc32fast::hash(&[0u8; FIXED_BYTES]).to_le_bytes());
        assert_eq!(
            decode(&Bytes::from(zeros), 0, ""),
            Err("not a snapshot file")
        );
    }
}
