//! Damage from outside the engine, each with its documented outcome
//! (docs/RELIABILITY.md): a segment from another log, stale copies of a
//! segment or an index file restored over the current ones, a frame written
//! at the wrong offset, a garbage index file. Never a panic, never a wrong
//! read.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use seglog::{Durability, Error, EventData, ExpectedVersion, Log, Options};

fn open(dir: &Path) -> seglog::Result<Log> {
    Options::new()
        .segment_size(MIB)
        .durability(Durability::None)
        .open(dir)
}

fn repair(dir: &Path) -> seglog::Result<Log> {
    Options::new()
        .segment_size(MIB)
        .durability(Durability::None)
        .repair(true)
        .open(dir)
}

/// Appends `n` events of ~2 KB round robin over three streams.
fn fill(log: &Log, n: u64) {
    for i in 0..n {
        let stream = format!("s-{}", i % 3);
        log.append(
            &stream,
            ExpectedVersion::Any,
            &[EventData::new("E", payload_for(i, 2_000))],
        )
        .expect("append");
    }
}

/// A closed log of three segments (two sealed) and what it holds.
fn three_segments(dir: &Path) -> Vec<Ev> {
    let log = open(dir).expect("open");
    fill(&log, 1_100);
    let events = snapshot(&log);
    log.close().expect("close");
    assert!(seg_path(dir, 2 * MIB).exists(), "three segments");
    events
}

fn idx_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.idx"))
}

fn assert_corrupt_in(err: &Error, seg: &Path) {
    match err {
        Error::Corrupt { segment, .. } => assert_eq!(segment, seg, "{err}"),
        other => panic!("expected Corrupt in {seg:?}, got {other:?}"),
    }
}

#[test]
fn a_segment_from_another_log_is_refused() {
    let ours = tempdir();
    let theirs = tempdir();
    let events = three_segments(ours.path());
    three_segments(theirs.path());
    let original = std::fs::read(seg_path(ours.path(), MIB)).expect("read");
    std::fs::copy(seg_path(theirs.path(), MIB), seg_path(ours.path(), MIB)).expect("copy");
    match open(ours.path()) {
        Err(Error::UnsupportedFormat { path, reason }) => {
            assert_eq!(path, seg_path(ours.path(), MIB));
            assert!(reason.contains("another log"), "{reason}");
        }
        other => panic!("expected UnsupportedFormat, got {:?}", other.err()),
    }
    std::fs::write(seg_path(ours.path(), MIB), original).expect("restore");
    assert_eq!(snapshot(&open(ours.path()).expect("reopen")), events);
}

#[test]
fn a_stale_copy_of_a_sealed_segment_is_corrupt_not_a_silent_loss() {
    let dir = tempdir();
    let log = open(dir.path()).expect("open");
    fill(&log, 200);
    log.sync().expect("sync");
    let stale = std::fs::read(seg_path(dir.path(), 0)).expect("read");
    fill(&log, 900);
    log.close().expect("close");
    let events = snapshot(&open(dir.path()).expect("reopen"));
    std::fs::write(seg_path(dir.path(), 0), &stale).expect("restore stale copy");
    // Segment 0 now ends early, unsealed, while later segments hold synced
    // data: it was complete once.
    let err = open(dir.path()).expect_err("a stale segment must not open");
    assert_corrupt_in(&err, &seg_path(dir.path(), 0));
    assert!(err.to_string().contains("segment ends early"), "{err}");
    // Repair keeps everything that is still there, and says what is not.
    let log = repair(dir.path()).expect("repair");
    let kept = snapshot(&log);
    assert!(!log.quarantined().is_empty(), "the loss is recorded");
    assert!(
        kept.len() < events.len() && kept.len() >= 200,
        "{}",
        kept.len()
    );
    assert!(kept.iter().all(|e| events.contains(e)), "nothing invented");
    let later: Vec<&Ev> = events
        .iter()
        .filter(|e| e.position.frame_offset() >= MIB)
        .collect();
    assert!(
        later.iter().all(|e| kept.contains(e)),
        "later segments kept whole"
    );
    log.close().expect("close");
    // The quarantine list lets a plain open step over the loss from now on.
    let log = open(dir.path()).expect("open after repair");
    assert_eq!(snapshot(&log), kept);
    let next = log
        .append("s-0", ExpectedVersion::Any, &[EventData::new("E", vec![1])])
        .expect("append after repair");
    assert!(next.first_position.frame_offset() > 2 * MIB);
}

