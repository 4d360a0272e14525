//! The bridge's processes killed (SIGKILL) at random points and restarted,
//! against a real nats-server, while the source log keeps taking appends:
//! afterwards the JetStream stream holds every committed event once, in
//! log order, and the mirror's log equals the source log event for event,
//! grouped into the same appends.
//!
//! The killed processes are this test binary again, running the ignored
//! test `child` with the role in `SEGLOG_BRIDGE_CHILD`. A failing run
//! prints its seed; `SEGLOG_SEED` replays it.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::{append, assert_same, check_stream, wait_until_stored};
use seglog::{Log, Position, Reader};
use seglog_nats::{Mirror, MirrorConfig, Publisher, PublisherConfig, testing};

const ROLE: &str = "SEGLOG_BRIDGE_CHILD";
const URL: &str = "SEGLOG_BRIDGE_URL";
const DIR: &str = "SEGLOG_BRIDGE_DIR";

fn publisher_config() -> PublisherConfig {
    common::orders(64)
}

fn mirror_config() -> MirrorConfig {
    MirrorConfig {
        stream: "ORDERS".into(),
        consumer: "billing".into(),
        batch: 64,
    }
}

/// Runs a publisher (through a `Reader`) or a mirror until killed.
#[test]
#[ignore = "the process the kill tests start and kill, not a test of its own"]
fn child() {
    let (Ok(role), Ok(url), Ok(dir)) =
        (std::env::var(ROLE), std::env::var(URL), std::env::var(DIR))
    else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(&url)
            .await
            .expect("connect");
        let forever = std::future::pending::<()>();
        match role.as_str() {
            "publish" => {
                let reader = Reader::open(&dir).expect("reader");
                let mut publisher =
                    Publisher::new(client, reader, publisher_config()).expect("publisher");
                publisher.run(forever, |_| {}).await;
            }
            "mirror" => {
                let log = Log::open(&dir).expect("mirror log");
                let mut mirror = Mirror::new(client, log, mirror_config()).expect("mirror");
                mirror.run(forever, |_| {}).await;
            }
            other => panic!("unknown role {other}"),
        }
    });
}

fn spawn(role: &str, url: &str, dir: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["child", "--exact", "--ignored", "--nocapture"])
        .env(ROLE, role)
        .env(URL, url)
        .env(DIR, dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child")
}

/// A small xorshift generator: the test needs reproducible randomness,
/// not good randomness.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("SEGLOG_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("SEGLOG_SEED={seed}");
        Rng(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Messages the stream `ORDERS` holds (0 before it exists).
async fn stored(js: &jetstream::Context) -> u64 {
    match js.get_stream("ORDERS").await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.last_sequence),
        Err(_) => 0,
    }
}

/// Events the log in `dir` holds (0 before it exists).
fn held(dir: &Path) -> u64 {
    let Ok(reader) = Reader::open(dir) else {
        return 0;
    };
    let mut n = 0;
    let _ = reader.replay(Position::START, |_| n += 1);
    n
}

/// Waits until `progress` passes `from` (or a deadline), then a random
/// moment more: the kill lands in the middle of the work, not before it.
async fn kill_mid_way(
    child: &mut Child,
    rng: &mut Rng,
    progress: impl AsyncFn() -> u64,
    from: u64,
) {
    if rng.below(3) > 0 {
        let deadline = Instant::now() + Duration::from_secs(20);
        while progress().await <= from && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_killed_at_random_points_publishes_each_event_once_in_order() {
    let Some(server) = testing::start("kills: publisher") else {
        return;
    };
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(dir.path()).expect("open");
    let js = jetstream::new(async_nats::connect(&server.url).await.expect("connect"));
    let mut next = 0;
    let mut mid_way = 0;
    for _ in 0..8 {
        next = append(&log, next, 2_000 + rng.below(2_000) as usize);
        let before = stored(&js).await;
        let mut child = spawn("publish", &server.url, dir.path());
        kill_mid_way(&mut child, &mut rng, || stored(&js), before).await;
        let after = stored(&js).await;
        mid_way += u32::from(after > before && after < next as u64);
        eprintln!("killed with {after} of {next} events stored");
    }
    let mut child = spawn("publish", &server.url, dir.path());
    wait_until_stored(&js, next as u64).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    check_stream(&js, &log).await;
    assert!(
        mid_way > 0,
        "no kill landed while events were being published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_killed_at_random_points_ends_equal_to_its_source() {
    let Some(server) = testing::start("kills: mirror") else {
        return;
    };
    let mut rng = Rng::from_env();
    let client = async_nats::connect(&server.url).await.expect("connect");
    let js = jetstream::new(client.clone());
    let source_dir = tempfile::tempdir().expect("dir");
    // Published in this process, from the log it appends to.
    let log = std::sync::Arc::new(Log::open(source_dir.path()).expect("open"));
    let mut publisher = Publisher::new(
        client.clone(),
        std::sync::Arc::clone(&log),
        publisher_config(),
    )
    .expect("publisher");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let publishing = tokio::spawn(async move {
        publisher
            .run(
                async {
                    let _ = stop_rx.await;
                },
                |_| {},
            )
            .await
    });
    let mirror_dir = tempfile::tempdir().expect("dir");
    let mut next = 0;
    let mut mid_way = 0;
    for _ in 0..8 {
        next = append(&log, next, 2_000 + rng.below(2_000) as usize);
        wait_until_stored(&js, next as u64).await;
        let before = held(mirror_dir.path());
        let mut child = spawn("mirror", &server.url, mirror_dir.path());
        let progress = async || held(mirror_dir.path());
        kill_mid_way(&mut child, &mut rng, progress, before).await;
        let after = held(mirror_dir.path());
        mid_way += u32::from(after > before && after < next as u64);
        eprintln!("killed with {after} of {next} events mirrored");
    }
    let _ = stop_tx.send(());
    publishing.await.expect("publisher task");
    let local = Log::open(mirror_dir.path()).expect("mirror log");
    let mut mirror = Mirror::new(client, local, mirror_config()).expect("mirror");
    mirror.mirror_available().await.expect("the rest");
    assert_same(&log, mirror.log());
    assert!(
        mid_way > 0,
        "no kill landed while events were being mirrored"
    );
}
