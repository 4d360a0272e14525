//! A segment's sparse time index: the commit time of a frame every
//! [`TIME_STRIDE`] bytes, so a search by time reads a few entries and at
//! most one stride of frame headers instead of the segment.
//!
//! Back of the envelope: a 64 MiB segment holds at most 4,097 entries of
//! 16 bytes (64 KiB); a search is a binary search over the segments' first
//! times, one over a segment's entries (12 steps), then a walk over at
//! most 16 KiB of frames (~80 headers of 200-byte frames), in pages the
//! last entry's frame already brought in.
//!
//! Whoever records a segment's frames notes each one here (the writer
//! under the append lock, recovery's scan, a follower applying what it
//! read); the index file of a sealed segment carries the entries, so an
//! open reads them instead of walking the segment. Noting a frame costs
//! a compare and a store; only one frame per stride takes the lock.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Bytes of frames between two entries, at least.
pub(crate) const TIME_STRIDE: u64 = 16 << 10;
/// Bytes of one entry in an index file: time, then offset.
pub(crate) const TIME_ENTRY_BYTES: usize = 16;

/// One entry: the commit time of the frame at a segment offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// Microseconds since the Unix epoch.
    pub(crate) timestamp_us: u64,
    /// Segment offset of the frame.
    pub(crate) offset: u64,
}

impl TimeEntry {
    /// Entry `i` of an index file's time entries, if it is there.
    pub(crate) fn in_file(bytes: &[u8], i: usize) -> Option<TimeEntry> {
        let (chunks, _) = bytes.as_chunks::<TIME_ENTRY_BYTES>();
        let [time, offset]: [[u8; 8]; 2] = bytemuck::cast(*chunks.get(i)?);
        Some(TimeEntry {
            timestamp_us: u64::from_le_bytes(time),
            offset: u64::from_le_bytes(offset),
        })
    }
}

/// The entries: those of an index file, used in place from its mapping
/// (an open decodes none of them), then those noted since.
#[derive(Debug, Default)]
struct Entries {
    file: Bytes,
    noted: Vec<TimeEntry>,
}

impl Entries {
    fn in_file(&self) -> usize {
        self.file.len() / TIME_ENTRY_BYTES
    }

    fn len(&self) -> usize {
        self.in_file() + self.noted.len()
    }

    fn get(&self, i: usize) -> Option<TimeEntry> {
        match i.checked_sub(self.in_file()) {
            None => TimeEntry::in_file(&self.file, i),
            Some(j) => self.noted.get(j).copied(),
        }
    }

    fn last(&self) -> Option<TimeEntry> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }
}

/// The entries of one segment, and its newest commit time.
#[derive(Debug, Default)]
pub(crate) struct TimeIndex {
    entries: RwLock<Entries>,
    /// The segment offset from which the next frame gets an entry.
    next_due: AtomicU64,
    /// The newest commit time noted (0: none).
    last_us: AtomicU64,
}

impl TimeIndex {
    /// Notes the frame at segment offset `offset`, committed at
    /// `timestamp_us`. Frames are noted in order, by one thread at a time.
    #[inline]
    pub(crate) fn note(&self, offset: u64, timestamp_us: u64) {
        if timestamp_us > self.last_us.load(Ordering::Relaxed) {
            self.last_us.store(timestamp_us, Ordering::Relaxed);
        }
        if offset >= self.next_due.load(Ordering::Relaxed) {
            self.add(offset, timestamp_us);
        }
    }

    #[cold]
    fn add(&self, offset: u64, timestamp_us: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.last().is_none_or(|last| offset > last.offset) {
            entries.noted.push(TimeEntry {
                timestamp_us,
                offset,
            });
        }
        self.next_due.store(offset + TIME_STRIDE, Ordering::Relaxed);
    }

    /// Takes the time entries of an index file (`file`, as the file lays
    /// them out, under the file's checksum) and its newest time, for a
    /// segment whose frames nobody noted yet.
    pub(crate) fn load(&self, file: Bytes, last_us: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        debug_assert!(entries.len() == 0, "time index loaded over notes");
        *entries = Entries {
            file,
            noted: Vec::new(),
        };
        let next_due = entries.last().map_or(0, |e| e.offset + TIME_STRIDE);
        self.next_due.store(next_due, Ordering::Relaxed);
        self.last_us.store(last_us, Ordering::Relaxed);
    }

    /// Every entry, for the segment's index file.
    pub(crate) fn entries(&self) -> Vec<TimeEntry> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        (0..entries.len()).filter_map(|i| entries.get(i)).collect()
    }

    /// The newest commit time noted, if any.
    pub(crate) fn last_us(&self) -> Option<u64> {
        Some(self.last_us.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    /// The commit time of the segment's first frame, if one was noted.
    pub(crate) fn first_us(&self) -> Option<u64> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(0).map(|e| e.timestamp_us)
    }

    /// The segment offset of the last entry committed before `t_us`: a
    /// walk from there meets the first frame at or after `t_us` within one
    /// stride. `None` when no entry is before `t_us`.
    pub(crate) fn last_before(&self, t_us: u64) -> Option<u64> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let (mut lo, mut hi) = (0, entries.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if entries.get(mid).is_some_and(|e| e.timestamp_us < t_us) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
            .and_then(|i| entries.get(i))
            .map(|e| e.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_one_entry_per_stride_and_finds_the_last_before() {
        let times = TimeIndex::default();
        assert_eq!((times.first_us(), times.last_us()), (None, None));
        // A 100-byte frame per microsecond from offset 4096.
        for i in 0..1_000u64 {
            times.note(4096 + i * 100, 1_000 + i);
        }
        let entries = times.entries();
        assert_eq!(entries.len(), 1 + (999 * 100) / (TIME_STRIDE as usize));
        assert_eq!(
            entries[0],
            TimeEntry {
                timestamp_us: 1_000,
                offset: 4096
            }
        );
        assert!(
            entries
                .windows(2)
                .all(|w| w[1].offset - w[0].offset >= TIME_STRIDE)
        );
        assert_eq!(
            (times.first_us(), times.last_us()),
            (Some(1_000), Some(1_999))
        );
        assert_eq!(times.last_before(1_000), None);
        assert_eq!(times.last_before(1_001), Some(4096));
        let second = entries[1];
        assert_eq!(times.last_before(second.timestamp_us), Some(4096));
        assert_eq!(
            times.last_before(second.timestamp_us + 1),
            Some(second.offset)
        );
        assert_eq!(
            times.last_before(u64::MAX),
            entries.last().map(|e| e.offset)
        );

        let loaded = TimeIndex::default();
        let file: Vec<u8> = entries
            .iter()
            .flat_map(|e| [e.timestamp_us.to_le_bytes(), e.offset.to_le_bytes()])
            .flatten()
            .collect();
        loaded.load(Bytes::from(file), 1_999);
        assert_eq!(loaded.entries(), entries);
        // Notes after a load go on at the stride.
        assert_eq!(
            loaded.last_before(second.timestamp_us + 1),
            Some(second.offset)
        );
        let past = entries.last().unwrap().offset + TIME_STRIDE;
        loaded.note(past - 8, 2_400);
        loaded.note(past, 2_500);
        assert_eq!(loaded.last_us(), Some(2_500));
        let mut more = entries.clone();
        more.push(TimeEntry {
            timestamp_us: 2_500,
            offset: past,
        });
        assert_eq!(loaded.entries(), more);
        assert_eq!(loaded.last_before(2_501), Some(past));
    }
}
