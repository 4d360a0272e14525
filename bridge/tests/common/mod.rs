//! Helpers of the bridge's tests over a real nats-server (the server itself
//! is `seglog_nats::testing`).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use async_nats::jetstream;
use seglog::{EventData, ExpectedVersion, Log, Position, RecordedEvent};
use seglog_nats::{PublisherConfig, headers, subject};

/// The publisher settings of the tests: stream `ORDERS` over `orders.>`.
pub fn orders(max_in_flight: usize) -> PublisherConfig {
    PublisherConfig {
        stream: "ORDERS".into(),
        prefix: "orders".into(),
        max_in_flight,
    }
}

/// Stream names a subject token must escape: a dot, a space, wildcards,
/// non-ASCII.
pub const STREAMS: [&str; 4] = ["order.42", "two words", "wild*card>", "注文 €"];

/// Appends at least `n` events numbered from `start`, some in batches,
/// with ids and metadata; returns the number after the last.
pub fn append(log: &Log, start: usize, n: usize) -> usize {
    let mut i = start;
    while i < start + n {
        let stream = STREAMS[i % STREAMS.len()];
        let count = 1 + i % 3;
        let events: Vec<EventData> = (i..i + count)
            .map(|k| {
                EventData::new(
                    if k % 2 == 0 { "Placed" } else { "Paid\nv2" },
                    format!("payload {k}"),
                )
                .with_metadata(format!("{{\"k\":{k}}}\r\n"))
                .with_schema_version(1 + (k % 3) as u16)
                .with_id(k as u128 * 7)
            })
            .collect();
        log.append(stream, ExpectedVersion::Any, &events)
            .expect("append");
        i += count;
    }
    i
}

pub fn events(log: &Log) -> Vec<RecordedEvent> {
    log.read_all(Position::START)
        .expect("read_all")
        .map(|e| e.expect("event"))
        .collect()
}

/// Every message of the stream matches the log's events, in order.
pub async fn check_stream(js: &jetstream::Context, log: &Log) {
    let all = events(log);
    let mut stream = js.get_stream("ORDERS").await.expect("stream");
    let last = stream.info().await.expect("info").state.last_sequence;
    assert_eq!(last, all.len() as u64, "each event once");
    for (i, e) in all.iter().enumerate() {
        let m = stream.get_raw_message(i as u64 + 1).await.expect("message");
        assert_eq!(
            m.subject.as_str(),
            format!("orders.{}", subject::encode(e.stream()))
        );
        assert_eq!(&m.payload[..], &e.payload()[..], "payload of {i}");
        let r = headers::decode(&m.headers).expect("headers");
        assert_eq!(r.log_id, log.log_id());
        assert_eq!(
            (r.position, r.next_position),
            (e.position(), e.next_position())
        );
        assert_eq!((r.stream.as_str(), r.version), (e.stream(), e.version()));
        assert_eq!(
            (r.event_type.as_str(), r.schema_version),
            (e.event_type(), e.schema_version())
        );
        assert_eq!((r.id, r.time_us), (e.id(), e.timestamp_micros()));
        assert_eq!(&r.metadata[..], &e.metadata()[..]);
    }
}

/// Waits (up to a minute) until the stream `ORDERS` holds `count`
/// messages: a running publisher has caught up.
pub async fn wait_until_stored(js: &jetstream::Context, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = match js.get_stream("ORDERS").await {
            Ok(mut s) => s.info().await.map(|i| i.state.last_sequence).unwrap_or(0),
            Err(_) => 0,
        };
        if last >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "caught up only to {last} of {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The two logs hold the same events, in the same order, grouped into the
/// same appends (an event shares its predecessor's frame in one log iff it
/// does in the other).
pub fn assert_same(source: &Log, mirror: &Log) {
    let (a, b) = (events(source), events(mirror));
    assert_eq!(a.len(), b.len(), "event count");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!((x.stream(), x.version()), (y.stream(), y.version()));
        assert_eq!(
            (x.event_type(), x.schema_version()),
            (y.event_type(), y.schema_version())
        );
        assert_eq!(
            (x.id(), x.metadata(), x.payload()),
            (y.id(), y.metadata(), y.payload())
        );
        if i > 0 {
            let frame = |e: &[RecordedEvent]| {
                e[i].position().frame_offset() == e[i - 1].position().frame_offset()
            };
            assert_eq!(
                frame(&a),
                frame(&b),
                "event {i} begins an append in one log only"
            );
        }
    }
}
