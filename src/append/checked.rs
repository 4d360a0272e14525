//! The checks every append passes before it takes a lock, and the one
//! path an append takes from there: `Log::append`'s, and the engine's own
//! (the `$audit` trail) without the check for the system streams.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::AppendSide;
use crate::error::{Error, Result};
use crate::event::{AppendRequest, AppendResult, EventData, ExpectedVersion};
use crate::frame;
use crate::limits;
use crate::options::Clock;
use crate::shred;

/// Now, in microseconds since the epoch, from `clock` (the system's
/// when `None`): the commit time an append stamps.
pub(crate) fn now_us(clock: Option<&dyn Clock>) -> u64 {
    let now = clock.map_or_else(SystemTime::now, |c| c.now());
    // `as_micros` divides a u128, a noticeable share of an append to a
    // cold stream (perf).
    now.duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs() * 1_000_000 + u64::from(d.subsec_micros())
    })
}

/// Checks the stream name and the batch's size limits: nothing here
/// depends on a lock, so bad input never delays other writers.
pub(crate) fn validate_stream(stream: &str, events: &[EventData]) -> Result<()> {
    if stream.is_empty() {
        return Err(Error::EmptyStreamName);
    }
    if stream.len() > limits::MAX_STREAM_NAME_BYTES {
        return Err(Error::StreamNameTooLong {
            len: stream.len(),
            max: limits::MAX_STREAM_NAME_BYTES,
        });
    }
    if events.is_empty() {
        return Err(Error::EmptyBatch);
    }
    if events.len() > limits::MAX_EVENTS_PER_APPEND {
        return Err(Error::TooManyEvents {
            count: events.len(),
            max: limits::MAX_EVENTS_PER_APPEND,
        });
    }
    Ok(())
}

/// Checks what can be checked without the log's state: the stream name,
/// the batch's size limits, and each event's type and size.
pub(crate) fn validate(stream: &str, events: &[EventData], max_frame_bytes: u64) -> Result<()> {
    validate_stream(stream, events)?;
    for (index, event) in events.iter().enumerate() {
        let len = event.event_type.as_str().len();
        if len == 0 {
            return Err(Error::EmptyEventType { index });
        }
        if len > limits::MAX_EVENT_TYPE_BYTES {
            return Err(Error::EventTypeTooLong {
                index,
                len,
                max: limits::MAX_EVENT_TYPE_BYTES,
            });
        }
        let alone = frame::padded(frame::batch_len(Some(stream), std::slice::from_ref(event)));
        if alone > max_frame_bytes {
            return Err(Error::EventTooLarge {
                index,
                size_bytes: alone,
                max_bytes: max_frame_bytes,
            });
        }
    }
    Ok(())
}

/// An append through `append` without the check for the engine's own
/// streams: [`Log::append`]'s path, for the engine's threads too.
pub(crate) fn append_unchecked(
    append: &Arc<AppendSide>,
    stream: &str,
    expected: ExpectedVersion,
    events: &[EventData],
) -> Result<AppendResult> {
    // Everything up to the lookup overlaps the miss on a cold stream.
    let hash = append.prefetch(stream);
    validate_stream(stream, events)?;
    // Sealed before the locks: a new subject's key is durable in the key
    // store before its first event can be acknowledged.
    let sealed = shred::seal_batch(append.view.keys.as_deref(), stream, events)?;
    let events = sealed.as_deref().unwrap_or(events);
    validate(stream, events, append.max_frame_bytes())?;
    let now = now_us(append.options.clock.as_deref());
    let request = AppendRequest {
        stream,
        expected,
        events,
    };
    let (result, end) = append.append(hash, &request, now)?;
    append.after_append(end)?;
    Ok(result)
}
