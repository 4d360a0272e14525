//! A cache prefetch hint, for the two places where independent misses can
//! overlap: an appender's name-table bucket (fetched before the tail lock)
//! and the frames of several index intervals of a stream being read.

/// Asks the CPU to start loading the cache line at address `addr` into
/// cache, so that a read of it after other work finds it there: the work
/// overlaps the miss instead of following it. The address may be stale (an
/// array freed since): a prefetch never faults and is never read from.
///
/// `unsafe` because stable Rust has no safe prefetch, and a plain load
/// would stall the instructions after it once the reorder window fills (and a locked instruction, such as an `Arc`
/// clone, waits for every load before it; a prefetch it does not).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(crate) fn prefetch(addr: usize) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    let at: *const i8 = std::ptr::without_provenance(addr);
    // SAFETY: `_mm_prefetch` is a hint: it neither reads nor writes memory
    // the program can observe, and it never faults, whatever the address
    // (LLVM's `llvm.prefetch`: "no effect on the behavior of the program").
    // SSE, which it needs, is part of every x86_64 target.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(at) }
}

/// No stable prefetch elsewhere: the read simply waits for its miss.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn prefetch(_addr: usize) {}
