//! The segment header codec: the fixed header and the two watermark
//! slots, pure functions over bytes (docs/FORMAT.md, "Segment file").
#![deny(clippy::indexing_slicing)]

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::limits;

/// Bytes before the first frame: the header page. Frames start page-aligned
/// so header slot writes never share a page with frames.
pub(crate) const HEADER_BYTES: u64 = 4096;
pub(super) const MAGIC: [u8; 8] = *b"SEGLOG\r\n";
/// The on-disk format this build writes: 2 adds the chain record, 3 the
/// envelope flags of encrypted events (docs/FORMAT.md, "Event"). A build
/// that reads only 1 and 2 ignores unknown event flags and would hand an
/// envelope out as a payload; version 3 makes it refuse the segment
/// instead. Version 1 and 2 segments read as before.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// The oldest format this build reads (a version 1 segment has no chain
/// record until a writer of this build seals or records it).
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;
pub(super) const FIXED_HEADER_BYTES: usize = 64;
pub(super) const SLOT_OFFSETS: [u64; 2] = [512, 1024];
pub(super) const SLOT_BYTES: usize = 28;
/// The watermark marks the segment complete: an end marker sits at it.
pub(crate) const SLOT_SEALED: u32 = 1;
/// Written at a clean close: nothing was ever written past the watermark.
pub(crate) const SLOT_CLEAN: u32 = 2;
/// Where the chain record lies in the header page, in a sector of its own.
pub(super) const CHAIN_RECORD_OFFSET: u64 = 1536;
pub(super) const CHAIN_RECORD_BYTES: usize = 96;
/// The chain record's own version (the first word of it).
const CHAIN_RECORD_VERSION: u32 = 1;
/// The chain record's flags word for a record of an open segment.
const RECORD_OPEN: u32 = 1;
/// Bytes from the start of a segment file that hold the fixed header, both
/// slots and the chain record.
pub(super) const HEAD_READ_BYTES: usize = CHAIN_RECORD_OFFSET as usize + CHAIN_RECORD_BYTES;

/// The newest valid slot in `head` (a segment file's first bytes, at least
/// through the second slot) whose watermark fits a segment of `size` bytes.
pub(crate) fn newest_slot(head: &[u8], size: u64) -> Option<Slot> {
    let mut best: Option<Slot> = None;
    for at in SLOT_OFFSETS {
        if let Some(slot) = head.get(at as usize..).and_then(Slot::decode)
            && (HEADER_BYTES..=size).contains(&slot.watermark)
            && best.is_none_or(|b| slot.seq > b.seq)
        {
            best = Some(slot);
        }
    }
    best
}

/// One watermark slot: the newest valid slot of the two wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) seq: u64,
    /// Offset in the segment below which every frame is known durable.
    pub(crate) watermark: u64,
    pub(crate) flags: u32,
}

/// Writes `fields` one after the other into `out`, then the CRC-32 of
/// everything before the last 4 bytes into those. The layouts here are
/// constants that fit their arrays (checked by the tests).
fn fill_with_crc(out: &mut [u8], fields: &[&[u8]]) {
    let mut at = 0;
    for field in fields {
        if let Some(dst) = out.get_mut(at..at + field.len()) {
            dst.copy_from_slice(field);
        }
        at += field.len();
    }
    let body = out.len() - 4;
    debug_assert!(at <= body, "fields overlap the checksum");
    let crc = crc32fast::hash(out.get(..body).unwrap_or_default());
    if let Some(dst) = out.get_mut(body..) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
}

/// The `N` bytes at `at` of `raw`, `None` past its end.
fn field<const N: usize>(raw: &[u8], at: usize) -> Option<[u8; N]> {
    raw.get(at..)?.first_chunk::<N>().copied()
}

/// Whether the CRC-32 in the last 4 bytes of `raw` matches what precedes it.
fn crc_matches(raw: &[u8]) -> bool {
    raw.split_last_chunk::<4>()
        .is_some_and(|(body, crc)| crc32fast::hash(body).to_le_bytes() == *crc)
}

impl Slot {
    pub(super) fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut out = [0u8; SLOT_BYTES];
        fill_with_crc(
            &mut out,
            &[
                &self.seq.to_le_bytes(),
                &self.watermark.to_le_bytes(),
                &self.flags.to_le_bytes(),
            ],
        );
        out
    }

    pub(super) fn decode(raw: &[u8]) -> Option<Slot> {
        let raw = raw.first_chunk::<SLOT_BYTES>()?;
        if raw.iter().all(|&b| b == 0) || !crc_matches(raw) {
            return None;
        }
        Some(Slot {
            seq: u64::from_le_bytes(field(raw, 0)?),
            watermark: u64::from_le_bytes(field(raw, 8)?),
            flags: u32::from_le_bytes(field(raw, 16)?),
        })
    }
}

