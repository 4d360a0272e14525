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
    /// A setting out of range.
    #[error("bad configuration: {0}")]
    Config(&'static str),
}

impl BridgeError {
    pub(crate) fn nats(e: impl std::fmt::Display) -> BridgeError {
        BridgeError::Nats(e.to_string())
    }
}
