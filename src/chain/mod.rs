//! The hash chain over the log's frames (docs/ARCHITECTURE.md, "Hash
//! chain"): each events frame's link hashes the one before it with the
//! frame's stored bytes ([`link`]). It is computed off the append path: a
//! background thread of the writer (`append/hasher.rs`) follows what is
//! published, and [`Chain::advance`] links whatever it has not reached
//! when a digest is asked for. A sealed segment records the link entering
//! it and its last one in its header ([`ChainRecord`]), so an open goes on
//! from the newest record instead of hashing the whole log again.

mod digest;
pub(crate) mod link;
mod signed;

pub use digest::Digest;
pub use signed::SignedDigest;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::position::Position;
use crate::segment::{ChainRecord, HEADER_BYTES, Segment, corrupt};
use crate::view::LogView;
use crate::walk::{Check, FrameCursor, Step};

pub(crate) use link::Hash;

/// Where the chain has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// Log offset just past the last frame linked: the next frame's.
    pub(crate) at: u64,
    /// The last link (the genesis link before any frame).
    pub(crate) hash: Hash,
    /// Links from the chain's start.
    pub(crate) links: u64,
}

impl Head {
    /// The position everything before which the head covers.
    pub(crate) fn position(&self) -> Position {
        Position::new(self.at, 0)
    }
}

#[derive(Debug)]
struct State {
    head: Head,
    /// The link entering the segment `head.at` lies in.
    entering: Hash,
    /// Records of segments the chain has passed the end of, for the
    /// writer's hasher to write once their seal is durable.
    finished: Vec<(Arc<Segment>, ChainRecord)>,
}

/// The running chain of one log handle.
#[derive(Debug)]
pub(crate) struct Chain {
    state: Mutex<State>,
    /// Whether finished segments' records are kept for writing (the
    /// writer's chain; a follower's only reads).
    keeps_records: bool,
}

impl Chain {
    /// The chain as the view's segments record it: from the link at the
    /// log's start (the genesis link, before any retention), on through each segment whose record
    /// continues the one before, to the first that has none.
    pub(crate) fn start(view: &LogView, keeps_records: bool) -> Chain {
        let segments = view.segments_snapshot();
        let first = segments.first().map_or(0, |s| s.base());
        // After retention, the chain goes on from the link at the log's
        // start; before any, that is the genesis link.
        let start = view.log_start();
        let mut head = Head {
            at: first + HEADER_BYTES,
            hash: start.link,
            links: start.links,
        };
        let mut entering = start.link;
        for seg in &segments {
            match seg.chain_record() {
                Some(r) if r.entering == head.hash && r.links >= head.links => {
                    // An open record (a clean close's) ends the walk: its
                    // segment may hold frames after it.
                    let at = if r.open {
                        seg.base() + r.end
                    } else {
                        seg.base() + seg.size() + HEADER_BYTES
                    };
                    entering = if r.open { r.entering } else { r.head };
                    head = Head {
                        at,
                        hash: r.head,
                        links: r.links,
                    };
                    if r.open {
                        break;
                    }
                }
                _ => break,
            }
        }
        Chain {
            state: Mutex::new(State {
                head,
                entering,
                finished: Vec::new(),
            }),
            keeps_records,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Links every frame published so far and returns the head. The
    /// chain's lock is held while it hashes: two callers never link the
    /// same frame twice.
    pub(crate) fn advance(&self, view: &LogView) -> Result<Head> {
        let mut state = self.lock();
        while let Some((_, seg)) = view.segment_for(state.head.at) {
            let start = state.head.at.saturating_sub(seg.base());
            if seg.base() > state.head.at || start >= seg.size() {
                break;
            }
            if !self.link_segment(view, &seg, start, &mut state)? {
                break;
            }
        }
        Ok(state.head)
    }

    /// Links `seg`'s published frames from segment offset `start`; returns
    /// whether the segment ended (the chain goes on in the next one).
    fn link_segment(
        &self,
        view: &LogView,
        seg: &Arc<Segment>,
        start: u64,
        state: &mut State,
    ) -> Result<bool> {
        let bytes = seg.bytes(start, seg.published());
        let mut cursor =
            FrameCursor::over(seg, bytes, start, &view.checksum).skipping(&view.quarantine);
        loop {
            let at = cursor.at();
            match cursor.next(Check::Full) {
                Step::Events(frame, _) => {
                    let hash = link::link(&state.head.hash, at, &frame)
                        .map_err(|e| corrupt(seg, at - seg.base(), e))?;
                    state.head = Head {
                        at: cursor.at(),
                        hash,
                        links: state.head.links + 1,
                    };
                }
                Step::Quarantined => state.head.at = cursor.at(),
                Step::End | Step::NoRoom => {
                    self.finish(seg, at - seg.base(), state);
                    return Ok(true);
                }
                Step::Limit => return Ok(false),
                Step::Bad(e) => return Err(corrupt(seg, at - seg.base(), e)),
            }
        }
    }

    /// The chain has passed the end of `seg`'s frames, at segment offset
    /// `end`: on to the next segment.
    fn finish(&self, seg: &Arc<Segment>, end: u64, state: &mut State) {
        if self.keeps_records {
            let record = ChainRecord {
                links: state.head.links,
                end,
                open: false,
                entering: state.entering,
                head: state.head.hash,
            };
            state.finished.push((Arc::clone(seg), record));
        }
        state.head.at = seg.base() + seg.size() + HEADER_BYTES;
        state.entering = state.head.hash;
    }

    /// The record of the segment the chain is in now, as far as it has
    /// linked it (an open record, for a clean close to write); `None`
    /// before its first frame, or for a chain that keeps no records.
    pub(crate) fn open_record(&self, view: &LogView) -> Option<(Arc<Segment>, ChainRecord)> {
        let state = self.lock();
        let (_, seg) = view.segment_for(state.head.at)?;
        let end = state.head.at.checked_sub(seg.base())?;
        if !self.keeps_records || end <= HEADER_BYTES || end >= seg.size() {
            return None;
        }
        let record = ChainRecord {
            links: state.head.links,
            end,
            open: true,
            entering: state.entering,
            head: state.head.hash,
        };
        Some((seg, record))
    }

    /// The log offset the chain has linked up to.
    pub(crate) fn at(&self) -> u64 {
        self.lock().head.at
    }

    /// The records of segments the chain has passed, taken.
    pub(crate) fn take_finished(&self) -> Vec<(Arc<Segment>, ChainRecord)> {
        std::mem::take(&mut self.lock().finished)
    }

    /// Gives back records taken but not written yet (their seals are not
    /// durable): older than any finished since, so they go first.
    pub(crate) fn put_back_finished(&self, mut records: Vec<(Arc<Segment>, ChainRecord)>) {
        if records.is_empty() {
            return;
        }
        let mut state = self.lock();
        records.append(&mut state.finished);
        state.finished = records;
    }
}

/// The error for a segment whose chain record disagrees with its frames.
pub(crate) fn record_mismatch(seg: &Segment, recorded: &ChainRecord, found: &Hash) -> Error {
    corrupt(
        seg,
        recorded.end,
        format!(
            "the chain over this segment's frames ends in {}, but its header records {}",
            hex(found),
            hex(&recorded.head)
        ),
    )
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
