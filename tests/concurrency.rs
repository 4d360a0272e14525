//! Concurrent appenders sharing one `Arc<Log>` under `Durability::Sync`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::*;
use seglog::{AppendResult, Durability, EventData, ExpectedVersion, Options, Position};

const THREADS: u64 = 8;
const APPENDS_PER_THREAD: u64 = 250;
const SHARED_STREAMS: u64 = 3;
const SEGMENT: u64 = MIB;

/// One acknowledged append.
struct Acked {
    stream: String,
    ids: Vec<u128>,
    result: AppendResult,
}

fn id(thread: u64, append: u64, index: u64) -> u128 {
    (u128::from(thread) << 64) | u128::from(append << 8 | index)
}

#[test]
fn eight_threads_every_acknowledged_event_exactly_once_and_batches_adjacent() {
    let dir = tempdir();
    let options = Options::new()
        .segment_size(SEGMENT)
        .durability(Durability::Sync);
    let log = Arc::new(options.clone().open(dir.path()).expect("open"));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut rng = Rng::new(1000 + t);
                let mut acked = Vec::new();
                let own = format!("own-{t}");
                for a in 0..APPENDS_PER_THREAD {
                    let stream = if rng.chance(0.5) {
                        own.clone()
                    } else {
                        format!("shared-{}", rng.below(SHARED_STREAMS))
                    };
                    let count = rng.range(1, 4);
                    let ids: Vec<u128> = (0..count).map(|i| id(t, a, i)).collect();
                    let events: Vec<EventData> = ids
                        .iter()
                        .map(|&id| {
                            let len = rng.below(3000) as usize;
                            EventData::new("Tick", rng.bytes(len)).with_id(id)
                        })
                        .collect();
                    let result = log
                        .append(&stream, ExpectedVersion::Any, &events)
                        .expect("append");
                    acked.push(Acked {
                        stream,
                        ids,
                        result,
                    });
                }
                acked
            })
        })
        .collect();
    let acked: Vec<Acked> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("appender thread"))
        .collect();
    Arc::try_unwrap(log)
        .expect("threads are done")
        .close()
        .expect("close");

    let log = options.open(dir.path()).expect("reopen");
    let events = snapshot(&log);
    let total: usize = acked.iter().map(|a| a.ids.len()).sum();
    assert_eq!(events.len(), total, "events in the log vs acknowledged");
    check_positions(&events, SEGMENT);
    assert!(
        events.last().expect("events").position.frame_offset() > SEGMENT,
        "the test should roll at least one segment"
    );

    // Every id appears exactly once.
    let mut index_of: HashMap<u128, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let id = e.id.expect("every event has an id");
        assert!(index_of.insert(id, i).is_none(), "id {id:#x} twice");
    }

    for a in &acked {
        let first = index_of[&a.ids[0]];
        for (k, id) in a.ids.iter().enumerate() {
            let e = &events[first + k];
            assert_eq!(e.id, Some(*id), "events of one append must be adjacent");
            assert_eq!(e.stream, a.stream);
            assert_eq!(e.version, a.result.first_version + k as u64);
            assert_eq!(
                e.position,
                Position::from_u64(a.result.first_position.as_u64() + k as u64)
            );
        }
        assert_eq!(
            a.result.last_version,
            a.result.first_version + a.ids.len() as u64 - 1
        );
        assert_eq!(
            events[first + a.ids.len() - 1].position,
            a.result.last_position
        );
    }

    // Each stream's versions run 0, 1, 2, ... in log order, and each thread's
    // own stream holds its appends in the order it made them.
    let mut next: HashMap<&str, u64> = HashMap::new();
    for e in &events {
        let v = next.entry(&e.stream).or_insert(0);
        assert_eq!(e.version, *v, "{e:?}");
        *v += 1;
    }
    for t in 0..THREADS {
        let own = format!("own-{t}");
        let mut last = None;
        for e in events.iter().filter(|e| e.stream == own) {
            let id = e.id.expect("id");
            assert_eq!((id >> 64) as u64, t);
            assert!(last < Some(id), "thread {t}'s appends out of order");
            last = Some(id);
        }
        assert_eq!(
            log.stream_version(&own),
            next.get(own.as_str()).map(|n| n - 1)
        );
    }
    let shared_total: u64 = (0..SHARED_STREAMS)
        .map(|s| {
            log.stream_version(&format!("shared-{s}"))
                .map_or(0, |v| v + 1)
        })
        .sum();
    let shared_acked: usize = acked
        .iter()
        .filter(|a| a.stream.starts_with("shared-"))
        .map(|a| a.ids.len())
        .sum();
    assert_eq!(shared_total, shared_acked as u64);
    log.close().expect("close");
}
