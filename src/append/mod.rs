//! The append side: what only a [`Log`](crate::Log) has. The tail (the
//! one segment writer and its index, under the append side's lock), the
//! spare segment and the preparer thread that makes it, the sync thread,
//! and the retry lookup.
//!
//! Locks, in the order they are taken: the append side's lock (`tail`),
//! then the registry's (`LogView::registry_mut`). Neither is held across a
//! syscall: a roll that finds no segment ready lets both go, makes the
//! segment ([`Spares::prepare`]) and tries the append again, so readers,
//! which take only the registry's lock, never wait for the disk.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::chain::Chain;
use crate::commit::{Commit, lock};
use crate::error::Result;
use crate::event::{AppendRequest, AppendResult};
use crate::index::SegmentIndex;
use crate::options::{Durability, Options};
use crate::segment::{OpenSegment, Segment, SegmentWriter};
use crate::streams::{Lookahead, NameHash, Streams};
use crate::view::LogView;

mod background;
pub(crate) mod checked;
mod hasher;
mod retry;
mod spare;
mod tail;

use background::{Background, Start};
#[cfg(test)]
pub(crate) use spare::Spare;
#[cfg(not(test))]
use spare::Spare;
use spare::Spares;
use tail::{Placed, Tail};

/// Appends of an `append_many` call whose registry entries are being
/// loaded while the current one is written: enough misses in flight to
/// cover one with the work of the appends before it.
const PREFETCH_AHEAD: usize = 16;

/// The append side of one open log.
pub(crate) struct AppendSide {
    pub(crate) view: Arc<LogView>,
    pub(crate) commit: Commit,
    pub(crate) options: Options,
    /// Starts each append's registry lookup before the locks.
    lookahead: Lookahead,
    tail: Mutex<Tail>,
    spares: Spares,
    background: Mutex<Background>,
    /// The hash chain, linked by the hasher thread and by digests.
    pub(crate) chain: Arc<Chain>,
}

impl std::fmt::Debug for AppendSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendSide")
            .field("dir", &self.view.dir)
            .finish_non_exhaustive()
    }
}

/// What [`AppendSide::new`] starts from, besides the view: what recovery
/// left of the tail.
pub(crate) struct AppendParts {
    pub(crate) options: Options,
    pub(crate) lookahead: Lookahead,
    /// The view's newest segment, and its one writer.
    pub(crate) active: Arc<Segment>,
    pub(crate) writer: SegmentWriter,
    /// The active segment's index so far.
    pub(crate) index: SegmentIndex,
    /// A spare segment recovery found, ready.
    pub(crate) spare: Option<OpenSegment>,
    /// The active segment's slot still says `CLEAN` (see
    /// `recovery::Recovered::clean_tail`).
    pub(crate) clean_tail: bool,
    /// The active segment's index file on disk describes all of it.
    pub(crate) index_current: bool,
}

impl AppendSide {
    /// The append side of `view`.
    pub(crate) fn new(view: Arc<LogView>, p: AppendParts) -> AppendSide {
        let cursor = crate::commit::SyncCursor {
            index: view.segments_snapshot().len() - 1,
            synced: p.writer.cursor(),
        };
        let spare = match p.spare {
            Some(seg) => Spare::Ready(Box::new(seg)),
            None => Spare::Wanted(p.active.end()),
        };
        let (commit, rx) = Commit::new(
            Arc::clone(&view),
            p.options.durability,
            cursor,
            p.clean_tail,
        );
        let last_commit_us = view.last_commit_us();
        let chain = Arc::new(Chain::start(&view, true));
        AppendSide {
            chain,
            view,
            commit,
            lookahead: p.lookahead,
            // Commit times go on from the newest one stored, whatever the
            // clock says now.
            tail: Mutex::new(Tail::new(p.writer, p.index, last_commit_us)),
            spares: Spares::new(spare, p.active.end()),
            background: Mutex::new(Background::Idle(Start {
                rx,
                clean_tail: p.clean_tail,
                index_current: p.index_current,
                active: p.active,
            })),
            options: p.options,
        }
    }

