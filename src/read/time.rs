//! Time travel: the position of a point in time, and a stream as of a
//! version, a position or a time.
//!
//! Commit times never decrease along the log (the writer assigns them
//! under its lock and never below the newest one stored; see
//! [`Clock`](crate::Clock)), so a time maps to one position: the first
//! event committed at or after it. [`position_at`] finds it with a binary
//! search over the segments' first times, one over the segment's sparse
//! time index ([`TimeIndex`](crate::segment::TimeIndex)), and a walk of at
//! most one stride of frame headers.
//!
//! A stream as of a point is the stream read up to a head as of that
//! point: the frame holding its last event before the point, found from
//! the sparse stream index and at most one index interval of back-links.
//! The read after that is an ordinary [`ReadStream`] bounded by that head,
//! so it costs what reading the same events with `read_stream` does.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::frame;
use crate::position::Position;
use crate::segment::{HEADER_BYTES, Segment, corrupt};
use crate::streams::Head;
use crate::view::LogView;
use crate::walk::{Check, FrameCursor, Step};

use super::ReadStream;

/// A point in a log's history, for reading a stream as it was then
/// ([`Log::read_stream_as_of`](crate::Log::read_stream_as_of)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// After the event of this version was appended: versions `0..=v`. A
    /// version past the stream's end means the whole stream.
    Version(u64),
    /// Before this position: the events stored at positions below it, what
    /// a reader whose [`next_position`](crate::RecordedEvent::next_position)
    /// was this position had seen. A position past the log's end means the
    /// whole stream.
    Position(Position),
    /// At this time: the events committed at or before it (commit times
    /// have microsecond precision; finer parts are ignored).
    Time(SystemTime),
}

/// `t` in whole microseconds since the Unix epoch (0 before it, saturated
/// far after it).
pub(crate) fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The position of the first event committed at or after `t_us`:
/// [`Position::START`] when that is the log's first event (or the log is
/// empty), the log's end when every event is older.
pub(crate) fn position_at(shared: &LogView, t_us: u64) -> Result<Position> {
    let segs = shared.segments_snapshot();
    // Segments whose first frame is older than `t_us`: a prefix, since
    // commit times never decrease.
    let older = segs.partition_point(|s| s.times.first_us().is_some_and(|f| f < t_us));
    let Some(seg) = older.checked_sub(1).and_then(|i| segs.get(i)) else {
        return Ok(Position::START);
    };
    // An entry outside the published frames (a damaged index file whose
    // checksum still matched) costs a walk from the start, not an answer.
    let from = seg
        .times
        .last_before(t_us)
        .filter(|o| (HEADER_BYTES..seg.published()).contains(o))
        .unwrap_or(HEADER_BYTES);
    match first_at_or_after(shared, seg, from, t_us)? {
        Some(position) => Ok(position),
        // Every frame of `seg` is older: the answer is the next segment's
        // first frame, which is not (or the end of the log).
        None => Ok(match segs.get(older) {
            Some(next) => Position::new(next.base() + HEADER_BYTES, 0),
            None => Position::new(seg.base() + seg.published(), 0),
        }),
    }
}

/// The first frame of `seg` from segment offset `from` (a frame boundary)
/// committed at or after `t_us`, among those readers may see; `None` when
/// the segment ends first (sealed, or past what is published).
fn first_at_or_after(
    shared: &LogView,
    seg: &Segment,
    from: u64,
    t_us: u64,
) -> Result<Option<Position>> {
    let end = seg.published();
    let bytes = seg.bytes(from, end);
    let mut frames =
        FrameCursor::over(seg, bytes, from, &shared.checksum).skipping(&shared.quarantine);
    loop {
        let at = frames.at();
        match frames.next(Check::Lazy) {
            Step::Events(f, _) if f.timestamp_us >= t_us => {
                return Ok(Some(Position::new(at, 0)));
            }
            Step::Events(..) | Step::Quarantined => {}
            Step::End | Step::NoRoom => return Ok(None),
            // The published end: the log ends in this segment.
            Step::Limit => return Ok(Some(Position::new(at, 0))),
            Step::Bad(e) => return Err(corrupt(seg, at - seg.base(), e)),
        }
    }
}

