//! Outbound: every committed event of a log, published to a JetStream
//! stream in log order, each once.
//!
//! - Subject `<prefix>.<stream token>` ([`crate::subject`]); headers from
//!   [`crate::headers`]; the payload as is (shared with the log's mapping,
//!   not copied).
//! - `Nats-Msg-Id` is the log id, position and output index: a republish
//!   after a crash is dropped by the server's deduplication.
//! - `Nats-Expected-Last-Sequence` and `Nats-Expected-Last-Msg-Id`: each
//!   message names the sequence and the message it must follow, so the
//!   server refuses anything out of order. The id chains the messages:
//!   with pipelining, a sequence alone would let a message in after a
//!   refused one whenever another writer's message took the refused one's
//!   place (two publishers racing on one stream), leaving a hole.
//! - No checkpoint of its own: a publisher starts after the event the
//!   stream's last message names.
//! - Pipelined: up to `max_in_flight` publishes wait for their
//!   acknowledgements, which are awaited in order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use seglog::{EventRef, Log, Position, ReadAll, Reader, Subscription};

use crate::error::BridgeError;
use crate::{headers, names, subject};

mod lag;
mod run;

use lag::Lag;
pub use run::Progress;

/// A log a publisher reads: the writer's own [`Log`] or a [`Reader`] of it
/// in another process.
pub trait Source {
    /// The log's id.
    fn log_id(&self) -> u128;
    /// Every event from `from` on, as published now.
    fn read_all(&self, from: Position) -> seglog::Result<ReadAll>;
    /// Calls `f` with every event from `from` on, borrowed; returns the
    /// position after the last one (counts the lag without building
    /// events).
    fn replay(&self, from: Position, f: &mut dyn FnMut(EventRef<'_>)) -> seglog::Result<Position>;
    /// The events from `from` on, waiting for new ones (a caught-up
    /// publisher waits on it instead of polling).
    fn subscribe_all(&self, from: Position) -> seglog::Result<Subscription>;
    /// The first position the log holds (after retention removed
    /// segments): where a publisher to an empty stream begins.
    fn log_start(&self) -> Position {
        Position::START
    }
}

impl Source for Log {
    fn log_id(&self) -> u128 {
        Log::log_id(self)
    }
    fn read_all(&self, from: Position) -> seglog::Result<ReadAll> {
        Log::read_all(self, from)
    }
    fn replay(&self, from: Position, f: &mut dyn FnMut(EventRef<'_>)) -> seglog::Result<Position> {
        Log::replay(self, from, f)
    }
    fn subscribe_all(&self, from: Position) -> seglog::Result<Subscription> {
        Log::subscribe_all(self, from)
    }
    fn log_start(&self) -> Position {
        Log::log_start(self)
    }
}

impl Source for Reader {
    fn log_id(&self) -> u128 {
        Reader::log_id(self)
    }
    fn read_all(&self, from: Position) -> seglog::Result<ReadAll> {
        Reader::read_all(self, from)
    }
    fn replay(&self, from: Position, f: &mut dyn FnMut(EventRef<'_>)) -> seglog::Result<Position> {
        Reader::replay(self, from, f)
    }
    fn subscribe_all(&self, from: Position) -> seglog::Result<Subscription> {
        Reader::subscribe_all(self, from)
    }
    fn log_start(&self) -> Position {
        Reader::log_start(self)
    }
}

/// A log shared with the service that appends to it: publish in the
/// writing process while it goes on appending.
impl<T: Source + ?Sized> Source for std::sync::Arc<T> {
    fn log_id(&self) -> u128 {
        (**self).log_id()
    }
    fn read_all(&self, from: Position) -> seglog::Result<ReadAll> {
        (**self).read_all(from)
    }
    fn replay(&self, from: Position, f: &mut dyn FnMut(EventRef<'_>)) -> seglog::Result<Position> {
        (**self).replay(from, f)
    }
    fn subscribe_all(&self, from: Position) -> seglog::Result<Subscription> {
        (**self).subscribe_all(from)
    }
    fn log_start(&self) -> Position {
        (**self).log_start()
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
/// already published, and the stream's last message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resume {
    from: Position,
    /// Outputs of the stored event at `from` up to this index are out.
    skip_through: Option<u16>,
    last_sequence: u64,
    /// The last message's event: position and output index (its message
    /// id); `None` in an empty stream.
    last: Option<(Position, u16)>,
}

/// Publishes a log's events to a JetStream stream.
pub struct Publisher<S: Source> {
    js: jetstream::Context,
    source: S,
    config: PublisherConfig,
    /// Where the last attempt left the stream, while nothing has failed
    /// since: the next attempt goes on from there without asking the
    /// server. `None`: ask (at start and after any failure).
    at: Mutex<Option<Resume>>,
    lag: Mutex<Lag>,
    /// Events acknowledged by JetStream since the publisher was made.
    published: AtomicU64,
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
        names::check_stream(&config.stream)?;
        names::check_prefix(&config.prefix)?;
        let js = jetstream::new(client);
        Ok(Publisher {
            js,
            source,
            config,
            at: Mutex::new(None),
            lag: Mutex::new(Lag::default()),
            published: AtomicU64::new(0),
        })
    }

    /// The log it publishes.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Where the stream's last message leaves off.
    async fn ask_server(&self) -> Result<Resume, BridgeError> {
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
                from: self.source.log_start(),
                skip_through: None,
                last_sequence,
                last: None,
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
        let split = index + 1 < count;
        Ok(Resume {
            from: if split { r.position } else { r.next_position },
            skip_through: split.then_some(index),
            last_sequence,
            last: Some((r.position, index)),
        })
    }

    /// Publishes every event the log holds now that the stream does not,
    /// in order, and waits for every acknowledgement. Returns how many it
    /// published. An error leaves the stream holding a prefix of the log:
    /// the next call asks the server where it stands and goes on from
    /// there.
    pub async fn publish_available(&mut self) -> Result<u64, BridgeError> {
        self.attempt().await
    }

    /// [`Publisher::publish_available`] through a shared reference, so
    /// that a run loop can report progress while it lasts.
    async fn attempt(&self) -> Result<u64, BridgeError> {
        let cached = lock(&self.at).take();
        let resume = match cached {
            Some(at) => at,
            None => {
                let resume = self.ask_server().await?;
                lock(&self.lag).restart(resume.from, self.published());
                resume
            }
        };
        let (published, at) = self.publish_from(resume).await?;
        *lock(&self.at) = Some(at);
        Ok(published)
    }

    /// Events acknowledged by JetStream since the publisher was made.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Events in the log that JetStream has not acknowledged yet, `None`
    /// until the publisher has learned where the stream stands. Counts
    /// only what was appended since the last call, so a long outage costs
    /// no rescans.
    pub fn lag(&self) -> Result<Option<u64>, BridgeError> {
        lock(&self.lag).count(&self.source, self.published())
    }

    async fn publish_from(&self, resume: Resume) -> Result<(u64, Resume), BridgeError> {
        let log_id = self.source.log_id();
        let mut at = resume;
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
            let mut message = PublishMessage::build()
                .headers(headers::encode_after(log_id, &e, at.last.map(|l| l.0)))
                .message_id(headers::message_id(log_id, &e))
                .expected_last_sequence(at.last_sequence)
                .payload(e.payload().clone());
            if let Some((position, index)) = at.last {
                message = message
                    .expected_last_message_id(headers::message_id_at(log_id, position, index));
            }
            let subject = format!("{}.{}", self.config.prefix, subject::encode(e.stream()));
            if in_flight.len() >= self.config.max_in_flight {
                self.acknowledged(in_flight.pop_front()).await?;
            }
            let ack = self
                .js
                .send_publish(subject, message)
                .await
                .map_err(BridgeError::nats)?;
            in_flight.push_back(ack);
            at = Resume {
                from: e.next_position(),
                skip_through: (!e.is_last_output()).then_some(e.output().0),
                last_sequence: at.last_sequence + 1,
                last: Some((e.position(), e.output().0)),
            };
            published += 1;
        }
        while let Some(ack) = in_flight.pop_front() {
            self.acknowledged(Some(ack)).await?;
        }
        Ok((published, at))
    }
}

/// The value behind `m`, also after a panic elsewhere while it was held:
/// every update under these locks leaves a consistent value.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Source> Publisher<S> {
    /// Waits for one acknowledgement; a duplicate is an error here, since
    /// a publisher resumes after what the stream holds.
    async fn acknowledged(&self, ack: Option<PublishAckFuture>) -> Result<(), BridgeError> {
        let Some(ack) = ack else {
            return Ok(());
        };
        let ack = ack.await.map_err(BridgeError::nats)?;
        if ack.duplicate {
            return Err(BridgeError::Duplicate {
                sequence: ack.sequence,
            });
        }
        self.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
