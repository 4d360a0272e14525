//! Snapshots: save and load per stream, the newest at or before a version,
//! the newest K kept, damaged / foreign / old-schema / too-new files
//! skipped with a fallback, deletion losing nothing, the bad-input errors,
//! `append_with_snapshot`, a `Reader`'s loads, and rebuilds with a bound.

use std::path::{Path, PathBuf};

use seglog::{
    Error, EventData, ExpectedVersion, Log, Options, Reader, Rebuilt, RecordedEvent, Snapshot,
    limits,
};

/// The aggregate of these tests: an account's balance and how many
/// movements made it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Account {
    balance: i64,
    movements: u64,
}

impl Account {
    fn apply(&mut self, e: &RecordedEvent) {
        let amount = i64::from_le_bytes(e.payload()[..8].try_into().unwrap());
        self.balance += amount;
        self.movements += 1;
    }

    fn encode(&self) -> Vec<u8> {
        [self.balance.to_le_bytes(), self.movements.to_le_bytes()].concat()
    }

    fn decode(s: &Snapshot) -> Result<Account, String> {
        let b = s.bytes();
        if b.len() != 16 {
            return Err(format!("{} bytes, not 16", b.len()));
        }
        Ok(Account {
            balance: i64::from_le_bytes(b[..8].try_into().unwrap()),
            movements: u64::from_le_bytes(b[8..].try_into().unwrap()),
        })
    }
}

fn movement(amount: i64) -> EventData {
    EventData::new("Moved", amount.to_le_bytes().to_vec())
}

/// Appends movements 1, 2, ... `n` to `stream`, one per append.
fn fill(log: &Log, stream: &str, n: i64) {
    for amount in 1..=n {
        log.append(stream, ExpectedVersion::Any, &[movement(amount)])
            .unwrap();
    }
}

/// The account by replaying `stream` from its first event up to `to`.
fn replay(log: &Log, stream: &str, to: u64) -> Account {
    let mut account = Account::default();
    for e in log.read_stream(stream, 0).unwrap() {
        let e = e.unwrap();
        if e.version() <= to {
            account.apply(&e);
        }
    }
    account
}

/// Saves the replayed state of `stream` at `version`, in schema `schema`.
fn save(log: &Log, stream: &str, version: u64, schema: u16) {
    let state = replay(log, stream, version);
    log.save_snapshot(stream, version, schema, state.encode())
        .unwrap();
}

fn rebuild(log: &Log, stream: &str, schema: u16) -> Rebuilt<Account> {
    log.rebuild(
        stream,
        schema,
        Account::decode,
        Account::default,
        Account::apply,
    )
    .unwrap()
}

fn loaded(log: &Log, stream: &str, at_or_before: u64) -> Option<u64> {
    log.load_snapshot(stream, at_or_before)
        .unwrap()
        .map(|s| s.version())
}

/// The file of `stream`'s snapshot at `version` (docs/FORMAT.md).
fn snapshot_path(dir: &Path, stream: &str, version: u64) -> PathBuf {
    let hex: String = stream.bytes().map(|b| format!("{b:02x}")).collect();
    dir.join("snapshots")
        .join(hex)
        .join(format!("{version:020}.snap"))
}

#[test]
fn save_and_load_round_trip_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct-1", 5);
    fill(&log, "acct-2", 2);
    log.save_snapshot("acct-1", 2, 7, &b"state at 2"[..])
        .unwrap();
    let s = log.load_snapshot("acct-1", u64::MAX).unwrap().unwrap();
    assert_eq!(
        (s.stream(), s.version(), s.schema_version()),
        ("acct-1", 2, 7)
    );
    assert_eq!(&s.bytes()[..], b"state at 2");
    assert_eq!(loaded(&log, "acct-2", u64::MAX), None, "streams apart");
    log.close().unwrap();

    let log = Log::open(dir.path()).unwrap();
    let again = log.load_snapshot("acct-1", u64::MAX).unwrap().unwrap();
    assert_eq!(again, s);
    assert_eq!(again.into_bytes(), &b"state at 2"[..]);
}

#[test]
fn the_newest_at_or_before_a_version_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 8);
    for version in [1, 3, 5] {
        save(&log, "acct", version, 1);
    }
    assert_eq!(loaded(&log, "acct", 0), None);
    assert_eq!(loaded(&log, "acct", 1), Some(1));
    assert_eq!(loaded(&log, "acct", 2), Some(1));
    assert_eq!(loaded(&log, "acct", 4), Some(3));
    assert_eq!(loaded(&log, "acct", 5), Some(5));
    // A bound past the stream's end is the newest.
    assert_eq!(loaded(&log, "acct", 7), Some(5));
    assert_eq!(loaded(&log, "acct", u64::MAX), Some(5));
}

