//! Sync rounds and the background threads: the group-commit sync thread,
//! which runs every round but a lone appender's, and the preparer, which
//! creates the next segment ahead of the writer so a roll rarely waits for
//! the disk.
//!
//! Appenders encode their frame straight into the mapping inside a short
//! critical section (see `log.rs`), then, under `Durability::Sync`, count a
//! sync request and wait. A round takes every request counted so far, syncs
//! once up to the furthest written byte, publishes that point to readers,
//! and wakes every waiter it covers. A lone appender runs its round itself;
//! the sync thread runs the rest: groups of several, periodic syncs,
//! sealed segments and the clean close.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::error::Result;
use crate::limits;
use crate::log::{Shared, Spare};
use crate::options::{Durability, Preallocate};
use crate::segment::{HEADER_BYTES, OpenSegment, SLOT_CLEAN, SLOT_SEALED, Segment};

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
/// which everything is durable. Held in `Shared`'s sync lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncCursor {
    pub(crate) index: usize,
    pub(crate) synced: u64,
}

/// Body of the sync thread. Returns the result of the final clean-close sync.
///
/// With `clean_tail` (open found a clean close and wrote nothing), it first
/// drops the clean flag, off the open path: until that is durable, no append
/// may write past the clean end, for a clean slot tells recovery that
/// nothing was ever written there.
pub(crate) fn run_sync(shared: Arc<Shared>, rx: Receiver<Msg>, clean_tail: bool) -> Result<()> {
    if clean_tail {
        let cursor = *shared.lock_sync_cursor();
        match drop_clean_flag(&shared, cursor) {
            Ok(()) => shared.open_for_writes(),
            Err(e) => shared.poison(&e),
        }
    }
    let tick = match shared.options.durability {
        Durability::Periodic(interval) => Some(interval),
        Durability::Sync | Durability::None => None,
    };
    loop {
        let first = next_message(&rx, tick);
        let mut shutdown = first.is_none_or(|msg| msg == Msg::Shutdown);
        let mut sealed_only = first == Some(Msg::SyncSealed);
        // Everything queued now rides on this one sync.
        for msg in rx.try_iter().take(limits::SYNC_QUEUE_DEPTH) {
            shutdown |= msg == Msg::Shutdown;
            sealed_only &= msg == Msg::SyncSealed;
        }
        // An appender may count its request and find the queue full: then
        // the round must cover it.
        sealed_only &= !shutdown && shared.sync_requests.load(Ordering::Acquire) == 0;
        let round = if sealed_only {
            sync_sealed(&shared)
        } else {
            if !shutdown {
                match gather(&shared, &rx) {
                    Gathered::Due => {}
                    Gathered::Taken => continue,
                    Gathered::Shutdown => shutdown = true,
                }
            }
            sync_group(&shared)
        };
        if shutdown {
            round?;
            return mark_clean(&shared, *shared.lock_sync_cursor());
        }
    }
}

/// Takes the group of requests counted so far and syncs everything written:
/// the round the sync thread, or a lone appender, runs. A failure poisons
/// the log.
pub(crate) fn sync_group(shared: &Shared) -> Result<()> {
    let mut cursor = shared.lock_sync_cursor();
    if shared.is_poisoned() {
        return Err(shared.poison_error());
    }
    // Before the swap: a bump the sync thread sees after it read this (see
    // `gather`) belongs to a round whose swap came later still, and so
    // covers every request it was rung for.
    shared.sync_rounds.fetch_add(1, Ordering::AcqRel);
    // Counted requests wrote their frames before counting: the round below,
    // which reads the written end after this, covers them all.
    let group = shared.sync_requests.swap(0, Ordering::AcqRel);
    shared.gather_target.store(group, Ordering::Release);
    sync_round(shared, &mut cursor, false).inspect_err(|e| shared.poison(e))
}

