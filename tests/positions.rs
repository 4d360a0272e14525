//! Positions: `replay` (borrowed) and `read_all` (owned) agree, reading
//! resumes exactly at any event's position or `next_position` (inside a
//! multi-event append and across segment boundaries), and positions that are
//! not positions of the log are `Error::InvalidPosition`.

mod common;

use common::*;
use seglog::{Durability, Error, EventData, ExpectedVersion, Log, Options, Position};

const SEGMENT: u64 = MIB;

/// A log over several segments with appends of 1 to 6 events.
fn build(dir: &std::path::Path) -> (Log, Vec<Ev>) {
    let options = Options::new()
        .segment_size(SEGMENT)
        .durability(Durability::None);
    let log = options.clone().open(dir).expect("open");
    let mut rng = Rng::new(9);
    for i in 0..200u64 {
        let count = rng.range(1, 6) as usize;
        let events: Vec<EventData> = (0..count)
            .map(|k| {
                let len = rng.below(12_000) as usize;
                EventData::new(format!("T{k}"), rng.bytes(len))
                    .with_metadata(rng.bytes(k))
                    .with_id(u128::from(i << 8 | k as u64))
            })
            .collect();
        log.append(&format!("s{}", i % 7), ExpectedVersion::Any, &events)
            .expect("append");
    }
    // Read positions from a reopened log, so both the sealed segments and
    // the active one are exercised after recovery.
    log.close().expect("close");
    let log = options.open(dir).expect("reopen");
    let events = snapshot(&log);
    assert!(
        events.last().expect("events").position.frame_offset() > 2 * SEGMENT,
        "at least three segments"
    );
    (log, events)
}

/// The identity of an event, cheap to compare over long runs.
fn key(e: &Ev) -> (Position, String, u64, Option<u128>) {
    (e.position, e.stream.clone(), e.version, e.id)
}

fn keys(events: &[Ev]) -> Vec<(Position, String, u64, Option<u128>)> {
    events.iter().map(key).collect()
}

#[test]
fn replay_matches_read_all() {
    let tmp = tempdir();
    let (log, events) = build(tmp.path());
    check_positions(&events, SEGMENT);
    let (replayed, resume) = replay_from(&log, Position::START).expect("replay");
    assert_eq!(replayed, events);
    assert_eq!(resume, events.last().expect("events").next_position);
    // Timestamps: one per append, never decreasing.
    for pair in events.windows(2) {
        assert!(pair[0].timestamp_us <= pair[1].timestamp_us);
        if pair[0].position.frame_offset() == pair[1].position.frame_offset() {
            assert_eq!(pair[0].timestamp_us, pair[1].timestamp_us);
        }
    }
    log.close().expect("close");
}

#[test]
fn reads_resume_exactly_at_positions_and_next_positions() {
    let tmp = tempdir();
    let (log, events) = build(tmp.path());
    let n = events.len();
    let mut mid_batch = 0;
    let mut boundaries = 0;
    for i in 0..n {
        // From the event's own position: it and what follows.
        let got: Vec<Ev> = log
            .read_all(events[i].position)
            .expect("read_all")
            .take(3)
            .map(|e| Ev::from(&e.expect("event")))
            .collect();
        assert_eq!(
            got[..],
            events[i..(i + 3).min(n)],
            "from position of event {i}"
        );
        // From its next_position: exactly the next event.
        let next = log
            .read_all(events[i].next_position)
            .expect("read_all")
            .next()
            .map(|e| Ev::from(&e.expect("event")));
        assert_eq!(
            next.as_ref(),
            events.get(i + 1),
            "from next_position of event {i}"
        );
        if events[i].position.index_in_frame() > 0 {
            mid_batch += 1;
        }
        if i > 0
            && events[i].position.frame_offset() / SEGMENT
                != events[i - 1].position.frame_offset() / SEGMENT
        {
            boundaries += 1;
            // The previous event's next_position is the end marker of its
            // segment, not this event's position, yet resumes right here.
            assert_ne!(events[i - 1].next_position, events[i].position);
            assert_eq!(
                keys(&snapshot_from(&log, events[i - 1].next_position)),
                keys(&events[i..])
            );
        }
        // Every so often, the whole rest of the log, on both paths.
        if i % 9 == 0 {
            assert_eq!(
                keys(&snapshot_from(&log, events[i].position)),
                keys(&events[i..])
            );
            let (replayed, resume) = replay_from(&log, events[i].position).expect("replay");
            assert_eq!(keys(&replayed), keys(&events[i..]), "replay from event {i}");
            assert_eq!(resume, events[n - 1].next_position);
        }
    }
    assert!(
        mid_batch > 50,
        "positions inside multi-event appends: {mid_batch}"
    );
    assert!(boundaries >= 2, "segment boundaries crossed: {boundaries}");
    log.close().expect("close");
}

