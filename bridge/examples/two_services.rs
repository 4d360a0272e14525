//! Two services, one log each, and NATS JetStream between them.
//!
//! - **orders** places and pays orders (one stream per order, `order-{n}`)
//!   in its own log, and runs a [`Publisher`] that sends every event of
//!   that log to a JetStream stream. The publisher reads the log through a
//!   [`Reader`] of the same directory, so the service keeps its [`Log`]
//!   for appends (the publisher takes its source by value).
//! - **billing** runs a [`Mirror`] that appends the orders' events into
//!   billing's own log, and a projection (cents owed per customer) that
//!   follows that log through a durable [`Consumer`], acknowledging as it
//!   goes. Delivery to a consumer is at-least-once, so the projection saves
//!   its state together with the position it reflects and skips what it
//!   has seen already.
//!
//! The run kills billing mid-way while orders go on, restarts it from its
//! directory, then stops orders with events its publisher has not sent
//! and restarts it too. At the end it checks that JetStream holds each
//! event once, that the mirror log holds the orders log event for event
//! (grouped into the same appends), and that the projection equals one
//! computed from the orders log directly; it exits non-zero otherwise.
//!
//! Run (a JetStream-enabled server; `NATS_URL` defaults to
//! `nats://127.0.0.1:4222`; `DIR` keeps the two logs, a temporary
//! directory otherwise):
//!
//! ```sh
//! nats-server -js &
//! cargo run -p seglog-nats --example two_services [DIR]
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;
use seglog::{Consumer, EventData, ExpectedVersion, Log, Position, Reader, RecordedEvent};
use seglog_nats::{Mirror, MirrorConfig, MirrorProgress, Progress, Publisher, PublisherConfig};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Orders placed at each step of the run.
const ORDERS_PER_STEP: u64 = 40;
/// Customers the orders are spread over.
const CUSTOMERS: u64 = 5;
/// Events between two saves of the projection's state.
const SAVE_EVERY: u64 = 5;
/// Events between two checkpoints of its consumer (each after a save, so
/// a checkpoint is never ahead of the state).
const CHECKPOINT_EVERY: u64 = 25;
/// Events billing's projection applies in step 2 before it is killed: not
/// a multiple of [`CHECKPOINT_EVERY`], so some acknowledged events are
/// past its last checkpoint and come again after the restart.
const KILL_AFTER: u64 = 36;
/// How long billing may take to catch up before the run fails.
const CATCH_UP: Duration = Duration::from_secs(60);

/// The JetStream stream and subjects of this run: unique, so that reruns
/// against the same server start on an empty stream and overlap no
/// subjects a previous run left.
struct Bridge {
    stream: String,
    prefix: String,
}

