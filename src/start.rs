//! Where the log starts once retention has removed segments from its head
//! (the `start` file; docs/FORMAT.md "`start`"). Segments are the only
//! source of truth, but the ones removed took with them what later frames
//! lean on: the names of the streams they defined (later frames carry only
//! ids), those streams' heads (the next append's version and back-link),
//! and the chain's link at the cut (what `verify` goes on from). This file
//! keeps exactly that, written whole (a temporary file, fsync, rename,
//! fsync of the directory) before the first segment is unlinked. An open
//! that finds segments below it removes them: an interrupted retention
//! run is finished, never undone.

use std::path::Path;
use std::sync::Arc;

use crate::chain::link::{self, Hash};
use crate::error::{Error, Result};
use crate::layout;
use crate::position::Position;
use crate::segment::HEADER_BYTES;
use crate::storage::{self, Storage};
use crate::streams::deleted::Deletion;
use crate::streams::{Head, Names, Streams};

const MAGIC: &[u8; 8] = b"SEGLSTRT";
const VERSION: u32 = 1;
const HEADER: usize = 88;
/// Per stream: last version, last frame, name length; then the name.
const ENTRY_FIXED: usize = 18;
/// Per deletion: stream id, flags, the soft delete's cut.
const DELETION_BYTES: usize = 16;
/// The largest file a log can need: every stream it may hold, each with a
/// name of the longest length.
const MAX_FILE_BYTES: u64 = HEADER as u64
    + crate::limits::MAX_STREAMS * (ENTRY_FIXED + crate::limits::MAX_STREAM_NAME_BYTES) as u64;

/// A stream defined before the log's start, as it stood there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartStream {
    pub(crate) name: String,
    /// Its last event before the start (every one of its events there).
    pub(crate) head: Head,
}

/// What the log keeps of everything before its first segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogStart {
    /// The log offset of the first segment kept (0: nothing was removed).
    pub(crate) base: u64,
    /// Links of the chain before `base`.
    pub(crate) links: u64,
    /// The chain's head at `base` (the genesis link when nothing was removed).
    pub(crate) link: Hash,
    /// The streams whose first frame was removed, in id order: ids
    /// `0..streams.len()`.
    pub(crate) streams: Arc<Vec<StartStream>>,
    /// Every stream deletion when it was written, by stream id: the
    /// `$streams` events that recorded them may be among what was removed.
    pub(crate) deletions: Arc<Vec<(u32, Deletion)>>,
}

impl LogStart {
    /// The start of a log nothing was removed from.
    pub(crate) fn origin(log_id: u128) -> LogStart {
        LogStart {
            base: 0,
            links: 0,
            link: link::genesis(log_id),
            streams: Arc::new(Vec::new()),
            deletions: Arc::new(Vec::new()),
        }
    }

    /// The first position the log holds: [`Position::START`] when nothing
    /// was removed, else the first frame of the first segment kept.
    pub(crate) fn position(&self) -> Position {
        if self.base == 0 {
            Position::START
        } else {
            Position::new(self.base + HEADER_BYTES, 0)
        }
    }

    /// Stream `id`'s first version still in the log (0 for a stream
    /// defined after the start).
    pub(crate) fn first_version(&self, id: u32) -> u64 {
        self.streams
            .get(id as usize)
            .map_or(0, |s| s.head.last_version + 1)
    }

    /// Registers the streams removed segments defined, ids `0..n` in order,
    /// with their heads at the start: frames after it go on from those.
    pub(crate) fn seed(
        &self,
        names: &Names,
        streams: &mut Streams,
    ) -> std::result::Result<(), String> {
        debug_assert_eq!(streams.len(), 0, "seeded into an empty registry");
        for s in self.streams.iter() {
            streams
                .insert(names, &s.name, s.head)
                .map_err(|_| format!("stream {:?} listed twice, or too many streams", s.name))?;
        }
        Ok(())
    }

