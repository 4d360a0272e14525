//! # seglog-nats
//!
//! A bridge between a seglog log and NATS JetStream, so that other
//! services on other machines receive a service's events, in order, each
//! once: the outbound [`Publisher`] (every committed event of a
//! [`seglog::Log`] or [`seglog::Reader`] into a JetStream stream, in log
//! order, each once, resuming from the stream's last message), the inbound
//! [`Mirror`] (those events appended into a local log, each once, across
//! restarts), each with a run loop ([`Publisher::run`], [`Mirror::run`]:
//! retries with backoff, progress and lag), the event headers
//! ([`headers`]) and the mapping of stream names to subject tokens
//! ([`subject`]). Topology, guarantees and failures: `docs/BRIDGE.md`; two
//! services restarted under it: `examples/two_services.rs`.
//!
//! Supported servers: nats-server 2.9 and later with JetStream (`-js`),
//! checked against Debian's 2.9.10 with `async-nats` 0.52.0 (pinned) by
//! `tests/server_compat.rs`: stream creation, publishes with headers,
//! `Nats-Msg-Id` deduplication, `Nats-Expected-Last-Sequence` and
//! `Nats-Expected-Last-Msg-Id`, reading a stream's last message, durable
//! and ordered pull consumers.
//!
//! The library `seglog` itself stays free of tokio and NATS: only this
//! crate depends on them.
//!
//! Stream names travel as subject tokens, reversibly:
//!
//! ```
//! use seglog_nats::subject;
//!
//! let token = subject::encode("order.42 €");
//! assert_eq!(token, "order~2E42~20~E2~82~AC");
//! assert_eq!(subject::decode(&token).unwrap(), "order.42 €");
//! ```
//!
//! One service publishes its log; another mirrors it into its own (each
//! in its own process, with a `nats-server -js` between them):
//!
//! ```no_run
//! use std::sync::Arc;
//! use seglog::{EventData, ExpectedVersion, Log};
//! use seglog_nats::{Mirror, MirrorConfig, Publisher, PublisherConfig};
//!
//! # async fn two_services() -> Result<(), Box<dyn std::error::Error>> {
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! // Orders: append, and publish what is appended.
//! let orders = Arc::new(Log::open("orders-log")?);
//! orders.append("order-1", ExpectedVersion::NoStream, &[EventData::new("Placed", "{}")])?;
//! let config = PublisherConfig {
//!     stream: "ORDERS".into(),
//!     prefix: "orders".into(),
//!     max_in_flight: 256,
//! };
//! let mut publisher = Publisher::new(client.clone(), Arc::clone(&orders), config)?;
//! publisher.publish_available().await?;
//! // Billing: the orders' events in a log of its own.
//! let config = MirrorConfig {
//!     stream: "ORDERS".into(),
//!     consumer: "billing".into(),
//!     batch: 256,
//! };
//! let mut mirror = Mirror::new(client, Log::open("billing-log")?, config)?;
//! let stop = tokio::time::sleep(std::time::Duration::from_secs(60));
//! let progress = mirror.run(stop, |p| eprintln!("{p:?}")).await;
//! eprintln!("mirrored {} events", progress.mirrored);
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code, missing_docs)]

mod backoff;
mod error;
pub mod headers;
pub mod mirror;
mod names;
pub mod publish;
pub mod subject;
#[cfg(feature = "testing")]
pub mod testing;

pub use backoff::backoff;
pub use error::BridgeError;
pub use mirror::{Mirror, MirrorConfig, MirrorProgress};
pub use publish::{Progress, Publisher, PublisherConfig, Source};
