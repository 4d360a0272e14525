//! A [`Storage`] for tests and fuzzing (never used by a [`crate::Log`]
//! unless a test asks, and compiled only under `cfg(test)` or the `testing`
//! feature): the real files underneath, plus
//! - failures on demand: the nth next operation of a kind fails with a
//!   chosen errno, once or until healed; a failing `write_at` writes half
//!   its bytes first (a short write);
//! - writes past a file's first byte (a spare's zero-fill) held until a
//!   test lets them through, a few at a time;
//! - a model of what a power cut would keep: the bytes each flush or fsync
//!   made durable, and which names a directory fsync made durable, journaled
//!   so the state after any durability point can be rebuilt as files.
//!
//! The model is deliberately pessimistic: nothing counts as durable until a
//! sync says so (a created or renamed name until its directory is synced, a
//! file's bytes until a flush or fsync covers them). A removal counts at
//! once, which is what the engine assumes of the files it removes (leftover
//! temporaries and unused spares).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use memmap2::MmapRaw;

use super::Preallocate;
use super::{RealStorage, Storage};

/// A kind of operation, for failure rules and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Create,
    Open,
    Reserve,
    WriteAt,
    Map,
    Flush,
    Sync,
    SyncDir,
    Rename,
    Remove,
    CreateDir,
    ReadDir,
    Lock,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    op: Op,
    /// Operations of this kind still to let through before failing.
    skip: u64,
    errno: i32,
    /// Keep failing once triggered (until [`FaultStorage::heal`]).
    sticky: bool,
}

/// One change to the durable state, in the order the syncs made them.
#[derive(Debug, Clone)]
enum Change {
    Bytes {
        path: PathBuf,
        at: u64,
        bytes: Vec<u8>,
        /// The whole file as it was at this point, synced or not (taken
        /// at sampled flushes): what the kernel might have written back.
        current: Option<Arc<Vec<u8>>>,
    },
    /// The file's durable length (an fsync makes the size durable too).
    Len {
        path: PathBuf,
        len: u64,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Remove {
        path: PathBuf,
    },
    /// A directory made: its name is durable once its parent is synced.
    Dir {
        path: PathBuf,
    },
    /// Every name created or renamed in `dir` so far is durable.
    Names {
        dir: PathBuf,
    },
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    counts: HashMap<Op, u64>,
    journal: Vec<Change>,
}

/// Real files with injected failures and a journal of durability.
#[derive(Debug, Default)]
pub(crate) struct FaultStorage {
    state: Mutex<State>,
    /// Every how many flushes to keep a copy of the flushed file's current
    /// bytes (0: never).
    snapshot_every: usize,
    /// Journal syncs without asking the kernel: the journal alone defines
    /// what a power cut keeps, so a model test need not wait for the disk.
    journal_only: bool,
    /// `Some(n)`: `n` more writes past a file's first byte go through and
    /// later ones wait ([`hold_writes`](Self::hold_writes)); such writes
    /// are a spare segment's zero-fill.
    write_permits: Mutex<Option<u64>>,
    permits_changed: Condvar,
    /// Reserving blocks waits while this is set
    /// ([`hold_reserves`](Self::hold_reserves)): a segment's creation
    /// stops there.
    reserves_held: Mutex<bool>,
    reserves_changed: Condvar,
}

/// Durable files rebuilt from the journal: content and whether the name is;
/// and the directories made through the seam, with whether their names are.
#[derive(Debug, Default, Clone)]
pub(crate) struct Image {
    files: HashMap<PathBuf, (Vec<u8>, bool)>,
    dirs: HashMap<PathBuf, bool>,
    /// Files renamed over a durable name whose directory was not synced
    /// since: the old file keeps the name until it is (a rename is atomic,
    /// so a crash leaves one or the other, never neither).
    renamed_over: HashMap<PathBuf, Vec<u8>>,
}

impl FaultStorage {
    /// Also keeps, at every `n`th flush, the flushed file's current bytes,
    /// so [`replay`](Self::replay) can offer them as unsynced pages.
    #[cfg(test)]
    pub(crate) fn with_snapshots(n: usize) -> Self {
        FaultStorage {
            snapshot_every: n,
            ..FaultStorage::default()
        }
    }

