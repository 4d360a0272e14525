//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

use crate::event::ExpectedVersion;
use crate::position::Position;

/// Result alias used throughout seglog.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with the context a caller needs to act on it.
///
/// Bad input (the `Empty*`, `*TooLong`, `*TooLarge`, `TooMany*` variants) never
/// changes the log: it is rejected before anything is written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream's current version did not match what the caller expected;
    /// nothing was written. `actual` is `None` for a stream never written.
    #[error(
        "wrong expected version for stream {stream:?}: expected {expected:?}, actual {actual:?}"
    )]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: String,
        /// What the caller asked for.
        expected: ExpectedVersion,
        /// The stream's last version at the time of the check.
        actual: Option<u64>,
    },

    /// Bytes on disk failed their checksum or structure checks inside data the
    /// log had acknowledged. Never served, never silently skipped; see
    /// [`Options::repair`](crate::Options::repair).
    #[error("corrupt data in {segment:?} at offset {offset}: {reason}")]
    Corrupt {
        /// The file holding the damaged bytes.
        segment: PathBuf,
        /// Byte offset inside that file.
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// A file in the directory is not a seglog file of a format this build reads.
    #[error("unsupported file {path:?}: {reason}")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// Why it was refused (bad magic, future version, other log, ...).
        reason: String,
    },

    /// An upcaster step could not turn the stored event at `position` into
    /// its next version. Stored bytes are untouched; a read goes on after
    /// it (an iterator with its next item, `replay` from `next`).
    #[error(
        "upcasting the {event_type:?} event (schema version {schema_version}) at {position} failed: {reason}"
    )]
    Upcast {
        /// The stored event's position.
        position: Position,
        /// Where a read resumes after it.
        next: Position,
        /// The type of the event the failing step was given.
        event_type: String,
        /// The schema version it was given at.
        schema_version: u16,
        /// What the step said (boxed: every `Result` of the crate carries
        /// the size of its largest error).
        reason: Box<str>,
    },

    /// A set of upcasters was refused when built, before any read: a gap in
    /// a chain, a step registered twice, or a chain longer than
    /// [`MAX_UPCAST_STEPS`](crate::limits::MAX_UPCAST_STEPS).
    #[error(
        "upcaster step for {event_type:?} from schema version {schema_version} refused: {reason}"
    )]
    UpcasterChain {
        /// The type of the step at fault.
        event_type: String,
        /// The version it is registered for.
        schema_version: u16,
        /// Why.
        reason: String,
    },

    /// Another `Log` (in this process or another) holds the directory.
    #[error("log directory {dir:?} is locked by another writer")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },

    /// A sync to disk failed earlier; the log refuses further writes because
    /// the kernel may have dropped the unsynced pages. Reopen to recover.
    #[error("log is poisoned after a failed sync ({reason}); reopen it to recover")]
    Poisoned {
        /// The error the failed sync reported.
        reason: String,
    },

    /// An I/O operation failed; `path` is the file or directory involved.
    #[error("I/O error on {path:?}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The stream name was empty.
    #[error("stream name is empty")]
    EmptyStreamName,

    /// The stream name is longer than [`MAX_STREAM_NAME_BYTES`](crate::limits::MAX_STREAM_NAME_BYTES).
    #[error("stream name is {len} bytes, more than the limit of {max}")]
    StreamNameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// An event type was empty.
    #[error("event {index} of the batch has an empty event type")]
    EmptyEventType {
        /// Index of the event inside the batch.
        index: usize,
    },

    /// An event type is longer than [`MAX_EVENT_TYPE_BYTES`](crate::limits::MAX_EVENT_TYPE_BYTES).
    #[error("event {index} has an event type of {len} bytes, more than the limit of {max}")]
    EventTypeTooLong {
        /// Index of the event inside the batch.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// `append` was called with no events.
    #[error("append called with an empty batch")]
    EmptyBatch,

    /// The batch has more events than [`MAX_EVENTS_PER_APPEND`](crate::limits::MAX_EVENTS_PER_APPEND).
    #[error("batch of {count} events is over the limit of {max}")]
    TooManyEvents {
        /// Events in the batch.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// An `append_many` call has more appends than [`MAX_APPENDS_PER_CALL`](crate::limits::MAX_APPENDS_PER_CALL).
    #[error("{count} appends in one call, over the limit of {max}")]
    TooManyAppends {
        /// Appends in the call.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// One event alone can never fit in a segment of this log.
    #[error("event {index} needs {size_bytes} bytes, more than a segment holds ({max_bytes})")]
    EventTooLarge {
        /// Index of the event inside the batch.
        index: usize,
        /// Its encoded size.
        size_bytes: u64,
        /// The most one frame may take in a segment.
        max_bytes: u64,
    },

    /// The batch as a whole does not fit in one segment (an append is one frame).
    #[error("batch needs {size_bytes} bytes, more than a segment holds ({max_bytes}); split it")]
    BatchTooLarge {
        /// The encoded size of the batch.
        size_bytes: u64,
        /// The most one frame may take in a segment.
        max_bytes: u64,
    },

    /// The log already holds [`MAX_STREAMS`](crate::limits::MAX_STREAMS) streams.
    #[error("the log holds the maximum number of streams ({max})")]
    TooManyStreams {
        /// The limit.
        max: u64,
    },

    /// The log reached the largest position it can address.
    #[error("the log is full: positions are exhausted")]
    LogFull,

    /// A position handed to a read does not point at an event of this log.
    #[error("{position:?} is not a position of this log")]
    InvalidPosition {
        /// The position given.
        position: Position,
    },

    /// A text read as a [`Position`] (`FRAME_OFFSET:INDEX`) is not one.
    #[error("{text:?} is not a position (FRAME_OFFSET:INDEX, as printed): {reason}")]
    ParsePosition {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The log handle a subscription follows was closed (or stopped
    /// publishing after a failed sync, which reports
    /// [`Error::Poisoned`] instead): every event it published has been
    /// handed out. Subscribe again on a newly opened handle to go on.
    #[error("the log was closed; no more events will be published through it")]
    Closed,

    /// A consumer name is empty, too long or not allowed.
    #[error("invalid consumer name {name:?}: {reason}")]
    InvalidConsumerName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A [`Consumer`](crate::Consumer) of this name is already open on this
    /// log; two would overwrite each other's checkpoints.
    #[error("consumer {name:?} is already open")]
    ConsumerInUse {
        /// The consumer's name.
        name: String,
    },

    /// An entry of the log directory with the name of one of seglog's files
    /// is not a regular file (a symbolic link, a FIFO, a directory, ...).
    /// seglog never follows, opens or writes through it: move it out of the
    /// directory. (An index file is derived data: one that is not a regular
    /// file is ignored with a warning instead, and rebuilt.)
    #[error(
        "{path:?} is a {found}, not a regular file: seglog neither follows nor opens it; move it out of the log directory"
    )]
    NotRegularFile {
        /// The entry.
        path: PathBuf,
        /// What it is: "symbolic link", "FIFO", "directory", "socket",
        /// "character device" or "block device".
        found: &'static str,
    },

    /// The log directory is on a file system where seglog cannot keep a
    /// full disk an error rather than a `SIGBUS` in the writer (see
    /// `docs/RELIABILITY.md`, "File systems"), and
    /// [`Options::allow_unsupported_filesystem`](crate::Options::allow_unsupported_filesystem)
    /// was not given.
    #[error(
        "{dir:?} is on {filesystem}, where {reason}; use ext4, xfs or tmpfs, or Options::allow_unsupported_filesystem(true) to accept the risk"
    )]
    UnsupportedFilesystem {
        /// The log directory (or the segment file) concerned.
        dir: PathBuf,
        /// The file system's name (or its magic number when unknown).
        filesystem: String,
        /// What could not be guaranteed there.
        reason: String,
    },

    /// [`Log::open`](crate::Log::open) found the directory not writable
    /// (permissions, or a read-only mount): appends, segment creation and
    /// close would fail later. A [`Reader`](crate::Reader) opens it.
    #[error(
        "log directory {dir:?} is not writable ({source}); open it with Reader::open to read it"
    )]
    DirectoryNotWritable {
        /// The directory.
        dir: PathBuf,
        /// What the access check reported.
        #[source]
        source: io::Error,
    },

    /// A snapshot was asked for a stream the log does not hold: there are
    /// no events it could reflect. Nothing was written.
    #[error("no stream {stream:?} in the log to snapshot")]
    UnknownStream {
        /// The stream named.
        stream: String,
    },

    /// A snapshot was asked for a version the stream has not reached: it
    /// would reflect events that do not exist. Nothing was written.
    #[error("snapshot of {stream:?} at version {version}, past its last version {last_version}")]
    SnapshotAhead {
        /// The stream.
        stream: String,
        /// The version the snapshot was to reflect.
        version: u64,
        /// The stream's last version when it was checked.
        last_version: u64,
    },

    /// A snapshot's bytes are over [`MAX_SNAPSHOT_BYTES`](crate::limits::MAX_SNAPSHOT_BYTES).
    /// Nothing was written (by `append_with_snapshot`, not the events either).
    #[error("snapshot of {stream:?} is {size_bytes} bytes, over the limit of {max_bytes}")]
    SnapshotTooLarge {
        /// The stream.
        stream: String,
        /// The snapshot's size.
        size_bytes: u64,
        /// The limit.
        max_bytes: u64,
    },

    /// A read asked for a position that retention removed: the log now
    /// starts at `log_start`. Read from there (or later) instead.
    #[error("position {position} lies before the log's start at {log_start}: retention removed it")]
    BeforeLogStart {
        /// The position asked for.
        position: Position,
        /// The first position the log holds.
        log_start: Position,
    },

    /// A read of a stream asked for a version that retention removed: the
    /// stream's events now start at `first_version`.
    #[error(
        "version {version} of stream {stream:?} lies before the log's start at {log_start}: \
         retention removed it; the stream's first version kept is {first_version}"
    )]
    StreamBeforeLogStart {
        /// The stream.
        stream: String,
        /// The version asked for.
        version: u64,
        /// The stream's first version the log still holds.
        first_version: u64,
        /// The first position the log holds.
        log_start: Position,
    },

    /// The stream was deleted ([`Log::delete_stream`](crate::Log::delete_stream)):
    /// it cannot be read or appended to again. Nothing was written.
    #[error("stream {stream:?} is deleted")]
    StreamDeleted {
        /// The stream.
        stream: String,
    },

    /// A truncation asked to hide versions the stream has not reached.
    /// Nothing was written.
    #[error(
        "cannot truncate {stream:?} before version {before}: its last version is {last_version}"
    )]
    TruncateAhead {
        /// The stream.
        stream: String,
        /// The version asked for.
        before: u64,
        /// The stream's last version.
        last_version: u64,
    },

    /// The stream is one only the engine appends to
    /// ([`AUDIT_STREAM`](crate::AUDIT_STREAM), [`STREAMS_STREAM`](crate::STREAMS_STREAM)). Nothing was written.
    #[error("stream {stream:?} is the engine's own: it cannot be appended to")]
    ReservedStreamName {
        /// The stream named.
        stream: String,
    },

    /// An encrypted event was appended or read, or a subject forgotten,
    /// on a handle opened without [`Options::master_key`](crate::Options::master_key).
    /// Nothing was written; a read ends at the event.
    #[error("the event is encrypted and no master key was given (Options::master_key)")]
    NoMasterKey,

    /// The log's key store does not open with the master key given: it
    /// was sealed under another one. Nothing was read or written.
    #[error("the key store {path:?} does not open with this master key")]
    WrongMasterKey {
        /// The key store file.
        path: PathBuf,
    },

    /// A subject named for encryption is empty or longer than
    /// [`MAX_SUBJECT_BYTES`](crate::limits::MAX_SUBJECT_BYTES). Nothing was written.
    #[error("subject of {len} bytes: a subject is 1 to {max} bytes")]
    InvalidSubject {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The key store already holds [`MAX_SUBJECTS`](crate::limits::MAX_SUBJECTS)
    /// subjects' keys. Nothing was written.
    #[error("the key store holds the maximum number of subjects ({max})")]
    TooManySubjects {
        /// The limit.
        max: usize,
    },

    /// [`Log::forget`](crate::Log::forget) named a subject that has no key:
    /// none of its events was ever encrypted, or it was forgotten already.
    /// Nothing was written.
    #[error("no key for subject {subject:?} (never used, or already forgotten)")]
    UnknownSubject {
        /// The subject named.
        subject: Box<str>,
    },

    /// An option was out of its documented range.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// The accepted range.
        reason: String,
    },

    /// Text read as a [`Digest`](crate::Digest) is not one.
    #[error("not a seglog digest: {reason}")]
    InvalidDigest {
        /// What is wrong with it.
        reason: String,
    },

    /// A [`SignedDigest`](crate::SignedDigest)'s signature does not hold:
    /// another key made it, or the digest was changed after signing.
    #[error("the digest's signature does not hold: {reason}")]
    BadSignature {
        /// Which of the two.
        reason: String,
    },
}

