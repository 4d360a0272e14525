//! The I/O seam: every file, directory and mapping operation the engine
//! performs goes through [`Storage`], so tests can fail any of them or cut
//! the power between any two (see `fault`). Reads of file contents and
//! loads from mappings are not operations here: they cannot make data
//! durable or lose it.
//!
//! The production [`RealStorage`] is one virtual call in front of each
//! syscall; every one of them is already a syscall (msync, fsync, rename,
//! ...), so the seam costs nothing measurable on a hot path. Stores into a
//! mapping never pass through here.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{MmapOptions, MmapRaw};

pub(crate) mod entry;
// Test scaffolding: the library's unit tests and, with the `testing`
// feature, the `ops_model` fuzz target use it; an embedder never compiles it.
#[cfg(any(test, feature = "testing"))]
pub(crate) mod fault;
#[cfg(test)]
mod fault_retention_tests;
#[cfg(test)]
mod fault_tests;
pub(crate) mod filesystem;

/// How a new segment file gets its disk blocks before the writer maps it.
///
/// Both reserve real blocks up front, so a full disk is an error when the
/// segment is created, never a `SIGBUS` when the mapping is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preallocate {
    /// `fallocate(2)`: cheap to create; the first sync after writing each new
    /// region also commits the extent conversion to the journal.
    Fallocate,
    /// Write zeros over the whole file (in a background thread, ahead of the
    /// writer): twice the disk writes, cheaper durable appends afterwards.
    ZeroFill,
}

/// Mode of every file the engine creates: owner read and write only.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of every directory the engine creates (snapshots): owner only.
pub(crate) const DIR_MODE: u32 = 0o700;

/// File and mapping operations, one method per kind of operation a fault
/// test may want to fail or observe.
pub(crate) trait Storage: Send + Sync + fmt::Debug {
    /// Creates `path` as a new, empty file for reading and writing, with
    /// mode [`FILE_MODE`], replacing whatever non-directory entry had that
    /// name (never writing through a link: see [`entry::create_new`]).
    fn create(&self, path: &Path) -> io::Result<File>;

    /// Opens the existing regular file `path` for reading and writing
    /// (never through a link, never blocking: see [`entry`]).
    fn open(&self, path: &Path) -> io::Result<File>;

    /// Opens the regular file `path` for reading and writing, creating it
    /// if it is missing and never truncating it (the lock file).
    fn open_or_create(&self, path: &Path) -> io::Result<File>;

    /// Reserves `size` bytes of blocks for the new, empty `file` so that
    /// later stores into its mapping cannot fail for lack of space (on
    /// btrfs, first marks it no-copy-on-write: see [`filesystem`]).
    fn reserve(&self, file: &File, path: &Path, size: u64, how: Preallocate) -> io::Result<()>;

    /// Writes all of `bytes` at offset `at` of `file`.
    fn write_at(&self, file: &File, path: &Path, bytes: &[u8], at: u64) -> io::Result<()>;

    /// Maps the first `len` bytes of `file`, shared and writable.
    fn map(&self, file: &File, path: &Path, len: u64) -> io::Result<MmapRaw>;

    /// Makes `[from, to)` of `map` (a shared mapping of `file`) durable.
    fn flush(&self, map: &MmapRaw, file: &File, path: &Path, from: u64, to: u64) -> io::Result<()>;

    /// Makes `file`'s contents and size durable (fsync).
    fn sync(&self, file: &File, path: &Path) -> io::Result<()>;

    /// Makes the names in `dir` durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Creates the directory `path` (mode [`DIR_MODE`]) unless a directory
    /// is already there: `Ok(true)` when it made one (its name is durable
    /// once its parent is synced), `Ok(false)` when one was there. Anything
    /// else under the name, a symbolic link above all, is an error: never
    /// followed (see [`entry::create_dir`]).
    fn create_dir(&self, path: &Path) -> io::Result<bool>;

    /// The paths of the entries of `dir`, in no particular order.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;

    /// Takes the exclusive advisory lock of `file` without waiting:
    /// `Ok(false)` when another open file description holds it.
    fn try_lock(&self, file: &File, path: &Path) -> io::Result<bool>;
}

/// The operating system's files.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RealStorage;

fn zero_fill(file: &File, size: u64) -> io::Result<()> {
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(CHUNK as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

impl Storage for RealStorage {
    fn create(&self, path: &Path) -> io::Result<File> {
        entry::create_new(path)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        entry::open_write(path)
    }

    fn open_or_create(&self, path: &Path) -> io::Result<File> {
        entry::open_or_create(path)
    }

    fn reserve(&self, file: &File, _path: &Path, size: u64, how: Preallocate) -> io::Result<()> {
        filesystem::prepare_segment(file)?;
        match how {
            Preallocate::ZeroFill => zero_fill(file, size),
            Preallocate::Fallocate => {
                match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, size) {
                    Ok(()) => Ok(()),
                    // Some file systems cannot reserve without writing: do it by hand.
                    Err(rustix::io::Errno::OPNOTSUPP) => zero_fill(file, size),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    fn write_at(&self, file: &File, _path: &Path, bytes: &[u8], at: u64) -> io::Result<()> {
        file.write_all_at(bytes, at)
    }

    fn map(&self, file: &File, _path: &Path, len: u64) -> io::Result<MmapRaw> {
        MmapOptions::new().len(len as usize).map_raw(file)
    }

    fn flush(
        &self,
        map: &MmapRaw,
        _file: &File,
        _path: &Path,
        from: u64,
        to: u64,
    ) -> io::Result<()> {
        map.flush_range(from as usize, (to - from) as usize)
    }

    fn sync(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        entry::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        entry::remove(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<bool> {
        entry::create_dir(path)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.path()))
            .collect()
    }

    fn try_lock(&self, file: &File, _path: &Path) -> io::Result<bool> {
        match file.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// A [`Write`] that appends to a file through [`Storage::write_at`], for
/// files written front to back (index and quarantine files).
pub(crate) struct StorageWriter<'a> {
    storage: &'a dyn Storage,
    file: &'a File,
    path: &'a Path,
    at: u64,
}

impl<'a> StorageWriter<'a> {
    pub(crate) fn new(storage: &'a dyn Storage, file: &'a File, path: &'a Path) -> Self {
        StorageWriter {
            storage,
            file,
            path,
            at: 0,
        }
    }
}

impl Write for StorageWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.storage.write_at(self.file, self.path, buf, self.at)?;
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `bytes` to `path` crash-safely: a temporary file, written and
/// fsynced, renamed over `path`, then the directory fsynced.
pub(crate) fn replace_file(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = crate::layout::tmp_path(path);
    let file = storage.create(&tmp)?;
    storage.write_at(&file, &tmp, bytes, 0)?;
    storage.sync(&file, &tmp)?;
    storage.rename(&tmp, path)?;
    match path.parent() {
        Some(dir) => storage.sync_dir(dir),
        None => Ok(()),
    }
}
