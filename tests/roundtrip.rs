//! Many events of random sizes over many streams and many segment rolls,
//! read back exactly, before and after a clean close and reopen.
//!
//! Size: by default 10,000 events (about 60 MB, ~1.5-2 s in a debug build).
//! `SEGLOG_SLOW=1` runs the full 100,000 events (about 0.6 GB; 13-19 s in a
//! debug build on a 2-core machine, too close to the budget to run by default).

mod common;

use common::*;
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};

const SEGMENT: u64 = 8 * MIB;
const MAX_PAYLOAD: u64 = 64 * 1024;
const TYPES: [&str; 5] = [
    "OrderPlaced",
    "OrderPaid",
    "ItemAdded",
    "é-ünïcode-type",
    "x",
];

/// What one appended event must read back as; payload and metadata are
/// regenerated from their seeds.
struct Want {
    stream: usize,
    version: u64,
    event_type: String,
    schema_version: u16,
    id: Option<u128>,
    metadata: (u64, usize),
    payload: (u64, usize),
    position: Position,
}

fn options() -> Options {
    Options::new()
        .segment_size(SEGMENT)
        .durability(Durability::None)
}

fn stream_name(i: usize) -> String {
    format!("stream-{i}")
}

/// Appends `total` events in random batches; returns what each must read as.
fn write(log: &Log, rng: &mut Rng, total: usize, streams: usize) -> (Vec<Want>, Vec<Option<u64>>) {
    let mut wants: Vec<Want> = Vec::with_capacity(total);
    let mut versions: Vec<Option<u64>> = vec![None; streams];
    let mut last_position: Option<Position> = None;
    let mut long_type = String::new();
    while wants.len() < total {
        let stream = rng.below(streams as u64) as usize;
        let count = (rng.range(1, 20) as usize).min(total - wants.len());
        let mut batch = Vec::with_capacity(count);
        let mut batch_wants = Vec::with_capacity(count);
        for _ in 0..count {
            let event_type = if rng.chance(0.01) {
                // Longest type accepted, random ASCII.
                long_type.clear();
                long_type.extend((0..256).map(|_| (b'a' + rng.below(26) as u8) as char));
                long_type.clone()
            } else {
                TYPES[rng.below(TYPES.len() as u64) as usize].to_string()
            };
            let payload = (rng.next_u64(), rng.log_uniform(MAX_PAYLOAD) as usize);
            let metadata = if rng.chance(0.5) {
                (rng.next_u64(), rng.below(100) as usize)
            } else {
                (0, 0)
            };
            let id = rng
                .chance(0.7)
                .then(|| (u128::from(rng.next_u64()) << 64) | wants.len() as u128);
            let schema_version = rng.below(1 << 16) as u16;
            let mut e = EventData::new(event_type.clone(), payload_for(payload.0, payload.1))
                .with_schema_version(schema_version);
            if metadata.1 > 0 {
                e = e.with_metadata(payload_for(metadata.0, metadata.1));
            }
            if let Some(id) = id {
                e = e.with_id(id);
            }
            batch.push(e);
            batch_wants.push(Want {
                stream,
                version: 0,
                event_type,
                schema_version,
                id,
                metadata,
                payload,
                position: Position::START,
            });
        }
        let expected = match (versions[stream], rng.below(3)) {
            (_, 0) => ExpectedVersion::Any,
            (None, _) => ExpectedVersion::NoStream,
            (Some(v), 1) => ExpectedVersion::Exact(v),
            (Some(_), _) => ExpectedVersion::StreamExists,
        };
        let r = log
            .append(&stream_name(stream), expected, &batch)
            .expect("append");
        let first = versions[stream].map_or(0, |v| v + 1);
        assert_eq!(r.first_version, first);
        assert_eq!(r.last_version, first + count as u64 - 1);
        assert_eq!(r.first_position.index_in_frame(), 0);
        assert_eq!(
            r.last_position.frame_offset(),
            r.first_position.frame_offset()
        );
        assert_eq!(usize::from(r.last_position.index_in_frame()), count - 1);
        assert!(last_position.is_none_or(|p| p < r.first_position));
        assert_eq!(r.first_position.frame_offset() % 8, 0);
        last_position = Some(r.last_position);
        versions[stream] = Some(r.last_version);
        for (i, mut w) in batch_wants.into_iter().enumerate() {
            w.version = first + i as u64;
            w.position = Position::from_u64(r.first_position.as_u64() + i as u64);
            wants.push(w);
        }
    }
    (wants, versions)
}

