//! The `seglog` command-line tool: `seglog demo` appends a million events into
//! a temporary directory, syncs, replays them and prints the rates;
//! `seglog durable` measures durable appends; `seglog streams` builds a log of
//! many short streams, reopens it and reads a few (with `--reopen-only`, it
//! only opens an existing log: run it under `/usr/bin/time -v` to measure the
//! resident memory of a reopened log); `seglog bridge publish` and
//! `seglog bridge mirror` run the NATS JetStream bridge beside a service.
#![deny(unsafe_code)]

mod args;
mod bridge;
mod demo;
mod durable;
mod progress;
mod streams;
mod workdir;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "seglog",
    version,
    about = "seglog: an embedded append-only event log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    let result = match Cli::parse().command {
        Command::Demo(command) => command.run(),
        Command::Durable(command) => command.run(),
        Command::Streams(command) => command.run(),
        Command::Bridge(command) => command.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seglog: {e}");
            ExitCode::FAILURE
        }
    }
}