/// What a segment records of the hash chain (docs/FORMAT.md, "Chain
/// record"): the link entering it, the link after its last frame (or the
/// last one a clean close linked), and how long the chain is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainRecord {
    /// Links in the chain from its start through the frame before `end`.
    pub(crate) links: u64,
    /// Segment offset the record's chain reaches: the end marker of a
    /// sealed segment, or where a clean close left an open one.
    pub(crate) end: u64,
    /// Written by a clean close into the open segment: frames may follow
    /// `end`, and a later record of the same chain replaces this one.
    pub(crate) open: bool,
    /// The link before this segment's first frame.
    pub(crate) entering: [u8; 32],
    /// The link of its last frame (`entering` when it holds none).
    pub(crate) head: [u8; 32],
}

impl ChainRecord {
    pub(super) fn encode(&self) -> [u8; CHAIN_RECORD_BYTES] {
        let mut out = [0u8; CHAIN_RECORD_BYTES];
        fill_with_crc(
            &mut out,
            &[
                &CHAIN_RECORD_VERSION.to_le_bytes(),
                &(if self.open { RECORD_OPEN } else { 0 }).to_le_bytes(),
                &self.links.to_le_bytes(),
                &self.end.to_le_bytes(),
                &self.entering,
                &self.head,
            ],
        );
        out
    }

    /// The record in `raw`; `None` when there is none (zeros), it is torn
    /// or damaged, or of a later record version.
    pub(super) fn decode(raw: &[u8]) -> Option<ChainRecord> {
        let raw = raw.first_chunk::<CHAIN_RECORD_BYTES>()?;
        if raw.iter().all(|&b| b == 0) || !crc_matches(raw) {
            return None;
        }
        if u32::from_le_bytes(field(raw, 0)?) != CHAIN_RECORD_VERSION {
            return None;
        }
        let open = match u32::from_le_bytes(field(raw, 4)?) {
            0 => false,
            RECORD_OPEN => true,
            _ => return None,
        };
        Some(ChainRecord {
            links: u64::from_le_bytes(field(raw, 8)?),
            end: u64::from_le_bytes(field(raw, 16)?),
            open,
            entering: field(raw, 24)?,
            head: field(raw, 56)?,
        })
    }
}

pub(super) fn encode_header(size: u64, base: u64, log_id: u128) -> [u8; FIXED_HEADER_BYTES] {
    let created_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut h = [0u8; FIXED_HEADER_BYTES];
    fill_with_crc(
        &mut h,
        &[
            &MAGIC,
            &FORMAT_VERSION.to_le_bytes(),
            &(HEADER_BYTES as u32).to_le_bytes(),
            &size.to_le_bytes(),
            &base.to_le_bytes(),
            &log_id.to_le_bytes(),
            &created_us.to_le_bytes(),
        ],
    );
    h
}

/// The fixed header fields of an existing segment.
pub(super) struct Header {
    pub(super) size: u64,
    pub(super) log_id: u128,
}

pub(super) fn decode_header(
    path: &Path,
    h: &[u8; FIXED_HEADER_BYTES],
    base: u64,
) -> Result<Header> {
    let unsupported = |reason: String| Error::UnsupportedFormat {
        path: path.to_path_buf(),
        reason,
    };
    let corrupt = |reason: String| Error::Corrupt {
        segment: path.to_path_buf(),
        offset: 0,
        reason,
    };
    if h.first_chunk::<8>() != Some(&MAGIC) {
        return Err(unsupported("not a seglog segment (bad magic)".into()));
    }
    // Every offset below lies inside the fixed-size array.
    let u32_at = |at: usize| field(h, at).map_or(0, u32::from_le_bytes);
    let u64_at = |at: usize| field(h, at).map_or(0, u64::from_le_bytes);
    let version = u32_at(8);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(unsupported(format!(
            "segment format version {version}; this build reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
        )));
    }
    if !crc_matches(h) {
        return Err(corrupt("segment header checksum mismatch".into()));
    }
    let size = u64_at(16);
    if u64::from(u32_at(12)) != HEADER_BYTES
        || !size.is_power_of_two()
        || !(limits::MIN_SEGMENT_SIZE_BYTES..=limits::MAX_SEGMENT_SIZE_BYTES).contains(&size)
    {
        return Err(corrupt(format!(
            "segment header has invalid sizes ({size})"
        )));
    }
    let header_base = u64_at(24);
    if header_base != base {
        return Err(corrupt(format!(
            "header says base {header_base} but the file name says {base}"
        )));
    }
    Ok(Header {
        size,
        log_id: field(h, 32).map_or(0, u128::from_le_bytes),
    })
}
