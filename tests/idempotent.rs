//! Idempotent appends: a retried append (same event ids, same expected
//! version) returns the original result and writes nothing.

mod common;

use common::*;
use seglog::{AppendResult, Error, EventData, ExpectedVersion, Log, Options, Position};

fn ev(id: u128) -> EventData {
    EventData::new("Placed", id.to_le_bytes().to_vec()).with_id(id)
}

fn count(log: &Log) -> usize {
    log.read_all(Position::START).expect("read_all").count()
}

fn retry(
    log: &Log,
    stream: &str,
    expected: ExpectedVersion,
    ids: &[u128],
) -> seglog::Result<AppendResult> {
    let events: Vec<EventData> = ids.iter().map(|&id| ev(id)).collect();
    log.append(stream, expected, &events)
}

#[test]
fn retries_return_the_original_result_and_write_nothing() {
    let dir = tempdir();
    let log = Options::new()
        .index_interval(4)
        .open(dir.path())
        .expect("open");
    let created = retry(&log, "o", ExpectedVersion::NoStream, &[1, 2]).expect("create");
    let second = retry(&log, "o", ExpectedVersion::Exact(1), &[3]).expect("second");
    let third = retry(&log, "o", ExpectedVersion::Exact(2), &[4]).expect("third");
    assert_eq!(count(&log), 4);

    // The stream's creation, retried after two more appends.
    assert_eq!(
        retry(&log, "o", ExpectedVersion::NoStream, &[1, 2]).expect("retry"),
        created
    );
    // A retry of an append that is not the last one.
    assert_eq!(
        retry(&log, "o", ExpectedVersion::Exact(1), &[3]).expect("retry"),
        second
    );
    assert_eq!(
        retry(&log, "o", ExpectedVersion::Exact(2), &[4]).expect("retry"),
        third
    );
    assert_eq!(count(&log), 4, "retries wrote nothing");
    assert_eq!(log.stream_version("o"), Some(3));

    // Other ids, or a different batch shape, are real conflicts.
    for (expected, ids) in [
        (ExpectedVersion::Exact(1), vec![9]),
        (ExpectedVersion::Exact(1), vec![3, 4]),
        (ExpectedVersion::NoStream, vec![1]),
    ] {
        match retry(&log, "o", expected, &ids) {
            Err(Error::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(3)),
            other => panic!("{expected:?} {ids:?}: expected a conflict, got {other:?}"),
        }
    }
    // Events without ids are never deduplicated.
    let no_ids = log.append(
        "o",
        ExpectedVersion::Exact(1),
        &[EventData::new("Placed", &b"x"[..])],
    );
    assert!(
        matches!(no_ids, Err(Error::WrongExpectedVersion { .. })),
        "{no_ids:?}"
    );
    assert_eq!(count(&log), 4);

    // Any: only the stream's last append is recognised.
    let any = retry(&log, "o", ExpectedVersion::Any, &[5]).expect("any");
    assert_eq!(
        retry(&log, "o", ExpectedVersion::Any, &[5]).expect("retry"),
        any
    );
    assert_eq!(count(&log), 5);
    let exists = retry(&log, "o", ExpectedVersion::StreamExists, &[5]).expect("retry");
    assert_eq!(exists, any, "StreamExists retry of the last append");
    retry(&log, "o", ExpectedVersion::Any, &[6]).expect("new");
    let older = retry(&log, "o", ExpectedVersion::Any, &[5]).expect("outside the window");
    assert_eq!(
        older.first_version, 6,
        "an Any retry of an older append appends again"
    );
    log.close().expect("close");

    // The window survives a reopen (with and without index files).
    for delete in [false, true] {
        if delete {
            remove_index_files(dir.path());
        }
        let log = Options::new()
            .index_interval(4)
            .open(dir.path())
            .expect("reopen");
        assert_eq!(
            retry(&log, "o", ExpectedVersion::NoStream, &[1, 2]).expect("retry"),
            created
        );
        assert_eq!(
            retry(&log, "o", ExpectedVersion::Exact(2), &[4]).expect("retry"),
            third
        );
        assert_eq!(count(&log), 7);
        log.close().expect("close");
    }
}

#[test]
fn a_retry_deep_in_a_long_stream_is_found_through_the_index() {
    let dir = tempdir();
    let log = Options::new()
        .index_interval(4)
        .open(dir.path())
        .expect("open");
    let mut results: Vec<(AppendResult, (ExpectedVersion, Vec<u128>))> = Vec::new();
    for i in 0..200u128 {
        // Interleave another stream so back-links skip unrelated frames.
        retry(&log, "other", ExpectedVersion::Any, &[10_000 + i]).expect("other");
        let ids: Vec<u128> = (0..(i % 3 + 1)).map(|k| i * 10 + k).collect();
        let expected = match results.last() {
            None => ExpectedVersion::NoStream,
            Some((r, _)) => ExpectedVersion::Exact(r.last_version),
        };
        let r = retry(&log, "long", expected, &ids).expect("append");
        results.push((r, (expected, ids)));
    }
    let before = count(&log);
    for (r, (expected, ids)) in results.iter().step_by(7) {
        assert_eq!(retry(&log, "long", *expected, ids).expect("retry"), *r);
    }
    assert_eq!(count(&log), before);
}
