//! A running bridge's progress on stderr: a live line on a terminal, a
//! plain line every few seconds otherwise (a script's output, a service
//! manager's log), and a last line when it stops.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write;
use std::future::Future;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use seglog_nats::{MirrorProgress, Progress};

/// How often the live line is redrawn: smooth to the eye, cheap.
const LIVE_TICK: Duration = Duration::from_millis(200);
/// How often a plain line is printed: a stall shows in a log within
/// seconds, and a day's log stays readable (17,280 lines).
const PLAIN_TICK: Duration = Duration::from_secs(5);
/// The rate shown is measured over this window: recent enough to show a
/// stall, long enough not to flicker with each batch.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// What a running bridge reports, publisher or mirror alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Figures {
    /// Events published (or mirrored) since it started.
    pub(crate) moved: u64,
    /// Failed attempts in a row.
    pub(crate) failures: u32,
    /// The last failure, while it lasts.
    pub(crate) last_error: Option<String>,
    /// Events not through yet; `None` until a report gave it (a publisher's
    /// first attempt that reached the server; a mirror's first batch or
    /// failure, so a mirror started caught up shows none).
    pub(crate) lag: Option<u64>,
}

impl From<&Progress> for Figures {
    fn from(p: &Progress) -> Figures {
        Figures {
            moved: p.published,
            failures: p.failures,
            last_error: p.last_error.clone(),
            lag: p.lag,
        }
    }
}

impl From<&MirrorProgress> for Figures {
    fn from(p: &MirrorProgress) -> Figures {
        Figures {
            moved: p.mirrored,
            failures: p.failures,
            last_error: p.last_error.clone(),
            lag: p.lag,
        }
    }
}

/// Where and how the figures are shown.
pub(crate) struct Display {
    /// Prefixes each plain line: `seglog bridge publish`.
    command: &'static str,
    /// The figures' verb: `published`, `mirrored`.
    verb: &'static str,
    /// The live line; `None` when stderr is not a terminal.
    live: Option<ProgressBar>,
    started: Instant,
    rate: Rate,
}

impl Display {
    /// A display for `command`, live when stderr is a terminal.
    pub(crate) fn new(command: &'static str, verb: &'static str) -> Display {
        let live = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        let started = Instant::now();
        Display {
            command,
            verb,
            live,
            started,
            rate: Rate::new(started),
        }
    }

    /// Runs `run` to its end, showing at each tick the figures its reports
    /// left in `latest` (a mirror caught up reports nothing for as long as
    /// nothing comes, so the ticks, not the reports, pace the display).
    pub(crate) async fn show_while<T>(
        &mut self,
        latest: &RefCell<Figures>,
        run: impl Future<Output = T>,
    ) -> T {
        let period = if self.live.is_some() {
            LIVE_TICK
        } else {
            PLAIN_TICK
        };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(run);
        loop {
            tokio::select! {
                out = &mut run => return out,
                _ = ticks.tick() => {
                    let figures = latest.borrow().clone();
                    self.show(&figures);
                }
            }
        }
    }

    fn show(&mut self, figures: &Figures) {
        let per_s = self.rate.sample(Instant::now(), figures.moved);
        let line = line(self.verb, figures, Some(per_s));
        match &self.live {
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None => eprintln!("{}: {line}", self.command),
        }
    }

    /// Clears the live line and prints where the bridge stopped.
    pub(crate) fn finish(self, figures: &Figures) {
        if let Some(bar) = &self.live {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}: stopped after {:.1} s: {}",
            self.command,
            self.started.elapsed().as_secs_f64(),
            line(self.verb, figures, None)
        );
    }
}

/// The figures as one line: `published 1200 (240/s), lag 0` (the rate when
/// given), then the failure while there is one.
fn line(verb: &str, figures: &Figures, per_s: Option<f64>) -> String {
    let mut line = format!("{verb} {}", figures.moved);
    // Writing to a String cannot fail.
    if let Some(per_s) = per_s {
        let _ = write!(line, " ({per_s:.0}/s)");
    }
    line.push_str(", lag ");
    match figures.lag {
        Some(lag) => {
            let _ = write!(line, "{lag}");
        }
        None => line.push_str("unknown"),
    }
    if let Some(error) = &figures.last_error {
        let _ = match figures.failures {
            0 => write!(line, "; error: {error}"),
            n => write!(line, "; failing ({n} in a row, retrying): {error}"),
        };
    }
    line
}

/// Events per second over the last [`RATE_WINDOW`], from samples of a
/// running count.
struct Rate {
    /// Oldest first; the first is the newest one at least a window old,
    /// so the samples stay bounded (a window's worth of ticks).
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    /// A rate counted from zero at `started`.
    fn new(started: Instant) -> Rate {
        Rate {
            samples: VecDeque::from([(started, 0)]),
        }
    }

    /// Adds the count `count` seen at `at`; returns the rate.
    fn sample(&mut self, at: Instant, count: u64) -> f64 {
        self.samples.push_back((at, count));
        while self
            .samples
            .get(1)
            .is_some_and(|&(t, _)| at.saturating_duration_since(t) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let (Some(&(t0, c0)), Some(&(t1, c1))) = (self.samples.front(), self.samples.back()) else {
            return 0.0;
        };
        let secs = t1.saturating_duration_since(t0).as_secs_f64();
        if secs > 0.0 {
            c1.saturating_sub(c0) as f64 / secs
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_measured_over_the_last_window() {
        let t0 = Instant::now();
        let mut rate = Rate::new(t0);
        assert_eq!(rate.sample(t0 + Duration::from_secs(1), 100), 100.0);
        assert_eq!(rate.sample(t0 + Duration::from_secs(5), 500), 100.0);
        // From 5 s on, the first second's samples fall out of the window:
        // a stall shows as a falling rate, then zero.
        assert_eq!(rate.sample(t0 + Duration::from_secs(10), 500), 0.0);
        assert!(rate.samples.len() <= 2, "bounded: {}", rate.samples.len());
    }

    #[test]
    fn a_line_shows_count_rate_lag_and_the_failure() {
        let mut figures = Figures {
            moved: 1200,
            lag: Some(3),
            ..Figures::default()
        };
        assert_eq!(
            line("published", &figures, Some(240.4)),
            "published 1200 (240/s), lag 3"
        );
        assert_eq!(line("published", &figures, None), "published 1200, lag 3");
        figures.failures = 2;
        figures.last_error = Some("nats: timed out".into());
        assert_eq!(
            line("published", &figures, Some(0.0)),
            "published 1200 (0/s), lag 3; failing (2 in a row, retrying): nats: timed out"
        );
        figures.lag = None;
        assert!(line("mirrored", &figures, None).contains("lag unknown"));
    }
}
