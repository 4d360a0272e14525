//! Which file systems keep a full disk an error, and what each one needs.
//!
//! seglog writes through shared mappings, and a store into a mapping cannot
//! return an error: when the file system finds no block for a page, at the
//! fault or at writeback, the kernel raises `SIGBUS` and the process dies.
//! Reserving every block when a segment is created (`fallocate`, or zeros
//! written) moves a full disk to an error at creation, but only where a
//! reserved block is later written in place:
//!
//! - ext2/3/4 and xfs write in place (xfs copies only extents shared by
//!   reflink, and seglog never shares one);
//! - tmpfs: `fallocate` allocates and charges the pages themselves;
//! - btrfs copies on write: every writeback of a page takes a new block,
//!   reserved or not, so on a full disk the writer died of `SIGBUS`. A
//!   file marked no-copy-on-write (`FS_NOCOW_FL`, `chattr +C`) while still
//!   empty is written in place, and [`prepare_segment`] marks each segment
//!   so; but a write fault into a mapping still reserves data space first
//!   (`btrfs_page_mkwrite`), and on a full btrfs that reservation was seen
//!   to block the writer in the kernel for over ten minutes (Linux 6.18,
//!   docs/RELIABILITY.md, "File systems"). Neither can be turned into an
//!   error, so btrfs is refused like the rest below.
//!
//! Anything else (btrfs, zfs, bcachefs, f2fs, network and FUSE file
//! systems, overlayfs, ramfs, ...) is refused by [`check_log_dir`] unless
//! the caller accepts the risk; segments made on btrfs then are still
//! marked no-copy-on-write, which removes the certain `SIGBUS`.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{Access, AtFlags, IFlags};

use crate::error::{Error, IoMarker, Result};

const EXT_MAGIC: u32 = 0xEF53;
const XFS_MAGIC: u32 = 0x5846_5342;
const BTRFS_MAGIC: u32 = 0x9123_683E;
const TMPFS_MAGIC: u32 = 0x0102_1994;

/// Names of the file systems seglog refuses, by `statfs` magic number.
const OTHERS: &[(u32, &str)] = &[
    (0x2FC1_2FC1, "zfs"),
    (0xCA45_1A4E, "bcachefs"),
    (0xF2F5_2010, "f2fs"),
    (0x0000_6969, "nfs"),
    (0xFF53_4D42, "cifs"),
    (0xFE53_4D42, "smb2"),
    (0x0102_1997, "9p"),
    (0x6573_5546, "fuse"),
    (0x794C_7630, "overlayfs"),
    (0x8584_58F6, "ramfs"),
    (0x0000_3434, "nilfs2"),
    (0x0000_F15F, "ecryptfs"),
    (0x0000_4D44, "vfat"),
    (0x2011_BAB0, "exfat"),
    (0x7366_746E, "ntfs3"),
];