/// Makes the sealed segments durable (see [`Msg::SyncSealed`]).
fn sync_sealed(shared: &Shared) -> Result<()> {
    let mut cursor = shared.lock_sync_cursor();
    if shared.is_poisoned() {
        return Err(shared.poison_error());
    }
    sync_round(shared, &mut cursor, true).inspect_err(|e| shared.poison(e))
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

/// Waits until as many appenders asked for a sync as in the previous group,
/// at most [`MAX_GATHER`]. Callers released by one sync append again tens of
/// microseconds apart (each must be woken and scheduled); syncing at the
/// first doorbell would split them over two syncs. The request that
/// completes the group rings (`Shared::wait_durable`), so the wait ends with
/// it rather than at the next poll. A lone appender (a group of one) never
/// has the sync thread wait: it syncs by itself.
fn gather(shared: &Shared, rx: &Receiver<Msg>) -> Gathered {
    let target = shared.gather_target.load(Ordering::Acquire);
    if target <= 1 {
        return Gathered::Due;
    }
    // Read after every doorbell consumed so far: a round taken after this
    // covers every request that rang.
    let mut seen = shared.sync_rounds.load(Ordering::Acquire);
    let mut deadline = Instant::now() + MAX_GATHER;
    loop {
        if shared.sync_rounds.load(Ordering::Acquire) != seen {
            return Gathered::Taken;
        }
        if shared.sync_requests.load(Ordering::Acquire) >= target {
            return Gathered::Due;
        }
        match rx.recv_deadline(deadline) {
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return Gathered::Shutdown,
            Ok(Msg::Sync | Msg::SyncSealed) => {
                // This doorbell's group may have started after a round was
                // taken: wait for that group instead.
                let now = shared.sync_rounds.load(Ordering::Acquire);
                if now != seen {
                    seen = now;
                    deadline = Instant::now() + MAX_GATHER;
                }
            }
            Err(RecvTimeoutError::Timeout) => return Gathered::Due,
        }
    }
}

/// The next message; a periodic tick counts as a sync request. `None` once
/// every sender is gone.
fn next_message(rx: &Receiver<Msg>, tick: Option<Duration>) -> Option<Msg> {
    match tick {
        Some(interval) => match rx.recv_timeout(interval) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => Some(Msg::Sync),
            Err(RecvTimeoutError::Disconnected) => None,
        },
        None => rx.recv().ok(),
    }
}

/// Syncs every written byte not yet durable (with `sealed_only`, only
/// those of sealed segments), segment by segment, recording each segment's
/// watermark and seal; then publishes and wakes waiters.
fn sync_round(shared: &Shared, cursor: &mut SyncCursor, sealed_only: bool) -> Result<()> {
    let publish = shared.options.durability == Durability::Sync;
    // Published only once the whole round succeeded, with the durable end
    // (`set_durable`): a subscriber must never see an event whose append
    // fails, and an append that returned must find its events published.
    let mut synced = Vec::new();
    loop {
        let Some(seg) = shared.segment_at(cursor.index) else {
            break;
        };
        // Sealed is read before written: once sealed, written covers the marker.
        let sealed = seg.is_sealed();
        if sealed_only && !sealed {
            break;
        }
        let written = seg.written();
        debug_assert!(written >= cursor.synced);
        if written > cursor.synced {
            // Only data pages: each frame records the durable end as of its
            // writing, so no header write rides on every sync (it cost a
            // quarter of the single-writer rate).
            seg.flush(cursor.synced, written)?;
            cursor.synced = written;
        }
        if publish {
            synced.push((Arc::clone(&seg), cursor.synced));
        }
        if !sealed {
            break;
        }
        // The data and end marker are durable: only now may the slot say so,
        // and only now may an index file describe them.
        seg.write_slot(cursor.synced, SLOT_SEALED)?;
        seg.flush(0, HEADER_BYTES)?;
        write_sealed_index(shared, seg.base());
        cursor.index += 1;
        cursor.synced = HEADER_BYTES;
    }
    let durable_end = shared
        .segment_at(cursor.index)
        .map_or(0, |seg| seg.base() + cursor.synced);
    shared.set_durable(durable_end, || {
        for (seg, end) in &synced {
            seg.publish(*end);
            std::sync::atomic::fence(Ordering::SeqCst);
            seg.wake_followers();
        }
        if publish {
            shared.watch.advance(durable_end);
        }
    });
    if publish {
        shared.watch.wake();
    }
    Ok(())
}

/// Writes the index file of the sealed segment at `base`, if the writer left
/// one. A failure only costs a rescan of that segment at the next open.
fn write_sealed_index(shared: &Shared, base: u64) {
    let index = {
        let mut pending = shared
            .sealed_indexes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let at = pending.iter().position(|x| x.base == base);
        at.map(|at| pending.swap_remove(at))
    };
    if let Some(mut index) = index
        && let Err(e) = index.write(
            &*shared.options.storage,
            &shared.dir,
            shared.log_id,
            &shared.names,
        )
    {
        log::warn!("seglog: writing an index file failed: {e}");
    }
}

/// Rewrites the active segment's slot without `CLEAN` (same watermark) and
/// syncs it.
fn drop_clean_flag(shared: &Shared, cursor: SyncCursor) -> Result<()> {
    if let Some(seg) = shared.segment_at(cursor.index) {
        seg.write_slot(cursor.synced, 0)?;
        seg.flush(0, HEADER_BYTES)?;
    }
    Ok(())
}

/// After the final sync: the tail's watermark is its end and nothing was
/// written past it, so the next open need not clear or rescan anything.
pub(crate) fn mark_clean(shared: &Shared, cursor: SyncCursor) -> Result<()> {
    if let Some(seg) = shared.segment_at(cursor.index) {
        debug_assert_eq!(seg.written(), cursor.synced);
        seg.write_slot(cursor.synced, SLOT_CLEAN)?;
        seg.flush(0, HEADER_BYTES)?;
    }
    Ok(())
}

