//! Per-segment index files (`{base:020}.idx`): what one segment adds to the
//! stream registry (stream definitions, each touched stream's last version
//! and frame, the sparse entries), so open applies a few records per stream
//! instead of decoding every frame.
//!
//! Derived data: written after the segment's data is durable (sealed
//! segments) or at a clean close (the active segment's prefix); a missing,
//! damaged or stale file is ignored with a warning and the segment is
//! scanned instead. Segments stay the only source of truth.
//!
//! A file has two checksums: one over its header, definitions and heads,
//! checked when the file is read, and one over its sparse entries, checked
//! the first time a lookup needs them ([`FileEntries`]). Open applies
//! definitions and heads as it walks them in the mapped file, decoding
//! neither into vectors first, and leaves the entries where they are: each
//! stream's share of them is one run, described by its head. Checking and copying the entries were most of an open (1M events
//! over 1,000 streams: 31k entries, 0.5 MB), and open no longer grows with
//! the number of events, only with the streams each segment touches.
#![deny(clippy::indexing_slicing)]

use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::layout;
use crate::segment::{HEADER_BYTES, TIME_ENTRY_BYTES, TimeEntry, TimeIndex, map_index_file};
use crate::storage::{self, Storage, StorageWriter};
use crate::streams::{Head, IndexEntry, Names, Recorded, Streams};

const MAGIC: [u8; 8] = *b"SEGLOGIX";
/// Version 2 moved the entries' stream ids into the heads (a run per
/// stream) and gave the entries their own checksum; version 3 added the
/// segment's time index (its count in what was a reserved word, the
/// entries after the heads). Files of older versions are rebuilt from
/// their segments, as any unusable index file is.
const VERSION: u32 = 3;
const FIXED_BYTES: usize = 8 + 4 + 4 + 16 + 8 + 8 + 4 + 4 + 4 + 4;
/// Smallest record of each kind, to bound counts by the file's size.
const MIN_DEF_BYTES: u64 = 4 + 2 + 1;
const HEAD_BYTES: u64 = 4 + 8 + 8 + 4 + 8;
const ENTRY_BYTES: usize = 8 + 8;
/// The time section: the newest commit time, then the entries.
const TIMES_FIXED_BYTES: u64 = 8;

/// A file's sparse entries, used in place from its mapping: `(version,
/// frame)`, [`ENTRY_BYTES`] each, grouped by stream. Checked against the
/// checksum in the file's (checked) header the first time they are used:
/// the lookup that needs them pays for one pass over the file's entries,
/// once (ARCHITECTURE.md, "Open and recovery", has the figure), instead of
/// every open paying for every file. Entries that
/// fail are left out of lookups (with a warning), which stay correct: a
/// read then walks back-links from the next usable entry or the stream's
/// head. They stay out until the file is rebuilt: an open with
/// `repair(true)` rescans every segment and rewrites its file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FileEntries {
    bytes: Bytes,
    crc: u32,
    base: u64,
    intact: OnceLock<bool>,
}

impl FileEntries {
    /// Whether the entries match their checksum (computed once).
    pub(crate) fn is_intact(&self) -> bool {
        *self.intact.get_or_init(|| {
            let intact = crc32fast::hash(&self.bytes) == self.crc;
            if !intact {
                log::warn!(
                    "seglog: sparse entries of the index of segment {} fail their checksum; \
                     reads walk back-links past them",
                    self.base
                );
            }
            intact
        })
    }

    /// A file's entries as the encoder lays them out, with their checksum.
    #[cfg(test)]
    pub(crate) fn of(entries: &[IndexEntry]) -> FileEntries {
        let mut bytes = Vec::with_capacity(entries.len() * ENTRY_BYTES);
        for e in entries {
            bytes.extend_from_slice(&e.version.to_le_bytes());
            bytes.extend_from_slice(&e.frame.to_le_bytes());
        }
        FileEntries {
            crc: crc32fast::hash(&bytes),
            bytes: Bytes::from(bytes),
            base: 0,
            intact: OnceLock::new(),
        }
    }

    /// Entry `i`; only once [`FileEntries::is_intact`] said so.
    pub(crate) fn entry(&self, i: u32) -> IndexEntry {
        debug_assert_eq!(
            self.intact.get(),
            Some(&true),
            "entry read before its check"
        );
        // `decode` checked every run against the file's entry count, and
        // `bytes` holds exactly that many entries, so `i` is in range. Were
        // it not, the answer points at no frame (a read that follows it
        // reports an invalid position) instead of panicking.
        let (entries, _) = self.bytes.as_chunks::<ENTRY_BYTES>();
        let Some(&entry) = entries.get(i as usize) else {
            debug_assert!(false, "entry {i} past the file's entries");
            return IndexEntry {
                version: u64::MAX,
                frame: u64::MAX,
            };
        };
        let [version, frame]: [[u8; 8]; 2] = bytemuck::cast(entry);
        IndexEntry {
            version: u64::from_le_bytes(version),
            frame: u64::from_le_bytes(frame),
        }
    }
}

