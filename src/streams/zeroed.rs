//! Fixed-length, zero-filled arrays for the registry's large tables, in an
//! anonymous mapping advised for transparent huge pages.
//!
//! Why: an append to a stream that is not in cache reads one random line of
//! the name table, which is 16 MiB at 1M streams. With 4 KiB pages that read
//! also misses the TLB, and on a virtual machine the page walk is nested and
//! costs more than the cache miss itself. A 2 MiB page covers 32,768
//! buckets, so the TLB then holds the whole table.
//!
//! A fresh mapping is zero without writing a byte (the kernel clears pages
//! as they are first touched), so an empty table costs nothing up front; the
//! table's encoding makes an all-zero slot the empty one. If the kernel
//! refuses a mapping, the array lives on the heap instead: only slower.

use bytemuck::Pod;
use memmap2::{MmapMut, MmapOptions};

/// Arrays below this size stay on the heap: a mapping costs a system call
/// to make and to free, and a small table is in cache anyway.
const MAP_FROM_BYTES: usize = 256 << 10;

/// `len` zeroed `T`s, on huge pages where the kernel gives them.
#[derive(Debug)]
pub(crate) struct Zeroed<T: Pod> {
    backing: Backing<T>,
    len: usize,
}

#[derive(Debug)]
enum Backing<T> {
    Heap(Vec<T>),
    Mapped(MmapMut),
}

impl<T: Pod> Zeroed<T> {
    /// `len` zeroed values, mapped when the array is large.
    pub(crate) fn new(len: usize) -> Self {
        let bytes = len.saturating_mul(size_of::<T>());
        if bytes >= MAP_FROM_BYTES
            && let Some(map) = map(bytes)
        {
            return Zeroed {
                backing: Backing::Mapped(map),
                len,
            };
        }
        Self::on_heap(len)
    }

    /// `len` zeroed values on the heap.
    pub(crate) fn on_heap(len: usize) -> Self {
        Zeroed {
            backing: Backing::Heap(vec![T::zeroed(); len]),
            len,
        }
    }

    /// The address of the first value (for [`crate::prefetch`]).
    pub(crate) fn addr(&self) -> usize {
        self.as_slice().as_ptr().addr()
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        match &self.backing {
            Backing::Heap(v) => v,
            Backing::Mapped(m) => &bytemuck::cast_slice(&m[..])[..self.len],
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.backing {
            Backing::Heap(v) => v,
            Backing::Mapped(m) => &mut bytemuck::cast_slice_mut(&mut m[..])[..self.len],
        }
    }

    /// Whether the values live in a mapping (tests check which path ran).
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Mapped(_))
    }
}

/// An anonymous mapping of `bytes`, rounded up to whole huge pages so that
/// every page of it can be one, advised for them. `None` when the kernel
/// refuses (the caller falls back to the heap).
fn map(bytes: usize) -> Option<MmapMut> {
    const HUGE_PAGE: usize = 2 << 20;
    let len = bytes.checked_next_multiple_of(HUGE_PAGE)?;
    let map = MmapOptions::new().len(len).map_anon().ok()?;
    // Best effort: without huge pages the table works the same, slower.
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backings_start_zeroed_and_keep_what_is_written() {
        let words = MAP_FROM_BYTES / 8 * 3;
        let mut mapped = Zeroed::<[u64; 8]>::new(words / 8);
        let mut heap = Zeroed::<[u64; 8]>::on_heap(words / 8);
        assert!(mapped.is_mapped() && !heap.is_mapped());
        assert!(!Zeroed::<u64>::new(16).is_mapped());
        for z in [&mut mapped, &mut heap] {
            assert_eq!(z.as_slice().len(), words / 8);
            assert!(z.as_slice().iter().flatten().all(|&w| w == 0));
            let last = z.as_slice().len() - 1;
            z.as_mut_slice()[last][7] = 42;
            z.as_mut_slice()[0][0] = 7;
            assert_eq!((z.as_slice()[0][0], z.as_slice()[last][7]), (7, 42));
        }
    }
}
