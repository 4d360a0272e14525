//! Stream deletion (docs/ARCHITECTURE.md, "Stream deletion"): a soft
//! delete hides a stream's versions below a given one from its reads at
//! once; a hard delete (a tombstone) makes the stream gone for reads and
//! appends, for good. Both are events of the `$streams` system stream, so
//! they are atomic, durable, chained and crash-safe like any append, and a
//! `Reader` in another process learns them by following the log. The
//! state they build (`streams/deleted.rs`) is rebuilt at open from that
//! stream, and from the `start` file for what retention removed of it.
//!
//! Neither removes a byte: `read_all` still hands the events out, as the
//! record of what was written. Retention removes whole segments, and
//! crypto-shredding makes payloads unreadable in place.

use crate::error::{Error, Result};
use crate::event::{EventData, ExpectedVersion};
use crate::log::Log;
use crate::position::Position;
use crate::read::deletions;
use crate::system::{self, STREAMS_STREAM, TOMBSTONE_EVENT, TRUNCATE_EVENT};

impl Log {
    /// Soft-deletes `stream`'s versions below `before`: its reads and
    /// subscriptions start at `before` from now on (a read from an earlier
    /// version starts there), here and in every `Reader`, across reopen.
    /// Appends go on from the stream's last version. A later truncation
    /// only moves the cut forward. Returns the position of its
    /// [`STREAMS_STREAM`](crate::STREAMS_STREAM) event.
    ///
    /// Errors: [`Error::UnknownStream`], [`Error::StreamDeleted`],
    /// [`Error::TruncateAhead`] for `before` past the stream's next
    /// version.
    pub fn truncate_stream(&self, stream: &str, before: u64) -> Result<Position> {
        let (id, head) = self.existing(stream)?;
        if before > head.last_version + 1 {
            return Err(Error::TruncateAhead {
                stream: stream.to_string(),
                before,
                last_version: head.last_version,
            });
        }
        let position = self.record_deletion(TRUNCATE_EVENT, before, stream)?;
        self.view
            .deleted
            .update(id, |d| d.before = d.before.max(before));
        Ok(position)
    }

    /// Hard-deletes `stream`: its reads and subscriptions fail with
    /// [`Error::StreamDeleted`] from now on, and so does every append to
    /// it, whatever its expected version: the name cannot be used again.
    /// Its events stay in `read_all` until retention removes them. Returns
    /// the position of its [`STREAMS_STREAM`] event.
    ///
    /// Appends are refused from the moment the call begins, so none lands
    /// after the tombstone. Errors: [`Error::UnknownStream`],
    /// [`Error::StreamDeleted`] when it is deleted already.
    pub fn delete_stream(&self, stream: &str) -> Result<Position> {
        let (id, _) = self.existing(stream)?;
        self.view.deleted.update(id, |d| d.closing = true);
        match self.record_deletion(TOMBSTONE_EVENT, 0, stream) {
            Ok(position) => {
                self.view.deleted.update(id, |d| d.tombstone = true);
                Ok(position)
            }
            Err(e) => {
                self.view.deleted.update(id, |d| d.closing = false);
                Err(e)
            }
        }
    }

    /// The stream's id and head, if it exists and is not deleted.
    fn existing(&self, stream: &str) -> Result<(u32, crate::streams::Head)> {
        let unknown = || Error::UnknownStream {
            stream: stream.to_string(),
        };
        if system::is_reserved(stream) {
            return Err(Error::ReservedStreamName {
                stream: stream.to_string(),
            });
        }
        let (id, head) = self.view.stream_head(stream).ok_or_else(unknown)?;
        if self
            .view
            .deleted
            .get(id)
            .is_some_and(|d| d.refuses_appends())
        {
            return Err(Error::StreamDeleted {
                stream: stream.to_string(),
            });
        }
        Ok((id, head))
    }

    /// Appends a deletion event and makes it durable.
    fn record_deletion(&self, kind: &str, before: u64, stream: &str) -> Result<Position> {
        let event = EventData::new(kind, system::encode_deletion(before, stream));
        let result = self.append_system(STREAMS_STREAM, ExpectedVersion::Any, &[event])?;
        self.sync()?;
        let mut applied = deletions::lock(&self.view);
        *applied = (*applied).max(result.last_version + 1);
        Ok(result.first_position)
    }
}
