//! Faults injected through the storage seam: a failed fsync, a full disk
//! at segment creation, and a power cut after every durability point of a
//! multi-threaded workload.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::fault::{FaultStorage, Op};
use crate::{Durability, Error, EventData, ExpectedVersion, Options, Position};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
const SEGMENT: u64 = crate::limits::MIN_SEGMENT_SIZE_BYTES;

fn options(storage: &Arc<FaultStorage>) -> Options {
    Options::new()
        .segment_size(SEGMENT)
        .storage(Arc::clone(storage) as Arc<dyn super::Storage>)
}

fn event(payload: &[u8]) -> [EventData; 1] {
    [EventData::new("T", payload.to_vec())]
}

/// Every event in `dir` as (stream, version, payload), opened without faults.
fn contents(dir: &Path) -> crate::test_support::Events {
    let log = Options::new()
        .segment_size(SEGMENT)
        .durability(Durability::None)
        .open(dir)
        .unwrap();
    let events = crate::test_support::all_events(&log);
    log.close().unwrap();
    events
}

/// A failed fsync poisons the log: the append that waited on it and every
/// later one fail, no sync is tried again (it could report success for pages
/// the kernel already dropped), and a reopen recovers every acknowledged
/// event.
#[test]
fn a_failed_fsync_poisons_the_log_and_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage).open(dir.path()).unwrap();
    log.append("s", ExpectedVersion::NoStream, &event(b"one"))
        .unwrap();
    storage.fail(Op::Flush, 0, EIO, false);
    let failed = log.append("s", ExpectedVersion::Exact(0), &event(b"two"));
    assert!(
        matches!(failed, Err(Error::Poisoned { ref reason }) if reason.contains("I/O error")),
        "{failed:?}"
    );
    let flushes = storage.count(Op::Flush);
    // The flush would work again, but the log must not pretend.
    for _ in 0..3 {
        let later = log.append("s", ExpectedVersion::Any, &event(b"three"));
        assert!(matches!(later, Err(Error::Poisoned { .. })), "{later:?}");
    }
    assert!(matches!(log.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(log.close(), Err(Error::Poisoned { .. })));
    assert_eq!(
        storage.count(Op::Flush),
        flushes,
        "no sync after the failure"
    );

    let events = contents(dir.path());
    assert_eq!(events[0].2, b"one", "acknowledged event kept");
    assert!(
        events.len() <= 2,
        "only the failed append may also be there"
    );
    assert!(
        events.iter().all(|e| e.2 != b"three"),
        "refused append written"
    );
}

/// Appenders waiting for the sync that fails are all told so: none of
/// them sleeps on past the poison (they wait on a futex word the failure
/// must bump), and each gets `Ok` only for an event that reached the disk.
#[test]
fn every_appender_waiting_on_a_failed_sync_returns() {
    const THREADS: usize = 8;
    const EACH: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = Arc::new(options(&storage).open(dir.path()).unwrap());
    // Enough flushes pass for groups to form, then one fails.
    storage.fail(Op::Flush, 40, EIO, false);
    let (done, finished) = std::sync::mpsc::channel();
    let mut workers = Vec::new();
    for t in 0..THREADS {
        let log = Arc::clone(&log);
        let done = done.clone();
        workers.push(std::thread::spawn(move || {
            let stream = format!("s-{t}");
            let mut acked = Vec::new();
            for _ in 0..EACH {
                match log.append(&stream, ExpectedVersion::Any, &event(&[t as u8])) {
                    Ok(r) => acked.push(r.last_version),
                    Err(e) => {
                        assert!(matches!(e, Error::Poisoned { .. }), "{e}");
                        break;
                    }
                }
            }
            done.send((stream, acked)).unwrap();
        }));
    }
    let acked: Vec<(String, Vec<u64>)> = (0..THREADS)
        .map(|_| {
            finished
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("an appender still waits after the failed sync")
        })
        .collect();
    assert!(
        acked.iter().map(|(_, v)| v.len()).sum::<usize>() < THREADS * EACH,
        "appends went on past the failed sync"
    );
    let later = log.append("s-0", ExpectedVersion::Any, &event(b"late"));
    assert!(matches!(later, Err(Error::Poisoned { .. })), "{later:?}");
    // Every worker has reported, so each returns at once: then the log's
    // last handle goes and the directory can be opened again.
    for worker in workers {
        worker.join().unwrap();
    }
    drop(log);
    let events = contents(dir.path());
    for (stream, versions) in &acked {
        for v in versions {
            assert!(
                events.iter().any(|e| &e.0 == stream && e.1 == *v),
                "{stream} {v} was acknowledged, then lost"
            );
        }
    }
}

