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

/// Bytes of frames between two entries, at least.
pub(crate) const TIME_STRIDE: u64 = 16 << 10;

/// One entry: the commit time of the frame at a segment offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// Microseconds since the Unix epoch.
    pub(crate) timestamp_us: u64,
    /// Segment offset of the frame.
    pub(crate) offset: u64,
}

/// The entries of one segment, and its newest commit time.
#[derive(Debug, Default)]
pub(crate) struct TimeIndex {
    entries: RwLock<Vec<TimeEntry>>,
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
            entries.push(TimeEntry {
                timestamp_us,
                offset,
            });
        }
        self.next_due.store(offset + TIME_STRIDE, Ordering::Relaxed);
    }

    /// Takes the entries of an index file (checked when it was read) and
    /// its newest time, for a segment whose frames nobody noted yet.
    pub(crate) fn load(&self, loaded: Vec<TimeEntry>, last_us: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        debug_assert!(entries.is_empty(), "time index loaded over notes");
        let next_due = loaded.last().map_or(0, |e| e.offset + TIME_STRIDE);
        *entries = loaded;
        self.next_due.store(next_due, Ordering::Relaxed);
        self.last_us.store(last_us, Ordering::Relaxed);
    }

    /// A copy of the entries, for the segment's index file.
    pub(crate) fn entries(&self) -> Vec<TimeEntry> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The newest commit time noted, if any.
    pub(crate) fn last_us(&self) -> Option<u64> {
        Some(self.last_us.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    /// The commit time of the segment's first frame, if one was noted.
    pub(crate) fn first_us(&self) -> Option<u64> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.first().map(|e| e.timestamp_us)
    }

    /// The segment offset of the last entry committed before `t_us`: a
    /// walk from there meets the first frame at or after `t_us` within one
    /// stride. `None` when no entry is before `t_us`.
    pub(crate) fn last_before(&self, t_us: u64) -> Option<u64> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let after = entries.partition_point(|e| e.timestamp_us < t_us);
        after
            .checked_sub(1)
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
        loaded.load(entries.clone(), 1_999);
        assert_eq!(loaded.entries(), entries);
        // Notes after a load go on at the stride.
        loaded.note(4096 + 999 * 100 + 10, 2_500);
        assert_eq!(loaded.last_us(), Some(2_500));
    }
}
