//! Appends over 1M streams against appends over 1,000, measured in pairs:
//! each pair opens two fresh logs, writes 1M single 128-byte events
//! (untimed) so both have the same size and the same dirty page cache
//! behind them, then times 1M more, round robin, into each; it prints each
//! pair's ratio and the median. Then the same with `append_many`, 100
//! single-event appends per call. On a noisy shared machine the ratio of one
//! pair is far steadier than two criterion groups run minutes apart.
//!
//! It also measures what bounds the 1M case: the latency of one load from
//! a random cache line of a table the size of the name table at 1M streams
//! (a pointer chase, so each load waits for the one before).
//!
//! Usage: `cargo run --release --example stream_scaling -- [pairs]`
//! (default 7; ~3 s per pair, twice).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use seglog::{AppendRequest, Durability, EventData, ExpectedVersion, Options};

const EVENTS: usize = 1_000_000;
const PAYLOAD_BYTES: usize = 128;

/// Requests per `append_many` call in the batched rounds.
const PER_CALL: usize = 100;

/// Milliseconds to append `EVENTS` single events round robin over the first
/// `streams` of `names`, after as many untimed: one `append` each, or
/// (`many`) `append_many` calls of [`PER_CALL`] single-event appends.
fn timed_round(names: &[String], streams: usize, many: bool) -> seglog::Result<f64> {
    let dir = tempfile::tempdir().map_err(|e| seglog::Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let log = Options::new()
        .durability(Durability::None)
        .open(dir.path())?;
    let event = [EventData::new(
        "BenchEvent",
        Bytes::from(vec![0x5A; PAYLOAD_BYTES]),
    )];
    for i in 0..EVENTS {
        log.append(&names[i % streams], ExpectedVersion::Any, &event)?;
    }
    // Let the preparer get ahead of the writer, as in a running service.
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    if many {
        let mut requests = Vec::with_capacity(PER_CALL);
        for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(PER_CALL) {
            requests.clear();
            requests.extend(chunk.iter().map(|&i| AppendRequest {
                stream: &names[i % streams],
                expected: ExpectedVersion::Any,
                events: &event,
            }));
            for r in log.append_many(&requests)? {
                r?;
            }
        }
    } else {
        for i in 0..EVENTS {
            log.append(&names[i % streams], ExpectedVersion::Any, &event)?;
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1e3;
    log.close()?;
    Ok(ms)
}

/// Nanoseconds per dependent load over random 64-byte lines of `bytes`.
fn pointer_chase_ns(bytes: usize) -> f64 {
    const LINE_WORDS: usize = 8;
    let lines = bytes / 64;
    let mut order: Vec<usize> = (0..lines).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..lines).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mut next = vec![0usize; lines * LINE_WORDS];
    for w in order.windows(2) {
        next[w[0] * LINE_WORDS] = w[1] * LINE_WORDS;
    }
    next[order[lines - 1] * LINE_WORDS] = order[0] * LINE_WORDS;
    let steps = 4_000_000;
    let mut at = 0;
    let started = Instant::now();
    for _ in 0..steps {
        at = next[at];
    }
    black_box(at);
    started.elapsed().as_secs_f64() * 1e9 / steps as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> seglog::Result<()> {
    let pairs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7)
        .max(1);
    for mib in [1, 16] {
        println!(
            "random dependent load over {mib:>2} MiB: {:.0} ns",
            pointer_chase_ns(mib << 20)
        );
    }
    let names: Vec<String> = (0..EVENTS).map(|i| format!("stream-{i:07}")).collect();
    for (label, batched) in [("append", false), ("append_many x100", true)] {
        let (mut few, mut many, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..pairs {
            let a = timed_round(&names, 1_000, batched)?;
            let b = timed_round(&names, EVENTS, batched)?;
            println!(
                "1M events by {label}: 1k streams {a:.0} ms, 1M streams {b:.0} ms, ratio {:.2}",
                b / a
            );
            few.push(a);
            many.push(b);
            ratios.push(b / a);
        }
        println!(
            "{label}, medians of {pairs} pairs: 1k streams {:.0} ms, 1M streams {:.0} ms, ratio {:.2}",
            median(few),
            median(many),
            median(ratios)
        );
    }
    Ok(())
}
