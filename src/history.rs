//! Time travel on the handles: reads from a point in time, and a stream
//! as of a version, a position or a time (see `read/time.rs` for how
//! each is found), and a stream's state rebuilt as of a point from a
//! snapshot. [`Log`] and [`Reader`] offer the same methods.

use std::sync::Arc;
use std::time::SystemTime;

use crate::error::Result;
use crate::event::{EventRef, RecordedEvent};
use crate::log::Log;
use crate::position::Position;
use crate::read::{self, AsOf, ReadAll, ReadStream};
use crate::reader::Reader;
use crate::snapshot::{Rebuilt, Snapshot};
use crate::subscribe::Subscription;
use crate::view::LogView;

/// The position of the first event committed at or after `time`.
fn position_at(view: &LogView, time: SystemTime) -> Result<Position> {
    read::position_at(view, read::micros(time))
}

impl Log {
    /// The position of the first event committed at or after `time`:
    /// [`Position::START`] when that is the first event of the log (a time
    /// before it, or an empty log), the log's end when every event is older
    /// (reading from there yields nothing yet; subscribing, what comes
    /// next). Commit times never decrease along the log, so events before
    /// the answer are exactly those committed before `time`.
    ///
    /// O(log segments + log entries): a binary search over the segments'
    /// first times and over one segment's sparse time index, then at most
    /// 16 KiB of frame headers.
    pub fn position_at(&self, time: SystemTime) -> Result<Position> {
        position_at(&self.view, time)
    }

    /// [`Log::read_all`] from the first event committed at or after `time`.
    pub fn read_all_since(&self, time: SystemTime) -> Result<ReadAll> {
        self.read_all(self.position_at(time)?)
    }

    /// [`Log::replay`] from the first event committed at or after `time`.
    pub fn replay_since<F>(&self, time: SystemTime, f: F) -> Result<Position>
    where
        F: FnMut(EventRef<'_>),
    {
        self.replay(self.position_at(time)?, f)
    }

    /// [`Log::subscribe_all`] from the first event committed at or after
    /// `time`: history from then on, then each new event.
    pub fn subscribe_all_since(&self, time: SystemTime) -> Result<Subscription> {
        self.subscribe_all(self.position_at(time)?)
    }

    /// The events of `stream` as of `as_of`, oldest first: what
    /// [`Log::read_stream`] from version 0 returned at that point. Empty
    /// when the stream had no event then, or does not exist. Finding the
    /// end costs one index lookup and at most one index interval of frame
    /// headers; the read is then the same as `read_stream`'s.
    pub fn read_stream_as_of(&self, stream: &str, as_of: AsOf) -> Result<ReadStream> {
        read::read_stream_as_of(&self.view, stream, 0, as_of)
    }

    /// [`Log::read_stream_as_of`] from `from_version` (after a snapshot,
    /// say) rather than from the stream's start.
    pub fn read_stream_as_of_from(
        &self,
        stream: &str,
        from_version: u64,
        as_of: AsOf,
    ) -> Result<ReadStream> {
        read::read_stream_as_of(&self.view, stream, from_version, as_of)
    }

    /// The last version of `stream` as of `as_of`: `None` when it had no
    /// event then, or does not exist. With [`AsOf::Version`] past the
    /// stream's end, its version now.
    pub fn stream_version_as_of(&self, stream: &str, as_of: AsOf) -> Result<Option<u64>> {
        read::stream_version_as_of(&self.view, stream, as_of)
    }

    /// `stream`'s state as of `as_of`: [`Log::rebuild_at`] the stream's
    /// version then, so from the newest usable snapshot at or before it
    /// plus the events up to it. A stream with no event then gives
    /// `init()` at version `None`.
    pub fn rebuild_as_of<S, E: std::fmt::Display>(
        &self,
        stream: &str,
        as_of: AsOf,
        schema_version: u16,
        decode: impl FnMut(&Snapshot) -> std::result::Result<S, E>,
        init: impl FnOnce() -> S,
        apply: impl FnMut(&mut S, &RecordedEvent),
    ) -> Result<Rebuilt<S>> {
        match self.stream_version_as_of(stream, as_of)? {
            Some(v) => self.rebuild_at(stream, v, schema_version, decode, init, apply),
            None => Ok(nothing(init)),
        }
    }
}

/// The state of a stream that had no event: the caller's initial one.
fn nothing<S>(init: impl FnOnce() -> S) -> Rebuilt<S> {
    Rebuilt {
        state: init(),
        version: None,
        from_snapshot: None,
    }
}

impl Reader {
    /// Like [`Log::position_at`], over everything published when called.
    pub fn position_at(&self, time: SystemTime) -> Result<Position> {
        position_at(self.applied()?, time)
    }

    /// Like [`Log::read_all_since`].
    pub fn read_all_since(&self, time: SystemTime) -> Result<ReadAll> {
        let view = self.applied()?;
        ReadAll::new(Arc::clone(view), position_at(view, time)?)
    }

    /// Like [`Log::replay_since`].
    pub fn replay_since<F>(&self, time: SystemTime, f: F) -> Result<Position>
    where
        F: FnMut(EventRef<'_>),
    {
        let view = self.applied()?;
        read::replay(view, position_at(view, time)?, f)
    }

    /// Like [`Log::subscribe_all_since`].
    pub fn subscribe_all_since(&self, time: SystemTime) -> Result<Subscription> {
        let view = self.applied()?;
        Subscription::all(Arc::clone(view), position_at(view, time)?)
    }

    /// Like [`Log::read_stream_as_of`].
    pub fn read_stream_as_of(&self, stream: &str, as_of: AsOf) -> Result<ReadStream> {
        read::read_stream_as_of(self.applied()?, stream, 0, as_of)
    }

    /// Like [`Log::read_stream_as_of_from`].
    pub fn read_stream_as_of_from(
        &self,
        stream: &str,
        from_version: u64,
        as_of: AsOf,
    ) -> Result<ReadStream> {
        read::read_stream_as_of(self.applied()?, stream, from_version, as_of)
    }

    /// Like [`Log::stream_version_as_of`].
    pub fn stream_version_as_of(&self, stream: &str, as_of: AsOf) -> Result<Option<u64>> {
        read::stream_version_as_of(self.applied()?, stream, as_of)
    }

    /// Like [`Log::rebuild_as_of`].
    pub fn rebuild_as_of<S, E: std::fmt::Display>(
        &self,
        stream: &str,
        as_of: AsOf,
        schema_version: u16,
        decode: impl FnMut(&Snapshot) -> std::result::Result<S, E>,
        init: impl FnOnce() -> S,
        apply: impl FnMut(&mut S, &RecordedEvent),
    ) -> Result<Rebuilt<S>> {
        match self.stream_version_as_of(stream, as_of)? {
            Some(v) => self.rebuild_at(stream, v, schema_version, decode, init, apply),
            None => Ok(nothing(init)),
        }
    }
}