    /// Syncs are journaled but not passed to the kernel (fast model runs).
    pub(crate) fn journal_only() -> Self {
        FaultStorage {
            journal_only: true,
            ..FaultStorage::default()
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `nth` next operation of kind `op` (0: the very next) fails with
    /// `errno`; with `sticky`, so does every later one until [`heal`](Self::heal).
    pub(crate) fn fail(&self, op: Op, nth: u64, errno: i32, sticky: bool) {
        self.state().rules.push(Rule {
            op,
            skip: nth,
            errno,
            sticky,
        });
    }

    /// Makes every later write at a nonzero offset wait for a permit
    /// ([`permit_writes`](Self::permit_writes)) until
    /// [`release_writes`](Self::release_writes).
    #[cfg(test)]
    pub(crate) fn hold_writes(&self) {
        *self.permits() = Some(0);
    }

    /// Lets `n` more held writes through.
    #[cfg(test)]
    pub(crate) fn permit_writes(&self, n: u64) {
        if let Some(left) = &mut *self.permits() {
            *left += n;
        }
        self.permits_changed.notify_all();
    }

    /// Lets every write through again.
    #[cfg(test)]
    pub(crate) fn release_writes(&self) {
        *self.permits() = None;
        self.permits_changed.notify_all();
    }

    /// Makes every later reserve (a segment's creation) wait until
    /// [`release_reserves`](Self::release_reserves).
    #[cfg(test)]
    pub(crate) fn hold_reserves(&self) {
        *self.reserves_held.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    /// Lets reserves through again.
    #[cfg(test)]
    pub(crate) fn release_reserves(&self) {
        *self.reserves_held.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.reserves_changed.notify_all();
    }

    fn wait_for_reserve(&self) {
        let mut held = self.reserves_held.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            held = self
                .reserves_changed
                .wait(held)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn permits(&self) -> MutexGuard<'_, Option<u64>> {
        self.write_permits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a permit if writes are held.
    fn take_write_permit(&self) {
        let mut permits = self.permits();
        while *permits == Some(0) {
            permits = self
                .permits_changed
                .wait(permits)
                .unwrap_or_else(|p| p.into_inner());
        }
        if let Some(left) = &mut *permits {
            *left -= 1;
        }
    }

    /// Drops every failure rule.
    pub(crate) fn heal(&self) {
        self.state().rules.clear();
    }

    /// How many operations of kind `op` were attempted.
    pub(crate) fn count(&self, op: Op) -> u64 {
        self.state().counts.get(&op).copied().unwrap_or(0)
    }

    /// Durability points so far: a test records it when an append is
    /// acknowledged, and [`replay`](Self::replay) rebuilds the state at it.
    pub(crate) fn durability_points(&self) -> usize {
        self.state().journal.len()
    }

    /// Counts an attempt at `op` and applies the rules to it.
    fn check(&self, op: Op) -> io::Result<()> {
        let mut state = self.state();
        *state.counts.entry(op).or_default() += 1;
        let mut failed = None;
        state.rules.retain_mut(|rule| {
            if rule.op != op || failed.is_some() {
                return true;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                return true;
            }
            failed = Some(rule.errno);
            rule.sticky
        });
        match failed {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }

    fn record(&self, change: Change) {
        self.state().journal.push(change);
    }

    /// Records every file now in `dir` as durable, names and bytes: the
    /// state a test starts from after it wrote a power-cut image there.
    pub(crate) fn adopt(&self, dir: &Path) -> io::Result<()> {
        for path in RealStorage.read_dir(dir)? {
            let bytes = std::fs::read(&path)?;
            self.record(Change::Len {
                path: path.clone(),
                len: bytes.len() as u64,
            });
            self.record(Change::Bytes {
                path,
                at: 0,
                bytes,
                current: None,
            });
        }
        self.record(Change::Names {
            dir: dir.to_path_buf(),
        });
        Ok(())
    }

    /// Rebuilds the durable state after each durability point in turn and
    /// calls `at(points, image, current)` with it: what a power cut right
    /// after those `points` would leave. `current`, at sampled flushes, is
    /// the flushed file's path and its bytes at that moment.
    pub(crate) fn replay(&self, mut at: impl FnMut(usize, &Image, Option<(&Path, &[u8])>)) {
        let journal = self.state().journal.clone();
        let mut image = Image::default();
        for (i, change) in journal.iter().enumerate() {
            image.apply(change);
            let current = match change {
                Change::Bytes {
                    path,
                    current: Some(current),
                    ..
                } => Some((path.as_path(), current.as_slice())),
                _ => None,
            };
            at(i + 1, &image, current);
        }
    }
}

impl FaultStorage {
    /// The durable state a power cut right after `points` durability points
    /// would leave, if there were that many.
    pub(crate) fn image_at(&self, points: usize) -> Option<Image> {
        let mut image = None;
        self.replay(|k, img, _| {
            if k == points {
                image = Some(img.clone());
            }
        });
        image
    }
}

impl Image {
    /// The durable bytes of the file at `path`, if it exists in the image.
    #[cfg(test)]
    pub(crate) fn file(&self, path: &Path) -> Option<&[u8]> {
        self.files.get(path).map(|(content, _)| content.as_slice())
    }

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Bytes {
                path, at, bytes, ..
            } => {
                let (content, _) = self.files.entry(path.clone()).or_default();
                let end = *at as usize + bytes.len();
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[*at as usize..end].copy_from_slice(bytes);
            }
            Change::Len { path, len } => {
                let (content, _) = self.files.entry(path.clone()).or_default();
                content.resize(*len as usize, 0);
            }
            Change::Rename { from, to } => {
                if let Some((content, _)) = self.files.remove(from) {
                    match self.files.get(to) {
                        Some((_, true)) => {
                            self.renamed_over.insert(to.clone(), content);
                        }
                        _ => {
                            self.files.insert(to.clone(), (content, false));
                        }
                    }
                }
            }
            Change::Remove { path } => {
                self.files.remove(path);
                self.renamed_over.remove(path);
            }
            Change::Dir { path } => {
                self.dirs.entry(path.clone()).or_insert(false);
            }
            Change::Names { dir } => {
                let landed: Vec<PathBuf> = self
                    .renamed_over
                    .keys()
                    .filter(|p| p.parent() == Some(dir.as_path()))
                    .cloned()
                    .collect();
                for path in landed {
                    if let Some(content) = self.renamed_over.remove(&path) {
                        self.files.insert(path, (content, true));
                    }
                }
                for (path, (_, named)) in &mut self.files {
                    if path.parent() == Some(dir.as_path()) {
                        *named = true;
                    }
                }
                for (path, named) in &mut self.dirs {
                    if path.parent() == Some(dir.as_path()) {
                        *named = true;
                    }
                }
            }
        }
    }

    /// Whether every directory between `root` and the file at `path` was
    /// made through the seam and its name is durable (trivially so for a
    /// file directly in `root`).
    fn reachable(&self, root: &Path, path: &Path) -> bool {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == root {
                return true;
            }
            if self.dirs.get(d) != Some(&true) {
                return false;
            }
            dir = d.parent();
        }
        false
    }

    /// Writes the files under directory `from` whose names are durable
    /// (and the directories on their way: see [`Image::reachable`]) into
    /// `to`, at the same relative paths. With `current` (a file and its
    /// bytes at the moment of the cut), `keep_unsynced(page)` may pick 4 KiB
    /// pages of it that replace the durable ones: pages the kernel wrote
    /// back on its own before the power went.
    pub(crate) fn write_to(
        &self,
        from: &Path,
        to: &Path,
        current: Option<(&Path, &[u8])>,
        mut keep_unsynced: impl FnMut(usize) -> bool,
    ) -> io::Result<()> {
        std::fs::create_dir_all(to)?;
        for (path, (content, named)) in &self.files {
            let Ok(relative) = path.strip_prefix(from) else {
                continue;
            };
            if !named || !self.reachable(from, path) {
                continue;
            }
            let mut content = content.clone();
            if let Some((_, current)) = current.filter(|(p, _)| p == path) {
                for (page, chunk) in current.chunks(4096).enumerate() {
                    let at = page * 4096;
                    if at + chunk.len() <= content.len()
                        && content[at..at + chunk.len()] != *chunk
                        && keep_unsynced(page)
                    {
                        content[at..at + chunk.len()].copy_from_slice(chunk);
                    }
                }
            }
            let target = to.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, content)?;
        }
        Ok(())
    }
}

impl Storage for FaultStorage {
    fn create(&self, path: &Path) -> io::Result<File> {
        self.check(Op::Create)?;
        RealStorage.create(path)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        self.check(Op::Open)?;
        RealStorage.open(path)
    }

