//! The writer's third thread: links what is published into the hash chain
//! (`chain/`) in batches, off the append path, and writes each sealed
//! segment's chain record once its seal is durable.
//!
//! It never waits on the watch while appends stream in (each publish would
//! then wake it, a syscall per append): after a pass it sleeps
//! [`BATCH_PAUSE`], and waits on the watch only when a pass found nothing
//! new. So a burst of appends costs one wake, and the chain trails the
//! published end by at most one pause of appends, which a digest links
//! itself.

use std::sync::Arc;
use std::time::Duration;

use crate::chain::{self, Chain};
use crate::segment::{ChainRecord, HEADER_BYTES, Segment};
use crate::watch::Woken;

use super::AppendSide;

/// The pause between two passes while appends come in.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

impl AppendSide {
    /// The hasher's loop, until the log closes; a last pass then links and
    /// records what the close left.
    pub(crate) fn run_hasher(&self, chain: &Chain) {
        // The lowest priority: hashing only takes the CPU the appenders
        // and the sync thread leave, and catches up when they rest. On
        // Linux the "process" is this thread.
        if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
            log::debug!("seglog: the hasher keeps its priority: {e}");
        }
        let mut waiting: Vec<(Arc<Segment>, ChainRecord)> = Vec::new();
        let mut seen = None;
        loop {
            let end = self.view.watch.end();
            if seen == Some(end) && self.view.watch.wait_past(end, None) == Woken::Closed {
                break;
            }
            seen = Some(self.view.watch.end());
            if !self.hash_pass(chain, &mut waiting) {
                return;
            }
            std::thread::sleep(BATCH_PAUSE);
        }
        self.hash_pass(chain, &mut waiting);
    }

    /// Links what is published and writes the records that may be written.
    /// Returns false when the chain cannot go on (the frames are damaged:
    /// a digest reports it, and `verify` locates it).
    fn hash_pass(&self, chain: &Chain, waiting: &mut Vec<(Arc<Segment>, ChainRecord)>) -> bool {
        if let Err(e) = chain.advance(&self.view) {
            log::warn!("seglog: the hash chain stops: {e}");
            return false;
        }
        waiting.extend(chain.take_finished());
        let durable_base = {
            let cursor = lock_cursor(self);
            self.view.segment_at(cursor).map_or(0, |s| s.base())
        };
        // Only a segment whose seal is durable gets its record: a record
        // must never describe frames a power cut can still take away.
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(waiting)
            .into_iter()
            .partition(|(seg, _)| seg.base() < durable_base);
        *waiting = later;
        for (seg, record) in ready {
            self.record(&seg, &record);
        }
        true
    }

    /// Writes `record` into `seg`'s header and syncs it; a segment that
    /// has one already keeps it (a different one is damage, for `verify`
    /// to report).
    fn record(&self, seg: &Segment, record: &ChainRecord) {
        match seg.chain_record() {
            Some(had) if had == *record => return,
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

/// The index of the segment the sync thread syncs now: every segment
/// before it is sealed on disk.
fn lock_cursor(side: &AppendSide) -> usize {
    side.commit.lock_sync_cursor().index
}
