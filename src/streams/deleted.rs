//! Which streams are truncated or deleted (docs/ARCHITECTURE.md, "Stream
//! deletion"): in memory, rebuilt from the `$streams` system stream
//! (`delete.rs`), consulted by every stream read and, for tombstones, by
//! the append's expected-version check. A log with no deletion pays one
//! atomic load per check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

/// What was done to one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deletion {
    /// Reads hide the versions below it (a soft delete; 0: none).
    pub(crate) before: u64,
    /// A tombstone is recorded: the stream is gone for reads and appends.
    pub(crate) tombstone: bool,
    /// A tombstone is being recorded: appends are refused already, so
    /// none can land after it.
    pub(crate) closing: bool,
}

impl Deletion {
    /// Whether appends to the stream are refused.
    pub(crate) fn refuses_appends(&self) -> bool {
        self.tombstone || self.closing
    }
}

/// Every stream's [`Deletion`], by stream id.
#[derive(Debug, Default)]
pub(crate) struct Deleted {
    any: AtomicBool,
    map: RwLock<HashMap<u32, Deletion>>,
    /// The next version of `$streams` to apply.
    pub(crate) applied: Mutex<u64>,
}

impl Deleted {
    /// Stream `id`'s deletion, if any.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<Deletion> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(&id).copied()
    }

    /// Every recorded deletion (a tombstone being recorded is not one yet),
    /// by stream id: what the `start` file keeps.
    pub(crate) fn recorded(&self) -> Vec<(u32, Deletion)> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(u32, Deletion)> = map
            .iter()
            .map(|(&id, d)| {
                (
                    id,
                    Deletion {
                        closing: false,
                        ..*d
                    },
                )
            })
            .filter(|(_, d)| d.tombstone || d.before > 0)
            .collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// Changes stream `id`'s deletion with `change`.
    pub(crate) fn update(&self, id: u32, change: impl FnOnce(&mut Deletion)) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        change(map.entry(id).or_default());
        self.any.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_accumulate_per_stream() {
        let deleted = Deleted::default();
        assert_eq!(deleted.get(3), None);
        deleted.update(3, |d| d.before = 5);
        deleted.update(3, |d| d.closing = true);
        let d = deleted.get(3).unwrap();
        assert_eq!(
            (d.before, d.refuses_appends(), d.tombstone),
            (5, true, false)
        );
        assert_eq!(deleted.get(4), None);
    }
}