/// One stream's entries in a file: `len` of them from entry `start`, the
/// first at `first_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileRun {
    pub(crate) id: u32,
    pub(crate) start: u32,
    pub(crate) len: u32,
    pub(crate) first_version: u64,
}

/// What one segment's frames add to the registry, up to `covered`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    pub(crate) base: u64,
    /// Offset in the segment up to which frames are described.
    pub(crate) covered: u64,
    /// The streams this segment defines: a run of consecutive ids, since
    /// ids are handed out in order of first append and a segment is one
    /// stretch of the log. Their names are in the readers' names table when
    /// the index is written, so recording a definition stores nothing.
    defined: Range<u32>,
    /// The definitions and heads of a file this index was read from,
    /// checked and left in the file's bytes: [`SegmentIndex::apply`] walks
    /// them there, and `heads` and `runs` are decoded from them only for
    /// the tail's index, the one index that goes on recording.
    file: Option<FileMeta>,
    /// Streams whose first frame in this segment was recorded since the
    /// heads were last taken: one push per stream and segment, not one map
    /// update per append.
    touched: Vec<u32>,
    /// Heads as of `covered`, by id: from the file (once unpacked), or
    /// taken from the registry by [`SegmentIndex::finalize`].
    heads: Vec<(u32, Head)>,
    /// Entries recorded since the index was created or read.
    entries: Vec<(u32, IndexEntry)>,
    /// Entries of a file, still in the file's bytes, and each stream's run
    /// of them (from its head): open hands both to the registry as they
    /// are, and the tail's index decodes them only when it is written again.
    loaded: Option<Arc<FileEntries>>,
    runs: Vec<FileRun>,
    /// The segment's time index up to `covered`, and its newest commit
    /// time: taken from the segment by [`SegmentIndex::finalize`], or read
    /// from the file.
    pub(crate) times: Vec<TimeEntry>,
    /// The time entries of the file this index was read from, in its
    /// bytes (checked by the file's first checksum): handed to the
    /// segment's time index as they are.
    times_file: Bytes,
    pub(crate) last_us: u64,
}

impl SegmentIndex {
    /// An empty index of the segment at `base`, describing frames up to `covered`.
    pub(crate) fn new(base: u64, covered: u64) -> Self {
        SegmentIndex {
            base,
            covered,
            defined: 0..0,
            file: None,
            touched: Vec::new(),
            heads: Vec::new(),
            entries: Vec::new(),
            loaded: None,
            runs: Vec::new(),
            times: Vec::new(),
            times_file: Bytes::new(),
            last_us: 0,
        }
    }

    /// Adds one frame (ending at segment offset `end`) to the index.
    /// `first_here`: the stream had no earlier frame in this segment.
    pub(crate) fn record(
        &mut self,
        defines: bool,
        recorded: &Recorded,
        first_here: bool,
        end: u64,
    ) {
        if defines {
            if self.defined.is_empty() {
                self.defined = recorded.id..recorded.id;
            }
            debug_assert!(self.defined.end <= recorded.id, "definitions out of order");
            // A repair may have registered placeholders for quarantined
            // definitions in between: they are in the range too, under
            // their placeholder names, as the registry holds them.
            self.defined.end = recorded.id + 1;
        }
        if first_here {
            self.touched.push(recorded.id);
        }
        if let Some(entry) = recorded.entry {
            self.entries.push((recorded.id, entry));
        }
        debug_assert!(end >= self.covered);
        self.covered = end;
    }

    /// Takes the heads of every stream this segment touched from `streams`,
    /// which must hold the log up to `covered` exactly (at a roll, a close,
    /// or the end of the segment's scan).
    ///
    /// Runs on the appender's path at each roll, over up to one id per frame
    /// of the segment: ids are sorted with the stable sort, which merges the
    /// runs appends leave (streams created in order, round robin) in linear
    /// time, and in id order the heads are read from the registry front to
    /// back instead of at random.
    pub(crate) fn finalize(&mut self, streams: &Streams, times: &TimeIndex) {
        self.times = times.entries();
        self.times.retain(|e| e.offset < self.covered);
        self.last_us = times.last_us().unwrap_or(0);
        self.unpack();
        let mut ids = std::mem::take(&mut self.touched);
        ids.extend(self.heads.iter().map(|(id, _)| *id));
        ids.sort();
        ids.dedup();
        self.heads.clear();
        self.heads.reserve_exact(ids.len());
        self.heads.extend(
            ids.into_iter()
                .filter_map(|id| streams.head(id).map(|head| (id, head))),
        );
    }

    /// Decodes the heads (and each stream's run of entries) still in the
    /// file's bytes, for an index that goes on recording.
    fn unpack(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        debug_assert!(self.heads.is_empty() && self.runs.is_empty());
        self.heads.reserve_exact(file.head_count as usize);
        for (id, head, run) in file.heads() {
            self.heads.push((id, head));
            self.runs.extend(run);
        }
    }

