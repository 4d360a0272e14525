//! One segment file: create and preallocate, map, append frames, publish,
//! sync, and the header with its two watermark slots.
//!
//! This is the only module with `unsafe` besides a cache prefetch hint
//! (`prefetch.rs`): the shared mapping. Soundness rests
//! on three rules, enforced by the types here rather than by callers:
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
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::MmapRaw;

use crate::error::{Error, Result};
use crate::layout;
use crate::limits;
use crate::options::Preallocate;
use crate::storage::{self, Storage};

/// Bytes before the first frame: the header page. Frames start page-aligned
/// so header slot writes never share a page with frames.
pub(crate) const HEADER_BYTES: u64 = 4096;
const MAGIC: [u8; 8] = *b"SEGLOG\r\n";
/// The on-disk format this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
const FIXED_HEADER_BYTES: usize = 64;
const SLOT_OFFSETS: [u64; 2] = [512, 1024];
const SLOT_BYTES: usize = 28;
/// The watermark marks the segment complete: an end marker sits at it.
pub(crate) const SLOT_SEALED: u32 = 1;
/// Written at a clean close: nothing was ever written past the watermark.
pub(crate) const SLOT_CLEAN: u32 = 2;
const PAGE_BYTES: usize = 4096;
/// The live words of the header page, outside every checksum and never read
/// by recovery: how far the writer has published (`u64`), the low 32 bits of
/// it again as a futex word, and how many follower processes wait on that
/// word. Stores and loads of them are atomic in every process.
const LIVE_PUBLISHED: usize = 2048;
const LIVE_SEQ: usize = 2056;
const LIVE_WAITERS: usize = 2060;

/// Bytes from the start of a segment file that hold the fixed header and
/// both slots.
const HEAD_READ_BYTES: usize = SLOT_OFFSETS[1] as usize + SLOT_BYTES;

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

impl Slot {
    fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut out = [0u8; SLOT_BYTES];
        out[..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..16].copy_from_slice(&self.watermark.to_le_bytes());
        out[16..20].copy_from_slice(&self.flags.to_le_bytes());
        let crc = crc32fast::hash(&out[..24]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(raw: &[u8]) -> Option<Slot> {
        let raw: &[u8; SLOT_BYTES] = raw.get(..SLOT_BYTES)?.try_into().ok()?;
        let crc = u32::from_le_bytes(raw[24..28].try_into().ok()?);
        if raw.iter().all(|&b| b == 0) || crc32fast::hash(&raw[..24]) != crc {
            return None;
        }
        Some(Slot {
            seq: u64::from_le_bytes(raw[..8].try_into().ok()?),
            watermark: u64::from_le_bytes(raw[8..16].try_into().ok()?),
            flags: u32::from_le_bytes(raw[16..20].try_into().ok()?),
        })
    }
}

fn encode_header(size: u64, base: u64, log_id: u128) -> [u8; FIXED_HEADER_BYTES] {
    let created_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut h = [0u8; FIXED_HEADER_BYTES];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    h[16..24].copy_from_slice(&size.to_le_bytes());
    h[24..32].copy_from_slice(&base.to_le_bytes());
    h[32..48].copy_from_slice(&log_id.to_le_bytes());
    h[48..56].copy_from_slice(&created_us.to_le_bytes());
    let crc = crc32fast::hash(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The fixed header fields of an existing segment.
struct Header {
    size: u64,
    log_id: u128,
}

fn decode_header(path: &Path, h: &[u8; FIXED_HEADER_BYTES], base: u64) -> Result<Header> {
    let unsupported = |reason: String| Error::UnsupportedFormat {
        path: path.to_path_buf(),
        reason,
    };
    let corrupt = |reason: String| Error::Corrupt {
        segment: path.to_path_buf(),
        offset: 0,
        reason,
    };
    if h[..8] != MAGIC {
        return Err(unsupported("not a seglog segment (bad magic)".into()));
    }
    let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(unsupported(format!(
            "segment format version {version}; this build reads version {FORMAT_VERSION}"
        )));
    }
    if crc32fast::hash(&h[..60]) != u32_at(60) {
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
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[32..48]);
    Ok(Header {
        size,
        log_id: u128::from_le_bytes(id),
    })
}

/// fsyncs a directory so that a file created or renamed in it survives a crash.
pub(crate) fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<()> {
    storage.sync_dir(dir).map_err(|e| Error::io(dir, e))
}

/// `Error::Corrupt` for `offset` of segment `seg`.
pub(crate) fn corrupt(seg: &Segment, offset: u64, reason: impl ToString) -> Error {
    Error::Corrupt {
        segment: seg.path().to_path_buf(),
        offset,
        reason: reason.to_string(),
    }
}

/// A mapped segment shared by the writer and any number of readers.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Where flushes go (the operating system, or a fault-injecting double).
    storage: Arc<dyn Storage>,
    path: PathBuf,
    base: u64,
    size: u64,
    log_id: u128,
    map: MmapRaw,
    /// Kept open for the mapping's lifetime and for flushing.
    file: File,
    /// Bytes `[0, written)` hold finished frames (only the writer raises it).
    written: AtomicU64,
    /// Readers may read `[HEADER_BYTES, published)`; never above `written`.
    published: AtomicU64,
    /// An end marker was written: no frame will follow in this segment.
    sealed: AtomicBool,
    /// Serialises slot writes and remembers the next sequence number.
    slots: Mutex<u64>,
    /// How this process shares the header's live words (see
    /// [`LIVE_PUBLISHED`]).
    live: Live,
}

/// Where this process finds the live words of a segment's header.
#[derive(Debug)]
enum Live {
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
struct LiveWords<'a> {
    published: &'a AtomicU64,
    seq: &'a AtomicU32,
    waiters: &'a AtomicU32,
}

/// A segment before it is shared: recovery may read and repair any byte.
#[derive(Debug)]
pub(crate) struct OpenSegment {
    seg: Segment,
    slot: Option<Slot>,
}

/// The single handle allowed to write frames into one segment.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    seg: Arc<Segment>,
    cursor: u64,
}

