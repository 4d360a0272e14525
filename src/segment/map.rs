//! The mapping: every `unsafe` block of the engine's segments lives here
//! (and one prefetch hint in `prefetch.rs`). Soundness rests on three
//! rules, enforced by the types here rather than by callers:
//! - bytes below `published` are immutable: readers only get slices there;
//! - exactly one [`SegmentWriter`] exists per segment (it is made only by
//!   consuming an [`OpenSegment`]) and it writes only at or above `written`,
//!   which never falls below `published`;
//! - segment files are never truncated or shrunk while mapped (the log never
//!   calls `set_len` on a mapped file; deleting a file keeps its pages alive).
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::MmapRaw;

use crate::error::{Error, Result};
use crate::storage::{self, Storage};

use super::file::OpenSegment;
use super::header::{
    CHAIN_RECORD_BYTES, CHAIN_RECORD_OFFSET, ChainRecord, HEADER_BYTES, SLOT_BYTES, SLOT_OFFSETS,
    Slot,
};
use super::times::TimeIndex;

/// Maps an index file (`index.rs`) read-only, whole.
pub(crate) fn map_index_file(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: index files are never changed in place: each is written under
    // a temporary name and renamed over the old one, which leaves an open
    // file's bytes (its own inode) as they were. Nothing truncates a
    // published index file, so the mapping cannot fault.
    unsafe { memmap2::Mmap::map(file) }
}

/// Bytes of a page: [`OpenSegment::zero_from`] clears page by page.
const PAGE_BYTES: usize = 4096;
/// The live words of the header page, outside every checksum and never read
/// by recovery: how far the writer has published (`u64`), the low 32 bits of
/// it again as a futex word, and how many follower processes wait on that
/// word. Stores and loads of them are atomic in every process.
const LIVE_PUBLISHED: usize = 2048;
const LIVE_SEQ: usize = 2056;
const LIVE_WAITERS: usize = 2060;

/// A mapped segment shared by the writer and any number of readers.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Where flushes go (the operating system, or a fault-injecting double).
    pub(super) storage: Arc<dyn Storage>,
    pub(super) path: PathBuf,
    pub(super) base: u64,
    pub(super) size: u64,
    pub(super) log_id: u128,
    pub(super) map: MmapRaw,
    /// Kept open for the mapping's lifetime and for flushing.
    pub(super) file: File,
    /// Bytes `[0, written)` hold finished frames (only the writer raises it).
    pub(super) written: AtomicU64,
    /// Readers may read `[HEADER_BYTES, published)`; never above `written`.
    pub(super) published: AtomicU64,
    /// An end marker was written: no frame will follow in this segment.
    pub(super) sealed: AtomicBool,
    /// Serialises slot writes (and every other write of the header page)
    /// and remembers the next sequence number.
    pub(super) slots: Mutex<u64>,
    /// The chain record this process read or wrote (see
    /// [`ChainRecord`]); written once, after the segment is sealed.
    pub(super) chain: Mutex<Option<ChainRecord>>,
    /// How this process shares the header's live words (see
    /// [`LIVE_PUBLISHED`]).
    pub(super) live: Live,
    /// Commit times of its frames, sparse (see [`TimeIndex`]).
    pub(crate) times: TimeIndex,
}

/// Where this process finds the live words of a segment's header.
#[derive(Debug)]
pub(super) enum Live {
    /// The writer's process: in the segment's own (writable) mapping.
    Writer,
    /// A follower process: a writable mapping of the header page alone
    /// (the data stays read-only), so it can register as a waiter.
    Follower(MmapRaw),
    /// A follower that may not write the file: it reads the words from its
    /// read-only mapping and polls instead of registering.
    Polling,
}

/// The live words of one segment's header, as atomics.
pub(super) struct LiveWords<'a> {
    pub(super) published: &'a AtomicU64,
    pub(super) seq: &'a AtomicU32,
    pub(super) waiters: &'a AtomicU32,
}

/// The single handle allowed to write frames into one segment.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    pub(super) seg: Arc<Segment>,
    pub(super) cursor: u64,
}

/// A published range of a segment that owns a reference to the mapping, so
/// `bytes::Bytes` built on it keep the mapping alive without copying.
#[derive(Debug)]
pub(crate) struct SegmentSlice {
    pub(super) seg: Arc<Segment>,
    pub(super) from: u64,
    pub(super) to: u64,
}

impl AsRef<[u8]> for SegmentSlice {
    fn as_ref(&self) -> &[u8] {
        debug_assert!(self.from <= self.to && self.to <= self.seg.published());
        // SAFETY: `from..to` was checked to lie inside `[HEADER_BYTES,
        // published)` when this slice was made; published never decreases
        // and those bytes are never written again; the Arc keeps the mapping
        // (and its never-shrunk file) alive.
        unsafe { self.seg.slice_unchecked(self.from, self.to) }
    }
}

