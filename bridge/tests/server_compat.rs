//! What the bridge needs from JetStream, checked with the pinned
//! `async-nats` against the `nats-server` installed here (Debian's 2.9):
//! stream creation, publishes with headers, deduplication by
//! `Nats-Msg-Id`, `Nats-Expected-Last-Sequence` and
//! `Nats-Expected-Last-Msg-Id`, reading a stream's last message, a durable
//! pull consumer and an ordered one from a start sequence (the mirror's).

use seglog_nats::testing;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, message::PublishMessage as Publish, stream};
use futures_util::StreamExt;

#[tokio::test]
async fn the_pinned_client_does_what_the_bridge_needs_against_this_server() {
    let Some(server) = testing::start("the_pinned_client_does_what_the_bridge_needs") else {
        return;
    };
    let client = async_nats::connect(&server.url).await.expect("connect");
    let js = jetstream::new(client);
    let mut orders = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .expect("create stream");
    check_publishes(&js).await;
    check_last_message(&mut orders).await;
    check_consumers(&orders).await;
}

/// Deduplication by message id, and the expected last sequence and
/// message id: two messages stored, two refused.
async fn check_publishes(js: &jetstream::Context) {
    let mut headers = HeaderMap::new();
    headers.insert("Seglog-Position", "4096:0");
    let first = Publish::build()
        .headers(headers)
        .message_id("log-1:4096")
        .payload("placed".into());
    let ack = js
        .send_publish("orders.order-1", first.clone())
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert_eq!((ack.sequence, ack.duplicate), (1, false));
    // The same message id again: acknowledged as a duplicate, not stored.
    let again = js
        .send_publish("orders.order-1", first)
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert_eq!((again.sequence, again.duplicate), (1, true));
    // An expected last sequence that holds is taken; a stale one refused.
    let next = Publish::build()
        .message_id("log-1:4200")
        .expected_last_sequence(1)
        .payload("paid".into());
    let ack = js
        .send_publish("orders.order-1", next)
        .await
        .expect("publish")
        .await;
    assert_eq!(ack.expect("in order").sequence, 2);
    let stale = Publish::build()
        .message_id("log-1:4300")
        .expected_last_sequence(1)
        .payload("late".into());
    let refused = js
        .send_publish("orders.order-1", stale)
        .await
        .expect("publish")
        .await;
    assert!(refused.is_err(), "a publish out of order must be refused");
    // The right sequence but another message before it: refused.
    let other = Publish::build()
        .message_id("log-2:4096")
        .expected_last_sequence(2)
        .expected_last_message_id("log-1:4096")
        .payload("other".into());
    let refused = js
        .send_publish("orders.order-1", other)
        .await
        .expect("publish")
        .await;
    assert!(
        refused.is_err(),
        "a publish after another message must be refused"
    );
}

/// The stream's last message, with its headers.
async fn check_last_message(orders: &mut stream::Stream) {
    let last = orders.info().await.expect("info").state.last_sequence;
    assert_eq!(last, 2);
    let message = orders.get_raw_message(last).await.expect("last message");
    assert_eq!(&message.payload[..], b"paid");
    let first = orders.get_raw_message(1).await.expect("first message");
    assert_eq!(
        first.headers.get("Seglog-Position").map(|v| v.as_str()),
        Some("4096:0")
    );
}

/// A durable pull consumer gets both messages, in order; an ordered one
/// from the second gets the second.
async fn check_consumers(orders: &stream::Stream) {
    let consumer: consumer::PullConsumer = orders
        .create_consumer(consumer::pull::Config {
            durable_name: Some("billing".into()),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer
        .fetch()
        .max_messages(10)
        .messages()
        .await
        .expect("fetch");
    let mut got = Vec::new();
    while let Some(m) = messages.next().await {
        let m = m.expect("message");
        got.push(m.payload.to_vec());
        m.ack().await.expect("ack");
    }
    assert_eq!(got, [b"placed".to_vec(), b"paid".to_vec()]);
    let ordered = orders
        .create_consumer(consumer::pull::OrderedConfig {
            name: Some("mirror-1".into()),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: 2 },
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut messages = ordered.messages().await.expect("messages");
    let m = messages.next().await.expect("one").expect("message");
    assert_eq!(&m.payload[..], b"paid");
    assert_eq!(m.info().expect("info").pending, 0);
}
