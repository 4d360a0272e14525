//! How far the stream is behind the log, counted incrementally.

use seglog::Position;

use super::Source;
use crate::error::BridgeError;

/// Events of the log after the last acknowledged one. Each count covers
/// only what was appended since the previous one: an outage of hours
/// costs one pass over what it left unpublished, not one per report.
#[derive(Debug, Default)]
pub(super) struct Lag {
    /// Counted up to here; `None` until a successful attempt said where
    /// the stream stands.
    counted_to: Option<Position>,
    unpublished: u64,
}

impl Lag {
    /// A successful attempt acknowledged everything before `next`. It read
    /// the log to its end, which is at or past any earlier count: nothing
    /// counted before is left unpublished.
    pub(super) fn caught_up(&mut self, next: Position) {
        self.counted_to = Some(next);
        self.unpublished = 0;
    }

    /// The events not acknowledged yet, after counting what was appended
    /// since the last call.
    pub(super) fn count(&mut self, source: &impl Source) -> Result<Option<u64>, BridgeError> {
        let Some(from) = self.counted_to else {
            return Ok(None);
        };
        let mut appended = 0u64;
        let end = source.replay(from, &mut |_| appended += 1)?;
        self.counted_to = Some(end);
        self.unpublished += appended;
        Ok(Some(self.unpublished))
    }
}
