//! `append_many`: several appends under one lock and one sync, each its own
//! atomic frame with its own check, exactly as the same appends one by one.

mod common;

use common::*;
use seglog::{
    AppendRequest, Durability, Error, EventData, ExpectedVersion, Log, Options, Position, limits,
};

fn events(n: usize, tag: u8) -> Vec<EventData> {
    (0..n)
        .map(|i| EventData::new("E", vec![tag; 10 + i]).with_id(u128::from(tag) << 8 | i as u128))
        .collect()
}

/// What a read sees of an event, timestamps aside.
fn seen(log: &Log) -> Vec<(Position, String, u64, Vec<u8>)> {
    read_all(log)
        .iter()
        .map(|e| {
            (
                e.position(),
                e.stream().to_string(),
                e.version(),
                e.payload().to_vec(),
            )
        })
        .collect()
}

#[test]
fn the_same_as_one_append_after_another_with_errors_kept_apart() {
    let (one_dir, many_dir) = (tempdir(), tempdir());
    let options = Options::new()
        .segment_size(MIB)
        .durability(Durability::Sync);
    let one = options.clone().open(one_dir.path()).expect("open");
    let many = options.open(many_dir.path()).expect("open");
    let mut rng = Rng::new(3);
    for round in 0..30u8 {
        let batches: Vec<(String, ExpectedVersion, Vec<EventData>)> = (0..rng.range(1, 40))
            .map(|k| {
                let stream = format!("s-{}", rng.below(25));
                let expected = match rng.below(4) {
                    0 => ExpectedVersion::NoStream,
                    1 => ExpectedVersion::Exact(rng.below(5)),
                    _ => ExpectedVersion::Any,
                };
                // Now and then an empty batch: refused alone.
                let n = if rng.chance(0.05) {
                    0
                } else {
                    rng.range(1, 4) as usize
                };
                (
                    stream,
                    expected,
                    events(n, round.wrapping_mul(41).wrapping_add(k as u8)),
                )
            })
            .collect();
        let singles: Vec<String> = batches
            .iter()
            .map(|(s, e, ev)| format!("{:?}", one.append(s, *e, ev)))
            .collect();
        let requests: Vec<AppendRequest<'_>> = batches
            .iter()
            .map(|(stream, expected, events)| AppendRequest {
                stream,
                expected: *expected,
                events,
            })
            .collect();
        let together: Vec<String> = many
            .append_many(&requests)
            .expect("append_many")
            .iter()
            .map(|r| format!("{r:?}"))
            .collect();
        assert_eq!(together, singles, "round {round}");
    }
    let (a, b) = (seen(&one), seen(&many));
    assert!(a.len() > 500, "{}", a.len());
    assert!(a == b, "the logs differ");
    assert!(
        segment_files(many_dir.path()).len() >= 2,
        "the test should roll"
    );
    // Everything acknowledged survives a reopen.
    many.close().expect("close");
    let many = Log::open(many_dir.path()).expect("reopen");
    assert!(seen(&many) == a);
}

#[test]
fn retries_limits_and_an_empty_call() {
    let dir = tempdir();
    let log = Log::open(dir.path()).expect("open");
    assert!(log.append_many(&[]).expect("nothing").is_empty());
    let batch = events(2, 9);
    let request = AppendRequest {
        stream: "retried",
        expected: ExpectedVersion::NoStream,
        events: &batch,
    };
    let first = log.append_many(&[request]).expect("call");
    // A client retry of the same ids: the original result, nothing written.
    let again = log.append_many(&[request, request]).expect("call");
    assert_eq!(again.len(), 2);
    for r in &again {
        assert_eq!(r.as_ref().ok(), first[0].as_ref().ok());
    }
    assert_eq!(read_all(&log).len(), 2);
    let too_many = vec![request; limits::MAX_APPENDS_PER_CALL + 1];
    assert!(matches!(
        log.append_many(&too_many),
        Err(Error::TooManyAppends { count, max }) if count == max + 1
    ));
}

/// Thousands of new streams in one call grow the registry mid-call (the
/// entries loaded ahead follow the table to its new place).
#[test]
fn many_new_streams_in_one_call() {
    let dir = tempdir();
    let log = Options::new()
        .durability(Durability::None)
        .open(dir.path())
        .expect("open");
    let one = [EventData::new("Created", &b"x"[..])];
    let names: Vec<String> = (0..limits::MAX_APPENDS_PER_CALL)
        .map(|i| format!("new-{i}"))
        .collect();
    let requests: Vec<AppendRequest<'_>> = names
        .iter()
        .map(|stream| AppendRequest {
            stream,
            expected: ExpectedVersion::NoStream,
            events: &one,
        })
        .collect();
    for r in log.append_many(&requests).expect("call") {
        assert_eq!(r.expect("created").first_version, 0);
    }
    assert_eq!(log.stream_count(), names.len());
    for name in names.iter().step_by(97) {
        assert_eq!(log.stream_version(name), Some(0), "{name}");
    }
}
