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

pub(crate) mod export;
mod line;
