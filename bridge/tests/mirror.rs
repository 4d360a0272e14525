//! The mirror against a real nats-server: a log published to JetStream
//! and mirrored into a second log holds the same events (streams,
//! versions, types, schema versions, ids, metadata, payloads); a mirror
//! whose consumer starts over (every message redelivered, as after a
//! crash before its acknowledgements) appends nothing twice.

mod common;

use common::{append, assert_same};
use seglog::Log;
use seglog_nats::{BridgeError, Mirror, MirrorConfig, Publisher, testing};

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
    let config = common::orders(32);
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

/// A source log over several segments: after the last event of a segment
/// the next one is in the next segment, not where the previous one ends,
/// and the mirror (started afresh at each boundary too) follows on.
#[tokio::test]
async fn a_mirror_follows_the_source_across_its_segments() {
    let Some(server) = testing::start("mirror: across segments") else {
        return;
    };
    let client = async_nats::connect(&server.url).await.expect("connect");
    let source_dir = tempfile::tempdir().expect("dir");
    let source = seglog::Options::new()
        .segment_size(1 << 20)
        .open(source_dir.path())
        .expect("open");
    let mut publisher = Publisher::new(client.clone(), source, common::orders(32)).expect("pub");
    let mirror_dir = tempfile::tempdir().expect("dir");
    let local = Log::open(mirror_dir.path()).expect("open mirror log");
    let mut mirror = Mirror::new(client, local, mirror_config("billing")).expect("mirror");
    let payload = vec![7u8; 4000];
    let mut mirrored = 0;
    // 4 KB events: a 1 MiB segment holds about 260, so this crosses 3.
    for round in 0..8 {
        for k in 0..100 {
            let event = seglog::EventData::new("Placed", payload.clone()).with_id(round * 100 + k);
            let stream = format!("order-{}", k % 7);
            publisher
                .source()
                .append(&stream, seglog::ExpectedVersion::Any, &[event])
                .expect("append");
        }
        publisher.publish_available().await.expect("publish");
        mirrored += mirror.mirror_available().await.expect("mirror");
    }
    assert_eq!(mirrored, 800);
    let segments = std::fs::read_dir(source_dir.path())
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension() == Some("seg".as_ref()))
        })
        .count();
    assert!(segments >= 4, "the source has {segments} segments");
    assert_same(publisher.source(), mirror.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_mirror_follows_live_appends_whole_appends_at_a_time_and_reports_no_lag_at_the_end()
 {
    let Some(server) = testing::start("mirror: run follows live appends") else {
        return;
    };
    let client = async_nats::connect(&server.url).await.expect("connect");
    let source_dir = tempfile::tempdir().expect("dir");
    let source = Log::open(source_dir.path()).expect("open");
    let config = common::orders(16);
    let reader = seglog::Reader::open(source_dir.path()).expect("reader");
    let mut publisher = Publisher::new(client.clone(), reader, config).expect("publisher");
    let mirror_dir = tempfile::tempdir().expect("dir");
    let local = Log::open(mirror_dir.path()).expect("open mirror log");
    // Batches of 2 messages split appends of up to 3 events: the mirror
    // holds a part until the rest arrives.
    let small = MirrorConfig {
        batch: 2,
        ..mirror_config("billing")
    };
    let mut mirror = Mirror::new(client, local, small).expect("mirror");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let publishing = tokio::spawn({
        let stop = stopped(stop_rx.clone());
        async move { publisher.run(stop, |_| {}).await }
    });
    let last_report = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = std::sync::Arc::clone(&last_report);
    let mirroring = tokio::spawn(async move {
        let progress = mirror
            .run(stopped(stop_rx), |p| {
                *seen.lock().expect("lock") = Some(p.clone());
            })
            .await;
        (progress, mirror.into_log())
    });
    let mut written = 0;
    for _ in 0..10 {
        written = append(&source, written, 50);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let report = last_report.lock().expect("lock").clone();
        if report
            .as_ref()
            .is_some_and(|p| p.mirrored == written as u64)
        {
            assert_eq!(report.and_then(|p| p.lag), Some(0), "caught up");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mirror stuck at {report:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop_tx.send(true).expect("stop");
    publishing.await.expect("publisher");
    let (progress, local) = mirroring.await.expect("mirror");
    assert_eq!((progress.mirrored, progress.failures), (written as u64, 0));
    assert_same(&source, &local);
}

/// A stream that lost messages stops the mirror with an error that says
/// so, before it appends anything after the hole: a purge of the first
/// messages (the mirror's first message is not its stream's first
/// version), a message deleted in the middle (the source positions do not
/// follow on).
#[tokio::test]
async fn a_stream_that_lost_messages_stops_the_mirror_at_the_hole() {
    let Some(server) = testing::start("mirror: lost messages") else {
        return;
    };
    let client = async_nats::connect(&server.url).await.expect("connect");
    let source_dir = tempfile::tempdir().expect("dir");
    let source = Log::open(source_dir.path()).expect("open");
    let written = append(&source, 0, 300);
    let config = common::orders(32);
    let mut publisher = Publisher::new(client.clone(), source, config).expect("publisher");
    publisher.publish_available().await.expect("publish");
    let js = async_nats::jetstream::new(client.clone());

    // Mirrored, 100 more published, then message 320 deleted: the
    // mirror stops at 321, whose event does not follow on.
    let mirror_dir = tempfile::tempdir().expect("dir");
    let local = Log::open(mirror_dir.path()).expect("open");
    let mut mirror = Mirror::new(client.clone(), local, mirror_config("m")).expect("mirror");
    assert_eq!(mirror.mirror_available().await.expect("mirror"), 300);
    append(publisher.source(), written, 100);
    let published = publisher.publish_available().await.expect("publish");
    assert!(published >= 100);
    let stream = js.get_stream("ORDERS").await.expect("stream");
    assert!(stream.delete_message(320).await.expect("delete"));
    let all = common::events(publisher.source());
    match mirror.mirror_available().await {
        Err(BridgeError::Gap {
            sequence: 321,
            expected,
            found,
        }) => {
            // Message n carries the source's event n - 1: 321 says it
            // follows 320's event, the mirror holds 319's last.
            assert_eq!(expected, all[318].position());
            assert_eq!(found, Some(all[319].position()));
        }
        other => panic!("a deleted message: {other:?}"),
    }
    let held = common::events(mirror.log());
    assert!(
        (300..320).contains(&held.len()),
        "appended after the hole: {}",
        held.len()
    );
    for (x, y) in held.iter().zip(&all) {
        assert_eq!((x.stream(), x.version()), (y.stream(), y.version()));
    }

    // A fresh mirror whose search meets a deleted message.
    assert!(stream.delete_message(200).await.expect("delete"));
    let fresh = Log::open(tempfile::tempdir().expect("dir").path()).expect("open");
    let mut mirror = Mirror::new(client.clone(), fresh, mirror_config("n")).expect("mirror");
    match mirror.mirror_available().await {
        Err(BridgeError::Missing { sequence: 200 }) => {}
        other => panic!("a deleted message met by the search: {other:?}"),
    }

    // A fresh mirror of a stream whose first 49 messages were purged.
    stream.purge().sequence(50).await.expect("purge");
    let fresh = Log::open(tempfile::tempdir().expect("dir").path()).expect("open");
    let mut mirror = Mirror::new(client, fresh, mirror_config("o")).expect("mirror");
    match mirror.mirror_available().await {
        Err(BridgeError::Diverged {
            sequence: 50,
            local: None,
            ..
        }) => {}
        other => panic!("a purged start: {other:?}"),
    }
    assert!(common::events(mirror.log()).is_empty());
}

/// A source that applies retention and deletes streams: its system
/// streams (`$audit`, `$streams`) are published like any stream but not
/// mirrored (they record the source's own removals), everything else is;
/// and a publisher that starts on an empty JetStream stream begins at the
/// log's start, not before it.
#[tokio::test]
async fn a_mirror_leaves_out_the_sources_system_streams_and_a_new_publisher_starts_at_the_log_start()
 {
    let Some(server) = testing::start("mirror: system streams") else {
        return;
    };
    let client = async_nats::connect(&server.url).await.expect("connect");
    let source_dir = tempfile::tempdir().expect("dir");
    let source = seglog::Options::new()
        .segment_size(1 << 20)
        .retain_max_bytes(2 << 20)
        .open(source_dir.path())
        .expect("open");
    let mut publisher = Publisher::new(client.clone(), source, common::orders(32)).expect("pub");
    let mirror_dir = tempfile::tempdir().expect("dir");
    let local = Log::open(mirror_dir.path()).expect("open mirror log");
    let mut mirror = Mirror::new(client.clone(), local, mirror_config("billing")).expect("mirror");
    let payload = vec![7u8; 20_000];
    for round in 0..4u128 {
        for k in 0..60 {
            let event = seglog::EventData::new("Placed", payload.clone()).with_id(round * 100 + k);
            let stream = format!("order-{}", k % 5);
            let log = publisher.source();
            log.append(&stream, seglog::ExpectedVersion::Any, &[event])
                .expect("append");
        }
        publisher.publish_available().await.expect("publish");
        mirror.mirror_available().await.expect("mirror");
    }
    let log = publisher.source();
    assert!(log.apply_retention().expect("retention").segments > 0);
    log.truncate_stream("order-1", 3).expect("truncate");
    log.delete_stream("order-2").expect("delete");
    publisher.publish_available().await.expect("publish");
    mirror.mirror_available().await.expect("mirror");

    let start = publisher.source().log_start();
    let published: Vec<_> = publisher
        .source()
        .read_all(start)
        .expect("read")
        .map(|e| e.expect("event"))
        .collect();
    let system = |s: &str| s == seglog::AUDIT_STREAM || s == seglog::STREAMS_STREAM;
    assert_eq!(published.iter().filter(|e| system(e.stream())).count(), 3);
    let mirrored = common::events(mirror.log());
    let tail: Vec<_> = mirrored[mirrored.len() - (published.len() - 3)..].to_vec();
    let wanted: Vec<_> = published.iter().filter(|e| !system(e.stream())).collect();
    assert_eq!(tail.len(), wanted.len());
    for (m, s) in tail.iter().zip(&wanted) {
        assert_eq!(
            (m.stream(), m.version(), m.id()),
            (s.stream(), s.version(), s.id())
        );
    }
    assert!(!mirrored.iter().any(|e| system(e.stream())));

    // A publisher to a fresh JetStream stream begins at the log's start.
    let config = seglog_nats::PublisherConfig {
        stream: "FRESH".into(),
        prefix: "fresh".into(),
        ..common::orders(32)
    };
    let reader = seglog::Reader::open(source_dir.path()).expect("reader");
    let mut fresh = Publisher::new(client, reader, config).expect("publisher");
    let sent = fresh
        .publish_available()
        .await
        .expect("publish from the start");
    assert_eq!(sent, published.len() as u64);
}
