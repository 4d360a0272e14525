//! Open-time recovery: validate segment headers, apply each segment's index
//! file or scan its frames, tell a torn tail (cut it) from
//! corruption (report it, or quarantine it under `repair`), and hand back the
//! segments ready to share.
//!
//! Torn tail or bit rot: a bad frame below its segment's watermark (known
//! durable at the last open), anywhere in a sealed segment, or followed by a
//! valid frame that recorded a durable end past it, damaged data that may
//! have been acknowledged. Any other bad frame is a write that never
//! finished, and nothing from there on was acknowledged (docs/FORMAT.md,
//! "Torn write or damage").
#![deny(clippy::indexing_slicing)]

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::frame::Checksum;
use crate::index::SegmentIndex;
use crate::layout;
use crate::options::Options;
use crate::quarantine::{self, Quarantined};
use crate::segment::{
    HEADER_BYTES, OpenSegment, SLOT_CLEAN, SLOT_SEALED, Segment, SegmentWriter, corrupt,
};
use crate::start::{self, LogStart};
use crate::storage::Storage;
use crate::streams::{Names, Streams};

mod scan;

use scan::{Scan, Walk};

/// Everything `Log` needs to start.
pub(crate) struct Recovered {
    pub(crate) log_id: u128,
    pub(crate) sealed: Vec<Arc<Segment>>,
    pub(crate) active: Arc<Segment>,
    pub(crate) writer: SegmentWriter,
    pub(crate) spare: Option<OpenSegment>,
    pub(crate) names: Names,
    pub(crate) streams: Streams,
    pub(crate) quarantine: Vec<Quarantined>,
    /// The active segment's index so far.
    pub(crate) index: SegmentIndex,
    /// The active segment's slot still says `CLEAN` (a clean close, and
    /// open wrote nothing): the slot must be rewritten without it, and that
    /// made durable, before the first byte past the clean end is written.
    pub(crate) clean_tail: bool,
    /// The active segment's index file was read and covers all of it: a
    /// close with nothing appended need not write it again.
    pub(crate) index_current: bool,
    /// Where the log starts (what retention removed).
    pub(crate) start: LogStart,
}

fn new_log_id() -> u128 {
    // RandomState is seeded from the OS's randomness; two draws make 128 bits.
    let draw = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    (u128::from(draw()) << 64) | u128::from(draw())
}

/// Segment files in `dir` sorted by base. Leftovers of interrupted writes
/// are removed: the engine's own temporary names, and only those (a
/// `notes.tmp` is someone else's); a directory under such a name is an
/// error now rather than a failed write later.
fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for path in storage.read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if layout::is_engine_tmp(name) {
            storage.remove(&path).map_err(|e| Error::io(&path, e))?;
        } else if let Some(base) = layout::parse_segment_file(name) {
            found.push((base, path));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Opens every segment in `dir` (creating the first for a new log) and
/// recovers the log's state; see the module docs.
pub(crate) fn recover(dir: &Path, options: &Options) -> Result<Recovered> {
    let found = list_segments(&*options.storage, dir)?;
    let known = quarantine::load(dir)?;
    if found.is_empty() {
        return new_log(dir, options, known);
    }
    let (log_id, mut segs) = open_segments(&options.storage, &found)?;
    let start = start::load(dir, log_id)?;
    drop_before_start(options, dir, &mut segs, &start)?;
    let scan = Scan {
        start: &start,
        dir,
        log_id,
        segs: &segs,
        checksum: Checksum::new(log_id),
        repair: options.repair,
        interval: options.index_interval,
        known: &known,
    };
    // Index files are derived data: if anything about them fails, the
    // segments alone decide (and report real damage the same way).
    let walk = match scan.walk(!options.repair) {
        Ok(walk) => walk,
        Err(e) if !options.repair => {
            log::warn!("seglog: open with index files failed ({e}); rescanning every segment");
            scan.walk(false)?
        }
        Err(e) => return Err(e),
    };
    finish(dir, options, log_id, segs, walk, known, start)
}

/// Removes the segments (and their index files) below the log's start: a
/// retention run stopped by a crash after its `start` file was in place.
/// The first segment left must begin at the start.
fn drop_before_start(
    options: &Options,
    dir: &Path,
    segs: &mut Vec<OpenSegment>,
    start: &LogStart,
) -> Result<()> {
    let gone = segs.partition_point(|s| s.segment().base() < start.base);
    for open in segs.drain(..gone) {
        let base = open.segment().base();
        let path = open.segment().path().to_path_buf();
        drop(open);
        log::info!("seglog: removing {path:?}, before the log's start (retention)");
        let storage = &*options.storage;
        storage.remove(&path).map_err(|e| Error::io(&path, e))?;
        let index = dir.join(layout::index_file(base));
        match storage.remove(&index) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&index, e)),
            _ => {}
        }
    }
    if gone > 0 {
        options
            .storage
            .sync_dir(dir)
            .map_err(|e| Error::io(dir, e))?;
    }
    match segs.first() {
        Some(first) if start.base > 0 && first.segment().base() != start.base => Err(corrupt(
            first.segment(),
            0,
            format!(
                "segment missing: the log starts at {}, its first segment at {}",
                start.base,
                first.segment().base()
            ),
        )),
        None if start.base > 0 => Err(Error::Corrupt {
            segment: dir.join(layout::segment_file(start.base)),
            offset: 0,
            reason: "segment missing: the log's first segment is gone".into(),
        }),
        _ => Ok(()),
    }
}

