//! `verify`: a log checked end to end (docs/ARCHITECTURE.md,
//! "Verification"). Every frame's CRC and events, the hash chain from its
//! genesis, each segment's chain record, each index file claim by claim,
//! and, given an earlier digest, that the log still holds exactly what the
//! digest committed to. It reads through a view (a `Log`'s or a
//! `Reader`'s), so it runs beside a live writer, up to the end published
//! when it starts; it writes nothing and trusts nothing it checks.

mod index;
mod parallel;
mod report;

pub use report::{Failure, FailureKind, Verification};

use std::path::Path;
use std::sync::Arc;

use crate::chain::{Digest, Hash, Head, link};
use crate::error::{Error, Result};
use crate::layout;
use crate::position::Position;
use crate::reader::Reader;
use crate::segment::{ChainRecord, HEADER_BYTES, Segment};
use crate::view::LogView;
use crate::walk::{Check, FrameCursor, Step};

use index::SegmentFacts;

/// Verifies the log in `dir` through a [`Reader`] (beside a live writer,
/// if there is one), against `against` if given. An open that fails on a
/// damaged or foreign segment, or a missing one, is reported as the
/// verification's failure, located; other errors (no log there, I/O) are
/// errors.
pub fn verify(dir: impl AsRef<Path>, against: Option<&Digest>) -> Result<Verification> {
    verify_with_progress(dir, against, &mut |_, _| {})
}

/// [`verify`], calling `progress(bytes checked, bytes to check)` as
/// segments are done and at the end: for a progress bar over a long verification.
pub fn verify_with_progress(
    dir: impl AsRef<Path>,
    against: Option<&Digest>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verification> {
    match Reader::open(dir.as_ref()) {
        Ok(reader) => reader.verify_with_progress(against, progress),
        Err(error) => report::failed_open(error),
    }
}

/// Where the walk has got to.
struct Walk<'a> {
    view: &'a LogView,
    against: Option<&'a Digest>,
    report: Verification,
    head: Head,
    /// The link entering the segment being walked.
    entering: Hash,
}

