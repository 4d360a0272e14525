//! A projection: a read model kept up to date from `subscribe_all`.
//!
//! One thread places (and sometimes cancels) orders, one stream per order
//! (`order-{n}`), and also writes `customer-{c}` events the projection does
//! not want. A projection thread follows `$all` from the start through
//! `Filter::stream_prefix("order-")` and keeps per-customer totals (open
//! orders, amount). Once the writer stops, the example waits for the
//! projection to pass the writer's last position, rebuilds the model with a
//! plain `read_all`, and checks both agree: a live projection is a replay
//! that does not stop at the end.
//!
//! Run: `cargo run --release --example projection`.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use seglog::{
    Durability, Error, EventData, ExpectedVersion, Filter, Log, Options, Position, Subscription,
};

/// Orders placed; every tenth is cancelled, every seventh has a
/// `customer-` event beside it.
const ORDERS: u64 = 20_000;
/// Customers the orders are spread over.
const CUSTOMERS: u64 = 37;

/// The read model (customer to open orders and their amount in cents), and
/// the open orders themselves: a cancellation names only its order, so the
/// projection keeps what it needs to undo the placement.
#[derive(Debug, Default, PartialEq, Eq)]
struct OrderTotals {
    by_customer: BTreeMap<String, (u64, u64)>,
    open: BTreeMap<String, (String, u64)>,
}

impl OrderTotals {
    /// Payloads are `customer;amount_cents` for `OrderPlaced`, empty for
    /// `OrderCancelled`: enough encoding for an example, no serde.
    fn apply(&mut self, stream: &str, event_type: &str, payload: &[u8]) {
        let (customer, amount, sign) = match event_type {
            "OrderPlaced" => {
                let text = std::str::from_utf8(payload).expect("UTF-8 payload");
                let (customer, amount) = text.split_once(';').expect("customer;amount");
                let placed = (customer.to_string(), amount.parse().expect("amount"));
                self.open.insert(stream.to_string(), placed.clone());
                (placed.0, placed.1, 1)
            }
            "OrderCancelled" => {
                let (customer, amount) = self.open.remove(stream).expect("an open order");
                (customer, amount, -1)
            }
            other => panic!("unexpected event type {other}"),
        };
        let (orders, cents) = self.by_customer.entry(customer).or_default();
        *orders = orders.checked_add_signed(sign).expect("order count");
        *cents = cents
            .checked_add_signed(sign * amount as i64)
            .expect("amount");
    }
}

/// Appends the orders; returns the last position, when the last append
/// returned, and how many events were appended.
fn write_orders(log: &Log) -> seglog::Result<(Position, Instant, u64)> {
    let (mut last, mut appended) = (Position::START, 0);
    let mut append = |stream: &str, expected, event_type: &str, payload: &str| {
        let event = EventData::new(event_type, payload.as_bytes().to_vec());
        last = log.append(stream, expected, &[event])?.last_position;
        appended += 1;
        seglog::Result::Ok(())
    };
    for n in 0..ORDERS {
        let (order, customer) = (format!("order-{n}"), format!("customer-{}", n % CUSTOMERS));
        let placed = format!("{customer};{}", 100 + (n * 7919) % 49_993);
        append(&order, ExpectedVersion::NoStream, "OrderPlaced", &placed)?;
        if n % 10 == 3 {
            append(&order, ExpectedVersion::Exact(0), "OrderCancelled", "")?;
        }
        if n.is_multiple_of(7) {
            // Not an order stream: the projection's filter passes it over.
            append(&customer, ExpectedVersion::Any, "CustomerSeen", "")?;
        }
    }
    Ok((last, Instant::now(), appended))
}

/// When the projection got to where: its resume point and the time.
type Progress = (Mutex<(Position, Instant)>, Condvar);

/// The projection thread: applies what `sub` hands out until the log
/// closes, publishing its position as it moves; returns the model and how
/// many events it applied.
fn project(mut sub: Subscription, progress: &Progress) -> seglog::Result<(OrderTotals, u64)> {
    let (mut model, mut applied) = (OrderTotals::default(), 0u64);
    loop {
        // Not the blocking iterator: the position also moves over frames
        // the filter passes over, which only a return (here a timeout)
        // makes visible.
        match sub.next_timeout(Duration::from_millis(5)) {
            Ok(Some(e)) => {
                model.apply(e.stream(), e.event_type(), e.payload());
                applied += 1;
            }
            Ok(None) => {}
            // Closing the log is how this thread learns to stop.
            Err(Error::Closed) => return Ok((model, applied)),
            Err(e) => return Err(e),
        }
        let mut at = progress.0.lock().expect("progress");
        if at.0 != sub.position() {
            *at = (sub.position(), Instant::now());
            progress.1.notify_all();
        }
    }
}

/// The same model rebuilt with a plain `read_all`, and how many events
/// the filter let through.
fn rebuild(log: &Log, filter: &Filter) -> seglog::Result<(OrderTotals, u64)> {
    let (mut rebuilt, mut matched) = (OrderTotals::default(), 0u64);
    for e in log.read_all(Position::START)? {
        let e = e?;
        if filter.matches(e.stream(), e.event_type()) {
            rebuilt.apply(e.stream(), e.event_type(), e.payload());
            matched += 1;
        }
    }
    Ok((rebuilt, matched))
}

fn main() -> seglog::Result<()> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = Options::new()
        .durability(Durability::None)
        .segment_size(16 << 20)
        .open(dir.path())?;
    let filter = Filter::stream_prefix("order-");
    let started = Instant::now();

    // The projection's resume point and when it got there, for the wait.
    let progress: Arc<Progress> =
        Arc::new((Mutex::new((Position::START, started)), Condvar::new()));
    let sub = log.subscribe_all(Position::START)?.filter(filter.clone());
    let projector = std::thread::spawn({
        let progress = Arc::clone(&progress);
        move || project(sub, &progress)
    });

    let writer = std::thread::scope(|s| s.spawn(|| write_orders(&log)).join());
    let (last, written, appended) = writer.expect("writer thread")?;
    let (reached, caught_at) = *progress
        .1
        .wait_while(progress.0.lock().expect("progress"), |(at, _)| *at <= last)
        .expect("progress");

    let (rebuilt, matched) = rebuild(&log, &filter)?;
    log.close()?;
    let (live, applied) = projector.join().expect("projection thread")?;
    assert_eq!(live, rebuilt, "the live projection and the replay disagree");
    assert_eq!(applied, matched);

    let (orders, cents) = live
        .by_customer
        .values()
        .fold((0, 0), |a, t| (a.0 + t.0, a.1 + t.1));
    println!("appended {appended} events ({ORDERS} orders); the projection applied {applied}");
    println!(
        "read model: {} customers, {orders} open orders, {}.{:02} in total; equal to read_all's",
        live.by_customer.len(),
        cents / 100,
        cents % 100
    );
    println!(
        "projection resumes at {reached} (last append at {last}); elapsed {:?}, \
         catch-up lag after the last append {:?}",
        started.elapsed(),
        caught_at.saturating_duration_since(written)
    );
    Ok(())
}
