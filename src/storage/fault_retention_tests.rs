//! Power cuts across a retention run and across stream deletions. After a
//! cut at any durability point (and with unsynced pages written back at
//! random), the log opens with a consistent start, holds every
//! acknowledged event from that start on, and verifies; its start is the
//! old one or the new one, and a moved start always has its `$audit`
//! event. A deletion whose call returned is in effect.

use std::path::Path;
use std::sync::Arc;

use super::fault::FaultStorage;
use crate::{AUDIT_STREAM, Durability, EventData, ExpectedVersion, Log, Options, Position};

const SEGMENT: u64 = crate::limits::MIN_SEGMENT_SIZE_BYTES;

fn options(storage: &Arc<FaultStorage>) -> Options {
    Options::new()
        .segment_size(SEGMENT)
        .retain_max_bytes(2 * SEGMENT)
        .retention_interval(std::time::Duration::ZERO)
        .storage(Arc::clone(storage) as Arc<dyn super::Storage>)
}

/// An acknowledged append: where, its payload's byte, and the durability
/// point count when it returned.
struct Ack {
    position: Position,
    fill: u8,
    point: usize,
}

/// Appends about five segments of events, then runs retention and appends
/// a little more. Returns every acknowledged position with its payload
/// byte, the durability point before retention began, and the start after.
fn workload(dir: &Path, storage: &Arc<FaultStorage>) -> (Vec<Ack>, usize, Position) {
    let log = options(storage).open(dir).unwrap();
    let mut acks = Vec::new();
    let mut append = |log: &Log, i: usize| {
        let fill = (i % 251) as u8;
        let events = [EventData::new("E", vec![fill; 24 * 1024])];
        let r = log
            .append(&format!("s-{}", i % 5), ExpectedVersion::Any, &events)
            .unwrap();
        acks.push(Ack {
            position: r.first_position,
            fill,
            point: storage.durability_points(),
        });
    };
    for i in 0..200 {
        append(&log, i);
    }
    let before = storage.durability_points();
    let retained = log.apply_retention().unwrap();
    assert!(retained.segments >= 2, "{retained:?}");
    for i in 200..206 {
        append(&log, i);
    }
    log.close().unwrap();
    (acks, before, retained.log_start)
}

/// The state a cut at `point` left in `dir`.
fn check(dir: &Path, point: usize, acks: &[Ack], new_start: Position) {
    let log = Options::new()
        .segment_size(SEGMENT)
        .durability(Durability::None)
        .open(dir)
        .unwrap_or_else(|e| panic!("point {point}: {e}"));
    let start = log.log_start();
    assert!(
        start == Position::START || start == new_start,
        "point {point}: start {start}"
    );
    let mut audits = 0;
    let mut held = std::collections::HashMap::new();
    for e in log.read_all(start).unwrap() {
        let e = e.unwrap_or_else(|e| panic!("point {point}: {e}"));
        if e.stream() == AUDIT_STREAM {
            audits += 1;
        } else {
            held.insert(e.position(), e.payload()[0]);
        }
    }
    assert!(
        start == Position::START || audits == 1,
        "point {point}: no audit event"
    );
    for ack in acks.iter().filter(|a| a.position >= start) {
        match held.get(&ack.position) {
            Some(have) => assert_eq!(*have, ack.fill, "point {point}: {}", ack.position),
            None => assert!(
                ack.point > point,
                "point {point}: {} acknowledged at point {} is gone",
                ack.position,
                ack.point
            ),
        }
    }
    let report = log.verify(None).unwrap();
    assert!(report.is_intact(), "point {point}: {report}");
    log.close().unwrap();
}

#[test]
fn every_power_cut_across_retention_keeps_a_consistent_start() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = Arc::new(FaultStorage::with_snapshots(2));
    let (acks, before, new_start) = workload(&log_dir, &storage);
    let last = storage.durability_points();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut checked = 0;
    let mut moved = 0;
    storage.replay(|point, image, current| {
        if point < before {
            return;
        }
        let crash = dir.path().join(format!("crash-{point}"));
        image
            .write_to(&log_dir, &crash, current, |_| super::fault::coin(&mut seed))
            .unwrap();
        check(&crash, point, &acks, new_start);
        moved += usize::from(!crash.join(crate::layout::segment_file(0)).exists());
        std::fs::remove_dir_all(&crash).unwrap();
        checked += 1;
    });
    assert!(checked > 5, "only {checked} points across retention");
    assert!(
        moved > 0 && moved < checked,
        "{moved} of {checked} states had moved"
    );
    assert!(last > before);
    // Every acknowledged event from the new start on is in the log itself.
    let log = Options::new().segment_size(SEGMENT).open(&log_dir).unwrap();
    let kept = log.read_all(new_start).unwrap().count();
    let expected = acks.iter().filter(|a| a.position >= new_start).count() + 1;
    assert_eq!(kept, expected, "the events and the audit event");
}

/// A truncation and a tombstone under power cuts: after a cut at any
/// point, a deletion whose call had returned is in effect, one whose
/// `$streams` event survived is in effect too, and nothing is half done.
#[test]
fn every_power_cut_keeps_an_acknowledged_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = Arc::new(FaultStorage::with_snapshots(1));
    let log = options(&storage).open(&log_dir).unwrap();
    let five: Vec<_> = (0..5).map(|_| EventData::new("E", "x")).collect();
    log.append("soft", ExpectedVersion::NoStream, &five)
        .unwrap();
    log.append("hard", ExpectedVersion::NoStream, &five)
        .unwrap();
    let start = storage.durability_points();
    log.truncate_stream("soft", 3).unwrap();
    let truncated = storage.durability_points();
    log.delete_stream("hard").unwrap();
    let deleted = storage.durability_points();
    log.append("soft", ExpectedVersion::Any, &five).unwrap();
    log.close().unwrap();
    let mut checked = 0;
    storage.replay(|point, image, current| {
        if point < start {
            return;
        }
        let crash = dir.path().join(format!("crash-{point}"));
        image.write_to(&log_dir, &crash, current, |_| true).unwrap();
        let log = Options::new().segment_size(SEGMENT).open(&crash).unwrap();
        let records: Vec<String> = log
            .read_stream(crate::STREAMS_STREAM, 0)
            .map(|r| r.map(|e| e.unwrap().event_type().to_string()).collect())
            .unwrap_or_default();
        let first = log
            .read_stream("soft", 0)
            .unwrap()
            .next()
            .map(|e| e.unwrap().version());
        let cut = records.iter().any(|t| t == crate::TRUNCATE_EVENT);
        assert!(cut || point < truncated, "point {point}: truncation lost");
        assert_eq!(first, Some(if cut { 3 } else { 0 }), "point {point}");
        let gone = records.iter().any(|t| t == crate::TOMBSTONE_EVENT);
        assert!(gone || point < deleted, "point {point}: tombstone lost");
        let append = log.append("hard", ExpectedVersion::Any, &five[..1]);
        assert_eq!(
            matches!(append, Err(crate::Error::StreamDeleted { .. })),
            gone,
            "point {point}"
        );
        assert!(log.verify(None).unwrap().is_intact(), "point {point}");
        log.close().unwrap();
        std::fs::remove_dir_all(&crash).unwrap();
        checked += 1;
    });
    assert!(checked >= 3, "only {checked} points");
}