/// What seglog knows of a file system.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FsKind {
    /// Reserved blocks are written in place.
    InPlace(&'static str),
    /// A full disk may block or kill the writer: its name and why.
    Unsupported(String, &'static str),
}

const UNKNOWN_REASON: &str = "seglog cannot keep a full disk from raising SIGBUS in the writer";
const BTRFS_REASON: &str = "a full disk blocks the writer in the kernel or kills it with SIGBUS, \
     even in no-copy-on-write segments";

fn kind(magic: u32) -> FsKind {
    match magic {
        EXT_MAGIC => FsKind::InPlace("ext4"),
        XFS_MAGIC => FsKind::InPlace("xfs"),
        TMPFS_MAGIC => FsKind::InPlace("tmpfs"),
        BTRFS_MAGIC => FsKind::Unsupported("btrfs".into(), BTRFS_REASON),
        _ => FsKind::Unsupported(
            OTHERS.iter().find(|(m, _)| *m == magic).map_or_else(
                || format!("a file system of magic {magic:#x}"),
                |(_, n)| (*n).to_string(),
            ),
            UNKNOWN_REASON,
        ),
    }
}

/// The magic number of the file system holding `file`. `f_type` is a
/// `long`; every magic number fits in its low 32 bits.
fn magic_of(file: &File) -> io::Result<u32> {
    Ok(rustix::fs::fstatfs(file)?.f_type as u32)
}

/// Checks, before a `Log` opens `dir` for writing, that its file system
/// keeps a full disk an error (unless `allow_unsupported`), and that the
/// directory is writable, so that neither shows up later at a segment
/// creation or a close.
pub(crate) fn check_log_dir(dir: &Path, allow_unsupported: bool) -> Result<()> {
    let magic = rustix::fs::statfs(dir)
        .map_err(|e| Error::io(dir, e.into()))?
        .f_type as u32;
    if let FsKind::Unsupported(filesystem, reason) = kind(magic)
        && !allow_unsupported
    {
        return Err(Error::UnsupportedFilesystem {
            dir: dir.to_path_buf(),
            filesystem,
            reason: reason.into(),
        });
    }
    // The effective ids decide, as they do for the files made later; the
    // kernel's check also sees a read-only mount (EROFS) and ACLs.
    match rustix::fs::accessat(
        rustix::fs::CWD,
        dir,
        Access::WRITE_OK | Access::EXEC_OK,
        AtFlags::EACCESS,
    ) {
        Ok(()) => Ok(()),
        Err(
            e @ (rustix::io::Errno::ACCESS | rustix::io::Errno::ROFS | rustix::io::Errno::PERM),
        ) => Err(Error::DirectoryNotWritable {
            dir: dir.to_path_buf(),
            source: e.into(),
        }),
        Err(e) => Err(Error::io(dir, e.into())),
    }
}

/// Makes the new, still empty segment file `file` one whose reserved
/// blocks are written in place: on btrfs (opened only when the caller
/// accepted it), marks it no-copy-on-write (and not compressed: btrfs
/// refuses both at once), and checks that the mark took. Elsewhere
/// nothing is needed.
pub(crate) fn prepare_segment(file: &File) -> io::Result<()> {
    if magic_of(file)? != BTRFS_MAGIC {
        return Ok(());
    }
    let flags = rustix::fs::ioctl_getflags(file)?;
    if !flags.contains(IFlags::NOCOW) {
        let wanted = (flags - IFlags::COMPRESSED) | IFlags::NOCOW;
        rustix::fs::ioctl_setflags(file, wanted).map_err(|e| not_nocow(&e.to_string()))?;
    }
    // btrfs ignores the mark on a file that holds data; read it back.
    if rustix::fs::ioctl_getflags(file)?.contains(IFlags::NOCOW) {
        Ok(())
    } else {
        Err(not_nocow("the flag did not hold"))
    }
}

fn not_nocow(why: &str) -> io::Error {
    IoMarker::Unsupported {
        filesystem: "btrfs".into(),
        reason: format!("a segment file could not be made no-copy-on-write ({why}), so a full disk would raise SIGBUS"),
    }
    .into_io()
}

/// Whether writing into the existing segment `file` copies on write: a
/// segment on btrfs made before seglog marked them (a full disk while it is
/// written raises `SIGBUS`).
pub(crate) fn copies_on_write(file: &File) -> io::Result<bool> {
    if magic_of(file)? != BTRFS_MAGIC {
        return Ok(false);
    }
    Ok(!rustix::fs::ioctl_getflags(file)?.contains(IFlags::NOCOW))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_systems_are_known_by_their_magic() {
        assert_eq!(kind(0xEF53), FsKind::InPlace("ext4"));
        assert_eq!(kind(0x5846_5342), FsKind::InPlace("xfs"));
        assert_eq!(kind(0x0102_1994), FsKind::InPlace("tmpfs"));
        assert_eq!(
            kind(0x9123_683E),
            FsKind::Unsupported("btrfs".into(), BTRFS_REASON)
        );
        assert_eq!(
            kind(0x2FC1_2FC1),
            FsKind::Unsupported("zfs".into(), UNKNOWN_REASON)
        );
        assert_eq!(
            kind(0x1234),
            FsKind::Unsupported("a file system of magic 0x1234".into(), UNKNOWN_REASON)
        );
    }

    #[test]
    fn a_temporary_directory_here_is_supported_and_writable() {
        let dir = tempfile::tempdir().unwrap();
        check_log_dir(dir.path(), false).unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        prepare_segment(&file).unwrap();
        assert!(!copies_on_write(&file).unwrap());
    }
}