/// A published range of a segment that owns a reference to the mapping, so
/// `bytes::Bytes` built on it keep the mapping alive without copying.
#[derive(Debug)]
pub(crate) struct SegmentSlice {
    seg: Arc<Segment>,
    from: u64,
    to: u64,
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
    /// Creates segment file `base` in `dir`: reserves its blocks, writes the
    /// header, fsyncs it, renames it into place and fsyncs the directory.
    pub(crate) fn create(
        storage: &Arc<dyn Storage>,
        dir: &Path,
        base: u64,
        size: u64,
        log_id: u128,
        how: Preallocate,
    ) -> Result<OpenSegment> {
        let path = dir.join(layout::segment_file(base));
        let tmp = layout::tmp_path(&path);
        let made = (|| {
            let file = storage.create(&tmp)?;
            storage.reserve(&file, &tmp, size, how)?;
            storage.write_at(&file, &tmp, &encode_header(size, base, log_id), 0)?;
            storage.sync(&file, &tmp)?;
            storage.rename(&tmp, &path)?;
            Ok(file)
        })();
        let file = made.map_err(|e: io::Error| {
            let _ = storage.remove(&tmp);
            Error::io(&path, e)
        })?;
        sync_dir(&**storage, dir)?;
        let seg = Segment::map(Arc::clone(storage), path, file, base, size, log_id)?;
        Ok(OpenSegment { seg, slot: None })
    }

    /// Opens and validates an existing segment file.
    pub(crate) fn open(storage: &Arc<dyn Storage>, path: &Path, base: u64) -> Result<OpenSegment> {
        let file = storage.open(path).map_err(|e| Error::io(path, e))?;
        OpenSegment::validate(storage, path, file, base, None)
    }

    /// Opens an existing segment file for a follower in another process:
    /// the data mapped read-only, the header page writable if the file may
    /// be written (to wait on the writer's futex word), else polled. A
    /// follower's files and mappings bypass the storage seam: it makes
    /// nothing durable (the seam exists for the writer's fault tests).
    pub(crate) fn open_follower(path: &Path, base: u64) -> Result<OpenSegment> {
        let storage: Arc<dyn Storage> = Arc::new(storage::RealStorage);
        let file = storage::entry::open_read(path).map_err(|e| Error::io(path, e))?;
        let header = storage::entry::open_write(path)
            .and_then(|rw| memmap2::MmapOptions::new().len(PAGE_BYTES).map_raw(&rw))
            .map_or(Live::Polling, Live::Follower);
        OpenSegment::validate(&storage, path, file, base, Some(header))
    }