/// A full disk when a segment is created is a clean error for the append
/// that needs it; earlier data stays readable, and appends work again once
/// there is space.
#[test]
fn enospc_at_segment_creation_is_an_error_and_appends_resume_with_space() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage)
        .durability(Durability::None)
        .open(dir.path())
        .unwrap();
    // Every reservation from now on finds the disk full: the spare the
    // preparer makes (if it has not yet) and the segment a roll makes.
    storage.fail(Op::Reserve, 0, ENOSPC, true);
    let payload = vec![7u8; 16 << 10];
    let mut acked = 0u64;
    let err = loop {
        match log.append("s", ExpectedVersion::Any, &event(&payload)) {
            Ok(r) => acked = r.last_version + 1,
            Err(e) => break e,
        }
        assert!(acked < 1_000, "the disk never filled");
    };
    match &err {
        Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(ENOSPC), "{err}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(acked > 0, "appends fit before the first roll");
    let again = log.append("s", ExpectedVersion::Any, &event(&payload));
    assert!(matches!(again, Err(Error::Io { .. })), "{again:?}");
    let read = log.read_all(Position::START).unwrap().count() as u64;
    assert_eq!(read, acked, "earlier data readable");

    storage.heal();
    let resumed = log
        .append("s", ExpectedVersion::Exact(acked - 1), &event(&payload))
        .unwrap();
    assert_eq!(resumed.first_version, acked, "no version lost or doubled");
    log.close().unwrap();
    assert_eq!(contents(dir.path()).len() as u64, acked + 1);
}

/// A short write of an index file at close is an I/O error from `close`;
/// the data was durable already, and the next open rebuilds the index.
#[test]
fn a_short_index_write_fails_the_close_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage).open(dir.path()).unwrap();
    for i in 0..50u8 {
        log.append("s", ExpectedVersion::Any, &event(&[i; 100]))
            .unwrap();
    }
    storage.fail(Op::WriteAt, 0, ENOSPC, true);
    match log.close() {
        Err(Error::Io { path, source }) => {
            assert_eq!(source.raw_os_error(), Some(ENOSPC));
            assert!(path.to_string_lossy().ends_with(".idx"), "{path:?}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let events = contents(dir.path());
    assert_eq!(events.len(), 50);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(i, e)| e.2 == [i as u8; 100])
    );
}

/// A mapping that cannot be made (ENOMEM) is an I/O error at open, and the
/// next open works.
#[test]
fn a_failed_mapping_is_an_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage).open(dir.path()).unwrap();
    log.append("s", ExpectedVersion::Any, &event(b"kept"))
        .unwrap();
    log.close().unwrap();
    storage.fail(Op::Map, 0, 12, false);
    match options(&storage).open(dir.path()) {
        Err(Error::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(12)),
        other => panic!("expected an I/O error, got {:?}", other.err()),
    }
    assert_eq!(contents(dir.path())[0].2, b"kept");
}

/// One acknowledged append: its stream, versions, and the durability point
/// count when it was acknowledged.
#[derive(Debug, Clone)]
struct Ack {
    stream: String,
    first: u64,
    count: u64,
    point: usize,
}

