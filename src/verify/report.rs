//! What `verify` reports: what it checked, and the first failure, located.

use std::fmt;
use std::path::PathBuf;

use crate::chain::{Digest, hex};
use crate::error::{Error, Result};
use crate::layout;
use crate::position::Position;
use crate::segment::ChainRecord;

/// The outcome of [`verify`](crate::verify()): what was checked, and the
/// first failure if there is one. `Ok` with a failure is a log that is
/// damaged or was tampered with; `Err` is a verification that could not
/// run (no log there, an I/O error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The log verified.
    pub log_id: u128,
    /// Segments walked.
    pub segments: u64,
    /// Frames whose CRC and events were checked and that were linked.
    pub frames: u64,
    /// Events in them.
    pub events: u64,
    /// Bytes of them.
    pub bytes: u64,
    /// Chain records (sealed segments', and a clean close's) checked.
    pub chain_records: u64,
    /// Index files held against their segments, claim by claim.
    pub index_files: u64,
    /// Index files that do not read (a power cut can leave one; the next
    /// open rebuilds it): not a failure, nothing trusts them.
    pub index_files_unreadable: u64,
    /// Where the walk started: the log's start, the chain's link there
    /// (the genesis link, 0 links, when retention never removed anything).
    /// What lies before it cannot be checked: it is gone.
    pub start: Digest,
    /// The chain where the walk stopped: at the published end when the
    /// log is intact.
    pub head: Digest,
    /// The earlier digest given, once the log was found to hold exactly
    /// what it committed to.
    pub against: Option<Digest>,
    /// The first failure, if any: the walk stops there.
    pub failure: Option<Failure>,
}

impl Verification {
    pub(super) fn new(log_id: u128) -> Verification {
        Verification {
            log_id,
            segments: 0,
            frames: 0,
            events: 0,
            bytes: 0,
            chain_records: 0,
            index_files: 0,
            index_files_unreadable: 0,
            start: Digest {
                log_id,
                position: Position::START,
                links: 0,
                hash: [0; 32],
            },
            head: Digest {
                log_id,
                position: Position::START,
                links: 0,
                hash: [0; 32],
            },
            against: None,
            failure: None,
        }
    }

    /// Whether nothing failed.
    pub fn is_intact(&self) -> bool {
        self.failure.is_none()
    }
}

impl fmt::Display for Verification {
    /// What was checked, then `intact` or the failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} segments, {} frames, {} events, {} bytes; {} chain records, {} index files \
             ({} unreadable, rebuilt at the next open); chain head {}",
            self.segments,
            self.frames,
            self.events,
            self.bytes,
            self.chain_records,
            self.index_files,
            self.index_files_unreadable,
            self.head
        )?;
        if self.start.links > 0 {
            write!(
                f,
                "; from the log's start at {:?} ({} links before it, removed)",
                self.start.position, self.start.links
            )?;
        }
        if let Some(d) = &self.against {
            write!(
                f,
                "; holds the digest at {:?} ({} links)",
                d.position, d.links
            )?;
        }
        match &self.failure {
            None => write!(f, ": intact"),
            Some(failure) => write!(f, ": {failure}"),
        }
    }
}

/// What kind of check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// A frame's CRC, header or events: damage, or bytes changed without
    /// fixing the CRC; or a range an earlier open quarantined.
    Frame,
    /// A segment's chain record disagrees with its frames: a frame changed
    /// (its CRC recomputed) after the record was written, or the segment
    /// was moved or swapped.
    ChainRecord,
    /// An index file says something false about its segment.
    IndexFile,
    /// The segments themselves: one missing, misplaced, or of another log.
    Layout,
    /// The log does not hold what the earlier digest committed to.
    Digest,
}

/// The first failure `verify` found: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What kind of check failed.
    pub kind: FailureKind,
    /// The segment file.
    pub segment: PathBuf,
    /// Offset in that file (a frame's, or the start of the range a chain
    /// record covers).
    pub offset: u64,
    /// The log position there.
    pub position: Position,
    /// What is wrong, in words.
    pub reason: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} failure in {:?} at offset {} ({:?}): {}",
            self.kind, self.segment, self.offset, self.position, self.reason
        )
    }
}

/// The report for a log whose open failed: a located failure when the
/// error names a segment, else the error.
pub(super) fn failed_open(error: Error) -> Result<Verification> {
    let (kind, segment, offset, reason) = match error {
        Error::Corrupt {
            segment,
            offset,
            reason,
        } => (FailureKind::Layout, segment, offset, reason),
        Error::UnsupportedFormat { path, reason } if is_segment(&path) => {
            (FailureKind::Layout, path, 0, reason)
        }
        other => return Err(other),
    };
    let base = segment
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(layout::parse_segment_file)
        .unwrap_or(0);
    let mut report = Verification::new(0);
    report.failure = Some(Failure {
        kind,
        position: Position::new(base + offset, 0),
        segment,
        offset,
        reason,
    });
    Ok(report)
}

fn is_segment(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(layout::parse_segment_file)
        .is_some()
}

/// Words for a chain record that is not what the frames make.
pub(super) fn record_mismatch(recorded: &ChainRecord, found: &ChainRecord) -> String {
    if recorded.entering != found.entering {
        return format!(
            "the segment's chain record says the chain enters it as {}, the segments before \
             end in {}: a segment before it, or this one, was replaced, moved or removed",
            hex(&recorded.entering),
            hex(&found.entering)
        );
    }
    format!(
        "the chain over the segment's frames up to offset {} ({} links) ends in {}, its \
         record says {} at offset {} ({} links): a frame in it changed after it was written",
        found.end,
        found.links,
        hex(&found.head),
        hex(&recorded.head),
        recorded.end,
        recorded.links
    )
}
