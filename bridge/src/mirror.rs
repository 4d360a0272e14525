//! Inbound: another service's events, from the JetStream stream its
//! publisher writes, appended into a local log, each once.
//!
//! Idempotent without a checkpoint of its own: an event is appended only
//! if the local stream's version says it is not there yet, with
//! `ExpectedVersion::Exact(version - 1)`, and acknowledged to JetStream
//! after the append returned (durable under `Durability::Sync`). A crash
//! between the two redelivers the event, which is then skipped. Stream
//! names, versions, types, schema versions, ids, metadata and payloads are
//! kept; the commit time is the local log's.
//!
//! The wire carries stored events: publish from a log opened without
//! upcasters, and let the mirror's own reads upcast. A message that is one
//! of several outputs of a split is refused ([`BridgeError::BadMessage`]):
//! its version would not be the source's.

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use seglog::{EventData, ExpectedVersion, Log};

use crate::error::BridgeError;
use crate::headers;

/// Which JetStream stream a mirror follows, and as which consumer.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    /// The JetStream stream another service's publisher writes.
    pub stream: String,
    /// The durable consumer's name: one per mirror.
    pub consumer: String,
    /// Messages fetched at a time (1 to 10,000).
    pub batch: usize,
}

/// Appends another log's events, read from JetStream, into a local log.
pub struct Mirror {
    consumer: consumer::PullConsumer,
    log: Log,
    config: MirrorConfig,
}

impl Mirror {
    /// A mirror into `log` of the JetStream stream `config.stream`, which
    /// must exist; creates its durable consumer when missing.
    pub async fn new(
        client: async_nats::Client,
        log: Log,
        config: MirrorConfig,
    ) -> Result<Mirror, BridgeError> {
        if !(1..=10_000).contains(&config.batch) {
            return Err(BridgeError::Config("batch must be from 1 to 10,000"));
        }
        let js = jetstream::new(client);
        let stream = js
            .get_stream(&config.stream)
            .await
            .map_err(BridgeError::nats)?;
        let consumer = stream
            .get_or_create_consumer(
                &config.consumer,
                consumer::pull::Config {
                    durable_name: Some(config.consumer.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .map_err(BridgeError::nats)?;
        Ok(Mirror {
            consumer,
            log,
            config,
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

    /// Appends every event the stream holds that the local log does not,
    /// until a fetch finds nothing new. Returns how many it appended.
    pub async fn mirror_available(&mut self) -> Result<u64, BridgeError> {
        let mut appended = 0;
        loop {
            let mut messages = self
                .consumer
                .fetch()
                .max_messages(self.config.batch)
                .messages()
                .await
                .map_err(BridgeError::nats)?;
            let mut fetched = 0;
            while let Some(message) = messages.next().await {
                let message = message.map_err(BridgeError::nats)?;
                fetched += 1;
                appended += u64::from(self.apply(&message)?);
                message.ack().await.map_err(BridgeError::nats)?;
            }
            if fetched == 0 {
                return Ok(appended);
            }
        }
    }

    /// Appends the event of `message` unless the local log has it; whether
    /// it appended.
    fn apply(&self, message: &jetstream::Message) -> Result<bool, BridgeError> {
        let sequence = message.info().map_or(0, |i| i.stream_sequence);
        let bad = |reason: String| BridgeError::BadMessage { sequence, reason };
        let headers = message
            .headers
            .as_ref()
            .ok_or_else(|| bad("no headers".into()))?;
        let r = headers::decode(headers).map_err(|e| bad(e.0))?;
        if r.output.1 != 1 {
            return Err(bad("one of several outputs of an upcast event".into()));
        }
        if self
            .log
            .stream_version(&r.stream)
            .is_some_and(|v| v >= r.version)
        {
            return Ok(false);
        }
        let expected = match r.version.checked_sub(1) {
            None => ExpectedVersion::NoStream,
            Some(previous) => ExpectedVersion::Exact(previous),
        };
        let mut event = EventData::new(r.event_type, message.payload.clone())
            .with_metadata(r.metadata)
            .with_schema_version(r.schema_version);
        if let Some(id) = r.id {
            event = event.with_id(id);
        }
        self.log.append(&r.stream, expected, &[event])?;
        Ok(true)
    }
}