/// The exclusive position bound `as_of` stands for, or the version bound.
enum Bound {
    Version(u64),
    Before(Position),
}

fn bound(shared: &LogView, as_of: AsOf) -> Result<Bound> {
    Ok(match as_of {
        AsOf::Version(v) => Bound::Version(v),
        AsOf::Position(p) => Bound::Before(p),
        // At or before `t`: before the first event after it.
        AsOf::Time(t) => Bound::Before(position_at(shared, micros(t).saturating_add(1))?),
    })
}

/// The head of stream `id` (whose head now is `head`) as of `as_of`:
/// `None` when it had no event then.
pub(crate) fn head_as_of(
    shared: &LogView,
    (id, head): (u32, Head),
    as_of: AsOf,
) -> Result<Option<Head>> {
    match bound(shared, as_of)? {
        Bound::Version(v) if v >= head.last_version => Ok(Some(head)),
        Bound::Version(v) => {
            // The first entry above `v` starts a frame past it; the frame
            // holding `v` is at most one interval of back-links before.
            let start = match shared.index_entry_above(id, v) {
                Some(entry) if entry.frame <= head.last_frame => entry.frame,
                _ => head.last_frame,
            };
            let frame = walk_back(shared, id, start, |first, _| first <= v)?;
            Ok(frame.map(|(at, _)| Head {
                last_version: v,
                last_frame: at,
            }))
        }
        Bound::Before(p) => head_before(shared, (id, head), p),
    }
}

/// The head of stream `id` as of the events stored before position `p`.
fn head_before(shared: &LogView, (id, head): (u32, Head), p: Position) -> Result<Option<Head>> {
    let (p_at, p_index) = (p.frame_offset(), u64::from(p.index_in_frame()));
    if head.last_frame < p_at {
        return Ok(Some(head));
    }
    // The first entry at or after `p`'s frame starts at most one interval
    // of back-links after the last frame before it.
    let start = match shared.first_entry_from_frame(id, p_at) {
        Some(entry) if entry.frame <= head.last_frame => entry.frame,
        _ => head.last_frame,
    };
    let found = walk_back(shared, id, start, |_, at| {
        at < p_at || (at == p_at && p_index > 0)
    })?;
    Ok(found.map(|(at, (first, last))| Head {
        // A position inside the stream's own frame takes its events
        // before that index.
        last_version: if at == p_at {
            last.min(first + p_index - 1)
        } else {
            last
        },
        last_frame: at,
    }))
}

/// Walks stream `id`'s back-links from its frame at log offset `start`
/// to the first frame `stop` accepts (given its first version and
/// offset): that frame's offset and first and last versions, or `None`
/// when the stream's first frame is passed.
fn walk_back(
    shared: &LogView,
    id: u32,
    start: u64,
    stop: impl Fn(u64, u64) -> bool,
) -> Result<Option<(u64, (u64, u64))>> {
    let mut at = start;
    // Below the log's start the stream's frames are gone (retention).
    while at != frame::NO_PREV_FRAME && shared.kept(at) {
        let f = shared.stream_frame(id, at)?;
        if stop(f.info.first_version, at) {
            return Ok(Some((at, (f.info.first_version, f.info.last_version()))));
        }
        at = f.prev_frame;
    }
    Ok(None)
}

/// Stream `stream` from `from_version` as of `as_of`: an empty read when
/// it had no event then (or does not exist).
pub(crate) fn read_stream_as_of(
    shared: &Arc<LogView>,
    stream: &str,
    from_version: u64,
    as_of: AsOf,
) -> Result<ReadStream> {
    let head = match shared.stream_head(stream) {
        Some((id, head)) => head_as_of(shared, (id, head), as_of)?.map(|h| (id, h)),
        None => None,
    };
    ReadStream::new(Arc::clone(shared), head, from_version, false)
}

/// Stream `stream`'s last version as of `as_of`, `None` when it had no
/// event then (or does not exist).
pub(crate) fn stream_version_as_of(
    shared: &LogView,
    stream: &str,
    as_of: AsOf,
) -> Result<Option<u64>> {
    let Some(found) = shared.stream_head(stream) else {
        return Ok(None);
    };
    Ok(head_as_of(shared, found, as_of)?.map(|h| h.last_version))
}
