//! What goes in (`EventData`, `ExpectedVersion`) and what comes out
//! (`AppendResult`, `RecordedEvent`, `EventRef`, `PayloadState`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use bytestring::ByteString;
use compact_str::CompactString;

use crate::position::Position;

/// An event's type name, as [`EventData::new`] takes it (from a `&str`, a
/// `String`, ...).
///
/// Names of up to 24 bytes are kept inline, so building an event for each
/// append allocates nothing for its type; a longer name is one allocation
/// (none for [`EventType::from_static`], none again when a `String` is
/// handed over).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventType(CompactString);

impl EventType {
    /// A type name known at compile time: no allocation whatever its
    /// length, for it and for each clone, so a long namespaced name can be
    /// a constant (`const PLACED: EventType = EventType::from_static("..")`).
    pub const fn from_static(name: &'static str) -> EventType {
        EventType(CompactString::const_new(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for EventType {
    fn from(name: &str) -> EventType {
        EventType(CompactString::new(name))
    }
}

impl From<&String> for EventType {
    fn from(name: &String) -> EventType {
        EventType(CompactString::new(name))
    }
}

impl From<String> for EventType {
    /// Keeps the `String`'s buffer for a long name.
    fn from(name: String) -> EventType {
        EventType(CompactString::from(name))
    }
}

impl From<Box<str>> for EventType {
    fn from(name: Box<str>) -> EventType {
        EventType(CompactString::from(name))
    }
}

impl From<Cow<'_, str>> for EventType {
    fn from(name: Cow<'_, str>) -> EventType {
        EventType(CompactString::from(name))
    }
}

impl AsRef<str> for EventType {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of an event's payload on its way out of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadState {
    /// Stored as given: the event was not encrypted.
    Plain,
    /// Stored encrypted and decrypted with its subject's key: the payload
    /// (and the metadata, if it was encrypted too) is what was appended.
    Decrypted,
    /// Stored encrypted under a key that was destroyed
    /// ([`Log::forget`](crate::Log::forget)): the payload (and the
    /// metadata, if it was encrypted too) reads as empty. Stream, version,
    /// position, type, id, time and plain metadata are still there.
    Erased,
}

/// How an event is to be sealed ([`EventData::encrypted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seal {
    /// The subject whose key seals it; `None`: the stream's name.
    pub(crate) subject: Option<Arc<str>>,
    /// The metadata is sealed too.
    pub(crate) metadata: bool,
}

/// An event to append: a type name, a payload, and optional metadata and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    pub(crate) event_type: EventType,
    pub(crate) payload: Bytes,
    pub(crate) metadata: Bytes,
    pub(crate) schema_version: u16,
    pub(crate) id: Option<u128>,
    /// Asked to be sealed ([`EventData::encrypted`]); `None` once sealed.
    pub(crate) seal: Option<Seal>,
    /// The envelope flags of a sealed event, as framed.
    pub(crate) envelopes: u8,
}

impl EventData {
    /// An event of `event_type` (1 to 256 bytes) carrying `payload`.
    pub fn new(event_type: impl Into<EventType>, payload: impl Into<Bytes>) -> Self {
        EventData {
            event_type: event_type.into(),
            payload: payload.into(),
            metadata: Bytes::new(),
            schema_version: 1,
            id: None,
            seal: None,
            envelopes: 0,
        }
    }

    /// Encrypts the payload under the key of the subject named by the
    /// stream appended to, before it is framed: [`Log::forget`](crate::Log::forget)
    /// of the stream's name erases it. The log needs
    /// [`Options::master_key`](crate::Options::master_key)
    /// ([`Error::NoMasterKey`](crate::Error::NoMasterKey) otherwise).
    /// Metadata stays plain unless [`EventData::encrypt_metadata`] asks.
    pub fn encrypted(mut self) -> Self {
        self.seal = Some(Seal {
            subject: None,
            metadata: self.seal.is_some_and(|s| s.metadata),
        });
        self
    }

    /// Encrypts the payload under the key of `subject`, a name the caller
    /// chooses (`customer:42`): every event of that subject, in any
    /// stream, is erased by one [`Log::forget`](crate::Log::forget). The
    /// subject is never written into a segment (a key id is); it is 1 to
    /// [`MAX_SUBJECT_BYTES`](crate::limits::MAX_SUBJECT_BYTES) bytes.
    pub fn encrypted_for(mut self, subject: &str) -> Self {
        self.seal = Some(Seal {
            subject: Some(subject.into()),
            metadata: self.seal.is_some_and(|s| s.metadata),
        });
        self
    }

