//! Snapshots: a stream's state at a version, saved beside the log so a
//! load starts from it and reads only the events after it.
//!
//! Where they live, and why: one file per snapshot,
//! `snapshots/{stream key}/{version:020}.snap` in the log directory
//! (`layout::snapshot_stream_dir` for the key), not events in the log:
//! - snapshots are derived data: they must be free to delete, replace and
//!   prune (keep the newest K), which an append-only log cannot do;
//! - a snapshot in the log would be history (`read_all`, replays and
//!   subscriptions would carry it) and would queue behind the group commit;
//! - one directory per stream keeps a load to listing a few files, however
//!   many streams the log holds.
//!
//! Durability ordering: a save first makes the stream's events durable up
//! to the version the snapshot names (`Log::sync` when they are not yet),
//! then writes the file (temporary name, fsync, rename, fsync of its
//! directory, through the `Storage` seam). A power cut can lose a snapshot,
//! never leave one whose events are gone. Loads check anyway: a file that
//! fails its checksum, belongs to another log or stream, or names a version
//! the stream does not have (a torn tail cut after a crash, a log restored
//! from an older copy) is skipped with a warning and the next older is
//! tried; with none, a rebuild starts from the events.

pub(crate) mod file;

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::layout;
use crate::limits::{MAX_SNAPSHOT_BYTES, MAX_STREAM_NAME_BYTES};
use crate::read::ReadStream;
use crate::storage::{self, Storage};
use crate::view::LogView;

/// A stream's state at one version, as its owner encoded it: what
/// [`Log::load_snapshot`](crate::Log::load_snapshot) hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    stream: String,
    version: u64,
    schema_version: u16,
    bytes: Bytes,
}

impl Snapshot {
    /// The stream it is a snapshot of.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream version it reflects: every event up to and including
    /// this version is in it, none after.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The schema version its owner gave its bytes when saving it: code
    /// that no longer reads that version skips it (as
    /// [`Log::rebuild`](crate::Log::rebuild) does).
    pub fn schema_version(&self) -> u16 {
        self.schema_version
    }

    /// Its bytes, as saved.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Its bytes, owned.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

/// A stream's state rebuilt by [`Log::rebuild`](crate::Log::rebuild): from a
/// snapshot (if one was usable) plus the events after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt<S> {
    /// The state.
    pub state: S,
    /// The last stream version the state reflects (the snapshot's, or the
    /// last event applied); `None` when there was neither.
    pub version: Option<u64>,
    /// The version of the snapshot the rebuild started from; `None` when
    /// it started from the caller's initial state and the first event.
    pub from_snapshot: Option<u64>,
}

/// A snapshot to save.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Save<'a> {
    pub(crate) stream: &'a str,
    pub(crate) version: u64,
    pub(crate) schema_version: u16,
    pub(crate) bytes: &'a [u8],
}

/// Stripes of save locks: two saves of one stream never share a temporary
/// file or prune under each other; saves of other streams rarely wait.
const SAVE_STRIPES: usize = 16;

/// The writer's side of snapshots: how many to keep, and the locks saves
/// take. Only a [`Log`](crate::Log) has one; loads need none.
#[derive(Debug)]
pub(crate) struct Snapshots {
    kept: usize,
    /// Whether this session has synced the `snapshots` directory's name.
    top_synced: Mutex<bool>,
    stripes: [Mutex<()>; SAVE_STRIPES],
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A save that panicked leaves at most a temporary file: go on.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Refuses, before anything is written, what could never be saved: a bad
/// stream name or bytes over [`MAX_SNAPSHOT_BYTES`].
pub(crate) fn check(stream: &str, len_bytes: usize) -> Result<()> {
    if stream.is_empty() {
        return Err(Error::EmptyStreamName);
    }
    if stream.len() > MAX_STREAM_NAME_BYTES {
        return Err(Error::StreamNameTooLong {
            len: stream.len(),
            max: MAX_STREAM_NAME_BYTES,
        });
    }
    if len_bytes > MAX_SNAPSHOT_BYTES {
        return Err(Error::SnapshotTooLarge {
            stream: stream.to_string(),
            size_bytes: len_bytes as u64,
            max_bytes: MAX_SNAPSHOT_BYTES as u64,
        });
    }
    Ok(())
}

fn stream_dir(view: &LogView, stream: &str) -> PathBuf {
    view.dir
        .join(layout::SNAPSHOT_DIR)
        .join(layout::snapshot_stream_dir(stream))
}

impl Snapshots {
    /// `kept` was validated with the options.
    pub(crate) fn new(kept: usize) -> Snapshots {
        Snapshots {
            kept,
            top_synced: Mutex::new(false),
            stripes: std::array::from_fn(|_| Mutex::new(())),
        }
    }