    /// Decodes the entries still in the file's bytes, ahead of those
    /// recorded since: for the tail's index, only when it is written (at
    /// the next roll or close). Entries that fail their checksum are
    /// dropped, not written again under a fresh one.
    fn decode_loaded(&mut self) {
        self.unpack();
        let Some(file) = self.loaded.take() else {
            return;
        };
        let runs = std::mem::take(&mut self.runs);
        if !file.is_intact() {
            return;
        }
        let recorded = std::mem::take(&mut self.entries);
        let loaded: usize = runs.iter().map(|r| r.len as usize).sum();
        self.entries.reserve_exact(loaded + recorded.len());
        for run in runs {
            self.entries
                .extend((run.start..run.start + run.len).map(|i| (run.id, file.entry(i))));
        }
        self.entries.extend(recorded);
    }

    /// Applies an index read from a file to a registry holding every
    /// earlier segment. Everything is checked before anything is applied,
    /// so a refused file leaves the registry as it was.
    pub(crate) fn apply(&self, names: &Names, streams: &mut Streams) -> Result<(), String> {
        debug_assert!(self.entries.is_empty(), "applying a recorded index");
        let Some(file) = &self.file else {
            return Err("index not read from a file".into());
        };
        if !self.defined.is_empty() && self.defined.start as usize != streams.len() {
            return Err(format!(
                "stream definition {} out of order",
                self.defined.start
            ));
        }
        // Heads are in id order (checked when read): the last has the
        // largest id.
        let known = streams.len() + self.defined.len();
        if let Some(id) = file.last_head.filter(|&id| id as usize >= known) {
            return Err(format!("head of undefined stream {id}"));
        }
        streams
            .insert_all(names, self.defined.len(), file.name_bytes, file.names())
            .map_err(|e| format!("stream definitions: {e:?}"))?;
        if streams.len() != known {
            return Err("stream definitions unreadable".into());
        }
        let source = self
            .loaded
            .as_ref()
            .map(|entries| streams.add_entries_file(Arc::clone(entries)));
        if source.is_some() {
            streams.reserve_lists(file.new_runs);
        }
        for (id, head, run) in file.heads() {
            streams.set_head(id, head);
            if let (Some(source), Some(run)) = (source, run) {
                streams.add_file_run(source, run);
            }
        }
        Ok(())
    }

    /// Writes the index file (temporary name, then rename). Not fsynced: a
    /// torn or lost file only costs a rescan, and it is written only once the
    /// data it describes is durable. [`SegmentIndex::finalize`] first.
    ///
    /// Entries go out grouped by stream (a stable sort, so each stream's
    /// stay in version order), and each head says how many of them are its
    /// stream's and the first one's version: open then hands the registry
    /// one run per stream without reading the entries. The sort runs here,
    /// in a sync round or at a close, never under the tail lock.
    pub(crate) fn write(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
        log_id: u128,
        names: &Names,
    ) -> Result<()> {
        debug_assert!(self.touched.is_empty(), "index written before finalize");
        self.decode_loaded();
        self.entries.sort_by_key(|&(id, _)| id);
        let path = dir.join(layout::index_file(self.base));
        let tmp = layout::tmp_path(&path);
        let heads = &self.heads;
        let entries = &self.entries;
        (|| {
            let runs = head_runs(heads, entries)?;
            // Encoded once: the header carries their CRC, the file's end
            // the bytes.
            let entry_bytes: Vec<u8> = entries
                .iter()
                .flat_map(|(_, e)| [e.version.to_le_bytes(), e.frame.to_le_bytes()])
                .flatten()
                .collect();
            debug_assert_eq!(entry_bytes.len(), entries.len() * ENTRY_BYTES);
            let file = storage.create(&tmp)?;
            let mut crc = crc32fast::Hasher::new();
            let mut out =
                BufWriter::with_capacity(1 << 20, StorageWriter::new(storage, &file, &tmp));
            let mut put = |bytes: &[u8]| -> std::io::Result<()> {
                crc.update(bytes);
                out.write_all(bytes)
            };
            put(&MAGIC)?;
            put(&VERSION.to_le_bytes())?;
            put(&(self.times.len() as u32).to_le_bytes())?;
            put(&log_id.to_le_bytes())?;
            put(&self.base.to_le_bytes())?;
            put(&self.covered.to_le_bytes())?;
            put(&(self.defined.len() as u32).to_le_bytes())?;
            put(&(heads.len() as u32).to_le_bytes())?;
            put(&(entries.len() as u32).to_le_bytes())?;
            put(&crc32fast::hash(&entry_bytes).to_le_bytes())?;
            for id in self.defined.clone() {
                let name = names
                    .get(id as usize)
                    .ok_or_else(|| std::io::Error::other(format!("stream {id} has no name")))?;
                put(&id.to_le_bytes())?;
                put(&(name.len() as u16).to_le_bytes())?;
                put(name.as_bytes())?;
            }
            for ((id, head), (count, first_version)) in heads.iter().zip(runs) {
                put(&id.to_le_bytes())?;
                put(&head.last_version.to_le_bytes())?;
                put(&head.last_frame.to_le_bytes())?;
                put(&count.to_le_bytes())?;
                put(&first_version.to_le_bytes())?;
            }
            put(&self.last_us.to_le_bytes())?;
            for t in &self.times {
                put(&t.timestamp_us.to_le_bytes())?;
                put(&t.offset.to_le_bytes())?;
            }
            out.write_all(&crc.finalize().to_le_bytes())?;
            out.write_all(&entry_bytes)?;
            out.into_inner().map_err(|e| e.into_error())?;
            storage.rename(&tmp, &path)
        })()
        .map_err(|e| Error::io(&path, e))
    }