impl Bridge {
    fn unique() -> Bridge {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let run = format!("{:x}{:x}", std::process::id(), nanos % (1 << 40));
        Bridge {
            stream: format!("ORDERS-{run}"),
            prefix: format!("orders.{run}"),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("two_services: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = async_nats::connect(&url).await.map_err(|e| {
        format!("cannot reach NATS at {url} ({e}): start a server with `nats-server -js`")
    })?;
    let temporary = tempfile::tempdir()?;
    let base = std::env::args_os()
        .nth(1)
        .map_or_else(|| temporary.path().to_path_buf(), PathBuf::from);
    let (orders_dir, billing_dir) = (base.join("orders"), base.join("billing"));
    let bridge = Bridge::unique();
    println!(
        "NATS {url}, JetStream stream {}, logs under {}",
        bridge.stream,
        base.display()
    );

    scenario(&client, &bridge, &orders_dir, &billing_dir).await?;

    // Only a run that passed cleans up: a failed one leaves the stream to
    // look at.
    let js = jetstream::new(client);
    js.delete_stream(&bridge.stream).await?;
    println!("ok: deleted JetStream stream {}", bridge.stream);
    Ok(())
}

/// The run itself: both services, each stopped and restarted once, then
/// the checks.
async fn scenario(
    client: &async_nats::Client,
    bridge: &Bridge,
    orders_dir: &Path,
    billing_dir: &Path,
) -> Result<()> {
    println!("1. orders and billing start");
    let orders = Orders::start(orders_dir, client, bridge)?;
    let mut next = orders_placed(&orders.log)?;
    let billing = Billing::start(billing_dir, client, bridge)?;
    next = place_orders(&orders.log, next)?;
    billing.caught_up(&orders.log).await?;

    println!("2. billing is killed mid-way; orders go on");
    let killing = tokio::spawn(billing.kill_after(KILL_AFTER));
    next = place_orders(&orders.log, next)?;
    killing.await??;
    next = place_orders(&orders.log, next)?;

    println!("3. billing restarts from its directory");
    let billing = Billing::start(billing_dir, client, bridge)?;
    billing.caught_up(&orders.log).await?;

    println!("4. orders stop, with events their publisher has not sent");
    let (orders, _) = orders.stop_publisher().await?;
    next = place_orders(&orders, next)?;
    let total = orders.read_all(Position::START)?.count() as u64;
    orders.close()?;
    let js = jetstream::new(client.clone());
    let held = js
        .get_stream(&bridge.stream)
        .await?
        .info()
        .await?
        .state
        .last_sequence;
    println!("   JetStream holds {held} of the orders log's {total} events");
    let orders = Orders::start(orders_dir, client, bridge)?;
    place_orders(&orders.log, next)?;
    billing.caught_up(&orders.log).await?;

    println!("5. checks");
    let (mirror_log, owed) = billing.stop(Stop::Clean).await?;
    let (orders, progress) = orders.stop_publisher().await?;
    check(&js, bridge, &orders, &mirror_log, &owed).await?;
    let resent = (held + progress.published).checked_sub(events(&orders)?.len() as u64);
    if resent != Some(0) {
        let published = progress.published;
        return Err(
            format!("the restarted publisher published {published} events after {held}").into(),
        );
    }
    println!(
        "   the restarted publisher sent only what JetStream lacked ({})",
        progress.published
    );
    mirror_log.close()?;
    orders.close()?;
    Ok(())
}

/// An order's payload: enough JSON for an example, no serde.
fn order_json(n: u64) -> String {
    let customer = n % CUSTOMERS;
    let cents = 500 + (n * 7_919) % 9_500;
    format!(r#"{{"customer":"customer-{customer}","amount_cents":{cents}}}"#)
}

/// The value of `"key":` in a flat JSON object of strings and integers.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let label = format!("\"{key}\":");
    let rest = json.get(json.find(&label)? + label.len()..)?;
    let end = rest.find([',', '}'])?;
    rest.get(..end).map(|v| v.trim_matches('"'))
}

/// How many orders a log holds: a rerun on the same directory goes on
/// numbering from there.
fn orders_placed(log: &Log) -> Result<u64> {
    let mut placed = 0;
    log.replay(Position::START, |e| {
        placed += u64::from(e.event_type() == "OrderPlaced");
    })?;
    Ok(placed)
}

/// Places [`ORDERS_PER_STEP`] orders from number `first` on; returns the
/// next number. Every fifth is paid in the same append (two events, one
/// frame: the mirror keeps them one append); every third of the others is
/// paid once all are placed.
fn place_orders(log: &Log, first: u64) -> Result<u64> {
    let end = first + ORDERS_PER_STEP;
    for n in first..end {
        let placed = EventData::new("OrderPlaced", order_json(n));
        let events = if n % 5 == 0 {
            vec![placed, EventData::new("OrderPaid", order_json(n))]
        } else {
            vec![placed]
        };
        log.append(&format!("order-{n}"), ExpectedVersion::NoStream, &events)?;
    }
    for n in (first..end).filter(|n| n % 5 != 0 && n % 3 == 0) {
        let paid = EventData::new("OrderPaid", order_json(n));
        log.append(&format!("order-{n}"), ExpectedVersion::Exact(0), &[paid])?;
    }
    let events = log.read_all(Position::START)?.count();
    println!("   orders: placed orders {first}..{end}; {events} events in the orders log");
    Ok(end)
}

/// Prints a run loop's first failure of a series and its recovery:
/// retries between them are the loop's business.
fn failure_reporter(who: &'static str) -> impl FnMut(u32, &Option<String>) {
    let mut failing = false;
    move |failures, error| {
        if failures > 0 && !failing {
            let error = error.as_deref().unwrap_or("?");
            println!("   {who}: failed, retrying with backoff: {error}");
        } else if failures == 0 && failing {
            println!("   {who}: working again");
        }
        failing = failures > 0;
    }
}

/// The orders service: its log, and a publisher of it running beside.
struct Orders {
    log: Log,
    stop: oneshot::Sender<()>,
    publishing: JoinHandle<Progress>,
}

impl Orders {
    fn start(dir: &Path, client: &async_nats::Client, bridge: &Bridge) -> Result<Orders> {
        let log = Log::open(dir)?;
        let config = PublisherConfig {
            stream: bridge.stream.clone(),
            prefix: bridge.prefix.clone(),
            max_in_flight: 64,
        };
        let mut publisher = Publisher::new(client.clone(), Reader::open(dir)?, config)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let publishing = tokio::spawn(async move {
            let mut report = failure_reporter("orders publisher");
            let stop = async {
                let _ = stopped.await;
            };
            publisher
                .run(stop, |p| report(p.failures, &p.last_error))
                .await
        });
        println!(
            "   orders: log open, publisher running (it resumes after the stream's last message)"
        );
        Ok(Orders {
            log,
            stop,
            publishing,
        })
    }