    /// Saves `save` once its events are durable (`durable` makes them so),
    /// then keeps the newest `kept` of the stream's snapshots.
    pub(crate) fn save(
        &self,
        view: &LogView,
        save: &Save<'_>,
        durable: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        check(save.stream, save.bytes.len())?;
        let last_version = view
            .stream_head(save.stream)
            .map(|(_, head)| head.last_version)
            .ok_or_else(|| Error::UnknownStream {
                stream: save.stream.to_string(),
            })?;
        if save.version > last_version {
            return Err(Error::SnapshotAhead {
                stream: save.stream.to_string(),
                version: save.version,
                last_version,
            });
        }
        // Never a snapshot of events a power cut could take away.
        durable()?;
        let storage = &*view.storage;
        self.make_top(storage, &view.dir)?;
        let stripe = save.stream.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        }) % SAVE_STRIPES;
        let _saving = lock(&self.stripes[stripe]);
        let dir = stream_dir(view, save.stream);
        if storage.create_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let top = view.dir.join(layout::SNAPSHOT_DIR);
            storage.sync_dir(&top).map_err(|e| Error::io(&top, e))?;
        }
        let path = dir.join(layout::snapshot_file(save.version));
        let bytes = file::encode(&file::Contents {
            log_id: view.log_id,
            stream: save.stream,
            version: save.version,
            schema_version: save.schema_version,
            payload: save.bytes,
        });
        storage::replace_file(storage, &path, &bytes).map_err(|e| Error::io(&path, e))?;
        prune(storage, &dir, self.kept);
        Ok(())
    }

    /// Makes the `snapshots` directory (again, if someone removed it: it
    /// is derived data) and makes its name durable: when it was made, and
    /// once a session in any case, in case a crashed session made it
    /// without the sync.
    fn make_top(&self, storage: &dyn Storage, log_dir: &Path) -> Result<()> {
        let mut synced = lock(&self.top_synced);
        let top = log_dir.join(layout::SNAPSHOT_DIR);
        let made = storage.create_dir(&top).map_err(|e| Error::io(&top, e))?;
        if made || !*synced {
            storage
                .sync_dir(log_dir)
                .map_err(|e| Error::io(log_dir, e))?;
            *synced = true;
        }
        Ok(())
    }
}

/// The snapshot files in `dir` by version, newest first, and the leftovers
/// of interrupted saves. A missing directory has none; one that cannot be
/// listed is warned about and has none (snapshots are derived data).
fn listing(storage: &dyn Storage, dir: &Path) -> (Vec<(u64, PathBuf)>, Vec<PathBuf>) {
    let entries = match storage.read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("seglog: snapshots in {dir:?} not listed ({e}); reading the events");
            }
            return (Vec::new(), Vec::new());
        }
    };
    let (mut files, mut leftovers) = (Vec::new(), Vec::new());
    for path in entries {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(version) = layout::parse_snapshot_file(name) {
            files.push((version, path));
        } else if layout::is_snapshot_tmp(name) {
            leftovers.push(path);
        }
    }
    files.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    (files, leftovers)
}

/// Removes all but the newest `kept` snapshot files of `dir`, and the
/// leftovers of interrupted saves (the caller holds the stream's stripe, so
/// no save of it is under way). A failure is a warning: an extra file costs
/// space, not correctness, and the next save tries again.
fn prune(storage: &dyn Storage, dir: &Path, kept: usize) {
    let (files, leftovers) = listing(storage, dir);
    let old = files.into_iter().skip(kept).map(|(_, path)| path);
    for path in old.chain(leftovers) {
        if let Err(e) = storage.remove(&path) {
            log::warn!("seglog: old snapshot {path:?} not removed: {e}");
        }
    }
}