/// Verifies `view` (see the module docs).
pub(crate) fn verify_view(
    view: &LogView,
    against: Option<&Digest>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verification> {
    let segments = view.segments_snapshot();
    let first = segments.first().map_or(0, |s| s.base());
    // The walk goes on from the link the start file keeps: what was
    // before it is gone, and that link is all that still commits to it.
    let start = view.log_start();
    let mut walk = Walk {
        view,
        against,
        report: Verification::new(view.log_id),
        head: Head {
            at: first + HEADER_BYTES,
            hash: start.link,
            links: start.links,
        },
        entering: start.link,
    };
    walk.report.start = Digest::of(view.log_id, &walk.head);
    if let (Some(d), Some(seg)) = (against, segments.first())
        && !walk.digest_fits_start(d, seg)
    {
        return Ok(walk.report);
    }
    let expected_base = match parallel::entering_heads(walk.head, &segments) {
        Some(heads) if segments.len() > 1 => {
            let pieces = parallel::walk_pieces(&walk, &segments, &heads, progress)?;
            walk.take_pieces(&segments, pieces)
        }
        _ => walk.sequentially(&segments, progress)?,
    };
    if walk.report.failure.is_none() {
        walk.files_after(expected_base)?;
    }
    walk.finish_against(segments.last().map(|s| &**s));
    Ok(walk.report)
}

impl Walk<'_> {
    /// Walks `segments` one after the other, calling `progress` after
    /// each; returns the base the segment after them must have.
    fn sequentially(
        &mut self,
        segments: &[Arc<Segment>],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<u64> {
        let total: u64 = segments.iter().map(|s| s.published() - HEADER_BYTES).sum();
        let mut done = 0;
        let mut expected_base = segments.first().map_or(0, |s| s.base());
        for seg in segments {
            if !self.contiguous(seg, &mut expected_base) {
                break;
            }
            let go_on = self.segment(seg)?;
            done += seg.published() - HEADER_BYTES;
            progress(done.min(total), total);
            if !go_on {
                break;
            }
        }
        Ok(expected_base)
    }

    /// Takes the segments' `pieces`, walked apart, in log order up to the
    /// first that ends the walk; returns the base the segment after them
    /// must have.
    fn take_pieces(&mut self, segments: &[Arc<Segment>], pieces: Vec<parallel::Piece>) -> u64 {
        let mut expected_base = segments.first().map_or(0, |s| s.base());
        for (seg, piece) in segments.iter().zip(pieces) {
            if !self.contiguous(seg, &mut expected_base) || !self.absorb(piece) {
                break;
            }
        }
        expected_base
    }

    /// Whether `seg` starts where the one before it ended
    /// (`expected_base`, moved past `seg`); a failure if not.
    fn contiguous(&mut self, seg: &Segment, expected_base: &mut u64) -> bool {
        if seg.base() != *expected_base {
            let reason = format!("a segment starting at {expected_base} is missing");
            return self.fail(FailureKind::Layout, seg.path(), seg.base(), 0, reason);
        }
        *expected_base = seg.base() + seg.size();
        true
    }

    /// Checks an earlier digest against the log's start: of this log, and
    /// not committing to what retention removed. False when it fails.
    fn digest_fits_start(&mut self, d: &Digest, seg: &Segment) -> bool {
        let start = &self.head;
        let wrong = if d.log_id != self.view.log_id {
            Some(format!(
                "the digest is of log {:032x}, this is log {:032x}",
                d.log_id, self.view.log_id
            ))
        } else if d.links < start.links {
            Some(format!(
                "the digest ({} links) commits to events before the log's start ({} links): \
                 retention removed them, so it cannot be checked; use a digest taken since",
                d.links, start.links
            ))
        } else if d.links == start.links && d.hash != start.hash {
            Some("the digest at the log's start does not start this log's chain".to_string())
        } else {
            None
        };
        if let Some(reason) = wrong {
            self.fail_in(FailureKind::Digest, seg, HEADER_BYTES, reason);
            self.report.head = Digest::of(self.view.log_id, &self.head);
            return false;
        }
        if d.links == start.links {
            self.report.against = Some(*d);
        }
        true
    }

    /// Walks one segment's published frames; false once a failure ends
    /// the walk or the published end is reached inside it.
    fn segment(&mut self, seg: &Segment) -> Result<bool> {
        self.report.segments += 1;
        let record = seg.chain_record();
        let mut facts = SegmentFacts::new(self.view, seg);
        let bytes = seg.bytes(HEADER_BYTES, seg.published());
        let mut cursor = FrameCursor::over(seg, bytes, HEADER_BYTES, &self.view.checksum);
        loop {
            let o = cursor.offset();
            if let Some(r) = record.filter(|r| r.open && r.end == o)
                && !self.record_holds(seg, &r, o)
            {
                return Ok(false);
            }
            match cursor.next(Check::Full) {
                Step::Events(frame, padded) => {
                    let at = seg.base() + o;
                    let hash = match link::link(&self.head.hash, at, &frame) {
                        Ok(hash) => hash,
                        Err(e) => {
                            return Ok(self.fail_in(FailureKind::Frame, seg, o, e.to_string()));
                        }
                    };
                    self.head = Head {
                        at: at + padded,
                        hash,
                        links: self.head.links + 1,
                    };
                    self.report.frames += 1;
                    self.report.events += u64::from(frame.event_count);
                    self.report.bytes += padded;
                    facts.frame(o, &frame);
                    if !self.digest_holds(seg, o) {
                        return Ok(false);
                    }
                }
                Step::End => {
                    let past = cursor.offset();
                    return Ok(self.end_segment(seg, record, (o, past), facts));
                }
                Step::NoRoom => return Ok(self.end_segment(seg, record, (o, seg.size()), facts)),
                Step::Limit => {
                    // The published end, in the active segment: done.
                    self.index_holds(seg, facts, o, false);
                    return Ok(false);
                }
                Step::Quarantined => {
                    let reason = "a damaged range an earlier open quarantined: its frames are lost";
                    return Ok(self.fail_in(FailureKind::Frame, seg, o, reason.into()));
                }
                Step::Bad(e) => return Ok(self.fail_in(FailureKind::Frame, seg, o, e.to_string())),
            }
        }
    }

    /// The segment's frames end at offset `end` (its end marker, or no
    /// room), its data just past it: its record and its index file are
    /// held against them, and the chain goes on in the next.
    fn end_segment(
        &mut self,
        seg: &Segment,
        record: Option<ChainRecord>,
        (end, past): (u64, u64),
        facts: SegmentFacts,
    ) -> bool {
        if let Some(r) = record.filter(|r| !r.open)
            && !self.record_holds(seg, &r, end)
        {
            return false;
        }
        if !self.index_holds(seg, facts, past, true) {
            return false;
        }
        self.head.at = seg.base() + seg.size() + HEADER_BYTES;
        self.entering = self.head.hash;
        true
    }

    /// Whether `seg`'s chain record `r` says what the walk found at
    /// segment offset `end` (where it stands now).
    fn record_holds(&mut self, seg: &Segment, r: &ChainRecord, end: u64) -> bool {
        self.report.chain_records += 1;
        let found = ChainRecord {
            links: self.head.links,
            end,
            open: r.open,
            entering: self.entering,
            head: self.head.hash,
        };
        if *r == found {
            return true;
        }
        let reason = report::record_mismatch(r, &found);
        // The record cannot say which frame changed: the failure names the
        // range it covers, from the segment's first frame.
        self.fail_in(FailureKind::ChainRecord, seg, HEADER_BYTES, reason)
    }

    /// Whether `seg`'s index file, if it has one that reads, holds against
    /// the facts gathered up to `limit` (the end of a `sealed` segment's
    /// data, else the published end).
    fn index_holds(
        &mut self,
        seg: &Segment,
        facts: SegmentFacts,
        limit: u64,
        sealed: bool,
    ) -> bool {
        match facts.check(limit, sealed) {
            index::Outcome::None => true,
            index::Outcome::Unreadable => {
                self.report.index_files_unreadable += 1;
                true
            }
            index::Outcome::Holds => {
                self.report.index_files += 1;
                true
            }
            index::Outcome::Wrong(offset, reason) => {
                self.report.index_files += 1;
                self.fail_in(FailureKind::IndexFile, seg, offset, reason)
            }
        }
    }

    /// After the frame at segment offset `o`: when the chain is as long as
    /// the digest's, whether it is the digest's chain.
    fn digest_holds(&mut self, seg: &Segment, o: u64) -> bool {
        let Some(d) = self.against.filter(|d| d.links == self.head.links) else {
            return true;
        };
        if d.hash == self.head.hash {
            self.report.against = Some(*d);
            return true;
        }
        let reason = format!(
            "the chain through this frame ({} links) ends in {}, the digest says {}: \
             an event the digest covers changed",
            d.links,
            crate::chain::hex(&self.head.hash),
            crate::chain::hex(&d.hash)
        );
        self.fail_in(FailureKind::Digest, seg, o, reason)
    }

    /// At the walk's end: a digest the chain never reached is a log cut
    /// back (or another log's digest).
    fn finish_against(&mut self, last: Option<&Segment>) {
        self.report.head = Digest::of(self.view.log_id, &self.head);
        let Some(d) = self.against else { return };
        if self.report.failure.is_some() || self.report.against.is_some() {
            return;
        }
        let Some(seg) = last else { return };
        let reason = format!(
            "the log ends after {} links, before the digest's {} (at {:?}): events it \
             committed to are gone",
            self.head.links, d.links, d.position
        );
        let offset = self.head.at.saturating_sub(seg.base()).min(seg.size());
        self.fail_in(FailureKind::Digest, seg, offset, reason);
    }

    /// The segment files past the view's, `next` the base the first must
    /// have: a file further on means one in between is gone (a follower
    /// maps the segments only up to a gap). The file at `next` itself is
    /// the writer's spare or one it made since.
    fn files_after(&mut self, next: u64) -> Result<()> {
        let dir = &self.view.dir;
        let listed = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        let mut later: Vec<u64> = Vec::new();
        for entry in listed {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name();
            if let Some(base) = name.to_str().and_then(layout::parse_segment_file) {
                later.extend(Some(base).filter(|&b| b >= next));
            }
        }
        if let Some(&first) = later.iter().min()
            && first != next
        {
            let path = dir.join(layout::segment_file(first));
            let reason = format!("a segment starting at {next} is missing");
            self.fail(FailureKind::Layout, &path, first, 0, reason);
        }
        Ok(())
    }

    /// Records the first failure, in `seg`; returns false (the walk stops).
    fn fail_in(&mut self, kind: FailureKind, seg: &Segment, offset: u64, reason: String) -> bool {
        self.fail(kind, seg.path(), seg.base(), offset, reason)
    }

    /// Records the first failure, at `offset` of the segment file `path`
    /// starting at log offset `base`; returns false.
    fn fail(
        &mut self,
        kind: FailureKind,
        path: &Path,
        base: u64,
        offset: u64,
        reason: String,
    ) -> bool {
        self.report.failure.get_or_insert(Failure {
            kind,
            segment: path.to_path_buf(),
            offset,
            position: Position::new(base + offset, 0),
            reason,
        });
        false
    }
}

impl From<&Error> for FailureKind {
    fn from(error: &Error) -> FailureKind {
        match error {
            Error::UnsupportedFormat { .. } => FailureKind::Layout,
            _ => FailureKind::Frame,
        }
    }
}

#[cfg(test)]
mod tests;