#[test]
fn a_stale_index_file_is_ignored_and_rebuilt() {
    let dir = tempdir();
    let log = open(dir.path()).expect("open");
    fill(&log, 600);
    log.close().expect("close");
    let stale = std::fs::read(idx_path(dir.path(), 0)).expect("index of segment 0");
    let log = open(dir.path()).expect("reopen");
    fill(&log, 500);
    let events = snapshot(&log);
    log.close().expect("close");
    std::fs::write(idx_path(dir.path(), 0), stale).expect("restore stale index");
    let log = open(dir.path()).expect("open with a stale index");
    assert_eq!(snapshot(&log), events);
    for s in 0..3 {
        let versions: Vec<u64> = log
            .read_stream(&format!("s-{s}"), 0)
            .expect("read_stream")
            .map(|e| e.expect("event").version())
            .collect();
        assert_eq!(versions, (0..versions.len() as u64).collect::<Vec<_>>());
        assert_eq!(
            log.stream_version(&format!("s-{s}")),
            Some(versions.len() as u64 - 1)
        );
    }
}

#[test]
fn a_garbage_index_file_is_ignored_and_rebuilt() {
    let dir = tempdir();
    let events = three_segments(dir.path());
    let mut rng = Rng::new(7);
    std::fs::write(idx_path(dir.path(), MIB), rng.bytes(5_000)).expect("garbage");
    std::fs::write(idx_path(dir.path(), 0), b"").expect("empty");
    let log = open(dir.path()).expect("open");
    assert_eq!(snapshot(&log), events);
    log.close().expect("close");
    assert!(
        std::fs::metadata(idx_path(dir.path(), MIB))
            .expect("rewritten")
            .len()
            > 64
    );
}

#[test]
fn damaged_sparse_entries_are_left_out_and_every_read_stays_exact() {
    let dir = tempdir();
    let events = three_segments(dir.path());
    let path = idx_path(dir.path(), 0);
    let good = std::fs::read(&path).expect("index of segment 0");
    let mut raw = good.clone();
    // The entries are the file's last bytes, checked only when a lookup
    // first needs them: move the last one's frame offset by 8 bytes, into
    // the middle of its frame.
    let at = raw.len() - 8;
    raw[at] ^= 0x08;
    std::fs::write(&path, &raw).expect("damage the entries");
    let log = open(dir.path()).expect("open with damaged entries");
    assert_eq!(snapshot(&log), events);
    for s in 0..3 {
        let name = format!("s-{s}");
        let last = log.stream_version(&name).expect("stream");
        for from in 0..=last {
            let versions: Vec<u64> = log
                .read_stream(&name, from)
                .expect("read_stream")
                .map(|e| e.expect("event").version())
                .collect();
            assert_eq!(
                versions,
                (from..=last).collect::<Vec<_>>(),
                "{name} from {from}"
            );
        }
    }
    log.close().expect("close");
    // A plain open keeps using the file's heads; a repair open rescans the
    // segment and writes the file whole again.
    assert_eq!(std::fs::read(&path).expect("index"), raw);
    repair(dir.path()).expect("repair").close().expect("close");
    assert_eq!(std::fs::read(&path).expect("rewritten index"), good);
}

#[test]
fn a_frame_written_at_the_wrong_offset_is_corrupt_and_repair_skips_only_it() {
    let dir = tempdir();
    let events = three_segments(dir.path());
    // Copy the second frame of segment 1 over its fifth: same bytes, wrong
    // place. The frame's own position is inside its CRC.
    let seg = seg_path(dir.path(), MIB);
    let second = events
        .iter()
        .filter(|e| e.position.frame_offset() >= MIB)
        .nth(1)
        .expect("2nd");
    let fifth = events
        .iter()
        .filter(|e| e.position.frame_offset() >= MIB)
        .nth(4)
        .expect("5th");
    let len = (second.next_position.frame_offset() - second.position.frame_offset()) as usize;
    assert_eq!(
        len as u64,
        fifth.next_position.frame_offset() - fifth.position.frame_offset()
    );
    let bytes = read_at(&seg, second.position.frame_offset() - MIB, len);
    write_at(&seg, fifth.position.frame_offset() - MIB, &bytes);
    remove_index_files(dir.path());
    match open(dir.path()) {
        Err(e) => assert_corrupt_in(&e, &seg),
        Ok(_) => panic!("opened with a misdirected frame"),
    }
    let log = repair(dir.path()).expect("repair");
    let kept = snapshot(&log);
    assert_eq!(
        kept.len(),
        events.len() - 1,
        "only the overwritten frame is lost"
    );
    assert!(!kept.contains(fifth));
    assert_eq!(log.quarantined().len(), 1);
}
