//! The stream registry: names interned to 32-bit ids, each stream's head
//! (last version, last frame) for expected-version checks and back-links,
//! and its sparse index: one entry per frame that holds a multiple of the
//! index interval `K` as a version (counting from `K`: version 0 alone marks
//! nothing, a stream's first frame is where its back-links end). An entry
//! names its frame's first version, so a creating batch longer than `K`
//! yields an entry at version 0.
//!
//! The writer keeps each stream in one record of a byte arena: its head,
//! its id and its name, side by side. The name table maps a name's hash to
//! the record's offset, so an append to a stream that is not in cache reads
//! one bucket line and then one record, which holds everything the append
//! needs. (With the name in the readers' table and the head in an array of
//! its own, an append at random over 1M streams missed the cache four
//! times.)
//!
//! Memory per stream: a record of 22 bytes plus the name, rounded up to 8;
//! 4 bytes mapping its id to the record; 9 to 18 bytes in the name table; a
//! 4-byte sparse-list slot; and for readers, the name again, cut from a
//! shared 64 KiB chunk, in the lock-free id -> name table (a 32-byte
//! `ByteString` in a boxcar slot). Streams longer than `K` events add a
//! list of runs of entries ([`sparse`]): in place in the index files for
//! what open loaded, 16 bytes each for entries recorded since.

use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::BytesMut;
use bytestring::ByteString;

use hashbrown::DefaultHashBuilder;

use self::sparse::Sparse;
use self::table::{NameTable, Whereabouts};

use crate::frame::{EventsFrame, NO_PREV_FRAME};
use crate::index::{FileEntries, FileRun};
use crate::limits;

pub(crate) mod deleted;
mod sparse;
mod table;
mod zeroed;

/// A stream's state at the tail of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) last_version: u64,
    /// Log offset of the stream's last frame (the next frame's back-link).
    pub(crate) last_frame: u64,
}

/// A sparse index entry: the frame at log offset `frame` starts at `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) version: u64,
    pub(crate) frame: u64,
}

/// What recording a frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) id: u32,
    pub(crate) head: Head,
    /// The sparse entry the frame added, if it holds a multiple of `K`.
    pub(crate) entry: Option<IndexEntry>,
}

/// Why a stream could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// The name is registered already.
    Duplicate,
    /// The log holds the most streams it can.
    Full,
}

/// A name's hash from [`Lookahead::prefetch`], for the same registry's
/// [`Streams::find_hashed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NameHash(u32);

/// Starts a registry lookup without the registry: appenders call it before
/// they take the tail lock. For a stream out of cache the name table line
/// is a cache miss, as long as a whole append to a hot stream; with the prefetch issued first, validating the batch,
/// reading the clock and queueing for the lock overlap it, and under
/// contention the miss no longer lengthens the critical section.
#[derive(Debug)]
pub(crate) struct Lookahead {
    hasher: DefaultHashBuilder,
    table: Arc<Whereabouts>,
}

impl Lookahead {
    /// Hashes `name` and starts loading the table line
    /// [`Streams::find_hashed`] will read for it.
    pub(crate) fn prefetch(&self, name: &str) -> NameHash {
        let hash = name_hash(&self.hasher, name);
        self.table.prefetch(hash);
        NameHash(hash)
    }
}

/// A name's hash as the table keeps it: the high 32 bits of a 64-bit hash.
fn name_hash(hasher: &DefaultHashBuilder, name: &str) -> u32 {
    (hasher.hash_one(name) >> 32) as u32
}

/// From this many bytes of name table, [`Streams::insert_all`] sorts what
/// it inserts: a quarter of a common L2 cache, so the table and the records
/// it points at still fit there below it.
const SORTED_INSERT_TABLE_BYTES: usize = 256 << 10;

/// Byte layout of a record in the arena: the head, the id, the name's
/// length, the name; each record starts at a multiple of 8.
const REC_VERSION: usize = 0;
const REC_FRAME: usize = 8;
const REC_ID: usize = 16;
const REC_NAME_LEN: usize = 20;
const REC_NAME: usize = 22;
const REC_ALIGN: usize = 8;

