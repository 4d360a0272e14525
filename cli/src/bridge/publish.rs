//! `seglog bridge publish`: a log's events into a JetStream stream, run
//! beside the service that writes the log.

use std::cell::RefCell;
use std::path::PathBuf;

use clap::Args;
use seglog::Reader;
use seglog_nats::{Publisher, PublisherConfig};

use super::display::{Display, Figures};
use super::stop::stop_signal;
use super::{ServerArg, connect};

const COMMAND: &str = "seglog bridge publish";

// The flags of `seglog bridge publish` (its help line is the variant's doc
// comment in bridge.rs; a doc comment here would replace it).
#[derive(Args)]
pub(crate) struct PublishCommand {
    /// The log's directory, opened read-only: the service writing it keeps
    /// running.
    dir: PathBuf,
    #[command(flatten)]
    server: ServerArg,
    /// The JetStream stream (created when missing, over `PREFIX.>`).
    #[arg(long, value_name = "NAME")]
    stream: String,
    /// The subjects' first token(s): an event of stream `s` goes to
    /// `PREFIX.s` (the name escaped into one token).
    #[arg(long)]
    prefix: String,
    /// Publishes awaiting their acknowledgement, at most (1 to 4096).
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_in_flight: usize,
}

impl PublishCommand {
    /// Publishes until Ctrl-C or SIGTERM, showing the progress.
    pub(crate) async fn run(self) -> Result<(), String> {
        let stop = stop_signal()?;
        // A Reader takes no lock: the writer is another process.
        let reader = Reader::open(&self.dir).map_err(|e| format!("cannot read the log: {e}"))?;
        let client = connect(&self.server, COMMAND).await?;
        let config = PublisherConfig {
            stream: self.stream,
            prefix: self.prefix,
            max_in_flight: self.max_in_flight,
        };
        let what = format!(
            "{} to JetStream stream {} (subjects {}.>) on {}",
            self.dir.display(),
            config.stream,
            config.prefix,
            self.server.shown()
        );
        let mut publisher =
            Publisher::new(client, reader, config).map_err(|e| format!("cannot publish: {e}"))?;
        eprintln!("{COMMAND}: publishing {what}; Ctrl-C or SIGTERM stops");
        let mut display = Display::new(COMMAND, "published");
        let latest = RefCell::new(Figures::default());
        let run = publisher.run(stop, |p| *latest.borrow_mut() = p.into());
        let last = display.show_while(&latest, run).await;
        display.finish(&(&last).into());
        Ok(())
    }
}
