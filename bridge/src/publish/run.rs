//! A publisher that keeps publishing: new events as they come, failures
//! retried with a backoff, progress and lag reported after each attempt.

use std::future::Future;

use super::{Publisher, Source};
use crate::backoff::{IDLE_WAIT, backoff};

/// How a running publisher stands, after each attempt.
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
    /// last message. `report` sees the progress after each attempt.
    pub async fn run(
        &mut self,
        stop: impl Future<Output = ()>,
        mut report: impl FnMut(&Progress),
    ) -> Progress {
        let mut progress = Progress::default();
        tokio::pin!(stop);
        loop {
            let caught_up = match self.publish_available().await {
                Ok(n) => {
                    progress.published += n;
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
            match self.lag() {
                Ok(lag) => progress.lag = lag,
                Err(e) => progress.last_error = Some(e.to_string()),
            }
            report(&progress);
            let pause = async {
                if caught_up {
                    self.wait_for_events().await;
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

    /// Returns once the log has an event the stream does not, or after
    /// [`IDLE_WAIT`]. The subscription blocks, so it waits on a thread of
    /// tokio's blocking pool.
    async fn wait_for_events(&self) {
        let subscription = self.at.map(|at| self.source.subscribe_all(at.from));
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
