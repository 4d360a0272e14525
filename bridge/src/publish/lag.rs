//! How far the stream is behind the log, counted incrementally.

use seglog::Position;

use super::Source;
use crate::error::BridgeError;

/// Events of the log JetStream has not acknowledged: those counted since
/// the last time the server said where the stream stands, less those
/// acknowledged since. Each count covers only what was appended since the
/// previous one: an outage of hours costs one pass over what it left
/// unpublished, not one per report.
#[derive(Debug, Default)]
pub(super) struct Lag {
    /// Counted up to here; `None` until the server said where the stream
    /// stands.
    counted_to: Option<Position>,
    counted: u64,
    /// The publisher's acknowledged count when the server said so.
    published_then: u64,
}

impl Lag {
    /// The server says the stream stands at `from` (at start, and after a
    /// failure, when acknowledgements may have been lost): count again
    /// from there.
    pub(super) fn restart(&mut self, from: Position, published: u64) {
        *self = Lag {
            counted_to: Some(from),
            counted: 0,
            published_then: published,
        };
    }

    /// The events not acknowledged yet, given the publisher's acknowledged
    /// count, after counting what was appended since the last call.
    pub(super) fn count(
        &mut self,
        source: &impl Source,
        published: u64,
    ) -> Result<Option<u64>, BridgeError> {
        let Some(from) = self.counted_to else {
            return Ok(None);
        };
        let mut appended = 0u64;
        let end = source.replay(from, &mut |_| appended += 1)?;
        self.counted_to = Some(end);
        self.counted += appended;
        let acknowledged = published.saturating_sub(self.published_then);
        Ok(Some(self.counted.saturating_sub(acknowledged)))
    }
}
