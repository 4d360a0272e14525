//! The read-only scan of open: segment after segment, each from its index
//! file when that fits, else frame by frame ([`FrameCursor`] under
//! [`Check::Full`]), rebuilding the registry and deciding where the log
//! ends. It writes nothing: `finish` in `mod.rs` applies its decisions.
//!
//! Torn tail or bit rot: a bad frame below its segment's watermark (known
//! durable at the last open), anywhere in a sealed segment, or followed by
//! a valid frame that recorded a durable end past it, is damaged data
//! that may have been acknowledged ([`Scan::verdict`]). Any other bad
//! frame is a write that never finished, and nothing from there on was
//! acknowledged (docs/FORMAT.md, "Torn write or damage").
#![deny(clippy::indexing_slicing)]

use std::path::Path;

use crate::error::{Error, Result};
use crate::frame::{self, Checksum, DecodeError, EventsFrame, Frame};
use crate::index::SegmentIndex;
use crate::quarantine::Quarantined;
use crate::segment::{HEADER_BYTES, OpenSegment, SLOT_CLEAN, SLOT_SEALED, corrupt};
use crate::start::LogStart;
use crate::streams::{Names, Streams};
use crate::walk::{Check, FrameCursor, Step};

/// Zero pages are skipped this many bytes at a time when looking ahead.
const PAGE_BYTES: u64 = 4096;

pub(super) fn is_sealed(seg: &OpenSegment) -> bool {
    seg.slot().is_some_and(|s| s.flags & SLOT_SEALED != 0)
}

/// The outcome of the read-only scan.
pub(super) struct Walk {
    /// End (just past the end marker) of each segment before the tail.
    pub(super) ends: Vec<u64>,
    /// Segments whose end marker was found but whose sealed slot is missing.
    pub(super) to_seal: Vec<usize>,
    /// Index of the tail segment (== number of segments: create a new one).
    pub(super) tail: usize,
    /// Where the log goes on in the tail segment.
    pub(super) cursor: u64,
    pub(super) names: Names,
    pub(super) streams: Streams,
    /// Ranges this repair quarantined.
    pub(super) found: Vec<Quarantined>,
    /// One per segment up to and including the tail: `None` for a sealed
    /// segment whose index file was applied (dropped at once, so an open
    /// holds one segment's index at a time, not the whole log's).
    pub(super) indexes: Vec<Option<SegmentIndex>>,
    /// Sealed segments that were scanned: their index files are (re)written.
    pub(super) rebuilt: Vec<usize>,
    /// The last unsealed segment whose index file was applied, and the
    /// offset that file covers.
    pub(super) loaded_unsealed: Option<(usize, u64)>,
}

/// How the frames of one segment ended.
enum Scanned {
    /// Its data ends at this offset (past its end marker, or its size when
    /// a quarantined range took the marker): the log goes on in the next.
    Ended(u64),
    /// A torn write at this offset: the log's tail.
    Tail(u64),
}

/// What a frame that does not decode is.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// A write that never finished: nothing from here on was acknowledged.
    Torn,
    /// Damage to data that may have been acknowledged. `ends_early`: the
    /// segment's data stops short of what later segments prove it held (a
    /// stale or cut copy of it came back).
    Damaged { ends_early: bool },
}

/// What to do about damage.
enum Repair {
    /// Go on at this offset (past the range quarantined).
    Resume(u64),
}

pub(super) struct Scan<'a> {
    /// The streams removed segments defined are registered first.
    pub(super) start: &'a LogStart,
    pub(super) dir: &'a Path,
    pub(super) log_id: u128,
    pub(super) segs: &'a [OpenSegment],
    pub(super) checksum: Checksum,
    pub(super) repair: bool,
    pub(super) interval: u64,
    pub(super) known: &'a [Quarantined],
}

