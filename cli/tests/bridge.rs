//! `seglog bridge publish` and `seglog bridge mirror` as a service runs
//! them: the built binary as a child process beside a writer in this
//! process, against a real nats-server (`seglog_nats::testing`; skipped,
//! loudly, without one), stopped by SIGTERM. Also what a mistake on the
//! command line gets: a message and a non-zero exit, never a panic.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use seglog::{EventData, ExpectedVersion, Log, Position, Reader, RecordedEvent};
use seglog_nats::{Publisher, PublisherConfig, headers, subject, testing};

/// How long a wait on the bridge may take before the test fails: far
/// above what a loaded machine needs, so only a bridge that is stuck
/// trips it.
const DEADLINE: Duration = Duration::from_secs(60);

/// Stream names a subject token must escape: a dot, a space, non-ASCII.
const STREAMS: [&str; 3] = ["order.42", "two words", "注文 €"];

/// Appends at least `n` events numbered from `start`, some in batches of
/// several (one frame each), with ids and metadata; returns the number
/// after the last.
fn append(log: &Log, start: usize, n: usize) -> usize {
    let mut i = start;
    while i < start + n {
        let count = 1 + i % 3;
        let events: Vec<EventData> = (i..i + count)
            .map(|k| {
                EventData::new(
                    if k % 2 == 0 { "Placed" } else { "Paid" },
                    format!("payload {k}"),
                )
                .with_metadata(format!("{{\"k\":{k}}}"))
                .with_schema_version(1 + (k % 3) as u16)
                .with_id(k as u128 * 7)
            })
            .collect();
        log.append(STREAMS[i % STREAMS.len()], ExpectedVersion::Any, &events)
            .expect("append");
        i += count;
    }
    i
}

fn events(reader: &Reader) -> Vec<RecordedEvent> {
    reader
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| e.expect("event"))
        .collect()
}

/// The `seglog` binary with `args`, run to its end.
fn seglog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seglog"))
        .args(args)
        .output()
        .expect("run seglog")
}