impl Error {
    /// `source` on `path`, or the variant its marker asks for (an
    /// [`IoMarker`] from the storage layer).
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        match source.get_ref().and_then(|e| e.downcast_ref::<IoMarker>()) {
            Some(IoMarker::NotRegular(found)) => Error::NotRegularFile { path, found },
            Some(IoMarker::Unsupported { filesystem, reason }) => Error::UnsupportedFilesystem {
                dir: path,
                filesystem: filesystem.clone(),
                reason: reason.clone(),
            },
            None => Error::Io { path, source },
        }
    }
}

/// Carried inside an `io::Error` by the storage layer, whose operations
/// return `io::Result`, so that [`Error::io`] gives the variant a caller
/// can act on instead of a bare I/O error.
#[derive(Debug)]
pub(crate) enum IoMarker {
    /// The path names something other than a regular file: what it is.
    NotRegular(&'static str),
    /// The file system cannot keep a full disk from raising `SIGBUS`.
    Unsupported {
        /// Its name.
        filesystem: String,
        /// What failed.
        reason: String,
    },
}

impl IoMarker {
    /// Wraps the marker in the `io::Error` the storage layer returns.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match self {
            IoMarker::NotRegular(_) => io::ErrorKind::InvalidInput,
            IoMarker::Unsupported { .. } => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, self)
    }
}

impl std::fmt::Display for IoMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoMarker::NotRegular(found) => write!(f, "a {found}, not a regular file"),
            IoMarker::Unsupported { filesystem, reason } => write!(f, "{filesystem}: {reason}"),
        }
    }
}

impl std::error::Error for IoMarker {}

// Every `Result` of the crate is as large as its largest error, and the
// read loops move results of frames: a variant that grew this enum past
// 72 bytes made the stream replay copy them through the stack (W5 ran
// slower). Box what does not fit.
const _: () = assert!(std::mem::size_of::<Error>() <= 72);