impl OpenSegment {
    /// Any bytes `[from, to)` of the data region: no writer exists yet.
    pub(crate) fn read(&self, from: u64, to: u64) -> &[u8] {
        let from = from.clamp(HEADER_BYTES, self.seg.size);
        let to = to.clamp(from, self.seg.size);
        // SAFETY: the range is clamped into the mapping; an OpenSegment is not
        // shared, so no writer or reader can touch these bytes concurrently.
        unsafe { self.seg.slice_unchecked(from, to) }
    }

    /// Zeroes `[from, size)` (only the pages that are not zero already) and
    /// syncs: clears a torn tail so no stale frame can ever reappear there.
    pub(crate) fn zero_from(&mut self, from: u64) -> Result<()> {
        let from = from.clamp(HEADER_BYTES, self.seg.size);
        // A follower must not read what is about to be cleared: a crash can
        // leave the live word past the frames that survived.
        if let Some(live) = self.seg.writer_words() {
            live.published.fetch_min(from, Ordering::AcqRel);
            live.seq.store(from as u32, Ordering::Release);
        }
        let mut at = from;
        let mut dirty = false;
        while at < self.seg.size {
            let page_end = (at / PAGE_BYTES as u64 + 1) * PAGE_BYTES as u64;
            let end = page_end.min(self.seg.size);
            // SAFETY: `at..end` is inside the mapping and `&mut self` proves
            // the segment is not shared: nothing else reads or writes it.
            let bytes = unsafe { self.seg.slice_mut_unchecked(at, end) };
            if bytes.iter().any(|&b| b != 0) {
                bytes.fill(0);
                dirty = true;
            }
            at = end;
        }
        if dirty {
            self.seg.flush(from, self.seg.size)?;
        }
        Ok(())
    }
}

