//! The next segment, made ahead of the writer by the preparer thread, and
//! the runway of prefaulted pages the preparer keeps in front of the
//! writer in the active segment.
//!
//! A segment is created (reserved, header written, synced, renamed) by the
//! preparer, or by an appender that needs it first ([`Spares::prepare`]),
//! never under the append side's lock: a roll under that lock only takes a
//! segment that is ready ([`Spares::take`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::commit::{Commit, Msg, lock};
use crate::error::{Error, Result};
use crate::options::{Durability, Options, Preallocate};
use crate::segment::{HEADER_BYTES, OpenSegment, Segment};
use crate::view::LogView;

/// The next segment's state.
pub(crate) enum Spare {
    /// The preparer should create the segment starting at this offset.
    Wanted(u64),
    /// Being created. `awaited`: an appender needs it now and waits for
    /// it, so the preparer hands it over as it is, its zero-fill
    /// unfinished.
    Creating { base: u64, awaited: bool },
    /// Ready to become the active segment (boxed: a segment is far larger
    /// than the other states).
    Ready(Box<OpenSegment>),
    /// Creation failed; the appender that needs it will try again.
    Failed,
    /// The log is closing.
    Stop,
}

/// The spare segment and the condition its changes are signalled on.
pub(crate) struct Spares {
    spare: Mutex<Spare>,
    changed: Condvar,
    /// Log offset of the next segment the writer will take: every segment
    /// below it was taken already. Changed and read under `spare`'s lock.
    next_base: AtomicU64,
}

impl Spares {
    /// `spare`, the writer's next segment starting at `next_base`.
    pub(crate) fn new(spare: Spare, next_base: u64) -> Spares {
        Spares {
            spare: Mutex::new(spare),
            changed: Condvar::new(),
            next_base: AtomicU64::new(next_base),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Spare> {
        lock(&self.spare)
    }

    /// Wakes the preparer (and appenders waiting for a segment).
    pub(crate) fn changed(&self) {
        self.changed.notify_all();
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Spare>) -> MutexGuard<'a, Spare> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    fn wait_timeout<'a>(
        &self,
        guard: MutexGuard<'a, Spare>,
        timeout: Duration,
    ) -> MutexGuard<'a, Spare> {
        self.changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// Stops the preparer.
    pub(crate) fn stop(&self) {
        *self.lock() = Spare::Stop;
        self.changed();
    }

    /// The segment starting at `base`, if it is ready: it becomes the
    /// writer's, and the preparer goes on to the one after it. Never waits
    /// for the disk: a roll under the append side's lock calls it.
    pub(crate) fn take(&self, base: u64) -> Option<OpenSegment> {
        let mut spare = self.lock();
        let Spare::Ready(seg) = &*spare else {
            return None;
        };
        if seg.segment().base() != base {
            return None;
        }
        let next = seg.segment().end();
        let Spare::Ready(seg) = std::mem::replace(&mut *spare, Spare::Wanted(next)) else {
            return None;
        };
        self.next_base.store(next, Ordering::Relaxed);
        self.changed();
        Some(*seg)
    }

    /// Makes the segment starting at `base` ready: waits for the preparer
    /// if it is making it, else creates it here. Called without the append
    /// side's lock, so readers and other appenders go on meanwhile. A full
    /// disk fails here, cleanly, and leaves the log as it was.
    pub(crate) fn prepare(&self, view: &LogView, options: &Options, base: u64) -> Result<()> {
        let mut spare = self.lock();
        loop {
            // Another appender took it (and rolled, or is about to) while
            // this one waited: the append tries again in it.
            if base < self.next_base.load(Ordering::Relaxed) {
                return Ok(());
            }
            match &mut *spare {
                Spare::Ready(seg) if seg.segment().base() == base => return Ok(()),
                Spare::Creating { base: b, awaited } if *b == base => {
                    *awaited = true;
                    spare = self.wait(spare);
                }
                Spare::Stop => return Err(Error::Closed),
                _ => break,
            }
        }
        // Made while holding the lock so the preparer cannot race us to it.
        match create(view, options, base) {
            Ok(seg) => {
                *spare = Spare::Ready(Box::new(seg));
                self.changed();
                Ok(())
            }
            Err(e) => {
                *spare = Spare::Failed;
                Err(e)
            }
        }
    }
}

fn create(view: &LogView, options: &Options, base: u64) -> Result<OpenSegment> {
    OpenSegment::create(
        &view.storage,
        &view.dir,
        base,
        options.segment_size_bytes,
        view.log_id,
        options.preallocate,
    )
}

/// Bytes prefaulted per call, so the preparer notices a stop request or a
/// wanted segment soon.
const PREFAULT_CHUNK_BYTES: u64 = 4 << 20;

/// How far ahead of the writer the preparer keeps the active segment
/// faulted in. The whole segment at once made the first appends to a fresh
/// log contend with it for the same pages and the second core
/// (docs/PERFORMANCE.md); and every prefaulted page is dirty: pages far
/// ahead of the writer may be written back as zeros before they hold data.
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
/// before the next sync, and the final `sync` of a bulk load paid for all
/// of it (docs/PERFORMANCE.md). It is the same writeback the kernel would
/// do at its dirty-page deadlines, in 4 MiB steps instead of a burst.
fn start_writeback(seg: &Segment, from: u64, to: u64) {
    if let Err(e) = seg.start_writeback(from, to) {
        log::debug!("seglog: starting writeback of {:?} failed: {e}", seg.path());
    }
}

/// What the preparer thread works with.
pub(crate) struct Preparer<'a> {
    pub(crate) view: &'a LogView,
    pub(crate) options: &'a Options,
    pub(crate) spares: &'a Spares,
    /// Rung for a sealed segment the preparer released.
    pub(crate) commit: &'a Commit,
}

/// Body of the preparer thread: keeps the active segment faulted in up to
/// [`PREFAULT_AHEAD_BYTES`] ahead of the writer, and creates each segment
/// the writer will need next (its first stretch faulted in already).
pub(crate) fn run_preparer(p: &Preparer<'_>, active: Arc<Segment>, cursor: u64) {
    let mut runway = Runway {
        p,
        current: active,
        faulted: cursor,
        released: HEADER_BYTES,
    };
    loop {
        let mut spare = p.spares.lock();
        match *spare {
            Spare::Stop => return,
            Spare::Wanted(base) => {
                *spare = Spare::Creating {
                    base,
                    awaited: false,
                };
                drop(spare);
                if !runway.hand_over(base) {
                    return;
                }
                continue;
            }
            _ => {}
        }
        runway.follow();
        if runway.behind() {
            drop(spare);
            runway.fault_next_chunk();
            continue;
        }
        drop(p.spares.wait_timeout(spare, PREFAULT_POLL));
    }
}

/// The preparer's hold on the active segment: how far it is faulted in
/// ahead of the writer and released behind it.
struct Runway<'a> {
    p: &'a Preparer<'a>,
    current: Arc<Segment>,
    faulted: u64,
    released: u64,
}

