//! Applying the `$streams` events (`delete.rs`) to the view's deletion
//! state (`streams/deleted.rs`): at open, as a `Reader` follows, and
//! before retention writes what it knows into the `start` file.

use std::sync::Arc;

use crate::error::Result;
use crate::read::ReadStream;
use crate::system::{STREAMS_STREAM, TOMBSTONE_EVENT, TRUNCATE_EVENT, decode_deletion};
use crate::view::LogView;

pub(crate) fn lock(view: &LogView) -> std::sync::MutexGuard<'_, u64> {
    view.deleted
        .applied
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Applies the `$streams` events `view` has not applied yet: at open, and
/// as a `Reader` follows. An event naming a stream the registry does not
/// hold (never the case for the engine's own) is skipped with a warning.
pub(crate) fn refresh(view: &Arc<LogView>) -> Result<()> {
    let mut applied = lock(view);
    let Some((id, head)) = view.stream_head(STREAMS_STREAM) else {
        return Ok(());
    };
    let from = (*applied).max(view.log_start().first_version(id));
    if from > head.last_version {
        return Ok(());
    }
    let read = ReadStream::new(Arc::clone(view), Some((id, head)), from, false)?.stored_only();
    for event in read {
        let event = event?;
        *applied = event.version() + 1;
        let Some((before, stream)) = decode_deletion(event.payload()) else {
            log::warn!(
                "seglog: unreadable {STREAMS_STREAM} event at {}",
                event.position()
            );
            continue;
        };
        let Some((target, _)) = view.stream_head(stream) else {
            log::warn!("seglog: {STREAMS_STREAM} names an unknown stream {stream:?}");
            continue;
        };
        match event.event_type() {
            TRUNCATE_EVENT => view
                .deleted
                .update(target, |d| d.before = d.before.max(before)),
            TOMBSTONE_EVENT => view.deleted.update(target, |d| d.tombstone = true),
            other => log::warn!("seglog: unknown {STREAMS_STREAM} event type {other:?}"),
        }
    }
    Ok(())
}