/// Bytes prefaulted per call, so the preparer notices a stop request or a
/// wanted segment soon.
const PREFAULT_CHUNK_BYTES: u64 = 4 << 20;

/// How far ahead of the writer the preparer keeps the active segment
/// faulted in. The whole segment at once (64 MiB at ~1.2 GB/s of page
/// zeroing here) made the first appends to a fresh log contend with it for
/// the same pages and the second core: 1M appends in batches of 100 into a
/// new log took 192 ms before their sync, against 70 ms once ahead. And
/// every prefaulted page is dirty: pages far ahead of the writer may be
/// written back as zeros before they hold data.
const PREFAULT_AHEAD_BYTES: u64 = 16 << 20;

/// The longest the preparer waits when it is far enough ahead. The writer
/// wakes it each time it crosses a [`PREFAULT_CHUNK_BYTES`] boundary (see
/// [`crossed_prefault_chunk`]) and a wanted segment wakes it at once; this
/// only bounds a wake-up lost to a race, and keeps an idle log quiet.
const PREFAULT_POLL: Duration = Duration::from_millis(100);

/// Whether a frame written over segment offsets `[from, to)` crossed a
/// boundary the preparer watches: the writer then wakes it.
pub(crate) fn crossed_prefault_chunk(from: u64, to: u64) -> bool {
    from / PREFAULT_CHUNK_BYTES != to / PREFAULT_CHUNK_BYTES
}

/// Prefaults `[from, to)` of `seg`, at most a chunk (callers step chunk by
/// chunk, so the preparer notices a wanted segment or a stop between
/// them); best effort: an error only costs speed.
fn prefault(seg: &Segment, from: u64, to: u64) -> bool {
    debug_assert!(to - from <= PREFAULT_CHUNK_BYTES);
    match seg.prefault(from, to) {
        Ok(()) => true,
        Err(e) => {
            log::debug!("seglog: prefaulting {:?} failed: {e}", seg.path());
            false
        }
    }
}

/// Drops the page-table entries of `[from, to)` of `seg`, finished by the
/// writer, so that writing it back costs no TLB shootdowns; best effort.
fn release(seg: &Segment, from: u64, to: u64) {
    if let Err(e) = seg.release(from, to) {
        log::debug!("seglog: releasing {:?} failed: {e}", seg.path());
    }
}

/// Starts the disk writing `[from, to)` of `seg`, finished by the writer,
/// under `Durability::None` and `Periodic` (under `Sync` the sync thread
/// writes each group as it comes). Without it nothing reached the disk
/// before the next sync: 1M events in batches of 100 spent ~320 ms in the
/// final `sync` here, against ~190 ms once each finished chunk went out as
/// the writer left it (the disk, 0.3-0.45 GB/s this session, was idle
/// while the appends ran). It is the same writeback the kernel would do at
/// its dirty-page deadlines, in 4 MiB steps instead of a burst.
fn start_writeback(seg: &Segment, from: u64, to: u64) {
    if let Err(e) = seg.start_writeback(from, to) {
        log::debug!("seglog: starting writeback of {:?} failed: {e}", seg.path());
    }
}

/// Body of the preparer thread: keeps the active segment faulted in up to
/// [`PREFAULT_AHEAD_BYTES`] ahead of the writer, and creates each segment
/// the writer will need next (its first stretch faulted in already).
pub(crate) fn run_preparer(shared: Arc<Shared>, active: Arc<Segment>, cursor: u64) {
    let mut ahead = Ahead {
        shared: &shared,
        current: active,
        faulted: cursor,
        released: HEADER_BYTES,
    };
    loop {
        let mut spare = shared.lock_spare();
        match *spare {
            Spare::Stop => return,
            Spare::Wanted(base) => {
                *spare = Spare::Creating {
                    base,
                    awaited: false,
                };
                drop(spare);
                let made = ahead.make_spare(base);
                let mut spare = shared.lock_spare();
                if matches!(*spare, Spare::Stop) {
                    return;
                }
                *spare = match made {
                    Ok(seg) => Spare::Ready(seg),
                    Err(e) => {
                        log::warn!("seglog: preparing the next segment failed: {e}");
                        Spare::Failed
                    }
                };
                shared.spare_changed();
                continue;
            }
            _ => {}
        }
        ahead.follow();
        if ahead.behind() {
            drop(spare);
            ahead.fault_next_chunk();
            continue;
        }
        drop(shared.wait_spare_timeout(spare, PREFAULT_POLL));
    }
}

/// The preparer's hold on the active segment: how far it is faulted in
/// ahead of the writer and released behind it.
struct Ahead<'a> {
    shared: &'a Shared,
    current: Arc<Segment>,
    faulted: u64,
    released: u64,
}