impl Runway<'_> {
    /// Makes the segment at `base` and hands it over; `false` when the log
    /// closed meanwhile.
    fn hand_over(&mut self, base: u64) -> bool {
        let made = self.make_spare(base);
        let mut spare = self.p.spares.lock();
        if matches!(*spare, Spare::Stop) {
            return false;
        }
        *spare = match made {
            Ok(seg) => Spare::Ready(Box::new(seg)),
            Err(e) => {
                log::warn!("seglog: preparing the next segment failed: {e}");
                Spare::Failed
            }
        };
        self.p.spares.changed();
        true
    }

    /// Follows the writer into a new segment, and takes the chunks it
    /// finished out of the page tables (and, unless every group is synced
    /// anyway, starts writing them back).
    fn follow(&mut self) {
        let p = self.p;
        let durable_each = p.options.durability == Durability::Sync;
        if let Some(newest) = p.view.newest_segment()
            && newest.base() != self.current.base()
        {
            release(&self.current, self.released, self.current.size());
            if !durable_each {
                p.commit.ring(Msg::SyncSealed);
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
            if !durable_each {
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

    /// Whether an appender waits for the spare being made, or the log
    /// closes: either way the spare is wanted as it is.
    fn hurried(&self) -> bool {
        !matches!(
            *self.p.spares.lock(),
            Spare::Creating { awaited: false, .. }
        )
    }

    /// Creates the segment starting at `base` and, unless an appender needs
    /// it first, zero-fills it and faults in its first stretch.
    ///
    /// Zeros go in through `write(2)`, over blocks `fallocate` reserved
    /// (they read as zeros already): faulting a page of an unwritten block
    /// makes the kernel allocate and zero a page and map the block; writing
    /// whole pages skips the zeroing and allocates large folios, and
    /// faulting the cached pages in afterwards only maps them, several
    /// times faster for both steps (docs/PERFORMANCE.md). The fill goes
    /// chunk by chunk, each after the active segment's runway is topped
    /// up: filled in one go it let appends over a million streams run out
    /// of faulted pages and fault the rest of the segment themselves.
    ///
    /// Not under `Durability::Sync`: durable appends are bound by the
    /// sync, not the page zeroing, and a segment of dirty zeros written
    /// back later would compete with their syncs. Best effort: a failed
    /// fill or fault only costs speed, for the blocks read as zeros either
    /// way.
    fn make_spare(&mut self, base: u64) -> Result<OpenSegment> {
        let options = self.p.options;
        let mut seg = create(self.p.view, options, base)?;
        let size = seg.segment().size();
        let mut zeroed = if options.durability != Durability::Sync
            && options.preallocate == Preallocate::Fallocate
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
        self.fault_first_stretch(&seg);
        Ok(seg)
    }

    /// Faults in the first [`PREFAULT_AHEAD_BYTES`] of a new segment,
    /// unless an appender needs it first.
    fn fault_first_stretch(&self, seg: &OpenSegment) {
        let first = (HEADER_BYTES + PREFAULT_AHEAD_BYTES).min(seg.segment().size());
        let mut faulted = HEADER_BYTES;
        while faulted < first && !self.hurried() {
            let to = (faulted + PREFAULT_CHUNK_BYTES).min(first);
            if !prefault(seg.segment(), faulted, to) {
                break;
            }
            faulted = to;
        }
    }
}
