//! What someone who can write into a log directory may put under the
//! engine's names: symbolic links, FIFOs and directories named like the
//! lock file, a segment, an index file, the quarantine list, a consumer's
//! checkpoint and the engine's temporary files; and a directory that is
//! not writable. Nothing outside the directory is ever written or
//! truncated, no open blocks, and each case ends in its documented outcome
//! (docs/RELIABILITY.md, "hostile directory entries" in the table).

mod common;

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use seglog::{Durability, Error, EventData, ExpectedVersion, Log, Options, Position, Reader};

/// Longer than any open of these small logs takes, however loaded the
/// machine: only a blocked open reaches it.
const HANG: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum Hostile {
    Symlink,
    Fifo,
    Directory,
}

const EVERY_KIND: [Hostile; 3] = [Hostile::Symlink, Hostile::Fifo, Hostile::Directory];

impl Hostile {
    /// What `Error::NotRegularFile` says it found.
    fn found(self) -> &'static str {
        match self {
            Hostile::Symlink => "symbolic link",
            Hostile::Fifo => "FIFO",
            Hostile::Directory => "directory",
        }
    }

    /// Puts an entry of this kind at `path`, replacing whatever was there;
    /// a link points at `outside`.
    fn plant(self, path: &Path, outside: &Outside) {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(path).expect("remove dir"),
            Ok(_) => fs::remove_file(path).expect("remove file"),
            Err(_) => {}
        }
        match self {
            Hostile::Symlink => std::os::unix::fs::symlink(&outside.path, path).expect("symlink"),
            Hostile::Fifo => {
                rustix::fs::mkfifoat(rustix::fs::CWD, path, rustix::fs::Mode::from(0o600))
                    .expect("mkfifo");
            }
            Hostile::Directory => fs::create_dir(path).expect("mkdir"),
        }
    }
}

/// A file outside the log directory that a followed link would damage.
struct Outside {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Outside {
    fn new(bytes: &[u8]) -> Outside {
        let dir = tempdir();
        let path = dir.path().join("precious");
        fs::write(&path, bytes).expect("write outside file");
        Outside {
            _dir: dir,
            path,
            bytes: bytes.to_vec(),
        }
    }

    /// A copy of `file` outside the directory.
    fn copy_of(file: &Path) -> Outside {
        Outside::new(&fs::read(file).expect("read file to copy"))
    }

    fn assert_intact(&self) {
        let now = fs::read(&self.path).expect("outside file still there");
        assert!(now == self.bytes, "the file outside the log was changed");
    }
}

/// Runs `f` on another thread; fails if it has not returned within
/// [`HANG`], after opening `fifo` for writing to release the blocked open.
fn within<T: Send + 'static>(fifo: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(_) => {
            let _ = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(fifo);
            panic!("an open blocked on {fifo:?} for {HANG:?}");
        }
    }
}

fn options() -> Options {
    Options::new()
        .segment_size(MIB)
        .durability(Durability::None)
}

/// A closed log of two segments (the first sealed) in `dir`, and its events.
fn two_segments(dir: &Path) -> Vec<Ev> {
    let log = options().open(dir).expect("open");
    for i in 0..700u64 {
        let event = EventData::new("E", payload_for(i, 2_000));
        log.append(&format!("s-{}", i % 5), ExpectedVersion::Any, &[event])
            .expect("append");
    }
    let events = snapshot(&log);
    log.close().expect("close");
    assert!(seg_path(dir, MIB).exists(), "two segments");
    events
}

fn reader_events(reader: &Reader) -> Vec<Ev> {
    reader
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| Ev::from(&e.expect("event")))
        .collect()
}

fn assert_not_regular<T: std::fmt::Debug>(got: seglog::Result<T>, path: &Path, kind: Hostile) {
    match got {
        Err(Error::NotRegularFile { path: p, found }) => {
            assert_eq!((p.as_path(), found), (path, kind.found()));
        }
        other => panic!("{kind:?} at {path:?}: expected NotRegularFile, got {other:?}"),
    }
}

fn open_log(dir: &Path, blocker: &Path) -> seglog::Result<Log> {
    let dir = dir.to_path_buf();
    within(blocker, move || options().open(dir))
}

fn open_reader(dir: &Path, blocker: &Path) -> seglog::Result<Reader> {
    let dir = dir.to_path_buf();
    within(blocker, move || Reader::open(dir))
}