    /// Stops the publisher; the log stays open (returned) for the service.
    async fn stop_publisher(self) -> Result<(Log, Progress)> {
        let _ = self.stop.send(());
        let progress = self.publishing.await?;
        let lag = progress.lag.map_or("unknown".into(), |l| l.to_string());
        println!(
            "   orders: publisher stopped; it published {} events, {lag} not sent yet",
            progress.published
        );
        Ok((self.log, progress))
    }
}

/// How billing stops.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stop {
    Running = 0,
    /// As if killed: no final save of the projection, no final checkpoint.
    Crash = 1,
    /// Saves the projection and checkpoints its consumer.
    Clean = 2,
}

/// The billing service: a mirror of the orders' events into its own log,
/// and a projection that follows that log.
struct Billing {
    stop_mirror: oneshot::Sender<()>,
    mirroring: JoinHandle<(Mirror, MirrorProgress)>,
    stop_projection: Arc<AtomicU8>,
    projecting: std::thread::JoinHandle<Result<Owed>>,
    /// Events the projection has applied (its state's count).
    applied: watch::Receiver<u64>,
}

impl Billing {
    fn start(dir: &Path, client: &async_nats::Client, bridge: &Bridge) -> Result<Billing> {
        let log = Log::open(dir.join("log"))?;
        // The consumer outlives this borrow of the log: take it before the
        // mirror takes the log.
        let consumer = log.consumer("owed-per-customer")?;
        let (state, stop) = (
            dir.join("owed.state"),
            Arc::new(AtomicU8::new(Stop::Running as u8)),
        );
        let (tell, applied) = watch::channel(0);
        let stop_projection = Arc::clone(&stop);
        let projecting = std::thread::spawn(move || project(consumer, &state, &stop, &tell));
        let config = MirrorConfig {
            stream: bridge.stream.clone(),
            consumer: "billing-mirror".into(),
            batch: 256,
        };
        let mut mirror = Mirror::new(client.clone(), log, config)?;
        let (stop_mirror, stopped) = oneshot::channel::<()>();
        let mirroring = tokio::spawn(async move {
            let mut report = failure_reporter("billing mirror");
            let stop = async {
                let _ = stopped.await;
            };
            let progress = mirror
                .run(stop, |p| report(p.failures, &p.last_error))
                .await;
            (mirror, progress)
        });
        Ok(Billing {
            stop_mirror,
            mirroring,
            stop_projection,
            projecting,
            applied,
        })
    }

    /// Waits until the projection has applied every event of `orders`.
    async fn caught_up(&self, orders: &Log) -> Result<()> {
        let total = orders.read_all(Position::START)?.count() as u64;
        let mut applied = self.applied.clone();
        let waited = tokio::time::timeout(CATCH_UP, applied.wait_for(|n| *n >= total)).await;
        if !matches!(waited, Ok(Ok(_))) {
            let got = *self.applied.borrow();
            return Err(format!("billing applied {got} of {total} events in {CATCH_UP:?}").into());
        }
        println!("   billing: caught up, the projection has applied all {total} events");
        Ok(())
    }