impl Scan<'_> {
    /// Walks the log from its first segment, applying each segment's index
    /// file when `use_indexes` and it fits, else decoding its frames.
    pub(super) fn walk(&self, use_indexes: bool) -> Result<Walk> {
        let mut walk = Walk {
            ends: Vec::with_capacity(self.segs.len()),
            to_seal: Vec::new(),
            tail: self.segs.len(),
            cursor: HEADER_BYTES,
            names: Names::new(),
            streams: Streams::new(self.interval),
            found: Vec::new(),
            indexes: Vec::with_capacity(self.segs.len()),
            rebuilt: Vec::new(),
            loaded_unsealed: None,
        };
        self.start
            .seed(&walk.names, &mut walk.streams)
            .map_err(|reason| Error::Corrupt {
                segment: self.dir.join(crate::layout::START_FILE),
                offset: 0,
                reason,
            })?;
        for (i, open) in self.segs.iter().enumerate() {
            let Some(from) = self.start_segment(&mut walk, i, open, use_indexes)? else {
                continue;
            };
            match self.scan_segment(&mut walk, i, open, from)? {
                Scanned::Ended(end) => end_segment(&mut walk, i, open, end),
                Scanned::Tail(at) => {
                    walk.tail = i;
                    walk.cursor = at;
                    return Ok(walk);
                }
            }
        }
        Ok(walk)
    }

    /// Starts segment `i`: applies its index file when one fits. `None`
    /// when that file covered the (sealed) segment whole; else the offset
    /// its frames are to be scanned from.
    fn start_segment(
        &self,
        walk: &mut Walk,
        i: usize,
        open: &OpenSegment,
        use_indexes: bool,
    ) -> Result<Option<u64>> {
        let seg = open.segment();
        let sealed = is_sealed(open);
        let loaded = use_indexes
            .then(|| SegmentIndex::read(self.dir, self.log_id, seg.base()))
            .flatten()
            .filter(|index| index_fits(open, index));
        let Some(mut index) = loaded else {
            if sealed {
                walk.rebuilt.push(i);
            }
            walk.indexes
                .push(Some(SegmentIndex::new(seg.base(), HEADER_BYTES)));
            return Ok(Some(HEADER_BYTES));
        };
        index
            .apply(&walk.names, &mut walk.streams)
            .map_err(|e| corrupt(seg, 0, format!("index file: {e}")))?;
        index.load_times(&seg.times);
        let covered = index.covered;
        debug_assert!((HEADER_BYTES..=seg.size()).contains(&covered));
        if sealed {
            walk.indexes.push(None);
            walk.ends.push(covered);
            return Ok(None);
        }
        walk.loaded_unsealed = Some((i, covered));
        walk.indexes.push(Some(index));
        Ok(Some(covered))
    }

    /// Walks segment `i`'s frames from offset `from`, recording each in the
    /// registry and the segment's index, until its data ends or a torn
    /// write ends the log.
    fn scan_segment(
        &self,
        walk: &mut Walk,
        i: usize,
        open: &OpenSegment,
        from: u64,
    ) -> Result<Scanned> {
        let seg = open.segment();
        let bytes = open.read(from, seg.size());
        let mut frames =
            FrameCursor::over(seg, Some(bytes), from, &self.checksum).skipping(self.known);
        loop {
            let (o, at) = (frames.offset(), frames.at());
            match frames.next(Check::Full) {
                Step::Events(f, _) => {
                    debug_assert!(frames.offset() > o);
                    record(walk, open, &f, at, frames.offset(), self.repair)?;
                }
                Step::End => {
                    let end = frames.offset();
                    let watermark = open.slot().map_or(HEADER_BYTES, |s| s.watermark);
                    if is_sealed(open) && end != watermark {
                        return Err(corrupt(
                            seg,
                            end,
                            "end marker not where the sealed slot says",
                        ));
                    }
                    return Ok(Scanned::Ended(end));
                }
                Step::Quarantined => {}
                // A quarantined range reached the segment's end (its end
                // marker with it): the segment ends here, sealed.
                Step::NoRoom | Step::Limit => return Ok(Scanned::Ended(seg.size())),
                Step::Bad(error) => match self.verdict(i, open, o, &error) {
                    Verdict::Torn => return Ok(Scanned::Tail(o)),
                    Verdict::Damaged { ends_early } => {
                        let Repair::Resume(next) =
                            self.repair_damage(walk, open, o, error, ends_early)?;
                        frames.seek(next);
                    }
                },
            }
        }
    }

    /// Whether the bad frame at offset `o` of segment `i` is a torn write
    /// or damage to acknowledged data (see the module docs). Pure: reads
    /// the segments, changes nothing.
    fn verdict(&self, i: usize, open: &OpenSegment, o: u64, error: &DecodeError) -> Verdict {
        let watermark = open.slot().map_or(HEADER_BYTES, |s| s.watermark);
        // A clean close's end needs no look-ahead: nothing was written past it.
        let clean_end = *error == DecodeError::Zero
            && o == watermark
            && open.slot().is_some_and(|s| s.flags & SLOT_CLEAN != 0);
        // A later segment holding synced data means this one was complete
        // once (a stale or cut copy of it came back).
        let later_durable = self
            .segs
            .iter()
            .skip(i + 1)
            .any(|s| s.slot().is_some_and(|slot| slot.watermark > HEADER_BYTES));
        let damaged = o < watermark
            || is_sealed(open)
            || later_durable
            || (!clean_end && self.durable_after(i, o));
        if damaged {
            Verdict::Damaged {
                ends_early: later_durable && o >= watermark,
            }
        } else {
            Verdict::Torn
        }
    }

    /// Damage at offset `o` of `open`: an error, unless this open repairs;
    /// then the damaged range is quarantined and the scan goes on after it.
    fn repair_damage(
        &self,
        walk: &mut Walk,
        open: &OpenSegment,
        o: u64,
        error: DecodeError,
        ends_early: bool,
    ) -> Result<Repair> {
        let seg = open.segment();
        if !self.repair && ends_early {
            return Err(corrupt(
                seg,
                o,
                format!(
                    "segment ends early ({error}): acknowledged data follows in later segments"
                ),
            ));
        }
        if !self.repair {
            return Err(corrupt(seg, o, error));
        }
        // Below the watermark the damage ends by it; past it (acknowledged
        // data follows, in this segment or a later one) it may run to the
        // segment's end.
        let watermark = open.slot().map_or(HEADER_BYTES, |s| s.watermark);
        let limit = if o < watermark && !is_sealed(open) {
            watermark
        } else {
            seg.size()
        };
        let next = self.resync(open, o, limit);
        debug_assert!(next > o && next <= limit);
        log::warn!(
            "seglog: repair quarantines {} bytes of {:?} at offset {o}: {error}",
            next - o,
            seg.path()
        );
        walk.found
            .push(Quarantined::new(seg, o, next, error.to_string()));
        Ok(Repair::Resume(next))
    }

    /// The next offset after `from` (8-byte steps, below `limit`) where a
    /// valid frame starts, or `limit`.
    fn resync(&self, open: &OpenSegment, from: u64, limit: u64) -> u64 {
        let seg = open.segment();
        let mut p = from + frame::ALIGN;
        while p < limit {
            let buf = open.read(p, seg.size());
            if frame::plausible(buf) && frame::decode(buf, seg.base() + p, &self.checksum).is_ok() {
                return p;
            }
            p += frame::ALIGN;
        }
        limit
    }

    /// Whether any valid frame after offset `o` of segment `i` was written
    /// when the bytes at `o` were already durable: then `o` held
    /// acknowledged data and a bad frame there is damage, not a torn write.
    /// Runs only when a scan meets a bad frame past the watermark (after a
    /// crash); zero pages are skipped a page at a time.
    fn durable_after(&self, i: usize, o: u64) -> bool {
        let Some(first) = self.segs.get(i) else {
            return false;
        };
        let at = first.segment().base() + o;
        let mut p = o + frame::ALIGN;
        for open in self.segs.iter().skip(i) {
            if self.written_after(open, p, at) {
                return true;
            }
            p = HEADER_BYTES;
        }
        false
    }

    /// Whether a valid frame at or after offset `from` of `open` recorded a
    /// durable end past log offset `at`.
    fn written_after(&self, open: &OpenSegment, from: u64, at: u64) -> bool {
        let seg = open.segment();
        let mut p = from;
        while p + frame::END_BYTES as u64 <= seg.size() {
            if p.is_multiple_of(PAGE_BYTES) && open.read(p, p + PAGE_BYTES).iter().all(|&b| b == 0)
            {
                p += PAGE_BYTES;
                continue;
            }
            let buf = open.read(p, seg.size());
            if frame::plausible(buf)
                && let Ok((Frame::Events(f), _)) =
                    frame::decode(buf, seg.base() + p, &self.checksum)
                && f.durable_end(seg.base() + p).is_some_and(|d| d > at)
            {
                return true;
            }
            p += frame::ALIGN;
        }
        false
    }
}