    /// Encrypts the metadata too, under the same key as the payload (the
    /// stream's subject unless [`EventData::encrypted_for`] named one).
    pub fn encrypt_metadata(mut self) -> Self {
        let subject = self.seal.and_then(|s| s.subject);
        self.seal = Some(Seal {
            subject,
            metadata: true,
        });
        self
    }

    /// Attaches metadata (correlation ids, causation, headers: opaque bytes).
    pub fn with_metadata(mut self, metadata: impl Into<Bytes>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Sets the schema version of the payload (default 1), for upcasting on read.
    pub fn with_schema_version(mut self, schema_version: u16) -> Self {
        self.schema_version = schema_version;
        self
    }

    /// Sets a caller-chosen event id (for example a UUID as `u128`).
    pub fn with_id(mut self, id: u128) -> Self {
        self.id = Some(id);
        self
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        self.event_type.as_str()
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The metadata (empty when none was set).
    pub fn metadata(&self) -> &[u8] {
        &self.metadata
    }
}

/// The optimistic-concurrency condition of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must hold at least one event.
    StreamExists,
    /// The stream's last event must be this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `actual` satisfies this condition.
    pub fn matches(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(n) => actual == Some(n),
        }
    }
}

/// One append of [`Log::append_many`](crate::Log::append_many): `events`
/// to `stream` as one atomic frame, if the stream's version matches
/// `expected`.
#[derive(Debug, Clone, Copy)]
pub struct AppendRequest<'a> {
    /// The stream appended to.
    pub stream: &'a str,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: &'a [EventData],
}

/// What a successful append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppendResult {
    /// Version of the first event appended.
    pub first_version: u64,
    /// Version of the last event appended (the stream's new version).
    pub last_version: u64,
    /// Position of the first event appended.
    pub first_position: Position,
    /// Position of the last event appended.
    pub last_position: Position,
}

fn system_time(timestamp_us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(timestamp_us)
}

/// An event read back from the log. Payload and metadata share the segment's
/// mapping (no copy); clones are cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub(crate) stream: ByteString,
    pub(crate) version: u64,
    pub(crate) position: Position,
    pub(crate) next_position: Position,
    /// UTF-8, checked when the frame was decoded.
    pub(crate) event_type: Bytes,
    /// After upcasting: the version handed out.
    pub(crate) schema_version: u16,
    pub(crate) stored_schema_version: u16,
    /// `(index, count)` among the outputs of its stored event: `(0, 1)`
    /// unless an upcaster split it. `(0, 0)` inside the crate only: read
    /// from a frame, a step applies, the read's upcasting is still to run.
    pub(crate) output: (u16, u16),
    pub(crate) id: Option<u128>,
    pub(crate) timestamp_us: u64,
    pub(crate) metadata: Bytes,
    pub(crate) payload: Bytes,
    pub(crate) payload_state: PayloadState,
}

impl RecordedEvent {
    /// Read from a frame with an upcaster step to apply (never handed out
    /// so).
    #[inline(always)]
    pub(crate) fn needs_upcast(&self) -> bool {
        self.output.1 == 0
    }