/// Each kind of entry at `path` makes both `Log::open` and `Reader::open`
/// fail naming it, and leaves `outside` as it was; the last (a directory)
/// is removed after.
fn refused_by_log_and_reader(dir: &Path, path: &Path, outside: &Outside) {
    for kind in EVERY_KIND {
        kind.plant(path, outside);
        assert_not_regular(open_log(dir, path), path, kind);
        assert_not_regular(open_reader(dir, path), path, kind);
        outside.assert_intact();
    }
    fs::remove_dir(path).expect("remove the directory");
}

#[test]
fn a_lock_file_that_is_a_link_a_fifo_or_a_directory_is_refused_and_nothing_outside_changes() {
    // The case first: a fresh directory whose lock is a link.
    let outside = Outside::new(b"data\n");
    let tmp = tempdir();
    let fresh = tmp.path().join("log");
    fs::create_dir(&fresh).expect("mkdir");
    let lock = fresh.join("seglog.lock");
    Hostile::Symlink.plant(&lock, &outside);
    assert_not_regular(open_log(&fresh, &lock), &lock, Hostile::Symlink);
    outside.assert_intact();

    let dir = tempdir();
    let events = two_segments(dir.path());
    let lock = dir.path().join("seglog.lock");
    for kind in EVERY_KIND {
        kind.plant(&lock, &outside);
        assert_not_regular(open_log(dir.path(), &lock), &lock, kind);
        // A reader takes no lock: it reads the log as it is.
        let reader = open_reader(dir.path(), &lock).expect("reader");
        assert_eq!(reader_events(&reader), events);
        outside.assert_intact();
    }
    fs::remove_dir(&lock).expect("remove the directory");
    let log = options()
        .open(dir.path())
        .expect("open once the entry is gone");
    assert_eq!(snapshot(&log), events);
}

#[test]
fn a_segment_that_is_a_link_a_fifo_or_a_directory_is_refused_by_log_and_reader() {
    let dir = tempdir();
    let events = two_segments(dir.path());
    // The first segment (where a reader starts) and the active one (which
    // open writes into).
    for base in [0, MIB] {
        let path = seg_path(dir.path(), base);
        let outside = Outside::copy_of(&path);
        fs::rename(&path, dir.path().join("kept")).expect("move the segment aside");
        refused_by_log_and_reader(dir.path(), &path, &outside);
        fs::rename(dir.path().join("kept"), &path).expect("put the segment back");
    }
    let log = options().open(dir.path()).expect("open");
    assert_eq!(snapshot(&log), events);
}

#[test]
fn an_index_file_that_is_a_link_a_fifo_or_a_directory_is_ignored_and_rebuilt() {
    let dir = tempdir();
    let events = two_segments(dir.path());
    let sealed_index = dir.path().join(format!("{:020}.idx", 0));
    let outside = Outside::copy_of(&sealed_index);
    for kind in EVERY_KIND {
        kind.plant(&sealed_index, &outside);
        let reader = open_reader(dir.path(), &sealed_index).expect("reader");
        assert_eq!(reader_events(&reader), events, "{kind:?}: reader");
        drop(reader);
        let log = open_log(dir.path(), &sealed_index).expect("open");
        assert_eq!(snapshot(&log), events, "{kind:?}");
        let stream: Vec<Ev> = log
            .read_stream("s-3", 0)
            .expect("read_stream")
            .map(|e| Ev::from(&e.expect("event")))
            .collect();
        let expected: Vec<&Ev> = events.iter().filter(|e| e.stream == "s-3").collect();
        assert_eq!(stream.iter().collect::<Vec<_>>(), expected, "{kind:?}");
        log.close().expect("close");
        outside.assert_intact();
        // Open rebuilt the file over a link or a FIFO; it leaves a
        // directory (someone else's) where it is.
        let now = fs::symlink_metadata(&sealed_index).expect("entry");
        match kind {
            Hostile::Directory => assert!(now.is_dir()),
            _ => assert!(now.is_file(), "{kind:?}: rebuilt as a regular file"),
        }
    }

    // A directory where close must write the active segment's index: the
    // close reports it, and loses nothing.
    let active_index = dir.path().join(format!("{MIB:020}.idx"));
    Hostile::Directory.plant(&active_index, &outside);
    let log = options().open(dir.path()).expect("open");
    assert_not_regular(log.close(), &active_index, Hostile::Directory);
    let log = options().open(dir.path()).expect("open again");
    assert_eq!(snapshot(&log), events);
}

#[test]
fn a_quarantine_list_that_is_a_link_a_fifo_or_a_directory_is_refused() {
    let dir = tempdir();
    let events = two_segments(dir.path());
    let path = dir.path().join("quarantine");
    let outside = Outside::new(b"not a quarantine list\n");
    refused_by_log_and_reader(dir.path(), &path, &outside);
    assert_eq!(snapshot(&options().open(dir.path()).expect("open")), events);
}

