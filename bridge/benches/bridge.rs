//! The NATS bridge beside a plain `async-nats` client (issue 27): the
//! anchor is JetStream used as the event store directly, with the same
//! messages and the same guarantees.
//!
//! Each run starts its own `nats-server -js` (a fresh store, so runs are
//! independent) and measures, over one source log of `--events` events
//! (default 1M) of 128 B spread over 1,000 streams, appended ten to an
//! append and a hundred appends to an `append_many`, as a service
//! batching its commands would:
//! - publish: the plain client sending the log's events (read into
//!   memory before timing; each message built in the loop, as an
//!   application builds its own) with the bridge's headers, `Nats-Msg-Id`,
//!   `Nats-Expected-Last-Sequence` and `Nats-Expected-Last-Msg-Id`, at
//!   most 256 acknowledgements
//!   awaited, in order; the same without the last two headers; and
//!   `Publisher::publish_available` from the log, same bound;
//! - consume: an ordered pull consumer receiving the whole anchor stream,
//!   and `Mirror::mirror_available` appending the publisher's stream into
//!   an empty log (`Durability::Sync`, the default; batches of 1,000);
//! - latency under a steady load (`--rate` events/s for `--seconds`, one
//!   event per append, paced on a schedule so a stall shows as latency):
//!   from an append's return to the event in the mirror log (a
//!   subscription there), `Publisher::run` and `Mirror::run` running, both
//!   logs `--durability` (default sync); and from the plain client's
//!   acknowledgement of a publish to an ordered consumer holding it. The
//!   first second is warm-up and not counted.
//!
//! The anchors and the bridge alternate which goes first from one run to
//! the next. Printed: each run, then the medians and the median of each
//! run's bridge/anchor ratio.
//!
//! Run: `cargo bench -p seglog-nats --bench bridge [-- --events N --runs R
//! --rate EVENTS_PER_S --seconds S --durability sync|none]`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use seglog::{
    AppendRequest, Durability, EventData, ExpectedVersion, Log, Options, Position, Reader,
    RecordedEvent,
};
use seglog_nats::{Mirror, MirrorConfig, Publisher, PublisherConfig, headers, subject, testing};

/// Payload size, as in the library's benches; the first 8 bytes carry the
/// event's index.
const PAYLOAD_BYTES: usize = 128;
/// Streams the events are spread over.
const STREAMS: usize = 1_000;
/// Events per append while building the source log.
const EVENTS_PER_APPEND: usize = 10;
/// Appends per `append_many` while building the source log.
const APPENDS_PER_CALL: usize = 100;
/// Publishes awaiting their acknowledgement, at most, for the anchor and
/// the publisher alike.
const MAX_IN_FLIGHT: usize = 256;
/// Events published before the timed phases of a run.
const WARM_UP_EVENTS: usize = 20_000;
/// Messages the mirror appends at a time, at most.
const MIRROR_BATCH: usize = 1_000;

/// What to run, from the command line.
#[derive(Debug, Clone)]
struct Args {
    events: usize,
    runs: usize,
    rate_per_s: u64,
    seconds: u64,
    durability: Durability,
}

const USAGE: &str = "usage: cargo bench -p seglog-nats --bench bridge -- [--events N] [--runs R] \
                     [--rate EVENTS_PER_S] [--seconds S] [--durability sync|none]";

fn parse_args() -> Args {
    let mut args = Args {
        events: 1_000_000,
        runs: 3,
        rate_per_s: 2_000,
        seconds: 10,
        durability: Durability::Sync,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        // Cargo passes `--bench` to every bench target.
        if word == "--bench" {
            continue;
        }
        let value = words.next().unwrap_or_else(|| panic!("{USAGE}"));
        let number = || value.replace(['_', ','], "").parse().expect(USAGE);
        match word.as_str() {
            "--events" => args.events = number() as usize,
            "--runs" => args.runs = number() as usize,
            "--rate" => args.rate_per_s = number(),
            "--seconds" => args.seconds = number(),
            "--durability" => {
                args.durability = match value.as_str() {
                    "sync" => Durability::Sync,
                    "none" => Durability::None,
                    _ => panic!("{USAGE}"),
                }
            }
            _ => panic!("{USAGE}"),
        }
    }
    assert!(
        args.events > 0 && args.runs > 0 && args.rate_per_s > 0 && args.seconds > 1,
        "{USAGE}"
    );
    args
}

