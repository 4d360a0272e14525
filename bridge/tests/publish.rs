//! The publisher against a real nats-server: every event of a log in the
//! JetStream stream, in log order, each once, with its headers and
//! payload; a new publisher resumes after the stream's last message; a
//! `Reader` in place of the writer's `Log`; another log's stream refused.

mod common;

use async_nats::jetstream;
use common::{append, check_stream};
use seglog::{Log, Reader};
use seglog_nats::{BridgeError, Publisher, PublisherConfig, headers, testing};

fn config() -> PublisherConfig {
    common::orders(64)
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

/// Two publishers of different logs racing on one empty stream: one log's
/// events end up in it, as a gapless prefix; the other is refused. A
/// sequence check alone let pipelined messages in after a refused one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_logs_racing_on_one_stream_never_mix() {
    let Some(server) = testing::start("publish: two logs racing") else {
        return;
    };
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let logs = dirs.each_ref().map(|d| Log::open(d.path()).expect("open"));
    for log in &logs {
        append(log, 0, 200);
    }
    let ids = logs.each_ref().map(Log::log_id);
    let first = common::events(&logs[0])[0].position();
    assert_eq!(first, common::events(&logs[1])[0].position());
    for round in 0..40 {
        let config = PublisherConfig {
            stream: format!("RACE{round}"),
            prefix: format!("race{round}"),
            max_in_flight: 64,
        };
        let mut racers = Vec::new();
        for dir in &dirs {
            // A connection each, as two processes would have.
            let client = async_nats::connect(&server.url).await.expect("connect");
            let reader = Reader::open(dir.path()).expect("reader");
            let mut publisher = Publisher::new(client, reader, config.clone()).expect("publisher");
            racers.push(tokio::spawn(
                async move { publisher.publish_available().await },
            ));
        }
        for racer in racers {
            let _ = racer.await.expect("task");
        }
        let js = jetstream::new(async_nats::connect(&server.url).await.expect("connect"));
        let mut stream = js.get_stream(&config.stream).await.expect("stream");
        let last = stream.info().await.expect("info").state.last_sequence;
        // The stream starts with a log's first event.
        let mut expected = first;
        let mut owner = None;
        for sequence in 1..=last {
            let m = stream.get_raw_message(sequence).await.expect("message");
            let r = headers::decode(&m.headers).expect("headers");
            let owner = *owner.get_or_insert(r.log_id);
            assert_eq!(
                r.log_id, owner,
                "round {round}: message {sequence} of another log"
            );
            assert_eq!(
                r.position, expected,
                "round {round}: a hole before {sequence}"
            );
            expected = r.next_position;
        }
        assert!(owner.is_none_or(|o| ids.contains(&o)));
    }
}