    fn validate(
        storage: &Arc<dyn Storage>,
        path: &Path,
        file: File,
        base: u64,
        follower: Option<Live>,
    ) -> Result<OpenSegment> {
        let io_err = |e| Error::io(path, e);
        let len = file.metadata().map_err(io_err)?.len();
        if len < HEADER_BYTES {
            return Err(Error::Corrupt {
                segment: path.to_path_buf(),
                offset: len,
                reason: format!("segment file is {len} bytes, shorter than its header"),
            });
        }
        // The fixed header and both slots in one read.
        let mut head = [0u8; HEAD_READ_BYTES];
        file.read_exact_at(&mut head, 0).map_err(io_err)?;
        let mut fixed = [0u8; FIXED_HEADER_BYTES];
        fixed.copy_from_slice(&head[..FIXED_HEADER_BYTES]);
        let header = decode_header(path, &fixed, base)?;
        if len != header.size {
            return Err(Error::Corrupt {
                segment: path.to_path_buf(),
                offset: len.min(header.size),
                reason: format!(
                    "segment file is {len} bytes but its header says {}",
                    header.size
                ),
            });
        }
        let best = newest_slot(&head, header.size);
        let seg = match follower {
            None => Segment::map(
                Arc::clone(storage),
                path.to_path_buf(),
                file,
                base,
                header.size,
                header.log_id,
            )?,
            Some(live) => {
                let map = memmap2::MmapOptions::new()
                    .len(header.size as usize)
                    .map_raw_read_only(&file)
                    .map_err(io_err)?;
                Segment::new(
                    Arc::clone(storage),
                    path.to_path_buf(),
                    file,
                    (base, header.size, header.log_id),
                    map,
                    live,
                )
            }
        };
        *seg.slots.lock().unwrap_or_else(|p| p.into_inner()) = best.map_or(1, |s| s.seq + 1);
        Ok(OpenSegment { seg, slot: best })
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    /// The newest valid watermark slot, if any.
    pub(crate) fn slot(&self) -> Option<Slot> {
        self.slot
    }

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

    /// Writes zeros over `[from, to)` of the data area with `write(2)`,
    /// before the segment is shared (`&mut self`): its bytes read as zeros
    /// already, so nothing a reader could see changes.
    pub(crate) fn write_zeros(&mut self, from: u64, to: u64) -> io::Result<()> {
        const CHUNK: usize = 1 << 20;
        let zeros = vec![0u8; CHUNK];
        let to = to.min(self.seg.size);
        let mut at = from.max(HEADER_BYTES);
        while at < to {
            let n = (to - at).min(CHUNK as u64) as usize;
            self.seg
                .storage
                .write_at(&self.seg.file, &self.seg.path, &zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Writes a watermark slot before the segment is shared (recovery).
    pub(crate) fn write_slot(&mut self, watermark: u64, flags: u32) -> Result<()> {
        self.seg.write_slot(watermark, flags)?;
        self.seg.flush(0, HEADER_BYTES)
    }

    /// Shares a complete segment whose data ends at `end` for reading only.
    pub(crate) fn into_sealed(self, end: u64) -> Arc<Segment> {
        let seg = self.seg;
        let end = end.clamp(HEADER_BYTES, seg.size);
        seg.written.store(end, Ordering::Release);
        seg.published.store(end, Ordering::Release);
        seg.sealed.store(true, Ordering::Release);
        // Files from before the live words (zero there) learn them; others
        // keep their page clean.
        if let Some(live) = seg.writer_words()
            && live.published.load(Ordering::Acquire) != end
        {
            live.published.store(end, Ordering::Release);
            live.seq.store(end as u32, Ordering::Release);
        }
        Arc::new(seg)
    }

    /// Shares a segment a follower reads: nothing of it is readable until
    /// [`Segment::follow_to`] says so.
    pub(crate) fn into_followed(self) -> Arc<Segment> {
        Arc::new(self.seg)
    }

    /// Shares the segment and returns its one writer, appending at `cursor`.
    /// Bytes from `cursor` on must be zero (see [`OpenSegment::zero_from`]).
    pub(crate) fn into_active(self, cursor: u64) -> (Arc<Segment>, SegmentWriter) {
        let seg = self.seg;
        let cursor = cursor.clamp(HEADER_BYTES, seg.size);
        seg.written.store(cursor, Ordering::Release);
        seg.published.store(cursor, Ordering::Release);
        if let Some(live) = seg.writer_words() {
            live.published.store(cursor, Ordering::Release);
            live.seq.store(cursor as u32, Ordering::Release);
        }
        let seg = Arc::new(seg);
        let writer = SegmentWriter {
            seg: Arc::clone(&seg),
            cursor,
        };
        (seg, writer)
    }
}

impl Segment {
    fn map(
        storage: Arc<dyn Storage>,
        path: PathBuf,
        file: File,
        base: u64,
        size: u64,
        log_id: u128,
    ) -> Result<Segment> {
        let map = storage
            .map(&file, &path, size)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Segment::new(
            storage,
            path,
            file,
            (base, size, log_id),
            map,
            Live::Writer,
        ))
    }

    fn new(
        storage: Arc<dyn Storage>,
        path: PathBuf,
        file: File,
        (base, size, log_id): (u64, u64, u128),
        map: MmapRaw,
        live: Live,
    ) -> Segment {
        Segment {
            storage,
            path,
            base,
            size,
            log_id,
            map,
            file,
            written: AtomicU64::new(HEADER_BYTES),
            published: AtomicU64::new(HEADER_BYTES),
            sealed: AtomicBool::new(false),
            slots: Mutex::new(1),
            live,
        }
    }

    /// The live words where this process may store to them: only the
    /// writer's.
    fn writer_words(&self) -> Option<LiveWords<'_>> {
        matches!(self.live, Live::Writer).then(|| self.live_words())
    }

    /// The header's live words, as atomics. Only the writer stores to
    /// them, and a follower only to `waiters` (through its writable header
    /// page); a `Polling` follower only loads.
    fn live_words(&self) -> LiveWords<'_> {
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
    unsafe fn slice_unchecked(&self, from: u64, to: u64) -> &[u8] {
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
    unsafe fn slice_mut_unchecked(&self, from: u64, to: u64) -> &mut [u8] {
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

    /// Makes `[.., end)` readable, in this process and (through the live
    /// words) in followers; `end` never exceeds what was written. One
    /// publisher per segment (the tail's holder, or under `Durability::Sync`
    /// the holder of the sync cursor, who runs a sync round), so
    /// plain stores keep it monotonic. Followers waiting on the segment
    /// learn of it from [`Segment::wake_followers`], after a `SeqCst`
    /// fence or swap.
    pub(crate) fn publish(&self, end: u64) {
        debug_assert!(end <= self.written());
        let end = end.min(self.written());
        if end <= self.published.load(Ordering::Relaxed) {
            return;
        }
        self.published.store(end, Ordering::Release);
        if let Some(live) = self.writer_words() {
            live.published.store(end, Ordering::Release);
            live.seq.store(end as u32, Ordering::Release);
        }
    }

    /// Wakes follower processes waiting for this segment to grow. The
    /// caller published and then fenced or swapped (`SeqCst`): either a follower that
    /// registered saw the new end, or this load sees the follower.
    pub(crate) fn wake_followers(&self) {
        if let Some(live) = self.writer_words()
            && live.waiters.load(Ordering::SeqCst) > 0
        {
            futex::wake_all(live.seq);
        }
    }

    /// A follower's view of how far the writer has published this segment
    /// (at least `HEADER_BYTES`, at most its size).
    pub(crate) fn committed(&self) -> u64 {
        self.live_words()
            .published
            .load(Ordering::Acquire)
            .clamp(HEADER_BYTES, self.size)
    }

    /// A follower waits, at most `timeout`, for the writer to publish past
    /// `seen` (a value of [`Segment::committed`]). A follower without a
    /// writable header sleeps out a short poll instead.
    pub(crate) fn wait_committed(&self, seen: u64, timeout: Duration) {
        let live = self.live_words();
        if !matches!(self.live, Live::Follower(_)) {
            std::thread::sleep(timeout.min(FOLLOWER_POLL));
            return;
        }
        live.waiters.fetch_add(1, Ordering::SeqCst);
        let now = live.seq.load(Ordering::SeqCst);
        if now == seen as u32 && live.published.load(Ordering::SeqCst) == seen {
            futex::wait(live.seq, now, timeout);
        }
        live.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes this process's own follower thread waiting on the segment
    /// (when the reader closes).
    pub(crate) fn wake_local_waiter(&self) {
        if matches!(self.live, Live::Follower(_)) {
            futex::wake_all(self.live_words().seq);
        }
    }

    /// A follower makes `[.., end)` readable in this process once it has
    /// applied the frames there.
    pub(crate) fn follow_to(&self, end: u64, sealed: bool) {
        let end = end.clamp(HEADER_BYTES, self.size);
        debug_assert!(end >= self.published.load(Ordering::Relaxed));
        self.written.store(end, Ordering::Release);
        self.published.store(end, Ordering::Release);
        if sealed {
            self.sealed.store(true, Ordering::Release);
        }
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
    /// per 4 KiB page (perf: ~75% of an `msync`); with no entry left there
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

/// Longest a follower that cannot register as a waiter sleeps between two
/// looks at the live words.
const FOLLOWER_POLL: Duration = Duration::from_millis(1);

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

/// Waiting on a word of a shared file mapping across processes.
mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// Sleeps while `word` holds `expected`, at most `timeout` (spurious
    /// wake-ups allowed: callers look again). Without the private flag the
    /// kernel keys the wait on the file page, so a wake from another
    /// process that maps the same file reaches it.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        use rustix::thread::futex;
        let timeout = futex::Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        // Woken, timed out, interrupted or the word changed: the caller
        // looks again in every case.
        let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&timeout));
    }

    /// Wakes every process waiting on `word`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn wake_all(word: &AtomicU32) {
        use rustix::thread::futex;
        // Nothing to do about a failure: waiters have a timeout.
        let _ = futex::wake(word, futex::Flags::empty(), u32::MAX);
    }

    /// Without futexes a follower sleeps out its timeout in short polls.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn wait(_: &AtomicU32, _: u32, timeout: Duration) {
        std::thread::sleep(timeout.min(super::FOLLOWER_POLL));
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn wake_all(_: &AtomicU32) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real() -> Arc<dyn Storage> {
        Arc::new(storage::RealStorage)
    }

    #[test]
    fn slots_round_trip_and_reject_damage() {
        let slot = Slot {
            seq: 9,
            watermark: 8192,
            flags: SLOT_CLEAN,
        };
        let mut raw = slot.encode();
        assert_eq!(Slot::decode(&raw), Some(slot));
        raw[9] ^= 1;
        assert_eq!(Slot::decode(&raw), None);
        assert_eq!(Slot::decode(&[0; SLOT_BYTES]), None);
    }

    #[test]
    fn create_open_write_publish() {
        let dir = tempfile::tempdir().unwrap();
        let size = 1 << 20;
        let seg =
            OpenSegment::create(&real(), dir.path(), 0, size, 77, Preallocate::Fallocate).unwrap();
        assert_eq!(std::fs::metadata(seg.segment().path()).unwrap().len(), size);
        let (shared, mut writer) = seg.into_active(HEADER_BYTES);
        assert_eq!(shared.bytes(HEADER_BYTES, HEADER_BYTES + 8), None);
        let at = writer.append(8, |b| b.copy_from_slice(b"abcdefgh"));
        assert_eq!(at, HEADER_BYTES);
        shared.publish(writer.cursor());
        assert_eq!(shared.bytes(at, at + 8), Some(&b"abcdefgh"[..]));
        shared.write_slot(at + 8, SLOT_CLEAN).unwrap();
        shared.flush(0, at + 8).unwrap();
        drop((shared, writer));
        let again =
            OpenSegment::open(&real(), &dir.path().join(layout::segment_file(0)), 0).unwrap();
        assert_eq!(again.slot().unwrap().watermark, HEADER_BYTES + 8);
        assert_eq!(again.read(HEADER_BYTES, HEADER_BYTES + 8), b"abcdefgh");
        assert_eq!(again.segment().log_id(), 77);
    }

    /// Zeros written into a spare leave its header (and so the file's
    /// validity) alone, and frames written through the mapping afterwards
    /// are what a reopen reads.
    #[test]
    fn writing_zeros_keeps_the_header_and_later_frames() {
        let dir = tempfile::tempdir().unwrap();
        let size = 1 << 20;
        let mut seg =
            OpenSegment::create(&real(), dir.path(), 0, size, 9, Preallocate::Fallocate).unwrap();
        seg.write_zeros(0, size + 4096).unwrap();
        assert!(seg.read(HEADER_BYTES, size).iter().all(|&b| b == 0));
        let (shared, mut writer) = seg.into_active(HEADER_BYTES);
        let at = writer.append(8, |b| b.copy_from_slice(b"after-0s"));
        shared.flush(0, at + 8).unwrap();
        drop((shared, writer));
        let again =
            OpenSegment::open(&real(), &dir.path().join(layout::segment_file(0)), 0).unwrap();
        assert_eq!(again.segment().log_id(), 9);
        assert_eq!(again.read(at, at + 8), b"after-0s");
        assert!(again.read(at + 8, size).iter().all(|&b| b == 0));
    }

    /// The cross-process wake: a follower (its own read-only mapping and
    /// writable header page, as in another process) sleeping on the
    /// segment's futex word wakes when the writer publishes, long before
    /// its timeout; and it sees the frame below the new live word.
    #[test]
    fn a_waiting_follower_wakes_when_the_writer_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let seg = OpenSegment::create(&real(), dir.path(), 0, 1 << 20, 5, Preallocate::Fallocate)
            .unwrap();
        let path = seg.segment().path().to_path_buf();
        let (writer_seg, mut writer) = seg.into_active(HEADER_BYTES);
        let follower = OpenSegment::open_follower(&path, 0)
            .unwrap()
            .into_followed();
        assert!(matches!(follower.live, Live::Follower(_)));
        assert_eq!(follower.committed(), HEADER_BYTES);
        let waiting = {
            let follower = Arc::clone(&follower);
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                while follower.committed() == HEADER_BYTES {
                    follower.wait_committed(HEADER_BYTES, Duration::from_secs(30));
                }
                started.elapsed()
            })
        };
        while follower.live_words().waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        writer.append(8, |b| b.copy_from_slice(b"followed"));
        writer_seg.publish(writer.cursor());
        std::sync::atomic::fence(Ordering::SeqCst);
        writer_seg.wake_followers();
        let waited = waiting.join().unwrap();
        assert!(
            waited < Duration::from_secs(10),
            "woken only by the timeout: {waited:?}"
        );
        let end = follower.committed();
        assert_eq!(end, HEADER_BYTES + 8);
        assert_eq!(
            follower.committed_bytes(HEADER_BYTES, end),
            Some(&b"followed"[..])
        );
        assert_eq!(follower.live_words().waiters.load(Ordering::SeqCst), 0);
    }

    /// Dropping the page-table entries of a finished range keeps its bytes:
    /// a slice held across the release and one made after both see them,
    /// and the writer goes on above it.
    #[test]
    fn released_ranges_keep_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let seg = OpenSegment::create(&real(), dir.path(), 0, 1 << 20, 3, Preallocate::Fallocate)
            .unwrap();
        let (shared, mut writer) = seg.into_active(HEADER_BYTES);
        let page = vec![0xA5u8; 64 << 10];
        writer.append(page.len() as u64, |b| b.copy_from_slice(&page));
        shared.publish(writer.cursor());
        let held = shared.slice(HEADER_BYTES, writer.cursor()).unwrap();
        shared.release(0, writer.cursor()).unwrap();
        assert_eq!(held.as_ref(), &page[..]);
        assert_eq!(shared.bytes(HEADER_BYTES, writer.cursor()), Some(&page[..]));
        // Past `written` nothing is released: the writer's pages stay.
        shared.release(writer.cursor(), shared.size()).unwrap();
        let at = writer.append(8, |b| b.copy_from_slice(b"after..."));
        shared.publish(writer.cursor());
        assert_eq!(shared.bytes(at, at + 8), Some(&b"after..."[..]));
        shared.flush(HEADER_BYTES, writer.cursor()).unwrap();
        drop((held, shared, writer));
        let again =
            OpenSegment::open(&real(), &dir.path().join(layout::segment_file(0)), 0).unwrap();
        assert_eq!(
            again.read(HEADER_BYTES, HEADER_BYTES + page.len() as u64),
            &page[..]
        );
    }

    #[test]
    fn wrong_magic_and_future_version_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let seg = OpenSegment::create(&real(), dir.path(), 0, 1 << 20, 1, Preallocate::Fallocate)
            .unwrap();
        let path = seg.segment().path().to_path_buf();
        drop(seg);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&2u32.to_le_bytes(), 8).unwrap();
        let err = OpenSegment::open(&real(), &path, 0).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat { .. }), "{err}");
        file.write_all_at(b"NOTSEGLG", 0).unwrap();
        let err = OpenSegment::open(&real(), &path, 0).unwrap_err();
        assert!(err.to_string().contains("bad magic"), "{err}");
    }
}
