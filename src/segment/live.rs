//! The live words of a segment's header page, shared across processes:
//! how far the writer published, and the futex word followers sleep on
//! (docs/FORMAT.md, "Live words"; `reader.rs` for the protocol).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::header::HEADER_BYTES;
use super::map::{Live, Segment};

impl Segment {
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
}

/// Longest a follower that cannot register as a waiter sleeps between two
/// looks at the live words.
const FOLLOWER_POLL: Duration = Duration::from_millis(1);

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
