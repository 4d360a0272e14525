//! A segment file's lifecycle: create (reserve, header, sync, rename),
//! open and validate, and hand it over shared (sealed, active or followed).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::MmapRaw;

use crate::error::{Error, Result};
use crate::layout;
use crate::storage::{self, Preallocate, Storage};

use super::header::{
    CHAIN_RECORD_OFFSET, ChainRecord, FIXED_HEADER_BYTES, HEAD_READ_BYTES, HEADER_BYTES, Slot,
    decode_header, encode_header, newest_slot,
};
use super::map::{Live, Segment, SegmentWriter};
use super::sync_dir;
use super::times::TimeIndex;

/// The header page a follower maps writable, to register as a waiter.
const PAGE_BYTES: usize = 4096;

/// A segment before it is shared: recovery may read and repair any byte.
#[derive(Debug)]
pub(crate) struct OpenSegment {
    pub(super) seg: Segment,
    slot: Option<Slot>,
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
        // Never over an existing segment: one being written would lose
        // every frame written after the rename to the unlinked file.
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(Error::io(
                &path,
                io::Error::new(io::ErrorKind::AlreadyExists, "segment exists already"),
            ));
        }
        let tmp = layout::tmp_path(&path);
        let made = (|| {
            let file = storage.create(&tmp)?;
            storage.reserve(&file, &tmp, size, how)?;
            let header = encode_header(size, base, log_id);
            debug_assert!(
                decode_header(&tmp, &header, base)
                    .is_ok_and(|h| h.size == size && h.log_id == log_id),
                "a header must decode as written"
            );
            storage.write_at(&file, &tmp, &header, 0)?;
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
        *seg.chain.lock().unwrap_or_else(|p| p.into_inner()) =
            ChainRecord::decode(&head[CHAIN_RECORD_OFFSET as usize..]);
        Ok(OpenSegment { seg, slot: best })
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    /// The newest valid watermark slot, if any.
    pub(crate) fn slot(&self) -> Option<Slot> {
        self.slot
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
            chain: Mutex::new(None),
            live,
            times: TimeIndex::default(),
        }
    }
}
