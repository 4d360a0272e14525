//! Bad input: each mistake gets its own error variant, changes nothing, and
//! the log keeps working. Also bad options, a locked directory and segment
//! files this build must refuse.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use seglog::{Durability, Error, EventData, ExpectedVersion, Log, Options, Position, limits};

const SEGMENT: u64 = MIB;
/// The largest frame a 1 MiB segment holds: all but the header and the
/// room kept for the end marker.
const MAX_FRAME: u64 = SEGMENT - HEADER_BYTES - END_BYTES;

fn open(dir: &Path) -> Log {
    Options::new()
        .segment_size(SEGMENT)
        .durability(Durability::None)
        .open(dir)
        .expect("open")
}

fn small(n: u8) -> EventData {
    EventData::new("Small", vec![n; 10])
}

/// A log holding two events in stream "s".
fn seeded_log(dir: &Path) -> Log {
    let log = open(dir);
    log.append("s", ExpectedVersion::NoStream, &[small(1), small(2)])
        .expect("seed");
    log
}

/// Asserts that appending `events` to `stream` fails with an error `check`
/// accepts, that nothing changed, and that a good append still works and
/// lands exactly where the log ended.
#[track_caller]
fn assert_rejected(log: &Log, stream: &str, events: &[EventData], check: impl Fn(&Error) -> bool) {
    let before = snapshot(log);
    let versions = (log.stream_version("s"), log.stream_version(stream));
    let count = log.stream_count();
    match log.append(stream, ExpectedVersion::Any, events) {
        Err(e) => assert!(check(&e), "unexpected error: {e:?}"),
        Ok(r) => panic!("bad input accepted: {r:?}"),
    }
    assert_eq!(snapshot(log), before, "bad input changed the log");
    assert_eq!(
        (log.stream_version("s"), log.stream_version(stream)),
        versions
    );
    assert_eq!(log.stream_count(), count);
    let tail = before.last().expect("seeded").next_position;
    let version = log.stream_version("s").expect("seeded");
    let r = log
        .append("s", ExpectedVersion::Exact(version), &[small(9)])
        .expect("the log keeps working");
    assert_eq!(r.first_position, tail, "a rejected append used log space");
    assert_eq!(r.first_version, version + 1);
}

#[test]
fn empty_stream_name() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    assert_rejected(&log, "", &[small(0)], |e| {
        matches!(e, Error::EmptyStreamName)
    });
}

#[test]
fn stream_name_too_long() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    let name = "n".repeat(limits::MAX_STREAM_NAME_BYTES + 1);
    assert_rejected(&log, &name, &[small(0)], |e| {
        matches!(e, Error::StreamNameTooLong { len: 257, max: 256 })
    });
    // The longest name is fine, multi-byte UTF-8 counted in bytes.
    let longest = "é".repeat(limits::MAX_STREAM_NAME_BYTES / 2);
    log.append(&longest, ExpectedVersion::NoStream, &[small(3)])
        .expect("256-byte name");
    let over = format!("{longest}x");
    assert_rejected(&log, &over, &[small(0)], |e| {
        matches!(e, Error::StreamNameTooLong { len: 257, max: 256 })
    });
    assert_eq!(
        snapshot(&log)
            .iter()
            .filter(|e| e.stream == longest)
            .count(),
        1
    );
}

#[test]
fn empty_event_type() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    let events = [small(0), EventData::new("", &b"x"[..]), small(0)];
    assert_rejected(&log, "s", &events, |e| {
        matches!(e, Error::EmptyEventType { index: 1 })
    });
}

#[test]
fn event_type_too_long() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    let events = [
        small(0),
        small(0),
        EventData::new("t".repeat(limits::MAX_EVENT_TYPE_BYTES + 1), &b"x"[..]),
    ];
    assert_rejected(&log, "new-stream", &events, |e| {
        matches!(
            e,
            Error::EventTypeTooLong {
                index: 2,
                len: 257,
                max: 256
            }
        )
    });
    let r = log
        .append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("t".repeat(256), &b""[..])],
        )
        .expect("256-byte type");
    let got = read_from(&log, r.first_position);
    assert_eq!(got[0].event_type(), "t".repeat(256));
}