#[test]
fn the_newest_k_are_kept_and_k_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let log = Options::new().snapshots_kept(2).open(dir.path()).unwrap();
    fill(&log, "acct", 8);
    for version in 0..6 {
        save(&log, "acct", version, 1);
    }
    assert_eq!(log.snapshot_versions("acct"), vec![5, 4]);
    let files = std::fs::read_dir(snapshot_path(dir.path(), "acct", 0).parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(files, 2, "older files removed, no temporary left");
    // An older version than the K newest is saved, then pruned at once.
    save(&log, "acct", 1, 1);
    assert_eq!(log.snapshot_versions("acct"), vec![5, 4]);
    // Saving at a version that has one replaces it.
    log.save_snapshot("acct", 5, 2, &b"replaced"[..]).unwrap();
    let s = log.load_snapshot("acct", 5).unwrap().unwrap();
    assert_eq!((s.schema_version(), &s.bytes()[..]), (2, &b"replaced"[..]));
    log.close().unwrap();

    let default = Log::open(dir.path()).unwrap();
    for version in [6, 7] {
        save(&default, "acct", version, 1);
    }
    assert_eq!(
        default.snapshot_versions("acct").len(),
        limits::DEFAULT_SNAPSHOTS_KEPT
    );
    default.close().unwrap();
    for bad in [0, limits::MAX_SNAPSHOTS_KEPT + 1] {
        match Options::new().snapshots_kept(bad).open(dir.path()) {
            Err(Error::InvalidOption { name, .. }) => assert_eq!(name, "snapshots_kept"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 6);
    for version in [1, 3, 5] {
        save(&log, "acct", version, 1);
    }
    // A flipped byte in the newest, a truncated middle one.
    let newest = snapshot_path(dir.path(), "acct", 5);
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0x10;
    std::fs::write(&newest, &bytes).unwrap();
    assert_eq!(loaded(&log, "acct", u64::MAX), Some(3));
    let middle = snapshot_path(dir.path(), "acct", 3);
    let len = std::fs::metadata(&middle).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&middle)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_eq!(loaded(&log, "acct", u64::MAX), Some(1));
    let r = rebuild(&log, "acct", 1);
    assert_eq!(r.from_snapshot, Some(1));
    assert_eq!((r.state, r.version), (replay(&log, "acct", 5), Some(5)));
    // A file under another version's name is skipped too.
    std::fs::copy(
        snapshot_path(dir.path(), "acct", 1),
        snapshot_path(dir.path(), "acct", 4),
    )
    .unwrap();
    assert_eq!(loaded(&log, "acct", u64::MAX), Some(1));
    // With every file damaged, a rebuild replays the events.
    std::fs::write(snapshot_path(dir.path(), "acct", 1), b"junk").unwrap();
    assert_eq!(loaded(&log, "acct", u64::MAX), None);
    let r = rebuild(&log, "acct", 1);
    assert_eq!((r.from_snapshot, r.state), (None, replay(&log, "acct", 5)));
}

#[test]
fn a_snapshot_of_another_stream_or_log_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let foreign = Log::open(other.path()).unwrap();
    fill(&log, "acct", 4);
    fill(&log, "bcct", 4);
    fill(&foreign, "acct", 4);
    save(&log, "acct", 1, 1);
    save(&log, "bcct", 3, 1);
    save(&foreign, "acct", 3, 1);
    // Another log's file and another stream's, each under acct's names.
    std::fs::copy(
        snapshot_path(other.path(), "acct", 3),
        snapshot_path(dir.path(), "acct", 3),
    )
    .unwrap();
    std::fs::copy(
        snapshot_path(dir.path(), "bcct", 3),
        snapshot_path(dir.path(), "acct", 2),
    )
    .unwrap();
    assert_eq!(log.snapshot_versions("acct"), vec![3, 2, 1]);
    assert_eq!(loaded(&log, "acct", u64::MAX), Some(1));
}

