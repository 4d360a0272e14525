//! Moving events out of a log and into another: `seglog export` writes a
//! log's events as JSON lines (`line.rs`), `seglog import` appends such
//! lines into a log. The format is text so that people and other programs
//! can read, filter and write it; a round trip still reproduces each
//! event's content byte for byte, and stream versions are kept, so an
//! import is idempotent and resumable (`import.rs`), and the deletions
//! of streams travel with their events (`deletions.rs`).
//!
//! Export reads through a `Reader` (no lock, beside a live service);
//! import is the target's writer, so it needs the service stopped.

mod deletions;
pub(crate) mod export;
pub(crate) mod import;
mod line;

/// Whether `stream` is one of the engine's own streams, which only the
/// engine appends to: an import appends none of their events (it applies
/// the deletions of `$streams` again, `deletions.rs`).
fn is_system(stream: &str) -> bool {
    stream == seglog::AUDIT_STREAM || stream == seglog::STREAMS_STREAM
}
