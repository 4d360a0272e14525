//! The name table of the stream registry: open addressing over cache-line
//! buckets of eight slots, each slot a 32-bit value (where the stream's
//! record is) packed with the 32-bit hash of the stream's name.
//!
//! Why not a general hash map: an append to a stream that is not in cache
//! pays one memory miss per line it touches, and a SwissTable keeps its
//! control bytes and its slots on two different lines. Here a lookup reads
//! one line (two when a bucket overflowed into the next), compares hashes
//! there, and reads a name only when a hash matches. Growing rehashes from
//! the stored hashes without reading a single name.
//!
//! Memory: 8 bytes per slot at a load between 7/16 and 7/8, so 9 to 18
//! bytes per stream, on huge pages once the table is large (see
//! `zeroed.rs`: at 1M streams the table is 16 MiB, far past what the TLB
//! maps in 4 KiB pages). Streams are never removed, so there are no tombstones
//! and a lookup ends at the first empty slot of its probe.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::zeroed::Zeroed;

/// Slots per bucket: one 64-byte cache line.
const SLOTS: usize = 8;
/// An unused slot: zero, so a fresh zeroed array is an empty table. A slot
/// keeps its value inverted, and callers never store `u32::MAX`, so no
/// packed slot is zero.
const EMPTY: u64 = 0;
/// Fewest buckets once anything is inserted.
const MIN_BUCKETS: usize = 8;

/// Eight slots; the array is page-aligned when mapped, so each bucket is
/// one cache line.
type Bucket = [u64; SLOTS];

fn pack(hash: u32, value: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(!value)
}

fn slot_hash(slot: u64) -> u32 {
    (slot >> 32) as u32
}

fn slot_value(slot: u64) -> u32 {
    !(slot as u32)
}

/// Values by the 32-bit hash of a name; the names themselves live
/// elsewhere, so every lookup is given a way to check a candidate value.
#[derive(Debug)]
pub(crate) struct NameTable {
    buckets: Zeroed<Bucket>,
    len: usize,
    whereabouts: Arc<Whereabouts>,
}

impl Default for NameTable {
    fn default() -> Self {
        NameTable {
            buckets: Zeroed::on_heap(0),
            len: 0,
            whereabouts: Arc::default(),
        }
    }
}

/// The bucket a probe for `hash` starts at, of `buckets`: the hash scaled
/// to the bucket count (multiply and shift, no power-of-two mask needed).
fn home(hash: u32, buckets: usize) -> usize {
    ((u64::from(hash) * buckets as u64) >> 32) as usize
}

/// Where a table's buckets are, readable without the lock that guards the
/// table, so that an appender prefetches its bucket before it queues for
/// that lock. The two words may be read mid-growth, out of step: the
/// address they give is only ever prefetched, never read.
#[derive(Debug, Default)]
pub(crate) struct Whereabouts {
    addr: AtomicUsize,
    buckets: AtomicUsize,
}

impl Whereabouts {
    /// Starts loading the bucket where a probe for `hash` begins.
    pub(crate) fn prefetch(&self, hash: u32) {
        let buckets = self.buckets.load(Ordering::Relaxed);
        if buckets > 0 {
            let addr = self.addr.load(Ordering::Relaxed);
            crate::prefetch::prefetch(addr + home(hash, buckets) * std::mem::size_of::<Bucket>());
        }
    }
}

impl NameTable {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn home(&self, hash: u32) -> usize {
        home(hash, self.bucket_count())
    }

    /// Where the buckets are, kept current as the table grows.
    pub(crate) fn whereabouts(&self) -> Arc<Whereabouts> {
        Arc::clone(&self.whereabouts)
    }

    fn bucket_count(&self) -> usize {
        self.buckets.as_slice().len()
    }

    fn next(&self, bucket: usize) -> usize {
        if bucket + 1 == self.bucket_count() {
            0
        } else {
            bucket + 1
        }
    }

