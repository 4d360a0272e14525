//! Messages into the local log: grouped back into the source's appends,
//! the groups appended together, each event once.

use async_nats::jetstream;
use bytes::Bytes;
use seglog::limits::MAX_EVENTS_PER_APPEND;
use seglog::{AppendRequest, EventData, ExpectedVersion};

use super::Mirror;
use crate::error::BridgeError;
use crate::headers;

/// One event of a message, ready to append.
#[derive(Debug)]
struct Incoming {
    stream: String,
    version: u64,
    event: EventData,
    /// The source frame (one append) it came from.
    frame: u64,
    /// Whether it is the last event of that frame.
    closes_frame: bool,
}

/// Events of a source append whose last event has not arrived yet.
#[derive(Debug, Default)]
pub(super) struct Held(Vec<Incoming>);

impl Held {
    /// Forgets them: they are fetched again from where the log stands.
    pub(super) fn clear(&mut self) {
        self.0.clear();
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
            self.held.0.push(decode(message)?);
        }
        let complete = self
            .held
            .0
            .iter()
            .rposition(|e| e.closes_frame)
            .map_or(0, |i| i + 1);
        if complete == 0 && self.held.0.len() > MAX_EVENTS_PER_APPEND {
            return Err(BridgeError::BadMessage {
                sequence: chunk
                    .last()
                    .and_then(|m| m.info().ok())
                    .map_or(0, |i| i.stream_sequence),
                reason: format!("an append of more than {MAX_EVENTS_PER_APPEND} events"),
            });
        }
        let ready: Vec<Incoming> = self.held.0.drain(..complete).collect();
        let groups = self.groups(ready);
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
        Ok((appended, pending + self.held.0.len() as u64))
    }

    /// Consecutive events of one frame as one group, without the events
    /// the local log holds already.
    fn groups(&self, ready: Vec<Incoming>) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        let mut frame = None;
        for e in ready {
            let local = self.log.stream_version(&e.stream);
            if local.is_some_and(|v| v >= e.version) {
                continue;
            }
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
        groups
    }
}

/// The event `message` carries.
fn decode(message: &jetstream::Message) -> Result<Incoming, BridgeError> {
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
    Ok(Incoming {
        stream: r.stream,
        version: r.version,
        event,
        frame: r.position.frame_offset(),
        closes_frame: r.next_position.frame_offset() != r.position.frame_offset(),
    })
}