    /// Hands the time index read from the file to `times`, the segment's.
    pub(crate) fn load_times(&mut self, times: &TimeIndex) {
        times.load(std::mem::take(&mut self.times_file), self.last_us);
    }

    /// Reads the index of segment `base` of log `log_id`; `None` (with a
    /// warning unless the file is simply missing) when it cannot be used.
    ///
    /// The file is mapped, not read: reading it copied it into fresh heap
    /// pages, each costing more than decoding the entries on it; the
    /// mapping shares the page cache's, and the registry keeps it for the
    /// entries.
    pub(crate) fn read(dir: &Path, log_id: u128, base: u64) -> Option<SegmentIndex> {
        let path = dir.join(layout::index_file(base));
        let mapped = storage::entry::open_read(&path).and_then(|f| map_index_file(&f));
        let raw = match mapped {
            Ok(map) => Bytes::from_owner(map),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                warn_rebuild(&path, &e.to_string());
                return None;
            }
        };
        match decode(&raw, log_id, base) {
            Ok(index) => Some(index),
            Err(reason) => {
                warn_rebuild(&path, reason);
                None
            }
        }
    }
}

/// What an index file says of its segment, claim by claim, for `verify`
/// to hold against the frames (`verify/index.rs`).
pub(crate) struct Claims {
    pub(crate) covered: u64,
    /// Streams the segment defines: id and name, in id order.
    pub(crate) defined: Vec<(u32, String)>,
    /// Each stream with a frame in the segment, as of its last one there.
    pub(crate) heads: Vec<(u32, Head)>,
    /// The sparse entries by frame offset; `None` when they fail their
    /// checksum (nobody trusts them then: reads walk back-links).
    pub(crate) entries: Option<Vec<(u32, IndexEntry)>>,
    /// Time entries, in offset order.
    pub(crate) times: Vec<TimeEntry>,
    pub(crate) last_us: u64,
}

impl SegmentIndex {
    /// The claims of an index read from a file (`None` for one recorded
    /// in memory).
    pub(crate) fn claims(mut self) -> Option<Claims> {
        let meta = self.file.clone()?;
        let defined = self
            .defined
            .clone()
            .zip(meta.names().map(str::to_string))
            .collect();
        let intact = self.loaded.as_ref().is_none_or(|f| f.is_intact());
        let times = (0..)
            .map_while(|i| TimeEntry::in_file(&self.times_file, i))
            .collect();
        self.decode_loaded();
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_by_key(|(_, e)| e.frame);
        Some(Claims {
            covered: self.covered,
            defined,
            heads: std::mem::take(&mut self.heads),
            entries: intact.then_some(entries),
            times,
            last_us: self.last_us,
        })
    }
}

/// Per head, in order: how many of `entries` (sorted by id) are its
/// stream's, and the first one's version (0 when none).
fn head_runs(
    heads: &[(u32, Head)],
    entries: &[(u32, IndexEntry)],
) -> std::io::Result<Vec<(u32, u64)>> {
    let mut runs = Vec::with_capacity(heads.len());
    let mut rest = entries;
    for &(id, _) in heads {
        let len = rest.iter().take_while(|(e, _)| *e == id).count();
        let first_version = rest
            .first()
            .filter(|_| len > 0)
            .map_or(0, |(_, e)| e.version);
        runs.push((len as u32, first_version));
        // `len` entries of `rest` were just counted.
        rest = rest.get(len..).unwrap_or_default();
    }
    match rest.first() {
        None => Ok(runs),
        Some((id, _)) => Err(std::io::Error::other(format!(
            "sparse entry of stream {id}, which has no head in the segment"
        ))),
    }
}

fn warn_rebuild(path: &PathBuf, reason: &str) {
    log::warn!("seglog: ignoring index {path:?} ({reason}); rebuilding it from its segment");
}

/// Every slice of the file is taken with a checked split or `get` and every
/// sum of its counts is checked: a damaged or hostile file is refused with a
/// reason, never a panic.
#[deny(clippy::arithmetic_side_effects)]
fn decode(raw: &Bytes, log_id: u128, base: u64) -> std::result::Result<SegmentIndex, &'static str> {
    let header = read_header(raw, log_id, base)?;
    let (meta, entry_part) = split_at_entries(raw, &header)?;
    let defs_at = FIXED_BYTES;
    let mut r = ByteReader {
        b: meta.get(defs_at..).ok_or("truncated")?,
    };
    let (defined, name_bytes) = walk_defs(&mut r, header.defs)?;
    // What is left of `meta` once the definitions are walked.
    let heads_at = meta.len().saturating_sub(r.b.len());
    let (last_head, new_runs) = walk_heads(&mut r, header.heads, header.entries, &defined)?;
    let (times, last_us) = walk_times(&mut r, header.times, header.covered)?;
    let times = raw.slice_ref(times);
    if !r.b.is_empty() {
        return Err("trailing bytes");
    }
    let mut index = SegmentIndex::new(base, header.covered);
    index.defined = defined;
    index.times_file = times;
    index.last_us = last_us;
    index.file = Some(FileMeta {
        raw: raw.slice_ref(meta),
        defs_at,
        heads_at,
        head_count: header.heads,
        new_runs,
        name_bytes,
        last_head,
    });
    if header.entries > 0 {
        index.loaded = Some(Arc::new(FileEntries {
            bytes: raw.slice_ref(entry_part),
            crc: header.entries_crc,
            base,
            intact: OnceLock::new(),
        }));
    }
    Ok(index)
}