    /// Kills billing once its projection has applied `more` events beyond
    /// where it stands now: mid-way through the orders placed meanwhile.
    async fn kill_after(self, more: u64) -> Result<()> {
        let target = *self.applied.borrow() + more;
        let mut applied = self.applied.clone();
        tokio::time::timeout(CATCH_UP, applied.wait_for(|n| *n >= target)).await??;
        self.stop(Stop::Crash).await?;
        Ok(())
    }

    /// Stops the projection, then the mirror; returns the mirror's log and
    /// the projection's state.
    async fn stop(self, how: Stop) -> Result<(Log, Owed)> {
        self.stop_projection.store(how as u8, Ordering::SeqCst);
        let owed = self
            .projecting
            .join()
            .map_err(|_| "projection panicked")??;
        let _ = self.stop_mirror.send(());
        let (mirror, progress) = self.mirroring.await?;
        let lag = progress.lag.map_or("unknown".into(), |l| l.to_string());
        println!(
            "   billing: stopped{}; this life mirrored {} events ({lag} behind), \
             the projection had applied {}",
            if how == Stop::Crash {
                " as if killed"
            } else {
                ""
            },
            progress.mirrored,
            owed.events
        );
        Ok((mirror.into_log(), owed))
    }
}

/// The projection: cents owed per customer, placed less paid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Owed {
    by_customer: BTreeMap<String, i64>,
    /// Events applied.
    events: u64,
}

impl Owed {
    fn apply(&mut self, e: &RecordedEvent) -> Result<()> {
        let json = std::str::from_utf8(e.payload())?;
        let bad = || format!("{} v{}: unexpected payload {json}", e.stream(), e.version());
        let customer = json_field(json, "customer").ok_or_else(bad)?;
        let cents: i64 = json_field(json, "amount_cents")
            .and_then(|c| c.parse().ok())
            .ok_or_else(bad)?;
        let sign = match e.event_type() {
            "OrderPlaced" => 1,
            "OrderPaid" => -1,
            other => return Err(format!("unexpected event type {other}").into()),
        };
        *self.by_customer.entry(customer.to_string()).or_default() += sign * cents;
        self.events += 1;
        Ok(())
    }
}

/// The projection's loop: applies what its consumer delivers until told
/// to stop. An event before the position saved with the state is one the
/// state has (delivered again after a crash): skipped.
fn project(
    mut consumer: Consumer,
    state: &Path,
    stop: &AtomicU8,
    applied: &watch::Sender<u64>,
) -> Result<Owed> {
    let (mut owed, mut next) = load(state)?;
    let resume = consumer
        .checkpointed()
        .map_or("none (from the start)".into(), |p| p.to_string());
    println!(
        "   billing: projection resumes after checkpoint {resume}; its saved state has {} events",
        owed.events
    );
    applied.send_replace(owed.events);
    let (mut sub, mut delivered, mut skipped) = (consumer.subscribe()?, 0u64, 0u64);
    loop {
        match stop.load(Ordering::SeqCst) {
            s if s == Stop::Crash as u8 => break,
            s if s == Stop::Clean as u8 => {
                save(state, &owed, next)?;
                consumer.checkpoint()?;
                break;
            }
            _ => {}
        }
        let Some(e) = sub.next_timeout(Duration::from_millis(50))? else {
            continue;
        };
        delivered += 1;
        if e.position() < next {
            skipped += 1;
        } else {
            owed.apply(&e)?;
            next = e.next_position();
            applied.send_replace(owed.events);
        }
        consumer.ack(e.position())?;
        if delivered.is_multiple_of(SAVE_EVERY) {
            save(state, &owed, next)?;
        }
        if delivered.is_multiple_of(CHECKPOINT_EVERY) {
            consumer.checkpoint()?;
        }
    }
    if skipped > 0 {
        println!("   billing: {skipped} events delivered again were in the saved state: skipped");
    }
    Ok(owed)
}