/// A payload of [`PAYLOAD_BYTES`] whose first 8 bytes are `index`.
fn payload(index: usize) -> Bytes {
    let mut bytes = [0x5Au8; PAYLOAD_BYTES];
    bytes[..8].copy_from_slice(&(index as u64).to_le_bytes());
    Bytes::copy_from_slice(&bytes)
}

/// The index a payload made by [`payload`] carries.
fn index_of(payload: &[u8]) -> usize {
    let word = payload.get(..8).expect("an indexed payload");
    u64::from_le_bytes(word.try_into().expect("8 bytes")) as usize
}

fn stream_name(k: usize) -> String {
    format!("account-{:04}", k % STREAMS)
}

/// Writes the source log into `dir`: `events` events with ids, ten to an
/// append on one stream, a hundred appends to a call. Returns its id and
/// its events, read back, for the anchor.
fn build_source(dir: &Path, events: usize) -> (u128, Vec<RecordedEvent>) {
    let log = Options::new()
        .durability(Durability::None)
        .open(dir)
        .expect("open source");
    let names: Vec<String> = (0..STREAMS).map(stream_name).collect();
    let mut next = 0;
    let mut append = 0;
    while next < events {
        let mut batches = Vec::with_capacity(APPENDS_PER_CALL);
        while batches.len() < APPENDS_PER_CALL && next < events {
            let end = (next + EVENTS_PER_APPEND).min(events);
            let batch: Vec<EventData> = (next..end)
                .map(|i| EventData::new("Deposited", payload(i)).with_id(i as u128 + 1))
                .collect();
            batches.push((&names[append % STREAMS], batch));
            append += 1;
            next = end;
        }
        let requests: Vec<AppendRequest<'_>> = batches
            .iter()
            .map(|(stream, events)| AppendRequest {
                stream,
                expected: ExpectedVersion::Any,
                events,
            })
            .collect();
        for result in log.append_many(&requests).expect("append_many") {
            result.expect("append");
        }
    }
    log.sync().expect("sync");
    let read: Vec<RecordedEvent> = log
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| e.expect("event"))
        .collect();
    assert_eq!(read.len(), events);
    let log_id = log.log_id();
    log.close().expect("close source");
    (log_id, read)
}

/// Creates (or finds) a JetStream stream over `<prefix>.>`, as the
/// publisher does.
async fn create_stream(js: &jetstream::Context, name: &str, prefix: &str) -> stream::Stream {
    js.get_or_create_stream(stream::Config {
        name: name.into(),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    })
    .await
    .expect("create stream")
}

/// The message the bridge would send for `e`: its headers, and with
/// `guarantees` its message id, the sequence it must follow and the
/// message id of `previous` (the stream's last message, if any).
fn message(
    log_id: u128,
    e: &RecordedEvent,
    (last_sequence, previous): (u64, Option<&RecordedEvent>),
    guarantees: bool,
) -> PublishMessage {
    let message = PublishMessage::build()
        .headers(headers::encode(log_id, e))
        .payload(e.payload().clone());
    if !guarantees {
        return message;
    }
    let message = message
        .message_id(headers::message_id(log_id, e))
        .expected_last_sequence(last_sequence);
    match previous {
        Some(previous) => message.expected_last_message_id(headers::message_id(log_id, previous)),
        None => message,
    }
}

/// The anchor: `events` published by the plain client into a new stream
/// `name`, `MAX_IN_FLIGHT` acknowledgements awaited in order. Returns the
/// time from the first publish to the last acknowledgement.
async fn anchor_publish(
    js: &jetstream::Context,
    events: &[RecordedEvent],
    log_id: u128,
    (name, prefix): (&str, &str),
    guarantees: bool,
) -> Duration {
    create_stream(js, name, prefix).await;
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(MAX_IN_FLIGHT);
    let mut previous = None;
    for (sequence, e) in (0u64..).zip(events) {
        let subject = format!("{prefix}.{}", subject::encode(e.stream()));
        if in_flight.len() >= MAX_IN_FLIGHT
            && let Some(ack) = in_flight.pop_front()
        {
            acknowledged(ack).await;
        }
        let ack = js
            .send_publish(
                subject,
                message(log_id, e, (sequence, previous), guarantees),
            )
            .await
            .expect("publish");
        in_flight.push_back(ack);
        previous = Some(e);
    }
    while let Some(ack) = in_flight.pop_front() {
        acknowledged(ack).await;
    }
    started.elapsed()
}