/// Runs several writer threads of `Sync` appends (3-event batches, several
/// segment rolls), with a close and reopen in the middle.
fn crash_workload(dir: &Path, storage: &Arc<FaultStorage>) -> Vec<Ack> {
    let mut acks = Vec::new();
    for round in 0..2 {
        let log = options(storage).open(dir).unwrap();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let log = &log;
                    s.spawn(move || {
                        let mut acks = Vec::new();
                        for i in 0..40u32 {
                            let stream = format!("s-{}", (t + i as usize) % 6);
                            let events: Vec<_> = (0..3u32)
                                .map(|k| {
                                    let fill = (round * 7 + t * 3 + k as usize) as u8;
                                    EventData::new("E", vec![fill; 1500 + (i as usize % 7) * 100])
                                })
                                .collect();
                            let r = log.append(&stream, ExpectedVersion::Any, &events).unwrap();
                            acks.push(Ack {
                                stream,
                                first: r.first_version,
                                count: 3,
                                point: storage.durability_points(),
                            });
                        }
                        acks
                    })
                })
                .collect();
            for h in handles {
                acks.extend(h.join().unwrap());
            }
        });
        log.close().unwrap();
    }
    acks
}

/// Checks the log in `dir` after a simulated power cut at `point`: it opens,
/// holds every event acknowledged before `point`, shows each append whole
/// or not at all, and every stream's versions run from 0 without a gap;
/// and it verifies whole: CRCs, the chain against every chain record the
/// hasher had written by then (sealed and open ones), the index files.
fn check_crash_state(dir: &Path, point: usize, acks: &[Ack]) -> u64 {
    let events = contents(dir);
    let report = crate::verify(dir, None).unwrap();
    assert!(report.is_intact(), "point {point}: {:?}", report.failure);
    assert_eq!(report.events as usize, events.len(), "point {point}");
    let mut streams: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (stream, version, _) in &events {
        streams.entry(stream).or_default().push(*version);
    }
    for (stream, versions) in &streams {
        let expected: Vec<u64> = (0..versions.len() as u64).collect();
        assert_eq!(versions, &expected, "point {point}: {stream} has gaps");
        assert_eq!(
            versions.len() % 3,
            0,
            "point {point}: {stream} has part of an append"
        );
    }
    for ack in acks.iter().filter(|a| a.point <= point) {
        let have = streams
            .get(ack.stream.as_str())
            .map_or(0, |v| v.len() as u64);
        assert!(
            have >= ack.first + ack.count,
            "point {point}: {} lost versions {}.. acknowledged at point {}",
            ack.stream,
            ack.first,
            ack.point
        );
    }
    report.chain_records
}

/// A power cut after every durability point of the workload (and, at every
/// third flush, also with a random half of the pages written but not yet
/// synced at that moment, as the kernel may have written them back): every
/// state opens and keeps every acknowledged append, whole.
#[test]
fn every_power_cut_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = Arc::new(FaultStorage::with_snapshots(3));
    let acks = crash_workload(&log_dir, &storage);
    assert!(
        storage.count(Op::Create) >= 4,
        "the workload rolls segments"
    );
    let mut checked = 0;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut torn = 0;
    let mut records = 0;
    storage.replay(|point, image, current| {
        let crash = dir.path().join(format!("crash-{point}"));
        torn += usize::from(current.is_some());
        image
            .write_to(&log_dir, &crash, current, |_| super::fault::coin(&mut seed))
            .unwrap();
        records += check_crash_state(&crash, point, &acks);
        std::fs::remove_dir_all(&crash).unwrap();
        checked += 1;
    });
    assert!(records > 0, "no state held a chain record to verify");
    // Group commit merges at most one append per writer thread into a sync.
    assert!(checked > 60, "only {checked} durability points");
    assert!(torn > 10, "only {torn} cuts with unsynced pages");
    let all = acks.iter().map(|a| a.count).sum::<u64>() as usize;
    assert_eq!(
        contents(&log_dir).len(),
        all,
        "the log itself holds everything"
    );
}

