//! Inbound: another service's events, from the JetStream stream its
//! publisher writes, appended into a local log, each once.
//!
//! - **No checkpoint of its own.** The stream holds the source log in
//!   order and the mirror appends in that order, so what the local log
//!   holds is a prefix of the stream: a binary search over the stream's
//!   sequences (is this message's stream version in the local log yet?)
//!   finds where to go on, in one round trip when caught up and about
//!   twenty over a million messages. It then reads through an ordered
//!   consumer (in order, no acknowledgements, recreated by the client on a
//!   gap), starting there.
//! - **Each event once.** An event is appended with
//!   `ExpectedVersion::Exact(version - 1)` and skipped when the local
//!   stream already has its version, so a mirror killed at any point and
//!   restarted appends nothing twice and leaves nothing out.
//! - **Atomic as in the source.** The events one source append wrote (one
//!   frame) are appended together, as one frame: a reader of the mirror
//!   never sees half of an append. Whole fetched batches go into one
//!   [`Log::append_many`], one sync under `Durability::Sync`.
//! - Stream names, versions, types, schema versions, ids, metadata and
//!   payloads are kept; the commit time is the local log's.
//!
//! The local log must not get events of the source's streams from
//! anywhere else (the prefix argument above needs it); its other streams
//! are the receiving service's own business.
//!
//! The wire carries stored events: publish from a log opened without
//! upcasters, and let the mirror's own reads upcast. A message that is one
//! of several outputs of a split is refused ([`BridgeError::BadMessage`]):
//! its version would not be the source's.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::stream::Fuse;
use futures_util::{FutureExt, StreamExt};
use seglog::{Log, Position};

use crate::backoff::{backoff, unreachable};
use crate::error::BridgeError;
use crate::{headers, names};

mod apply;

use apply::Held;

/// Which JetStream stream a mirror follows.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    /// The JetStream stream another service's publisher writes.
    pub stream: String,
    /// The name of the mirror's consumers on the server, before a suffix
    /// that makes each one's unique (they are ordered and ephemeral: the
    /// mirror's position lives in its log, not there).
    pub consumer: String,
    /// Messages appended at a time, at most (1 to 4,096).
    pub batch: usize,
}

/// How a running mirror stands, after each batch or failed attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorProgress {
    /// Events appended to the local log since it started.
    pub mirrored: u64,
    /// Failed attempts in a row (0: the last one worked).
    pub failures: u32,
    /// The last failure, while it lasts.
    pub last_error: Option<String>,
    /// Messages of the JetStream stream not in the local log yet; `None`
    /// until the mirror has reached the server.
    pub lag: Option<u64>,
}

/// How often a following mirror checks its connection, to report an
/// outage the client rides out by itself.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Where a mirror goes on ([`Mirror::start`]).
#[derive(Debug, Clone, Copy)]
struct Start {
    /// The first message the local log does not hold.
    sequence: u64,
    /// The stream's last message.
    last: u64,
    /// The source position of the last message held, when known.
    held: Option<Position>,
}

/// Appends another log's events, read from JetStream, into a local log.
pub struct Mirror {
    js: jetstream::Context,
    log: Log,
    config: MirrorConfig,
    held: Held,
}

impl Mirror {
    /// A mirror into `log` of the JetStream stream `config.stream`. Talks
    /// to no server yet: the stream must exist by the first attempt to
    /// mirror.
    pub fn new(
        client: async_nats::Client,
        log: Log,
        config: MirrorConfig,
    ) -> Result<Mirror, BridgeError> {
        if !(1..=seglog::limits::MAX_APPENDS_PER_CALL).contains(&config.batch) {
            return Err(BridgeError::Config("batch must be from 1 to 4,096"));
        }
        names::check_stream(&config.stream)?;
        names::check_consumer(&config.consumer)?;
        Ok(Mirror {
            js: jetstream::new(client),
            log,
            config,
            held: Held::default(),
        })
    }

    /// The local log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The local log, the mirror done with.
    pub fn into_log(self) -> Log {
        self.log
    }