/// Waits for an acknowledgement, which must be of a new message.
async fn acknowledged(ack: jetstream::context::PublishAckFuture) {
    let ack = ack.await.expect("acknowledgement");
    assert!(!ack.duplicate, "duplicate at {}", ack.sequence);
}

/// The bridge: the source log in `dir` published by `Publisher` into the
/// new stream `ORDERS`. Returns the time `publish_available` took (the
/// stream's creation included: two round trips).
async fn bridge_publish(client: &async_nats::Client, dir: &Path, events: usize) -> Duration {
    let source = Log::open(dir).expect("open source");
    let config = PublisherConfig {
        stream: "ORDERS".into(),
        prefix: "orders".into(),
        max_in_flight: MAX_IN_FLIGHT,
    };
    let mut publisher = Publisher::new(client.clone(), source, config).expect("publisher");
    let started = Instant::now();
    let published = publisher.publish_available().await.expect("publish");
    let elapsed = started.elapsed();
    assert_eq!(published, events as u64);
    elapsed
}

/// The anchor: an ordered pull consumer receiving all `events` messages of
/// stream `name`. Returns the time from the consumer's creation to the
/// last message.
async fn anchor_consume(js: &jetstream::Context, name: &str, events: usize) -> Duration {
    let stream = js.get_stream(name).await.expect("stream");
    let started = Instant::now();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            name: Some("anchor".into()),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut received = 0;
    while received < events {
        messages.next().await.expect("open").expect("message");
        received += 1;
    }
    started.elapsed()
}

/// The bridge: stream `ORDERS` mirrored into a new log (default options:
/// `Durability::Sync`). Returns the time `mirror_available` took.
async fn bridge_mirror(client: &async_nats::Client, events: usize) -> Duration {
    let dir = tempfile::tempdir().expect("mirror dir");
    let log = Log::open(dir.path()).expect("open mirror log");
    let config = MirrorConfig {
        stream: "ORDERS".into(),
        consumer: "mirror".into(),
        batch: MIRROR_BATCH,
    };
    let mut mirror = Mirror::new(client.clone(), log, config).expect("mirror");
    let started = Instant::now();
    let mirrored = mirror.mirror_available().await.expect("mirror");
    let elapsed = started.elapsed();
    assert_eq!(mirrored, events as u64);
    mirror.into_log().close().expect("close mirror log");
    elapsed
}

/// Nanoseconds since `base`, per event of a latency run: when its append
/// (publish) was called, when it returned (was acknowledged), when the
/// reader held it; 0 for never.
struct Stamps {
    called: Vec<u64>,
    returned: Vec<u64>,
    delivered: Vec<u64>,
}

/// Percentiles of one latency run, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    /// From the call, not the return: what the writer waits plus the
    /// delivery.
    from_call_p50_us: f64,
    from_call_p99_us: f64,
    from_call_max_us: f64,
    /// Events the reader held before their append (publish) returned.
    delivered_first: usize,
    counted: usize,
}

