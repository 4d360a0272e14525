//! A publisher that keeps publishing: new events as they come, failures
//! retried with a backoff, progress and lag reported as it goes.

use std::future::Future;
use std::time::Duration;

use super::{Publisher, Source, lock};
use crate::backoff::{IDLE_WAIT, backoff, unreachable};
use crate::error::BridgeError;

/// How often a long attempt (a catch-up, a wait on an unreachable server)
/// reports its progress.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How a running publisher stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Events published since it started.
    pub published: u64,
    /// Failed attempts in a row (0: the last one worked).
    pub failures: u32,
    /// The last failure, while it lasts.
    pub last_error: Option<String>,
    /// Events in the log that JetStream has not acknowledged yet; `None`
    /// until the publisher has learned where the stream stands (the
    /// server unreachable since it started).
    pub lag: Option<u64>,
}

impl<S: Source> Publisher<S> {
    /// Publishes until `stop` completes: everything available, then new
    /// events as they come (a caught-up publisher waits on a subscription
    /// of the log, so an append is on its way at once). A failure (the
    /// server away, a refused publish) is retried after a backoff from
    /// 50 ms to 5 s, never in a busy loop; the log meanwhile keeps
    /// accepting appends, and the next attempt resumes from the stream's
    /// last message. `report` sees the progress after each attempt and
    /// every second during a long one.
    pub async fn run(
        &mut self,
        stop: impl Future<Output = ()>,
        mut report: impl FnMut(&Progress),
    ) -> Progress {
        let mut progress = Progress::default();
        tokio::pin!(stop);
        loop {
            let outcome = tokio::select! {
                () = &mut stop => None,
                outcome = self.attempt_reporting(&mut progress, &mut report) => Some(outcome),
            };
            let Some(outcome) = outcome else {
                self.update(&mut progress);
                return progress;
            };
            let caught_up = match outcome {
                Ok(_) => {
                    progress.failures = 0;
                    progress.last_error = None;
                    true
                }
                Err(e) => {
                    progress.failures = progress.failures.saturating_add(1);
                    progress.last_error = Some(e.to_string());
                    false
                }
            };
            self.update(&mut progress);
            report(&progress);
            let pause = async {
                if caught_up {
                    self.wait_for_events().await;
                    self.report_connection(&mut progress, &mut report);
                } else {
                    tokio::time::sleep(backoff(progress.failures)).await;
                }
            };
            tokio::select! {
                () = &mut stop => return progress,
                () = pause => {}
            }
        }
    }

    /// One attempt, reporting every [`REPORT_EVERY`] while it lasts.
    async fn attempt_reporting(
        &self,
        progress: &mut Progress,
        report: &mut impl FnMut(&Progress),
    ) -> Result<u64, BridgeError> {
        let attempt = self.attempt();
        tokio::pin!(attempt);
        let start = tokio::time::Instant::now() + REPORT_EVERY;
        let mut tick = tokio::time::interval_at(start, REPORT_EVERY);
        loop {
            tokio::select! {
                outcome = &mut attempt => return outcome,
                _ = tick.tick() => {
                    self.update(progress);
                    report(progress);
                }
            }
        }
    }

    /// Reports a lost connection while a caught-up publisher waits: it
    /// talks to the server only when there is something to publish, so no
    /// attempt fails to say so.
    fn report_connection(&self, progress: &mut Progress, report: &mut impl FnMut(&Progress)) {
        if let Some(error) = unreachable(&self.js) {
            progress.last_error = Some(error);
            report(progress);
        } else if progress.failures == 0 && progress.last_error.take().is_some() {
            report(progress);
        }
    }

    /// The published count and the lag, as they are now.
    fn update(&self, progress: &mut Progress) {
        progress.published = self.published();
        match self.lag() {
            Ok(lag) => progress.lag = lag,
            Err(e) => progress.last_error = Some(e.to_string()),
        }
    }

    /// Returns once the log has an event the stream does not, or after
    /// [`IDLE_WAIT`]. The subscription blocks, so it waits on a thread of
    /// tokio's blocking pool.
    async fn wait_for_events(&self) {
        let from = lock(&self.at).map(|at| at.from);
        let subscription = from.map(|from| self.source.subscribe_all(from));
        let Some(Ok(mut subscription)) = subscription else {
            tokio::time::sleep(IDLE_WAIT).await;
            return;
        };
        let wait = tokio::task::spawn_blocking(move || subscription.next_timeout(IDLE_WAIT));
        if !matches!(wait.await, Ok(Ok(_))) {
            tokio::time::sleep(IDLE_WAIT).await;
        }
    }
}