#[test]
fn empty_batch() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    assert_rejected(&log, "s", &[], |e| matches!(e, Error::EmptyBatch));
    assert_rejected(&log, "never-written", &[], |e| {
        matches!(e, Error::EmptyBatch)
    });
}

#[test]
fn too_many_events() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    let one = EventData::new("T", &b""[..]);
    let over = vec![one.clone(); limits::MAX_EVENTS_PER_APPEND + 1];
    assert_rejected(&log, "s", &over, |e| {
        matches!(
            e,
            Error::TooManyEvents {
                count: 10_001,
                max: 10_000
            }
        )
    });
    // Exactly the limit is one append of consecutive versions.
    let max = vec![one; limits::MAX_EVENTS_PER_APPEND];
    let r = log
        .append("s", ExpectedVersion::Exact(2), &max)
        .expect("the limit is allowed");
    assert_eq!((r.first_version, r.last_version), (3, 10_002));
    assert_eq!(r.last_position.index_in_frame(), 9_999);
    assert_eq!(read_from(&log, r.first_position).len(), 10_000);
}

#[test]
fn event_too_large() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    // The frame of that event alone (with its stream's name) exceeds what a
    // segment holds.
    let payload = MAX_FRAME as usize - 48 - 1 - 16 - 3 + 1;
    let big = EventData::new("Big", vec![7u8; payload]);
    let size = frame_bytes(Some("s"), &[(3, 0, payload, false)]);
    assert_eq!(size, MAX_FRAME + 8);
    assert_rejected(&log, "s", &[small(0), big], |e| {
        matches!(
            e,
            Error::EventTooLarge { index: 1, size_bytes, max_bytes }
                if *size_bytes == size && *max_bytes == MAX_FRAME
        )
    });
    // One byte less fills a segment exactly: it rolls to a new one.
    let fits = EventData::new("Big", vec![7u8; payload - 1]);
    assert_eq!(
        frame_bytes(Some("b"), &[(3, 0, payload - 1, false)]),
        MAX_FRAME
    );
    let r = log
        .append("b", ExpectedVersion::NoStream, &[fits])
        .expect("the largest frame fits");
    assert_eq!(r.first_position.frame_offset(), SEGMENT + HEADER_BYTES);
    log.close().expect("close");
    let log = open(tmp.path());
    let events = snapshot(&log);
    assert_eq!(events.len(), 4);
    assert_eq!(events[3].payload.len(), payload - 1);
    assert!(events[3].payload.iter().all(|&b| b == 7));
    log.close().expect("close");
}

#[test]
fn batch_too_large() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    // Each event fits alone; together they do not.
    let half = 600_000;
    let events = [
        EventData::new("Half", vec![1u8; half]),
        EventData::new("Half", vec![2u8; half]),
    ];
    let size = frame_bytes(None, &[(4, 0, half, false), (4, 0, half, false)]);
    assert!(size > MAX_FRAME);
    assert_rejected(&log, "s", &events, |e| {
        matches!(
            e,
            Error::BatchTooLarge { size_bytes, max_bytes }
                if *size_bytes == size && *max_bytes == MAX_FRAME
        )
    });
    // A new stream's frame also carries its name.
    let size = frame_bytes(Some("fresh"), &[(4, 0, half, false), (4, 0, half, false)]);
    assert_rejected(&log, "fresh", &events, |e| {
        matches!(
            e,
            Error::BatchTooLarge { size_bytes, .. } if *size_bytes == size
        )
    });
    assert_eq!(log.stream_version("fresh"), None);
}

