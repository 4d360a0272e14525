//! Every limit the log enforces. Reaching one is an [`Error`](crate::Error),
//! never a hang or a panic.

/// Longest stream name, in bytes of UTF-8.
pub const MAX_STREAM_NAME_BYTES: usize = 256;
/// Longest event type, in bytes of UTF-8.
pub const MAX_EVENT_TYPE_BYTES: usize = 256;
/// Most events in one `append` call (one frame).
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;
/// Most appends in one `append_many` call.
pub const MAX_APPENDS_PER_CALL: usize = 4_096;
/// Most streams one log holds (stream ids are 32-bit).
pub const MAX_STREAMS: u64 = u32::MAX as u64;
/// Highest version a stream can reach.
pub const MAX_VERSION: u64 = i64::MAX as u64;
/// Smallest segment size accepted.
pub const MIN_SEGMENT_SIZE_BYTES: u64 = 1 << 20;
/// Largest segment size accepted.
pub const MAX_SEGMENT_SIZE_BYTES: u64 = 1 << 30;
/// Segment size of [`Options::new`](crate::Options::new).
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Sync requests the writer thread's queue holds before callers wait for room.
pub const SYNC_QUEUE_DEPTH: usize = 1024;
/// Versions between two sparse index entries of a stream, by default.
pub const DEFAULT_INDEX_INTERVAL: u64 = 32;
/// Largest index interval accepted.
pub const MAX_INDEX_INTERVAL: u64 = 65_536;
/// Longest consumer name, in bytes of UTF-8: its hex form names the
/// checkpoint file, which must fit a file name (255 bytes).
pub const MAX_CONSUMER_NAME_BYTES: usize = 100;

/// Longest subject a key is kept for ([`EventData::encrypted_for`](crate::EventData::encrypted_for)),
/// in bytes of UTF-8: as long as a stream name, which is the default subject.
pub const MAX_SUBJECT_BYTES: usize = 256;
/// Most subjects' keys one log's key store holds. The store is rewritten
/// whole for each new subject and each forget (a temporary file, two
/// fsyncs), so its size bounds what a new subject costs: about 64 bytes
/// a subject, 6 MiB at this limit.
pub const MAX_SUBJECTS: usize = 100_000;

/// Most steps an upcaster chain may take from a stored event to its current
/// version (v1 → v2 is one step); a longer chain is refused when the
/// upcasters are built.
pub const MAX_UPCAST_STEPS: usize = 32;

/// Most events one stored event may become through its whole upcaster
/// chain; more is an [`Error::Upcast`](crate::Error::Upcast) at read time.
pub const MAX_UPCAST_OUTPUTS: usize = 1_024;

/// Largest snapshot payload, in bytes: a snapshot is read whole into
/// memory, and a larger file under a snapshot's name is refused unread.
pub const MAX_SNAPSHOT_BYTES: usize = 64 << 20;
/// Snapshots kept per stream by [`Options::new`](crate::Options::new): the
/// newest three, so a damaged or old-schema newest one still leaves two to
/// fall back on.
pub const DEFAULT_SNAPSHOTS_KEPT: usize = 3;
/// Most snapshots [`Options::snapshots_kept`](crate::Options::snapshots_kept)
/// may keep per stream: each is a file, and a load lists them all.
pub const MAX_SNAPSHOTS_KEPT: usize = 64;

/// How often retention runs in the background by default
/// ([`Options::retention_interval`](crate::Options::retention_interval)).
pub const DEFAULT_RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
