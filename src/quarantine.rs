//! Frames skipped by a repair, and the `quarantine` file that remembers them.
//!
//! A repair never rewrites a segment: the damaged bytes stay where they were
//! (for forensics) and this list tells readers and later opens to step over
//! them. The file is a decision the user made; deleting it makes the damage
//! an error again.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout;
use crate::segment::Segment;
use crate::storage::{self, Storage};

/// The largest quarantine file read: at ~100 bytes a line, over 100,000
/// damaged ranges, far more than any repair that should go on.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// A byte range of a segment that a repair skipped: whatever events it held
/// are lost; every valid frame after it was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The segment file.
    pub segment: PathBuf,
    /// Offset of the damaged range in that file.
    pub offset: u64,
    /// Length of the damaged range.
    pub len_bytes: u64,
    /// Why the first frame of the range was refused.
    pub reason: String,
    pub(crate) global_start: u64,
    pub(crate) global_end: u64,
}

impl Quarantined {
    pub(crate) fn new(seg: &Segment, from: u64, to: u64, reason: String) -> Self {
        Quarantined {
            segment: seg.path().to_path_buf(),
            offset: from,
            len_bytes: to - from,
            reason,
            global_start: seg.base() + from,
            global_end: seg.base() + to,
        }
    }
}

/// The quarantined range starting at log offset `at`, if any.
pub(crate) fn find(list: &[Quarantined], at: u64) -> Option<&Quarantined> {
    list.iter().find(|q| q.global_start == at)
}

/// Loads the quarantine list of `dir` (empty when there is none).
pub(crate) fn load(dir: &Path) -> Result<Vec<Quarantined>> {
    let path = dir.join(layout::QUARANTINE_FILE);
    let raw = storage::entry::read(&path, MAX_FILE_BYTES).and_then(|raw| {
        String::from_utf8(raw).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    });
    let text = match raw {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bad = |line: &str| Error::Corrupt {
        segment: path.clone(),
        offset: 0,
        reason: format!("unreadable quarantine line {line:?}"),
    };
    let mut list = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(4, ' ');
        let (Some(name), Some(offset), Some(len), Some(reason)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(line));
        };
        let base = layout::parse_segment_file(name).ok_or_else(|| bad(line))?;
        let offset: u64 = offset.parse().map_err(|_| bad(line))?;
        let len_bytes: u64 = len.parse().map_err(|_| bad(line))?;
        list.push(Quarantined {
            segment: dir.join(name),
            offset,
            len_bytes,
            reason: reason.to_string(),
            global_start: base.saturating_add(offset),
            global_end: base.saturating_add(offset).saturating_add(len_bytes),
        });
    }
    Ok(list)
}

/// Replaces the quarantine file with `list` (write, fsync, rename, fsync dir).
pub(crate) fn store(storage: &dyn Storage, dir: &Path, list: &[Quarantined]) -> Result<()> {
    let path = dir.join(layout::QUARANTINE_FILE);
    let mut text = String::new();
    for q in list {
        let base = q.global_start - q.offset;
        let reason = q.reason.replace('\n', " ");
        text.push_str(&format!(
            "{} {} {} {reason}\n",
            layout::segment_file(base),
            q.offset,
            q.len_bytes
        ));
    }
    storage::replace_file(storage, &path, text.as_bytes()).map_err(|e| Error::io(&path, e))
}