    /// A borrowed view of this event, the type [`Log::replay`](crate::Log::replay)
    /// hands out: code that handles events can take `EventRef` and serve
    /// both read paths.
    pub fn as_event_ref(&self) -> EventRef<'_> {
        EventRef {
            stream: &self.stream,
            version: self.version,
            position: self.position,
            next_position: self.next_position,
            event_type: self.event_type(),
            schema_version: self.schema_version,
            stored_schema_version: self.stored_schema_version,
            output: self.output,
            id: self.id,
            timestamp_us: self.timestamp_us,
            metadata: &self.metadata,
            payload: &self.payload,
            payload_state: self.payload_state,
        }
    }

    /// The stream the event belongs to.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Its version in the stream (the stream's first event is 0).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Its position in the global log.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The position just after it: read from here to resume after this event.
    pub fn next_position(&self) -> Position {
        self.next_position
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        // Validated as UTF-8 when decoded; the fallback is never taken.
        std::str::from_utf8(&self.event_type).unwrap_or_default()
    }

    /// The schema version handed out: the one given at append (default 1),
    /// or, when [upcasters](crate::Upcasters) turned the stored event into
    /// this one, the version they brought it to.
    pub fn schema_version(&self) -> u16 {
        self.schema_version
    }

    /// The schema version the event was stored with, whatever upcasting
    /// made of it.
    pub fn stored_schema_version(&self) -> u16 {
        self.stored_schema_version
    }

    /// Which of its stored event's outputs this is, and how many there
    /// are: `(0, 1)` unless an upcaster split the stored event. All outputs
    /// share the stored event's position, version and id; only the last
    /// one's [`next_position`](Self::next_position) is past the stored
    /// event, the others' is the stored event's own position, so a read
    /// resumed from any of them repeats the outputs rather than skip one.
    pub fn output(&self) -> (u16, u16) {
        self.output
    }

    /// Whether this is the last output of its stored event (always, unless
    /// an upcaster split it): a consumer acknowledges a stored event once
    /// this holds ([`Consumer::ack_event`](crate::Consumer::ack_event)).
    pub fn is_last_output(&self) -> bool {
        self.output.0.saturating_add(1) >= self.output.1
    }

    /// The event id given at append, if any.
    pub fn id(&self) -> Option<u128> {
        self.id
    }

    /// Wall-clock time of the append (all events of one append share it).
    pub fn timestamp(&self) -> SystemTime {
        system_time(self.timestamp_us)
    }

    /// [`RecordedEvent::timestamp`] as microseconds since the Unix epoch.
    pub fn timestamp_micros(&self) -> u64 {
        self.timestamp_us
    }

    /// The metadata (empty when none was set).
    pub fn metadata(&self) -> &Bytes {
        &self.metadata
    }

    /// The payload: as appended (decrypted, for an encrypted event), or
    /// empty for an erased one ([`RecordedEvent::is_erased`]).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Whether the payload was stored plain, decrypted, or erased by
    /// [`Log::forget`](crate::Log::forget).
    pub fn payload_state(&self) -> PayloadState {
        self.payload_state
    }

    /// Whether its subject's key was destroyed: the payload (and the
    /// metadata, if it was encrypted) reads as empty; everything else of
    /// the event is as stored.
    pub fn is_erased(&self) -> bool {
        self.payload_state == PayloadState::Erased
    }
}

/// A borrowed view of an event straight from the segment mapping, handed to
/// [`Log::replay`](crate::Log::replay) callbacks: nothing is copied or counted.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub(crate) stream: &'a str,
    pub(crate) version: u64,
    pub(crate) position: Position,
    pub(crate) next_position: Position,
    pub(crate) event_type: &'a str,
    pub(crate) schema_version: u16,
    pub(crate) stored_schema_version: u16,
    pub(crate) output: (u16, u16),
    pub(crate) id: Option<u128>,
    pub(crate) timestamp_us: u64,
    pub(crate) metadata: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) payload_state: PayloadState,
}

impl<'a> EventRef<'a> {
    /// The stream the event belongs to.
    pub fn stream(&self) -> &'a str {
        self.stream
    }

    /// Its version in the stream.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Its position in the global log.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The position just after it.
    pub fn next_position(&self) -> Position {
        self.next_position
    }

    /// The event type.
    pub fn event_type(&self) -> &'a str {
        self.event_type
    }

    /// The schema version handed out (after upcasting); see
    /// [`RecordedEvent::schema_version`].
    pub fn schema_version(&self) -> u16 {
        self.schema_version
    }

    /// The schema version the event was stored with.
    pub fn stored_schema_version(&self) -> u16 {
        self.stored_schema_version
    }

    /// Which output of its stored event this is, of how many; see
    /// [`RecordedEvent::output`].
    pub fn output(&self) -> (u16, u16) {
        self.output
    }

    /// Whether this is the last output of its stored event.
    pub fn is_last_output(&self) -> bool {
        self.output.0.saturating_add(1) >= self.output.1
    }

    /// The event id, if any.
    pub fn id(&self) -> Option<u128> {
        self.id
    }

    /// Wall-clock time of the append.
    pub fn timestamp(&self) -> SystemTime {
        system_time(self.timestamp_us)
    }

    /// [`EventRef::timestamp`] as microseconds since the Unix epoch.
    pub fn timestamp_micros(&self) -> u64 {
        self.timestamp_us
    }

    /// The metadata.
    pub fn metadata(&self) -> &'a [u8] {
        self.metadata
    }

    /// The payload: as appended (decrypted, for an encrypted event: the
    /// replay decrypts into a buffer of its own, reused from one event to
    /// the next, so this view lasts as long as the callback), or empty for
    /// an erased one.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Whether the payload was stored plain, decrypted, or erased; see
    /// [`RecordedEvent::payload_state`].
    pub fn payload_state(&self) -> PayloadState {
        self.payload_state
    }

    /// Whether its subject's key was destroyed; see [`RecordedEvent::is_erased`].
    pub fn is_erased(&self) -> bool {
        self.payload_state == PayloadState::Erased
    }
}