/// A new log in `dir`: its first segment.
fn new_log(dir: &Path, options: &Options, known: Vec<Quarantined>) -> Result<Recovered> {
    let log_id = new_log_id();
    let (active, writer) = new_tail(dir, options, log_id, 0)?;
    Ok(Recovered {
        log_id,
        sealed: Vec::new(),
        active,
        writer,
        spare: None,
        names: Names::new(),
        streams: Streams::new(options.index_interval),
        quarantine: known,
        index: SegmentIndex::new(0, HEADER_BYTES),
        clean_tail: false,
        index_current: false,
        start: LogStart::origin(log_id),
    })
}

/// Creates the segment at `base` and makes it the active one, empty.
fn new_tail(
    dir: &Path,
    options: &Options,
    log_id: u128,
    base: u64,
) -> Result<(Arc<Segment>, SegmentWriter)> {
    let open = OpenSegment::create(
        &options.storage,
        dir,
        base,
        options.segment_size_bytes,
        log_id,
        options.preallocate,
    )?;
    Ok(open.into_active(HEADER_BYTES))
}

/// Opens and validates the segment files `found`, which must belong to one
/// log and tile it without gaps: that log's id, and the segments.
fn open_segments(
    storage: &Arc<dyn Storage>,
    found: &[(u64, PathBuf)],
) -> Result<(u128, Vec<OpenSegment>)> {
    let mut segs = Vec::with_capacity(found.len());
    for (base, path) in found {
        segs.push(OpenSegment::open(storage, path, *base)?);
    }
    let log_id = segs.first().map_or(0, |s| s.segment().log_id());
    for pair in segs.windows(2) {
        let [prev, next] = pair else { continue };
        let (prev, next) = (prev.segment(), next.segment());
        if next.log_id() != log_id {
            return Err(Error::UnsupportedFormat {
                path: next.path().to_path_buf(),
                reason: "segment belongs to another log".into(),
            });
        }
        if next.base() != prev.end() {
            return Err(corrupt(
                next,
                0,
                format!("segment missing: expected one starting at {}", prev.end()),
            ));
        }
    }
    Ok((log_id, segs))
}