    fn open_or_create(&self, path: &Path) -> io::Result<File> {
        self.check(Op::Create)?;
        RealStorage.open_or_create(path)
    }

    fn reserve(&self, file: &File, path: &Path, size: u64, how: Preallocate) -> io::Result<()> {
        self.wait_for_reserve();
        self.check(Op::Reserve)?;
        RealStorage.reserve(file, path, size, how)
    }

    fn write_at(&self, file: &File, path: &Path, bytes: &[u8], at: u64) -> io::Result<()> {
        if at > 0 {
            self.take_write_permit();
        }
        if let Err(e) = self.check(Op::WriteAt) {
            file.write_all_at(&bytes[..bytes.len() / 2], at)?;
            return Err(e);
        }
        RealStorage.write_at(file, path, bytes, at)
    }

    fn map(&self, file: &File, path: &Path, len: u64) -> io::Result<MmapRaw> {
        self.check(Op::Map)?;
        RealStorage.map(file, path, len)
    }

    fn flush(&self, map: &MmapRaw, file: &File, path: &Path, from: u64, to: u64) -> io::Result<()> {
        self.check(Op::Flush)?;
        if !self.journal_only {
            RealStorage.flush(map, file, path, from, to)?;
        }
        let mut bytes = vec![0; (to - from) as usize];
        file.read_exact_at(&mut bytes, from)?;
        let flushes = self.count(Op::Flush) as usize;
        let current = if self.snapshot_every > 0 && flushes.is_multiple_of(self.snapshot_every) {
            let mut all = vec![0; file.metadata()?.len() as usize];
            file.read_exact_at(&mut all, 0)?;
            Some(Arc::new(all))
        } else {
            None
        };
        self.record(Change::Bytes {
            path: path.to_path_buf(),
            at: from,
            bytes,
            current,
        });
        Ok(())
    }

