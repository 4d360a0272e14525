//! How a log is opened: segment size, durability, preallocation, repair.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::limits;
use crate::shred::MasterKey;
pub use crate::storage::Preallocate;
use crate::storage::{RealStorage, Storage};
use crate::upcast::Upcasters;

/// Where a log's commit times come from: the system clock, unless
/// [`Options::clock`] gives another (a test's, a simulation's).
///
/// The clock may step back (an NTP correction, a VM restored from a
/// snapshot): the log keeps commit times non-decreasing whatever it says,
/// by giving a frame the newest time already stored when the clock is
/// behind it, across restarts too. Time travel relies on that order.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The time now.
    fn now(&self) -> SystemTime;
}

/// When an append is acknowledged relative to the data reaching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge only after the frame is on disk (one sync per group of
    /// concurrent appends). Survives a crash or power loss. The default.
    Sync,
    /// Acknowledge after the write into the mapping; a background sync runs at
    /// most `interval` later. A crash may lose up to `interval` of appends.
    Periodic(Duration),
    /// Acknowledge after the write; nothing syncs per append. Each sealed
    /// segment is made durable in the background soon after the writer
    /// leaves it, so a crash loses at most the active segment's appends
    /// since the last [`Log::sync`](crate::Log::sync), which forces everything to disk.
    None,
}

/// Builder for [`Log::open_with`](crate::Log::open_with): `Options::new().segment_size(8 << 20).open(dir)`.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) segment_size_bytes: u64,
    pub(crate) durability: Durability,
    pub(crate) preallocate: Preallocate,
    pub(crate) repair: bool,
    pub(crate) allow_unsupported_filesystem: bool,
    pub(crate) index_interval: u64,
    /// Every file operation goes through it: the OS, or in tests a double
    /// that injects faults.
    pub(crate) storage: Arc<dyn Storage>,
    /// Applied on every read of a log opened with these options.
    pub(crate) upcasters: Option<Upcasters>,
    /// Where commit times come from (`None`: the system clock).
    pub(crate) clock: Option<Arc<dyn Clock>>,
    /// Snapshots kept per stream ([`Options::snapshots_kept`]).
    pub(crate) snapshots_kept: usize,
    /// Opens the key store ([`Options::master_key`]).
    pub(crate) master_key: Option<MasterKey>,
    /// What [`Log::apply_retention`](crate::Log::apply_retention) removes.
    pub(crate) retention: Retention,
}

/// The retention policy: see [`Options::retain_max_age`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Retention {
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) for_consumers: bool,
    /// How often the background thread runs (`None`: never).
    pub(crate) interval: Option<Duration>,
}

impl Retention {
    pub(crate) fn is_set(&self) -> bool {
        self.max_age.is_some() || self.max_bytes.is_some()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// The defaults: 64 MiB segments, [`Durability::Sync`], [`Preallocate::Fallocate`],
    /// no repair, a sparse index entry every 32 versions of a stream, the
    /// newest 3 snapshots of each stream kept.
    pub fn new() -> Self {
        Options {
            segment_size_bytes: limits::DEFAULT_SEGMENT_SIZE_BYTES,
            durability: Durability::Sync,
            preallocate: Preallocate::Fallocate,
            repair: false,
            allow_unsupported_filesystem: false,
            index_interval: limits::DEFAULT_INDEX_INTERVAL,
            storage: Arc::new(RealStorage),
            upcasters: None,
            clock: None,
            snapshots_kept: limits::DEFAULT_SNAPSHOTS_KEPT,
            master_key: None,
            retention: Retention {
                interval: Some(limits::DEFAULT_RETENTION_INTERVAL),
                ..Retention::default()
            },
        }
    }

    /// How often a background thread applies the retention options
    /// (default [`DEFAULT_RETENTION_INTERVAL`](limits::DEFAULT_RETENTION_INTERVAL));
    /// `Duration::ZERO`: never, only [`Log::apply_retention`](crate::Log::apply_retention)
    /// does. The thread runs only with a retention option set; a run that
    /// finds nothing past the limits costs a look at the segment list.
    pub fn retention_interval(mut self, every: Duration) -> Self {
        self.retention.interval = (!every.is_zero()).then_some(every);
        self
    }

    /// Retention by age: [`Log::apply_retention`](crate::Log::apply_retention)
    /// removes, from the head of the log, each sealed segment whose newest
    /// event was committed more than `age` ago (the active segment is
    /// sealed first when its newest event is that old). Whole segments
    /// only: an event lives between `age` and `age` plus the time its
    /// segment took to fill. Default: none, every event is kept.
    pub fn retain_max_age(mut self, age: Duration) -> Self {
        self.retention.max_age = Some(age);
        self
    }

    /// Retention by size: [`Log::apply_retention`](crate::Log::apply_retention)
    /// removes sealed segments from the head of the log while the
    /// segments' files take more than `bytes` (at least one segment's
    /// size; the writer's prepared spare is not counted). Default: none.
    pub fn retain_max_bytes(mut self, bytes: u64) -> Self {
        self.retention.max_bytes = Some(bytes);
        self
    }

    /// With `true`, retention never removes a segment that a named durable
    /// consumer ([`Log::consumer`](crate::Log::consumer)) has checkpointed
    /// before the end of: its events wait until every consumer is past
    /// them. Without it (the default), a consumer left behind gets
    /// [`Error::BeforeLogStart`] and decides where to go on.
    pub fn retain_for_consumers(mut self, keep: bool) -> Self {
        self.retention.for_consumers = keep;
        self
    }

    /// The application's master key, which seals the log's key store
    /// (`keys` in its directory): with it, events appended
    /// [encrypted](crate::EventData::encrypted) are sealed under their
    /// subject's key, reads decrypt them (a [`Reader`](crate::Reader) too,
    /// through [`Reader::open_with`](crate::Reader::open_with)), and
    /// [`Log::forget`](crate::Log::forget) erases a subject. Keep it out of
    /// the log's directory and its backups: whoever holds both reads every
    /// subject not yet forgotten. A store sealed under another key is
    /// [`Error::WrongMasterKey`] at open.
    pub fn master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(key);
        self
    }