/// A `seglog bridge ...` child, its stderr collected as it comes (piped:
/// not a terminal, so it prints plain progress lines). Killed when
/// dropped, so a failed test leaves no process behind.
struct Bridge {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Bridge {
    fn start(args: &[&str]) -> Bridge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seglog"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start seglog bridge");
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                sink.lock().expect("stderr").push_str(&text);
            }
        });
        Bridge {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// Waits until stderr has a line for which `wanted` holds.
    async fn wait_for_line(&self, what: &str, wanted: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !self.stderr().lines().any(&wanted) {
            assert!(
                Instant::now() < deadline,
                "no {what} line; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM; returns the exit status and the whole stderr.
    async fn terminate(mut self) -> (ExitStatus, String) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        (status, self.stderr())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number of messages in JetStream stream `name` (0 while it does not
/// exist).
async fn stored(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.last_sequence),
        Err(_) => 0,
    }
}

/// Waits until JetStream stream `name` holds `count` messages.
async fn wait_until_stored(js: &jetstream::Context, name: &str, count: u64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let last = stored(js, name).await;
        if last >= count {
            return;
        }
        assert!(Instant::now() < deadline, "stored {last} of {count}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stream holds the log's events, in log order, each once.
async fn check_stream(js: &jetstream::Context, name: &str, prefix: &str, all: &[RecordedEvent]) {
    let stream = js.get_stream(name).await.expect("stream");
    assert_eq!(stored(js, name).await, all.len() as u64, "each event once");
    for (i, e) in all.iter().enumerate() {
        let m = stream.get_raw_message(i as u64 + 1).await.expect("message");
        assert_eq!(
            m.subject.as_str(),
            format!("{prefix}.{}", subject::encode(e.stream()))
        );
        let r = headers::decode(&m.headers).expect("headers");
        assert_eq!(
            (r.stream.as_str(), r.version, r.position),
            (e.stream(), e.version(), e.position()),
            "message {i} in log order"
        );
        assert_eq!(&m.payload[..], &e.payload()[..], "payload of {i}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_follows_a_live_log_into_jetstream_and_stops_cleanly_on_sigterm() {
    let Some(server) = testing::start("seglog bridge publish") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(dir.path()).expect("open");
    let written = append(&log, 0, 300);
    let bridge = Bridge::start(&[
        "bridge",
        "publish",
        dir.path().to_str().expect("utf-8 path"),
        "--server",
        &server.url,
        "--stream",
        "ORDERS",
        "--prefix",
        "orders",
        "--max-in-flight",
        "16",
    ]);
    let client = async_nats::connect(&server.url).await.expect("connect");
    let js = jetstream::new(client);
    wait_until_stored(&js, "ORDERS", written as u64).await;
    // Appended while it runs, by a writer in another process than the
    // publisher's: it follows the log live.
    let total = append(&log, written, 300);
    wait_until_stored(&js, "ORDERS", total as u64).await;
    let reader = Reader::open(dir.path()).expect("reader");
    check_stream(&js, "ORDERS", "orders", &events(&reader)).await;

    // Not a terminal: plain progress lines, one every few seconds.
    let progress = format!("seglog bridge publish: published {total} (");
    bridge
        .wait_for_line("progress", |l| {
            l.starts_with(&progress) && l.ends_with(", lag 0")
        })
        .await;
    let (status, stderr) = bridge.terminate().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("stopped after") && stderr.contains(&format!("published {total}, lag 0")),
        "{stderr}"
    );
    log.close().expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_started_before_its_server_waits_for_it() {
    let Some(mut server) = testing::not_started("seglog bridge publish, server late") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(dir.path()).expect("open");
    let written = append(&log, 0, 100);
    let bridge = Bridge::start(&[
        "bridge",
        "publish",
        dir.path().to_str().expect("utf-8 path"),
        "--server",
        &server.url,
        "--stream",
        "ORDERS",
        "--prefix",
        "orders",
    ]);
    // Running, not exited, while there is no server: it says so.
    bridge
        .wait_for_line("waiting", |l| l.contains("lag unknown"))
        .await;
    server.restart();
    let client = async_nats::connect(&server.url).await.expect("connect");
    let js = jetstream::new(client);
    wait_until_stored(&js, "ORDERS", written as u64).await;
    let reader = Reader::open(dir.path()).expect("reader");
    check_stream(&js, "ORDERS", "orders", &events(&reader)).await;
    let (status, stderr) = bridge.terminate().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    log.close().expect("close");
}

#[tokio::test(flavor = "multi_thread")]
async fn mirror_appends_a_stream_into_its_log_event_for_event_and_stops_cleanly_on_sigterm() {
    let Some(server) = testing::start("seglog bridge mirror") else {
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
    let mut publisher = Publisher::new(client, source, config).expect("publisher");
    publisher.publish_available().await.expect("publish");

    let mirror_dir = tempfile::tempdir().expect("dir");
    let dir = mirror_dir.path().join("mirror");
    let bridge = Bridge::start(&[
        "bridge",
        "mirror",
        dir.to_str().expect("utf-8 path"),
        "--server",
        &server.url,
        "--stream",
        "ORDERS",
        "--batch",
        "50",
    ]);
    let mirror = wait_for_log(&bridge, &dir).await;
    wait_until_mirrored(&mirror, written).await;
    // Published while it runs: it follows the stream.
    let total = append(publisher.source(), written, 300);
    publisher.publish_available().await.expect("publish");
    wait_until_mirrored(&mirror, total).await;
    assert_same(
        &events(&Reader::open(source_dir.path()).expect("reader")),
        &events(&mirror),
    );

    let (status, stderr) = bridge.terminate().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("mirrored {total}, lag 0")),
        "{stderr}"
    );
    // Closed, so its lock is free: a writer may open it again.
    Log::open(&dir)
        .expect("reopen the mirror's log")
        .close()
        .expect("close");
}

/// A Reader of the log the mirror creates in `dir`, once it exists.
async fn wait_for_log(bridge: &Bridge, dir: &Path) -> Reader {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(reader) = Reader::open(dir) {
            return reader;
        }
        assert!(
            Instant::now() < deadline,
            "no log in {}; stderr:\n{}",
            dir.display(),
            bridge.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the mirror's log holds `count` events.
async fn wait_until_mirrored(mirror: &Reader, count: usize) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut held = 0;
        mirror
            .replay(Position::START, |_| held += 1)
            .expect("replay");
        if held >= count {
            return;
        }
        assert!(Instant::now() < deadline, "mirrored {held} of {count}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two logs hold the same events, in the same order (commit times aside:
/// a mirror's are its own).
fn assert_same(source: &[RecordedEvent], mirror: &[RecordedEvent]) {
    assert_eq!(source.len(), mirror.len(), "event count");
    for (x, y) in source.iter().zip(mirror) {
        assert_eq!((x.stream(), x.version()), (y.stream(), y.version()));
        assert_eq!(
            (x.event_type(), x.schema_version()),
            (y.event_type(), y.schema_version())
        );
        assert_eq!(
            (x.id(), x.metadata(), x.payload()),
            (y.id(), y.metadata(), y.payload())
        );
    }
}

#[test]
fn publish_of_a_missing_directory_says_so_and_fails() {
    let out = seglog(&[
        "bridge",
        "publish",
        "/nonexistent/seglog-log",
        "--stream",
        "S",
        "--prefix",
        "p",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot read the log") && stderr.contains("/nonexistent/seglog-log"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn out_of_range_settings_get_the_bridge_configuration_error() {
    let dir = tempfile::tempdir().expect("dir");
    let log = Log::open(dir.path()).expect("open");
    append(&log, 0, 1);
    let path = dir.path().to_str().expect("utf-8 path");
    // No server at this port: the configuration is refused before any is
    // needed.
    let server = "nats://127.0.0.1:1";
    let publish = seglog(&[
        "bridge",
        "publish",
        path,
        "--server",
        server,
        "--stream",
        "S",
        "--prefix",
        "p",
        "--max-in-flight",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&publish.stderr);
    assert!(!publish.status.success());
    assert!(
        stderr.contains("bad configuration: max_in_flight must be from 1 to 4,096"),
        "{stderr}"
    );
    log.close().expect("close");

    let mirror_dir = tempfile::tempdir().expect("dir");
    let mirror = seglog(&[
        "bridge",
        "mirror",
        mirror_dir.path().to_str().expect("utf-8 path"),
        "--server",
        server,
        "--stream",
        "S",
        "--batch",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&mirror.stderr);
    assert!(!mirror.status.success());
    assert!(
        stderr.contains("bad configuration: batch must be from 1 to 4,096"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_server_url_or_a_missing_flag_fails_with_a_message() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().to_str().expect("utf-8 path");
    // Refused before the log is opened: no server to wait for forever.
    for url in ["nats://", "ftp://example.com"] {
        let bad_url = seglog(&["bridge", "mirror", path, "--server", url, "--stream", "S"]);
        let stderr = String::from_utf8_lossy(&bad_url.stderr);
        assert!(!bad_url.status.success(), "{url}");
        assert!(stderr.contains("--server"), "{stderr}");
    }

    let no_stream = seglog(&["bridge", "publish", path, "--prefix", "p"]);
    let stderr = String::from_utf8_lossy(&no_stream.stderr);
    assert!(!no_stream.status.success());
    assert!(stderr.contains("--stream"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
