//! The bridge's one error type.

/// What went wrong in the bridge.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The seglog log failed.
    #[error(transparent)]
    Log(#[from] seglog::Error),
    /// The NATS client or server failed (unreachable, a refused publish, a
    /// timeout): the operation can be retried.
    #[error("nats: {0}")]
    Nats(String),
    /// The JetStream stream holds another log's events.
    #[error("JetStream stream {stream} holds log {found:032x}'s events, not {expected:032x}'s")]
    OtherLog {
        /// The JetStream stream.
        stream: String,
        /// The log being published.
        expected: u128,
        /// The log its last message came from.
        found: u128,
    },
    /// A message of the stream does not describe a seglog event.
    #[error("JetStream message {sequence} is not a seglog event: {reason}")]
    BadMessage {
        /// Its sequence in the stream.
        sequence: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The server found a message already stored: the stream was written
    /// beside this publisher.
    #[error("JetStream already held the message published as sequence {sequence}")]
    Duplicate {
        /// The sequence it was stored at.
        sequence: u64,
    },
    /// The stream lost messages: the one at `sequence` does not follow
    /// the last one mirrored. A mirror cannot go on (JetStream limits or a
    /// purge dropped events it had not mirrored yet).
    #[error(
        "JetStream message {sequence} follows the source event at {found:?}, but the last one mirrored is at {expected:?}: the stream lost messages"
    )]
    Gap {
        /// The message's sequence.
        sequence: u64,
        /// The source position of the last event mirrored.
        expected: seglog::Position,
        /// The source position the message says it follows (`None`: the
        /// first message of a stream).
        found: Option<seglog::Position>,
    },
    /// The stream has no message `sequence` (deleted or purged) where the
    /// mirror needs one: the stream lost messages.
    #[error("JetStream stream has no message {sequence}: it lost messages")]
    Missing {
        /// The sequence looked for.
        sequence: u64,
    },
    /// A message's event is not its stream's next version in the local
    /// log: the stream lost messages before the mirror's first, or the
    /// local stream has another writer.
    #[error(
        "JetStream message {sequence} is version {version} of stream {stream:?}, which the local log has at {local:?}"
    )]
    Diverged {
        /// The message's sequence.
        sequence: u64,
        /// The stream.
        stream: String,
        /// The event's version.
        version: u64,
        /// The local stream's version (`None`: never written).
        local: Option<u64>,
    },
    /// A setting out of range.
    #[error("bad configuration: {0}")]
    Config(&'static str),
}

impl BridgeError {
    pub(crate) fn nats(e: impl std::fmt::Display) -> BridgeError {
        BridgeError::Nats(e.to_string())
    }
}
