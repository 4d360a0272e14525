//! A real `nats-server -js` for the bridge's tests: on 127.0.0.1, a free
//! port, a temporary store directory, killed when dropped (also when a
//! test panics). Without the binary the tests are skipped, loudly; with
//! `SEGLOG_NO_SKIP` set (`.ci/run` sets it) its absence fails.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use seglog::{EventData, ExpectedVersion, Log, Position, RecordedEvent};
use seglog_nats::{headers, subject};

/// A running `nats-server` with JetStream.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    store: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(binary).is_file())
    })
}

/// Starts a server, or `None` (printed) when `nats-server` is missing on a
/// developer's machine. Panics in CI.
pub fn start(test: &str) -> Option<Server> {
    let mut server = not_started(test)?;
    server.restart();
    Some(server)
}

/// A server not started yet (its port free, its store empty): for a test
/// of a client that starts first. `None` as [`start`].
pub fn not_started(test: &str) -> Option<Server> {
    if !on_path("nats-server") {
        assert!(
            std::env::var_os("SEGLOG_NO_SKIP").is_none(),
            "{test}: nats-server is not installed and SEGLOG_NO_SKIP is set"
        );
        eprintln!(
            "\n********************************************************************\n\
             SKIPPED {test}: nats-server is not installed.\n\
             Install it (Debian: apt-get install -y nats-server) to run the bridge tests.\n\
             ********************************************************************\n"
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let store = tempfile::tempdir().expect("store directory");
    Some(Server {
        child: None,
        port,
        url: format!("nats://127.0.0.1:{port}"),
        store,
    })
}

/// `nats-server -js` on `port` with its store in `store`, listening.
fn spawn(port: u16, store: &Path) -> Child {
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Server {
    /// Kills the server (SIGKILL: no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again), on its port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn(self.port, self.store.path()));
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
