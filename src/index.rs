//! Per-segment index files (`{base:020}.idx`): what one segment adds to the
//! stream registry (stream definitions, each touched stream's last version
//! and frame, the sparse entries), so open applies a few records per stream
//! instead of decoding every frame.
//!
//! Derived data: written after the segment's data is durable (sealed
//! segments) or at a clean close (the active segment's prefix); a missing,
//! damaged or stale file is ignored with a warning and the segment is
//! scanned instead. Segments stay the only source of truth.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::{Error, Result};
use crate::storage::{self, Storage, StorageWriter};
use crate::streams::{Head, IndexEntry, Names, Recorded, Streams};

const MAGIC: [u8; 8] = *b"SEGLOGIX";
const VERSION: u32 = 1;
const FIXED_BYTES: usize = 8 + 4 + 4 + 16 + 8 + 8 + 4 + 4 + 4 + 4;
/// Smallest record of each kind, to bound counts by the file's size.
const MIN_DEF_BYTES: u64 = 4 + 2 + 1;
const HEAD_BYTES: u64 = 4 + 8 + 8;
const ENTRY_BYTES: u64 = 4 + 8 + 8;

/// The file name of the index of the segment starting at `base`.
pub(crate) fn file_name(base: u64) -> String {
    format!("{base:020}.idx")
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
    /// The names of `defined`, only when the index was read from a file (to
    /// apply it): slices of the file's bytes, which the registry copies, so
    /// only the tail segment's index, kept until the next roll, holds them.
    names: Vec<ByteString>,
    /// Streams whose first frame in this segment was recorded since the
    /// heads were last taken: one push per stream and segment, not one map
    /// update per append.
    touched: Vec<u32>,
    /// Heads as of `covered`, by id: read from the file, or taken from the
    /// registry by [`SegmentIndex::finalize`].
    heads: Vec<(u32, Head)>,
    entries: Vec<(u32, IndexEntry)>,
    /// Entries of a file, still in the file's bytes: [`ENTRY_BYTES`] each
    /// (id, version, frame). Open applies them from here, so each entry is
    /// decoded once, straight into its stream's list, and no copy of the
    /// whole file's entries is allocated (fresh pages cost ~1 us each here).
    loaded: Bytes,
}

/// One entry of a file: the stream id and the entry.
fn decode_entry(raw: &[u8; ENTRY_BYTES as usize]) -> (u32, IndexEntry) {
    let [
        i0,
        i1,
        i2,
        i3,
        v0,
        v1,
        v2,
        v3,
        v4,
        v5,
        v6,
        v7,
        f0,
        f1,
        f2,
        f3,
        f4,
        f5,
        f6,
        f7,
    ] = *raw;
    (
        u32::from_le_bytes([i0, i1, i2, i3]),
        IndexEntry {
            version: u64::from_le_bytes([v0, v1, v2, v3, v4, v5, v6, v7]),
            frame: u64::from_le_bytes([f0, f1, f2, f3, f4, f5, f6, f7]),
        },
    )
}

/// The stream id of one entry of a file.
fn entry_id(raw: &[u8; ENTRY_BYTES as usize]) -> u32 {
    u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])
}

/// Runs of consecutive file entries of one stream.
fn runs(loaded: &[u8]) -> impl Iterator<Item = &[[u8; ENTRY_BYTES as usize]]> {
    let (records, _) = loaded.as_chunks::<{ ENTRY_BYTES as usize }>();
    records.chunk_by(|a, b| entry_id(a) == entry_id(b))
}

