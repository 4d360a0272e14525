//! Outbound: every committed event of a log, published to a JetStream
//! stream in log order, each once.
//!
//! - Subject `<prefix>.<stream token>` ([`crate::subject`]); headers from
//!   [`crate::headers`]; the payload as is (shared with the log's mapping,
//!   not copied).
//! - `Nats-Msg-Id` is the log id, position and output index: a republish
//!   after a crash is dropped by the server's deduplication.
//! - `Nats-Expected-Last-Sequence`: each message names the sequence it
//!   must follow, so the server refuses anything out of order.
//! - No checkpoint of its own: a publisher starts after the event the
//!   stream's last message names.
//! - Pipelined: up to `max_in_flight` publishes wait for their
//!   acknowledgements, which are awaited in order.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use seglog::{Log, Position, ReadAll, Reader};

use crate::error::BridgeError;
use crate::{headers, subject};

/// A log a publisher reads: the writer's own [`Log`] or a [`Reader`] of it
/// in another process.
pub trait Source {
    /// The log's id.
    fn log_id(&self) -> u128;
    /// Every event from `from` on, as published now.
    fn read_all(&self, from: Position) -> seglog::Result<ReadAll>;
}

impl Source for Log {
    fn log_id(&self) -> u128 {
        Log::log_id(self)
    }
    fn read_all(&self, from: Position) -> seglog::Result<ReadAll> {
        Log::read_all(self, from)
    }
}

impl Source for Reader {
    fn log_id(&self) -> u128 {
        Reader::log_id(self)
    }
    fn read_all(&self, from: Position) -> seglog::Result<ReadAll> {
        Reader::read_all(self, from)
    }
}

/// Where a publisher sends a log's events.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// The JetStream stream (created when missing, over `<prefix>.>`).
    pub stream: String,
    /// The subjects' first token(s).
    pub prefix: String,
    /// Publishes awaiting their acknowledgement, at most (1 to 4,096).
    pub max_in_flight: usize,
}

/// Where publishing goes on: the first event to publish, outputs of it
/// already published, and the stream's last sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resume {
    from: Position,
    /// Outputs of the stored event at `from` up to this index are out.
    skip_through: Option<u16>,
    last_sequence: u64,
}

/// Publishes a log's events to a JetStream stream.
pub struct Publisher<S: Source> {
    js: jetstream::Context,
    source: S,
    config: PublisherConfig,
}

impl<S: Source> Publisher<S> {
    /// A publisher of `source` through `client`. Talks to no server yet:
    /// the JetStream stream is created (when missing) by the first
    /// attempt to publish, so a publisher can start while the server is
    /// unreachable (connect with `retry_on_initial_connect`) and
    /// [`Publisher::run`] waits for it.
    pub fn new(
        client: async_nats::Client,
        source: S,
        config: PublisherConfig,
    ) -> Result<Publisher<S>, BridgeError> {
        if !(1..=4_096).contains(&config.max_in_flight) {
            return Err(BridgeError::Config("max_in_flight must be from 1 to 4,096"));
        }
        let js = jetstream::new(client);
        Ok(Publisher { js, source, config })
    }

    /// The log it publishes.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Where the stream's last message leaves off.
    async fn resume(&self) -> Result<Resume, BridgeError> {
        let mut stream = self
            .js
            .get_or_create_stream(stream::Config {
                name: self.config.stream.clone(),
                subjects: vec![format!("{}.>", self.config.prefix)],
                ..Default::default()
            })
            .await
            .map_err(BridgeError::nats)?;
        let last_sequence = stream
            .info()
            .await
            .map_err(BridgeError::nats)?
            .state
            .last_sequence;
        if last_sequence == 0 {
            return Ok(Resume {
                from: Position::START,
                skip_through: None,
                last_sequence,
            });
        }
        let last = stream
            .get_raw_message(last_sequence)
            .await
            .map_err(BridgeError::nats)?;
        let r = headers::decode(&last.headers).map_err(|e| BridgeError::BadMessage {
            sequence: last_sequence,
            reason: e.0,
        })?;
        let log_id = self.source.log_id();
        if r.log_id != log_id {
            return Err(BridgeError::OtherLog {
                stream: self.config.stream.clone(),
                expected: log_id,
                found: r.log_id,
            });
        }
        let (index, count) = r.output;
        Ok(if index + 1 < count {
            Resume {
                from: r.position,
                skip_through: Some(index),
                last_sequence,
            }
        } else {
            Resume {
                from: r.next_position,
                skip_through: None,
                last_sequence,
            }
        })
    }