    fn sync(&self, file: &File, path: &Path) -> io::Result<()> {
        self.check(Op::Sync)?;
        if !self.journal_only {
            RealStorage.sync(file, path)?;
        }
        let len = file.metadata()?.len();
        let mut bytes = vec![0; len as usize];
        file.read_exact_at(&mut bytes, 0)?;
        self.record(Change::Len {
            path: path.to_path_buf(),
            len,
        });
        self.record(Change::Bytes {
            path: path.to_path_buf(),
            at: 0,
            bytes,
            current: None,
        });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Op::SyncDir)?;
        if !self.journal_only {
            RealStorage.sync_dir(dir)?;
        }
        self.record(Change::Names {
            dir: dir.to_path_buf(),
        });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Op::Rename)?;
        RealStorage.rename(from, to)?;
        self.record(Change::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(Op::Remove)?;
        RealStorage.remove(path)?;
        self.record(Change::Remove {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> io::Result<bool> {
        self.check(Op::CreateDir)?;
        let made = RealStorage.create_dir(path)?;
        if made {
            self.record(Change::Dir {
                path: path.to_path_buf(),
            });
        }
        Ok(made)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.check(Op::ReadDir)?;
        RealStorage.read_dir(dir)
    }

    fn try_lock(&self, file: &File, path: &Path) -> io::Result<bool> {
        self.check(Op::Lock)?;
        RealStorage.try_lock(file, path)
    }
}

/// A coin flip from the xorshift state `seed`: which unsynced pages a
/// simulated power cut keeps (`Image::write_to`), reproducible per seed.
#[cfg(test)]
pub(crate) fn coin(seed: &mut u64) -> bool {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    seed.is_multiple_of(2)
}