fn snapshot_from(log: &Log, from: Position) -> Vec<Ev> {
    read_from(log, from).iter().map(Ev::from).collect()
}

/// Asserts that reading from `position` fails with `InvalidPosition` naming
/// it, on both read paths.
#[track_caller]
fn assert_invalid(log: &Log, position: Position) {
    let mut iter = log.read_all(position).expect("read_all");
    match iter.next() {
        Some(Err(Error::InvalidPosition { position: p })) => assert_eq!(p, position),
        Some(Ok(e)) => panic!(
            "read_all({position:?}): expected InvalidPosition, got the event at {:?}",
            e.position()
        ),
        other => panic!("read_all({position:?}): expected InvalidPosition, got {other:?}"),
    }
    assert!(iter.next().is_none(), "the iterator ends after the error");
    let mut seen = 0;
    match log.replay(position, |_| seen += 1) {
        Err(Error::InvalidPosition { position: p }) => assert_eq!(p, position),
        other => panic!("replay({position:?}): expected InvalidPosition, got {other:?}"),
    }
    assert_eq!(seen, 0);
}

/// A raw position: `frame_offset` and `index` as `Position` packs them.
fn raw(frame_offset: u64, index: u16) -> Position {
    Position::from_u64((frame_offset >> 3) << 16 | u64::from(index))
}

#[test]
fn positions_inside_a_frame_are_invalid() {
    let tmp = tempdir();
    let (log, events) = build(tmp.path());
    assert_eq!(
        raw(4096, 3),
        Position::from_u64(events[0].position.as_u64() + 3)
    );
    let mut frames: Vec<Position> = events
        .iter()
        .filter(|e| e.position.index_in_frame() == 0)
        .map(|e| e.position)
        .collect();
    frames.dedup();
    let last_segment_frames = frames
        .iter()
        .filter(|p| {
            p.frame_offset() / SEGMENT == frames.last().expect("frames").frame_offset() / SEGMENT
        })
        .count();
    assert!(last_segment_frames >= 2, "frames in the active segment too");
    for (k, f) in frames.iter().enumerate() {
        // Inside the frame's header and inside its first event.
        for delta in [8, 16, 48] {
            assert_invalid(&log, raw(f.frame_offset() + delta, 0));
        }
        if k % 10 == 0 {
            assert_invalid(&log, raw(f.frame_offset() + 8, 2));
        }
    }
    // The log is unharmed.
    assert_eq!(snapshot(&log), events);
    log.close().expect("close");
}

/// An index past the last event of a frame names no event: `next_position`
/// never produces one (after a frame's last event it is the next frame's
/// offset with index 0).
#[test]
fn index_past_the_last_event_of_a_frame_is_invalid() {
    let tmp = tempdir();
    let (log, events) = build(tmp.path());
    let mut checked = 0;
    for (i, e) in events.iter().enumerate() {
        let last_of_frame = events
            .get(i + 1)
            .is_none_or(|n| n.position.frame_offset() != e.position.frame_offset());
        if !last_of_frame || i % 5 != 0 {
            continue;
        }
        let count = e.position.index_in_frame() + 1;
        assert_invalid(&log, raw(e.position.frame_offset(), count));
        assert_invalid(&log, raw(e.position.frame_offset(), u16::MAX));
        checked += 1;
    }
    assert!(checked > 10);
    // The same for the end marker of a segment: index 0 there is the
    // next_position of the segment's last event; any other index is bogus.
    let mut markers = 0;
    for pair in events.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.next_position != b.position {
            let marker = a.next_position;
            assert_eq!(marker.index_in_frame(), 0);
            assert_eq!(read_from(&log, marker)[0].position(), b.position);
            assert_invalid(&log, raw(marker.frame_offset(), 1));
            markers += 1;
        }
    }
    assert!(markers >= 2, "end markers checked: {markers}");
    log.close().expect("close");
}