    /// The value whose slot carries `hash` and for which `is` holds.
    pub(crate) fn find(&self, hash: u32, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let buckets = self.buckets.as_slice();
        if buckets.is_empty() {
            return None;
        }
        let mut b = self.home(hash);
        // The load stays below 7/8, so an empty slot ends every probe.
        loop {
            for &slot in &buckets[b] {
                if slot == EMPTY {
                    return None;
                }
                if slot_hash(slot) == hash && is(slot_value(slot)) {
                    return Some(slot_value(slot));
                }
            }
            b = self.next(b);
        }
    }

    /// Adds `value` (below `u32::MAX`) under `hash`. The caller has checked
    /// that its name is not in the table.
    pub(crate) fn insert(&mut self, hash: u32, value: u32) {
        debug_assert_ne!(value, u32::MAX);
        self.reserve(1);
        self.place(pack(hash, value));
        self.len += 1;
    }

    /// Puts `slot` in the first empty slot of its probe.
    fn place(&mut self, slot: u64) {
        let mut b = self.home(slot_hash(slot));
        loop {
            if let Some(free) = self.buckets.as_mut_slice()[b]
                .iter_mut()
                .find(|s| **s == EMPTY)
            {
                *free = slot;
                return;
            }
            b = self.next(b);
        }
    }

    /// Makes room for `additional` more values without growing again.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self.len.saturating_add(additional);
        // Keep the load at most 7/8: a probe then rarely leaves its bucket.
        if needed.saturating_mul(8) <= self.bucket_count() * SLOTS * 7 {
            return;
        }
        let mut buckets = self.bucket_count().max(MIN_BUCKETS);
        while needed.saturating_mul(8) > buckets * SLOTS * 7 {
            buckets *= 2;
        }
        let old = std::mem::replace(&mut self.buckets, Zeroed::new(buckets));
        for slot in old.as_slice().iter().flatten().filter(|&&s| s != EMPTY) {
            self.place(*slot);
        }
        self.whereabouts
            .addr
            .store(self.buckets.addr(), Ordering::Relaxed);
        self.whereabouts.buckets.store(buckets, Ordering::Relaxed);
    }

    /// Bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bucket_count() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_id_and_nothing_else_across_growth() {
        let mut t = NameTable::default();
        assert_eq!(t.find(7, |_| true), None);
        // Hashes colliding in groups of 20 force probes across buckets.
        let hash_of = |id: u32| (id / 20).wrapping_mul(0x9E37_79B9);
        // Enough to outgrow the heap into a mapped array.
        let n = 40_000u32;
        for id in 0..n {
            assert_eq!(t.find(hash_of(id), |c| c == id), None);
            t.insert(hash_of(id), id);
            assert_eq!(t.len(), id as usize + 1);
        }
        assert!(t.buckets.is_mapped());
        // Appenders prefetch from where the table says it is: current
        // after every growth.
        let whereabouts = t.whereabouts();
        assert_eq!(whereabouts.addr.load(Ordering::Relaxed), t.buckets.addr());
        assert_eq!(
            whereabouts.buckets.load(Ordering::Relaxed),
            t.bucket_count()
        );
        for id in 0..n {
            assert_eq!(t.find(hash_of(id), |c| c == id), Some(id));
        }
        assert_eq!(t.find(hash_of(n), |_| true), None);
        // A matching hash is not enough: the name check decides.
        assert_eq!(t.find(hash_of(5), |_| false), None);
        assert!(t.heap_bytes() <= n as usize * 18 + 64 * MIN_BUCKETS);
    }

    #[test]
    fn reserve_then_insert_never_grows() {
        let mut t = NameTable::default();
        t.reserve(1000);
        let bytes = t.heap_bytes();
        for id in 0..1000u32 {
            t.insert(id.wrapping_mul(0x85EB_CA6B), id);
        }
        assert_eq!(t.heap_bytes(), bytes);
    }
}