/// Under `Sync`, a subscriber sees an event only once its append is
/// acknowledged: when the sync fails, the append fails and the subscriber
/// gets the poison, never the event.
#[test]
fn a_subscriber_never_sees_an_append_whose_sync_failed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = Arc::new(
        options(&storage)
            .durability(Durability::Sync)
            .open(dir.path())
            .unwrap(),
    );
    log.append("s", ExpectedVersion::NoStream, &event(b"one"))
        .unwrap();
    let mut sub = log.subscribe_all(Position::START).unwrap();
    let first = sub.next_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(first.map(|e| e.payload().to_vec()), Some(b"one".to_vec()));
    storage.fail(Op::Flush, 0, EIO, true);
    let waiting = std::thread::spawn(move || sub.next_timeout(std::time::Duration::from_secs(20)));
    let failed = log.append("s", ExpectedVersion::Exact(0), &event(b"two"));
    assert!(matches!(failed, Err(Error::Poisoned { .. })), "{failed:?}");
    let seen = waiting.join().unwrap();
    assert!(matches!(seen, Err(Error::Poisoned { .. })), "{seen:?}");
    // Nor does a new subscription: the frame is written, not published.
    let mut late = log.subscribe_all(Position::START).unwrap();
    assert!(
        late.next_timeout(std::time::Duration::ZERO)
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        late.next_timeout(std::time::Duration::from_millis(10)),
        Err(Error::Poisoned { .. })
    ));
}

/// A power cut at every durability point of two checkpoints: the consumer
/// always opens, never past what it checkpointed, and at the checkpoint
/// once `checkpoint` has returned.
#[test]
fn every_power_cut_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage)
        .durability(Durability::Sync)
        .open(&log_dir)
        .unwrap();
    let positions: Vec<Position> = (0..5u8)
        .map(|i| {
            log.append("s", ExpectedVersion::Any, &event(&[i]))
                .unwrap()
                .first_position
        })
        .collect();
    let mut consumer = log.consumer("billing").unwrap();
    consumer.ack(positions[1]).unwrap();
    consumer.checkpoint().unwrap();
    let first_done = storage.durability_points();
    consumer.ack(positions[3]).unwrap();
    // The log's own threads journal points concurrently (the spare's
    // creation: its fsync, rename and directory fsync), so a point's index
    // alone does not say which side of a checkpoint it is on: only the
    // points taken before the second checkpoint began are surely before it.
    let second_begun = storage.durability_points();
    consumer.checkpoint().unwrap();
    let second_done = storage.durability_points();
    assert!(second_done > second_begun + 1);
    drop(consumer);
    log.close().unwrap();

    let mut checked = 0;
    storage.replay(|point, image, _| {
        let crash = dir.path().join(format!("crash-{point}"));
        image.write_to(&log_dir, &crash, None, |_| false).unwrap();
        let log = Options::new()
            .segment_size(SEGMENT)
            .durability(Durability::None)
            .open(&crash)
            .unwrap();
        let found = log.consumer("billing").unwrap().checkpointed();
        // While a checkpoint is under way its new name is durable only with
        // its directory; until then the old file keeps the name, as a
        // rename does. (`None`: before the first checkpoint's name is.)
        assert!(
            [None, Some(positions[1]), Some(positions[3])].contains(&found),
            "point {point}: {found:?}"
        );
        if point >= second_done {
            assert_eq!(found, Some(positions[3]), "point {point}");
        } else if (first_done..=second_begun).contains(&point) {
            assert_eq!(found, Some(positions[1]), "point {point}");
        }
        log.close().unwrap();
        std::fs::remove_dir_all(&crash).unwrap();
        checked += 1;
    });
    assert!(checked > 8, "only {checked} points");
}

/// Under `Durability::None` nothing syncs per append, but a sealed segment
/// is made durable in the background once the preparer has dropped its
/// pages: a power cut then keeps every sealed segment whole, with no
/// `sync()` ever called.
#[test]
fn under_none_sealed_segments_become_durable_without_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage)
        .durability(Durability::None)
        .open(&log_dir)
        .unwrap();
    let payload = vec![7u8; 10_000];
    let mut positions = Vec::new();
    for i in 0..330u32 {
        let r = log
            .append(
                &format!("s-{}", i % 5),
                ExpectedVersion::Any,
                &event(&payload),
            )
            .unwrap();
        positions.push(r.first_position);
    }
    // Segments 0 and 1 are sealed (3 MiB of 1 MiB segments): wait for the
    // sync thread to write the second one's index file, its last step.
    let index = log_dir.join(crate::layout::index_file(SEGMENT));
    let started = std::time::Instant::now();
    while !index.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no background sync of the sealed segments"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let points = storage.durability_points();
    log.close().unwrap();
    let crash = dir.path().join("crash");
    storage
        .image_at(points)
        .unwrap()
        .write_to(&log_dir, &crash, None, |_| false)
        .unwrap();
    let kept = contents(&crash).len();
    let sealed = positions
        .iter()
        .filter(|p| p.frame_offset() < 2 * SEGMENT)
        .count();
    assert!(sealed > 150, "{sealed}");
    assert!(
        kept >= sealed,
        "a power cut kept {kept} events of {sealed} in sealed segments"
    );
}

