//! The key store file's bytes (`keys` in the log directory): pure, no
//! I/O. One header, then every subject's key sealed as one AEAD blob
//! under a key derived from the master key, then a CRC-32 of the whole.
//! Layout in docs/FORMAT.md, "Key store".
//!
//! The CRC tells damage from a wrong master key: bytes that fail it are
//! damaged (`Error::Corrupt`); bytes that pass it but do not open were
//! sealed under another master key (`Error::WrongMasterKey`).
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::path::Path;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::envelope::{NONCE_BYTES, TAG_BYTES};
use crate::error::{Error, Result};
use crate::limits::{MAX_SUBJECT_BYTES, MAX_SUBJECTS};

const MAGIC: &[u8; 8] = b"SEGLOGKS";
/// The key store's format version.
const VERSION: u32 = 1;
/// Bytes before the sealed entries: magic, version, reserved, log id,
/// nonce, sealed length.
const HEADER_BYTES: usize = 8 + 4 + 4 + 16 + NONCE_BYTES + 4;
/// Bytes of the CRC at the end.
const CRC_BYTES: usize = 4;
/// Bytes of one entry besides its subject: key id, subject length, key.
const ENTRY_FIXED_BYTES: usize = 8 + 2 + 32;
/// Bytes before the entries in the sealed blob: next key id, count.
const ENTRIES_HEADER_BYTES: usize = 8 + 4;
/// The largest key store: refused unread beyond it.
pub(crate) const MAX_FILE_BYTES: u64 = (HEADER_BYTES
    + ENTRIES_HEADER_BYTES
    + MAX_SUBJECTS * (ENTRY_FIXED_BYTES + MAX_SUBJECT_BYTES)
    + TAG_BYTES
    + CRC_BYTES) as u64;
/// The BLAKE3 context the store's own key is derived under. The master key
/// is already 32 random bytes, so a key derivation (not a password hash)
/// is all it takes to give the store a key of its own.
const STORE_KEY_CONTEXT: &str = "seglog 2026-12 key store v1";

/// One subject's key.
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) subject: Box<str>,
    pub(crate) key: Zeroizing<[u8; 32]>,
}

/// What a key store holds.
pub(crate) struct Contents {
    /// The id the next new key gets: ids are never reused, so an id below
    /// it that has no entry is a forgotten key.
    pub(crate) next_id: u64,
    pub(crate) entries: Vec<Entry>,
}

/// The key the store is sealed under.
pub(crate) fn store_key(master: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(STORE_KEY_CONTEXT, master))
}

/// The file's bytes for `entries` (in increasing key id order) and
/// `next_id`, sealed with `nonce`. `None` past the limits.
pub(crate) fn encode<'a>(
    store_key: &[u8; 32],
    log_id: u128,
    nonce: &[u8; NONCE_BYTES],
    next_id: u64,
    entries: impl ExactSizeIterator<Item = (u64, &'a str, &'a [u8; 32])>,
) -> Option<Vec<u8>> {
    if entries.len() > MAX_SUBJECTS {
        return None;
    }
    let mut plain = Zeroizing::new(Vec::new());
    plain.extend_from_slice(&next_id.to_le_bytes());
    plain.extend_from_slice(&u32::try_from(entries.len()).ok()?.to_le_bytes());
    for (id, subject, key) in entries {
        debug_assert!(id < next_id && check_subject(subject).is_ok());
        plain.extend_from_slice(&id.to_le_bytes());
        plain.extend_from_slice(&u16::try_from(subject.len()).ok()?.to_le_bytes());
        plain.extend_from_slice(subject.as_bytes());
        plain.extend_from_slice(key);
    }
    let sealed_len = u32::try_from(plain.len().checked_add(TAG_BYTES)?).ok()?;
    let mut out =
        Vec::with_capacity((sealed_len as usize).saturating_add(HEADER_BYTES + CRC_BYTES));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&log_id.to_le_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed_len.to_le_bytes());
    let cipher = XChaCha20Poly1305::new(store_key.into());
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(nonce), &out, &mut plain)
        .ok()?;
    out.extend_from_slice(&plain);
    out.extend_from_slice(&tag);
    out.extend_from_slice(&crc32fast::hash(&out).to_le_bytes());
    Some(out)
}