/// A stream found in the registry: its id and where its record is, so the
/// append that looked it up updates the head without a second search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) id: u32,
    pub(crate) head: Head,
    /// The record's offset in the arena, in units of [`REC_ALIGN`].
    rec: u32,
}

/// Names by id, readable by any thread without a lock. Each is a slice of
/// a shared chunk (see [`Streams::share_name`]), not an allocation of its
/// own.
pub(crate) type Names = boxcar::Vec<ByteString>;

/// Bytes of each chunk the readers' names are cut from.
const NAME_CHUNK_BYTES: usize = 64 << 10;

/// Name -> stream records (id, head) and sparse indexes; owned by whoever
/// holds the tail.
#[derive(Debug)]
pub(crate) struct Streams {
    /// Name hash -> record offset (in units of [`REC_ALIGN`]).
    table: NameTable,
    /// The records, back to back.
    arena: Vec<u8>,
    /// Record offset of each stream, by id.
    rec_of: Vec<u32>,
    sparse: Sparse,
    /// The chunk the next readers' names are cut from.
    name_chunk: BytesMut,
    hasher: DefaultHashBuilder,
    interval: u64,
}

/// Why a frame cannot be applied to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApplyError {
    UnknownStream(u32),
    DefinitionOutOfOrder { id: u32, expected: u32 },
    VersionGap { expected: u64, found: u64 },
    DuplicateName,
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::UnknownStream(id) => write!(f, "frame refers to undefined stream id {id}"),
            ApplyError::DefinitionOutOfOrder { id, expected } => {
                write!(
                    f,
                    "stream definition with id {id} where {expected} was next"
                )
            }
            ApplyError::VersionGap { expected, found } => {
                write!(
                    f,
                    "stream version {found} follows where {expected} was expected"
                )
            }
            ApplyError::DuplicateName => write!(f, "stream name defined twice"),
        }
    }
}

impl Streams {
    /// An empty registry indexing every `interval` versions (at least 1).
    pub(crate) fn new(interval: u64) -> Self {
        Streams {
            table: NameTable::default(),
            arena: Vec::new(),
            rec_of: Vec::new(),
            sparse: Sparse::default(),
            name_chunk: BytesMut::new(),
            hasher: DefaultHashBuilder::default(),
            interval: interval.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rec_of.len()
    }

    /// What an appender needs to start a lookup before taking the lock.
    pub(crate) fn lookahead(&self) -> Lookahead {
        Lookahead {
            hasher: self.hasher.clone(),
            table: self.table.whereabouts(),
        }
    }

    fn word(&self, at: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.arena[at..at + 8]);
        u64::from_le_bytes(b)
    }

    fn rec_head(&self, rec: u32) -> Head {
        let at = rec as usize * REC_ALIGN;
        Head {
            last_version: self.word(at + REC_VERSION),
            last_frame: self.word(at + REC_FRAME),
        }
    }

    fn set_rec_head(&mut self, rec: u32, head: Head) {
        let at = rec as usize * REC_ALIGN;
        self.arena[at + REC_VERSION..at + REC_VERSION + 8]
            .copy_from_slice(&head.last_version.to_le_bytes());
        self.arena[at + REC_FRAME..at + REC_FRAME + 8]
            .copy_from_slice(&head.last_frame.to_le_bytes());
    }

