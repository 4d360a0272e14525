//! One append under the append side's lock: look the stream up, check the
//! expected version, encode the frame straight into the mapping and record
//! it in the registry and the segment's index; and the roll to the next
//! segment when the frame does not fit.
//!
//! Back of the envelope, 128-byte event: one hash probe (its line
//! prefetched before the lock), one copy of the payload, one CRC pass,
//! ~200 bytes touched. No allocation, no syscall, no thread hop. A roll
//! under the lock only takes a segment that is ready: making one (a
//! `fallocate`, a header write and two syncs) happens without the lock
//! ([`Placed::NeedsSegment`]).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::{AppendRequest, AppendResult};
use crate::frame::{self, BatchMeta, NO_PREV_FRAME};
use crate::index::SegmentIndex;
use crate::limits;
use crate::options::Durability;
use crate::position::{MAX_LOG_OFFSET, Position};
use crate::segment::{HEADER_BYTES, OpenSegment, SegmentWriter};
use crate::streams::{Found, Head, NameHash, Streams};

use super::AppendSide;
use super::spare::crossed_prefault_chunk;

/// The writer's side of the tail: only the holder of the append side's
/// lock appends.
pub(crate) struct Tail {
    pub(crate) writer: SegmentWriter,
    /// What the active segment adds to the registry, for its index file.
    pub(crate) index: SegmentIndex,
    last_timestamp_us: u64,
    /// The active segment may be written: its slot no longer says `CLEAN`
    /// on disk. A copy of the commit's flag read under the lock alone, so
    /// appends ask the commit only until it is set.
    pub(crate) writable: bool,
}

impl Tail {
    pub(crate) fn new(writer: SegmentWriter, index: SegmentIndex, last_timestamp_us: u64) -> Tail {
        Tail {
            writer,
            index,
            last_timestamp_us,
            writable: false,
        }
    }

    /// Notes the frame just written at segment offset `offset` in the
    /// segment's time index.
    #[inline]
    fn note_time(&self, offset: u64) {
        let times = &self.writer.segment().times;
        times.note(offset, self.last_timestamp_us);
    }

    /// Log offset where the next frame goes.
    pub(crate) fn end(&self) -> u64 {
        self.writer.segment().base() + self.writer.cursor()
    }
}

/// What one append under the lock came to.
pub(crate) enum Placed {
    /// Appended, or found to be a retry of an append already made: what
    /// the append was given, and the log offset its frame ends at.
    Done(AppendResult, u64),
    /// The frame needs the segment starting at this offset, and it is not
    /// ready: make it without the lock, then try the append again.
    NeedsSegment(u64),
}

/// An append checked against the registry, with its frame's place decided.
struct Accepted<'a> {
    found: Option<Found>,
    defines: Option<&'a str>,
    first_version: u64,
    last_version: u64,
    /// Padded length of the frame.
    len: u64,
}

impl AppendSide {
    /// One append under the lock. Publishes nothing (see
    /// [`AppendSide::publish_tail`]).
    pub(crate) fn append_locked(
        &self,
        streams: &mut Streams,
        tail: &mut Tail,
        hash: NameHash,
        request: &AppendRequest<'_>,
        now: u64,
    ) -> Result<Placed> {
        let found = streams.find_hashed(hash, request.stream);
        if let Some(found) = found
            && let Some((result, end)) = self.find_retry(streams, found, request)?
        {
            return Ok(Placed::Done(result, end));
        }
        let checked = self.check(found, request)?;
        if checked.len + frame::END_BYTES as u64 > tail.writer.remaining() {
            let next = tail.writer.segment().end();
            match self.spares.take(next) {
                Some(seg) => self.roll(tail, streams, seg),
                None => return Ok(Placed::NeedsSegment(next)),
            }
        }
        let at = tail.end();
        if at + checked.len >= MAX_LOG_OFFSET {
            return Err(Error::LogFull);
        }
        let (result, end) = self.write_frame(streams, tail, request, &checked, now)?;
        Ok(Placed::Done(result, end))
    }