/// Whether `subject` is one a key may be kept for: 1 to
/// [`MAX_SUBJECT_BYTES`] bytes.
pub(crate) fn check_subject(subject: &str) -> Result<()> {
    if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
        return Err(Error::InvalidSubject {
            len: subject.len(),
            max: MAX_SUBJECT_BYTES,
        });
    }
    Ok(())
}

fn corrupt(path: &Path, offset: usize, reason: &str) -> Error {
    Error::Corrupt {
        segment: path.to_path_buf(),
        offset: offset as u64,
        reason: format!("key store: {reason}"),
    }
}

/// Reads the key store `bytes` of the file at `path` (for errors).
pub(crate) fn decode(
    bytes: &[u8],
    path: &Path,
    store_key: &[u8; 32],
    log_id: u128,
) -> Result<Contents> {
    let (header, rest) = bytes
        .split_first_chunk::<HEADER_BYTES>()
        .ok_or_else(|| corrupt(path, 0, "shorter than its header"))?;
    let (magic, header_rest) = header.split_at(8);
    if magic != MAGIC {
        return Err(corrupt(path, 0, "bad magic"));
    }
    let word = |at: usize| {
        header_rest
            .get(at..at.saturating_add(4))
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    };
    let crc_at = bytes.len().saturating_sub(CRC_BYTES);
    let sealed_len = word(HEADER_BYTES - 8 - 4) as usize;
    if rest.len() != sealed_len.saturating_add(CRC_BYTES) || sealed_len < TAG_BYTES {
        return Err(corrupt(
            path,
            HEADER_BYTES - 4,
            "length does not match the file's",
        ));
    }
    let stored_crc = bytes.get(crc_at..).and_then(|b| b.try_into().ok());
    let body = bytes.get(..crc_at).unwrap_or_default();
    if stored_crc.map(u32::from_le_bytes) != Some(crc32fast::hash(body)) {
        return Err(corrupt(path, crc_at, "checksum does not match"));
    }
    if word(0) != VERSION {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            reason: format!("key store version {}; this build reads {VERSION}", word(0)),
        });
    }
    let stored_log = header_rest.get(8..24).and_then(|b| b.try_into().ok());
    if stored_log.map(u128::from_le_bytes) != Some(log_id) {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            reason: "key store of another log".to_string(),
        });
    }
    let plain = open_sealed(header, body, path, store_key)?;
    parse_entries(&plain).map_err(|reason| corrupt(path, HEADER_BYTES, reason))
}

/// The sealed blob of a key store whose CRC held, opened.
fn open_sealed(
    header: &[u8; HEADER_BYTES],
    body: &[u8],
    path: &Path,
    store_key: &[u8; 32],
) -> Result<Zeroizing<Vec<u8>>> {
    let nonce = header
        .get(32..32 + NONCE_BYTES)
        .ok_or_else(|| corrupt(path, 32, "no nonce"))?;
    let sealed = body.get(HEADER_BYTES..).unwrap_or_default();
    let (cipher_text, tag) = sealed
        .split_last_chunk::<TAG_BYTES>()
        .ok_or_else(|| corrupt(path, HEADER_BYTES, "shorter than its tag"))?;
    let mut plain = Zeroizing::new(cipher_text.to_vec());
    XChaCha20Poly1305::new(store_key.into())
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            header,
            &mut plain,
            Tag::from_slice(tag),
        )
        .map_err(|_| Error::WrongMasterKey {
            path: path.to_path_buf(),
        })?;
    Ok(plain)
}

/// Reads bytes front to back.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("entries end early");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        self.take(N)?.try_into().map_err(|_| "entries end early")
    }
}

