//! `seglog stream DIR NAME`: one stream's events, forward or backward,
//! from a version, or as the stream was at a version, a position or a
//! time: the history of one aggregate, which is what an operator asks
//! about most. It reads through the stream's index and back-links, so its
//! cost grows with the stream, not with the log.

use clap::Args;
use seglog::{AsOf, ReadStream, Reader};

use super::LogArgs;
use super::event::{PayloadArg, Printer};
use super::filter::{Limit, check_stream, read_stream};
use crate::failure::Failure;
use crate::out::{Out, units};

// The flags of `seglog stream` (its help is the variant's doc comment in
// main.rs).
#[derive(Args)]
pub(crate) struct StreamCommand {
    #[command(flatten)]
    log: LogArgs,
    /// The stream's name.
    name: String,
    /// Newest first.
    #[arg(long)]
    backward: bool,
    /// The version to start at: forward, the first shown (default: the
    /// stream's first); backward, the newest shown (default: its last).
    #[arg(long, value_name = "N")]
    from_version: Option<u64>,
    /// The stream as it was: after version N (a number), before position
    /// OFFSET:INDEX, or at a time (RFC 3339, e.g. 2026-12-06T10:00:00Z).
    #[arg(long, value_name = "VERSION|POSITION|TIME", value_parser = parse_as_of)]
    as_of: Option<AsOf>,
    #[command(flatten)]
    limit: Limit,
    /// How payloads are shown.
    #[arg(long, value_enum, default_value_t)]
    payload: PayloadArg,
}

/// `--as-of`: a time if it holds a `-`, a position if it holds a `:`, else
/// a version. (A bare number is a version: a position is written as the
/// tool prints it, `OFFSET:INDEX`.)
fn parse_as_of(text: &str) -> Result<AsOf, String> {
    if text.contains('-') {
        units::parse_time(text).map(AsOf::Time)
    } else if text.contains(':') {
        units::parse_position(text).map(AsOf::Position)
    } else {
        text.parse::<u64>().map(AsOf::Version).map_err(|_| {
            format!("{text:?} is not a version (a number), a position (OFFSET:INDEX) or a time")
        })
    }
}

impl StreamCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        let dir = &self.log.dir;
        let reader = self.log.open()?;
        check_stream(&reader, dir, &self.name)?;
        let read = self.read(&reader).map_err(|e| Failure::from_log(dir, e))?;
        let mut printer = Printer::new(out, self.payload);
        if let Some(read) = read {
            for e in read {
                if self.limit.reached(printer.shown()) {
                    break;
                }
                let e = e.map_err(|e| Failure::from_log(dir, e))?;
                printer.event(out, &e)?;
            }
        }
        printer.finish(out)
    }

    /// The read asked for; `None` when the stream had no event at the
    /// `--as-of` point.
    fn read(&self, reader: &Reader) -> seglog::Result<Option<ReadStream>> {
        let name = self.name.as_str();
        if !self.backward {
            return read_stream(reader, name, self.from_version, self.as_of).map(Some);
        }
        let newest = self.from_version.unwrap_or(u64::MAX);
        let newest = match self.as_of {
            None => newest,
            // Backward as of a point: from the stream's last version then.
            Some(as_of) => match reader.stream_version_as_of(name, as_of)? {
                Some(v) => newest.min(v),
                None => return Ok(None),
            },
        };
        reader.read_stream_backward(name, newest).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_tells_versions_positions_and_times_apart() {
        assert!(matches!(parse_as_of("7"), Ok(AsOf::Version(7))));
        assert!(
            matches!(parse_as_of("4096:1"), Ok(AsOf::Position(p)) if p.frame_offset() == 4096 && p.index_in_frame() == 1)
        );
        assert!(matches!(
            parse_as_of("2026-12-06T10:00:00Z"),
            Ok(AsOf::Time(_))
        ));
        assert!(parse_as_of("seven").is_err());
        assert!(parse_as_of("12:x").is_err());
    }
}