fn ns_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Sleeps until event `index`'s time on a schedule of `rate_per_s` from
/// `base`; an event behind schedule goes at once.
fn wait_for_turn(base: Instant, index: usize, rate_per_s: u64) {
    let due = base + Duration::from_nanos(index as u64 * 1_000_000_000 / rate_per_s);
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// The sample at quantile `q` of `sorted`, in microseconds.
fn quantile_us(sorted: &[u64], q: f64) -> f64 {
    let at = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or_default() as f64 / 1e3
}

impl Stamps {
    fn new(events: usize) -> Stamps {
        Stamps {
            called: vec![0; events],
            returned: vec![0; events],
            delivered: vec![0; events],
        }
    }

    /// The percentiles over every event after the first `warm_up`; panics
    /// on an event never delivered.
    fn latency(&self, warm_up: usize) -> Latency {
        let mut from_return = Vec::new();
        let mut from_call = Vec::new();
        let mut delivered_first = 0;
        for i in warm_up..self.delivered.len() {
            let (called, returned, delivered) =
                (self.called[i], self.returned[i], self.delivered[i]);
            assert!(delivered > 0, "event {i} never delivered");
            delivered_first += usize::from(delivered < returned);
            from_return.push(delivered.saturating_sub(returned));
            from_call.push(delivered - called);
        }
        from_return.sort_unstable();
        from_call.sort_unstable();
        Latency {
            p50_us: quantile_us(&from_return, 0.5),
            p99_us: quantile_us(&from_return, 0.99),
            max_us: quantile_us(&from_return, 1.0),
            from_call_p50_us: quantile_us(&from_call, 0.5),
            from_call_p99_us: quantile_us(&from_call, 0.99),
            from_call_max_us: quantile_us(&from_call, 1.0),
            delivered_first,
            counted: from_return.len(),
        }
    }
}

/// A future that completes once `flag` is set: the run loops' stop.
async fn stopped(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Appends `events` single events to `log` on the schedule; stamps each
/// call and return.
fn append_paced(log: &Log, events: usize, rate_per_s: u64, base: Instant) -> Stamps {
    let mut stamps = Stamps::new(events);
    for i in 0..events {
        wait_for_turn(base, i, rate_per_s);
        let event = [EventData::new("Deposited", payload(i)).with_id(i as u128 + 1)];
        stamps.called[i] = ns_since(base);
        log.append(&stream_name(i), ExpectedVersion::Any, &event)
            .expect("append");
        stamps.returned[i] = ns_since(base);
    }
    stamps
}

/// Stamps the arrival of `events` events in `subscription`.
fn await_mirrored(
    mut subscription: seglog::Subscription,
    events: usize,
    base: Instant,
) -> Vec<u64> {
    let mut delivered = vec![0; events];
    let mut held = 0;
    while held < events {
        let next = subscription.next_timeout(Duration::from_secs(30));
        let e = next.expect("subscription").expect("an event within 30 s");
        delivered[index_of(e.payload())] = ns_since(base);
        held += 1;
    }
    delivered
}

/// The bridge's loops, running until `stop` is set: `Publisher::run` from
/// a reader of the log in `source_dir` into stream `LIVE`, `Mirror::run`
/// from it into `mirror_log`.
async fn start_bridge(
    client: &async_nats::Client,
    source_dir: &Path,
    mirror_log: Log,
    stop: &Arc<AtomicBool>,
) -> (tokio::task::JoinHandle<u32>, tokio::task::JoinHandle<u32>) {
    // The mirror needs the stream at once; the publisher would make it.
    create_stream(&jetstream::new(client.clone()), "LIVE", "live").await;
    let reader = Reader::open(source_dir).expect("reader");
    let publisher_config = PublisherConfig {
        stream: "LIVE".into(),
        prefix: "live".into(),
        max_in_flight: MAX_IN_FLIGHT,
    };
    let mut publisher =
        Publisher::new(client.clone(), reader, publisher_config).expect("publisher");
    let mirror_config = MirrorConfig {
        stream: "LIVE".into(),
        consumer: "live-mirror".into(),
        batch: MIRROR_BATCH,
    };
    let mut mirror = Mirror::new(client.clone(), mirror_log, mirror_config).expect("mirror");
    let publishing = tokio::spawn({
        let stop = stopped(Arc::clone(stop));
        async move { publisher.run(stop, |_| {}).await.failures }
    });
    let mirroring = tokio::spawn({
        let stop = stopped(Arc::clone(stop));
        async move { mirror.run(stop, |_| {}).await.failures }
    });
    (publishing, mirroring)
}

/// The bridge under a steady load: `events` appended to a new source log
/// one at a time, the bridge's loops running, a subscription on the
/// mirror log stamping each arrival.
async fn bridge_latency(url: &str, events: usize, args: &Args) -> Stamps {
    let client = async_nats::connect(url).await.expect("connect");
    let options = Options::new().durability(args.durability);
    let source_dir = tempfile::tempdir().expect("source dir");
    let mirror_dir = tempfile::tempdir().expect("mirror dir");
    let source = options
        .clone()
        .open(source_dir.path())
        .expect("open source");
    let mirror_log = options.open(mirror_dir.path()).expect("open mirror log");
    let subscription = mirror_log
        .subscribe_all(Position::START)
        .expect("subscribe");
    let stop = Arc::new(AtomicBool::new(false));
    let (publishing, mirroring) = start_bridge(&client, source_dir.path(), mirror_log, &stop).await;
    let base = Instant::now();
    let receiving = std::thread::spawn(move || await_mirrored(subscription, events, base));
    let rate = args.rate_per_s;
    let appending = tokio::task::spawn_blocking(move || append_paced(&source, events, rate, base));
    let mut stamps = appending.await.expect("appender");
    let delivered = tokio::task::spawn_blocking(move || receiving.join().expect("receiver"));
    stamps.delivered = delivered.await.expect("join");
    stop.store(true, Ordering::Release);
    let failures = (publishing.await, mirroring.await);
    assert_eq!(
        (failures.0.expect("publisher"), failures.1.expect("mirror")),
        (0, 0),
        "the bridge's loops failed"
    );
    stamps
}

/// The anchor under the same load: `events` published by the plain client
/// one at a time, each acknowledged before the next, with the bridge's
/// headers, message id and expected sequence; an ordered consumer stamps
/// each arrival.
async fn anchor_latency(url: &str, events: &[RecordedEvent], log_id: u128, rate: u64) -> Stamps {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client);
    let stream = create_stream(&js, "LIVE_ANCHOR", "anchor-live").await;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            name: Some("anchor-live".into()),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let count = events.len();
    let base = Instant::now();
    let receiving = tokio::spawn(async move {
        let mut delivered = vec![0; count];
        for _ in 0..count {
            let next = tokio::time::timeout(Duration::from_secs(30), messages.next()).await;
            let m = next
                .expect("a message within 30 s")
                .expect("open")
                .expect("message");
            delivered[index_of(&m.payload)] = ns_since(base);
        }
        delivered
    });
    let events = events.to_vec();
    let runtime = tokio::runtime::Handle::current();
    let publishing = tokio::task::spawn_blocking(move || {
        let mut stamps = Stamps::new(count);
        for (i, e) in events.iter().enumerate() {
            wait_for_turn(base, i, rate);
            let subject = format!("anchor-live.{}", subject::encode(e.stream()));
            let previous = i.checked_sub(1).and_then(|p| events.get(p));
            let message = message(log_id, e, (i as u64, previous), true);
            stamps.called[i] = ns_since(base);
            runtime.block_on(async {
                let ack = js.send_publish(subject, message).await.expect("publish");
                acknowledged(ack).await;
            });
            stamps.returned[i] = ns_since(base);
        }
        stamps
    });
    let mut stamps = publishing.await.expect("publisher");
    stamps.delivered = receiving.await.expect("receiver");
    stamps
}

/// One run's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    /// Events/s.
    anchor_publish: f64,
    anchor_publish_bare: f64,
    bridge_publish: f64,
    anchor_consume: f64,
    bridge_mirror: f64,
    anchor_latency: Latency,
    bridge_latency: Latency,
}