#[test]
fn invalid_options_are_refused_before_touching_the_directory() {
    let tmp = tempdir();
    let dir = tmp.path().join("log");
    for size in [0, 3 * MIB, MIB / 2, 2 << 30, MIB + 8] {
        match Options::new().segment_size(size).open(&dir) {
            Err(Error::InvalidOption { name, .. }) => assert_eq!(name, "segment_size", "{size}"),
            other => panic!("segment size {size}: expected InvalidOption, got {other:?}"),
        }
    }
    match Options::new()
        .durability(Durability::Periodic(Duration::ZERO))
        .open(&dir)
    {
        Err(Error::InvalidOption { name, .. }) => assert_eq!(name, "durability"),
        other => panic!("expected InvalidOption, got {other:?}"),
    }
    assert!(!dir.exists(), "a refused open created the directory");
    // The bounds themselves are valid.
    for size in [MIB, 1 << 30] {
        Options::new()
            .segment_size(size)
            .open(tmp.path().join(format!("ok-{size}")))
            .expect("valid size")
            .close()
            .expect("close");
    }
}

#[test]
fn second_open_of_an_open_directory_is_locked() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    for _ in 0..2 {
        match Log::open(tmp.path()) {
            Err(Error::Locked { dir }) => assert_eq!(dir, tmp.path()),
            other => panic!("expected Locked, got {other:?}"),
        }
    }
    // The failed opens disturbed nothing.
    assert_eq!(snapshot(&log).len(), 2);
    log.append("s", ExpectedVersion::Exact(1), &[small(3)])
        .expect("append");
    log.close().expect("close");
    let log = open(tmp.path());
    assert_eq!(snapshot(&log).len(), 3);
}

/// Closes a seeded log and returns its first segment and its events.
fn closed_log(dir: &Path) -> (std::path::PathBuf, Vec<Ev>) {
    let log = seeded_log(dir);
    let events = snapshot(&log);
    log.close().expect("close");
    (seg_path(dir, 0), events)
}

#[test]
fn wrong_magic_is_unsupported_format() {
    let tmp = tempdir();
    let (seg, events) = closed_log(tmp.path());
    let original = read_at(&seg, 0, 8);
    write_at(&seg, 0, b"NOTSEGLG");
    match Log::open(tmp.path()) {
        Err(Error::UnsupportedFormat { path, .. }) => assert_eq!(path, seg),
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    // The refused open changed nothing: restore the magic and all is there.
    assert_eq!(read_at(&seg, 0, 8), b"NOTSEGLG");
    write_at(&seg, 0, &original);
    let log = open(tmp.path());
    assert_eq!(snapshot(&log), events);
}

#[test]
fn future_format_version_is_unsupported_format() {
    let tmp = tempdir();
    let (seg, events) = closed_log(tmp.path());
    assert_eq!(read_at(&seg, 8, 4), 3u32.to_le_bytes());
    write_at(&seg, 8, &4u32.to_le_bytes());
    match Log::open(tmp.path()) {
        Err(Error::UnsupportedFormat { path, reason }) => {
            assert_eq!(path, seg);
            assert!(reason.contains("version 4"), "{reason}");
        }
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    write_at(&seg, 8, &3u32.to_le_bytes());
    let log = open(tmp.path());
    assert_eq!(snapshot(&log), events);
}

#[test]
fn truncated_segment_file_is_corrupt() {
    let tmp = tempdir();
    let (seg, _) = closed_log(tmp.path());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open segment");
    file.set_len(SEGMENT / 2).expect("truncate");
    match Log::open(tmp.path()) {
        Err(e) => assert_corrupt(&e, &seg, SEGMENT / 2),
        Ok(_) => panic!("opened a truncated segment"),
    }
    // Shorter than even its header.
    file.set_len(100).expect("truncate");
    match Log::open(tmp.path()) {
        Err(e) => assert_corrupt(&e, &seg, 100),
        Ok(_) => panic!("opened a truncated segment"),
    }
}

#[test]
fn reading_from_a_position_past_the_end_yields_nothing() {
    let tmp = tempdir();
    let log = seeded_log(tmp.path());
    let events = snapshot(&log);
    let end = events.last().expect("events").next_position;
    assert!(read_from(&log, end).is_empty());
    let (seen, resume) = replay_from(&log, end).expect("replay");
    assert!(seen.is_empty());
    assert_eq!(resume, end);
    assert_eq!(read_from(&log, Position::START).len(), 2);
}
