//! Messages into the local log: grouped back into the source's appends,
//! the groups appended together, each event once.

use std::collections::HashMap;

use async_nats::jetstream;
use bytes::Bytes;
use seglog::limits::MAX_EVENTS_PER_APPEND;
use seglog::{AUDIT_STREAM, AppendRequest, EventData, ExpectedVersion, Position, STREAMS_STREAM};

use super::Mirror;
use crate::error::BridgeError;
use crate::headers;

/// One event of a message, ready to append.
#[derive(Debug)]
struct Incoming {
    /// The message's sequence in the JetStream stream.
    sequence: u64,
    stream: String,
    version: u64,
    event: EventData,
    /// The source frame (one append) it came from.
    frame: u64,
    /// Whether it is the last event of that frame.
    closes_frame: bool,
}

/// Events of a source append whose last event has not arrived yet, and
/// the source position of the last message seen.
#[derive(Debug, Default)]
pub(super) struct Held {
    events: Vec<Incoming>,
    /// The next message must name this position as its previous one, or
    /// the stream lost messages. `None` when not known (nothing mirrored
    /// yet, or a stream whose first messages were dropped).
    last: Option<Position>,
}

impl Held {
    /// Starts over after `last` (the source position of the last message
    /// the local log holds): the held events are forgotten, to be fetched
    /// again.
    pub(super) fn restart(&mut self, last: Option<Position>) {
        self.events.clear();
        self.last = last;
    }

    /// Holds `e`, the event at source position `position` published after
    /// the one at `previous`, after checking that it follows the last one.
    fn push(
        &mut self,
        e: Incoming,
        position: Position,
        previous: Option<Position>,
    ) -> Result<(), BridgeError> {
        if let Some(expected) = self.last
            && previous != Some(expected)
        {
            return Err(BridgeError::Gap {
                sequence: e.sequence,
                expected,
                found: previous,
            });
        }
        self.last = Some(position);
        self.events.push(e);
        Ok(())
    }
}

/// The events of one source append to go into the local log.
struct Group {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<EventData>,
}

impl Mirror {
    /// Appends the complete source appends among the held events and
    /// `chunk`, in one call; holds a trailing incomplete one. Returns how
    /// many events it appended and how many messages remain to mirror
    /// after the chunk (held ones included).
    pub(super) fn apply(
        &mut self,
        chunk: &[jetstream::Message],
    ) -> Result<(u64, u64), BridgeError> {
        let mut pending = 0;
        for message in chunk {
            pending = message.info().map_or(0, |i| i.pending);
            let (e, position, previous) = decode(message)?;
            self.held.push(e, position, previous)?;
        }
        let complete = self
            .held
            .events
            .iter()
            .rposition(|e| e.closes_frame)
            .map_or(0, |i| i + 1);
        if complete == 0 && self.held.events.len() > MAX_EVENTS_PER_APPEND {
            return Err(BridgeError::BadMessage {
                sequence: chunk
                    .last()
                    .and_then(|m| m.info().ok())
                    .map_or(0, |i| i.stream_sequence),
                reason: format!("an append of more than {MAX_EVENTS_PER_APPEND} events"),
            });
        }
        // The source's system streams record its own removals and
        // deletions: they are not the mirror's to repeat (and only the
        // engine may append to them).
        let ready: Vec<Incoming> = self
            .held
            .events
            .drain(..complete)
            .filter(|e| e.stream != AUDIT_STREAM && e.stream != STREAMS_STREAM)
            .collect();
        let groups = self.groups(ready)?;
        let requests: Vec<AppendRequest<'_>> = groups
            .iter()
            .map(|g| AppendRequest {
                stream: &g.stream,
                expected: g.expected,
                events: &g.events,
            })
            .collect();
        let mut appended = 0;
        for result in self.log.append_many(&requests)? {
            let r = result?;
            appended += r.last_version - r.first_version + 1;
        }
        Ok((appended, pending + self.held.events.len() as u64))
    }

    /// Consecutive events of one frame as one group, without the events
    /// the local log holds already. Each event must be its stream's next
    /// version, checked here for the whole batch before anything is
    /// appended: a refused group would otherwise leave later ones
    /// appended after a hole, and the local log no longer a prefix of the
    /// stream.
    fn groups(&self, ready: Vec<Incoming>) -> Result<Vec<Group>, BridgeError> {
        let mut groups: Vec<Group> = Vec::new();
        let mut versions: HashMap<String, u64> = HashMap::new();
        let mut frame = None;
        for e in ready {
            let local = match versions.get(&e.stream) {
                Some(&v) => Some(v),
                None => self.log.stream_version(&e.stream),
            };
            if local.is_some_and(|v| v >= e.version) {
                continue;
            }
            if e.version != local.map_or(0, |v| v + 1) {
                return Err(BridgeError::Diverged {
                    sequence: e.sequence,
                    stream: e.stream,
                    version: e.version,
                    local,
                });
            }
            versions.insert(e.stream.clone(), e.version);
            let same =
                frame == Some(e.frame) && groups.last().is_some_and(|g| g.stream == e.stream);
            frame = Some(e.frame);
            if same && let Some(group) = groups.last_mut() {
                group.events.push(e.event);
                continue;
            }
            let expected = match e.version.checked_sub(1) {
                None => ExpectedVersion::NoStream,
                Some(previous) => ExpectedVersion::Exact(previous),
            };
            groups.push(Group {
                stream: e.stream,
                expected,
                events: vec![e.event],
            });
        }
        Ok(groups)
    }
}

/// The event `message` carries, with its source position and that of the
/// event published before it.
fn decode(
    message: &jetstream::Message,
) -> Result<(Incoming, Position, Option<Position>), BridgeError> {
    let sequence = message.info().map_or(0, |i| i.stream_sequence);
    let bad = |reason: String| BridgeError::BadMessage { sequence, reason };
    let headers = message
        .headers
        .as_ref()
        .ok_or_else(|| bad("no headers".into()))?;
    let r = headers::decode(headers).map_err(|e| bad(e.0))?;
    if r.output.1 != 1 {
        return Err(bad("one of several outputs of an upcast event".into()));
    }
    let mut event = EventData::new(r.event_type, message.payload.clone())
        .with_metadata(Bytes::from(r.metadata))
        .with_schema_version(r.schema_version);
    if let Some(id) = r.id {
        event = event.with_id(id);
    }
    let e = Incoming {
        sequence,
        stream: r.stream,
        version: r.version,
        event,
        frame: r.position.frame_offset(),
        closes_frame: r.next_position.frame_offset() != r.position.frame_offset(),
    };
    Ok((e, r.position, r.previous))
}
