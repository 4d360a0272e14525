//! The `seglog` command-line tool. For the people who run a service built
//! on seglog: `info`, `verify`, `dump`, `get`, `stream` and `tail` read a
//! log beside its writer (`inspect/`); `export` and `import` move events
//! out of a log and into another (`transfer/`); for measurements:
//! `seglog demo` appends a million events into a temporary directory,
//! syncs, replays them and prints the rates;
//! `seglog durable` measures durable appends; `seglog streams` builds a log of
//! many short streams, reopens it and reads a few (with `--reopen-only`, it
//! only opens an existing log: run it under `/usr/bin/time -v` to measure the
//! resident memory of a reopened log); `seglog bridge publish` and
//! `seglog bridge mirror` run the NATS JetStream bridge beside a service.
#![deny(unsafe_code)]

mod args;
mod bridge;
mod consumers;
mod demo;
mod durable;
mod failure;
mod inspect;
mod meta;
mod out;
mod streams;
mod transfer;
mod workdir;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "seglog",
    version,
    about = "seglog: an embedded append-only event log"
)]
struct Cli {
    /// Print one JSON object per line instead of tables (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What is in a log: segments, positions, events and streams
    /// counted, time range, chain head, disk use, consumers.
    ///
    /// Reads DIR (beside a running writer; changes nothing). Its cost
    /// grows with segments and streams, not events.
    Info(inspect::info::InfoCommand),
    /// Check a log end to end: exit 0 when intact, 1 at damage.
    ///
    /// Reads DIR (beside a running writer; changes nothing): every
    /// frame's CRC, the hash chain against each sealed segment's record,
    /// every index file against its segment and, with --digest, that the
    /// log still holds exactly what an earlier digest committed to. The
    /// first damage is printed with its segment, offset and position.
    Verify(inspect::verify::VerifyCommand),
    /// Print a log's events in log order, chosen by position or time,
    /// stream and type.
    ///
    /// Reads DIR (beside a running writer; changes nothing), up to the end
    /// the log had when the dump started: a table for people (long
    /// payloads cut, see `get`), one JSON object per event with --json
    /// (payloads whole). Payloads show as JSON when they are JSON, else as
    /// UTF-8 text, else in hex (--payload).
    Dump(inspect::dump::DumpCommand),
    /// Print the one event at a position, every field, payload whole.
    ///
    /// Reads DIR (beside a running writer; changes nothing). A position
    /// that names no event exits with status 3, saying where the next
    /// event is.
    Get(inspect::get::GetCommand),
    /// Print one stream's events: forward or backward, from a version, or
    /// as the stream was at a version, a position or a time.
    ///
    /// Reads DIR (beside a running writer; changes nothing) through the
    /// stream's index: its cost grows with the stream, not the log.
    Stream(inspect::stream::StreamCommand),
    /// Print a log's last events; with -f, each new one as it is appended.
    ///
    /// Reads DIR (beside a running writer; changes nothing, never slows
    /// it): the newest segments only, not the whole log. -f follows until
    /// Ctrl-C, SIGTERM or the reader of the output leaves, writing each
    /// event out at once.
    Tail(inspect::tail::TailCommand),
    /// Write a log's events as JSON lines, one event a line.
    ///
    /// Reads DIR (beside a running writer; changes nothing) from --from, or
    /// the log's start, up to the end it has when the export starts: stream,
    /// version, type, schema version, id, commit time, position, metadata
    /// and payload of each event (text as a string, other bytes in base64),
    /// with the deletions of $streams for an import to apply, and $audit
    /// only with --include-system. The lines
    /// go to stdout, or to --output FILE with a summary on stdout that says
    /// where the next export continues (--from NEXT). Format: cli/README.md.
    Export(transfer::export::ExportCommand),
    /// Append the events of an export into a log, keeping stream versions.
    ///
    /// Reads FILE (or stdin) and writes DIR as its writer: the log is created
    /// when missing, and a log held by another writer (a running service) is
    /// refused. Each line's version decides: one the stream holds is skipped
    /// (a different event id there is a conflict, exit 1), the next one is
    /// appended with its id, type, schema version, metadata and payload, a
    /// later one is a gap (exit 1). Running it again is safe: it appends only
    /// what is missing, so an import that failed or was stopped is resumed
    /// by running it again. Deletions of streams ($streams) are applied
    /// again, other events of $audit and $streams skipped; erased events
    /// are erased again here (needs --master-key-file).
    Import(transfer::import::ImportCommand),
    /// The durable consumers: list, show, reset.
    ///
    /// `list` and `show` read DIR beside a running writer; `reset` moves a
    /// consumer's checkpoint and needs the writer's lock (stop the
    /// service first), and --yes.
    #[command(subcommand_required = true)]
    Consumers(consumers::ConsumersCommand),
    /// Print a completion script for a shell (bash, zsh, fish).
    ///
    /// E.g. `seglog completions bash > /etc/bash_completion.d/seglog`.
    Completions(meta::CompletionsCommand),
    /// Print the man page (roff), e.g. `seglog man | man -l -`.
    Man,
    /// Append events over many streams, sync, replay them, print the rates.
    Demo(demo::DemoCommand),
    /// Durable appends (Durability::Sync) from several thread counts: events/s
    /// and append latency percentiles, one run after another.
    Durable(durable::DurableCommand),
    /// Many short streams: append `--events-per-stream` rounds over
    /// `--streams` streams (one event per append, round robin,
    /// Durability::None), close, reopen (timed), read a few streams, print
    /// counts, timings and memory. `--reopen-only` skips the append phase
    /// and opens an existing `--dir`.
    Streams(streams::StreamsCommand),
    /// The NATS JetStream bridge: `publish` a log, `mirror` a stream.
    ///
    /// Run beside a service until Ctrl-C or SIGTERM: `publish` sends a
    /// log's events to a JetStream stream, `mirror` appends a stream's
    /// events into a local log.
    #[command(subcommand_required = true)]
    Bridge(bridge::BridgeCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = out::Out::new(cli.json);
    out::set_json(cli.json);
    let result = match cli.command {
        Command::Info(command) => command.run(&mut out),
        Command::Verify(command) => command.run(&mut out),
        Command::Dump(command) => command.run(&mut out),
        Command::Get(command) => command.run(&mut out),
        Command::Stream(command) => command.run(&mut out),
        Command::Tail(command) => command.run(&mut out),
        Command::Consumers(command) => command.run(&mut out),
        Command::Completions(command) => command.run(&mut Cli::command()),
        Command::Man => meta::man(Cli::command()),
        Command::Export(command) => command.run(&mut out),
        Command::Import(command) => command.run(&mut out),
        Command::Demo(command) => command.run().map_err(failure::Failure::failed),
        Command::Durable(command) => command.run().map_err(failure::Failure::failed),
        Command::Streams(command) => command.run().map_err(failure::Failure::failed),
        Command::Bridge(command) => command.run().map_err(failure::Failure::failed),
    };
    let result = result.and_then(|()| out.flush());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // What stdout took is kept; the failure follows it on stderr.
            let _ = out.flush();
            if !failure.message.is_empty() {
                eprintln!("seglog: {failure}");
            }
            ExitCode::from(failure.status)
        }
    }
}