    /// Publishes every event the log holds now that the stream does not,
    /// in order, and waits for every acknowledgement. Returns how many it
    /// published. An error leaves the stream holding a prefix of the log:
    /// the next call goes on from there.
    pub async fn publish_available(&mut self) -> Result<u64, BridgeError> {
        let resume = self.resume().await?;
        let log_id = self.source.log_id();
        let mut sequence = resume.last_sequence;
        let mut in_flight: VecDeque<PublishAckFuture> = VecDeque::new();
        let mut published = 0;
        for event in self.source.read_all(resume.from)? {
            let e = event?;
            let skip = resume
                .skip_through
                .is_some_and(|through| e.position() == resume.from && e.output().0 <= through);
            if skip {
                continue;
            }
            let message = PublishMessage::build()
                .headers(headers::encode(log_id, &e))
                .message_id(headers::message_id(log_id, &e))
                .expected_last_sequence(sequence)
                .payload(e.payload().clone());
            let subject = format!("{}.{}", self.config.prefix, subject::encode(e.stream()));
            if in_flight.len() >= self.config.max_in_flight {
                acknowledged(in_flight.pop_front()).await?;
            }
            let ack = self
                .js
                .send_publish(subject, message)
                .await
                .map_err(BridgeError::nats)?;
            in_flight.push_back(ack);
            sequence += 1;
            published += 1;
        }
        while let Some(ack) = in_flight.pop_front() {
            acknowledged(Some(ack)).await?;
        }
        Ok(published)
    }
}

/// How a running publisher stands, after each attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Events published since it started.
    pub published: u64,
    /// Failed attempts in a row (0: the last one worked).
    pub failures: u32,
    /// The last failure, while it lasts.
    pub last_error: Option<String>,
}

/// The wait after `failures` failed attempts in a row: from 50 ms,
/// doubling, at most 5 s.
pub fn backoff(failures: u32) -> Duration {
    let ms = 50u64.saturating_mul(1 << failures.clamp(1, 8).saturating_sub(1));
    Duration::from_millis(ms.min(5_000))
}

/// How long a caught-up publisher sleeps before it looks for new events.
const IDLE: Duration = Duration::from_millis(10);

impl<S: Source> Publisher<S> {
    /// Publishes until `stop` completes: everything available, then new
    /// events as they come (looked for every 10 ms once caught up). A
    /// failure (the server away, a refused publish) is retried after a
    /// backoff from 50 ms to 5 s, never in a busy loop; the log meanwhile
    /// keeps accepting appends, and the next attempt resumes from the
    /// stream's last message. `report` sees the progress after each
    /// attempt.
    pub async fn run(
        &mut self,
        stop: impl Future<Output = ()>,
        mut report: impl FnMut(&Progress),
    ) -> Progress {
        let mut progress = Progress::default();
        tokio::pin!(stop);
        loop {
            let pause = match self.publish_available().await {
                Ok(n) => {
                    progress.published += n;
                    progress.failures = 0;
                    progress.last_error = None;
                    IDLE
                }
                Err(e) => {
                    progress.failures = progress.failures.saturating_add(1);
                    progress.last_error = Some(e.to_string());
                    backoff(progress.failures)
                }
            };
            report(&progress);
            tokio::select! {
                () = &mut stop => return progress,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Waits for one acknowledgement; a duplicate is an error here, since a
/// publisher resumes after what the stream holds.
async fn acknowledged(ack: Option<PublishAckFuture>) -> Result<(), BridgeError> {
    let Some(ack) = ack else {
        return Ok(());
    };
    let ack = ack.await.map_err(BridgeError::nats)?;
    if ack.duplicate {
        return Err(BridgeError::Duplicate {
            sequence: ack.sequence,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_50_ms_to_at_most_5_s() {
        let ms: Vec<u128> = (0..12).map(|f| backoff(f).as_millis()).collect();
        assert_eq!(
            ms,
            [
                50, 50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000
            ]
        );
    }
}
