//! `Position`: an event's address in the global log.

use std::fmt;

/// An ordered, copyable address of an event in the global log (`$all`).
///
/// It names the frame (the append batch) holding the event by its byte offset
/// in the log, and the event's index inside that frame, so it maps to a
/// segment and an offset with no index lookup. Positions only grow in commit
/// order. Persist one with [`Position::as_u64`] and restore it with
/// [`Position::from_u64`]. To resume a read or a subscription after an
/// event, start from its
/// [`RecordedEvent::next_position`](crate::RecordedEvent::next_position);
/// a [`Consumer`](crate::Consumer) is acknowledged with the event's own
/// [`RecordedEvent::position`](crate::RecordedEvent::position).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position(u64);

const INDEX_BITS: u32 = 16;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// Frames are 8-byte aligned, so the low 3 bits of their offset are free.
const ALIGN_SHIFT: u32 = 3;
/// The largest frame offset a position can name: 2^51 bytes (2 PiB).
pub(crate) const MAX_LOG_OFFSET: u64 = 1 << (64 - INDEX_BITS + ALIGN_SHIFT);

impl Position {
    /// The start of the log: reading from here yields every event.
    pub const START: Position = Position(0);

    pub(crate) fn new(frame_offset: u64, index: u16) -> Position {
        debug_assert_eq!(frame_offset % 8, 0, "frames are 8-byte aligned");
        debug_assert!(frame_offset < MAX_LOG_OFFSET);
        Position(((frame_offset >> ALIGN_SHIFT) << INDEX_BITS) | u64::from(index))
    }

    /// Byte offset in the global log of the frame that holds the event.
    pub fn frame_offset(self) -> u64 {
        (self.0 >> INDEX_BITS) << ALIGN_SHIFT
    }

    /// Index of the event inside its frame (0 for the first event of an append).
    pub fn index_in_frame(self) -> u16 {
        // The mask keeps 16 bits, so the conversion cannot fail.
        u16::try_from(self.0 & INDEX_MASK).unwrap_or(u16::MAX)
    }

    /// The position as one integer, for storing a checkpoint.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// A position back from [`Position::as_u64`].
    pub fn from_u64(raw: u64) -> Position {
        Position(raw)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Position({}:{})",
            self.frame_offset(),
            self.index_in_frame()
        )
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.frame_offset(), self.index_in_frame())
    }
}

/// Reads a position as [`Display`](fmt::Display) writes it,
/// `FRAME_OFFSET:INDEX` (`4096:2`), or `FRAME_OFFSET` alone for the first
/// event of a frame: what an operator copies from the tool's output.
/// Whether the log holds an event there is for the read to say.
impl std::str::FromStr for Position {
    type Err = crate::Error;

    fn from_str(text: &str) -> Result<Position, crate::Error> {
        let invalid = |reason| crate::Error::ParsePosition {
            text: text.to_string(),
            reason,
        };
        let (offset, index) = text.split_once(':').unwrap_or((text, "0"));
        let offset: u64 = offset
            .parse()
            .map_err(|_| invalid("the frame offset is not a number"))?;
        let index: u16 = index
            .parse()
            .map_err(|_| invalid("the index is not a number from 0 to 65535"))?;
        if !offset.is_multiple_of(1 << ALIGN_SHIFT) {
            return Err(invalid("frames start at multiples of 8"));
        }
        if offset >= MAX_LOG_OFFSET {
            return Err(invalid("the frame offset is past the largest log"));
        }
        Ok(Position::new(offset, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Display` writes reads back; each malformed text is refused
    /// with its reason.
    #[test]
    fn positions_read_back_from_their_text() {
        let p = Position::new(4096, 2);
        assert_eq!(p.to_string().parse::<Position>().ok(), Some(p));
        assert_eq!(
            "4096".parse::<Position>().ok(),
            Some(Position::new(4096, 0))
        );
        for (text, reason) in [
            ("", "the frame offset is not a number"),
            ("x:1", "the frame offset is not a number"),
            ("8:70000", "the index is not a number from 0 to 65535"),
            ("12:0", "frames start at multiples of 8"),
            (
                "18446744073709551608",
                "the frame offset is past the largest log",
            ),
        ] {
            match text.parse::<Position>() {
                Err(crate::Error::ParsePosition { reason: r, .. }) => {
                    assert_eq!(r, reason, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn order_follows_frame_then_index() {
        let a = Position::new(4096, 7);
        let b = Position::new(4104, 0);
        assert!(a < b);
        assert!(Position::new(4096, 0) < a);
        assert_eq!(a.frame_offset(), 4096);
        assert_eq!(a.index_in_frame(), 7);
        assert_eq!(Position::from_u64(a.as_u64()), a);
        assert_eq!(Position::START.frame_offset(), 0);
    }

    #[test]
    fn largest_offset_round_trips() {
        let p = Position::new(MAX_LOG_OFFSET - 8, u16::MAX);
        assert_eq!(p.frame_offset(), MAX_LOG_OFFSET - 8);
        assert_eq!(p.index_in_frame(), u16::MAX);
    }
}
