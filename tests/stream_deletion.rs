//! Stream deletion (issue 28, item 5): a soft delete hides a stream's
//! early versions at once, a hard delete makes it gone for good; both
//! hold across reopen, in a `Reader`, against racing appends, and after
//! retention removed the events that recorded them.

use std::time::Duration;

use seglog::{
    Error, EventData, ExpectedVersion, Log, Options, Position, Reader, STREAMS_STREAM,
    TOMBSTONE_EVENT, TRUNCATE_EVENT,
};

fn events(n: usize) -> Vec<EventData> {
    (0..n)
        .map(|i| EventData::new("E", format!("e{i}")))
        .collect()
}

fn versions(read: seglog::Result<seglog::ReadStream>) -> Vec<u64> {
    read.unwrap().map(|e| e.unwrap().version()).collect()
}

#[test]
fn a_soft_delete_hides_the_early_versions_everywhere_and_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    log.append("s", ExpectedVersion::NoStream, &events(10))
        .unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(versions(reader.read_stream("s", 0)).len(), 10);

    let at = log.truncate_stream("s", 4).unwrap();
    let check = |read: &dyn Fn(u64, bool) -> seglog::Result<seglog::ReadStream>| {
        assert_eq!(versions(read(0, false)), (4..10).collect::<Vec<_>>());
        assert_eq!(versions(read(6, false)), (6..10).collect::<Vec<_>>());
        assert_eq!(
            versions(read(u64::MAX, true)),
            (4..10).rev().collect::<Vec<_>>()
        );
        assert_eq!(versions(read(2, true)), Vec::<u64>::new());
    };
    check(&|v, back| {
        if back {
            log.read_stream_backward("s", v)
        } else {
            log.read_stream("s", v)
        }
    });
    // A reader opened before the truncation learns it as it follows.
    check(&|v, back| {
        if back {
            reader.read_stream_backward("s", v)
        } else {
            reader.read_stream("s", v)
        }
    });
    let mut sub = log.subscribe_stream("s", 0).unwrap();
    assert_eq!(sub.next().unwrap().unwrap().version(), 4);

    // The log itself keeps every event, and the record of the deletion.
    let all: Vec<_> = log
        .read_all(Position::START)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(all.iter().filter(|e| e.stream() == "s").count(), 10);
    let record = all.iter().find(|e| e.stream() == STREAMS_STREAM).unwrap();
    assert_eq!(
        (record.position(), record.event_type()),
        (at, TRUNCATE_EVENT)
    );

    // A lower cut changes nothing; a cut past the next version is refused.
    log.truncate_stream("s", 2).unwrap();
    assert_eq!(versions(log.read_stream("s", 0))[0], 4);
    assert!(matches!(
        log.truncate_stream("s", 12),
        Err(Error::TruncateAhead {
            before: 12,
            last_version: 9,
            ..
        })
    ));
    assert!(matches!(
        log.truncate_stream("nope", 1),
        Err(Error::UnknownStream { .. })
    ));
    let r = log
        .append("s", ExpectedVersion::Exact(9), &events(1))
        .unwrap();
    assert_eq!(r.first_version, 10);
    drop(sub);
    drop(reader);
    log.close().unwrap();

    let log = Log::open(dir.path()).unwrap();
    assert_eq!(
        versions(log.read_stream("s", 0)),
        (4..11).collect::<Vec<_>>()
    );
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(
        versions(reader.read_stream("s", 0)),
        (4..11).collect::<Vec<_>>()
    );
    assert!(log.verify(None).unwrap().is_intact());
}

