//! An order's state as of a point in time: "what did order 42 look like on
//! Tuesday at noon?", answered from its newest snapshot at or before that
//! point plus the events after the snapshot up to it, and checked against
//! a replay of every event up to then. Then what happened since, for the
//! audit, read from that time on.
//!
//! The log's clock is injected (`Options::clock`) so the example's times
//! are fixed; a real service uses the system clock.
//!
//! Run: `cargo run --example time_travel`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seglog::{AsOf, Clock, EventData, ExpectedVersion, Options, RecordedEvent, Snapshot};

/// Monday 2026-11-30 00:00 UTC, in seconds since the epoch.
const MONDAY: u64 = 1_764_460_800;
const HOUR: u64 = 3_600;

/// A clock the example sets.
#[derive(Debug, Default)]
struct SetClock(AtomicU64);

impl Clock for SetClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

/// The order: its items (name, cents) and status.
#[derive(Debug, Clone, Default, PartialEq)]
struct Order {
    items: Vec<(String, u64)>,
    status: String,
}

impl Order {
    fn total(&self) -> u64 {
        self.items.iter().map(|(_, cents)| cents).sum()
    }

    /// Applies one event; payloads are `name cents` for items.
    fn apply(&mut self, e: &RecordedEvent) {
        self.apply_raw(e.event_type(), e.payload());
    }

    fn apply_raw(&mut self, event_type: &str, payload: &[u8]) {
        let text = std::str::from_utf8(payload).unwrap_or_default();
        match event_type {
            "OrderPlaced" => self.status = "open".into(),
            "ItemAdded" => {
                let (name, cents) = text.split_once(' ').unwrap_or((text, "0"));
                self.items.push((name.into(), cents.parse().unwrap_or(0)));
            }
            "ItemRemoved" => self.items.retain(|(name, _)| name != text),
            "OrderPaid" => self.status = "paid".into(),
            "OrderShipped" => self.status = "shipped".into(),
            _ => {}
        }
    }

    /// Snapshot schema 1: `status;name cents;name cents...`.
    fn encode(&self) -> Vec<u8> {
        let mut out = self.status.clone();
        for (name, cents) in &self.items {
            out.push_str(&format!(";{name} {cents}"));
        }
        out.into_bytes()
    }

    fn decode(s: &Snapshot) -> Result<Order, String> {
        let text = std::str::from_utf8(s.bytes()).map_err(|e| e.to_string())?;
        let mut parts = text.split(';');
        let status = parts.next().unwrap_or_default().to_string();
        let items = parts
            .map(|item| {
                let (name, cents) = item.split_once(' ').ok_or("no price")?;
                Ok((name.to_string(), cents.parse().map_err(|_| "bad price")?))
            })
            .collect::<Result<_, String>>()?;
        Ok(Order { items, status })
    }
}

fn main() -> seglog::Result<()> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = Arc::new(SetClock::default());
    let log = Options::new()
        .clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .open(dir.path())?;
    let at = |hours: u64| MONDAY + hours * HOUR;
    let stream = "order-42";
    // (hour since Monday 00:00, event type, payload, snapshot after it)
    let history: [(u64, &str, &str, bool); 7] = [
        (9, "OrderPlaced", "customer-7", false),
        (10, "ItemAdded", "book 1250", false),
        (11, "ItemAdded", "pen 200", true),
        (24 + 10, "ItemAdded", "lamp 3000", false),
        (24 + 14, "ItemRemoved", "pen", false),
        (24 + 15, "OrderPaid", "", true),
        (48 + 11, "OrderShipped", "", false),
    ];
    let mut state = Order::default();
    for (version, (hour, event_type, payload, snapshot)) in history.into_iter().enumerate() {
        clock.0.store(at(hour), Ordering::SeqCst);
        let event = EventData::new(event_type, payload.as_bytes().to_vec());
        let expected = match version {
            0 => ExpectedVersion::NoStream,
            v => ExpectedVersion::Exact(v as u64 - 1),
        };
        state.apply_raw(event_type, payload.as_bytes());
        if snapshot {
            // The state this event produces, saved with it: the event is
            // durable before the snapshot is written.
            log.append_with_snapshot(stream, expected, &[event], 1, state.encode())?;
        } else {
            log.append(stream, expected, &[event])?;
        }
    }

    // Tuesday at noon: the lamp was added, the pen not yet removed.
    let tuesday_noon = UNIX_EPOCH + Duration::from_secs(at(24 + 12));
    let as_of = AsOf::Time(tuesday_noon);
    let then = log.rebuild_as_of(
        stream,
        as_of,
        1,
        Order::decode,
        Order::default,
        Order::apply,
    )?;
    println!(
        "{stream} on Tuesday at noon: version {:?} (from the snapshot at {:?}), {} items, {} cents, {}",
        then.version,
        then.from_snapshot,
        then.state.items.len(),
        then.state.total(),
        then.state.status
    );
    // The same from every event up to then, without a snapshot.
    let mut replayed = Order::default();
    for e in log.read_stream_as_of(stream, as_of)? {
        replayed.apply(&e?);
    }
    assert_eq!(then.state, replayed);
    assert_eq!((then.version, then.from_snapshot), (Some(3), Some(2)));
    assert_eq!(
        (then.state.total(), then.state.status.as_str()),
        (4_450, "open")
    );

    // The audit: everything recorded since then, in commit order.
    let since = log.position_at(tuesday_noon)?;
    println!("since Tuesday noon (from {since}):");
    for e in log.read_all_since(tuesday_noon)? {
        let e = e?;
        let hours = e
            .timestamp()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        println!(
            "  v{} {} at Monday + {} h",
            e.version(),
            e.event_type(),
            (hours - MONDAY) / HOUR
        );
    }
    let now = log.rebuild(stream, 1, Order::decode, Order::default, Order::apply)?;
    assert_eq!(now.state.status, "shipped");
    assert_eq!(now.from_snapshot, Some(5));
    log.close()
}