    /// Appends every event the stream holds now that the local log does
    /// not. Returns how many it appended.
    pub async fn mirror_available(&mut self) -> Result<u64, BridgeError> {
        let start = self.start().await?;
        if start.sequence > start.last {
            return Ok(0);
        }
        self.held.restart(start.held);
        let mut messages = self.messages(start.sequence).await?.fuse();
        let mut appended = 0;
        while let Some(first) = messages.next().await {
            let chunk = fill_chunk(first, &mut messages, self.config.batch).await?;
            let (n, pending) = self.apply(&chunk)?;
            appended += n;
            if pending == 0 {
                break;
            }
        }
        self.held.restart(None);
        Ok(appended)
    }

    /// Where to go on: the first sequence of the stream the local log
    /// does not hold, the stream's last sequence, and the source position
    /// after the last message held (the next message's event must be
    /// there), when the stream still has that message.
    async fn start(&self) -> Result<Start, BridgeError> {
        let mut stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .map_err(BridgeError::nats)?;
        let state = &stream.info().await.map_err(BridgeError::nats)?.state;
        let (first, last, messages) = (state.first_sequence, state.last_sequence, state.messages);
        let done = |sequence| Start {
            sequence,
            last,
            held: None,
        };
        if messages == 0 {
            return Ok(done(last + 1));
        }
        let newest = self.event_of(&stream, last).await?;
        if self.holds(&newest) {
            return Ok(Start {
                held: Some(newest.position),
                ..done(last + 1)
            });
        }
        // Held messages are a prefix: find the first that is not.
        let (mut lo, mut hi) = (first, last);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.holds(&self.event_of(&stream, mid).await?) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let held = if lo > first {
            Some(self.event_of(&stream, lo - 1).await?.position)
        } else {
            None
        };
        Ok(Start { held, ..done(lo) })
    }

    /// The event message `sequence` carries.
    async fn event_of(
        &self,
        stream: &stream::Stream,
        sequence: u64,
    ) -> Result<headers::Received, BridgeError> {
        let message = stream.get_raw_message(sequence).await.map_err(|e| {
            if e.kind() == stream::RawMessageErrorKind::NoMessageFound {
                BridgeError::Missing { sequence }
            } else {
                BridgeError::nats(e)
            }
        })?;
        headers::decode(&message.headers).map_err(|e| BridgeError::BadMessage {
            sequence,
            reason: e.0,
        })
    }

    /// Whether the local log holds `event`.
    fn holds(&self, event: &headers::Received) -> bool {
        self.log
            .stream_version(&event.stream)
            .is_some_and(|v| v >= event.version)
    }

    /// The stream's messages from `start` on, in order.
    async fn messages(&self, start: u64) -> Result<consumer::pull::Ordered, BridgeError> {
        let stream = self
            .js
            .get_stream(&self.config.stream)
            .await
            .map_err(BridgeError::nats)?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                name: Some(self.consumer_name()),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await
            .map_err(BridgeError::nats)?;
        consumer.messages().await.map_err(BridgeError::nats)
    }