/// A copy of the log taken before its last events, with the snapshot
/// directory of later: the snapshot names a version the copy does not
/// have (as after a crash that cut a torn tail), and is skipped.
#[test]
fn a_snapshot_past_the_streams_end_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let older = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 3);
    save(&log, "acct", 1, 1);
    log.close().unwrap();
    copy_dir(dir.path(), older.path());
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 3);
    save(&log, "acct", 4, 1);
    log.close().unwrap();
    std::fs::remove_dir_all(older.path().join("snapshots")).unwrap();
    copy_dir(
        &dir.path().join("snapshots"),
        &older.path().join("snapshots"),
    );

    let log = Log::open(older.path()).unwrap();
    assert_eq!(log.stream_version("acct"), Some(2));
    assert_eq!(log.snapshot_versions("acct"), vec![4, 1]);
    assert_eq!(loaded(&log, "acct", u64::MAX), Some(1));
    let r = rebuild(&log, "acct", 1);
    assert_eq!((r.from_snapshot, r.version), (Some(1), Some(2)));
    assert_eq!(r.state, replay(&log, "acct", 2));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "seglog.lock" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn an_old_schema_or_an_undecodable_snapshot_is_skipped_by_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 9);
    save(&log, "acct", 2, 1);
    save(&log, "acct", 5, 2);
    log.save_snapshot("acct", 7, 2, &b"not an account"[..])
        .unwrap();
    let full = replay(&log, "acct", 8);
    // Schema 2: the newest (7) does not decode, 5 does.
    let r = rebuild(&log, "acct", 2);
    assert_eq!(
        (r.from_snapshot, r.version, r.state),
        (Some(5), Some(8), full)
    );
    // Schema 1: only 2 is of it.
    let r = rebuild(&log, "acct", 1);
    assert_eq!((r.from_snapshot, r.state), (Some(2), full));
    // Schema 3: none; the events alone.
    let r = rebuild(&log, "acct", 3);
    assert_eq!((r.from_snapshot, r.state), (None, full));
    // load_snapshot hands any schema out: the caller decides.
    assert_eq!(loaded(&log, "acct", u64::MAX), Some(7));
}

#[test]
fn deleting_the_snapshots_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 20);
    save(&log, "acct", 9, 1);
    save(&log, "acct", 15, 1);
    let with = rebuild(&log, "acct", 1);
    assert_eq!(with.from_snapshot, Some(15));
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    let without = rebuild(&log, "acct", 1);
    assert_eq!(without.from_snapshot, None);
    assert_eq!((without.state, without.version), (with.state, with.version));
    assert_eq!(without.state, replay(&log, "acct", 19));
    // The directory is made again by the next save, in the same session.
    save(&log, "acct", 19, 1);
    assert_eq!(rebuild(&log, "acct", 1).from_snapshot, Some(19));
    log.close().unwrap();
    std::fs::remove_dir_all(dir.path().join("snapshots")).unwrap();
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(rebuild(&log, "acct", 1).state, replay(&log, "acct", 19));
}

#[test]
fn bad_input_gets_its_own_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 3);
    match log.save_snapshot("nobody", 0, 1, &b"x"[..]) {
        Err(Error::UnknownStream { stream }) => assert_eq!(stream, "nobody"),
        other => panic!("{other:?}"),
    }
    match log.save_snapshot("acct", 3, 1, &b"x"[..]) {
        Err(Error::SnapshotAhead {
            stream,
            version,
            last_version,
        }) => assert_eq!((stream.as_str(), version, last_version), ("acct", 3, 2)),
        other => panic!("{other:?}"),
    }
    let huge = vec![0u8; limits::MAX_SNAPSHOT_BYTES + 1];
    match log.save_snapshot("acct", 2, 1, huge.clone()) {
        Err(Error::SnapshotTooLarge {
            size_bytes,
            max_bytes,
            ..
        }) => assert_eq!(
            (size_bytes, max_bytes),
            (huge.len() as u64, limits::MAX_SNAPSHOT_BYTES as u64)
        ),
        other => panic!("{other:?}"),
    }
    let refused =
        log.append_with_snapshot("acct", ExpectedVersion::Exact(2), &[movement(1)], 1, huge);
    assert!(
        matches!(refused, Err(Error::SnapshotTooLarge { .. })),
        "{refused:?}"
    );
    assert_eq!(log.stream_version("acct"), Some(2), "no event appended");
    assert!(matches!(
        log.save_snapshot("", 0, 1, &b"x"[..]),
        Err(Error::EmptyStreamName)
    ));
    let long = "x".repeat(limits::MAX_STREAM_NAME_BYTES + 1);
    assert!(matches!(
        log.save_snapshot(&long, 0, 1, &b"x"[..]),
        Err(Error::StreamNameTooLong { .. })
    ));
    assert!(!dir.path().join("snapshots").exists(), "nothing written");
    // Loads and rebuilds of what does not exist are documented results.
    assert_eq!(loaded(&log, "nobody", u64::MAX), None);
    assert_eq!(loaded(&log, "", u64::MAX), None);
    assert_eq!(loaded(&log, &long, u64::MAX), None);
    assert_eq!(log.snapshot_versions("nobody"), Vec::<u64>::new());
    let r = rebuild(&log, "nobody", 1);
    assert_eq!(
        (r.state, r.version, r.from_snapshot),
        (Account::default(), None, None)
    );
    let past_end = log
        .rebuild_at(
            "acct",
            1_000,
            1,
            Account::decode,
            Account::default,
            Account::apply,
        )
        .unwrap();
    assert_eq!(past_end.version, Some(2));
}

