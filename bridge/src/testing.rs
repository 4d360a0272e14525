//! A real `nats-server -js` for tests (this crate's and the `seglog`
//! tool's): on 127.0.0.1, a free port, a temporary store directory, killed
//! when dropped (also when a test panics). Without the binary the tests
//! are skipped, loudly; with `SEGLOG_NO_SKIP` set (`.ci/run` sets it) its
//! absence fails. Behind the `testing` feature: an embedder never
//! compiles it.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server` with JetStream.
pub struct Server {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    /// `nats://127.0.0.1:<port>`.
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
    // A port found free can be taken by another test's server before this
    // one binds it: then this server exits, and another port is tried.
    for _ in 0..5 {
        let mut server = not_started(test)?;
        if let Some(child) = spawn(server.port, server.store.path()) {
            server.child = Some(child);
            return Some(server);
        }
    }
    panic!("{test}: nats-server found no free port in 5 tries")
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

/// `nats-server -js` on `port` with its store in `store`, listening; `None`
/// when it exited instead (the port was taken). Listening is known from
/// the ports file this very process writes once it listens: a connect
/// alone could reach another test's server on the same port.
fn spawn(port: u16, store: &Path) -> Option<Child> {
    let mut child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .arg("--ports_file_dir")
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    let ports_file = store.join(format!("nats-server_{}.ports", child.id()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return None;
        }
        if ports_file.exists() && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        assert!(
            Instant::now() < deadline,
            "nats-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
        let child = spawn(self.port, self.store.path());
        self.child = Some(
            child.unwrap_or_else(|| panic!("nats-server could not listen on {} again", self.port)),
        );
    }
}
