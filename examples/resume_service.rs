//! A service with a durable consumer that crashes and resumes.
//!
//! The billing service reads `UsageRecorded` events through
//! `log.consumer("billing")`, acknowledges each and checkpoints every
//! `CHECKPOINT_EVERY` events. It keeps its own state (units per tenant) in a
//! file of its own together with the position that state reflects, replaced
//! atomically (write, fsync, rename, fsync of the directory).
//!
//! After `CRASH_AFTER` events it "crashes" (consumer and log dropped, no
//! final checkpoint) and restarts. The consumer resumes after its last
//! checkpoint, so the events acknowledged since come again (at-least-once);
//! the service skips those below the position saved with its state, so each
//! counts once (effectively-once), as a single pass over `read_all` checks.
//!
//! Run: `cargo run --example resume_service`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use seglog::{EventData, ExpectedVersion, Log, Position, RecordedEvent};

/// Tenants the usage events are spread over, one stream each.
const TENANTS: u64 = 7;
/// Events per append.
const PER_APPEND: u64 = 25;
/// Events between two consumer checkpoints.
const CHECKPOINT_EVERY: u64 = 100;
/// Events between saves of the service's state; also saved at each checkpoint.
const SAVE_EVERY: u64 = 25;
/// Events handled before the "crash": 30 past a checkpoint, 5 past a save.
const CRASH_AFTER: u64 = 730;

/// The service's state: units used per tenant.
type Billing = BTreeMap<String, u64>;

/// The payload is the units used, as decimal text.
fn bill(billing: &mut Billing, e: &RecordedEvent) {
    let units: u64 = String::from_utf8_lossy(e.payload()).parse().expect("units");
    *billing.entry(e.stream().to_string()).or_default() += units;
}

/// Appends `appends` batches of `PER_APPEND` events, one tenant per batch;
/// returns the last position.
fn record_usage(log: &Log, appends: u64) -> seglog::Result<Position> {
    let mut last = Position::START;
    for a in 0..appends {
        let units = (0..PER_APPEND).map(|i| (1 + (a * 31 + i * 7) % 97).to_string());
        let events: Vec<_> = units.map(|u| EventData::new("UsageRecorded", u)).collect();
        let tenant = format!("tenant-{}", a % TENANTS);
        let appended = log.append(&tenant, ExpectedVersion::Any, &events)?;
        last = appended.last_position;
    }
    Ok(last)
}

/// Replaces the state file: the position first, then one `tenant units`
/// line each. A crash leaves the old file or the new one, never a mix.
fn save(path: &Path, billing: &Billing, next: Position) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    writeln!(file, "{}", next.as_u64())?;
    for (tenant, units) in billing {
        writeln!(file, "{tenant} {units}")?;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(path.parent().expect("a directory"))?.sync_all()
}

/// The saved state and the position to go on from; empty at first start.
fn load(path: &Path) -> (Billing, Position) {
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (Billing::new(), Position::START);
        }
        text => text.expect("read the state file"),
    };
    let (next, lines) = text.split_once('\n').expect("position line");
    let mut billing = Billing::new();
    for (tenant, units) in lines.lines().map(|l| l.split_once(' ').expect("line")) {
        billing.insert(tenant.to_string(), units.parse().expect("units"));
    }
    (billing, Position::from_u64(next.parse().expect("position")))
}

/// What one life of the service saw and ended with.
struct Life {
    /// Positions of the events delivered, in order.
    delivered: Vec<Position>,
    /// Delivered, but already in the saved state, so not billed again.
    skipped: u64,
    /// The consumer's acknowledged position when the life ended.
    acked: Option<Position>,
    /// The state in memory when the life ended.
    billing: Billing,
}

/// Runs the service until `stop(events handled, position)`.
fn serve(log: &Log, state: &Path, stop: impl Fn(usize, Position) -> bool) -> seglog::Result<Life> {
    let mut consumer = log.consumer("billing")?;
    let (mut billing, mut next) = load(state);
    let resume = consumer.checkpointed();
    println!("  consumer resumes after {resume:?}; the saved state is of the events before {next}");
    let (mut sub, mut delivered, mut skipped) = (consumer.subscribe()?, Vec::new(), 0);
    loop {
        let e = sub.next_timeout(Duration::from_secs(5))?.expect("an event");
        delivered.push(e.position());
        if e.position() < next {
            skipped += 1;
        } else {
            bill(&mut billing, &e);
            next = e.next_position();
        }
        consumer.ack(e.position())?;
        let n = delivered.len() as u64;
        // Saved before each checkpoint: a checkpoint ahead of the state
        // would lose the events in between at the next crash.
        if n.is_multiple_of(SAVE_EVERY) || n.is_multiple_of(CHECKPOINT_EVERY) {
            save(state, &billing, next).expect("save the state");
        }
        if n.is_multiple_of(CHECKPOINT_EVERY) {
            consumer.checkpoint()?;
        }
        if stop(delivered.len(), e.position()) {
            let acked = consumer.acked();
            return Ok(Life {
                delivered,
                skipped,
                acked,
                billing,
            });
        }
    }
}

fn main() -> seglog::Result<()> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (log_dir, state) = (dir.path().join("log"), dir.path().join("billing.state"));

    let log = Log::open(&log_dir)?;
    record_usage(&log, 32)?;
    println!("first start: {} events in the log", 32 * PER_APPEND);
    let first = serve(&log, &state, |n, _| n as u64 == CRASH_AFTER)?;
    let (handled, acked) = (first.delivered.len(), first.acked);
    println!("  handled {handled}, crashed with {acked:?} acknowledged");
    // The crash, as the consumer sees it: no final checkpoint, so the
    // acknowledgements since the last one die with it.
    drop(log);

    let log = Log::open(&log_dir)?;
    let until = record_usage(&log, 12)?;
    println!("restart: {} events in the log", 44 * PER_APPEND);
    let second = serve(&log, &state, |_, at| at == until)?;
    let again = second.delivered.iter().filter(|p| Some(**p) <= acked);
    let again = again.count() as u64;
    println!(
        "  delivered {}: {again} again (at-least-once), {} of them billed already, skipped",
        second.delivered.len(),
        second.skipped
    );
    assert_eq!(again, CRASH_AFTER % CHECKPOINT_EVERY);
    assert_eq!(second.skipped, again / SAVE_EVERY * SAVE_EVERY);

    let mut replayed = Billing::new();
    for e in log.read_all(Position::START)? {
        bill(&mut replayed, &e?);
    }
    assert_eq!(second.billing, replayed, "billed twice or missed");
    println!(
        "effectively-once: {} units over {} tenants, as one pass over read_all gives \
         (without the position check, {} events would have been billed twice)",
        replayed.values().sum::<u64>(),
        replayed.len(),
        second.skipped
    );
    log.close()
}