#[test]
fn append_with_snapshot_writes_both() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let mut account = Account::default();
    let events = [movement(50), movement(-20), movement(5)];
    for (i, _) in events.iter().enumerate() {
        account.balance += [50, -20, 5][i];
        account.movements += 1;
    }
    let r = log
        .append_with_snapshot(
            "acct",
            ExpectedVersion::NoStream,
            &events,
            1,
            account.encode(),
        )
        .unwrap();
    assert_eq!((r.first_version, r.last_version), (0, 2));
    let s = log.load_snapshot("acct", u64::MAX).unwrap().unwrap();
    assert_eq!(s.version(), 2);
    assert_eq!(Account::decode(&s).unwrap(), account);
    assert_eq!(account, replay(&log, "acct", 2));
    // A refused append writes no snapshot either.
    let stale = log.append_with_snapshot(
        "acct",
        ExpectedVersion::NoStream,
        &[movement(1)],
        1,
        vec![0; 16],
    );
    assert!(
        matches!(stale, Err(Error::WrongExpectedVersion { .. })),
        "{stale:?}"
    );
    assert_eq!(log.snapshot_versions("acct"), vec![2]);
    let r = rebuild(&log, "acct", 1);
    assert_eq!((r.from_snapshot, r.state), (Some(2), account));
}

#[test]
fn a_reader_loads_snapshots_and_rebuilds_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 6);
    save(&log, "acct", 3, 1);
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(
        reader
            .load_snapshot("acct", u64::MAX)
            .unwrap()
            .map(|s| s.version()),
        Some(3)
    );
    // What the writer does after the reader opened, the reader sees.
    fill(&log, "acct", 2);
    save(&log, "acct", 7, 1);
    let s = reader.load_snapshot("acct", u64::MAX).unwrap().unwrap();
    assert_eq!(s, log.load_snapshot("acct", u64::MAX).unwrap().unwrap());
    let r = reader
        .rebuild("acct", 1, Account::decode, Account::default, Account::apply)
        .unwrap();
    assert_eq!(
        (r.from_snapshot, r.state),
        (Some(7), replay(&log, "acct", 7))
    );
    let at = reader
        .rebuild_at(
            "acct",
            5,
            1,
            Account::decode,
            Account::default,
            Account::apply,
        )
        .unwrap();
    assert_eq!((at.from_snapshot, at.version), (Some(3), Some(5)));
    assert_eq!(reader.load_snapshot("nobody", u64::MAX).unwrap(), None);
    // A damaged file is skipped by the reader too, and left in place.
    let newest = snapshot_path(dir.path(), "acct", 7);
    std::fs::write(&newest, b"damaged").unwrap();
    assert_eq!(
        reader
            .load_snapshot("acct", u64::MAX)
            .unwrap()
            .map(|s| s.version()),
        Some(3)
    );
    assert!(newest.exists(), "a reader removes nothing");
}

#[test]
fn rebuild_with_a_bound_starts_from_a_snapshot_at_or_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    fill(&log, "acct", 10);
    save(&log, "acct", 3, 1);
    save(&log, "acct", 7, 1);
    for bound in 0..12u64 {
        let r = log
            .rebuild_at(
                "acct",
                bound,
                1,
                Account::decode,
                Account::default,
                Account::apply,
            )
            .unwrap();
        let expect_from = [7, 3].into_iter().find(|&v| v <= bound);
        assert_eq!(r.from_snapshot, expect_from, "bound {bound}");
        assert_eq!(r.version, Some(bound.min(9)), "bound {bound}");
        assert_eq!(r.state, replay(&log, "acct", bound), "bound {bound}");
    }
}

#[test]
fn a_long_stream_name_gets_a_hashed_directory_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let long = "é".repeat(limits::MAX_STREAM_NAME_BYTES / 2);
    let longer_twin = format!("{}x", &long[..long.len() - 2]);
    fill(&log, &long, 3);
    fill(&log, &longer_twin, 3);
    save(&log, &long, 1, 1);
    save(&log, &longer_twin, 2, 1);
    assert_eq!(loaded(&log, &long, u64::MAX), Some(1));
    assert_eq!(loaded(&log, &longer_twin, u64::MAX), Some(2));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.iter().all(|n| n.starts_with("h-") && n.len() == 34),
        "{names:?}"
    );
}
