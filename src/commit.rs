//! Group commit: sync requests, the waits for them, the sync rounds and
//! the poison that ends them. One module owns every atomic of it.
//!
//! Appenders encode their frame straight into the mapping inside a short
//! critical section (`append/`), then, under `Durability::Sync`, count a
//! sync request and wait ([`Commit::wait_durable`]). A round takes every
//! request counted so far, syncs once up to the furthest written byte,
//! publishes that point to readers, and wakes every waiter it covers. A
//! lone appender runs its round itself; the sync thread ([`Commit::run`])
//! runs the rest: groups of several, periodic syncs, sealed segments and
//! the clean close.
//!
//! After a failed sync the log is poisoned: the kernel may have dropped the
//! dirty pages, so a retried sync could report lost data as durable
//! (PostgreSQL's "fsyncgate"). Every later append and sync is refused until
//! a reopen recovers from the disk.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::error::{Error, Result};
use crate::index::SegmentIndex;
use crate::limits;
use crate::options::Durability;
use crate::segment::{HEADER_BYTES, SLOT_CLEAN, SLOT_SEALED, Segment};
use crate::view::LogView;

/// What callers hand the sync thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Msg {
    /// Sync everything written so far (unless a lone appender did).
    Sync,
    /// Make the sealed segments durable, not the active one. The preparer
    /// sends it (under `None` and `Periodic`) once it has dropped a sealed
    /// segment's pages from the page tables, so writing them back costs the
    /// appenders no TLB shootdowns and a later sync is left with the active
    /// segment alone.
    SyncSealed,
    /// Sync, mark the tail clean and stop.
    Shutdown,
}

/// How far syncing got: the segment it is on and the offset in it below
/// which everything is durable. Held in [`Commit`]'s sync lock: holding it
/// is running a sync round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncCursor {
    pub(crate) index: usize,
    pub(crate) synced: u64,
}

struct Durable {
    /// Log offset below which everything is on disk.
    synced_end: u64,
    poison: Option<String>,
    /// The sync thread dropped the clean flag of the active segment's slot
    /// (or open found nothing to drop): appends may write.
    writable: bool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks cannot leave torn state behind
    // that matters more than refusing service would: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Group commit of one log.
pub(crate) struct Commit {
    view: Arc<LogView>,
    durability: Durability,
    durable: Mutex<Durable>,
    durable_changed: Condvar,
    /// `Durable::synced_end`, readable without the lock: each frame records
    /// it, which is how recovery tells a torn write from damaged data.
    durable_end: AtomicU64,
    poisoned: AtomicBool,
    /// The end below which appenders waiting for a sync are released:
    /// stored after the round's publish, so an append that returns finds
    /// its events published.
    released_end: AtomicU64,
    /// Bumped after every change of `released_end` or `poisoned`; the word
    /// sync waiters sleep on.
    released_seq: AtomicU32,
    /// Sync requests since a round last took the group: the size of the
    /// group forming now.
    sync_requests: AtomicUsize,
    /// The size of the previous group: the request that completes it again
    /// rings the sync thread, which waits for it (see [`Commit::gather`]);
    /// a request that finds it at one runs its own round.
    gather_target: AtomicUsize,
    /// How far syncing got. Whoever holds it runs a sync round: the sync
    /// thread, or a lone appender (see [`Commit::wait_durable`]).
    sync_cursor: Mutex<SyncCursor>,
    /// Bumped each time a round takes the group counted so far: the sync
    /// thread's sign that a lone appender synced the group it was waiting
    /// for.
    sync_rounds: AtomicU64,
    doorbell: Sender<Msg>,
    /// Index files of sealed segments, waiting for their data to be durable.
    sealed_indexes: Mutex<Vec<SegmentIndex>>,
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commit")
            .field("durable_end", &self.durable_end)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// Longest the sync thread waits for a group to complete before it syncs
/// what there is.
const MAX_GATHER: Duration = Duration::from_micros(100);

/// How the sync thread's wait for a group ended.
enum Gathered {
    /// The group completed, did not in time, or there is no group to wait
    /// for: sync now.
    Due,
    /// A lone appender took the group and synced it.
    Taken,
    Shutdown,
}

impl Commit {
    /// Group commit for `view`, durable up to `cursor` (in the newest
    /// segment), writable at once unless the tail's slot still says `CLEAN`.
    /// Returns the receiving end of the doorbell, for the sync thread.
    pub(crate) fn new(
        view: Arc<LogView>,
        durability: Durability,
        cursor: SyncCursor,
        clean_tail: bool,
    ) -> (Commit, Receiver<Msg>) {
        let synced_end = view
            .segment_at(cursor.index)
            .map_or(0, |seg| seg.base() + cursor.synced);
        let (doorbell, rx) = crossbeam_channel::bounded(limits::SYNC_QUEUE_DEPTH);
        let commit = Commit {
            view,
            durability,
            durable: Mutex::new(Durable {
                synced_end,
                poison: None,
                writable: !clean_tail,
            }),
            durable_changed: Condvar::new(),
            durable_end: AtomicU64::new(synced_end),
            poisoned: AtomicBool::new(false),
            released_end: AtomicU64::new(synced_end),
            released_seq: AtomicU32::new(0),
            sync_requests: AtomicUsize::new(0),
            gather_target: AtomicUsize::new(0),
            sync_cursor: Mutex::new(cursor),
            sync_rounds: AtomicU64::new(0),
            doorbell,
            sealed_indexes: Mutex::new(Vec::new()),
        };
        (commit, rx)
    }

