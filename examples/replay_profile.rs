//! Appends events, then replays them several times: a target for profilers
//! (`valgrind --tool=callgrind`, `perf record`) of the read path.
//! Usage: `cargo run --release --example replay_profile -- [events] [rounds]`.

use seglog::{Durability, EventData, ExpectedVersion, Options, Position};

fn main() -> seglog::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().map_err(|e| seglog::Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let log = Options::new()
        .durability(Durability::None)
        .open(dir.path())?;
    let event = [EventData::new("BenchEvent", vec![0x5Au8; 128])];
    let names: Vec<String> = (0..1000).map(|i| format!("stream-{i}")).collect();
    for i in 0..events {
        log.append(&names[i % names.len()], ExpectedVersion::Any, &event)?;
    }
    let mut total = 0usize;
    for _ in 0..rounds {
        log.replay(Position::START, |e| total += e.payload().len())?;
    }
    println!("{total} payload bytes replayed");
    log.close()
}
