//! The publisher against a real nats-server: every event of a log in the
//! JetStream stream, in log order, each once, with its headers and
//! payload; a new publisher resumes after the stream's last message; a
//! `Reader` in place of the writer's `Log`; another log's stream refused.

mod common;

use async_nats::jetstream;
use common::{append, check_stream};
use seglog::{Log, Reader};
use seglog_nats::{BridgeError, Publisher, PublisherConfig, testing};

fn config() -> PublisherConfig {
    PublisherConfig {
        stream: "ORDERS".into(),
        prefix: "orders".into(),
        max_in_flight: 64,
    }
}

#[tokio::test]
async fn a_log_reaches_jetstream_in_order_each_event_once_and_resumes() {
    let Some(server) = testing::start("publish: in order, once, resumes") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(dir.path()).expect("open");
    let written = append(&log, 0, 500);
    let client = async_nats::connect(&server.url).await.expect("connect");
    let js = jetstream::new(client.clone());

    let mut publisher = Publisher::new(
        client.clone(),
        Reader::open(dir.path()).expect("reader"),
        config(),
    )
    .expect("publisher");
    assert_eq!(
        publisher.publish_available().await.expect("publish"),
        written as u64
    );
    assert_eq!(publisher.publish_available().await.expect("nothing new"), 0);
    check_stream(&js, &log).await;

    // A new publisher (a restart) goes on after the stream's last message.
    let more = append(&log, written, 200) - written;
    let mut restarted = Publisher::new(client.clone(), log, config()).expect("publisher");
    assert_eq!(
        restarted.publish_available().await.expect("publish"),
        more as u64
    );
    let log = Log::open(tempfile::tempdir().expect("dir").path()).expect("other log");
    // Another log's publisher into the same stream is refused.
    let mut other = Publisher::new(client, log, config()).expect("publisher");
    match other.publish_available().await {
        Err(BridgeError::OtherLog { .. }) => {}
        other => panic!("another log's stream: {other:?}"),
    }
    drop(restarted);
    let log = Log::open(dir.path()).expect("reopen");
    check_stream(&js, &log).await;
}