    fn encode(&self, log_id: u128) -> Vec<u8> {
        let names: usize = self.streams.iter().map(|s| s.name.len()).sum();
        let mut out = Vec::with_capacity(HEADER + self.streams.len() * ENTRY_FIXED + names);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // CRC, below
        out.extend_from_slice(&log_id.to_le_bytes());
        out.extend_from_slice(&self.base.to_le_bytes());
        out.extend_from_slice(&self.links.to_le_bytes());
        out.extend_from_slice(&self.link);
        out.extend_from_slice(&(self.streams.len() as u64).to_le_bytes());
        debug_assert_eq!(out.len(), HEADER);
        for s in self.streams.iter() {
            out.extend_from_slice(&s.head.last_version.to_le_bytes());
            out.extend_from_slice(&s.head.last_frame.to_le_bytes());
            out.extend_from_slice(&(s.name.len() as u16).to_le_bytes());
            out.extend_from_slice(s.name.as_bytes());
        }
        out.extend_from_slice(&(self.deletions.len() as u64).to_le_bytes());
        for (id, d) in self.deletions.iter() {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&u32::from(d.tombstone).to_le_bytes());
            out.extend_from_slice(&d.before.to_le_bytes());
        }
        let crc = crc32fast::hash(&out[16..]);
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(raw: &[u8], log_id: u128) -> std::result::Result<LogStart, String> {
        let field = |at: usize, len: usize| raw.get(at..at + len).ok_or("the file is cut short");
        let u64_at = |at: usize| -> std::result::Result<u64, String> {
            Ok(u64::from_le_bytes(
                field(at, 8)?.try_into().map_err(|_| "short")?,
            ))
        };
        if field(0, 8)? != MAGIC {
            return Err("not a seglog start file (bad magic)".into());
        }
        let version = u32::from_le_bytes(field(8, 4)?.try_into().map_err(|_| "short")?);
        if version != VERSION {
            return Err(format!(
                "start file version {version}, this build reads {VERSION}"
            ));
        }
        let crc = u32::from_le_bytes(field(12, 4)?.try_into().map_err(|_| "short")?);
        if raw.len() < HEADER || crc32fast::hash(&raw[16..]) != crc {
            return Err("checksum mismatch".into());
        }
        let id = u128::from_le_bytes(field(16, 16)?.try_into().map_err(|_| "short")?);
        if id != log_id {
            return Err(format!("the start file of log {id:032x}, not of this log"));
        }
        let mut start = LogStart {
            base: u64_at(32)?,
            links: u64_at(40)?,
            link: field(48, 32)?.try_into().map_err(|_| "short")?,
            streams: Arc::new(Vec::new()),
            deletions: Arc::new(Vec::new()),
        };
        if !start.base.is_multiple_of(HEADER_BYTES) {
            return Err(format!(
                "log start {} is not a segment boundary",
                start.base
            ));
        }
        let (streams, at) = decode_streams(raw, u64_at(80)?)?;
        start.streams = Arc::new(streams);
        start.deletions = Arc::new(decode_deletions(raw, at)?);
        Ok(start)
    }
}

/// The stream entries, and the offset just past them.
fn decode_streams(
    raw: &[u8],
    count: u64,
) -> std::result::Result<(Vec<StartStream>, usize), String> {
    let mut streams = Vec::new();
    let mut at = HEADER;
    for _ in 0..count {
        let fixed = raw
            .get(at..at + ENTRY_FIXED)
            .ok_or("a stream entry is cut short")?;
        let word = |i: usize| u64::from_le_bytes(fixed[i..i + 8].try_into().unwrap_or([0; 8]));
        let name_len = usize::from(u16::from_le_bytes([fixed[16], fixed[17]]));
        if name_len == 0 || name_len > crate::limits::MAX_STREAM_NAME_BYTES {
            return Err(format!("a stream name of {name_len} bytes"));
        }
        let name = raw
            .get(at + ENTRY_FIXED..at + ENTRY_FIXED + name_len)
            .ok_or("a stream name is cut short")?;
        let name = std::str::from_utf8(name).map_err(|_| "a stream name is not UTF-8")?;
        streams.push(StartStream {
            name: name.to_string(),
            head: Head {
                last_version: word(0),
                last_frame: word(8),
            },
        });
        at += ENTRY_FIXED + name_len;
    }
    Ok((streams, at))
}

