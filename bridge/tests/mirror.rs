//! The mirror against a real nats-server: a log published to JetStream
//! and mirrored into a second log holds the same events (streams,
//! versions, types, schema versions, ids, metadata, payloads); a mirror
//! whose consumer starts over (every message redelivered, as after a
//! crash before its acknowledgements) appends nothing twice.

mod common;

use common::{append, assert_same};
use seglog::Log;
use seglog_nats::{Mirror, MirrorConfig, Publisher, PublisherConfig, testing};

fn mirror_config(consumer: &str) -> MirrorConfig {
    MirrorConfig {
        stream: "ORDERS".into(),
        consumer: consumer.into(),
        batch: 100,
    }
}

#[tokio::test]
async fn a_mirror_holds_the_source_log_event_for_event_and_appends_nothing_twice() {
    let Some(server) = testing::start("mirror: event for event, once") else {
        return;
    };
    let client = async_nats::connect(&server.url).await.expect("connect");
    let source_dir = tempfile::tempdir().expect("dir");
    let source = Log::open(source_dir.path()).expect("open");
    let written = append(&source, 0, 300);
    let config = PublisherConfig {
        stream: "ORDERS".into(),
        prefix: "orders".into(),
        max_in_flight: 32,
    };
    let mut publisher = Publisher::new(client.clone(), source, config).expect("publisher");
    publisher.publish_available().await.expect("publish");

    let mirror_dir = tempfile::tempdir().expect("dir");
    let local = Log::open(mirror_dir.path()).expect("open mirror log");
    let mut mirror = Mirror::new(client.clone(), local, mirror_config("billing")).expect("mirror");
    assert_eq!(
        mirror.mirror_available().await.expect("mirror"),
        written as u64
    );
    assert_eq!(mirror.mirror_available().await.expect("nothing new"), 0);
    let local = mirror.into_log();
    let source = publisher.source();
    assert_same(source, &local);

    // Everything redelivered to a fresh consumer: nothing appended twice.
    let mut again = Mirror::new(client, local, mirror_config("billing-2")).expect("mirror");
    assert_eq!(again.mirror_available().await.expect("redelivered"), 0);
    assert_same(source, again.log());
}
