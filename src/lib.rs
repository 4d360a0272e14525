//! # seglog
//!
//! An embedded, append-only event log for event sourcing. Events are kept in
//! order, immutable and checksummed, in fixed-size, preallocated,
//! memory-mapped segment files; each append is one CRC-framed batch, made
//! durable by group commit (one sync for every append waiting on it);
//! reads replay the global log straight from the mappings.
//!
//! ```
//! use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};
//!
//! # fn main() -> seglog::Result<()> {
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let log = Options::new()
//!     .segment_size(8 << 20)
//!     .durability(Durability::Sync)
//!     .open(dir.path())?;
//!
//! let placed = EventData::new("OrderPlaced", &b"{\"total\":42}"[..]).with_metadata(&b"{}"[..]);
//! let r = log.append("order-42", ExpectedVersion::NoStream, &[placed])?;
//! assert_eq!((r.first_version, r.last_version), (0, 0));
//!
//! let paid = EventData::new("OrderPaid", &b"{}"[..]).with_schema_version(2);
//! log.append("order-42", ExpectedVersion::Exact(0), &[paid])?;
//! assert_eq!(log.stream_version("order-42"), Some(1));
//!
//! // A stale expected version is refused and writes nothing.
//! let retry = log.append("order-42", ExpectedVersion::Exact(0), &[EventData::new("OrderPaid", &b""[..])]);
//! assert!(matches!(retry, Err(seglog::Error::WrongExpectedVersion { actual: Some(1), .. })));
//!
//! let mut types = Vec::new();
//! for e in log.read_all(Position::START)? {
//!     let e = e?;
//!     types.push((e.stream().to_string(), e.version(), e.event_type().to_string()));
//! }
//! assert_eq!(types[1], ("order-42".to_string(), 1, "OrderPaid".to_string()));
//! log.close()?;
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code, missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(clippy::undocumented_unsafe_blocks)]

mod append;
mod audit;
mod chain;
mod commit;
mod consumer;
mod delete;
mod error;
mod event;
mod forget;
mod frame;
mod history;
// Test scaffolding (the `testing` feature): never in an embedder's build.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
mod index;
pub mod inspect;
mod layout;
pub mod limits;
mod log;
mod options;
mod position;
mod prefetch;
mod quarantine;
mod read;
mod reader;
mod recovery;
mod retention;
mod segment;
mod shred;
mod snapshot;
mod start;
mod storage;
mod streams;
mod subscribe;
mod system;
#[cfg(test)]
mod test_support;
mod upcast;
mod verify;
mod view;
mod walk;
mod watch;

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use crate::chain::{Digest, SignedDigest};
pub use crate::consumer::Consumer;
pub use crate::error::{Error, Result};
pub use crate::event::{
    AppendRequest, AppendResult, EventData, EventRef, EventType, ExpectedVersion, PayloadState,
    RecordedEvent,
};
pub use crate::log::Log;
pub use crate::options::{Clock, Durability, Options, Preallocate};
pub use crate::position::Position;
pub use crate::quarantine::Quarantined;
pub use crate::read::{AsOf, ReadAll, ReadStream};
pub use crate::reader::Reader;
pub use crate::retention::Retained;
pub use crate::shred::MasterKey;
pub use crate::snapshot::{Rebuilt, Snapshot};
pub use crate::subscribe::{Filter, Subscription};
pub use crate::system::{
    AUDIT_STREAM, FORGET_EVENT, RETENTION_EVENT, STREAMS_STREAM, TOMBSTONE_EVENT, TRUNCATE_EVENT,
};
pub use crate::upcast::{UpcastInput, UpcastResult, Upcasted, Upcasters, UpcastersBuilder};
pub use crate::verify::{Failure, FailureKind, Verification, verify, verify_with_progress};
/// The Ed25519 crate this one signs digests with ([`Digest::sign`]), so
/// callers name the same key types.
pub use ed25519_dalek;