/// The fixed header's fields past the ones [`read_header`] matches.
struct FileHeader {
    times: u32,
    covered: u64,
    defs: u32,
    heads: u32,
    entries: u32,
    entries_crc: u32,
}

/// Reads the fixed header of `raw`, refusing a file of another format,
/// another log or another segment.
#[deny(clippy::arithmetic_side_effects)]
fn read_header(
    raw: &[u8],
    log_id: u128,
    base: u64,
) -> std::result::Result<FileHeader, &'static str> {
    let mut r = ByteReader { b: raw };
    if r.take(8)? != MAGIC || r.u32()? != VERSION {
        return Err("unknown format");
    }
    let times = r.u32()?;
    if r.u128()? != log_id {
        return Err("belongs to another log");
    }
    if r.u64()? != base {
        return Err("belongs to another segment");
    }
    let covered = r.u64()?;
    let (defs, heads, entries) = (r.u32()?, r.u32()?, r.u32()?);
    let entries_crc = r.u32()?;
    debug_assert_eq!(raw.len().checked_sub(r.b.len()), Some(FIXED_BYTES));
    Ok(FileHeader {
        times,
        covered,
        defs,
        heads,
        entries,
        entries_crc,
    })
}

/// Splits `raw` into everything before the entries, whose checksum (stored
/// after it) it checks, and the entries, once the header's counts fit the
/// file.
#[deny(clippy::arithmetic_side_effects)]
fn split_at_entries<'a>(
    raw: &'a [u8],
    header: &FileHeader,
) -> std::result::Result<(&'a [u8], &'a [u8]), &'static str> {
    // The bytes after the fixed header, which `read_header` read whole.
    let room = raw.len().saturating_sub(FIXED_BYTES) as u64;
    // u32 counts times record sizes: far below u64::MAX.
    let entry_bytes = u64::from(header.entries).saturating_mul(ENTRY_BYTES as u64);
    let needed = [
        u64::from(header.defs).saturating_mul(MIN_DEF_BYTES),
        u64::from(header.heads).saturating_mul(HEAD_BYTES),
        TIMES_FIXED_BYTES,
        u64::from(header.times).saturating_mul(TIME_ENTRY_BYTES as u64),
        4,
        entry_bytes,
    ]
    .into_iter()
    .fold(0, u64::saturating_add);
    if needed > room {
        return Err("counts larger than the file");
    }
    // Everything before the entries, and its checksum after it.
    let meta_end = usize::try_from(entry_bytes)
        .ok()
        .and_then(|entry_bytes| raw.len().checked_sub(entry_bytes)?.checked_sub(4))
        .ok_or("counts larger than the file")?;
    let (meta, rest) = raw
        .split_at_checked(meta_end)
        .ok_or("counts larger than the file")?;
    let (stored_crc, entry_part) = rest.split_first_chunk::<4>().ok_or("truncated")?;
    if crc32fast::hash(meta).to_le_bytes() != *stored_crc {
        return Err("checksum mismatch");
    }
    Ok((meta, entry_part))
}

/// Walks `defs` definitions: non-empty UTF-8 names of consecutive ids.
/// Returns the ids they define and the bytes of all their names.
#[deny(clippy::arithmetic_side_effects)]
fn walk_defs(
    r: &mut ByteReader<'_>,
    defs: u32,
) -> std::result::Result<(Range<u32>, usize), &'static str> {
    let mut defined = 0..0;
    let mut name_bytes = 0usize;
    for _ in 0..defs {
        let (id, name) = def(r)?;
        std::str::from_utf8(name).map_err(|_| "name not UTF-8")?;
        if name.is_empty() {
            return Err("empty stream name");
        }
        if defined.is_empty() {
            defined = id..id;
        }
        if id != defined.end {
            return Err("stream definitions not consecutive");
        }
        defined.end = id.checked_add(1).ok_or("stream id out of range")?;
        name_bytes = name_bytes.saturating_add(name.len());
    }
    Ok((defined, name_bytes))
}