/// Reads the whole log and compares it with `wants`, field by field.
fn verify(log: &Log, wants: &[Want], versions: &[Option<u64>]) {
    let mut prev: Option<Ev> = None;
    let mut read = 0usize;
    let mut segments_seen = std::collections::BTreeSet::new();
    for (i, e) in log.read_all(Position::START).expect("read_all").enumerate() {
        let e = e.unwrap_or_else(|err| panic!("event {i}: {err}"));
        let w = wants
            .get(i)
            .unwrap_or_else(|| panic!("more events than appended: {e:?}"));
        assert_eq!(e.stream(), stream_name(w.stream), "event {i}");
        assert_eq!(e.version(), w.version, "event {i}");
        assert_eq!(e.event_type(), w.event_type, "event {i}");
        assert_eq!(e.schema_version(), w.schema_version, "event {i}");
        assert_eq!(e.id(), w.id, "event {i}");
        assert_eq!(e.position(), w.position, "event {i}");
        assert_eq!(e.payload().len(), w.payload.1, "event {i}");
        assert!(
            e.payload()[..] == payload_for(w.payload.0, w.payload.1)[..],
            "event {i}: payload differs"
        );
        assert_eq!(
            &e.metadata()[..],
            &payload_for(w.metadata.0, w.metadata.1)[..],
            "event {i}: metadata differs"
        );
        segments_seen.insert(e.position().frame_offset() / SEGMENT);
        // Only the position fields matter for the pairwise check: keep the
        // previous event small.
        let mut cur = Ev::from(&e);
        cur.payload.clear();
        cur.metadata.clear();
        if let Some(p) = prev.take() {
            check_positions(&[p, cur.clone()], SEGMENT);
        }
        prev = Some(cur);
        read += 1;
    }
    assert_eq!(read, wants.len(), "events read");
    // Nothing follows the last event.
    let last = prev.expect("at least one event");
    assert_eq!(read_from(log, last.next_position).len(), 0);
    assert!(
        segments_seen.len() >= 5,
        "only {} segments used: not enough rolls",
        segments_seen.len()
    );
    for (i, v) in versions.iter().enumerate() {
        assert_eq!(log.stream_version(&stream_name(i)), *v, "stream {i}");
    }
    assert_eq!(
        log.stream_count(),
        versions.iter().filter(|v| v.is_some()).count()
    );
}

#[test]
fn random_sizes_many_streams_and_rolls_read_back_exactly() {
    let slow = std::env::var("SEGLOG_SLOW").is_ok_and(|v| v == "1");
    let (total, streams) = if slow {
        (100_000, 2_000)
    } else {
        (10_000, 500)
    };
    let dir = tempdir();
    let mut rng = Rng::seeded(0x5E6_106);
    let log = options().open(dir.path()).expect("open");
    let (wants, versions) = write(&log, &mut rng, total, streams);
    log.sync().expect("sync");
    verify(&log, &wants, &versions);
    log.close().expect("close");

    let files = segment_files(dir.path());
    assert!(files.len() >= 5, "{} segment files", files.len());
    for (i, (base, path)) in files.iter().enumerate() {
        assert_eq!(*base, i as u64 * SEGMENT, "{path:?}");
        assert_eq!(std::fs::metadata(path).expect("stat").len(), SEGMENT);
    }

    let log = options().open(dir.path()).expect("reopen");
    verify(&log, &wants, &versions);
    // The log keeps going after the reopen, on the right versions.
    let s0 = stream_name(wants[0].stream);
    let v = versions[wants[0].stream].expect("written");
    let r = log
        .append(
            &s0,
            ExpectedVersion::Exact(v),
            &[EventData::new("After", &b"reopened"[..])],
        )
        .expect("append after reopen");
    assert_eq!(r.first_version, v + 1);
    assert!(r.first_position > wants.last().expect("events").position);
    log.close().expect("close");
}
