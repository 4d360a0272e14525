//! Writes 128-byte events over 1,000 streams (by default 1M, W6's data),
//! closes, then opens and closes the log repeatedly, printing the median
//! open time: a target for profilers of the open path, and (with few
//! events) what an open costs without a registry to load.
//! Usage: `cargo run --release --example reopen_profile -- [opens] [events]`.

use std::time::Instant;

use seglog::{Durability, EventData, ExpectedVersion, Options};

fn main() -> seglog::Result<()> {
    let mut args = std::env::args().skip(1);
    let opens: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(30)
        .max(1);
    let events: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().map_err(|e| seglog::Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let options = || Options::new().durability(Durability::None);
    let log = options().open(dir.path())?;
    let event = [EventData::new("BenchEvent", vec![0x5Au8; 128])];
    let names: Vec<String> = (0..1000).map(|i| format!("stream-{i}")).collect();
    for i in 0..events {
        log.append(&names[i % names.len()], ExpectedVersion::Any, &event)?;
    }
    log.close()?;
    let mut took = Vec::with_capacity(opens);
    for _ in 0..opens {
        let start = Instant::now();
        let log = options().open(dir.path())?;
        took.push(start.elapsed());
        log.close()?;
    }
    took.sort();
    println!(
        "{events} events, {opens} opens: min {:?}, median {:?}, max {:?}",
        took[0],
        took[opens / 2],
        took[opens - 1]
    );
    Ok(())
}