/// After a clean close the tail's slot says `CLEAN`: recovery then trusts
/// that nothing was ever written past its watermark, neither clearing nor
/// looking there. Open leaves the flag to the sync thread, so while the
/// disk still says clean, appends must not write past the clean end: a
/// power cut could otherwise keep frames (or a torn one) there that the
/// next recovery would not look at. Each flush of the tail shows its bytes
/// of that moment; any flush while the disk says clean must find nothing
/// past the watermark.
#[test]
fn nothing_is_written_past_a_clean_end_before_the_flag_is_dropped() {
    use crate::segment::{self, SLOT_CLEAN};
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = Arc::new(FaultStorage::with_snapshots(1));
    for round in 0..4u8 {
        let log = options(&storage)
            .durability(Durability::None)
            .open(&log_dir)
            .unwrap();
        // At once, racing the sync thread that drops the flag.
        for i in 0..20 {
            log.append(
                &format!("s-{i}"),
                ExpectedVersion::Any,
                &event(&[round; 300]),
            )
            .unwrap();
        }
        log.close().unwrap();
    }
    let tail = log_dir.join(crate::layout::segment_file(0));
    let mut clean_end: Option<u64> = None;
    let mut checked = 0;
    storage.replay(|point, image, current| {
        if let (Some(end), Some((_, bytes))) = (clean_end, current.filter(|(p, _)| *p == tail)) {
            let past = &bytes[end as usize..];
            assert!(
                past.iter().all(|&b| b == 0),
                "point {point}: written past the clean end {end} while the disk says clean"
            );
            checked += 1;
        }
        clean_end = image
            .file(&tail)
            .and_then(|b| segment::newest_slot(b, SEGMENT))
            .filter(|s| s.flags & SLOT_CLEAN != 0)
            .map(|s| s.watermark);
    });
    // Three reopens of a clean log, each dropping the flag with a flush.
    assert!(checked >= 3, "only {checked} flushes while clean");
    assert_eq!(contents(&log_dir).len(), 80);
}