    /// The expected-version check and the limits a frame must meet, before
    /// anything is written.
    fn check<'a>(&self, found: Option<Found>, request: &AppendRequest<'a>) -> Result<Accepted<'a>> {
        // Under the tail's lock: an append checked here is written before
        // a tombstone that marks the stream after it (`delete.rs`).
        if let Some(f) = found
            && self
                .view
                .deleted
                .get(f.id)
                .is_some_and(|d| d.refuses_appends())
        {
            return Err(Error::StreamDeleted {
                stream: request.stream.to_string(),
            });
        }
        let actual = found.map(|f| f.head.last_version);
        if !request.expected.matches(actual) {
            return Err(Error::WrongExpectedVersion {
                stream: request.stream.to_string(),
                expected: request.expected,
                actual,
            });
        }
        let count = request.events.len() as u64;
        let first_version = actual.map_or(0, |v| v + 1);
        if first_version + count - 1 > limits::MAX_VERSION {
            return Err(Error::LogFull);
        }
        let defines = found.is_none().then_some(request.stream);
        let len = frame::padded(frame::batch_len(defines, request.events));
        let max_frame = self.max_frame_bytes();
        if len > max_frame {
            return Err(Error::BatchTooLarge {
                size_bytes: len,
                max_bytes: max_frame,
            });
        }
        Ok(Accepted {
            found,
            defines,
            first_version,
            last_version: first_version + count - 1,
            len,
        })
    }

    /// Registers a new stream, encodes the frame into the mapping and
    /// records it: the part of an append that changes state.
    fn write_frame(
        &self,
        streams: &mut Streams,
        tail: &mut Tail,
        request: &AppendRequest<'_>,
        c: &Accepted<'_>,
        now: u64,
    ) -> Result<(AppendResult, u64)> {
        let seg_base = tail.writer.segment().base();
        let at = seg_base + tail.writer.cursor();
        let head = c.found.map(|f| f.head);
        let id = match c.found {
            Some(found) => found.id,
            None => {
                let head = Head {
                    last_version: c.last_version,
                    last_frame: at,
                };
                // The lookup found no stream: only the limit can refuse.
                streams
                    .insert(&self.view.names, request.stream, head)
                    .map_err(|_| Error::TooManyStreams {
                        max: limits::MAX_STREAMS,
                    })?
            }
        };
        tail.last_timestamp_us = tail.last_timestamp_us.max(now);
        let meta = BatchMeta {
            stream_id: id,
            defines: c.defines,
            first_version: c.first_version,
            prev_frame: head.map_or(NO_PREV_FRAME, |h| h.last_frame),
            timestamp_us: tail.last_timestamp_us,
            durable_end: self.commit.durable_end().min(at),
        };
        let checksum = &self.view.checksum;
        let events = request.events;
        tail.writer.append(c.len, |out| {
            frame::encode_batch(out, at, checksum, &meta, events);
            debug_assert!(
                frame::decode(out, at, checksum).is_ok(),
                "a frame must decode right after it is encoded"
            );
        });
        tail.note_time(at - seg_base);
        let recorded = match c.found {
            Some(found) => streams.record_found(found, c.first_version, c.last_version, at),
            None => streams.record(id, c.first_version, c.last_version, at),
        };
        let first_here = head.is_none_or(|h| h.last_frame < seg_base);
        tail.index.record(
            c.defines.is_some(),
            &recorded,
            first_here,
            tail.writer.cursor(),
        );
        if crossed_prefault_chunk(at - seg_base, tail.writer.cursor()) {
            self.spares.changed();
        }
        let last_index = (request.events.len() - 1) as u16;
        let result = AppendResult {
            first_version: c.first_version,
            last_version: c.last_version,
            first_position: Position::new(at, 0),
            last_position: Position::new(at, last_index),
        };
        Ok((result, at + c.len))
    }

    /// Makes what was appended visible (unless the sync thread does it,
    /// under `Sync`). The caller wakes subscribers after the lock.
    pub(crate) fn publish_tail(&self, tail: &Tail) {
        if self.options.durability != Durability::Sync {
            let seg = tail.writer.segment();
            seg.publish(tail.writer.cursor());
            self.view.announce(seg, seg.base() + tail.writer.cursor());
        }
    }

    /// Seals the active segment now, if it holds a frame: retention's way
    /// to let the events of an idle log age out. `false` when it was
    /// empty, or `next` is not the segment after it.
    pub(crate) fn roll_now(&self, tail: &mut Tail, streams: &Streams, next: OpenSegment) -> bool {
        if tail.writer.cursor() <= HEADER_BYTES
            || next.segment().base() != tail.writer.segment().end()
        {
            return false;
        }
        self.roll(tail, streams, next);
        true
    }

    /// Seals the active segment and makes `next` (ready, the one after it)
    /// active. In memory only: an end marker written into the mapping.
    fn roll(&self, tail: &mut Tail, streams: &Streams, next: OpenSegment) {
        let old = Arc::clone(tail.writer.segment());
        debug_assert_eq!(next.segment().base(), old.end());
        let (seg, next_writer) = next.into_active(HEADER_BYTES);
        // Readers must find the next segment before they can see the marker.
        self.view.push_segment(seg);
        let mut old_writer = std::mem::replace(&mut tail.writer, next_writer);
        let at = old.base() + old_writer.cursor();
        let checksum = &self.view.checksum;
        old_writer.append(frame::END_BYTES as u64, |out| {
            frame::encode_end(out, at, checksum);
        });
        let mut index =
            std::mem::replace(&mut tail.index, SegmentIndex::new(old.end(), HEADER_BYTES));
        index.covered = old_writer.cursor();
        index.finalize(streams, &old.times);
        // The sync thread writes it once the segment is durable and sealed.
        self.commit.add_sealed_index(index);
        if self.options.durability != Durability::Sync {
            old.publish(old_writer.cursor());
            // Followers waiting on the old segment must see its end marker.
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            old.wake_followers();
        }
        old_writer.seal();
        // Under None and Periodic the preparer rings the sync thread for
        // the sealed segment once it has dropped the segment's pages from
        // the page tables: a sync of it here, still mapped, cost appenders
        // a storm of TLB-shootdown interrupts (docs/PERFORMANCE.md).
        if self.options.durability == Durability::Sync {
            self.commit.ring(crate::commit::Msg::Sync);
        }
    }

    /// The largest frame a segment created from now on can hold.
    pub(crate) fn max_frame_bytes(&self) -> u64 {
        self.options.segment_size_bytes - HEADER_BYTES - frame::END_BYTES as u64
    }
}