    /// Hashes `stream` and starts loading its registry entry, before any
    /// lock is taken.
    pub(crate) fn prefetch(&self, stream: &str) -> NameHash {
        self.lookahead.prefetch(stream)
    }

    /// Locks the tail for appending: refuses on a poisoned log and, for the
    /// first append of this handle, starts the threads and waits until the
    /// tail may be written.
    fn lock_tail(self: &Arc<Self>) -> Result<MutexGuard<'_, Tail>> {
        let mut tail = lock(&self.tail);
        if self.commit.is_poisoned() {
            return Err(self.commit.poison_error());
        }
        if !tail.writable {
            self.start_background()?;
            self.commit.wait_writable()?;
            tail.writable = true;
        }
        Ok(tail)
    }

    /// One append: under the locks, as many tries as it takes to find its
    /// segment ready. Returns what it was given and the log offset its
    /// frame ends at.
    pub(crate) fn append(
        self: &Arc<Self>,
        hash: NameHash,
        request: &AppendRequest<'_>,
        now: u64,
    ) -> Result<(AppendResult, u64)> {
        loop {
            let placed = {
                let mut tail = self.lock_tail()?;
                // Held through the publish, as the tail's lock is: a head
                // read from the registry is then of a published frame (but
                // under `Durability::Sync`, which publishes at the sync).
                let mut streams = self.view.registry_mut();
                let placed = self.append_locked(&mut streams, &mut tail, hash, request, now);
                self.publish_tail(&tail);
                placed
            };
            match placed? {
                Placed::Done(result, end) => return Ok((result, end)),
                Placed::NeedsSegment(base) => {
                    self.spares.prepare(&self.view, &self.options, base)?
                }
            }
        }
    }

    /// Several appends under one acquisition of the locks (one more for
    /// each segment that must be made on the way); each succeeds or fails
    /// alone, in order. `validate` checks a request outside any state.
    /// Returns the results and the end of the furthest frame written.
    pub(crate) fn append_many(
        self: &Arc<Self>,
        requests: &[AppendRequest<'_>],
        validate: impl Fn(&AppendRequest<'_>) -> Result<()>,
        now: u64,
    ) -> Result<(Vec<Result<AppendResult>>, u64)> {
        let mut batch = Batch::new(self, requests);
        while batch.results.len() < requests.len() {
            let needs = {
                let mut tail = self.lock_tail()?;
                let mut streams = self.view.registry_mut();
                let needs = batch.run(self, &mut streams, &mut tail, &validate, now);
                self.publish_tail(&tail);
                needs
            };
            if let Some(base) = needs
                && let Err(e) = self.spares.prepare(&self.view, &self.options, base)
            {
                // The append that needed the segment fails alone, as a
                // failed roll under the lock did.
                batch.results.push(Err(e));
                batch.retry = None;
            }
        }
        Ok((batch.results, batch.end))
    }

    /// Seals the active segment, if it holds a frame, and makes the next
    /// one active (made first if it is not ready). Whether it rolled.
    pub(crate) fn roll_active(self: &Arc<Self>) -> Result<bool> {
        loop {
            let next = {
                let mut tail = self.lock_tail()?;
                if tail.writer.cursor() <= crate::segment::HEADER_BYTES {
                    return Ok(false);
                }
                let next = tail.writer.segment().end();
                if let Some(seg) = self.spares.take(next) {
                    let streams = self.view.registry();
                    let rolled = self.roll_now(&mut tail, &streams, seg);
                    drop(streams);
                    self.publish_tail(&tail);
                    drop(tail);
                    self.view.watch.wake();
                    return Ok(rolled);
                }
                next
            };
            self.spares.prepare(&self.view, &self.options, next)?;
        }
    }

    /// Waits, under `Durability::Sync`, until `[.., end)` is durable;
    /// otherwise wakes this process's subscribers. After an append.
    pub(crate) fn after_append(&self, end: u64) -> Result<()> {
        if self.options.durability == Durability::Sync {
            if end > 0 {
                self.commit.wait_durable(end)?;
            }
        } else {
            self.view.watch.wake();
        }
        Ok(())
    }

    /// Returns once everything appended before the call is on disk.
    pub(crate) fn sync(&self) -> Result<()> {
        let end = lock(&self.tail).end();
        // Durable already (nothing appended since open, say): no round, and
        // no threads started for it.
        if end <= self.commit.durable_end() {
            return Ok(());
        }
        self.commit.wait_durable(end)
    }

    /// Writes the active segment's index file, so the next open scans
    /// nothing. Only after the tail's last frame is durable.
    fn write_tail_index(&self) -> Result<()> {
        let mut tail = lock(&self.tail);
        debug_assert_eq!(tail.index.covered, tail.writer.cursor());
        let streams = self.view.registry();
        let seg = Arc::clone(tail.writer.segment());
        tail.index.finalize(&streams, &seg.times);
        let view = &*self.view;
        tail.index
            .write(&*view.storage, &view.dir, view.log_id, &view.names)
    }

    /// The spare segment's state, for tests.
    #[cfg(test)]
    pub(crate) fn spare_state(&self) -> MutexGuard<'_, Spare> {
        self.spares.lock()
    }
}

