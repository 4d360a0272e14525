//! The flags that choose which events a reading command shows, in one
//! place so that `dump`, `tail` and `stream` take them alike: `--stream`
//! and `--type` (what), `--from` (where to start), `--limit` (how many).

use std::path::Path;

use clap::Args;
use seglog::{Error, Filter, Position, ReadStream, Reader, RecordedEvent};

use crate::failure::Failure;
use crate::out::units::{self, From};

/// `--stream` and `--type`: which events are shown.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct Select {
    /// Only the events of this stream (its exact name).
    #[arg(long, value_name = "NAME")]
    pub(crate) stream: Option<String>,
    /// Only events of this type; give it again for more types.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) types: Vec<String>,
}

impl Select {
    /// Whether `e` is shown.
    pub(crate) fn keeps(&self, e: &RecordedEvent) -> bool {
        self.stream.as_deref().is_none_or(|s| s == e.stream()) && self.keeps_type(e)
    }

    /// Whether `e`'s type is shown.
    pub(crate) fn keeps_type(&self, e: &RecordedEvent) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == e.event_type())
    }

    /// The library's filter for a subscription: the types, so that frames
    /// of other types are passed over unread. (The stream is followed by
    /// a stream subscription, or checked by [`Select::keeps`].)
    pub(crate) fn type_filter(&self) -> Filter {
        Filter::all().event_types(self.types.iter().cloned())
    }
}

/// `--from`: where a read of the whole log starts.
#[derive(Args, Clone, Debug)]
pub(crate) struct FromArg {
    /// Start at this position (`OFFSET:INDEX`, as printed) or at the first
    /// event committed at or after this time (RFC 3339, e.g.
    /// 2026-12-06T10:00:00Z); default: the log's start.
    #[arg(long, value_name = "POSITION|TIME", value_parser = units::parse_from)]
    pub(crate) from: Option<From>,
}

impl FromArg {
    /// The position to read from, in a log that ends at `end`: a time is
    /// looked up in the log's time index (a binary search, not a scan).
    pub(crate) fn position(
        &self,
        reader: &Reader,
        dir: &Path,
        end: Position,
    ) -> Result<Position, Failure> {
        let at = match self.from {
            None => return Ok(reader.log_start()),
            Some(From::Position(p)) => p,
            Some(From::Time(t)) => reader
                .position_at(t)
                .map_err(|e| Failure::from_log(dir, e))?,
        };
        if at > end {
            return Err(Failure::failed(format!(
                "--from {at} lies past the end of the log in {} at {end}",
                dir.display()
            )));
        }
        Ok(at)
    }
}

/// `--limit`: how many events at most.
#[derive(Args, Clone, Debug)]
pub(crate) struct Limit {
    /// Show at most N events.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u64>,
}

impl Limit {
    /// Whether `shown` events reach the limit.
    pub(crate) fn reached(&self, shown: u64) -> bool {
        self.limit.is_some_and(|n| shown >= n)
    }
}

/// Stream `name` read forward from `from_version`; without one, from its
/// first version the log still holds (retention may have removed the
/// first ones: asked for explicitly, that is an error that says so).
pub(crate) fn read_stream(
    reader: &Reader,
    name: &str,
    from_version: Option<u64>,
    as_of: Option<seglog::AsOf>,
) -> seglog::Result<ReadStream> {
    let read = |v| match as_of {
        None => reader.read_stream(name, v),
        Some(a) => reader.read_stream_as_of_from(name, v, a),
    };
    match (read(from_version.unwrap_or(0)), from_version) {
        (Err(Error::StreamBeforeLogStart { first_version, .. }), None) => read(first_version),
        (result, _) => result,
    }
}

/// "no stream NAME in DIR", or `Ok` when the log holds the stream.
pub(crate) fn check_stream(reader: &Reader, dir: &Path, name: &str) -> Result<(), Failure> {
    match reader.stream_version(name) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Failure::failed(format!(
            "no stream {name} in {}",
            dir.display()
        ))),
        Err(e) => Err(Failure::from_log(dir, e)),
    }
}
