//! Faults against a real nats-server: the server killed (SIGKILL) and
//! restarted with its store in the middle of a stream of appends. The
//! publisher retries with backoff while it is away, the log keeps
//! accepting appends, and afterwards the JetStream stream holds every
//! committed event exactly once, in log order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use common::{append, check_stream, wait_until_stored};
use seglog::{Log, Reader};
use seglog_nats::{Publisher, testing};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_killed_and_restarted_mid_stream_loses_and_repeats_nothing() {
    let Some(mut server) = testing::start("faults: server killed and restarted") else {
        return;
    };
    let client = async_nats::connect(&server.url).await.expect("connect");
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(dir.path()).expect("open");
    let reader = Reader::open(dir.path()).expect("reader");
    let config = common::orders(64);
    let mut publisher = Publisher::new(client.clone(), reader, config).expect("publisher");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let failures = Arc::new(AtomicU32::new(0));
    let most_behind = Arc::new(AtomicU64::new(0));
    let (seen, behind) = (Arc::clone(&failures), Arc::clone(&most_behind));
    let running = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        publisher
            .run(stop, |p| {
                seen.fetch_max(p.failures, Ordering::Relaxed);
                behind.fetch_max(p.lag.unwrap_or(0), Ordering::Relaxed);
            })
            .await
    });

    // Appends before, while and after the server is away.
    let mut next = append(&log, 0, 300);
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill();
    // The log takes appends while the server is away.
    next = append(&log, next, 300);
    // Long enough for the running attempt to report while it waits.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    server.restart();
    next = append(&log, next, 300);

    let js = jetstream::new(client);
    wait_until_stored(&js, next as u64).await;
    let _ = stop_tx.send(());
    let progress = running.await.expect("publisher task");
    assert_eq!(progress.published, next as u64);
    assert_eq!(progress.lag, Some(0), "caught up: nothing left behind");
    check_stream(&js, &log).await;
    // While the server was away, the lag it reported covered at least the
    // events appended meanwhile.
    let behind = most_behind.load(Ordering::Relaxed);
    assert!(behind >= 300, "most lag reported: {behind}");
    // Requests wait for the client's reconnection or fail after its
    // timeout; failures back off (50, 100, 200, ... ms apart), so 2.5 s
    // away is a handful of failed attempts at most, never a spin.
    let failed = failures.load(Ordering::Relaxed);
    eprintln!("failed attempts in a row while the server was away: {failed}");
    assert!(failed <= 8, "{failed} failed attempts in a row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_started_before_its_server_waits_for_it_and_then_catches_up() {
    let Some(mut server) = testing::not_started("faults: server unreachable at start") else {
        return;
    };
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&server.url)
        .await
        .expect("a client that connects once it can");
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(dir.path()).expect("open");
    let config = common::orders(8);
    let mut publisher = Publisher::new(
        client.clone(),
        Reader::open(dir.path()).expect("reader"),
        config,
    )
    .expect("publisher");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        publisher.run(stop, |_| {}).await
    });
    let written = append(&log, 0, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();
    let js = jetstream::new(client);
    wait_until_stored(&js, written as u64).await;
    let _ = stop_tx.send(());
    assert_eq!(running.await.expect("task").published, written as u64);
    check_stream(&js, &log).await;
}

/// A caught-up publisher has nothing to send, so no attempt fails when the
/// server goes away: it says so anyway, and stops saying so once the
/// server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_publisher_reports_a_lost_server_and_its_return() {
    let Some(mut server) = testing::start("faults: idle publisher, server away") else {
        return;
    };
    let client = async_nats::connect(&server.url).await.expect("connect");
    let dir = tempfile::tempdir().expect("dir");
    let log = Arc::new(Log::open(dir.path()).expect("open"));
    let written = append(&log, 0, 10);
    let config = common::orders(8);
    let mut publisher =
        Publisher::new(client.clone(), Arc::clone(&log), config).expect("publisher");
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        publisher
            .run(stop, |p| {
                seen.lock().expect("lock").push(p.last_error.clone())
            })
            .await
    });
    wait_until_stored(&jetstream::new(client), written as u64).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let away = reports.lock().expect("lock").len();
    server.restart();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let _ = stop_tx.send(());
    let progress = running.await.expect("task");
    let reports = reports.lock().expect("lock").clone();
    let unreachable = |r: &Option<String>| r.as_deref().is_some_and(|e| e.contains("unreachable"));
    assert!(
        reports[..away].iter().any(unreachable),
        "no report of the lost server: {reports:?}"
    );
    assert_eq!(
        reports.last(),
        Some(&None),
        "still reported lost: {reports:?}"
    );
    assert_eq!(
        (progress.published, progress.lag),
        (written as u64, Some(0))
    );
}