#[test]
fn a_hard_delete_is_final_for_reads_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    log.append("gone", ExpectedVersion::NoStream, &events(3))
        .unwrap();
    log.append("kept", ExpectedVersion::NoStream, &events(2))
        .unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let at = log.delete_stream("gone").unwrap();

    let refused = |r: seglog::Result<()>| {
        assert!(
            matches!(&r, Err(Error::StreamDeleted { stream }) if stream == "gone"),
            "{r:?}"
        )
    };
    for expected in [
        ExpectedVersion::Any,
        ExpectedVersion::NoStream,
        ExpectedVersion::StreamExists,
        ExpectedVersion::Exact(2),
    ] {
        refused(log.append("gone", expected, &events(1)).map(|_| ()));
    }
    let request = seglog::AppendRequest {
        stream: "gone",
        expected: ExpectedVersion::Any,
        events: &events(1),
    };
    refused(log.append_many(&[request]).unwrap().remove(0).map(|_| ()));
    refused(log.read_stream("gone", 0).map(|_| ()));
    refused(log.read_stream_backward("gone", 5).map(|_| ()));
    refused(log.subscribe_stream("gone", 0).map(|_| ()));
    refused(reader.read_stream("gone", 0).map(|_| ()));
    refused(log.delete_stream("gone").map(|_| ()));
    refused(log.truncate_stream("gone", 1).map(|_| ()));
    assert_eq!(versions(log.read_stream("kept", 0)), vec![0, 1]);
    assert!(matches!(
        log.append(STREAMS_STREAM, ExpectedVersion::Any, &events(1)),
        Err(Error::ReservedStreamName { .. })
    ));
    let record: Vec<_> = log
        .read_stream(STREAMS_STREAM, 0)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(record.len(), 1);
    assert_eq!(
        (record[0].position(), record[0].event_type()),
        (at, TOMBSTONE_EVENT)
    );
    drop(reader);
    log.close().unwrap();

    let log = Log::open(dir.path()).unwrap();
    refused(
        log.append("gone", ExpectedVersion::Any, &events(1))
            .map(|_| ()),
    );
    refused(log.read_stream("gone", 0).map(|_| ()));
    let reader = Reader::open(dir.path()).unwrap();
    refused(reader.read_stream("gone", 0).map(|_| ()));
}

#[test]
fn no_append_racing_a_hard_delete_lands_after_its_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let log = Options::new()
        .durability(seglog::Durability::None)
        .open(dir.path())
        .unwrap();
    log.append("raced", ExpectedVersion::NoStream, &events(1))
        .unwrap();
    let tombstone = std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while log
                    .append("raced", ExpectedVersion::Any, &events(1))
                    .is_ok()
                {}
            });
        }
        std::thread::sleep(Duration::from_millis(20));
        log.delete_stream("raced").unwrap()
    });
    let last = log
        .read_all(Position::START)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.stream() == "raced")
        .map(|e| e.position())
        .max()
        .unwrap();
    assert!(
        last < tombstone,
        "{last} after the tombstone at {tombstone}"
    );
}

#[test]
fn deletions_outlive_retention_removing_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let options = || {
        Options::new()
            .segment_size(1 << 20)
            .retain_max_bytes(1 << 20)
    };
    let log = options().open(dir.path()).unwrap();
    log.append("soft", ExpectedVersion::NoStream, &events(5))
        .unwrap();
    log.append("hard", ExpectedVersion::NoStream, &events(1))
        .unwrap();
    log.truncate_stream("soft", 3).unwrap();
    log.delete_stream("hard").unwrap();
    let big = vec![EventData::new("Big", vec![7u8; 64 * 1024])];
    for _ in 0..40 {
        log.append("filler", ExpectedVersion::Any, &big).unwrap();
    }
    log.append("soft", ExpectedVersion::Any, &events(1))
        .unwrap();
    let retained = log.apply_retention().unwrap();
    assert!(retained.segments >= 1, "{retained:?}");
    assert!(matches!(
        log.read_stream(STREAMS_STREAM, 0),
        Err(Error::StreamBeforeLogStart { .. })
    ));
    log.close().unwrap();
    let log = options().open(dir.path()).unwrap();
    assert_eq!(versions(log.read_stream("soft", 5)), vec![5]);
    assert!(matches!(
        log.append("hard", ExpectedVersion::Any, &events(1)),
        Err(Error::StreamDeleted { .. })
    ));
    let reader = Reader::open(dir.path()).unwrap();
    assert!(matches!(
        reader.read_stream("hard", 0),
        Err(Error::StreamDeleted { .. })
    ));
}
