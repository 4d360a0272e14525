//! Durable named consumers: resume after the last checkpoint across
//! reopens, at-least-once after it, one consumer per name, bad names and
//! damaged checkpoints as errors.

mod common;

use std::time::Duration;

use common::*;
use seglog::{Error, EventData, ExpectedVersion, Log, Position, RecordedEvent, limits};

const WAIT: Duration = Duration::from_secs(10);

fn append_n(log: &Log, from: u8, n: u8) -> Vec<Position> {
    (from..from + n)
        .map(|i| {
            log.append(
                &format!("s-{}", i % 3),
                ExpectedVersion::Any,
                &[EventData::new("E", vec![i])],
            )
            .expect("append")
            .first_position
        })
        .collect()
}

fn payload(e: &RecordedEvent) -> u8 {
    e.payload()[0]
}

#[test]
fn a_consumer_resumes_after_its_checkpoint_across_reopens() {
    let dir = tempdir();
    let log = Log::open(dir.path()).expect("open");
    append_n(&log, 0, 10);
    let mut consumer = log.consumer("billing").expect("consumer");
    assert_eq!(consumer.name(), "billing");
    assert_eq!(consumer.checkpointed(), None);
    let mut sub = consumer.subscribe().expect("subscribe");
    for want in 0..4u8 {
        let e = sub.next_timeout(WAIT).expect("next").expect("event");
        assert_eq!(payload(&e), want);
        consumer.ack(e.position()).expect("ack");
        if want == 2 {
            consumer.checkpoint().expect("checkpoint");
        }
    }
    // Event 3 is acknowledged but not checkpointed: a crash here must
    // deliver it again.
    let third = consumer.checkpointed().expect("checkpointed");
    assert!(consumer.acked() > Some(third));
    drop((sub, consumer));
    drop(log);

    let log = Log::open(dir.path()).expect("reopen");
    let mut consumer = log.consumer("billing").expect("consumer");
    assert_eq!(consumer.checkpointed(), Some(third));
    let mut sub = consumer.subscribe().expect("subscribe");
    for want in 3..10u8 {
        let e = sub.next_timeout(WAIT).expect("next").expect("event");
        assert_eq!(payload(&e), want);
        consumer.ack(e.position()).expect("ack");
    }
    // Live events follow the history.
    append_n(&log, 10, 2);
    for want in 10..12u8 {
        let e = sub.next_timeout(WAIT).expect("next").expect("event");
        assert_eq!(payload(&e), want);
        consumer.ack(e.position()).expect("ack");
    }
    consumer.checkpoint().expect("checkpoint");
    // An older ack changes nothing.
    let last = consumer.acked();
    consumer.ack(third).expect("ack");
    assert_eq!(consumer.acked(), last);
    drop((sub, consumer));
    log.close().expect("close");

    let log = Log::open(dir.path()).expect("reopen");
    let consumer = log.consumer("billing").expect("consumer");
    let mut sub = consumer.subscribe().expect("subscribe");
    assert!(
        sub.next_timeout(Duration::from_millis(20))
            .expect("wait")
            .is_none()
    );
    // Another name starts at the beginning.
    let other = log.consumer("shipping").expect("consumer");
    let mut sub = other.subscribe().expect("subscribe");
    assert_eq!(
        sub.next_timeout(WAIT).expect("next").map(|e| payload(&e)),
        Some(0)
    );
}

#[test]
fn one_consumer_per_name_at_a_time() {
    let dir = tempdir();
    let log = Log::open(dir.path()).expect("open");
    let first = log.consumer("projector").expect("consumer");
    assert!(matches!(
        log.consumer("projector"),
        Err(Error::ConsumerInUse { name }) if name == "projector"
    ));
    drop(first);
    log.consumer("projector").expect("free again");
}

#[test]
fn bad_names_and_positions_are_errors() {
    let dir = tempdir();
    let log = Log::open(dir.path()).expect("open");
    assert!(matches!(
        log.consumer(""),
        Err(Error::InvalidConsumerName { .. })
    ));
    let long = "x".repeat(limits::MAX_CONSUMER_NAME_BYTES + 1);
    assert!(matches!(
        log.consumer(&long),
        Err(Error::InvalidConsumerName { .. })
    ));
    let positions = append_n(&log, 0, 2);
    let mut c = log.consumer("../../etc/passwd").expect("any UTF-8 name");
    let past = Position::from_u64(positions[1].as_u64() + (1 << 40));
    assert!(matches!(
        c.ack(past),
        Err(Error::InvalidPosition { position }) if position == past
    ));
    // Only an event's own position: not one inside a frame, not an index
    // past its frame's events, not the position after the last event.
    let last = log
        .read_all(positions[1])
        .expect("read")
        .next()
        .expect("event")
        .expect("event");
    let not_events = [
        Position::from_u64(positions[0].as_u64() + (8 << 16)),
        Position::from_u64(positions[0].as_u64() + 1),
        last.next_position(),
    ];
    for p in not_events {
        assert!(
            matches!(c.ack(p), Err(Error::InvalidPosition { position }) if position == p),
            "{p:?}"
        );
    }
    assert_eq!(c.acked(), None);
    c.ack(positions[0]).expect("ack");
    c.checkpoint().expect("checkpoint");
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("consumer-"))
        .collect();
    assert_eq!(files, ["consumer-2e2e2f2e2e2f6574632f706173737764.ckpt"]);
}

#[test]
fn a_damaged_checkpoint_is_an_error_not_a_restart() {
    let dir = tempdir();
    let log = Log::open(dir.path()).expect("open");
    let positions = append_n(&log, 0, 3);
    let mut c = log.consumer("billing").expect("consumer");
    c.ack(positions[1]).expect("ack");
    c.checkpoint().expect("checkpoint");
    drop(c);
    let path = dir.path().join("consumer-62696c6c696e67.ckpt");
    flip_bit(&path, 40, 3);
    match log.consumer("billing") {
        Err(Error::Corrupt {
            segment, reason, ..
        }) => {
            assert_eq!(segment, path);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A checkpoint of another log is refused too.
    let other_dir = tempdir();
    let other = Log::open(other_dir.path()).expect("open");
    flip_bit(&path, 40, 3);
    std::fs::copy(&path, other_dir.path().join("consumer-62696c6c696e67.ckpt")).expect("copy");
    match other.consumer("billing") {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("another log"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        log.consumer("billing").expect("repaired").checkpointed(),
        Some(positions[1])
    );
}
