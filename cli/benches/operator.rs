//! The operator commands' speed (issue 29, item 6), the binary run as an
//! operator runs it, side by side with the library's own reads in one
//! process run:
//!
//! - `seglog verify` and `seglog export` of a 1M-event log against owned
//!   `read_all` and borrowed `replay` over the same log (events/s);
//! - `seglog info` on a 1M-event and a 10M-event log over 1,000 streams:
//!   its cost grows with segments, not events.
//!
//! `cargo bench -p seglog-cli --bench operator [-- --runs N]`; medians of
//! N runs (5 by default). The logs are built once, in a temporary
//! directory, with 128-byte payloads appended 100 to a call.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use seglog::{Durability, EventData, ExpectedVersion, Options, Position, Reader};

const PAYLOAD: usize = 128;
const BATCH: usize = 100;
const STREAMS: usize = 1_000;

fn main() {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let small = tmp.path().join("1m");
    let large = tmp.path().join("10m");
    build(&small, 1_000_000);
    build(&large, 10_000_000);
    println!("1M events of {PAYLOAD} B over {STREAMS} streams; medians of {runs} runs");
    let n = 1_000_000.0;
    let rate = |d: Duration| format!("{:>6.2}M events/s", n / d.as_secs_f64() / 1e6);
    let read_all = median(runs, || owned(&small));
    let replay = median(runs, || borrowed(&small));
    let verify = median(runs, || run(&["verify", path(&small)]));
    let export = median(runs, || {
        run(&["export", path(&small), "--output", "/dev/null"])
    });
    println!("read_all (owned, in process)   {}", rate(read_all));
    println!("replay (borrowed, in process)  {}", rate(replay));
    println!(
        "seglog verify                  {}  {:.2}x read_all",
        rate(verify),
        read_all.as_secs_f64() / verify.as_secs_f64()
    );
    println!(
        "seglog export                  {}  {:.2}x read_all",
        rate(export),
        read_all.as_secs_f64() / export.as_secs_f64()
    );
    let info_small = median(runs, || run(&["info", path(&small)]));
    let info_large = median(runs, || run(&["info", path(&large)]));
    println!("seglog info, 1M events         {:>7.1} ms", ms(info_small));
    println!("seglog info, 10M events        {:>7.1} ms", ms(info_large));
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `events` events over [`STREAMS`] streams, [`BATCH`] to an append.
fn build(dir: &Path, events: usize) {
    let log = Options::new()
        .durability(Durability::None)
        .open(dir)
        .expect("open");
    let names: Vec<String> = (0..STREAMS).map(|i| format!("stream-{i}")).collect();
    let payload = bytes::Bytes::from(vec![7u8; PAYLOAD]);
    let batch: Vec<EventData> = (0..BATCH)
        .map(|_| EventData::new("e", payload.clone()))
        .collect();
    for i in 0..events / BATCH {
        log.append(&names[i % STREAMS], ExpectedVersion::Any, &batch)
            .expect("append");
    }
    log.close().expect("close");
}

fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| f()).collect();
    times.sort();
    times[runs / 2]
}

fn owned(dir: &Path) -> Duration {
    let reader = Reader::open(dir).expect("reader");
    let start = Instant::now();
    let mut n = 0u64;
    for e in reader.read_all(Position::START).expect("read_all") {
        n += e.expect("event").payload().len() as u64;
    }
    assert_eq!(n, 1_000_000 * PAYLOAD as u64);
    start.elapsed()
}

fn borrowed(dir: &Path) -> Duration {
    let reader = Reader::open(dir).expect("reader");
    let start = Instant::now();
    let mut n = 0u64;
    reader
        .replay(Position::START, |e| n += e.payload().len() as u64)
        .expect("replay");
    assert_eq!(n, 1_000_000 * PAYLOAD as u64);
    start.elapsed()
}

/// Runs the `seglog` binary (open included, as an operator waits for it).
fn run(args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_seglog"))
        .args(args)
        .output()
        .expect("run seglog");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "seglog {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}
