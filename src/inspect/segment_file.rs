//! [`SegmentFile`]: one segment file read alone, for forensics on a copy:
//! no directory, no index, no other segment. Every frame is checked in
//! full (checksum, header, events) as it is read; streams defined in an
//! earlier segment are known only by their ids.
//!
//! The file is read into memory once (a segment is at most
//! [`MAX_SEGMENT_SIZE_BYTES`](crate::limits::MAX_SEGMENT_SIZE_BYTES)), not
//! mapped: a copy being changed under the reader cannot change what it
//! already read.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::frame::{self, Checksum, EVENT_FLAG_METADATA_SEALED, EVENT_FLAG_PAYLOAD_SEALED};
use crate::position::Position;
use crate::segment::{HEADER_BYTES, OpenSegment, SLOT_SEALED};
use crate::walk::{Check, FrameCursor, Step};

/// Where a segment's header says it starts in the log.
const BASE_FIELD: std::ops::Range<usize> = 24..32;

/// A segment file opened alone ([`SegmentFile::open`]).
#[derive(Debug)]
pub struct SegmentFile {
    path: PathBuf,
    base: u64,
    size: u64,
    log_id: u128,
    sealed: bool,
    /// The data region, from `HEADER_BYTES` to the segment's size.
    data: Vec<u8>,
}

/// One append (frame) of a [`SegmentFile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFrame {
    /// Its offset in the file.
    pub offset: u64,
    /// The position of its first event.
    pub position: Position,
    /// The stream's id in its log.
    pub stream_id: u32,
    /// The stream's name, when a frame of this file defined it.
    pub stream: Option<String>,
    /// The version of its first event.
    pub first_version: u64,
    /// Its commit time, microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// Its events, in order.
    pub events: Vec<FileEvent>,
}

/// One event of a [`FileFrame`], as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    /// The event type.
    pub event_type: String,
    /// The schema version stored.
    pub schema_version: u16,
    /// The event's id, if it has one.
    pub id: Option<u128>,
    /// The metadata as stored (an envelope when `metadata_sealed`).
    pub metadata: Vec<u8>,
    /// The payload as stored (an envelope when `payload_sealed`).
    pub payload: Vec<u8>,
    /// The payload is encrypted (crypto-shredding): its bytes are the
    /// envelope, readable only through the log with its master key.
    pub payload_sealed: bool,
    /// The metadata is encrypted likewise.
    pub metadata_sealed: bool,
}

impl SegmentFile {
    /// Opens the segment file at `path`, whatever its name: its header is
    /// checked (magic, format version, checksum, sizes) and says where in
    /// the log it starts.
    pub fn open(path: impl AsRef<Path>) -> Result<SegmentFile> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < HEADER_BYTES {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                reason: format!("{len} bytes, shorter than a segment header"),
            });
        }
        let mut head = [0u8; BASE_FIELD.end];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| Error::io(path, e))?;
        let mut base = [0u8; 8];
        base.copy_from_slice(&head[BASE_FIELD]);
        let open = OpenSegment::open_follower(path, u64::from_le_bytes(base))?;
        let seg = open.segment();
        let sealed = open.slot().is_some_and(|s| s.flags & SLOT_SEALED != 0);
        let mut data = vec![0u8; (seg.size() - HEADER_BYTES) as usize];
        file.read_exact_at(&mut data, HEADER_BYTES)
            .map_err(|e| Error::io(path, e))?;
        Ok(SegmentFile {
            path: path.to_path_buf(),
            base: seg.base(),
            size: seg.size(),
            log_id: seg.log_id(),
            sealed,
            data,
        })
    }

    /// The log offset the segment starts at.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The segment's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The id of the log the segment belongs to.
    pub fn log_id(&self) -> u128 {
        self.log_id
    }

    /// Whether its header says it is sealed (full, closed to appends).
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Its frames in order, each checked in full. The walk ends at the end
    /// marker or where the written data ends (zeros); anything else that
    /// does not check is an [`Error::Corrupt`] naming the file and offset,
    /// and the last item.
    pub fn frames(&self) -> FileFrames<'_> {
        FileFrames {
            file: self,
            checksum: Checksum::new(self.log_id),
            offset: HEADER_BYTES,
            names: HashMap::new(),
            done: false,
        }
    }
}

/// The frames of a [`SegmentFile`] ([`SegmentFile::frames`]).
#[derive(Debug)]
pub struct FileFrames<'a> {
    file: &'a SegmentFile,
    checksum: Checksum,
    offset: u64,
    names: HashMap<u32, String>,
    done: bool,
}

impl Iterator for FileFrames<'_> {
    type Item = Result<FileFrame>;

    fn next(&mut self) -> Option<Result<FileFrame>> {
        if self.done {
            return None;
        }
        let file = self.file;
        let mut cursor = FrameCursor::new(
            (file.base, file.size),
            HEADER_BYTES,
            &file.data,
            &self.checksum,
        );
        cursor.seek(self.offset);
        let at = self.offset;
        let step = cursor.next(Check::Full);
        self.offset = cursor.offset();
        let frame = match step {
            Step::Events(frame, _) => frame,
            // The data ends; a walk given no quarantine list never steps
            // over one.
            Step::Bad(frame::DecodeError::Zero)
            | Step::End
            | Step::NoRoom
            | Step::Limit
            | Step::Quarantined => {
                self.done = true;
                return None;
            }
            Step::Bad(e) => {
                self.done = true;
                return Some(Err(Error::Corrupt {
                    segment: file.path.clone(),
                    offset: at,
                    reason: e.to_string(),
                }));
            }
        };
        if let Some(name) = frame.defines {
            self.names.insert(frame.stream_id, name.to_string());
        }
        Some(Ok(FileFrame {
            offset: at,
            position: Position::new(file.base + at, 0),
            stream_id: frame.stream_id,
            stream: self.names.get(&frame.stream_id).cloned(),
            first_version: frame.first_version,
            timestamp_us: frame.timestamp_us,
            events: events(&frame),
        }))
    }
}

/// The events of `frame`, checked in full when it was decoded.
fn events(frame: &frame::EventsFrame<'_>) -> Vec<FileEvent> {
    frame
        .events()
        .flatten()
        .map(|raw| FileEvent {
            event_type: String::from_utf8_lossy(raw.event_type).into_owned(),
            schema_version: raw.schema_version,
            id: raw.id,
            metadata: raw.metadata.to_vec(),
            payload: raw.payload.to_vec(),
            payload_sealed: raw.flags & EVENT_FLAG_PAYLOAD_SEALED != 0,
            metadata_sealed: raw.flags & EVENT_FLAG_METADATA_SEALED != 0,
        })
        .collect()
}