    /// Log offset below which everything is on disk.
    pub(crate) fn durable_end(&self) -> u64 {
        self.durable_end.load(Ordering::Acquire)
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn poison_error(&self) -> Error {
        let reason = lock(&self.durable)
            .poison
            .clone()
            .unwrap_or_else(|| "the sync thread stopped".into());
        Error::Poisoned { reason }
    }

    /// Refuses every later write: after a failed sync the kernel may have
    /// dropped dirty pages, so retrying could report lost data as durable.
    pub(crate) fn poison(&self, error: &Error) {
        log::error!("seglog: refusing further writes: {error}");
        let mut d = lock(&self.durable);
        let reason = d.poison.get_or_insert_with(|| error.to_string()).clone();
        self.poisoned.store(true, Ordering::Release);
        self.durable_changed.notify_all();
        drop(d);
        self.release_waiters();
        self.view.watch.close_poisoned(&reason);
    }

    /// Wakes every appender waiting for a sync, to look again.
    fn release_waiters(&self) {
        self.released_seq.fetch_add(1, Ordering::Release);
        atomic_wait::wake_all(&self.released_seq);
    }

    /// Records that `[.., end)` is durable, runs `publish` and only then
    /// releases the appenders waiting for it: a reader that sees a
    /// published event knows its append can only return `Ok` (the durable
    /// end is set first), and an appender that returns finds its events
    /// published (read-your-writes). The waiters are woken after the lock
    /// is dropped: they look at atomics only, so none of them wakes into a
    /// held lock.
    fn set_durable(&self, end: u64, publish: impl FnOnce()) {
        let mut d = lock(&self.durable);
        debug_assert!(end >= d.synced_end, "durable end went back");
        d.synced_end = d.synced_end.max(end);
        self.durable_end.store(d.synced_end, Ordering::Release);
        publish();
        self.released_end.store(d.synced_end, Ordering::Release);
        drop(d);
        self.release_waiters();
    }

    /// Lets appends write to the active segment: its slot no longer says
    /// `CLEAN` on disk.
    fn open_for_writes(&self) {
        lock(&self.durable).writable = true;
        self.durable_changed.notify_all();
    }

    /// Waits until appends may write (see [`Commit::open_for_writes`]). The
    /// first append after a clean open waits here for at most the one
    /// header sync the sync thread starts at open.
    pub(crate) fn wait_writable(&self) -> Result<()> {
        let mut d = lock(&self.durable);
        loop {
            if d.writable {
                return Ok(());
            }
            if let Some(reason) = &d.poison {
                return Err(Error::Poisoned {
                    reason: reason.clone(),
                });
            }
            d = self
                .durable_changed
                .wait(d)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Hands the sync thread `msg` if its queue has room (a full queue has a
    /// sync due already).
    pub(crate) fn ring(&self, msg: Msg) {
        let _ = self.doorbell.try_send(msg);
    }

    /// Tells the sync thread to sync, mark the tail clean and stop; `false`
    /// when it is gone already.
    pub(crate) fn shut_down(&self) -> bool {
        self.doorbell.send(Msg::Shutdown).is_ok()
    }

    /// Queues the index file of a sealed segment: a round writes it once
    /// the segment is durable and sealed.
    pub(crate) fn add_sealed_index(&self, index: SegmentIndex) {
        lock(&self.sealed_indexes).push(index);
    }

    /// The sync cursor: holding it is running a sync round.
    pub(crate) fn lock_sync_cursor(&self) -> MutexGuard<'_, SyncCursor> {
        lock(&self.sync_cursor)
    }

    /// Counts a sync request and waits until `[.., end)` is durable.
    ///
    /// A lone appender (a request that starts a group when the previous
    /// group was of one) runs the round itself ([`Commit::sync_group`]),
    /// after any round in flight: handing it to the sync thread and being
    /// woken by it cost two cross-core wake-ups a round (okaywal's
    /// `synchronize_locked` does the same). A group of several is the sync
    /// thread's: the request that starts it rings, and so does the one
    /// that makes it as large as the previous group, which ends the sync
    /// thread's wait for it ([`Commit::gather`]); requests in between only
    /// count, for ringing each would wake the sync thread once per
    /// appender. An appender running the round of a group instead kept the
    /// sync thread awake on the other core during that round's `msync`,
    /// which then had to shoot down its TLB entries there (docs/PERFORMANCE.md,
    /// "Durable append and group commit (W3)").
    pub(crate) fn wait_durable(&self, end: u64) -> Result<()> {
        let n = self.sync_requests.fetch_add(1, Ordering::AcqRel) + 1;
        let target = self.gather_target.load(Ordering::Acquire);
        if n == 1 && target <= 1 {
            // A failed round poisoned the log; `wait_released` reports it
            // unless an earlier round made `[.., end)` durable.
            let synced = self.sync_group();
            debug_assert!(synced.is_ok() || self.is_poisoned());
        } else if n == 1 || n == target {
            match self.doorbell.try_send(Msg::Sync) {
                // A full queue means a round is already due and will cover us.
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return Err(self.poison_error()),
            }
        }
        self.wait_released(end)
    }

    /// Waits until a sync round released `[.., end)`, or the log is
    /// poisoned. Sleeps on `released_seq` (a futex word) rather than a
    /// condition variable: a condition variable wakes every waiter into its
    /// mutex, one at a time, which on two cores cost a group of 16 more
    /// than its fsync.
    fn wait_released(&self, end: u64) -> Result<()> {
        // Durable before a later sync failed is durable: subscribers may
        // have seen it, so its append must not report a failure.
        loop {
            let seq = self.released_seq.load(Ordering::Acquire);
            if self.released_end.load(Ordering::Acquire) >= end {
                return Ok(());
            }
            if self.poisoned.load(Ordering::Acquire) {
                return Err(self.poison_error());
            }
            atomic_wait::wait(&self.released_seq, seq);
        }
    }

    /// Body of the sync thread. Returns the result of the final clean-close
    /// sync.
    ///
    /// With `clean_tail` (open found a clean close and wrote nothing), it
    /// first drops the clean flag, off the open path: until that is
    /// durable, no append may write past the clean end, for a clean slot
    /// tells recovery that nothing was ever written there.
    pub(crate) fn run(&self, rx: &Receiver<Msg>, clean_tail: bool) -> Result<()> {
        if clean_tail {
            let cursor = *self.lock_sync_cursor();
            match self.write_tail_slot(cursor, 0) {
                Ok(()) => self.open_for_writes(),
                Err(e) => self.poison(&e),
            }
        }
        let tick = match self.durability {
            Durability::Periodic(interval) => Some(interval),
            Durability::Sync | Durability::None => None,
        };
        loop {
            let (mut shutdown, sealed_only) = self.next_round(rx, tick);
            let round = if sealed_only {
                self.sync_sealed()
            } else {
                if !shutdown {
                    match self.gather(rx) {
                        Gathered::Due => {}
                        Gathered::Taken => continue,
                        Gathered::Shutdown => shutdown = true,
                    }
                }
                self.sync_group()
            };
            if shutdown {
                round?;
                return self.mark_clean();
            }
        }
    }

    /// Waits for the next message and drains the queue behind it: whether
    /// this round ends the thread, and whether it is for sealed segments
    /// only. A periodic tick counts as a sync request.
    fn next_round(&self, rx: &Receiver<Msg>, tick: Option<Duration>) -> (bool, bool) {
        let first = match tick {
            Some(interval) => match rx.recv_timeout(interval) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => Some(Msg::Sync),
                Err(RecvTimeoutError::Disconnected) => None,
            },
            None => rx.recv().ok(),
        };
        let mut shutdown = first.is_none_or(|msg| msg == Msg::Shutdown);
        let mut sealed_only = first == Some(Msg::SyncSealed);
        // Everything queued now rides on this one sync.
        for msg in rx.try_iter().take(limits::SYNC_QUEUE_DEPTH) {
            shutdown |= msg == Msg::Shutdown;
            sealed_only &= msg == Msg::SyncSealed;
        }
        // An appender may count its request and find the queue full: then
        // the round must cover it.
        sealed_only &= !shutdown && self.sync_requests.load(Ordering::Acquire) == 0;
        (shutdown, sealed_only)
    }

    /// Takes the group of requests counted so far and syncs everything
    /// written: the round the sync thread, or a lone appender, runs. A
    /// failure poisons the log.
    pub(crate) fn sync_group(&self) -> Result<()> {
        let mut cursor = self.lock_sync_cursor();
        if self.is_poisoned() {
            return Err(self.poison_error());
        }
        // Before the swap: a bump the sync thread sees after it read this
        // (see `gather`) belongs to a round whose swap came later still, and
        // so covers every request it was rung for.
        self.sync_rounds.fetch_add(1, Ordering::AcqRel);
        // Counted requests wrote their frames before counting: the round
        // below, which reads the written end after this, covers them all.
        let group = self.sync_requests.swap(0, Ordering::AcqRel);
        self.gather_target.store(group, Ordering::Release);
        self.sync_round(&mut cursor, false)
            .inspect_err(|e| self.poison(e))
    }

    /// Makes the sealed segments durable (see [`Msg::SyncSealed`]).
    fn sync_sealed(&self) -> Result<()> {
        let mut cursor = self.lock_sync_cursor();
        if self.is_poisoned() {
            return Err(self.poison_error());
        }
        self.sync_round(&mut cursor, true)
            .inspect_err(|e| self.poison(e))
    }

    /// Waits until as many appenders asked for a sync as in the previous
    /// group, at most [`MAX_GATHER`]. Callers released by one sync append
    /// again tens of microseconds apart (each must be woken and scheduled);
    /// syncing at the first doorbell would split them over two syncs. The
    /// request that completes the group rings ([`Commit::wait_durable`]),
    /// so the wait ends with it rather than at the next poll. A lone
    /// appender (a group of one) never has the sync thread wait: it syncs
    /// by itself.
    fn gather(&self, rx: &Receiver<Msg>) -> Gathered {
        let target = self.gather_target.load(Ordering::Acquire);
        if target <= 1 {
            return Gathered::Due;
        }
        // Read after every doorbell consumed so far: a round taken after
        // this covers every request that rang.
        let mut seen = self.sync_rounds.load(Ordering::Acquire);
        let mut deadline = Instant::now() + MAX_GATHER;
        loop {
            if self.sync_rounds.load(Ordering::Acquire) != seen {
                return Gathered::Taken;
            }
            if self.sync_requests.load(Ordering::Acquire) >= target {
                return Gathered::Due;
            }
            match rx.recv_deadline(deadline) {
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    return Gathered::Shutdown;
                }
                Ok(Msg::Sync | Msg::SyncSealed) => {
                    // This doorbell's group may have started after a round
                    // was taken: wait for that group instead.
                    let now = self.sync_rounds.load(Ordering::Acquire);
                    if now != seen {
                        seen = now;
                        deadline = Instant::now() + MAX_GATHER;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Gathered::Due,
            }
        }
    }

    /// Syncs every written byte not yet durable (with `sealed_only`, only
    /// those of sealed segments), segment by segment, recording each
    /// segment's watermark and seal; then publishes and wakes waiters.
    fn sync_round(&self, cursor: &mut SyncCursor, sealed_only: bool) -> Result<()> {
        let publish = self.durability == Durability::Sync;
        // Published only once the whole round succeeded, with the durable
        // end (`set_durable`): a subscriber must never see an event whose
        // append fails, and an append that returned must find its events
        // published.
        let mut synced = Vec::new();
        while let Some(seg) = self.view.segment_at(cursor.index) {
            // Sealed is read before written: once sealed, written covers the
            // marker.
            let sealed = seg.is_sealed();
            if sealed_only && !sealed {
                break;
            }
            self.sync_segment(&seg, cursor)?;
            if publish {
                synced.push((Arc::clone(&seg), cursor.synced));
            }
            if !sealed {
                break;
            }
            self.seal_synced(&seg, cursor)?;
        }
        let durable_end = self
            .view
            .segment_at(cursor.index)
            .map_or(0, |seg| seg.base() + cursor.synced);
        self.set_durable(durable_end, || {
            for (seg, end) in &synced {
                seg.publish(*end);
                std::sync::atomic::fence(Ordering::SeqCst);
                seg.wake_followers();
            }
            if publish {
                self.view.watch.advance(durable_end);
            }
        });
        if publish {
            self.view.watch.wake();
        }
        Ok(())
    }

    /// Syncs what `seg` has written past the cursor. Only data pages: each
    /// frame records the durable end as of its writing, so no header write
    /// rides on every sync.
    fn sync_segment(&self, seg: &Segment, cursor: &mut SyncCursor) -> Result<()> {
        let written = seg.written();
        debug_assert!(written >= cursor.synced);
        if written > cursor.synced {
            seg.flush(cursor.synced, written)?;
            cursor.synced = written;
        }
        Ok(())
    }

    /// `seg`'s data and end marker are durable: only now may its slot say
    /// so, and only now may an index file describe it. Moves the cursor to
    /// the next segment.
    fn seal_synced(&self, seg: &Segment, cursor: &mut SyncCursor) -> Result<()> {
        seg.write_slot(cursor.synced, SLOT_SEALED)?;
        seg.flush(0, HEADER_BYTES)?;
        self.write_sealed_index(seg.base());
        cursor.index += 1;
        cursor.synced = HEADER_BYTES;
        Ok(())
    }

    /// Writes the index file of the sealed segment at `base`, if the writer
    /// left one. A failure only costs a rescan of that segment at the next
    /// open.
    fn write_sealed_index(&self, base: u64) {
        let index = {
            let mut pending = lock(&self.sealed_indexes);
            let at = pending.iter().position(|x| x.base == base);
            at.map(|at| pending.swap_remove(at))
        };
        let view = &*self.view;
        if let Some(mut index) = index
            && let Err(e) = index.write(&*view.storage, &view.dir, view.log_id, &view.names)
        {
            log::warn!("seglog: writing an index file failed: {e}");
        }
    }

    /// Rewrites the slot of the segment `cursor` is on with `flags` (same
    /// watermark) and syncs it.
    fn write_tail_slot(&self, cursor: SyncCursor, flags: u32) -> Result<()> {
        if let Some(seg) = self.view.segment_at(cursor.index) {
            debug_assert!(flags != SLOT_CLEAN || seg.written() == cursor.synced);
            seg.write_slot(cursor.synced, flags)?;
            seg.flush(0, HEADER_BYTES)?;
        }
        Ok(())
    }

    /// After the final sync: the tail's watermark is its end and nothing
    /// was written past it, so the next open need not clear or rescan
    /// anything.
    pub(crate) fn mark_clean(&self) -> Result<()> {
        let cursor = *self.lock_sync_cursor();
        self.write_tail_slot(cursor, SLOT_CLEAN)
    }

    /// The round counter and the size of the last group, for tests of the
    /// group logic.
    #[cfg(test)]
    pub(crate) fn rounds_and_target(&self) -> (u64, usize) {
        (
            self.sync_rounds.load(Ordering::Acquire),
            self.gather_target.load(Ordering::Acquire),
        )
    }
}
