//! What an operator asks of a log without reading its events: a summary
//! ([`LogInfo`]: segments, streams, events counted, times, disk use), the
//! durable consumers' checkpoints ([`ConsumerInfo`]), and one segment file
//! read alone, with no other file beside it ([`SegmentFile`], forensics on
//! a copy). The `seglog` tool's `info`, `consumers` and `dump --segment`
//! are built on these.
//!
//! A summary costs a look at each segment and each stream, never a walk of
//! the events: events are counted from the streams' versions, times come
//! from the segments' time indexes.

mod info;
mod segment_file;

pub use info::{ConsumerInfo, LogInfo, SegmentInfo};
pub use segment_file::{FileEvent, FileFrame, FileFrames, SegmentFile};

pub(crate) use info::{consumers, info};
