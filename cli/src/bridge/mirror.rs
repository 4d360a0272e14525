//! `seglog bridge mirror`: another service's events, from the JetStream
//! stream its publisher writes, into a local log.

use std::cell::RefCell;
use std::path::PathBuf;

use clap::Args;
use seglog::Log;
use seglog_nats::{Mirror, MirrorConfig};

use super::display::{Display, Figures};
use super::stop::stop_signal;
use super::{ServerArg, connect};

const COMMAND: &str = "seglog bridge mirror";

// The flags of `seglog bridge mirror` (its help line is the variant's doc
// comment in bridge.rs; a doc comment here would replace it).
#[derive(Args)]
pub(crate) struct MirrorCommand {
    /// The local log's directory (created when missing). The mirror is its
    /// writer: the receiving service reads it with a seglog Reader.
    dir: PathBuf,
    #[command(flatten)]
    server: ServerArg,
    /// The JetStream stream to mirror (another service's publisher writes
    /// it).
    #[arg(long, value_name = "NAME")]
    stream: String,
    /// The name of the mirror's consumers on the server, before a suffix
    /// that makes each one's unique (ordered and ephemeral: where the
    /// mirror stands is read from its log).
    #[arg(long, value_name = "NAME", default_value = "seglog-mirror")]
    consumer: String,
    /// Messages appended at a time, at most (1 to 4096).
    #[arg(long, value_name = "N", default_value_t = 256)]
    batch: usize,
}

impl MirrorCommand {
    /// Mirrors until Ctrl-C or SIGTERM, showing the progress; then closes
    /// the log (synced, its next open scans nothing).
    pub(crate) async fn run(self) -> Result<(), String> {
        let stop = stop_signal()?;
        let log = Log::open(&self.dir).map_err(|e| format!("cannot open the log: {e}"))?;
        let client = connect(&self.server, COMMAND).await?;
        let config = MirrorConfig {
            stream: self.stream,
            consumer: self.consumer,
            batch: self.batch,
        };
        let what = format!(
            "JetStream stream {} on {} into {}",
            config.stream,
            self.server.shown(),
            self.dir.display()
        );
        let mut mirror =
            Mirror::new(client, log, config).map_err(|e| format!("cannot mirror: {e}"))?;
        eprintln!("{COMMAND}: mirroring {what}; Ctrl-C or SIGTERM stops");
        let mut display = Display::new(COMMAND, "mirrored");
        let latest = RefCell::new(Figures::default());
        let run = mirror.run(stop, |p| *latest.borrow_mut() = p.into());
        let last = display.show_while(&latest, run).await;
        display.finish(&(&last).into());
        mirror
            .into_log()
            .close()
            .map_err(|e| format!("cannot close the log: {e}"))
    }
}