    fn rec_id(&self, rec: u32) -> u32 {
        let at = rec as usize * REC_ALIGN + REC_ID;
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.arena[at..at + 4]);
        u32::from_le_bytes(b)
    }

    /// The name bytes of record `rec`.
    fn rec_name_bytes(&self, rec: u32) -> &[u8] {
        let at = rec as usize * REC_ALIGN;
        let len = usize::from(u16::from_le_bytes([
            self.arena[at + REC_NAME_LEN],
            self.arena[at + REC_NAME_LEN + 1],
        ]));
        &self.arena[at + REC_NAME..at + REC_NAME + len]
    }

    /// The name in record `rec`. Records only ever hold whole `&str`s, so
    /// the bytes are UTF-8; a record that somehow were not reads as "".
    fn rec_name(&self, rec: u32) -> &str {
        std::str::from_utf8(self.rec_name_bytes(rec)).unwrap_or_default()
    }

    fn rec_is_named(&self, rec: u32, name: &str) -> bool {
        self.rec_name_bytes(rec) == name.as_bytes()
    }

    /// The stream named `name`: its id, head and record, from one bucket
    /// line and one record.
    pub(crate) fn find(&self, name: &str) -> Option<Found> {
        self.find_hashed(NameHash(name_hash(&self.hasher, name)), name)
    }

    /// [`Streams::find`] with the hash [`Lookahead::prefetch`] returned for
    /// `name`.
    pub(crate) fn find_hashed(&self, hash: NameHash, name: &str) -> Option<Found> {
        debug_assert_eq!(hash.0, name_hash(&self.hasher, name));
        let rec = self
            .table
            .find(hash.0, |rec| self.rec_is_named(rec, name))?;
        Some(Found {
            id: self.rec_id(rec),
            head: self.rec_head(rec),
            rec,
        })
    }

    /// The id of `name`, if the stream exists.
    #[cfg(test)]
    pub(crate) fn lookup(&self, name: &str) -> Option<u32> {
        self.find(name).map(|f| f.id)
    }

    pub(crate) fn head(&self, id: u32) -> Option<Head> {
        self.rec_of.get(id as usize).map(|&rec| self.rec_head(rec))
    }

    /// The last version of `name`, if any.
    pub(crate) fn version(&self, name: &str) -> Option<u64> {
        self.find(name).map(|f| f.head.last_version)
    }

    /// Makes room for `additional` more streams whose names total
    /// `name_bytes` (loading an index file), so registering them never
    /// regrows a table.
    pub(crate) fn reserve(&mut self, additional: usize, name_bytes: usize) {
        self.table.reserve(additional);
        self.arena
            .reserve(additional * (REC_NAME + REC_ALIGN - 1) + name_bytes);
        self.rec_of.reserve(additional);
        self.sparse.reserve(additional);
    }

    /// Registers a new stream and returns its id. The duplicate check and
    /// the insertion probe the same bucket, so a new stream costs one miss.
    pub(crate) fn insert(
        &mut self,
        names: &Names,
        name: &str,
        head: Head,
    ) -> Result<u32, InsertError> {
        let hash = name_hash(&self.hasher, name);
        if self
            .table
            .find(hash, |rec| self.rec_is_named(rec, name))
            .is_some()
        {
            return Err(InsertError::Duplicate);
        }
        let (id, rec) = self.push_record(names, name, head)?;
        self.table.insert(hash, rec);
        debug_assert_eq!(self.table.len(), self.rec_of.len());
        Ok(id)
    }

    /// Registers the streams an index file defines, in id order, with empty
    /// heads. Into a table larger than the cache their slots enter sorted by
    /// hash, so the table fills front to back instead of at random: loading
    /// 1M streams missed the cache once per stream before. A smaller table
    /// stays in cache, and sorting was a fifth of the instructions of
    /// reopening 1,000 streams. `count` and `name_bytes` (what the
    /// names total, as the index file's check counted them) size the tables
    /// once.
    pub(crate) fn insert_all<'a>(
        &mut self,
        names: &Names,
        count: usize,
        name_bytes: usize,
        defs: impl Iterator<Item = &'a str>,
    ) -> Result<(), InsertError> {
        self.reserve(count, name_bytes);
        let head = Head {
            last_version: 0,
            last_frame: NO_PREV_FRAME,
        };
        if self.table.heap_bytes() < SORTED_INSERT_TABLE_BYTES {
            for name in defs {
                self.insert(names, name, head)?;
            }
            return Ok(());
        }
        let mut slots = Vec::with_capacity(count);
        for name in defs {
            let (_, rec) = self.push_record(names, name, head)?;
            slots.push(u64::from(name_hash(&self.hasher, name)) << 32 | u64::from(rec));
        }
        slots.sort_unstable();
        for (hash, rec) in slots.into_iter().map(|s| ((s >> 32) as u32, s as u32)) {
            // Names are read only when hashes match: records are in id
            // order, so reading each one here would be a miss again.
            if self
                .table
                .find(hash, |other| self.rec_is_named(other, self.rec_name(rec)))
                .is_some()
            {
                return Err(InsertError::Duplicate);
            }
            self.table.insert(hash, rec);
        }
        debug_assert_eq!(self.table.len(), self.rec_of.len());
        Ok(())
    }

    /// Appends a stream's record and its name for readers, but no slot in
    /// the name table; returns its id and record.
    fn push_record(
        &mut self,
        names: &Names,
        name: &str,
        head: Head,
    ) -> Result<(u32, u32), InsertError> {
        let id = u32::try_from(self.rec_of.len()).map_err(|_| InsertError::Full)?;
        if u64::from(id) >= limits::MAX_STREAMS {
            return Err(InsertError::Full);
        }
        let name_len = u16::try_from(name.len()).map_err(|_| InsertError::Full)?;
        debug_assert_eq!(self.arena.len() % REC_ALIGN, 0);
        let rec = u32::try_from(self.arena.len() / REC_ALIGN)
            .ok()
            .filter(|&r| r < u32::MAX)
            .ok_or(InsertError::Full)?;
        let shared = self.share_name(name);
        let pushed = names.push(shared);
        assert_eq!(pushed, id as usize, "names and records out of step");
        let at = rec as usize * REC_ALIGN;
        let end = (REC_NAME + name.len()).next_multiple_of(REC_ALIGN);
        self.arena.resize(at + REC_NAME, 0);
        self.arena.extend_from_slice(name.as_bytes());
        self.arena.resize(at + end, 0);
        self.arena[at + REC_ID..at + REC_ID + 4].copy_from_slice(&id.to_le_bytes());
        self.arena[at + REC_NAME_LEN..at + REC_NAME_LEN + 2]
            .copy_from_slice(&name_len.to_le_bytes());
        self.set_rec_head(rec, head);
        self.rec_of.push(rec);
        self.sparse.push_stream();
        debug_assert!(self.rec_is_named(rec, name) && self.rec_id(rec) == id);
        Ok((id, rec))
    }

    /// `name` for readers: copied into the current chunk and cut off it,
    /// so a million streams cost a few hundred allocations, not a million
    /// (an `Arc<str>` each was a third of creating a stream, with malloc's
    /// rounding ~48 bytes for a 14-byte name).
    fn share_name(&mut self, name: &str) -> ByteString {
        if self.name_chunk.capacity() - self.name_chunk.len() < name.len() {
            self.name_chunk = BytesMut::with_capacity(NAME_CHUNK_BYTES.max(name.len()));
        }
        self.name_chunk.extend_from_slice(name.as_bytes());
        let bytes = self.name_chunk.split().freeze();
        // The bytes were a `&str`: this never copies or fails.
        ByteString::try_from(bytes).unwrap_or_else(|_| ByteString::from(name))
    }

    /// Overwrites a stream's head (loading an index file).
    pub(crate) fn set_head(&mut self, id: u32, head: Head) {
        if let Some(&rec) = self.rec_of.get(id as usize) {
            self.set_rec_head(rec, head);
        }
    }

    /// Keeps an index file's entries for [`Streams::add_file_run`]; returns
    /// their source.
    pub(crate) fn add_entries_file(&mut self, file: Arc<FileEntries>) -> u32 {
        self.sparse.add_file(file)
    }

    /// Makes room for `lists` more streams' lists of sparse entries.
    pub(crate) fn reserve_lists(&mut self, lists: usize) {
        self.sparse.reserve_lists(lists);
    }

    /// Adds a stream's run of entries of file `source` (loading an index
    /// file): later than any entry the stream has.
    pub(crate) fn add_file_run(&mut self, source: u32, run: FileRun) {
        self.sparse.add_file_run(source, run);
    }

    /// Records a frame of stream `id` holding `first..=last` at log offset
    /// `frame`: the new head, and a sparse entry when the frame holds a
    /// multiple of the interval.
    pub(crate) fn record(&mut self, id: u32, first: u64, last: u64, frame: u64) -> Recorded {
        let head = Head {
            last_version: last,
            last_frame: frame,
        };
        self.set_head(id, head);
        self.entry_for(id, first, last, frame, head)
    }

    /// [`Streams::record`] for a stream just found: no id -> record lookup.
    pub(crate) fn record_found(
        &mut self,
        found: Found,
        first: u64,
        last: u64,
        frame: u64,
    ) -> Recorded {
        let head = Head {
            last_version: last,
            last_frame: frame,
        };
        self.set_rec_head(found.rec, head);
        self.entry_for(found.id, first, last, frame, head)
    }

    fn entry_for(&mut self, id: u32, first: u64, last: u64, frame: u64, head: Head) -> Recorded {
        let boundary = first.div_ceil(self.interval).max(1) * self.interval;
        let entry = (boundary <= last).then_some(IndexEntry {
            version: first,
            frame,
        });
        if let Some(entry) = entry {
            self.sparse.push(id, entry);
        }
        Recorded { id, head, entry }
    }

    /// Stream `id`'s first sparse entry above `version`.
    pub(crate) fn entry_above(&self, id: u32, version: u64) -> Option<IndexEntry> {
        self.sparse.entry_above(id, version)
    }

    /// Stream `id`'s first sparse entry of a frame at or after log offset
    /// `frame`.
    pub(crate) fn entry_from_frame(&self, id: u32, frame: u64) -> Option<IndexEntry> {
        self.sparse.entry_from_frame(id, frame)
    }

    /// Up to `n` of stream `id`'s sparse entries above `version`, oldest
    /// first.
    pub(crate) fn entries_above(&self, id: u32, version: u64, n: usize) -> Vec<IndexEntry> {
        self.sparse.entries_above(id, version, n)
    }

    /// Every usable sparse entry of stream `id`, oldest first.
    #[cfg(test)]
    pub(crate) fn entries(&self, id: u32) -> Vec<IndexEntry> {
        self.sparse.all(id)
    }

    /// Applies a verified frame found at log offset `at` while rebuilding
    /// the registry from segments. `lenient` (repair) accepts version gaps
    /// and undefined ids left by quarantined frames.
    pub(crate) fn apply(
        &mut self,
        names: &Names,
        frame: &EventsFrame<'_>,
        at: u64,
        lenient: bool,
    ) -> Result<Recorded, ApplyError> {
        let first = frame.first_version;
        let last = first + u64::from(frame.event_count) - 1;
        if let Some(name) = frame.defines {
            if lenient {
                // Definitions before it may have been quarantined.
                self.fill_placeholders(names, frame.stream_id)?;
            }
            let expected_id = self.rec_of.len() as u32;
            if frame.stream_id != expected_id {
                return Err(ApplyError::DefinitionOutOfOrder {
                    id: frame.stream_id,
                    expected: expected_id,
                });
            }
            if first != 0 && !lenient {
                return Err(ApplyError::VersionGap {
                    expected: 0,
                    found: first,
                });
            }
            let head = Head {
                last_version: last,
                last_frame: at,
            };
            let id = self.insert(names, name, head).map_err(|e| match e {
                InsertError::Duplicate => ApplyError::DuplicateName,
                InsertError::Full => ApplyError::UnknownStream(frame.stream_id),
            })?;
            return Ok(self.record(id, first, last, at));
        }
        if lenient {
            self.fill_placeholders(names, frame.stream_id + 1)?;
        }
        let Some(prev) = self.head(frame.stream_id) else {
            return Err(ApplyError::UnknownStream(frame.stream_id));
        };
        if !lenient && first != prev.last_version + 1 {
            return Err(ApplyError::VersionGap {
                expected: prev.last_version + 1,
                found: first,
            });
        }
        Ok(self.record(frame.stream_id, first, last, at))
    }
}

