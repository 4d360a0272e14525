//! Verification on two threads: segment by segment, each walked from the
//! chain link its predecessor's chain record says it was entered with.
//!
//! Why it is sound: a segment's walk checks its own record, `entering`
//! and `head` both; its successor's walk starts from that record's head.
//! So once every segment up to `k` checked out, the link each started
//! from is the link the one before it computed, and the result is the
//! sequential walk's. The pieces are then taken in log order, and the
//! first failure (or the first segment that ends the walk) ends it there,
//! as the sequential walk would: what was walked past it is dropped.
//!
//! Why: the chain hashes every payload on its own (so that an erased
//! payload still verifies), which costs more than reading the log; two
//! threads share it. A log whose segments do not all carry a sealed
//! record (the active one aside) is walked sequentially.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::chain::Head;
use crate::error::Result;
use crate::segment::{HEADER_BYTES, Segment};

use super::{Verification, Walk};

/// One segment walked on its own.
pub(super) struct Piece {
    report: Verification,
    head: Head,
    entering: [u8; 32],
    /// The walk goes on into the next segment.
    go_on: bool,
}

/// The head each segment is entered with: the walk's start for the first,
/// the predecessor's sealed record for each other. `None` when one has
/// no such record.
pub(super) fn entering_heads(
    first: Head,
    segments: &[std::sync::Arc<Segment>],
) -> Option<Vec<Head>> {
    let mut heads = vec![first];
    for pair in segments.windows(2) {
        let [before, seg] = pair else { return None };
        let record = before.chain_record().filter(|r| !r.open)?;
        heads.push(Head {
            at: seg.base() + HEADER_BYTES,
            hash: record.head,
            links: record.links,
        });
    }
    Some(heads)
}

/// Walks `segments` (entered with `heads`) on two threads; calls
/// `progress` from this thread as segments are done. The pieces in order.
pub(super) fn walk_pieces(
    walk: &Walk<'_>,
    segments: &[std::sync::Arc<Segment>],
    heads: &[Head],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<Piece>> {
    let total: u64 = segments.iter().map(|s| s.published() - HEADER_BYTES).sum();
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let pieces: Mutex<Vec<Option<Result<Piece>>>> =
        Mutex::new((0..segments.len()).map(|_| None).collect());
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let (Some(seg), Some(head)) = (segments.get(i), heads.get(i)) else {
                return;
            };
            let piece = one(walk, seg, *head);
            done.fetch_add(seg.published() - HEADER_BYTES, Ordering::Relaxed);
            if let Some(slot) = pieces.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
                *slot = Some(piece);
            }
        }
    };
    std::thread::scope(|s| {
        let helper = std::thread::Builder::new()
            .name("seglog-verify".into())
            .spawn_scoped(s, work);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let (Some(seg), Some(head)) = (segments.get(i), heads.get(i)) else {
                break;
            };
            let piece = one(walk, seg, *head);
            let so_far = done.fetch_add(seg.published() - HEADER_BYTES, Ordering::Relaxed);
            progress((so_far + seg.published() - HEADER_BYTES).min(total), total);
            if let Some(slot) = pieces.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
                *slot = Some(piece);
            }
        }
        drop(helper);
    });
    progress(total, total);
    let pieces = pieces.into_inner().unwrap_or_else(|p| p.into_inner());
    // A piece is missing only if the helper stopped early: walked here.
    pieces
        .into_iter()
        .zip(segments.iter().zip(heads))
        .map(|(piece, (seg, head))| piece.unwrap_or_else(|| one(walk, seg, *head)))
        .collect()
}

/// `seg` walked alone, entered with `head`.
fn one(walk: &Walk<'_>, seg: &Segment, head: Head) -> Result<Piece> {
    let mut alone = Walk {
        view: walk.view,
        against: walk.against,
        report: Verification::new(walk.view.log_id),
        head,
        entering: head.hash,
    };
    let go_on = alone.segment(seg)?;
    Ok(Piece {
        report: alone.report,
        head: alone.head,
        entering: alone.entering,
        go_on,
    })
}

impl Walk<'_> {
    /// Takes `piece`, the next segment's walk, into the report; whether
    /// the walk goes on.
    pub(super) fn absorb(&mut self, piece: Piece) -> bool {
        let r = &mut self.report;
        let p = piece.report;
        r.segments += p.segments;
        r.frames += p.frames;
        r.events += p.events;
        r.bytes += p.bytes;
        r.chain_records += p.chain_records;
        r.index_files += p.index_files;
        r.index_files_unreadable += p.index_files_unreadable;
        r.against = r.against.or(p.against);
        if r.failure.is_none() {
            r.failure = p.failure;
        }
        self.head = piece.head;
        self.entering = piece.entering;
        piece.go_on && r.failure.is_none()
    }
}