fn per_s(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64()
}

/// Publish and consume on the server at `url`, the bridge first or last.
async fn throughput(
    url: &str,
    source: (&Path, &[RecordedEvent], u128),
    bridge_first: bool,
) -> Figures {
    let (dir, events, log_id) = source;
    let n = events.len();
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client.clone());
    // The server's first stream and first writes are slower: not timed.
    let warm_up = events.get(..WARM_UP_EVENTS).unwrap_or(events);
    anchor_publish(&js, warm_up, log_id, ("WARM_UP", "warm-up"), true).await;
    let mut f = Figures::default();
    if bridge_first {
        f.bridge_publish = per_s(n, bridge_publish(&client, dir, n).await);
    }
    let anchor = anchor_publish(&js, events, log_id, ("ANCHOR", "anchor"), true).await;
    f.anchor_publish = per_s(n, anchor);
    let bare = anchor_publish(&js, events, log_id, ("BARE", "bare"), false).await;
    f.anchor_publish_bare = per_s(n, bare);
    if !bridge_first {
        f.bridge_publish = per_s(n, bridge_publish(&client, dir, n).await);
    }
    if bridge_first {
        f.bridge_mirror = per_s(n, bridge_mirror(&client, n).await);
    }
    f.anchor_consume = per_s(n, anchor_consume(&js, "ANCHOR", n).await);
    if !bridge_first {
        f.bridge_mirror = per_s(n, bridge_mirror(&client, n).await);
    }
    f
}

