//! `seglog bridge`: the NATS JetStream bridge, run beside a service. `bridge
//! publish` sends the service's log to a JetStream stream, `bridge mirror`
//! appends another service's stream into a local log; both run until
//! Ctrl-C or SIGTERM and show their progress and lag on stderr.

mod display;
mod mirror;
mod publish;
// Also `seglog tail -f`'s stop signal.
pub(crate) mod stop;

use async_nats::ServerAddr;
use clap::{Args, Subcommand};

// The flags of `seglog bridge` (its help line is the variant's doc comment
// in main.rs; a doc comment here would replace it).
#[derive(Args)]
pub(crate) struct BridgeCommand {
    #[command(subcommand)]
    command: BridgeSubcommand,
}

#[derive(Subcommand)]
enum BridgeSubcommand {
    /// Publish the log in DIR to a JetStream stream, and each new event.
    ///
    /// Every event of the log, in log order, each once, then each new event
    /// as it is appended, until Ctrl-C or SIGTERM. Reads DIR read-only,
    /// beside the service that writes it; resumes after the stream's last
    /// message.
    Publish(publish::PublishCommand),
    /// Append a JetStream stream's events into the log in DIR.
    ///
    /// The stream is another service's log, sent by `seglog bridge
    /// publish`; each event is appended once, in order, until Ctrl-C or
    /// SIGTERM, resuming from where DIR stands. The mirror is DIR's writer:
    /// the receiving service reads it with a seglog Reader.
    Mirror(mirror::MirrorCommand),
}

// The server flag both subcommands take (flattened into each; a doc
// comment here would replace their help line).
#[derive(Args)]
struct ServerArg {
    /// The NATS server's URL. A bridge started before its server waits for
    /// it, showing the failed attempts.
    #[arg(
        long = "server",
        value_name = "URL",
        default_value = "nats://127.0.0.1:4222",
        value_parser = server_addr
    )]
    addr: ServerAddr,
}

/// `url` as a server address with a host. Refused here, before the log is
/// opened: the client takes `nats://` (no host) and would wait for it
/// forever.
fn server_addr(url: &str) -> Result<ServerAddr, String> {
    let addr: ServerAddr = url.parse().map_err(|e| format!("{e}"))?;
    if addr.host().is_empty() {
        return Err("the URL names no host".into());
    }
    Ok(addr)
}

impl ServerArg {
    /// The server as printed: scheme, host and port, without a user or
    /// password the URL may hold (the lines go into service logs).
    fn shown(&self) -> String {
        let host = self.addr.host();
        if host.contains(':') {
            format!("{}://[{host}]:{}", self.addr.scheme(), self.addr.port())
        } else {
            format!("{}://{host}:{}", self.addr.scheme(), self.addr.port())
        }
    }
}

impl BridgeCommand {
    /// Runs the subcommand on a tokio runtime of its own: the other
    /// commands need none, so it starts only here.
    pub(crate) fn run(self) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        runtime.block_on(async {
            match self.command {
                BridgeSubcommand::Publish(command) => command.run().await,
                BridgeSubcommand::Mirror(command) => command.run().await,
            }
        })
    }
}

/// A client of `server` that keeps trying to connect in the background:
/// a bridge started before its server waits for it (its attempts fail
/// meanwhile, and show) instead of exiting. Only a malformed URL fails
/// here.
async fn connect(server: &ServerArg, name: &str) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connect(server.addr.clone())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", server.shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_needs_a_host_and_is_shown_without_credentials() {
        assert!(server_addr("nats://").is_err());
        assert!(server_addr("ftp://example.com").is_err());
        let server = ServerArg {
            addr: server_addr("nats://user:secret@example.com:4333").expect("a URL"),
        };
        assert_eq!(server.shown(), "nats://example.com:4333");
        let server = ServerArg {
            addr: server_addr("nats://[::1]").expect("a URL"),
        };
        assert_eq!(server.shown(), "nats://[::1]:4222");
    }
}
