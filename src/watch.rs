//! Where the visible log ends, and the subscribers waiting for it to move.
//!
//! The writer (or, under `Durability::Sync`, the sync round) advances the
//! end each time it publishes; a subscriber at the head sleeps on a condition
//! variable until the end moves past what it has seen. No polling: an idle
//! subscriber costs nothing, and a wake costs one `notify_all`, paid only
//! while someone waits (one `SeqCst` store and one load per publish
//! otherwise).
//!
//! Lost wake-ups are ruled out in the usual way: a waiter registers in
//! `waiters` (under `lock`, `SeqCst`) *before* it re-reads the end, and the
//! publisher swaps the end in (`SeqCst`) *before* it reads `waiters`. Either the
//! waiter sees the new end, or the publisher sees the waiter and notifies
//! under `lock`, which the waiter only releases inside `wait`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Watch {
    /// Log offset where the published log ends.
    end: AtomicU64,
    /// No more events will be published through this handle.
    closed: AtomicBool,
    /// Why publishing stopped, when a failed sync stopped it.
    poison: OnceLock<String>,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    moved: Condvar,
}

/// Why [`Watch::wait_past`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// The end moved.
    Moved,
    /// The log was closed (or stopped publishing for good).
    Closed,
    /// The deadline passed first.
    TimedOut,
}

impl Watch {
    pub(crate) fn new(end: u64) -> Watch {
        Watch {
            end: AtomicU64::new(end),
            closed: AtomicBool::new(false),
            poison: OnceLock::new(),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            moved: Condvar::new(),
        }
    }

    /// Log offset where the published log ends now.
    pub(crate) fn end(&self) -> u64 {
        self.end.load(Ordering::SeqCst)
    }

    /// Records that everything below `end` is published. One publisher at a
    /// time (the tail's holder, or the sync round's) keeps the end monotonic.
    /// A `SeqCst` swap: the one locked instruction of a publish, it orders
    /// the publish's stores (the segment's, its live words, this end)
    /// before the waiter counts read after it. (A `SeqCst` fence compiles
    /// to `mfence`, a measurable share of a single append.) Then
    /// [`Watch::wake`], outside any lock the waiters do not need.
    pub(crate) fn advance(&self, end: u64) {
        let before = self.end.swap(end, Ordering::SeqCst);
        debug_assert!(end >= before, "the end went back");
    }

    /// Wakes the subscribers waiting at the head, if there are any. After
    /// [`Watch::advance`]: either a waiter that registered saw the new end,
    /// or this load sees the waiter.
    pub(crate) fn wake(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.moved.notify_all();
        }
    }

    /// Closes the watch for good because a sync failed with `reason`: a
    /// subscriber woken by it reports `Error::Poisoned`, not `Closed`.
    pub(crate) fn close_poisoned(&self, reason: &str) {
        let _ = self.poison.set(reason.to_string());
        self.close();
    }

    /// The failed sync that closed the watch, if one did.
    pub(crate) fn poisoned(&self) -> Option<&str> {
        self.poison.get().map(String::as_str)
    }

    /// Marks the log closed and wakes every waiter.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.moved.notify_all();
    }

    /// Whether the log has closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Sleeps until the end is no longer `seen`, the log closes, or
    /// `deadline` passes (`None`: no deadline).
    pub(crate) fn wait_past(&self, seen: u64, deadline: Option<Instant>) -> Woken {
        let mut held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let woken = loop {
            if self.end.load(Ordering::SeqCst) != seen {
                break Woken::Moved;
            }
            if self.closed.load(Ordering::SeqCst) {
                break Woken::Closed;
            }
            match deadline {
                None => held = self.moved.wait(held).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break Woken::TimedOut;
                    };
                    held = self
                        .moved
                        .wait_timeout(held, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        drop(held);
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_waiter_wakes_on_advance_and_on_close() {
        let watch = Arc::new(Watch::new(10));
        let soon = || Some(Instant::now() + Duration::from_millis(20));
        assert_eq!(watch.wait_past(10, soon()), Woken::TimedOut);
        assert_eq!(watch.wait_past(9, soon()), Woken::Moved);

        let waiter = {
            let watch = Arc::clone(&watch);
            std::thread::spawn(move || watch.wait_past(10, None))
        };
        while watch.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        watch.advance(20);
        watch.wake();
        assert_eq!(waiter.join().ok(), Some(Woken::Moved));

        let waiter = {
            let watch = Arc::clone(&watch);
            std::thread::spawn(move || watch.wait_past(20, None))
        };
        while watch.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        watch.close();
        assert_eq!(waiter.join().ok(), Some(Woken::Closed));
        assert_eq!(watch.wait_past(20, None), Woken::Closed);
        assert_eq!(watch.wait_past(19, None), Woken::Moved);
    }
}