/// The deletions from offset `at` to the end of the file.
fn decode_deletions(raw: &[u8], at: usize) -> std::result::Result<Vec<(u32, Deletion)>, String> {
    let count = raw
        .get(at..at + 8)
        .ok_or("the deletion count is cut short")?;
    let count = u64::from_le_bytes(count.try_into().map_err(|_| "short")?);
    let entries = raw.get(at + 8..).unwrap_or_default();
    if Some(entries.len() as u64) != count.checked_mul(DELETION_BYTES as u64) {
        return Err(format!("{count} deletions do not fill the file's end"));
    }
    let mut deletions = Vec::with_capacity(entries.len() / DELETION_BYTES);
    for e in entries.chunks_exact(DELETION_BYTES) {
        let id = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        let flags = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        if flags > 1 {
            return Err(format!("deletion flags {flags:#x}"));
        }
        let before = u64::from_le_bytes(e[8..16].try_into().map_err(|_| "short")?);
        let deletion = Deletion {
            before,
            tombstone: flags == 1,
            closing: false,
        };
        deletions.push((id, deletion));
    }
    Ok(deletions)
}

/// The start of the log in `dir`: its `start` file, or the origin when it
/// has none. A damaged file is [`Error::Corrupt`]: the names of the
/// streams it lists exist nowhere else.
pub(crate) fn load(dir: &Path, log_id: u128) -> Result<LogStart> {
    let path = dir.join(layout::START_FILE);
    let raw = match storage::entry::read(&path, MAX_FILE_BYTES) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LogStart::origin(log_id)),
        Err(e) => return Err(Error::io(&path, e)),
    };
    LogStart::decode(&raw, log_id).map_err(|reason| Error::Corrupt {
        segment: path,
        offset: 0,
        reason: format!("start file: {reason}"),
    })
}

/// Replaces the `start` file of `dir` with `start`, crash-safely; read
/// back before it is renamed into place.
pub(crate) fn store(
    storage: &dyn Storage,
    dir: &Path,
    log_id: u128,
    start: &LogStart,
) -> Result<()> {
    let bytes = start.encode(log_id);
    debug_assert_eq!(LogStart::decode(&bytes, log_id).as_ref(), Ok(start));
    let path = dir.join(layout::START_FILE);
    storage::replace_file(storage, &path, &bytes).map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LogStart {
        LogStart {
            base: 3 << 20,
            links: 17,
            link: [7; 32],
            streams: Arc::new(vec![
                StartStream {
                    name: "order-1".into(),
                    head: Head {
                        last_version: 4,
                        last_frame: 8192,
                    },
                },
                StartStream {
                    name: "\u{e9}".into(),
                    head: Head {
                        last_version: 0,
                        last_frame: 4096,
                    },
                },
            ]),
            deletions: Arc::new(vec![
                (
                    1,
                    Deletion {
                        before: 3,
                        tombstone: false,
                        closing: false,
                    },
                ),
                (
                    4,
                    Deletion {
                        before: 0,
                        tombstone: true,
                        closing: false,
                    },
                ),
            ]),
        }
    }

    #[test]
    fn round_trips_and_every_flipped_byte_is_caught() {
        let start = sample();
        let bytes = start.encode(9);
        assert_eq!(LogStart::decode(&bytes, 9), Ok(start.clone()));
        assert!(
            LogStart::decode(&bytes, 10)
                .unwrap_err()
                .contains("not of this log")
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(LogStart::decode(&bad, 9).is_err(), "byte {i}");
        }
        for len in 0..bytes.len() {
            assert!(LogStart::decode(&bytes[..len], 9).is_err(), "cut at {len}");
        }
        assert_eq!(start.first_version(0), 5);
        assert_eq!(start.first_version(2), 0);
        assert_eq!(start.position(), Position::new((3 << 20) + HEADER_BYTES, 0));
        assert_eq!(LogStart::origin(9).position(), Position::START);
    }
}