impl Streams {
    /// Registers placeholder streams for every id below `upto` not yet
    /// defined: their definitions were quarantined, and the frames of those
    /// streams stay readable under the name `$lost-stream-{id}`.
    fn fill_placeholders(&mut self, names: &Names, upto: u32) -> Result<(), ApplyError> {
        while (self.rec_of.len() as u32) < upto {
            let placeholder = format!("$lost-stream-{}", self.rec_of.len());
            let head = Head {
                last_version: 0,
                last_frame: NO_PREV_FRAME,
            };
            if self.insert(names, &placeholder, head).is_err() {
                return Err(ApplyError::UnknownStream(upto));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_and_heads() {
        let names = Names::new();
        let mut s = Streams::new(32);
        let ahead = s.lookahead();
        for i in 0..1000u64 {
            let id = s
                .insert(
                    &names,
                    &format!("order-{i}"),
                    Head {
                        last_version: 0,
                        last_frame: i * 8,
                    },
                )
                .unwrap();
            assert_eq!(u64::from(id), i);
        }
        assert_eq!(s.lookup("order-517"), Some(517));
        // A lookahead taken before the inserts hashes as the registry does.
        let hash = ahead.prefetch("order-999");
        assert_eq!(s.find_hashed(hash, "order-999").map(|f| f.id), Some(999));
        assert_eq!(s.lookup("order-1000"), None);
        s.set_head(
            517,
            Head {
                last_version: 4,
                last_frame: 1 << 20,
            },
        );
        assert_eq!(s.version("order-517"), Some(4));
        assert_eq!(&*names[517], "order-517");
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    /// Readers' names are cut from shared chunks: across many chunks each
    /// still reads back as itself, and a chunk is shared, not one per name.
    #[test]
    fn names_cut_from_chunks_read_back_whole() {
        let names = Names::new();
        let mut s = Streams::new(32);
        let head = Head {
            last_version: 0,
            last_frame: NO_PREV_FRAME,
        };
        let name = |i: usize| format!("{}-{i}", "x".repeat(i % 200));
        let count = 3 * NAME_CHUNK_BYTES / 100;
        for i in 0..count {
            assert_eq!(s.insert(&names, &name(i), head), Ok(i as u32));
        }
        for i in 0..count {
            assert_eq!(&*names[i], name(i));
        }
        let (a, b) = (names[0].as_bytes(), names[1].as_bytes());
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;

    /// Records of every name length side by side: each keeps its own id,
    /// head and name, and a name that is a prefix of another matches only
    /// itself.
    #[test]
    fn records_of_every_name_length_stay_apart() {
        let names = Names::new();
        let mut s = Streams::new(32);
        let name = |len: usize| "n".repeat(len);
        for len in 1..=limits::MAX_STREAM_NAME_BYTES {
            let head = Head {
                last_version: len as u64,
                last_frame: 8 * len as u64,
            };
            assert_eq!(s.insert(&names, &name(len), head), Ok(len as u32 - 1));
        }
        assert_eq!(
            s.insert(
                &names,
                &name(3),
                Head {
                    last_version: 0,
                    last_frame: 0
                }
            ),
            Err(InsertError::Duplicate)
        );
        for len in 1..=limits::MAX_STREAM_NAME_BYTES {
            let found = s.find(&name(len)).unwrap();
            assert_eq!(found.id, len as u32 - 1);
            assert_eq!(found.head.last_version, len as u64);
            let moved = s.record_found(found, len as u64 + 1, len as u64 + 1, 7);
            assert_eq!(moved.head.last_frame, 7);
            assert_eq!(s.head(found.id), Some(moved.head));
            assert_eq!(&*names[found.id as usize], name(len));
        }
        assert_eq!(s.find(&name(limits::MAX_STREAM_NAME_BYTES + 1)), None);
        assert_eq!(s.find("m"), None);
    }
}

#[cfg(test)]
mod insert_all_tests {
    use super::*;

    /// [`Streams::insert_all`] of `defs`, sized as an index file says.
    fn insert_all(s: &mut Streams, names: &Names, defs: &[&str]) -> Result<(), InsertError> {
        let bytes = defs.iter().map(|d| d.len()).sum();
        s.insert_all(names, defs.len(), bytes, defs.iter().copied())
    }

    /// Both ways in: slot by slot into a small table, sorted by hash into
    /// one past [`SORTED_INSERT_TABLE_BYTES`].
    #[test]
    fn loads_in_id_order_and_refuses_duplicates() {
        for (count, sorted) in [(5_000, false), (20_000, true)] {
            let names = Names::new();
            let mut s = Streams::new(32);
            s.insert(
                &names,
                "a",
                Head {
                    last_version: 3,
                    last_frame: 8,
                },
            )
            .unwrap();
            let batch: Vec<String> = (0..count).map(|i| format!("s-{i}")).collect();
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            insert_all(&mut s, &names, &refs).unwrap();
            assert_eq!(
                s.table.heap_bytes() >= SORTED_INSERT_TABLE_BYTES,
                sorted,
                "{count} streams"
            );
            for (i, name) in refs.iter().enumerate() {
                let found = s.find(name).unwrap();
                assert_eq!(found.id, i as u32 + 1);
                assert_eq!(found.head.last_frame, NO_PREV_FRAME);
                assert_eq!(&*names[found.id as usize], *name);
            }
            assert_eq!(s.find("a").unwrap().head.last_version, 3);

            let mut dup = refs.clone();
            dup.push("s-7");
            let mut twice = Streams::new(32);
            assert_eq!(
                insert_all(&mut twice, &Names::new(), &dup),
                Err(InsertError::Duplicate),
                "{count} streams"
            );
        }

        let mut again = Streams::new(32);
        let names = Names::new();
        again
            .insert(
                &names,
                "a",
                Head {
                    last_version: 0,
                    last_frame: 0,
                },
            )
            .unwrap();
        assert_eq!(
            insert_all(&mut again, &names, &["b", "a"]),
            Err(InsertError::Duplicate)
        );
        let mut within = Streams::new(32);
        assert_eq!(
            insert_all(&mut within, &Names::new(), &["x", "y", "x"]),
            Err(InsertError::Duplicate)
        );
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;

    #[test]
    fn entries_mark_frames_holding_multiples_of_the_interval() {
        let names = Names::new();
        let mut s = Streams::new(4);
        let head = Head {
            last_version: 2,
            last_frame: 0,
        };
        let id = s.insert(&names, "s", head).unwrap();
        // Frames: 0..=2 (no entry: version 0 never counts), 3..=5 (holds 4),
        // 6..=6, 7..=12 (holds 8 and 12: one entry), 13..=15.
        let frames = [(3, 5, 100), (6, 6, 200), (7, 12, 300), (13, 15, 400)];
        let added: Vec<_> = frames
            .iter()
            .map(|&(f, l, at)| s.record(id, f, l, at).entry)
            .collect();
        assert_eq!(
            added,
            vec![
                Some(IndexEntry {
                    version: 3,
                    frame: 100
                }),
                None,
                Some(IndexEntry {
                    version: 7,
                    frame: 300
                }),
                None,
            ]
        );
        assert_eq!(s.entries(id).len(), 2);
        assert_eq!(s.head(id).unwrap().last_version, 15);
        assert!(s.entries(id + 1).is_empty());
    }
}