/// One run on a fresh server.
async fn run(
    url: &str,
    source: (&Path, &[RecordedEvent], u128),
    args: &Args,
    bridge_first: bool,
) -> Figures {
    let mut f = throughput(url, source, bridge_first).await;
    let (_, events, log_id) = source;
    let live = (args.rate_per_s * args.seconds) as usize;
    let live_events = events
        .get(..live)
        .expect("--events at least --rate x --seconds");
    let warm_up = args.rate_per_s as usize;
    if bridge_first {
        f.bridge_latency = bridge_latency(url, live, args).await.latency(warm_up);
    }
    let anchor = anchor_latency(url, live_events, log_id, args.rate_per_s).await;
    f.anchor_latency = anchor.latency(warm_up);
    if !bridge_first {
        f.bridge_latency = bridge_latency(url, live, args).await.latency(warm_up);
    }
    f
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn print_run(run: usize, f: &Figures) {
    println!(
        "run {run}: publish anchor {:.0}/s (without msg-id, expected sequence {:.0}/s), \
         bridge {:.0}/s; consume anchor {:.0}/s, mirror {:.0}/s",
        f.anchor_publish,
        f.anchor_publish_bare,
        f.bridge_publish,
        f.anchor_consume,
        f.bridge_mirror,
    );
    for (who, l) in [("anchor", f.anchor_latency), ("bridge", f.bridge_latency)] {
        println!(
            "  {who} latency p50/p99/max us: write call to reader {:.0}/{:.0}/{:.0}, write \
             return to reader {:.0}/{:.0}/{:.0}; read before the write returned: {} of {}",
            l.from_call_p50_us,
            l.from_call_p99_us,
            l.from_call_max_us,
            l.p50_us,
            l.p99_us,
            l.max_us,
            l.delivered_first,
            l.counted,
        );
    }
}

/// Prints one row of the summary: the medians of `pairs` (anchor,
/// bridge) and the median of the runs' ratios of the bridge's time to the
/// anchor's (`rate`: the figures are events/s, so the ratio inverts).
fn row(name: &str, pairs: &[(f64, f64)], rate: bool) {
    let anchor = median(pairs.iter().map(|p| p.0).collect());
    let bridge = median(pairs.iter().map(|p| p.1).collect());
    let ratio = median(
        pairs
            .iter()
            .map(|&(a, b)| if rate { a / b } else { b / a })
            .collect(),
    );
    println!("{name:<44} {anchor:>10.0} {bridge:>10.0} {ratio:>7.2}");
}

/// The medians of the runs, and the median of each run's ratio.
fn print_summary(runs: &[Figures]) {
    let pairs = |pick: fn(&Figures) -> (f64, f64)| runs.iter().map(pick).collect::<Vec<_>>();
    let latency = |q: fn(&Latency) -> f64| {
        let pairs: Vec<(f64, f64)> = runs
            .iter()
            .map(|f| (q(&f.anchor_latency), q(&f.bridge_latency)))
            .collect();
        pairs
    };
    println!(
        "\nmedians of {} run(s); ratio: the bridge's time over the anchor's, the median \
         of the runs' ratios (aim: under 1.20)",
        runs.len()
    );
    println!(
        "{:<44} {:>10} {:>10} {:>7}",
        "", "anchor", "bridge", "ratio"
    );
    let publish = pairs(|f| (f.anchor_publish, f.bridge_publish));
    row("publish, events/s", &publish, true);
    let bare = pairs(|f| (f.anchor_publish_bare, f.bridge_publish));
    row("  anchor without msg-id, expected sequence", &bare, true);
    let consume = pairs(|f| (f.anchor_consume, f.bridge_mirror));
    row(
        "consume (anchor) / mirror (bridge), events/s",
        &consume,
        true,
    );
    row(
        "latency, write call to reader p50, us",
        &latency(|l| l.from_call_p50_us),
        false,
    );
    row(
        "latency, write call to reader p99, us",
        &latency(|l| l.from_call_p99_us),
        false,
    );
    row(
        "latency, write call to reader max, us",
        &latency(|l| l.from_call_max_us),
        false,
    );
    row(
        "latency, write return to reader p50, us",
        &latency(|l| l.p50_us),
        false,
    );
    row(
        "latency, write return to reader p99, us",
        &latency(|l| l.p99_us),
        false,
    );
    row(
        "latency, write return to reader max, us",
        &latency(|l| l.max_us),
        false,
    );
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("source dir");
    let (log_id, events) = build_source(dir.path(), args.events);
    println!(
        "bridge: {} events of {PAYLOAD_BYTES} B over {STREAMS} streams ({EVENTS_PER_APPEND} an append), \
         {MAX_IN_FLIGHT} publishes in flight, mirror batches of {MIRROR_BATCH}; latency at {}/s \
         for {} s (1 s warm-up), logs {:?}; {} run(s)",
        args.events, args.rate_per_s, args.seconds, args.durability, args.runs
    );
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let Some(server) = testing::start("the bridge bench") else {
            return;
        };
        let source = (dir.path(), &events[..], log_id);
        let figures = runtime.block_on(run(&server.url, source, &args, i % 2 == 1));
        drop(server);
        print_run(i, &figures);
        runs.push(figures);
    }
    print_summary(&runs);
}