/// A roll does not wait for the spare's zero-fill to finish: a writer that
/// reaches the end of the active segment while the preparer fills the next
/// gets it after the chunk in hand, its rest left as reserved blocks (read
/// as zeros). Writes held here: filling the 16 MiB spare takes 16 of them
/// (1 MiB each), the hand-over at most the 4 of one 4 MiB chunk.
#[test]
fn a_roll_takes_the_spare_before_its_zero_fill_is_done() {
    const SIZE: u64 = 16 << 20;
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    storage.hold_writes();
    let log = Arc::new(
        options(&storage)
            .segment_size(SIZE)
            .durability(Durability::None)
            .open(dir.path())
            .unwrap(),
    );
    let payload = vec![7u8; 4096];
    let count = (SIZE / 4096 + 100) as usize;
    let (done, finished) = crossbeam_channel::bounded(1);
    let writer = Arc::clone(&log);
    let events = payload.clone();
    let appender = std::thread::spawn(move || {
        for _ in 0..count {
            if let Err(e) = writer.append("s", ExpectedVersion::Any, &event(&events)) {
                done.send(Err(e)).unwrap();
                return;
            }
        }
        done.send(Ok(())).unwrap();
    });
    let awaited = || {
        matches!(
            *log.append.spare_state(),
            crate::append::Spare::Creating { awaited: true, .. }
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !awaited() {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never waited for the spare"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    storage.permit_writes(4);
    let appended = finished.recv_timeout(std::time::Duration::from_secs(60));
    storage.release_writes();
    appended
        .expect("the roll waited for the whole zero-fill")
        .unwrap();
    appender.join().unwrap();
    Arc::into_inner(log).unwrap().close().unwrap();
    let read = contents(dir.path());
    assert_eq!(read.len(), count);
    assert!(read.iter().all(|(s, _, p)| s == "s" && p == &payload));
}

/// Readers never wait for the append path: while an append waits for its
/// next segment to be made (the preparer's creation of it held at its
/// `fallocate`), stream reads, the stream's version and a read of the
/// whole log all complete.
#[test]
fn reads_complete_while_an_append_waits_for_a_segment_to_be_made() {
    const SIZE: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = Arc::new(
        options(&storage)
            .segment_size(SIZE)
            .durability(Durability::None)
            .open(dir.path())
            .unwrap(),
    );
    log.append("read-me", ExpectedVersion::NoStream, &event(b"first"))
        .unwrap();
    // Let the preparer's first spare be made, then hold the next one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !matches!(*log.append.spare_state(), crate::append::Spare::Ready(_)) {
        assert!(std::time::Instant::now() < deadline, "no first spare");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    storage.hold_reserves();
    // Two segments' worth: the second needs the segment held.
    let count = (2 * SIZE / 4096) as usize;
    let writer = Arc::clone(&log);
    let appender = std::thread::spawn(move || {
        let payload = vec![7u8; 4096];
        for _ in 0..count {
            writer
                .append("filler", ExpectedVersion::Any, &event(&payload))
                .unwrap();
        }
    });
    // The second segment full but for less than a frame: the appender is
    // held, by the preparer's creation of the third or its own.
    let held = || {
        log.view
            .newest_segment()
            .is_some_and(|seg| seg.base() == SIZE && seg.written() + 2 * 4096 > seg.size())
    };
    while !held() {
        assert!(std::time::Instant::now() < deadline, "no append waited");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let (done, finished) = crossbeam_channel::bounded(1);
    let reader = Arc::clone(&log);
    std::thread::spawn(move || {
        let version = reader.stream_version("read-me");
        let events: Vec<_> = reader
            .read_stream("read-me", 0)
            .unwrap()
            .map(|e| e.unwrap().payload().to_vec())
            .collect();
        let all = reader.read_all(Position::START).unwrap().count();
        done.send((version, events, all)).unwrap();
    });
    let read = finished.recv_timeout(std::time::Duration::from_secs(30));
    // The append could not have gone on: its segment is not made yet.
    assert!(!appender.is_finished());
    storage.release_reserves();
    let (version, events, all) = read.expect("a read waited for the append path");
    assert_eq!(version, Some(0));
    assert_eq!(events, vec![b"first".to_vec()]);
    assert!(all > 1);
    appender.join().unwrap();
    Arc::into_inner(log).unwrap().close().unwrap();
}

/// Every snapshot file under `log_dir`, decoded: (version, schema, bytes),
/// or a panic naming a file that does not decode (a torn snapshot).
fn snapshot_files(log_dir: &Path, log_id: u128, stream: &str) -> Vec<(u64, u16, Vec<u8>)> {
    let dir = log_dir
        .join(crate::layout::SNAPSHOT_DIR)
        .join(crate::layout::snapshot_stream_dir(stream));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if crate::layout::parse_snapshot_file(&name).is_none() {
            continue;
        }
        let raw = bytes::Bytes::from(std::fs::read(&path).unwrap());
        let s = crate::snapshot::file::decode(&raw, log_id, stream)
            .unwrap_or_else(|e| panic!("{path:?} is torn: {e}"));
        found.push((s.version(), s.schema_version(), s.bytes().to_vec()));
    }
    found
}

/// A power cut at every durability point of two snapshot saves and an
/// `append_with_snapshot`, under `Durability::None` (so each save must make
/// its events durable itself): every snapshot file a cut leaves decodes
/// whole and names a version the reopened log has; a load finds the old
/// snapshot or the new, and the new once its save has returned.
#[test]
fn every_power_cut_keeps_a_whole_snapshot_of_durable_events() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage)
        .durability(Durability::None)
        .open(&log_dir)
        .unwrap();
    let log_id = log.view.log_id;
    let three = |fill: u8| -> Vec<EventData> {
        (0..3u8)
            .map(|k| EventData::new("E", vec![fill + k; 700]))
            .collect()
    };
    log.append("s", ExpectedVersion::NoStream, &three(0))
        .unwrap();
    log.save_snapshot("s", 1, 1, &b"first"[..]).unwrap();
    let first_done = storage.durability_points();
    log.append("s", ExpectedVersion::Exact(2), &three(10))
        .unwrap();
    let second_begun = storage.durability_points();
    log.save_snapshot("s", 4, 1, &b"second"[..]).unwrap();
    let second_done = storage.durability_points();
    let r = log
        .append_with_snapshot("s", ExpectedVersion::Exact(5), &three(20), 2, &b"third"[..])
        .unwrap();
    assert_eq!(r.last_version, 8);
    let third_done = storage.durability_points();
    assert!(
        third_done > second_done + 2,
        "the third save journaled nothing"
    );
    log.close().unwrap();

    let snapshots = [
        (1, b"first".to_vec()),
        (4, b"second".to_vec()),
        (8, b"third".to_vec()),
    ];
    let mut checked = 0;
    storage.replay(|point, image, _| {
        let crash = dir.path().join(format!("crash-{point}"));
        image.write_to(&log_dir, &crash, None, |_| false).unwrap();
        let log = Options::new()
            .segment_size(SEGMENT)
            .durability(Durability::None)
            .open(&crash)
            .unwrap();
        let last = log.stream_version("s");
        for (version, _, _) in snapshot_files(&crash, log_id, "s") {
            assert!(
                last.is_some_and(|l| version <= l),
                "point {point}: a snapshot at {version}, the log ends at {last:?}"
            );
        }
        let found = log
            .load_snapshot("s", u64::MAX)
            .unwrap()
            .map(|s| (s.version(), s.bytes().to_vec()));
        if let Some(found) = &found {
            assert!(snapshots.contains(found), "point {point}: {found:?}");
        }
        let expect = if point >= third_done {
            Some(&snapshots[2])
        } else if point == second_done {
            Some(&snapshots[1])
        } else if (first_done..=second_begun).contains(&point) {
            Some(&snapshots[0])
        } else {
            None
        };
        if let Some(expect) = expect {
            assert_eq!(found.as_ref(), Some(expect), "point {point}");
        }
        log.close().unwrap();
        std::fs::remove_dir_all(&crash).unwrap();
        checked += 1;
    });
    assert!(checked > 15, "only {checked} points");
}

/// A snapshot that cannot be written: `save_snapshot` says so with the
/// path; `append_with_snapshot`, whose events are durable by then, returns
/// their result and only warns; either way no snapshot file, torn or
/// whole, is left under a snapshot's name, and the next save works.
#[test]
fn a_failed_snapshot_write_is_an_error_for_a_save_and_a_warning_after_an_append() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage).open(dir.path()).unwrap();
    log.append("s", ExpectedVersion::NoStream, &event(b"one"))
        .unwrap();
    // The preparer makes the next segment (a header write and a rename)
    // after the first append: the faults below are the snapshots'.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while storage.count(Op::Rename) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no spare segment made"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    storage.fail(Op::WriteAt, 0, ENOSPC, false);
    match log.save_snapshot("s", 0, 1, &b"state"[..]) {
        Err(Error::Io { path, source }) => {
            assert_eq!(source.raw_os_error(), Some(ENOSPC));
            assert!(path.to_string_lossy().ends_with("0.snap"), "{path:?}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(log.load_snapshot("s", u64::MAX).unwrap(), None);
    storage.fail(Op::Rename, 0, ENOSPC, false);
    let r = log
        .append_with_snapshot("s", ExpectedVersion::Exact(0), &event(b"two"), 1, &b"x"[..])
        .unwrap();
    assert_eq!(r.last_version, 1);
    assert_eq!(log.stream_version("s"), Some(1));
    assert_eq!(log.snapshot_versions("s"), Vec::<u64>::new());
    log.save_snapshot("s", 1, 1, &b"state"[..]).unwrap();
    assert_eq!(log.snapshot_versions("s"), vec![1], "the leftover removed");
    let stream_dir = dir
        .path()
        .join(crate::layout::SNAPSHOT_DIR)
        .join(crate::layout::snapshot_stream_dir("s"));
    assert_eq!(std::fs::read_dir(stream_dir).unwrap().count(), 1);
    log.close().unwrap();
}