#[test]
fn a_checkpoint_that_is_a_link_a_fifo_or_a_directory_is_refused() {
    let dir = tempdir();
    two_segments(dir.path());
    // "billing" in hex.
    let path = dir.path().join("consumer-62696c6c696e67.ckpt");
    let outside = Outside::new(b"not a checkpoint");
    for kind in EVERY_KIND {
        kind.plant(&path, &outside);
        let d = dir.path().to_path_buf();
        let got = within(&path, move || {
            let log = options().open(&d).expect("open");
            log.consumer("billing").map(|c| c.checkpointed())
        });
        assert_not_regular(got, &path, kind);
        let d = dir.path().to_path_buf();
        let got = within(&path, move || {
            let reader = Reader::open(&d).expect("reader");
            reader.consumer("billing").map(|c| c.checkpointed())
        });
        assert_not_regular(got, &path, kind);
        outside.assert_intact();
    }
}

#[test]
fn only_the_engines_own_temporary_files_are_removed_and_none_is_followed() {
    let dir = tempdir();
    let events = two_segments(dir.path());
    let outside = Outside::new(b"precious");
    let notes = dir.path().join("notes.tmp");
    fs::write(&notes, b"mine").expect("write notes");
    let leftovers = [
        format!("{:020}.seg.tmp", 2 * MIB),
        format!("{:020}.idx.tmp", 0),
        "quarantine.tmp".to_string(),
        "consumer-62696c6c696e67.ckpt.tmp".to_string(),
    ];
    for (name, kind) in leftovers.iter().zip([
        Hostile::Symlink,
        Hostile::Fifo,
        Hostile::Symlink,
        Hostile::Fifo,
    ]) {
        kind.plant(&dir.path().join(name), &outside);
    }
    let log = open_log(dir.path(), &dir.path().join(&leftovers[1])).expect("open");
    for name in &leftovers {
        assert!(
            fs::symlink_metadata(dir.path().join(name)).is_err(),
            "{name} left"
        );
    }
    assert_eq!(fs::read(&notes).expect("notes.tmp kept"), b"mine");

    // Links planted under the names the engine writes next are replaced,
    // not followed: a checkpoint's, the active index's at close.
    let ckpt_tmp = dir.path().join(&leftovers[3]);
    Hostile::Symlink.plant(&ckpt_tmp, &outside);
    let mut consumer = log.consumer("billing").expect("consumer");
    let last = events.last().expect("events").position;
    consumer.ack(last).expect("ack");
    consumer.checkpoint().expect("checkpoint");
    drop(consumer);
    let index_tmp = dir.path().join(format!("{MIB:020}.idx.tmp"));
    Hostile::Symlink.plant(&index_tmp, &outside);
    log.close().expect("close");
    outside.assert_intact();
    let log = options().open(dir.path()).expect("reopen");
    assert_eq!(
        log.consumer("billing").expect("consumer").checkpointed(),
        Some(last)
    );
    drop(log);

    // A directory under one of those names is an error at open, not a
    // failed write later.
    let seg_tmp = dir.path().join(&leftovers[0]);
    Hostile::Directory.plant(&seg_tmp, &outside);
    assert_not_regular(options().open(dir.path()), &seg_tmp, Hostile::Directory);
}

/// Drops the capabilities that let root ignore file permissions, for the
/// calling thread only (Linux keeps them per thread): root then meets
/// permissions as any user does.
fn drop_permission_override() {
    use caps::{CapSet, Capability};
    for cap in [
        Capability::CAP_DAC_OVERRIDE,
        Capability::CAP_DAC_READ_SEARCH,
        Capability::CAP_FOWNER,
    ] {
        caps::drop(None, CapSet::Effective, cap).expect("drop a capability");
    }
}

#[test]
fn a_directory_that_is_not_writable_is_refused_at_open_and_a_reader_still_reads_it() {
    let dir = tempdir();
    let events = two_segments(dir.path());
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).expect("chmod");
    let d = dir.path().to_path_buf();
    let (log, read) = std::thread::spawn(move || {
        drop_permission_override();
        let log = options().open(&d).map(|_| ());
        let reader = Reader::open(&d).expect("reader");
        (log, reader_events(&reader))
    })
    .join()
    .expect("thread");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod back");
    match log {
        Err(Error::DirectoryNotWritable { dir: d, source }) => {
            assert_eq!(d, dir.path());
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
        }
        other => panic!("expected DirectoryNotWritable, got {other:?}"),
    }
    assert_eq!(read, events);
}