/// Walks `heads` heads: in id order, their runs adding up to exactly the
/// file's `entries`. Returns the last head's id and how many runs are of
/// streams in `defined`.
#[deny(clippy::arithmetic_side_effects)]
fn walk_heads(
    r: &mut ByteReader<'_>,
    heads: u32,
    entries: u32,
    defined: &Range<u32>,
) -> std::result::Result<(Option<u32>, usize), &'static str> {
    let mut start = 0u32;
    let mut last_head = None;
    let mut new_runs = 0usize;
    for _ in 0..heads {
        let (id, _, len, _) = head(r)?;
        if last_head.is_some_and(|last| last >= id) {
            return Err("heads not in id order");
        }
        start = start
            .checked_add(len)
            .filter(|&end| end <= entries)
            .ok_or("heads claim more entries than the file holds")?;
        last_head = Some(id);
        new_runs = new_runs.saturating_add(usize::from(len > 0 && defined.contains(&id)));
    }
    if start != entries {
        return Err("entries without a head");
    }
    Ok((last_head, new_runs))
}

/// Walks the time section: the newest commit time, then `count` entries,
/// left in the file's bytes. Only the first entry is checked against the
/// frames the file covers: the rest are under the file's checksum, and a
/// search that meets a wrong one falls back to the segment's start or
/// reports damage there (`read/time.rs`), so an open decodes none.
#[deny(clippy::arithmetic_side_effects)]
fn walk_times<'a>(
    r: &mut ByteReader<'a>,
    count: u32,
    covered: u64,
) -> std::result::Result<(&'a [u8], u64), &'static str> {
    let last_us = r.u64()?;
    // `split_at_entries` checked that `count` entries fit in the file.
    let bytes = r.take((count as usize).saturating_mul(TIME_ENTRY_BYTES))?;
    if let Some(first) = TimeEntry::in_file(bytes, 0)
        && !(HEADER_BYTES..covered).contains(&first.offset)
    {
        return Err("time entries outside the segment's frames");
    }
    Ok((bytes, last_us))
}

/// A file's definitions and heads, in its bytes, as [`decode`] checked
/// them: walked in place instead of decoded into vectors, which at open
/// were fresh heap pages (a page fault each) for data read once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileMeta {
    /// The file up to its entries.
    raw: Bytes,
    defs_at: usize,
    heads_at: usize,
    head_count: u32,
    /// Runs of entries of the streams the file defines.
    new_runs: usize,
    /// Bytes of all the names defined.
    name_bytes: usize,
    /// The id of the last head, the largest.
    last_head: Option<u32>,
}

impl FileMeta {
    /// The names defined, in id order.
    fn names(&self) -> impl Iterator<Item = &str> {
        let mut r = ByteReader {
            b: self
                .raw
                .get(self.defs_at..self.heads_at)
                .unwrap_or_default(),
        };
        // Checked as UTF-8 when the file was read, and the bytes do not
        // change (see `SegmentIndex::read`); a name that somehow were not
        // reads as "", as a record's name does (`Streams::rec_name`).
        // The definitions' bytes end where the heads begin.
        std::iter::from_fn(move || {
            if r.b.is_empty() {
                return None;
            }
            def(&mut r)
                .ok()
                .map(|(_, name)| std::str::from_utf8(name).unwrap_or_default())
        })
    }

    /// Each head with its stream's run of the file's entries, if any.
    fn heads(&self) -> impl Iterator<Item = (u32, Head, Option<FileRun>)> {
        let mut r = ByteReader {
            b: self.raw.get(self.heads_at..).unwrap_or_default(),
        };
        let mut start = 0u32;
        (0..self.head_count).map_while(move |_| {
            let (id, h, len, first_version) = head(&mut r).ok()?;
            let run = (len > 0).then_some(FileRun {
                id,
                start,
                len,
                first_version,
            });
            start += len;
            Some((id, h, run))
        })
    }
}