    /// Upcasters every read applies ([`Log`](crate::Log) and
    /// [`Reader::open_with`](crate::Reader::open_with)): owned and borrowed,
    /// global, per stream and subscriptions alike. On the options rather
    /// than on each read handle so that no read path can forget them, and
    /// a `Reader` in another process hands out what the writer's own reads
    /// do.
    pub fn upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = Some(upcasters);
        self
    }

    /// The clock commit times are read from (default: the system's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Size of each segment file created from now on: a power of two from
    /// 1 MiB to 1 GiB. Existing segments keep the size they were created with.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// When appends are acknowledged; see [`Durability`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How new segments reserve their blocks; see [`Preallocate`].
    pub fn preallocate(mut self, preallocate: Preallocate) -> Self {
        self.preallocate = preallocate;
        self
    }

    /// Opt in to opening a log whose acknowledged data holds damaged frames.
    ///
    /// Open then verifies every frame of every segment, skips each damaged
    /// frame (keeping every valid frame after it), records the skipped byte
    /// ranges in the directory's `quarantine` file and reports them through
    /// [`Log::quarantined`](crate::Log::quarantined). Without it a damaged frame is [`Error::Corrupt`].
    pub fn repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }

    /// Opt in to writing a log on a file system seglog does not support
    /// (anything but ext4, xfs and tmpfs: btrfs, zfs, network and FUSE file
    /// systems, overlayfs, ...), where a full disk may kill the process
    /// with `SIGBUS`, or block it, instead of failing an append. Without it,
    /// [`Log::open`](crate::Log::open) refuses them with [`Error::UnsupportedFilesystem`].
    /// See `docs/RELIABILITY.md`, "File systems".
    pub fn allow_unsupported_filesystem(mut self, allow: bool) -> Self {
        self.allow_unsupported_filesystem = allow;
        self
    }

    /// How many versions of a stream lie between two entries of its sparse
    /// index (1 to 65,536; default [`DEFAULT_INDEX_INTERVAL`](limits::DEFAULT_INDEX_INTERVAL)).
    /// Reading a stream from any version walks at most this many frames
    /// back from an entry; memory is one 16-byte entry per interval.
    pub fn index_interval(mut self, versions: u64) -> Self {
        self.index_interval = versions;
        self
    }

    /// How many snapshots of each stream [`Log::save_snapshot`](crate::Log::save_snapshot)
    /// keeps: the newest `count` versions (1 to
    /// [`MAX_SNAPSHOTS_KEPT`](limits::MAX_SNAPSHOTS_KEPT); default
    /// [`DEFAULT_SNAPSHOTS_KEPT`](limits::DEFAULT_SNAPSHOTS_KEPT)). Older
    /// ones are removed after each save. More than one leaves a load
    /// something to fall back on when the newest is damaged or of a schema
    /// the code no longer reads.
    pub fn snapshots_kept(mut self, count: usize) -> Self {
        self.snapshots_kept = count;
        self
    }

    /// Routes every file operation through `storage` (fault tests and the
    /// `ops_model` fuzz target).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let size = self.segment_size_bytes;
        if !size.is_power_of_two()
            || !(limits::MIN_SEGMENT_SIZE_BYTES..=limits::MAX_SEGMENT_SIZE_BYTES).contains(&size)
        {
            return Err(Error::InvalidOption {
                name: "segment_size",
                reason: format!("{size} is not a power of two from 1 MiB to 1 GiB"),
            });
        }
        if !(1..=limits::MAX_INDEX_INTERVAL).contains(&self.index_interval) {
            return Err(Error::InvalidOption {
                name: "index_interval",
                reason: format!(
                    "{} is not from 1 to {}",
                    self.index_interval,
                    limits::MAX_INDEX_INTERVAL
                ),
            });
        }
        if !(1..=limits::MAX_SNAPSHOTS_KEPT).contains(&self.snapshots_kept) {
            return Err(Error::InvalidOption {
                name: "snapshots_kept",
                reason: format!(
                    "{} is not from 1 to {}",
                    self.snapshots_kept,
                    limits::MAX_SNAPSHOTS_KEPT
                ),
            });
        }
        if let Some(max) = self.retention.max_bytes
            && max < self.segment_size_bytes
        {
            return Err(Error::InvalidOption {
                name: "retain_max_bytes",
                reason: format!(
                    "{max} is less than one segment ({} bytes)",
                    self.segment_size_bytes
                ),
            });
        }
        if let Durability::Periodic(interval) = self.durability
            && interval.is_zero()
        {
            return Err(Error::InvalidOption {
                name: "durability",
                reason: "a periodic sync interval must be above zero".to_string(),
            });
        }
        Ok(())
    }
}