impl SegmentIndex {
    /// An empty index of the segment at `base`, describing frames up to `covered`.
    pub(crate) fn new(base: u64, covered: u64) -> Self {
        SegmentIndex {
            base,
            covered,
            defined: 0..0,
            names: Vec::new(),
            touched: Vec::new(),
            heads: Vec::new(),
            entries: Vec::new(),
            loaded: Bytes::new(),
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
    pub(crate) fn finalize(&mut self, streams: &Streams) {
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

    /// Sparse entries the index holds.
    pub(crate) fn entry_count(&self) -> usize {
        self.entries.len() + self.loaded.len() / ENTRY_BYTES as usize
    }

    /// Decodes the entries still in the file's bytes, ahead of those
    /// recorded since: for the tail's index, which goes on recording.
    pub(crate) fn decode_loaded(&mut self) {
        if self.loaded.is_empty() {
            return;
        }
        let (records, _) = self.loaded.as_chunks::<{ ENTRY_BYTES as usize }>();
        let recorded = std::mem::take(&mut self.entries);
        self.entries.reserve_exact(records.len() + recorded.len());
        self.entries.extend(records.iter().map(decode_entry));
        self.entries.extend(recorded);
        self.loaded = Bytes::new();
    }

    /// Adds to `counts[id]` the file entries this index holds for each
    /// stream `id`, for streams defined here or in the indexes counted
    /// before (`*known` of them, updated): the others are left for
    /// [`SegmentIndex::apply`] to refuse, so `counts` stays as long as the
    /// definitions the files hold.
    pub(crate) fn count_entries(&self, counts: &mut Vec<u32>, known: &mut u32) {
        if !self.defined.is_empty() {
            *known = (*known).max(self.defined.end);
        }
        for run in runs(&self.loaded) {
            let id = entry_id(&run[0]);
            if id >= *known {
                continue;
            }
            let id = id as usize;
            if counts.len() <= id {
                counts.resize(id + 1, 0);
            }
            counts[id] = counts[id].saturating_add(run.len() as u32);
        }
    }

    /// Applies an index read from a file to a registry holding every
    /// earlier segment.
    pub(crate) fn apply(&self, names: &Names, streams: &mut Streams) -> Result<(), String> {
        debug_assert!(self.entries.is_empty(), "applying a recorded index");
        if !self.defined.is_empty() && self.defined.start as usize != streams.len() {
            return Err(format!(
                "stream definition {} out of order",
                self.defined.start
            ));
        }
        if self.names.len() != self.defined.len() {
            return Err("stream definitions without their names".into());
        }
        streams
            .insert_all(names, &self.names)
            .map_err(|e| format!("stream definitions: {e:?}"))?;
        for &(id, head) in &self.heads {
            if id as usize >= streams.len() {
                return Err(format!("head of undefined stream {id}"));
            }
            streams.set_head(id, head);
        }
        // Files group entries by stream (older ones may not): one extend
        // per run of one stream's entries.
        for run in runs(&self.loaded) {
            let id = entry_id(&run[0]);
            if id as usize >= streams.len() {
                return Err(format!("entry of undefined stream {id}"));
            }
            streams.extend_entries(id, run.iter().map(|raw| decode_entry(raw).1));
        }
        Ok(())
    }

    /// Writes the index file (temporary name, then rename). Not fsynced: a
    /// torn or lost file only costs a rescan, and it is written only once the
    /// data it describes is durable. [`SegmentIndex::finalize`] first.
    ///
    /// Entries go out grouped by stream (a stable sort, so each stream's
    /// stay in version order): loading then extends each stream's list
    /// once, sized, instead of growing it entry by entry. The sort runs
    /// here, on the sync thread or at a close, never under the tail lock.
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
        let path = dir.join(file_name(self.base));
        let tmp = storage::tmp_path(&path);
        let heads = &self.heads;
        (|| {
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
            put(&[0; 4])?;
            put(&log_id.to_le_bytes())?;
            put(&self.base.to_le_bytes())?;
            put(&self.covered.to_le_bytes())?;
            put(&(self.defined.len() as u32).to_le_bytes())?;
            put(&(heads.len() as u32).to_le_bytes())?;
            put(&(self.entries.len() as u32).to_le_bytes())?;
            put(&[0; 4])?;
            for id in self.defined.clone() {
                let name = names
                    .get(id as usize)
                    .ok_or_else(|| std::io::Error::other(format!("stream {id} has no name")))?;
                put(&id.to_le_bytes())?;
                put(&(name.len() as u16).to_le_bytes())?;
                put(name.as_bytes())?;
            }
            for (id, head) in heads {
                put(&id.to_le_bytes())?;
                put(&head.last_version.to_le_bytes())?;
                put(&head.last_frame.to_le_bytes())?;
            }
            for (id, entry) in &self.entries {
                put(&id.to_le_bytes())?;
                put(&entry.version.to_le_bytes())?;
                put(&entry.frame.to_le_bytes())?;
            }
            out.write_all(&crc.finalize().to_le_bytes())?;
            out.into_inner().map_err(|e| e.into_error())?;
            storage.rename(&tmp, &path)
        })()
        .map_err(|e| Error::io(&path, e))
    }

    /// Reads the index of segment `base` of log `log_id`; `None` (with a
    /// warning unless the file is simply missing) when it cannot be used.
    ///
    /// The file is mapped, not read: reading it copied it into fresh heap
    /// pages, and on this machine a fresh page costs ~1 us, more than
    /// decoding the entries on it; the mapping shares the page cache's.
    #[allow(unsafe_code)]
    pub(crate) fn read(dir: &Path, log_id: u128, base: u64) -> Option<SegmentIndex> {
        let path = dir.join(file_name(base));
        // SAFETY: index files are never changed in place: each is written
        // under a temporary name and renamed over the old one, which leaves
        // an open file's bytes (its own inode) as they were. Nothing
        // truncates a published index file, so the mapping cannot fault.
        let mapped = File::open(&path).and_then(|f| unsafe { memmap2::Mmap::map(&f) });
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

fn warn_rebuild(path: &PathBuf, reason: &str) {
    log::warn!("seglog: ignoring index {path:?} ({reason}); rebuilding it from its segment");
}

fn decode(raw: &Bytes, log_id: u128, base: u64) -> std::result::Result<SegmentIndex, &'static str> {
    let body_len = raw.len().checked_sub(4).ok_or("too short")?;
    let (body, crc) = raw.split_at(body_len);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch");
    }
    let mut r = Reader { b: body };
    if r.take(8)? != MAGIC || r.u32()? != VERSION {
        return Err("unknown format");
    }
    r.take(4)?;
    if r.u128()? != log_id {
        return Err("belongs to another log");
    }
    if r.u64()? != base {
        return Err("belongs to another segment");
    }
    let covered = r.u64()?;
    let (defs, heads, entries) = (r.u32()?, r.u32()?, r.u32()?);
    r.take(4)?;
    let room = (body.len() - FIXED_BYTES) as u64;
    let needed = u64::from(defs) * MIN_DEF_BYTES
        + u64::from(heads) * HEAD_BYTES
        + u64::from(entries) * ENTRY_BYTES;
    if needed > room {
        return Err("counts larger than the file");
    }
    let mut index = SegmentIndex::new(base, covered);
    index.names.reserve(defs as usize);
    for _ in 0..defs {
        let id = r.u32()?;
        let len = usize::from(r.u16()?);
        let name =
            ByteString::try_from(raw.slice_ref(r.take(len)?)).map_err(|_| "name not UTF-8")?;
        if name.is_empty() {
            return Err("empty stream name");
        }
        if index.names.is_empty() {
            index.defined = id..id;
        }
        if id != index.defined.end {
            return Err("stream definitions not consecutive");
        }
        index.defined.end = id + 1;
        index.names.push(name);
    }
    index.heads.reserve(heads as usize);
    for _ in 0..heads {
        let id = r.u32()?;
        let head = Head {
            last_version: r.u64()?,
            last_frame: r.u64()?,
        };
        if index.heads.last().is_some_and(|(last, _)| *last >= id) {
            return Err("heads not in id order");
        }
        index.heads.push((id, head));
    }
    let loaded = r.take(entries as usize * ENTRY_BYTES as usize)?;
    index.loaded = raw.slice_ref(loaded);
    if !r.b.is_empty() {
        return Err("trailing bytes");
    }
    Ok(index)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], &'static str> {
        if self.b.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], &'static str> {
        self.take(N)?.try_into().map_err(|_| "truncated")
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
    use super::*;

