//! Opening the entries of a log directory without trusting them.
//!
//! Anyone who can write into a log directory can put something else under
//! one of the engine's names: a symbolic link (an open that follows it
//! writes or truncates a file outside the directory), a FIFO (an open for
//! reading blocks until a writer appears, forever), a directory, a device.
//! So every open here
//! - refuses to follow a final symbolic link (`O_NOFOLLOW`),
//! - never blocks on a FIFO (`O_NONBLOCK`, which regular files ignore),
//! - hands back only a regular file, checked with `fstat` on the
//!   descriptor it opened (no window between a check and the open),
//! - creates files only with `O_EXCL`, which never follows a link either.
//!
//! Anything that is not a regular file comes back as an `io::Error`
//! carrying [`IoMarker::NotRegular`], which [`Error::io`](crate::Error)
//! turns into `Error::NotRegularFile` naming the path.

use std::fs::{self, File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::IoMarker;

use super::{DIR_MODE, FILE_MODE};

/// Flags of every open: see the module's doc.
const SAFE_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// Opens the existing regular file `path` for reading.
pub(crate) fn open_read(path: &Path) -> io::Result<File> {
    open(path, OpenOptions::new().read(true))
}

/// Opens the existing regular file `path` for reading and writing.
pub(crate) fn open_write(path: &Path) -> io::Result<File> {
    open(path, OpenOptions::new().read(true).write(true))
}

/// Opens the regular file `path` for reading and writing, creating it
/// (mode [`FILE_MODE`]) if it is missing; never truncates it.
pub(crate) fn open_or_create(path: &Path) -> io::Result<File> {
    open(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(FILE_MODE),
    )
}

/// Creates `path` as a new, empty regular file (mode [`FILE_MODE`]) for
/// reading and writing. An entry already there is a leftover of an
/// interrupted write, or was put there by someone else: its name is
/// removed (never what a link points to) and the file made afresh. A
/// directory there is an error.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    let new = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(SAFE_FLAGS)
            .open(path)
    };
    match new() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove(path)?;
            new().map_err(|e| classify(path, e))
        }
        made => made.map_err(|e| classify(path, e)),
    }
}

/// The whole of the regular file `path`, refused (`InvalidData`) when it
/// is longer than `max_bytes`: the files read whole are small, and a huge
/// one under their name must not exhaust memory.
pub(crate) fn read(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let file = open_read(path)?;
    let len = file.metadata()?.len();
    if len > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes, more than the {max_bytes} such a file can hold"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("grew past the {max_bytes} bytes such a file can hold"),
        ));
    }
    Ok(bytes)
}

fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options
        .custom_flags(SAFE_FLAGS)
        .open(path)
        .map_err(|e| classify(path, e))?;
    let file_type = file.metadata()?.file_type();
    if file_type.is_file() {
        Ok(file)
    } else {
        Err(IoMarker::NotRegular(kind(file_type)).into_io())
    }
}

/// Removes the name `path` (a link itself, never what it points to); a
/// directory there is [`IoMarker::NotRegular`].
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    fs::remove_file(path).map_err(|e| classify(path, e))
}

/// Creates the directory `path` (mode [`DIR_MODE`]): `Ok(true)` when it
/// made it, `Ok(false)` when a directory (not a link to one) is there
/// already; anything else there is `NotADirectory`, never followed.
pub(crate) fn create_dir(path: &Path) -> io::Result<bool> {
    match fs::DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let file_type = fs::symlink_metadata(path)?.file_type();
            if file_type.is_dir() {
                Ok(false)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("a {}, not a directory", kind(file_type)),
                ))
            }
        }
        Err(e) => Err(e),
    }
}

/// Renames `from` over `to`, which may be a file, a link (replaced, its
/// target untouched) or a FIFO; a directory at `to` is
/// [`IoMarker::NotRegular`].
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to).map_err(|e| {
        let raw = e.raw_os_error();
        if raw == Some(libc::EISDIR) || raw == Some(libc::ENOTEMPTY) || raw == Some(libc::EEXIST) {
            classify(to, e)
        } else {
            e
        }
    })
}

/// `e`, from an operation on `path`, as a [`IoMarker::NotRegular`] when
/// `path` names something other than a regular file (`ELOOP` for a link
/// under `O_NOFOLLOW`, `EISDIR`, `ENXIO` for a socket, ...).
fn classify(path: &Path, e: io::Error) -> io::Error {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            IoMarker::NotRegular(kind(meta.file_type())).into_io()
        }
        _ => e,
    }
}

/// What a directory entry that is not a regular file is, in words.
fn kind(file_type: FileType) -> &'static str {
    if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn found(e: io::Error) -> &'static str {
        match Error::io("x", e) {
            Error::NotRegularFile { found, .. } => found,
            other => panic!("not a NotRegularFile: {other:?}"),
        }
    }

    #[test]
    fn links_fifos_and_directories_are_refused_without_blocking_or_following() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        fs::write(&target, b"data").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RUSR).unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        for (path, what) in [
            (&link, "symbolic link"),
            (&fifo, "FIFO"),
            (&sub, "directory"),
        ] {
            assert_eq!(found(open_read(path).unwrap_err()), what);
            assert_eq!(found(open_write(path).unwrap_err()), what);
            assert_eq!(found(open_or_create(path).unwrap_err()), what);
            assert_eq!(found(read(path, 100).unwrap_err()), what);
        }
        // create_new replaces a link or a FIFO by a file of its own...
        for path in [&link, &fifo] {
            assert!(create_new(path).unwrap().metadata().unwrap().is_file());
        }
        // ...and never a directory.
        assert_eq!(found(create_new(&sub).unwrap_err()), "directory");
        assert_eq!(fs::read(&target).unwrap(), b"data");
    }

    #[test]
    fn directories_are_made_once_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        assert!(create_dir(&sub).unwrap());
        assert!(!create_dir(&sub).unwrap());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&sub, &link).unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        for path in [&link, &file] {
            let e = create_dir(path).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotADirectory, "{path:?}: {e}");
        }
    }

    #[test]
    fn regular_files_open_and_read_within_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert_eq!(
            open_read(&path).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        open_or_create(&path).unwrap();
        fs::write(&path, b"12345").unwrap();
        open_or_create(&path).unwrap();
        assert_eq!(read(&path, 5).unwrap(), b"12345", "not truncated");
        assert_eq!(
            read(&path, 4).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let made = create_new(&path).unwrap();
        assert_eq!(made.metadata().unwrap().len(), 0);
    }
}