/// The segments after the tail: the first, when it is a usable spare, is
/// kept; the others are removed. None may hold acknowledged data; unless
/// the log closed cleanly, they may hold frames written past the cut, which
/// are zeroed first.
fn keep_spare(
    options: &Options,
    later: impl Iterator<Item = OpenSegment>,
    clean_stop: bool,
) -> Result<Option<OpenSegment>> {
    let mut spare = None;
    for (k, mut later) in later.enumerate() {
        if later.slot().is_some_and(|s| s.watermark > HEADER_BYTES) {
            return Err(corrupt(
                later.segment(),
                HEADER_BYTES,
                "acknowledged data follows a torn segment",
            ));
        }
        if !clean_stop {
            later.zero_from(HEADER_BYTES)?;
        }
        // Appends are sized against the configured segment size: a spare
        // left by a run with another size would not hold them. A spare that
        // copies on write (btrfs, an older seglog) is made again, marked.
        if k == 0
            && later.segment().size() == options.segment_size_bytes
            && !later.segment().copies_on_write()
        {
            spare = Some(later);
        } else {
            let path = later.segment().path().to_path_buf();
            drop(later);
            options
                .storage
                .remove(&path)
                .map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(spare)
}

/// Applies the scan's decisions: seal completed segments, cut the torn tail,
/// clear anything past it, and share the segments.
fn finish(
    dir: &Path,
    options: &Options,
    log_id: u128,
    segs: Vec<OpenSegment>,
    mut walk: Walk,
    mut known: Vec<Quarantined>,
    start: LogStart,
) -> Result<Recovered> {
    let mut rest = segs.into_iter();
    let sealed = seal_scanned(dir, options, log_id, &mut walk, rest.by_ref())?;
    let tail_base = sealed.last().map_or(0, |s: &Arc<Segment>| s.end());
    let index_current = walk.loaded_unsealed == Some((walk.tail, walk.cursor));
    let index = match walk.indexes.get_mut(walk.tail).and_then(Option::take) {
        Some(mut index) => {
            index.covered = walk.cursor;
            index
        }
        None => SegmentIndex::new(tail_base, HEADER_BYTES),
    };
    let (active, writer, spare, clean_tail) = match rest.next() {
        Some(tail) => recover_tail(options, tail, rest, walk.cursor)?,
        None => {
            let (active, writer) = new_tail(dir, options, log_id, tail_base)?;
            (active, writer, None, false)
        }
    };
    if !walk.found.is_empty() {
        known.extend(std::mem::take(&mut walk.found));
        quarantine::store(&*options.storage, dir, &known)?;
    }
    Ok(Recovered {
        log_id,
        sealed,
        active,
        writer,
        spare,
        names: walk.names,
        streams: walk.streams,
        quarantine: known,
        index,
        clean_tail,
        index_current,
        start,
    })
}

/// The segments before the tail, shared: sealed where the scan found an
/// end marker the slot did not record, their index files rewritten where
/// the scan rebuilt them.
fn seal_scanned(
    dir: &Path,
    options: &Options,
    log_id: u128,
    walk: &mut Walk,
    segs: impl Iterator<Item = OpenSegment>,
) -> Result<Vec<Arc<Segment>>> {
    let mut sealed = Vec::with_capacity(walk.tail);
    for (i, mut open) in segs.take(walk.tail).enumerate() {
        let end = walk.ends.get(i).copied().unwrap_or(HEADER_BYTES);
        if walk.to_seal.contains(&i) {
            open.segment().flush(0, end)?;
            open.write_slot(end, SLOT_SEALED)?;
        }
        if walk.rebuilt.contains(&i)
            && let Some(Some(index)) = walk.indexes.get_mut(i)
            && let Err(e) = index.write(&*options.storage, dir, log_id, &walk.names)
        {
            log::warn!("seglog: could not rewrite an index file: {e}");
        }
        sealed.push(open.into_sealed(end));
    }
    Ok(sealed)
}

/// The tail segment made active at `cursor`: a torn tail cut (zeroed and
/// its watermark raised), the segments after it kept as the spare or
/// removed. Returns it, its writer, the spare, and whether it stopped
/// cleanly (its slot still says `CLEAN`).
fn recover_tail(
    options: &Options,
    mut tail: OpenSegment,
    later: impl Iterator<Item = OpenSegment>,
    cursor: u64,
) -> Result<(Arc<Segment>, SegmentWriter, Option<OpenSegment>, bool)> {
    let page_end = (cursor / HEADER_BYTES + 1) * HEADER_BYTES;
    let clean_stop = tail
        .slot()
        .is_some_and(|s| s.flags & SLOT_CLEAN != 0 && s.watermark == cursor)
        && tail.read(cursor, page_end).iter().all(|&b| b == 0);
    if !clean_stop {
        log::info!(
            "seglog: recovering {:?}: log continues at offset {cursor}",
            tail.segment().path()
        );
        tail.zero_from(cursor)?;
        debug_assert!(tail.read(cursor, page_end).iter().all(|&b| b == 0));
        // Everything below the cursor is whole and now durable: raise the
        // watermark to it. After a clean close it was durable already and
        // the slot says so; the sync thread drops the clean flag, off the
        // open path, before the first new write (`clean_tail`).
        tail.segment().flush(0, cursor)?;
        tail.write_slot(cursor, 0)?;
    }
    if tail.segment().copies_on_write() {
        log::warn!(
            "seglog: {:?} copies on write (btrfs, made by an older seglog): a full disk while \
             it is written raises SIGBUS; the segments after it are made no-copy-on-write",
            tail.segment().path()
        );
    }
    let spare = keep_spare(options, later, clean_stop)?;
    let (active, writer) = tail.into_active(cursor);
    Ok((active, writer, spare, clean_stop))
}