    /// A name of its own for each consumer the mirror makes: an ordered
    /// consumer cannot be moved to another start sequence, and one left by
    /// a killed mirror lives on for a while (until the server's inactivity
    /// threshold) under the old name.
    fn consumer_name(&self) -> String {
        static MADE: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let made = MADE.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}-{}-{nanos:x}-{made}",
            self.config.consumer,
            std::process::id()
        )
    }

    /// Mirrors until `stop` completes: everything available, then new
    /// messages as they come. A failure (the server away, the local log
    /// refusing an append) is retried after a backoff from 50 ms to 5 s,
    /// from where the local log stands. `report` sees the progress after
    /// each batch and each failure.
    pub async fn run(
        &mut self,
        stop: impl Future<Output = ()>,
        mut report: impl FnMut(&MirrorProgress),
    ) -> MirrorProgress {
        let mut progress = MirrorProgress::default();
        tokio::pin!(stop);
        loop {
            let attempt = self.follow(&mut progress, &mut report);
            let failed = tokio::select! {
                () = &mut stop => None,
                failed = attempt => Some(failed),
            };
            let Some(failed) = failed else {
                return progress;
            };
            self.held.restart(None);
            progress.failures = progress.failures.saturating_add(1);
            progress.last_error = Some(failed.to_string());
            report(&progress);
            tokio::select! {
                () = &mut stop => return progress,
                () = tokio::time::sleep(backoff(progress.failures)) => {}
            }
        }
    }

    /// Follows the stream until something fails; returns the failure.
    async fn follow(
        &mut self,
        progress: &mut MirrorProgress,
        report: &mut impl FnMut(&MirrorProgress),
    ) -> BridgeError {
        let start = match self.start().await {
            Ok(start) => start,
            Err(e) => return e,
        };
        progress.lag = Some((start.last + 1).saturating_sub(start.sequence));
        report(progress);
        self.held.restart(start.held);
        let mut messages = match self.messages(start.sequence).await {
            Ok(messages) => messages.fuse(),
            Err(e) => return e,
        };
        let mut tick = tokio::time::interval_at(Instant::now() + REPORT_EVERY, REPORT_EVERY);
        loop {
            // Waiting for a first message can be given up for the tick
            // (nothing is taken from the stream yet); filling a chunk
            // after it cannot.
            let first = tokio::select! {
                first = messages.next() => first,
                _ = tick.tick() => {
                    self.report_connection(progress, report);
                    continue;
                }
            };
            let Some(first) = first else {
                break;
            };
            let chunk = match fill_chunk(first, &mut messages, self.config.batch).await {
                Ok(chunk) => chunk,
                Err(e) => return e,
            };
            match self.apply(&chunk) {
                Ok((appended, pending)) => {
                    progress.mirrored += appended;
                    progress.failures = 0;
                    progress.last_error = None;
                    progress.lag = Some(pending);
                    report(progress);
                }
                Err(e) => return e,
            }
        }
        BridgeError::Nats("the consumer's messages ended".into())
    }

    /// Reports a lost connection while it lasts: the client reconnects
    /// and the consumer resumes by themselves, so no attempt fails to say
    /// so.
    fn report_connection(
        &self,
        progress: &mut MirrorProgress,
        report: &mut impl FnMut(&MirrorProgress),
    ) {
        if let Some(error) = unreachable(&self.js) {
            progress.last_error = Some(error);
            report(progress);
        } else if progress.failures == 0 && progress.last_error.take().is_some() {
            report(progress);
        }
    }
}

/// How long a chunk waits for each further message the stream says it
/// holds, before it goes to the log as it is.
const FILL_WAIT: Duration = Duration::from_millis(50);

/// The messages to append after `first`, at most `batch`: those the
/// client holds now and, while the last one says the stream holds more
/// for this consumer, the ones after it as they come (each within
/// [`FILL_WAIT`]). A mirror catching up so appends, and under
/// `Durability::Sync` syncs, whole batches, not whatever the client
/// happened to hold when the last sync ended: that was a few dozen
/// messages, so a catch-up spent its time in syncs. A caught-up mirror
/// still appends each message as it comes.
async fn fill_chunk(
    first: Result<jetstream::Message, consumer::pull::OrderedError>,
    messages: &mut Fuse<consumer::pull::Ordered>,
    batch: usize,
) -> Result<Vec<jetstream::Message>, BridgeError> {
    let mut chunk = vec![first.map_err(BridgeError::nats)?];
    while chunk.len() < batch {
        let pending = chunk
            .last()
            .and_then(|m| m.info().ok())
            .map_or(0, |i| i.pending);
        let next = if pending > 0 {
            tokio::time::timeout(FILL_WAIT, messages.next()).await.ok()
        } else {
            messages.next().now_or_never()
        };
        match next.flatten() {
            Some(message) => chunk.push(message.map_err(BridgeError::nats)?),
            None => break,
        }
    }
    Ok(chunk)
}