/// Replaces the state file: the position it reflects, the event count,
/// then one `customer cents` line each. Write, fsync, rename, fsync the
/// directory: a crash leaves the old file or the new one.
fn save(path: &Path, owed: &Owed, next: Position) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    writeln!(file, "{} {}", next.as_u64(), owed.events)?;
    for (customer, cents) in &owed.by_customer {
        writeln!(file, "{customer} {cents}")?;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    let dir = path.parent().ok_or("a state file in a directory")?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The saved state and the position after it; empty at first start.
fn load(path: &Path) -> Result<(Owed, Position)> {
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Owed::default(), Position::START));
        }
        text => text?,
    };
    let bad = || format!("{}: not a state file", path.display());
    let mut lines = text.lines().map(|l| l.split_once(' ').ok_or_else(bad));
    let (next, events) = lines.next().ok_or_else(bad)??;
    let mut owed = Owed {
        by_customer: BTreeMap::new(),
        events: events.parse()?,
    };
    for line in lines {
        let (customer, cents) = line?;
        owed.by_customer
            .insert(customer.to_string(), cents.parse()?);
    }
    Ok((owed, Position::from_u64(next.parse()?)))
}

fn events(log: &Log) -> Result<Vec<RecordedEvent>> {
    Ok(log
        .read_all(Position::START)?
        .collect::<seglog::Result<_>>()?)
}

/// The end of the run: JetStream holds each event once, the mirror log
/// holds the orders log event for event, the projection is the one the
/// orders log gives.
async fn check(
    js: &jetstream::Context,
    bridge: &Bridge,
    orders: &Log,
    mirror: &Log,
    owed: &Owed,
) -> Result<()> {
    let (source, mirrored) = (events(orders)?, events(mirror)?);
    let mut stream = js.get_stream(&bridge.stream).await?;
    let stored = stream.info().await?.state.messages;
    if stored != source.len() as u64 {
        return Err(format!(
            "JetStream holds {stored} messages for {} events",
            source.len()
        )
        .into());
    }
    println!("   JetStream holds each of the {stored} events once");

    same_events(&source, &mirrored)?;
    println!(
        "   the mirror log holds the orders log event for event, in the same appends ({} events)",
        mirrored.len()
    );

    let mut expected = Owed::default();
    for e in &source {
        expected.apply(e)?;
    }
    if *owed != expected {
        return Err(format!(
            "the projection {:?} differs from the orders log's {:?}",
            owed.by_customer, expected.by_customer
        )
        .into());
    }
    let total: i64 = owed.by_customer.values().sum();
    println!(
        "   the projection equals the orders log's: {} customers owe {}.{:02} in total",
        owed.by_customer.len(),
        total / 100,
        total % 100
    );
    Ok(())
}

/// The two logs hold the same events in the same order, grouped into the
/// same appends (an event shares its predecessor's frame in one log if and
/// only if it does in the other).
fn same_events(source: &[RecordedEvent], mirror: &[RecordedEvent]) -> Result<()> {
    if source.len() != mirror.len() {
        let (s, m) = (source.len(), mirror.len());
        return Err(format!("the orders log holds {s} events, the mirror log {m}").into());
    }
    let key = |e: &RecordedEvent| {
        let (stream, version, event_type) = (e.stream().to_string(), e.version(), e.event_type());
        let data = (
            e.schema_version(),
            e.id(),
            e.metadata().clone(),
            e.payload().clone(),
        );
        (stream, version, event_type.to_string(), data)
    };
    let opens_append = |events: &[RecordedEvent], i: usize| match i.checked_sub(1) {
        None => true,
        Some(before) => {
            events[before].position().frame_offset() != events[i].position().frame_offset()
        }
    };
    for (i, (s, m)) in source.iter().zip(mirror).enumerate() {
        if key(s) != key(m) {
            return Err(format!(
                "event {i} differs: orders {:?}, mirror {:?}",
                key(s),
                key(m)
            )
            .into());
        }
        if opens_append(source, i) != opens_append(mirror, i) {
            return Err(format!("event {i} opens an append in one log only").into());
        }
    }
    Ok(())
}