/// The versions of `stream`'s snapshot files, newest first, unchecked.
pub(crate) fn versions(view: &LogView, stream: &str) -> Vec<u64> {
    if check(stream, 0).is_err() {
        return Vec::new();
    }
    let (files, _) = listing(&*view.storage, &stream_dir(view, stream));
    files.into_iter().map(|(version, _)| version).collect()
}

/// The snapshot in `path`, or `None` with a warning saying why it is
/// unusable.
fn read_one(
    view: &LogView,
    path: &Path,
    stream: &str,
    version: u64,
    last: u64,
) -> Option<Snapshot> {
    let skip = |reason: &dyn Display| {
        log::warn!("seglog: snapshot {path:?} skipped: {reason}");
        None
    };
    if version > last {
        return skip(&format_args!(
            "it names version {version}, past the stream's last version {last} (events lost in a crash, or an older copy of the log)"
        ));
    }
    let raw = match storage::entry::read(path, file::MAX_FILE_BYTES) {
        Ok(raw) => Bytes::from(raw),
        Err(e) => return skip(&e),
    };
    match file::decode(&raw, view.log_id, stream) {
        Ok(snapshot) if snapshot.version == version => Some(snapshot),
        Ok(snapshot) => skip(&format_args!(
            "it holds version {} under another version's name",
            snapshot.version
        )),
        Err(reason) => skip(&reason),
    }
}

/// Every usable snapshot of `stream` at or before `at_or_before`, newest
/// first, each read only when the one before it was turned down by `take`;
/// the first `take` accepts.
fn newest_usable<T>(
    view: &LogView,
    stream: &str,
    at_or_before: u64,
    mut take: impl FnMut(Snapshot) -> Option<T>,
) -> Option<T> {
    if check(stream, 0).is_err() {
        return None;
    }
    let last = view.stream_head(stream)?.1.last_version;
    let (files, _) = listing(&*view.storage, &stream_dir(view, stream));
    files
        .into_iter()
        .filter(|(version, _)| *version <= at_or_before)
        .find_map(|(version, path)| take(read_one(view, &path, stream, version, last)?))
}

/// The newest usable snapshot of `stream` at or before `at_or_before`.
pub(crate) fn load(view: &LogView, stream: &str, at_or_before: u64) -> Option<Snapshot> {
    newest_usable(view, stream, at_or_before, Some)
}

/// What a rebuild asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rebuild<'a> {
    pub(crate) stream: &'a str,
    pub(crate) at_or_before: u64,
    pub(crate) schema_version: u16,
}

/// The state of `ask.stream` at its last version at or before
/// `ask.at_or_before`: the newest snapshot of the schema asked for that
/// `decode` accepts (others skipped with a warning), else `init()`, then
/// every later event up to the bound through `apply`.
pub(crate) fn rebuild<S, E: Display>(
    view: &Arc<LogView>,
    ask: Rebuild<'_>,
    mut decode: impl FnMut(&Snapshot) -> std::result::Result<S, E>,
    init: impl FnOnce() -> S,
    mut apply: impl FnMut(&mut S, &RecordedEvent),
) -> Result<Rebuilt<S>> {
    let start = newest_usable(view, ask.stream, ask.at_or_before, |snapshot| {
        let at = snapshot.version;
        if snapshot.schema_version != ask.schema_version {
            log::warn!(
                "seglog: snapshot of {:?} at {at} skipped: schema version {}, not {}",
                ask.stream,
                snapshot.schema_version,
                ask.schema_version
            );
            return None;
        }
        match decode(&snapshot) {
            Ok(state) => Some((state, at)),
            Err(e) => {
                log::warn!("seglog: snapshot of {:?} at {at} skipped: {e}", ask.stream);
                None
            }
        }
    });
    let from_snapshot = start.as_ref().map(|(_, at)| *at);
    let (mut state, mut version) = match start {
        Some((state, at)) => (state, Some(at)),
        None => (init(), None),
    };
    let from = from_snapshot.map_or(0, |at| at + 1);
    let head = view.stream_head(ask.stream);
    for event in ReadStream::new(Arc::clone(view), head, from, false)? {
        let event = event?;
        if event.version() > ask.at_or_before {
            break;
        }
        apply(&mut state, &event);
        version = Some(event.version());
    }
    Ok(Rebuilt {
        state,
        version,
        from_snapshot,
    })
}
