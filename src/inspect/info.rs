//! [`LogInfo`] and [`ConsumerInfo`]: a log's summary, from what the view
//! holds in memory and a listing of its directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::position::Position;
use crate::segment::HEADER_BYTES;
use crate::view::LogView;

/// A summary of a log ([`Reader::info`](crate::Reader::info),
/// [`Log::info`](crate::Log::info)), as of the end published when taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// The log's id.
    pub log_id: u128,
    /// The first position retention kept ([`Position::START`] when it
    /// removed nothing).
    pub log_start: Position,
    /// Where the next event will be: the published end.
    pub end: Position,
    /// The segments, oldest first.
    pub segments: Vec<SegmentInfo>,
    /// Streams ever created, the engine's own (`$audit`, `$streams`)
    /// and deleted ones included.
    pub streams: u64,
    /// Events appended over the log's life: the sum of its streams'
    /// versions. Events retention removed are counted (they lie before
    /// `log_start`); so are those a truncation hides.
    pub events: u64,
    /// The commit time of the oldest kept segment's first event, in
    /// microseconds since the Unix epoch.
    pub first_time_us: Option<u64>,
    /// The commit time of the newest event.
    pub last_time_us: Option<u64>,
    /// Bytes of every file in the log's directory (segments as allocated,
    /// index files, checkpoints, snapshots, the key store).
    pub disk_bytes: u64,
}

/// One segment of a [`LogInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its file.
    pub path: PathBuf,
    /// The log offset it starts at (positions in it are past it).
    pub base: u64,
    /// Its size: segments are preallocated whole.
    pub size_bytes: u64,
    /// Bytes of frames published in it.
    pub used_bytes: u64,
    /// Whether it is sealed (full; no more appends go to it).
    pub sealed: bool,
    /// Commit time of its first event, microseconds since the Unix epoch.
    pub first_time_us: Option<u64>,
    /// Commit time of its last event.
    pub last_time_us: Option<u64>,
}

/// A durable consumer's checkpoint ([`Reader::consumers`](crate::Reader::consumers)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// The consumer's name.
    pub name: String,
    /// The last position it checkpointed: it resumes after it.
    pub checkpoint: Position,
    /// Bytes of the log after its checkpoint: how far behind it is.
    pub lag_bytes: u64,
}

/// The summary of `view`.
pub(crate) fn info(view: &LogView) -> Result<LogInfo> {
    let end = view.watch.end();
    let segments: Vec<SegmentInfo> = view
        .segments_snapshot()
        .iter()
        .map(|seg| {
            let published = seg.published();
            SegmentInfo {
                path: seg.path().to_path_buf(),
                base: seg.base(),
                size_bytes: seg.size(),
                used_bytes: published.saturating_sub(HEADER_BYTES),
                sealed: seg.is_sealed(),
                first_time_us: seg.times.first_us(),
                last_time_us: seg.times.last_us(),
            }
        })
        .collect();
    let (streams, events) = {
        let registry = view.registry();
        let streams = registry.len() as u64;
        let events = (0..registry.len() as u32)
            .filter_map(|id| registry.head(id))
            .map(|head| head.last_version + 1)
            .sum();
        (streams, events)
    };
    Ok(LogInfo {
        log_id: view.log_id,
        log_start: view.log_start().position(),
        end: Position::new(end, 0),
        first_time_us: segments.iter().find_map(|s| s.first_time_us),
        last_time_us: segments.iter().rev().find_map(|s| s.last_time_us),
        segments,
        streams,
        events,
        disk_bytes: disk_bytes(&view.dir)?,
    })
}

/// Bytes of the files under `dir`, one level of subdirectories deep (the
/// snapshots' stream directories), as allocated for the preallocated
/// segments' sake.
fn disk_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut dirs = vec![(dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && depth < 2 {
                dirs.push((entry.path(), depth + 1));
            } else if meta.is_file() {
                total += meta.blocks() * 512;
            }
        }
    }
    Ok(total)
}

/// Every durable consumer's checkpoint in `view`'s directory, by name.
pub(crate) fn consumers(view: &LogView) -> Result<Vec<ConsumerInfo>> {
    let end = view.watch.end();
    let mut found: Vec<ConsumerInfo> = crate::consumer::checkpoints(&view.dir, view.log_id)?
        .into_iter()
        .map(|(name, checkpoint)| ConsumerInfo {
            name,
            checkpoint,
            lag_bytes: end.saturating_sub(checkpoint.frame_offset()),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}
