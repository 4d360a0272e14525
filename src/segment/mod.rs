//! One segment file: its header codec (`header`), the mapping and every
//! `unsafe` block over it (`map`), the cross-process live words (`live`),
//! and the file's lifecycle (`file`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::storage::Storage;

mod file;
mod header;
mod live;
mod map;
mod times;

pub(crate) use file::OpenSegment;
#[cfg(test)]
pub(crate) use header::newest_slot;
pub(crate) use header::{ChainRecord, HEADER_BYTES, SLOT_CLEAN, SLOT_SEALED};
pub(crate) use map::{Segment, SegmentWriter, map_index_file};
pub(crate) use times::{TIME_ENTRY_BYTES, TimeEntry, TimeIndex};

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use std::os::unix::fs::FileExt;
    use std::sync::atomic::Ordering;

    use super::header::{SLOT_BYTES, Slot};
    use super::map::Live;
    use super::*;
    use crate::layout;
    use crate::storage;
    use crate::storage::Preallocate;

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
        let future = super::header::FORMAT_VERSION + 1;
        file.write_all_at(&future.to_le_bytes(), 8).unwrap();
        let err = OpenSegment::open(&real(), &path, 0).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat { .. }), "{err}");
        file.write_all_at(b"NOTSEGLG", 0).unwrap();
        let err = OpenSegment::open(&real(), &path, 0).unwrap_err();
        assert!(err.to_string().contains("bad magic"), "{err}");
    }
}