    #[test]
    fn round_trip_apply_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::new();
        let mut streams = Streams::new(2);
        let mut index = SegmentIndex::new(0, 4096);
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
            at += 200;
            index.record(defines, &rec, defines, at);
        }
        index.finalize(&streams);
        index
            .write(&crate::storage::RealStorage, dir.path(), 9, &names)
            .unwrap();
        let read = SegmentIndex::read(dir.path(), 9, 0).unwrap();
        let mut loaded = read.clone();
        loaded.decode_loaded();
        // The file carries the names a recorded index takes from the table.
        let names_read: Vec<&str> = loaded.names.iter().map(|n| &**n).collect();
        let names_written: Vec<&str> = index
            .defined
            .clone()
            .map(|id| &*names[id as usize])
            .collect();
        assert_eq!(names_read, names_written);
        assert_eq!(
            SegmentIndex {
                names: Vec::new(),
                ..loaded.clone()
            },
            index
        );
        // Written grouped by stream, each stream's entries in order.
        assert!(loaded.entries.is_sorted_by_key(|&(id, _)| id));
        let (fresh_names, mut fresh) = (Names::new(), Streams::new(2));
        read.apply(&fresh_names, &mut fresh).unwrap();
        // A file from before the grouping (entries in append order) loads
        // the same.
        let (records, _) = read.loaded.as_chunks::<{ ENTRY_BYTES as usize }>();
        let mut records = records.to_vec();
        records.sort_by_key(|raw| decode_entry(raw).1.frame);
        let interleaved = SegmentIndex {
            loaded: Bytes::from(records.concat()),
            ..read.clone()
        };
        let mut decoded = interleaved.clone();
        decoded.decode_loaded();
        assert!(!decoded.entries.is_sorted_by_key(|&(id, _)| id));
        let (old_names, mut old) = (Names::new(), Streams::new(2));
        interleaved.apply(&old_names, &mut old).unwrap();
        for id in 0..10 {
            assert_eq!(fresh.head(id), streams.head(id));
            assert!(!streams.entries(id).is_empty());
            assert_eq!(fresh.entries(id), streams.entries(id));
            assert_eq!(old.entries(id), streams.entries(id));
            assert_eq!(&*fresh_names[id as usize], &*names[id as usize]);
        }
        assert!(SegmentIndex::read(dir.path(), 8, 0).is_none(), "other log");
        // Counting sizes lists only for streams the files define: an entry
        // naming any other id (a file that checks but lies) adds nothing,
        // and applying the file refuses it.
        let (mut counts, mut known) = (Vec::new(), 0);
        read.count_entries(&mut counts, &mut known);
        assert_eq!(known, 10);
        assert_eq!(counts.len(), 10);
        assert_eq!(counts.iter().sum::<u32>() as usize, read.entry_count());
        let mut lying = index.clone();
        lying.entries.push((
            4_000_000_000,
            IndexEntry {
                version: 0,
                frame: 1 << 20,
            },
        ));
        lying
            .write(&crate::storage::RealStorage, dir.path(), 9, &names)
            .unwrap();
        let lying = SegmentIndex::read(dir.path(), 9, 0).unwrap();
        let (mut counts, mut known) = (Vec::new(), 0);
        lying.count_entries(&mut counts, &mut known);
        assert_eq!(counts.len(), 10);
        let (lying_names, mut lying_streams) = (Names::new(), Streams::new(2));
        assert_eq!(
            lying.apply(&lying_names, &mut lying_streams),
            Err("entry of undefined stream 4000000000".to_string())
        );
        index
            .write(&crate::storage::RealStorage, dir.path(), 9, &names)
            .unwrap();
        let path = dir.path().join(file_name(0));
        let mut raw = std::fs::read(&path).unwrap();
        raw[70] ^= 4;
        std::fs::write(&path, &raw).unwrap();
        assert!(SegmentIndex::read(dir.path(), 9, 0).is_none(), "damaged");
    }
}