impl Ahead<'_> {
    /// Follows the writer into a new segment, and takes the chunks it
    /// finished out of the page tables (and, unless every group is synced
    /// anyway, starts writing them back).
    fn follow(&mut self) {
        let shared = self.shared;
        if let Some(newest) = shared.active_segment()
            && newest.base() != self.current.base()
        {
            release(&self.current, self.released, self.current.size());
            if shared.options.durability != Durability::Sync {
                shared.ring(Msg::SyncSealed);
            }
            self.current = newest;
            self.faulted = HEADER_BYTES;
            self.released = HEADER_BYTES;
        }
        // Finished chunks a chunk behind the writer leave the page tables.
        let behind = (self.current.written() / PREFAULT_CHUNK_BYTES).saturating_sub(1)
            * PREFAULT_CHUNK_BYTES;
        if behind > self.released {
            release(&self.current, self.released, behind);
            if shared.options.durability != Durability::Sync {
                start_writeback(&self.current, self.released, behind);
            }
            self.released = behind;
        }
        self.faulted = self.faulted.max(self.current.written());
    }

    /// Where the active segment should be faulted in up to now.
    fn target(&self) -> u64 {
        (self.current.written() + PREFAULT_AHEAD_BYTES).min(self.current.size())
    }

    fn behind(&self) -> bool {
        self.faulted < self.target()
    }

    /// Faults in the next chunk of the active segment towards the target.
    fn fault_next_chunk(&mut self) {
        let to = (self.faulted + PREFAULT_CHUNK_BYTES).min(self.target());
        self.faulted = if prefault(&self.current, self.faulted, to) {
            to
        } else {
            self.current.size()
        };
    }

    /// Whether the writer waits for the spare being made, or the log
    /// closes: either way the spare is wanted as it is.
    fn hurried(&self) -> bool {
        !matches!(
            *self.shared.lock_spare(),
            Spare::Creating { awaited: false, .. }
        )
    }

    /// Creates the segment starting at `base` and, unless the writer needs
    /// it first, zero-fills it and faults in its first stretch.
    ///
    /// Zeros go in through `write(2)`, over blocks `fallocate` reserved
    /// (they read as zeros already): faulting a page of an unwritten block
    /// makes the kernel allocate and zero a page and map the block, ~3 us a
    /// page here (`MADV_POPULATE_WRITE` of 64 MiB: 0.7-1.5 GB/s); writing
    /// whole pages skips the zeroing and allocates large folios, and
    /// faulting the cached pages in afterwards only maps them: 2.3-3.0 GB/s
    /// for both steps (a C probe). The writer, which outran the slower
    /// preparer in batched appends, no longer does. The fill goes chunk by
    /// chunk, each after the active segment's runway is topped up: filled
    /// in one go (~140 ms for 64 MiB on a host whose fresh pages cost
    /// 0.45 GB/s) it let appends over a million streams (~0.4 GB/s) run
    /// out of faulted pages and fault the rest of the segment themselves.
    ///
    /// Not under `Durability::Sync`: durable appends are bound by the
    /// sync, not the page zeroing, and 64 MiB of dirty zeros written back
    /// 30 s later would compete with their syncs. Best effort: a failed
    /// fill or fault only costs speed, for the blocks read as zeros either
    /// way.
    fn make_spare(&mut self, base: u64) -> Result<OpenSegment> {
        let shared = self.shared;
        let mut seg = OpenSegment::create(
            &shared.options.storage,
            &shared.dir,
            base,
            shared.options.segment_size_bytes,
            shared.log_id,
            shared.options.preallocate,
        )?;
        let size = seg.segment().size();
        let mut zeroed = if shared.options.durability != Durability::Sync
            && shared.options.preallocate == Preallocate::Fallocate
        {
            HEADER_BYTES
        } else {
            // Zero-filled blocks are written already.
            size
        };
        while zeroed < size && !self.hurried() {
            self.follow();
            if self.behind() {
                self.fault_next_chunk();
                continue;
            }
            let to = (zeroed + PREFAULT_CHUNK_BYTES).min(size);
            if let Err(e) = seg.write_zeros(zeroed, to) {
                log::debug!(
                    "seglog: writing zeros into {:?} failed: {e}",
                    seg.segment().path()
                );
                break;
            }
            zeroed = to;
        }
        let first = (HEADER_BYTES + PREFAULT_AHEAD_BYTES).min(size);
        let mut faulted = HEADER_BYTES;
        while faulted < first && !self.hurried() {
            let to = (faulted + PREFAULT_CHUNK_BYTES).min(first);
            if !prefault(seg.segment(), faulted, to) {
                break;
            }
            faulted = to;
        }
        Ok(seg)
    }
}
