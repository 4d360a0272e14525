//! Progress on stderr: a bar for the measurement commands, and one that
//! shows itself only when work lasts over a second on a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps labelled `what`.
pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// After this long, work shows its progress.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Progress of long work (verify, export, import, a whole dump): hidden
/// for its first second, and always when stderr is not a terminal.
pub(crate) struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
    wanted: bool,
}

impl Progress {
    /// Progress over `len` units (bytes of the log, lines of a file).
    pub(crate) fn new(len: u64, what: &str) -> Progress {
        let bar = bar(len, what);
        bar.set_draw_target(ProgressDrawTarget::hidden());
        Progress {
            bar,
            started: Instant::now(),
            shown: false,
            wanted: std::io::stderr().is_terminal(),
        }
    }

    /// Progress over bytes (of a log, of a file), shown in binary units.
    pub(crate) fn bytes(len: u64, what: &str) -> Progress {
        let progress = Progress::new(len, what);
        progress.bar.set_style(
            ProgressStyle::with_template(
                "{msg:>8} [{bar:40}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        progress
    }

    /// The work turned out to be `len` units.
    pub(crate) fn set_len(&self, len: u64) {
        self.bar.set_length(len);
    }

    /// Work has reached `at`.
    pub(crate) fn set(&mut self, at: u64) {
        self.bar.set_position(at);
        if self.wanted && !self.shown && self.started.elapsed() >= SHOW_AFTER {
            self.shown = true;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// The work is done: the bar is cleared.
    pub(crate) fn finish(self) {
        self.bar.finish_and_clear();
    }
}