/// Whether the index file `index` of `open` describes it: a sealed
/// segment's covers it to its watermark, another's stops inside it.
fn index_fits(open: &OpenSegment, index: &SegmentIndex) -> bool {
    let seg = open.segment();
    let fits = if is_sealed(open) {
        Some(index.covered) == open.slot().map(|s| s.watermark)
    } else {
        (HEADER_BYTES..seg.size()).contains(&index.covered)
    };
    if !fits {
        log::warn!(
            "seglog: index of {:?} does not match it; rescanning",
            seg.path()
        );
    }
    fits
}

/// Records the events frame `f` at log offset `at` of `open`, which ends
/// at segment offset `end`, in the registry and the segment's index.
fn record(
    walk: &mut Walk,
    open: &OpenSegment,
    f: &EventsFrame<'_>,
    at: u64,
    end: u64,
    repair: bool,
) -> Result<()> {
    let seg = open.segment();
    let before = f.defines.is_none().then(|| walk.streams.head(f.stream_id));
    let first_here = before.flatten().is_none_or(|h| h.last_frame < seg.base());
    let recorded = walk
        .streams
        .apply(&walk.names, f, at, repair)
        .map_err(|e| corrupt(seg, at - seg.base(), e))?;
    seg.times.note(at - seg.base(), f.timestamp_us);
    if let Some(Some(index)) = walk.indexes.last_mut() {
        index.record(f.defines.is_some(), &recorded, first_here, end);
    }
    Ok(())
}

/// Segment `i`'s data ends at `end`: seal it if its slot does not say so,
/// and close its index.
fn end_segment(walk: &mut Walk, i: usize, open: &OpenSegment, end: u64) {
    debug_assert!((HEADER_BYTES..=open.segment().size()).contains(&end));
    if !is_sealed(open) {
        walk.to_seal.push(i);
        walk.rebuilt.push(i);
    }
    if let Some(Some(index)) = walk.indexes.last_mut() {
        index.covered = end;
        index.finalize(&walk.streams, &open.segment().times);
    }
    walk.ends.push(end);
}
