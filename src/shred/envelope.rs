//! The envelope an encrypted payload or metadata is stored as: pure, no
//! I/O, so the decoder meets any bytes without a file.
//!
//! `key_id u64 LE | nonce 24 | ciphertext | tag 16` (docs/FORMAT.md,
//! "Envelope"). XChaCha20-Poly1305: its 24-byte nonces are drawn at
//! random for each envelope, and at that size two draws under one key
//! meet with negligible probability however many events a subject has,
//! so no counter has to survive a crash.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

/// Bytes of the key id in front of an envelope.
pub(crate) const KEY_ID_BYTES: usize = 8;
/// Bytes of an XChaCha20 nonce.
pub(crate) const NONCE_BYTES: usize = 24;
/// Bytes of the Poly1305 tag.
pub(crate) const TAG_BYTES: usize = 16;
/// What an envelope adds to its plaintext.
pub(crate) const OVERHEAD_BYTES: usize = KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES;

/// Which part of an event an envelope holds: bound into its associated
/// data, so a metadata envelope never opens as a payload or the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Payload = 0,
    Metadata = 1,
}

/// The associated data: the log id, the key id and the part. The
/// position is not in it: the writer assigns positions under its lock,
/// after the events were sealed outside it.
fn associated(log_id: u128, key_id: u64, part: Part) -> [u8; 25] {
    let mut ad = [0u8; 25];
    let (log, rest) = ad.split_at_mut(16);
    log.copy_from_slice(&log_id.to_le_bytes());
    let (key, kind) = rest.split_at_mut(8);
    key.copy_from_slice(&key_id.to_le_bytes());
    if let Some(k) = kind.first_mut() {
        *k = part as u8;
    }
    ad
}

/// Seals `plaintext` under `key` (the key store's key `key_id`) with a
/// fresh `nonce`. `None` only if the AEAD refuses the length (over 256 GiB).
pub(crate) fn seal(
    key: &[u8; 32],
    key_id: u64,
    nonce: &[u8; NONCE_BYTES],
    log_id: u128,
    part: Part,
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(plaintext.len().checked_add(OVERHEAD_BYTES)?);
    out.extend_from_slice(&key_id.to_le_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(plaintext);
    let cipher = XChaCha20Poly1305::new(key.into());
    let body = out.get_mut(KEY_ID_BYTES + NONCE_BYTES..)?;
    let tag = cipher
        .encrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &associated(log_id, key_id, part),
            body,
        )
        .ok()?;
    out.extend_from_slice(&tag);
    Some(out)
}

/// The key id an envelope was sealed under; `None` for bytes too short to
/// be an envelope.
pub(crate) fn key_id(envelope: &[u8]) -> Option<u64> {
    envelope
        .first_chunk::<KEY_ID_BYTES>()
        .map(|b| u64::from_le_bytes(*b))
}

/// Opens `envelope` with `key` into `out` (cleared first). `Err` names
/// what failed: too short, or the tag does not hold (another key, another
/// log, another part, or changed bytes).
pub(crate) fn open_into(
    key: &[u8; 32],
    log_id: u128,
    part: Part,
    envelope: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    out.clear();
    let id = key_id(envelope).ok_or("envelope shorter than its header")?;
    let rest = envelope.get(KEY_ID_BYTES..).unwrap_or_default();
    let (nonce, sealed) = rest
        .split_first_chunk::<NONCE_BYTES>()
        .ok_or("envelope shorter than its header")?;
    let (body, tag) = sealed
        .split_last_chunk::<TAG_BYTES>()
        .ok_or("envelope shorter than its tag")?;
    out.extend_from_slice(body);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &associated(log_id, id, part),
            out,
            Tag::from_slice(tag),
        )
        .map_err(|_| {
            out.clear();
            "envelope does not open with its key (changed bytes, or another log's key)"
        })
}

// Tests index what they built themselves.
#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const NONCE: [u8; NONCE_BYTES] = [9; NONCE_BYTES];

    #[test]
    fn an_envelope_opens_only_with_its_key_log_and_part() {
        let sealed = seal(&KEY, 42, &NONCE, 1, Part::Payload, b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + OVERHEAD_BYTES);
        assert_eq!(key_id(&sealed), Some(42));
        let mut out = Vec::new();
        open_into(&KEY, 1, Part::Payload, &sealed, &mut out).unwrap();
        assert_eq!(out, b"hello");
        assert!(open_into(&[8; 32], 1, Part::Payload, &sealed, &mut out).is_err());
        assert!(open_into(&KEY, 2, Part::Payload, &sealed, &mut out).is_err());
        assert!(open_into(&KEY, 1, Part::Metadata, &sealed, &mut out).is_err());
        let mut other_id = sealed.clone();
        other_id[0] = 43;
        assert!(open_into(&KEY, 1, Part::Payload, &other_id, &mut out).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                open_into(&KEY, 1, Part::Payload, &bad, &mut out).is_err(),
                "byte {i}"
            );
            assert!(out.is_empty());
        }
        for n in 0..OVERHEAD_BYTES {
            assert!(open_into(&KEY, 1, Part::Payload, &sealed[..n], &mut out).is_err());
        }
    }

    #[test]
    fn an_empty_plaintext_seals_to_the_overhead() {
        let sealed = seal(&KEY, 1, &NONCE, 1, Part::Metadata, b"").unwrap();
        assert_eq!(sealed.len(), OVERHEAD_BYTES);
        let mut out = vec![1, 2, 3];
        open_into(&KEY, 1, Part::Metadata, &sealed, &mut out).unwrap();
        assert!(out.is_empty());
    }
}