impl Segment {
    /// The live words where this process may store to them: only the
    /// writer's.
    pub(super) fn writer_words(&self) -> Option<LiveWords<'_>> {
        matches!(self.live, Live::Writer).then(|| self.live_words())
    }

    /// The header's live words, as atomics. Only the writer stores to
    /// them, and a follower only to `waiters` (through its writable header
    /// page); a `Polling` follower only loads.
    pub(super) fn live_words(&self) -> LiveWords<'_> {
        let page = match &self.live {
            Live::Writer => self.map.as_mut_ptr(),
            Live::Follower(header) => header.as_mut_ptr(),
            Live::Polling => self.map.as_ptr().cast_mut(),
        };
        // SAFETY: `page` is the start of a live mapping of the header page
        // (page-aligned, so each word is aligned), owned by `self` and so
        // valid for the returned borrow. Every process touches these bytes
        // only through atomics (recovery reads the fixed header and the
        // slots, never these offsets). A `Polling` mapping is read-only:
        // only `committed` loads from it, nothing stores.
        unsafe {
            LiveWords {
                published: AtomicU64::from_ptr(page.add(LIVE_PUBLISHED).cast()),
                seq: AtomicU32::from_ptr(page.add(LIVE_SEQ).cast()),
                waiters: AtomicU32::from_ptr(page.add(LIVE_WAITERS).cast()),
            }
        }
    }

    /// # Safety
    /// `from <= to <= size`, and no thread writes `[from, to)` while the
    /// returned slice lives.
    pub(super) unsafe fn slice_unchecked(&self, from: u64, to: u64) -> &[u8] {
        debug_assert!(from <= to && to <= self.size);
        // SAFETY: the caller guarantees the range is inside the mapping (which
        // lives as long as `self`) and is not written concurrently.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(from as usize), (to - from) as usize)
        }
    }

    /// # Safety
    /// `from <= to <= size`, and no other slice of `[from, to)` exists or is
    /// made while the returned one lives.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn slice_mut_unchecked(&self, from: u64, to: u64) -> &mut [u8] {
        debug_assert!(from <= to && to <= self.size);
        // SAFETY: the caller guarantees the range is inside the mapping and
        // exclusively theirs; the mapping is writable (MAP_SHARED, read-write).
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map.as_mut_ptr().add(from as usize),
                (to - from) as usize,
            )
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether stores into this segment copy on write: a segment on btrfs
    /// made before seglog marked segments no-copy-on-write, where a full
    /// disk raises `SIGBUS` in the writer. A check that fails says no.
    pub(crate) fn copies_on_write(&self) -> bool {
        storage::filesystem::copies_on_write(&self.file).unwrap_or(false)
    }

    /// Log offset of the segment's first byte.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// Size of the segment file in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Log offset just past this segment.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.size
    }

    pub(crate) fn log_id(&self) -> u128 {
        self.log_id
    }

    /// Offset below which readers may read.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Offset below which frames are complete.
    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Whether an end marker was written.
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed.load(Ordering::Acquire)
    }

    /// The bytes `[from, committed)` a follower may apply: below the
    /// writer's published end, so complete and never written again.
    pub(crate) fn committed_bytes(&self, from: u64, committed: u64) -> Option<&[u8]> {
        if from < HEADER_BYTES || from > committed || committed > self.size {
            return None;
        }
        // SAFETY: the writer published `[.., committed)` (its live word),
        // and a published byte is never written again; recovery lowers the
        // word before it clears anything.
        Some(unsafe { self.slice_unchecked(from, committed) })
    }

    /// The address of segment offset `at` in the mapping, for a prefetch
    /// hint (`crate::prefetch`); `None` outside the segment. Never read
    /// through.
    pub(crate) fn addr_of(&self, at: u64) -> Option<usize> {
        (at < self.size).then(|| self.map.as_ptr().addr() + at as usize)
    }

    /// Published bytes `[from, to)`, or `None` if any of them is not published.
    pub(crate) fn bytes(&self, from: u64, to: u64) -> Option<&[u8]> {
        if from < HEADER_BYTES || from > to || to > self.published() {
            return None;
        }
        // SAFETY: `[from, to)` is below `published`: immutable from now on.
        Some(unsafe { self.slice_unchecked(from, to) })
    }

    /// Written bytes `[from, to)`, published or not: frames the writer
    /// finished, which never change again. Readers use them only to follow a
    /// stream's back-links through frames a sync has not published yet; they
    /// never serve them.
    pub(crate) fn written_bytes(&self, from: u64, to: u64) -> Option<&[u8]> {
        if from < HEADER_BYTES || from > to || to > self.written() {
            return None;
        }
        // SAFETY: `[from, to)` is below `written`: the single writer only
        // writes at or above it, so these bytes are complete and immutable.
        Some(unsafe { self.slice_unchecked(from, to) })
    }

    /// Like [`Segment::bytes`], as an owner for `bytes::Bytes::from_owner`.
    pub(crate) fn slice(self: &Arc<Self>, from: u64, to: u64) -> Option<SegmentSlice> {
        self.bytes(from, to)?;
        Some(SegmentSlice {
            seg: Arc::clone(self),
            from,
            to,
        })
    }

    /// Faults `[from, to)` into the page tables, writable, without touching
    /// the bytes (`MADV_POPULATE_WRITE`), so the writer's first store to each
    /// page does not pay a page fault. Best effort: an error only costs speed.
    pub(crate) fn prefault(&self, from: u64, to: u64) -> io::Result<()> {
        self.advise(memmap2::Advice::PopulateWrite, from, to)
    }

    /// Maps `[from, to)` into the page tables for reading, in one call:
    /// a reader walking it then takes no page faults (a fault maps 16
    /// pages at most). Best effort: an error only costs speed.
    pub(crate) fn populate_read(&self, from: u64, to: u64) -> io::Result<()> {
        self.advise(memmap2::Advice::PopulateRead, from, to)
    }

    /// `advice` over `[from, to)`, clamped to the segment.
    fn advise(&self, advice: memmap2::Advice, from: u64, to: u64) -> io::Result<()> {
        let from = from.min(self.size);
        let to = to.clamp(from, self.size);
        if from == to {
            return Ok(());
        }
        self.map
            .advise_range(advice, from as usize, (to - from) as usize)
    }

    /// Drops this process's page-table entries for `[from, to)`, a range
    /// the writer has finished (below `written`). Writeback must
    /// write-protect every mapped dirty page first, one TLB-shootdown IPI
    /// per 4 KiB page (perf: most of an `msync`); with no entry left there
    /// is nothing to protect. One batched flush here covers the whole
    /// range. Best effort: an error only costs speed.
    pub(crate) fn release(&self, from: u64, to: u64) -> io::Result<()> {
        let from = from.clamp(HEADER_BYTES, self.size);
        let to = to.clamp(from, self.written());
        if from >= to {
            return Ok(());
        }
        // SAFETY: MADV_DONTNEED on a shared file mapping drops page-table
        // entries only: the bytes stay in the page cache (a dirty entry's
        // state passes to its page), and any later access, through a slice
        // held now or made later, maps the same bytes again. `[from, to)`
        // is below `written`, so the writer never stores there again.
        unsafe {
            self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                from as usize,
                (to - from) as usize,
            )
        }
    }

    /// Starts writing back `[from, to)`, a range the writer finished, and
    /// returns without waiting: a later sync finds most of it on disk
    /// already. It makes nothing durable (only a sync does), which is why
    /// it bypasses the storage seam. Best effort: an error only costs
    /// speed.
    pub(crate) fn start_writeback(&self, from: u64, to: u64) -> io::Result<()> {
        let from = from.clamp(HEADER_BYTES, self.size);
        let to = to.clamp(from, self.written());
        if from == to {
            return Ok(());
        }
        writeback::start(&self.file, from, to - from)
    }

    /// Syncs `[from, to)` of the file (header included when `from` is 0).
    pub(crate) fn flush(&self, from: u64, to: u64) -> Result<()> {
        let to = to.min(self.size);
        if from >= to {
            return Ok(());
        }
        self.storage
            .flush(&self.map, &self.file, &self.path, from, to)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// The chain record this process knows of.
    pub(crate) fn chain_record(&self) -> Option<ChainRecord> {
        *self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the chain record into the header page of this segment:
    /// sealed, or (an open record, at a clean close) the active one. The
    /// caller syncs it.
    pub(crate) fn write_chain_record(&self, record: &ChainRecord) {
        debug_assert!(matches!(self.live, Live::Writer));
        debug_assert!(
            self.is_sealed() || record.open,
            "a sealed record in an open segment"
        );
        let _header = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let at = CHAIN_RECORD_OFFSET;
        // SAFETY: the record's bytes lie in the header page, which readers
        // never read through the mapping (`bytes` starts at HEADER_BYTES;
        // a follower reads it from the file at open), and the `slots` mutex
        // held here serialises every writer of the header.
        let dst = unsafe { self.slice_mut_unchecked(at, at + CHAIN_RECORD_BYTES as u64) };
        dst.copy_from_slice(&record.encode());
        debug_assert_eq!(
            ChainRecord::decode(dst).as_ref(),
            Some(record),
            "a chain record must decode as written"
        );
        *self.chain.lock().unwrap_or_else(|p| p.into_inner()) = Some(*record);
    }

    /// Writes the older of the two watermark slots (so a torn write leaves
    /// the newer one intact). The caller syncs it.
    pub(crate) fn write_slot(&self, watermark: u64, flags: u32) -> Result<()> {
        debug_assert!((HEADER_BYTES..=self.size).contains(&watermark));
        let mut seq = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = Slot {
            seq: *seq,
            watermark,
            flags,
        };
        let at = SLOT_OFFSETS[(*seq % 2) as usize];
        // SAFETY: slot bytes lie in the header page, which readers never
        // read through the mapping (`bytes` starts at HEADER_BYTES), and the
        // `slots` mutex held here serialises every writer of the header.
        let dst = unsafe { self.slice_mut_unchecked(at, at + SLOT_BYTES as u64) };
        dst.copy_from_slice(&slot.encode());
        debug_assert_eq!(
            Slot::decode(dst),
            Some(slot),
            "a slot must decode as written"
        );
        *seq += 1;
        Ok(())
    }
}

impl SegmentWriter {
    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.seg
    }

    /// Offset in the segment where the next frame goes.
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Bytes left after the cursor.
    pub(crate) fn remaining(&self) -> u64 {
        self.seg.size - self.cursor
    }

    /// Fills the next `len` bytes with `fill`, then marks them written.
    /// Returns the offset they start at.
    pub(crate) fn append(&mut self, len: u64, fill: impl FnOnce(&mut [u8])) -> u64 {
        assert!(len <= self.remaining(), "frame does not fit the segment");
        let at = self.cursor;
        // SAFETY: `[at, at + len)` is inside the mapping (asserted above) and
        // at or above `written >= published`: no reader has a slice of it and
        // this writer is the only one of the segment (`&mut self`).
        let dst = unsafe { self.seg.slice_mut_unchecked(at, at + len) };
        fill(dst);
        self.cursor = at + len;
        self.seg.written.store(self.cursor, Ordering::Release);
        at
    }

    /// Marks the segment complete after its end marker was appended.
    pub(crate) fn seal(self) {
        self.seg.sealed.store(true, Ordering::Release);
    }
}

/// Starting writeback of a file range without waiting for it.
mod writeback {
    use std::fs::File;
    use std::io;

    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: queues the dirty pages of
    /// `[offset, offset + len)` for writing and returns. Unlike
    /// `POSIX_FADV_DONTNEED`, which also starts writeback, it never drops a
    /// page from the cache (after a sync, the pages are clean and readers
    /// would read them from disk again).
    #[cfg(target_os = "linux")]
    pub(super) fn start(file: &File, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Ok(());
        };
        // SAFETY: a plain system call on a descriptor `file` owns and keeps
        // open for the call; it reads and writes none of our memory.
        let rc = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Elsewhere the kernel writes back on its own schedule.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn start(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
}
