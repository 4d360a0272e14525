//! What an operator reads without walking events: a log's summary from a
//! writer and from a reader, the consumers' checkpoints and their reset,
//! and one segment file read alone, damage located.

mod common;

use common::*;
use seglog::inspect::SegmentFile;
use seglog::{Durability, Error, EventData, ExpectedVersion, Log, Options, Position, Reader};

fn small_log(dir: &std::path::Path) -> Log {
    Options::new()
        .segment_size(1 << 20)
        .durability(Durability::None)
        .open(dir)
        .expect("open")
}

/// 3 streams, `n` appends of one 1 KiB event each, round robin.
fn fill(log: &Log, n: u64) -> Vec<Position> {
    (0..n)
        .map(|i| {
            log.append(
                &format!("s-{}", i % 3),
                ExpectedVersion::Any,
                &[EventData::new("E", vec![i as u8; 1024])],
            )
            .expect("append")
            .first_position
        })
        .collect()
}

#[test]
fn info_counts_segments_streams_and_events_the_same_from_a_writer_and_a_reader() {
    let dir = tempdir();
    let log = small_log(dir.path());
    fill(&log, 3000);
    let from_writer = log.info().expect("info");
    let reader = Reader::open(dir.path()).expect("reader");
    let mut from_reader = reader.info().expect("info");
    // The writer may have written an index file in between.
    from_reader.disk_bytes = from_writer.disk_bytes;
    assert_eq!(from_writer, from_reader);
    let info = from_writer;
    assert_eq!(info.log_id, log.log_id());
    assert_eq!(info.streams, 3);
    assert_eq!(info.events, 3000);
    assert_eq!(info.log_start, Position::START);
    assert!(info.segments.len() >= 3, "{} segments", info.segments.len());
    let (last, sealed) = info.segments.split_last().expect("segments");
    assert!(sealed.iter().all(|s| s.sealed && s.size_bytes == 1 << 20));
    assert!(!last.sealed);
    for pair in info.segments.windows(2) {
        assert!(pair[0].base < pair[1].base);
        assert!(pair[0].last_time_us <= pair[1].first_time_us);
    }
    assert!(info.first_time_us <= info.last_time_us && info.first_time_us.is_some());
    assert_eq!(info.end, reader.refresh().expect("refresh"));
    let used: u64 = info.segments.iter().map(|s| s.used_bytes).sum();
    assert!(used > 3000 * 1024, "{used} bytes used");
    assert!(info.disk_bytes >= used, "{} on disk", info.disk_bytes);
}

#[test]
fn consumers_are_listed_with_their_checkpoints_and_reset_moves_one_back() {
    let dir = tempdir();
    let log = small_log(dir.path());
    let positions = fill(&log, 10);
    for (name, at) in [("billing", 7), ("audit", 2)] {
        let mut c = log.consumer(name).expect("consumer");
        c.ack(positions[at]).expect("ack");
        c.checkpoint().expect("checkpoint");
    }
    let listed = log.consumers().expect("consumers");
    let names: Vec<(&str, Position)> = listed
        .iter()
        .map(|c| (c.name.as_str(), c.checkpoint))
        .collect();
    assert_eq!(names, [("audit", positions[2]), ("billing", positions[7])]);
    assert!(listed[0].lag_bytes > listed[1].lag_bytes);
    let reader = Reader::open(dir.path()).expect("reader");
    assert_eq!(reader.consumers().expect("consumers"), listed);

    let mut billing = log.consumer("billing").expect("consumer");
    billing.reset(Some(positions[3])).expect("reset");
    drop(billing);
    let billing = log.consumer("billing").expect("consumer");
    assert_eq!(billing.checkpointed(), Some(positions[3]));
    let mut sub = billing.subscribe().expect("subscribe");
    let next = sub
        .next_timeout(std::time::Duration::from_secs(5))
        .expect("next")
        .expect("event");
    assert_eq!(next.position(), positions[4]);
    drop(sub);
    let mut billing = billing;
    let not_an_event = Position::from_u64(positions[3].as_u64() + 1);
    assert!(matches!(
        billing.reset(Some(not_an_event)),
        Err(Error::InvalidPosition { .. })
    ));
    billing.reset(None).expect("reset to the start");
    drop(billing);
    assert_eq!(
        log.consumer("billing").expect("consumer").checkpointed(),
        None
    );
    let names: Vec<String> = log
        .consumers()
        .expect("consumers")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["audit"]);
}

#[test]
fn a_segment_file_reads_alone_and_its_damage_is_located() {
    let dir = tempdir();
    let log = small_log(dir.path());
    fill(&log, 1500);
    let written = read_all(&log);
    log.close().expect("close");
    let copy = tempdir();
    let path = copy.path().join("evidence.bin");
    std::fs::copy(seg_path(dir.path(), 0), &path).expect("copy");
    let file = SegmentFile::open(&path).expect("open alone");
    assert_eq!(file.base(), 0);
    assert!(file.is_sealed());
    let frames: Vec<_> = file
        .frames()
        .collect::<seglog::Result<_>>()
        .expect("frames");
    assert!(
        frames.len() > 100 && frames.len() < 1500,
        "{} frames",
        frames.len()
    );
    for (frame, event) in frames.iter().zip(&written) {
        assert_eq!(frame.position, event.position());
        assert_eq!(frame.stream.as_deref(), Some(event.stream()));
        assert_eq!(frame.first_version, event.version());
        assert_eq!(frame.events[0].payload, event.payload().as_ref());
        assert_eq!(frame.events[0].event_type, "E");
    }

    // One payload byte of the 10th frame changed: the walk stops there.
    let tenth = &frames[9];
    let mut bytes = std::fs::read(&path).expect("read");
    let at = (tenth.offset as usize) + 100;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write");
    let file = SegmentFile::open(&path).expect("open alone");
    let walked: Vec<_> = file.frames().collect();
    assert_eq!(walked.len(), 10);
    match &walked[9] {
        Err(Error::Corrupt {
            segment, offset, ..
        }) => {
            assert_eq!(segment, &path);
            assert_eq!(*offset, tenth.offset);
        }
        other => panic!("expected the damage located, got {other:?}"),
    }

    std::fs::write(&path, b"not a segment at all, just some text long enough").expect("write");
    assert!(matches!(
        SegmentFile::open(&path),
        Err(Error::UnsupportedFormat { .. })
    ));
    std::fs::write(&path, b"short").expect("write");
    assert!(matches!(
        SegmentFile::open(&path),
        Err(Error::UnsupportedFormat { .. })
    ));
}

#[test]
fn verification_reports_its_progress_as_segments_are_done() {
    let dir = tempdir();
    let log = small_log(dir.path());
    fill(&log, 3000);
    log.close().expect("close");
    let mut calls = Vec::new();
    let report = seglog::verify_with_progress(dir.path(), None, &mut |done, total| {
        calls.push((done, total))
    })
    .expect("verify");
    assert!(report.is_intact());
    // Segments are walked on two threads: the calling thread reports
    // those it walked, then the end.
    assert!(!calls.is_empty() && calls.len() as u64 <= report.segments + 1);
    assert!(
        calls
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1)
    );
    let (done, total) = *calls.last().expect("a call");
    assert_eq!(done, total);
    assert!(
        total >= report.bytes,
        "{total} bytes walked, {} in frames",
        report.bytes
    );
}
