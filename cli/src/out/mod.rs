//! How the tool prints. For people: aligned tables, human units, colours
//! on a terminal. For scripts (`--json`): one JSON object per line on
//! stdout, nothing else there, no colour. Progress goes to stderr, only on
//! a terminal and only for work that lasts.

mod progress;
mod table;
pub(crate) mod units;

use std::io::{self, BufWriter, IsTerminal, Stdout, Write};

pub(crate) use progress::{Progress, bar};
pub(crate) use table::Table;

use crate::failure::Failure;

/// Whether `--json` was given, for the measurement commands (`demo`,
/// `durable`, `streams`), which print as they go rather than through an
/// [`Out`]: set once by `main`.
static JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Says that scripts are reading (`--json`): for [`report`].
pub(crate) fn set_json(json: bool) {
    let _ = JSON.set(json);
}

/// One result of a measurement command: `text` for people, `value` as one
/// JSON line with `--json`. A closed stdout is not an error here: the
/// measurement goes on and its checks still decide the exit status.
pub(crate) fn report(text: &str, value: serde_json::Value) {
    let mut stdout = io::stdout().lock();
    let _ = if JSON.get().copied().unwrap_or(false) {
        writeln!(stdout, "{value}")
    } else {
        writeln!(stdout, "{text}")
    };
}

/// The standard output of one command, in the form asked for.
pub(crate) struct Out {
    json: bool,
    color: bool,
    w: BufWriter<Stdout>,
}

/// Colours a person reading a terminal gets.
#[derive(Clone, Copy)]
pub(crate) enum Paint {
    /// Headings and names.
    Bold,
    /// What is intact.
    Good,
    /// Damage and failures.
    Bad,
    /// What matters less.
    Dim,
}

impl Out {
    /// Output to stdout: JSON lines with `json`, else text, coloured only
    /// on a terminal and when `NO_COLOR` is not set.
    pub(crate) fn new(json: bool) -> Out {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Out {
            json,
            color: !json && !no_color && io::stdout().is_terminal(),
            w: BufWriter::new(io::stdout()),
        }
    }

    /// Whether scripts are reading (`--json`).
    pub(crate) fn json(&self) -> bool {
        self.json
    }

    /// `text` in `paint`, when colours are on.
    pub(crate) fn paint(&self, text: &str, paint: Paint) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match paint {
            Paint::Bold => "1",
            Paint::Good => "32",
            Paint::Bad => "1;31",
            Paint::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// One JSON object as one line.
    pub(crate) fn object(&mut self, value: &serde_json::Value) -> Result<(), Failure> {
        serde_json::to_writer(&mut self.w, value)
            .map_err(io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"))
            .map_err(Failure::output)
    }

    /// One line of text.
    pub(crate) fn line(&mut self, text: &str) -> Result<(), Failure> {
        writeln!(self.w, "{text}").map_err(Failure::output)
    }

    /// A table, its columns aligned.
    pub(crate) fn table(&mut self, table: &Table) -> Result<(), Failure> {
        let text = table.render(|heading| self.paint(heading, Paint::Bold));
        self.w.write_all(text.as_bytes()).map_err(Failure::output)
    }

    /// Writes out what is buffered: before a wait, so a follower sees each
    /// event when it comes.
    pub(crate) fn flush(&mut self) -> Result<(), Failure> {
        self.w.flush().map_err(Failure::output)
    }
}