/// An `append_many` call on its way.
struct Batch<'a, 'r> {
    requests: &'a [AppendRequest<'r>],
    /// The hashes of the appends whose entries are on their way, in a
    /// ring: append `i`'s sits in slot `i % PREFETCH_AHEAD`.
    hashes: [NameHash; PREFETCH_AHEAD],
    /// The hash of the append to try again (its slot holds a later one's).
    retry: Option<NameHash>,
    results: Vec<Result<AppendResult>>,
    /// The end of the furthest frame written.
    end: u64,
}

impl<'a, 'r> Batch<'a, 'r> {
    fn new(side: &AppendSide, requests: &'a [AppendRequest<'r>]) -> Self {
        let mut hashes = [NameHash::default(); PREFETCH_AHEAD];
        for (slot, request) in hashes.iter_mut().zip(requests) {
            *slot = side.prefetch(request.stream);
        }
        Batch {
            requests,
            hashes,
            retry: None,
            results: Vec::with_capacity(requests.len()),
            end: 0,
        }
    }

    /// Appends the requests not done yet, under the locks, until all are
    /// or one needs a segment that is not ready (returned: that one is
    /// tried again after it is made).
    fn run(
        &mut self,
        side: &AppendSide,
        streams: &mut Streams,
        tail: &mut Tail,
        validate: &impl Fn(&AppendRequest<'_>) -> Result<()>,
        now: u64,
    ) -> Option<u64> {
        let requests = self.requests;
        for (i, request) in requests.iter().enumerate().skip(self.results.len()) {
            let slot = i % PREFETCH_AHEAD;
            let hash = match self.retry.take() {
                Some(hash) => hash,
                None => {
                    let hash = self.hashes[slot];
                    if let Some(ahead) = requests.get(i + PREFETCH_AHEAD) {
                        self.hashes[slot] = side.prefetch(ahead.stream);
                    }
                    hash
                }
            };
            let placed = validate(request)
                .and_then(|()| side.append_locked(streams, tail, hash, request, now));
            match placed {
                Ok(Placed::NeedsSegment(base)) => {
                    self.retry = Some(hash);
                    return Some(base);
                }
                Ok(Placed::Done(result, frame_end)) => {
                    self.end = self.end.max(frame_end);
                    self.results.push(Ok(result));
                }
                Err(e) => self.results.push(Err(e)),
            }
        }
        None
    }
}