/// One definition: the stream's id and its name's bytes.
fn def<'a>(r: &mut ByteReader<'a>) -> std::result::Result<(u32, &'a [u8]), &'static str> {
    let id = r.u32()?;
    let len = usize::from(r.u16()?);
    Ok((id, r.take(len)?))
}

/// One head: the stream's id, its head, how many of the file's entries
/// are its own, and the first one's version.
fn head(r: &mut ByteReader<'_>) -> std::result::Result<(u32, Head, u32, u64), &'static str> {
    let id = r.u32()?;
    let head = Head {
        last_version: r.u64()?,
        last_frame: r.u64()?,
    };
    Ok((id, head, r.u32()?, r.u64()?))
}

struct ByteReader<'a> {
    b: &'a [u8],
}

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], &'static str> {
        let (head, rest) = self.b.split_at_checked(n).ok_or("truncated")?;
        self.b = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], &'static str> {
        let (head, rest) = self.b.split_first_chunk::<N>().ok_or("truncated")?;
        self.b = rest;
        Ok(*head)
    }
    fn u16(&mut self) -> std::result::Result<u16, &'static str> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> std::result::Result<u32, &'static str> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> std::result::Result<u64, &'static str> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> std::result::Result<u128, &'static str> {
        Ok(u128::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    // Tests index what they just built.
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn round_trip_apply_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::new();
        let mut streams = Streams::new(2);
        let mut index = SegmentIndex::new(0, 4096);
        let times = TimeIndex::default();
        let mut at = 4096;
        for i in 0..50u64 {
            let name = format!("s-{}", i % 10);
            let head = Head {
                last_version: 0,
                last_frame: at,
            };
            let (defines, rec) = match streams.lookup(&name) {
                Some(id) => {
                    let last = streams.head(id).unwrap().last_version;
                    (false, streams.record(id, last + 1, last + 3, at))
                }
                None => {
                    let id = streams.insert(&names, &name, head).unwrap();
                    (true, streams.record(id, 0, 2, at))
                }
            };
            times.note(at, 1_000 + i);
            at += 200;
            index.record(defines, &rec, defines, at);
        }
        index.finalize(&streams, &times);
        assert_eq!(index.times.len(), 1, "50 frames of 200 bytes: one stride");
        index
            .write(&crate::storage::RealStorage, dir.path(), 9, &names)
            .unwrap();
        let read = SegmentIndex::read(dir.path(), 9, 0).unwrap();
        // The time index and the newest time round-trip.
        let file_times: Vec<TimeEntry> = (0..index.times.len())
            .filter_map(|i| TimeEntry::in_file(&read.times_file, i))
            .collect();
        assert_eq!((&file_times, read.last_us), (&index.times, 1_049));
        let loaded = TimeIndex::default();
        read.clone().load_times(&loaded);
        assert_eq!(
            (loaded.entries(), loaded.last_us()),
            (index.times.clone(), Some(1_049))
        );
        // The file carries the names a recorded index takes from the table.
        let file = read.file.as_ref().expect("read from a file");
        let names_read: Vec<&str> = file.names().collect();
        let names_written: Vec<&str> = index
            .defined
            .clone()
            .map(|id| &*names[id as usize])
            .collect();
        assert_eq!(names_read, names_written);
        // Unpacked, it is the index that was written.
        let mut loaded = read.clone();
        loaded.decode_loaded();
        // (Time entries stay in the file's bytes: compared above.)
        loaded.times_file = Bytes::new();
        loaded.times = index.times.clone();
        assert_eq!(loaded, index);
        // One run per stream with entries, in id order, back to back.
        let mut unpacked = read.clone();
        unpacked.unpack();
        assert!(unpacked.file.is_none());
        assert_eq!(unpacked.heads, index.heads);
        assert_eq!(unpacked.runs.len(), 10);
        assert!(
            unpacked
                .runs
                .windows(2)
                .all(|w| w[0].id < w[1].id && w[0].start + w[0].len == w[1].start)
        );
        let (fresh_names, mut fresh) = (Names::new(), Streams::new(2));
        read.apply(&fresh_names, &mut fresh).unwrap();
        for id in 0..10 {
            assert_eq!(fresh.head(id), streams.head(id));
            assert!(!streams.entries(id).is_empty());
            assert_eq!(fresh.entries(id), streams.entries(id));
            assert_eq!(&*fresh_names[id as usize], &*names[id as usize]);
            // Lookups over runs in the file answer as over recorded ones.
            for v in 0..20 {
                assert_eq!(fresh.entry_above(id, v), streams.entry_above(id, v));
                assert_eq!(
                    fresh.entries_above(id, v, 3),
                    streams.entries_above(id, v, 3)
                );
            }
        }
        assert!(SegmentIndex::read(dir.path(), 8, 0).is_none(), "other log");

        // An entry of a stream without a head in the segment is refused
        // when written.
        let mut lying = index.clone();
        lying.entries.push((
            4_000_000_000,
            IndexEntry {
                version: 0,
                frame: 1 << 20,
            },
        ));
        assert!(
            lying
                .write(&crate::storage::RealStorage, dir.path(), 9, &names)
                .is_err()
        );

        // Damage to the entries is found when they are first used: the
        // heads still apply, the entries are left out of lookups, and the
        // tail's index does not write them again.
        let path = dir.path().join(layout::index_file(0));
        let good = std::fs::read(&path).unwrap();
        let mut raw = good.clone();
        let last = raw.len() - 3;
        raw[last] ^= 4;
        std::fs::write(&path, &raw).unwrap();
        let damaged = SegmentIndex::read(dir.path(), 9, 0).expect("heads check out");
        let (damaged_names, mut partial) = (Names::new(), Streams::new(2));
        damaged.apply(&damaged_names, &mut partial).unwrap();
        for id in 0..10 {
            assert_eq!(partial.head(id), streams.head(id));
            assert_eq!(partial.entries(id), Vec::new());
            assert_eq!(partial.entry_above(id, 0), None);
        }
        let mut rewritten = damaged.clone();
        rewritten
            .write(&crate::storage::RealStorage, dir.path(), 9, &names)
            .unwrap();
        let mut rewritten = SegmentIndex::read(dir.path(), 9, 0).unwrap();
        rewritten.unpack();
        assert!(rewritten.runs.is_empty() && rewritten.loaded.is_none());

        // Damage anywhere before the entries: the file is not used.
        let mut raw = good.clone();
        raw[70] ^= 4;
        std::fs::write(&path, &raw).unwrap();
        assert!(SegmentIndex::read(dir.path(), 9, 0).is_none(), "damaged");
        // Nor is a file of the earlier format.
        let mut raw = good;
        raw[8] = 1;
        std::fs::write(&path, &raw).unwrap();
        assert!(SegmentIndex::read(dir.path(), 9, 0).is_none(), "version 1");
    }

    /// A file of ten streams with entries, as `round_trip_apply_and_damage`
    /// writes it.
    fn written_file() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::new();
        let mut streams = Streams::new(2);
        let mut index = SegmentIndex::new(0, 4096);
        let times = TimeIndex::default();
        let mut at = 4096;
        for i in 0..200u64 {
            let name = format!("s-{}", i % 10);
            let (defines, rec) = match streams.lookup(&name) {
                Some(id) => {
                    let last = streams.head(id).unwrap().last_version;
                    (false, streams.record(id, last + 1, last + 3, at))
                }
                None => {
                    let head = Head {
                        last_version: 0,
                        last_frame: at,
                    };
                    let id = streams.insert(&names, &name, head).unwrap();
                    (true, streams.record(id, 0, 2, at))
                }
            };
            // A stride every ~80 frames: a few time entries.
            times.note(at, 5_000 + i);
            at += 200;
            index.record(defines, &rec, defines, at);
        }
        index.finalize(&streams, &times);
        assert!(index.times.len() > 1);
        index
            .write(&crate::storage::RealStorage, dir.path(), 9, &names)
            .unwrap();
        std::fs::read(dir.path().join(layout::index_file(0))).unwrap()
    }

    /// Writes the checksum over the header, definitions and heads where
    /// the header's entry count places it, so that damage reaches the
    /// checks behind the checksum, as a file crafted to pass it would.
    fn reseal(raw: &mut [u8]) {
        let Some(count) = raw.get(56..60) else {
            return;
        };
        let entries = u32::from_le_bytes(count.try_into().unwrap()) as usize;
        let Some(meta_end) = raw.len().checked_sub(entries * ENTRY_BYTES + 4) else {
            return;
        };
        let crc = crc32fast::hash(&raw[..meta_end]);
        raw[meta_end..meta_end + 4].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes `raw` and, if it is accepted, uses it as open and the tail's
    /// index do: whatever the bytes, nothing panics. (Lookups are left
    /// out: the registry asserts, in debug builds, that a head's first
    /// version is its first entry's, which a file resealed here need not
    /// hold.)
    /// Returns whether the file was accepted.
    fn use_file(raw: &[u8]) -> bool {
        let Ok(index) = decode(&Bytes::copy_from_slice(raw), 9, 0) else {
            return false;
        };
        let (names, mut streams) = (Names::new(), Streams::new(2));
        let _ = index.apply(&names, &mut streams);
        let mut unpacked = index.clone();
        unpacked.decode_loaded();
        let times = TimeIndex::default();
        unpacked.load_times(&times);
        let _ = times.last_before(5_100);
        true
    }

    /// An index file is read from disk: no byte changed, no truncation and
    /// no count at its extremes makes decoding or applying it panic, even
    /// with the checksum made to match.
    #[test]
    fn hostile_files_are_refused_without_panicking() {
        let good = written_file();
        assert!(use_file(&good));
        let mut accepted = 0;
        for at in 0..good.len() {
            for xor in [0x01, 0x80, 0xff] {
                let mut raw = good.clone();
                raw[at] ^= xor;
                reseal(&mut raw);
                accepted += usize::from(use_file(&raw));
            }
        }
        // Names, versions, frames and entries take any value: the walks
        // behind the checksum were reached.
        assert!(accepted > good.len(), "{accepted} accepted");
        for cut in 0..good.len() {
            let mut raw = good[..cut].to_vec();
            reseal(&mut raw);
            use_file(&raw);
        }
        // The time entries' count, then the definitions', heads' and
        // entries'.
        for count_at in [12, 48, 52, 56] {
            for count in [u32::MAX, u32::MAX - 1, 1 << 28, 11, 9] {
                let mut raw = good.clone();
                raw[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
                reseal(&mut raw);
                use_file(&raw);
            }
        }

        // A definition of the last id there is: the range of defined ids
        // would end past u32::MAX.
        let mut raw = Vec::new();
        raw.extend_from_slice(&MAGIC);
        raw.extend_from_slice(&VERSION.to_le_bytes());
        raw.extend_from_slice(&[0; 4]);
        raw.extend_from_slice(&9u128.to_le_bytes());
        raw.extend_from_slice(&0u64.to_le_bytes());
        raw.extend_from_slice(&4096u64.to_le_bytes());
        for count in [1u32, 0, 0] {
            raw.extend_from_slice(&count.to_le_bytes());
        }
        raw.extend_from_slice(&crc32fast::hash(&[]).to_le_bytes());
        raw.extend_from_slice(&u32::MAX.to_le_bytes());
        raw.extend_from_slice(&1u16.to_le_bytes());
        raw.push(b'a');
        // The time section: no newest time, no entries.
        raw.extend_from_slice(&0u64.to_le_bytes());
        let crc = crc32fast::hash(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode(&Bytes::from(raw), 9, 0).err(),
            Some("stream id out of range")
        );
    }
}
