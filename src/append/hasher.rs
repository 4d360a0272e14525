//! The writer's third thread: links what is published into the hash chain
//! (`chain/`) off the append path, and writes each sealed segment's chain
//! record once its seal is durable.
//!
//! It links while the log rests: once appends pause for [`QUIET`], or once
//! the chain trails the published end by more than [`MAX_LAG`]. Linking
//! costs more CPU per small event than appending it, and on a host whose
//! cores are shared, any thread running beside the appenders slows them;
//! event logs take appends in bursts, so the rests pay for the chain. The
//! lag bound limits what a close (which links the rest) and a digest (which
//! links what the hasher has not) may have to do. While it waits it never
//! registers on the watch during a burst (each publish would then wake it,
//! a syscall per append): it polls the end every [`QUIET`].

use std::time::Duration;

use crate::chain::{self, Chain};
use crate::segment::{ChainRecord, HEADER_BYTES, Segment};
use crate::watch::Woken;

use super::AppendSide;

/// How long the published end must stand still before the hasher links.
const QUIET: Duration = Duration::from_millis(10);

/// How far (bytes of log) the chain may trail the published end before the
/// hasher links even while appends go on.
pub(crate) const MAX_LAG: u64 = 256 << 20;

impl AppendSide {
    /// The hasher's loop, until the log closes; a last pass then links what
    /// the close left and records how far: a sealed segment's record, and
    /// an open record in the active segment, so the next open links nothing.
    pub(crate) fn run_hasher(&self, chain: &Chain) {
        // The lowest priority: hashing only takes the CPU the appenders
        // and the sync thread leave. On Linux the "process" is this thread.
        if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
            log::debug!("seglog: the hasher keeps its priority: {e}");
        }
        let mut linked = self.view.watch.end();
        loop {
            if self.view.watch.wait_past(linked, None) == Woken::Closed {
                break;
            }
            if !self.wait_for_rest(chain) {
                break;
            }
            linked = self.view.watch.end();
            if !self.hash_pass(chain) {
                return;
            }
        }
        if self.hash_pass(chain) && !self.commit.is_poisoned() {
            // The close synced everything published: the open record
            // describes durable frames only.
            if let Some((seg, record)) = chain.open_record(&self.view) {
                self.record(&seg, &record);
            }
        }
    }

    /// Sleeps until the published end has stood still for [`QUIET`], the
    /// chain trails it by more than [`MAX_LAG`], or the log closes (false).
    fn wait_for_rest(&self, chain: &Chain) -> bool {
        let watch = &self.view.watch;
        let mut seen = watch.end();
        loop {
            std::thread::sleep(QUIET);
            if watch.is_closed() {
                return false;
            }
            let end = watch.end();
            if end == seen || end.saturating_sub(chain.at()) > MAX_LAG {
                return true;
            }
            seen = end;
        }
    }

    /// Links what is published and writes the records that may be written.
    /// Returns false when the chain cannot go on (the frames are damaged:
    /// a digest reports it, and `verify` locates it).
    fn hash_pass(&self, chain: &Chain) -> bool {
        if let Err(e) = self.link_and_record(chain) {
            log::warn!("seglog: the hash chain stops: {e}");
            return false;
        }
        true
    }

    /// Links what is published and writes the chain records of every
    /// segment whose seal is durable: the hasher's pass, and retention's
    /// before it looks for records.
    pub(crate) fn link_and_record(&self, chain: &Chain) -> crate::error::Result<()> {
        chain.advance(&self.view)?;
        let finished = chain.take_finished();
        let durable_base = {
            let cursor = lock_cursor(self);
            self.view.segment_at(cursor).map_or(0, |s| s.base())
        };
        // Only a segment whose seal is durable gets its record: a record
        // must never describe frames a power cut can still take away.
        let (ready, later): (Vec<_>, Vec<_>) = finished
            .into_iter()
            .partition(|(seg, _)| seg.base() < durable_base);
        chain.put_back_finished(later);
        for (seg, record) in ready {
            self.record(&seg, &record);
        }
        Ok(())
    }

    /// Writes `record` into `seg`'s header and syncs it. A segment that
    /// has one already keeps it, unless it is an open record that `record`
    /// goes on from; any other difference is damage, for `verify` to
    /// report.
    fn record(&self, seg: &Segment, record: &ChainRecord) {
        match seg.chain_record() {
            Some(had) if had == *record => return,
            Some(had) if had.open && continued_by(&had, record) => {}
            Some(had) => {
                let error = chain::record_mismatch(seg, &had, &record.head);
                log::warn!("seglog: {error}");
                return;
            }
            None => {}
        }
        seg.write_chain_record(record);
        if let Err(e) = seg.flush(0, HEADER_BYTES) {
            // Only the record is lost: the next open links the segment
            // again. A sync error is the sync thread's to act on.
            log::warn!("seglog: syncing a chain record failed: {e}");
        }
    }
}

/// Whether `later` describes the same segment's chain further on than the
/// open record `had`.
fn continued_by(had: &ChainRecord, later: &ChainRecord) -> bool {
    had.entering == later.entering && had.links <= later.links && had.end <= later.end
}

/// The index of the segment the sync thread syncs now: every segment
/// before it is sealed on disk.
fn lock_cursor(side: &AppendSide) -> usize {
    side.commit.lock_sync_cursor().index
}
