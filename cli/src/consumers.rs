//! `seglog consumers`: the durable consumers of a log. `list` and `show`
//! read (beside the running service); `reset` moves a consumer's
//! checkpoint and so needs the log's writer lock: the service must be
//! stopped, and the consumer with it.

use clap::{Args, Subcommand};
use seglog::inspect::ConsumerInfo;
use seglog::{Log, Position};
use serde_json::json;

use crate::failure::{Failure, check_log_dir};
use crate::inspect::LogArgs;
use crate::out::{Out, Table, units};

// The flags of `seglog consumers` (its help is the variant's doc comment
// in main.rs).
#[derive(Args)]
pub(crate) struct ConsumersCommand {
    #[command(subcommand)]
    command: ConsumersSubcommand,
}

#[derive(Subcommand)]
enum ConsumersSubcommand {
    /// List the durable consumers of the log in DIR, with their
    /// checkpoints and how far behind the log's end each is. Reads only.
    List(LogArgs),
    /// Show one consumer. Reads only.
    Show {
        #[command(flatten)]
        log: LogArgs,
        /// The consumer's name.
        name: String,
    },
    /// Move a consumer's checkpoint: it resumes after --to. Changes the
    /// log's directory; needs the writer's lock (stop the service first).
    Reset(ResetArgs),
}

#[derive(Args)]
struct ResetArgs {
    /// The log's directory.
    dir: std::path::PathBuf,
    /// The consumer's name.
    name: String,
    /// Where it goes: an event's position (it resumes after that event)
    /// or `start` (it receives everything again).
    #[arg(long, value_name = "POSITION|start")]
    to: String,
    /// Do it: without this flag, the command says what it would do.
    #[arg(long)]
    yes: bool,
}

impl ConsumersCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        match &self.command {
            ConsumersSubcommand::List(log) => list(out, log, None),
            ConsumersSubcommand::Show { log, name } => list(out, log, Some(name)),
            ConsumersSubcommand::Reset(args) => reset(out, args),
        }
    }
}

fn list(out: &mut Out, log: &LogArgs, only: Option<&String>) -> Result<(), Failure> {
    let reader = log.open()?;
    let mut consumers = reader
        .consumers()
        .map_err(|e| Failure::from_log(&log.dir, e))?;
    if let Some(name) = only {
        consumers.retain(|c| &c.name == name);
        if consumers.is_empty() {
            return Err(Failure::failed(format!(
                "no consumer {name:?} in {} (it has never checkpointed)",
                log.dir.display()
            )));
        }
    }
    if out.json() {
        return consumers
            .iter()
            .try_for_each(|c| out.object(&consumer_json(c)));
    }
    print(out, &consumers)
}

/// The consumers as a table (shared with `seglog info`).
pub(crate) fn print(out: &mut Out, consumers: &[ConsumerInfo]) -> Result<(), Failure> {
    if consumers.is_empty() {
        return out.line("no durable consumers");
    }
    let mut table = Table::new(&["consumer", "checkpoint", ">behind"]);
    for c in consumers {
        table.row(vec![
            c.name.clone(),
            c.checkpoint.to_string(),
            units::bytes(c.lag_bytes),
        ]);
    }
    out.table(&table)
}

fn reset(out: &mut Out, args: &ResetArgs) -> Result<(), Failure> {
    let to = match args.to.as_str() {
        "start" => None,
        text => {
            Some(units::parse_position(text).map_err(|e| Failure::usage(format!("--to: {e}")))?)
        }
    };
    let shown = |p: Option<Position>| p.map_or_else(|| "the start".to_string(), |p| p.to_string());
    if !args.yes {
        // Said from a reader: a dry run takes no lock and changes nothing.
        let log = LogArgs {
            dir: args.dir.clone(),
            master_key_file: None,
        };
        let reader = log.open()?;
        let consumers = reader
            .consumers()
            .map_err(|e| Failure::from_log(&args.dir, e))?;
        let from = consumers
            .iter()
            .find(|c| c.name == args.name)
            .map(|c| c.checkpoint);
        return Err(Failure::usage(format!(
            "this moves consumer {:?} from {} to {}: add --yes to do it",
            args.name,
            shown(from),
            shown(to)
        )));
    }
    check_log_dir(&args.dir)?;
    let failed = |e| Failure::from_log(&args.dir, e);
    let log = Log::open(&args.dir).map_err(failed)?;
    let mut consumer = log.consumer(&args.name).map_err(failed)?;
    let from = consumer.checkpointed();
    consumer.reset(to).map_err(failed)?;
    drop(consumer);
    log.close().map_err(failed)?;
    if out.json() {
        out.object(&json!({
            "name": args.name,
            "from": from.map(|p| p.to_string()),
            "to": to.map(|p| p.to_string()),
        }))
    } else {
        out.line(&format!(
            "consumer {:?}: {} -> {}",
            args.name,
            shown(from),
            shown(to)
        ))
    }
}

/// A consumer as `--json` shows it (shared with `seglog info`).
pub(crate) fn consumer_json(c: &ConsumerInfo) -> serde_json::Value {
    json!({
        "name": c.name,
        "checkpoint": c.checkpoint.to_string(),
        "behind_bytes": c.lag_bytes,
    })
}
