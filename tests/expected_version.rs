//! Optimistic concurrency: every `ExpectedVersion` rule, what a mismatch
//! reports, that a mismatch writes nothing, and that versions survive reopen.

mod common;

use common::*;
use seglog::{Error, EventData, ExpectedVersion, Log, Options};

fn ev(n: u8) -> EventData {
    EventData::new("E", vec![n; 3])
}

fn open(dir: &std::path::Path) -> Log {
    Options::new().segment_size(MIB).open(dir).expect("open")
}

/// Asserts `append` is refused as a wrong expected version with `actual`,
/// and that the log did not change.
#[track_caller]
fn assert_refused(log: &Log, stream: &str, expected: ExpectedVersion, actual: Option<u64>) {
    let before = snapshot(log);
    let version = log.stream_version(stream);
    let streams = log.stream_count();
    match log.append(stream, expected, &[ev(0xEE), ev(0xEF)]) {
        Err(Error::WrongExpectedVersion {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(s, stream);
            assert_eq!(e, expected);
            assert_eq!(a, actual);
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    assert_eq!(snapshot(log), before, "a refused append wrote something");
    assert_eq!(log.stream_version(stream), version);
    assert_eq!(log.stream_count(), streams);
}

#[test]
fn no_stream_accepts_a_new_stream_and_refuses_an_existing_one() {
    let dir = tempdir();
    let log = open(dir.path());
    assert_eq!(log.stream_version("a"), None);
    let r = log
        .append("a", ExpectedVersion::NoStream, &[ev(1), ev(2)])
        .expect("new stream");
    assert_eq!(
        (r.first_version, r.last_version),
        (0, 1),
        "versions start at 0"
    );
    assert_eq!(log.stream_version("a"), Some(1));
    assert_refused(&log, "a", ExpectedVersion::NoStream, Some(1));
    let events = snapshot(&log);
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].version, events[1].version), (0, 1));
    assert_eq!(events[1].payload, vec![2; 3]);
}

#[test]
fn stream_exists_refuses_a_new_stream_and_accepts_an_existing_one() {
    let dir = tempdir();
    let log = open(dir.path());
    assert_refused(&log, "b", ExpectedVersion::StreamExists, None);
    assert_eq!(log.stream_count(), 0);
    assert_eq!(snapshot(&log).len(), 0);
    log.append("b", ExpectedVersion::NoStream, &[ev(1)])
        .expect("create");
    let r = log
        .append("b", ExpectedVersion::StreamExists, &[ev(2)])
        .expect("existing stream");
    assert_eq!((r.first_version, r.last_version), (1, 1));
    assert_eq!(log.stream_version("b"), Some(1));
}

#[test]
fn exact_accepts_the_current_version_only() {
    let dir = tempdir();
    let log = open(dir.path());
    // Exact on a stream that does not exist: even Exact(0) is wrong.
    assert_refused(&log, "c", ExpectedVersion::Exact(0), None);
    log.append("c", ExpectedVersion::NoStream, &[ev(1), ev(2), ev(3)])
        .expect("create");
    assert_eq!(log.stream_version("c"), Some(2));
    assert_refused(&log, "c", ExpectedVersion::Exact(1), Some(2));
    assert_refused(&log, "c", ExpectedVersion::Exact(3), Some(2));
    assert_refused(&log, "c", ExpectedVersion::Exact(0), Some(2));
    let r = log
        .append("c", ExpectedVersion::Exact(2), &[ev(4)])
        .expect("matching version");
    assert_eq!((r.first_version, r.last_version), (3, 3));
    assert_refused(&log, "c", ExpectedVersion::Exact(2), Some(3));
    // Other streams are independent.
    assert_refused(&log, "d", ExpectedVersion::Exact(3), None);
    let versions: Vec<u64> = snapshot(&log).iter().map(|e| e.version).collect();
    assert_eq!(versions, [0, 1, 2, 3]);
}

#[test]
fn any_accepts_new_and_existing_streams() {
    let dir = tempdir();
    let log = open(dir.path());
    let r = log
        .append("e", ExpectedVersion::Any, &[ev(1)])
        .expect("new stream");
    assert_eq!((r.first_version, r.last_version), (0, 0));
    let r = log
        .append("e", ExpectedVersion::Any, &[ev(2), ev(3)])
        .expect("existing stream");
    assert_eq!((r.first_version, r.last_version), (1, 2));
    assert_eq!(log.stream_version("e"), Some(2));
    let got: Vec<(String, u64, Vec<u8>)> = snapshot(&log)
        .into_iter()
        .map(|e| (e.stream, e.version, e.payload))
        .collect();
    assert_eq!(
        got,
        [
            ("e".to_string(), 0, vec![1; 3]),
            ("e".to_string(), 1, vec![2; 3]),
            ("e".to_string(), 2, vec![3; 3]),
        ]
    );
}

#[test]
fn matches_is_the_documented_table() {
    use ExpectedVersion::*;
    let cases = [
        (Any, None, true),
        (Any, Some(5), true),
        (NoStream, None, true),
        (NoStream, Some(0), false),
        (StreamExists, None, false),
        (StreamExists, Some(0), true),
        (Exact(0), None, false),
        (Exact(0), Some(0), true),
        (Exact(4), Some(5), false),
    ];
    for (expected, actual, ok) in cases {
        assert_eq!(expected.matches(actual), ok, "{expected:?} vs {actual:?}");
    }
}

/// After a clean close and after a crash-like drop of the index files, the
/// reopened log knows every stream's version and enforces it.
#[test]
fn versions_survive_reopen() {
    let dir = tempdir();
    let log = open(dir.path());
    log.append("f", ExpectedVersion::NoStream, &[ev(1), ev(2)])
        .expect("f");
    log.append("g", ExpectedVersion::NoStream, &[ev(3)])
        .expect("g");
    log.append("f", ExpectedVersion::Exact(1), &[ev(4)])
        .expect("f again");
    log.close().expect("close");

    for rescan in [false, true] {
        if rescan {
            // Without the index files, open rebuilds the heads from segments.
            remove_index_files(dir.path());
        }
        let log = open(dir.path());
        assert_eq!(log.stream_version("f"), Some(2), "rescan {rescan}");
        assert_eq!(log.stream_version("g"), Some(0), "rescan {rescan}");
        assert_eq!(log.stream_version("h"), None, "rescan {rescan}");
        assert_eq!(log.stream_count(), 2);
        assert_refused(&log, "f", ExpectedVersion::Exact(1), Some(2));
        assert_refused(&log, "g", ExpectedVersion::NoStream, Some(0));
        assert_refused(&log, "h", ExpectedVersion::StreamExists, None);
        log.close().expect("close");
    }

    let log = open(dir.path());
    let r = log
        .append("f", ExpectedVersion::Exact(2), &[ev(5)])
        .expect("append on the reopened version");
    assert_eq!(r.first_version, 3);
    log.close().expect("close");
    let log = open(dir.path());
    assert_eq!(log.stream_version("f"), Some(3));
    let f: Vec<u64> = snapshot(&log)
        .iter()
        .filter(|e| e.stream == "f")
        .map(|e| e.version)
        .collect();
    assert_eq!(f, [0, 1, 2, 3]);
}