/// The entries of an opened blob: ids strictly increasing and below the
/// next id, subjects valid and distinct, nothing left over.
fn parse_entries(plain: &[u8]) -> Result<Contents, &'static str> {
    let mut c = Cursor(plain);
    let next_id = u64::from_le_bytes(c.array()?);
    let count = u32::from_le_bytes(c.array()?) as usize;
    if count > MAX_SUBJECTS {
        return Err("more subjects than the limit");
    }
    let mut entries = Vec::with_capacity(count);
    let mut subjects = std::collections::HashSet::with_capacity(count);
    for _ in 0..count {
        let id = u64::from_le_bytes(c.array()?);
        let len = usize::from(u16::from_le_bytes(c.array()?));
        let subject = std::str::from_utf8(c.take(len)?).map_err(|_| "subject not UTF-8")?;
        let key = Zeroizing::new(c.array::<32>()?);
        if check_subject(subject).is_err() || !subjects.insert(subject) {
            return Err("subject empty, too long or repeated");
        }
        if id >= next_id || entries.last().is_some_and(|e: &Entry| e.id >= id) {
            return Err("key ids out of order");
        }
        entries.push(Entry {
            id,
            subject: subject.into(),
            key,
        });
    }
    if !c.0.is_empty() {
        return Err("bytes after the last entry");
    }
    Ok(Contents { next_id, entries })
}

// Tests index what they built themselves.
#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const LOG: u128 = 0x1234;

    fn sample() -> Vec<u8> {
        let keys = [[1u8; 32], [2u8; 32]];
        let entries = [(1u64, "order-1", &keys[0]), (3, "customer:42", &keys[1])];
        encode(&store_key(&[5; 32]), LOG, &[6; 24], 4, entries.into_iter()).unwrap()
    }

    #[test]
    fn a_store_reads_back_what_was_written() {
        let bytes = sample();
        let got = decode(&bytes, Path::new("keys"), &store_key(&[5; 32]), LOG).unwrap();
        assert_eq!(got.next_id, 4);
        let seen: Vec<_> = got
            .entries
            .iter()
            .map(|e| (e.id, &*e.subject, *e.key))
            .collect();
        assert_eq!(seen, [(1, "order-1", [1; 32]), (3, "customer:42", [2; 32])]);
    }

    #[test]
    fn damage_is_corrupt_and_another_master_key_is_wrong() {
        let bytes = sample();
        let path = Path::new("dir/keys");
        let wrong = decode(&bytes, path, &store_key(&[9; 32]), LOG);
        assert!(matches!(wrong, Err(Error::WrongMasterKey { ref path }) if path.ends_with("keys")));
        let other_log = decode(&bytes, path, &store_key(&[5; 32]), LOG + 1);
        assert!(matches!(other_log, Err(Error::UnsupportedFormat { .. })));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            match decode(&bad, path, &store_key(&[5; 32]), LOG) {
                Err(Error::Corrupt { segment, .. }) => assert_eq!(segment, path),
                other => panic!("byte {i}: {:?}", other.map(|c| c.next_id)),
            }
        }
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n], path, &store_key(&[5; 32]), LOG).is_err());
        }
    }

    /// Random and mutated bytes never panic the decoder: each is an error
    /// or (for an unchanged file) the contents.
    #[test]
    fn any_bytes_decode_without_panicking() {
        let good = sample();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let mut bytes = if round % 2 == 0 {
                good.clone()
            } else {
                (0..(next() % 300) as usize).map(|_| next() as u8).collect()
            };
            for _ in 0..(next() % 4) {
                if !bytes.is_empty() {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
            }
            if next() % 5 == 0 {
                bytes.truncate((next() as usize) % (bytes.len() + 1));
            }
            let _ = decode(&bytes, Path::new("keys"), &store_key(&[5; 32]), LOG);
        }
        // A blob that opens but whose entries are malformed is refused too.
        for plain in [&b""[..], &[0u8; 11], &[9u8; 40]] {
            assert!(parse_entries(plain).is_err());
        }
    }
}
