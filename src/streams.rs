//! The stream registry: names interned to 32-bit ids, and each stream's head
//! (last version, last frame) for expected-version checks and back-links.
//!
//! Memory per stream: the name (one `Arc<str>` in the lock-free id -> name
//! table that readers use), 4 bytes plus a control byte in the name -> id
//! hash table (it stores only ids and hashes names through the table), and a
//! 16-byte head.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::frame::{EventsFrame, NO_PREV_FRAME};
use crate::limits;

/// A stream's state at the tail of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) last_version: u64,
    /// Log offset of the stream's last frame (the next frame's back-link).
    pub(crate) last_frame: u64,
}

/// Names by id, readable by any thread without a lock.
pub(crate) type Names = boxcar::Vec<Arc<str>>;

/// Name -> id and heads; owned by whoever holds the tail.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    ids: HashTable<u32>,
    heads: Vec<Head>,
    hasher: DefaultHashBuilder,
}

/// Why a frame cannot be applied to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApplyError {
    UnknownStream(u32),
    DefinitionOutOfOrder { id: u32, expected: u32 },
    VersionGap { expected: u64, found: u64 },
    DuplicateName,
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::UnknownStream(id) => write!(f, "frame refers to undefined stream id {id}"),
            ApplyError::DefinitionOutOfOrder { id, expected } => {
                write!(
                    f,
                    "stream definition with id {id} where {expected} was next"
                )
            }
            ApplyError::VersionGap { expected, found } => {
                write!(
                    f,
                    "stream version {found} follows where {expected} was expected"
                )
            }
            ApplyError::DuplicateName => write!(f, "stream name defined twice"),
        }
    }
}

impl Streams {
    pub(crate) fn len(&self) -> usize {
        self.heads.len()
    }

    /// The id of `name`, if the stream exists.
    pub(crate) fn lookup(&self, names: &Names, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.ids
            .find(hash, |&id| {
                names.get(id as usize).is_some_and(|n| &**n == name)
            })
            .copied()
    }

    pub(crate) fn head(&self, id: u32) -> Option<Head> {
        self.heads.get(id as usize).copied()
    }

    /// The last version of `name`, if any.
    pub(crate) fn version(&self, names: &Names, name: &str) -> Option<u64> {
        self.lookup(names, name)
            .and_then(|id| self.head(id))
            .map(|h| h.last_version)
    }

    /// Registers a new stream; `names` must not hold it yet. Returns its id,
    /// or `None` at the stream limit.
    pub(crate) fn insert(&mut self, names: &Names, name: &str, head: Head) -> Option<u32> {
        debug_assert!(self.lookup(names, name).is_none());
        let id = u32::try_from(self.heads.len()).ok()?;
        if u64::from(id) >= limits::MAX_STREAMS {
            return None;
        }
        let pushed = names.push(Arc::from(name));
        assert_eq!(pushed, id as usize, "names and heads out of step");
        let hasher = &self.hasher;
        self.ids.insert_unique(hasher.hash_one(name), id, |&other| {
            hasher.hash_one(names.get(other as usize).map_or("", |n| &**n))
        });
        self.heads.push(head);
        Some(id)
    }

    pub(crate) fn set_head(&mut self, id: u32, head: Head) {
        if let Some(h) = self.heads.get_mut(id as usize) {
            debug_assert!(head.last_version > h.last_version && head.last_frame > h.last_frame);
            *h = head;
        }
    }

    /// Applies a verified frame found at log offset `at` while rebuilding
    /// the registry from segments. `lenient` (repair) accepts version gaps
    /// and undefined ids left by quarantined frames.
    pub(crate) fn apply(
        &mut self,
        names: &Names,
        frame: &EventsFrame<'_>,
        at: u64,
        lenient: bool,
    ) -> Result<(), ApplyError> {
        let last_version = frame.first_version + u64::from(frame.event_count) - 1;
        let head = Head {
            last_version,
            last_frame: at,
        };
        let expected_id = self.heads.len() as u32;
        if let Some(name) = frame.defines {
            if frame.stream_id != expected_id {
                return Err(ApplyError::DefinitionOutOfOrder {
                    id: frame.stream_id,
                    expected: expected_id,
                });
            }
            if self.lookup(names, name).is_some() {
                return Err(ApplyError::DuplicateName);
            }
            if frame.first_version != 0 && !lenient {
                return Err(ApplyError::VersionGap {
                    expected: 0,
                    found: frame.first_version,
                });
            }
            self.insert(names, name, head)
                .ok_or(ApplyError::UnknownStream(frame.stream_id))?;
            return Ok(());
        }
        if lenient {
            // Frames whose definition was quarantined keep their events
            // readable under a placeholder name.
            while (self.heads.len() as u32) <= frame.stream_id {
                let placeholder = format!("$lost-stream-{}", self.heads.len());
                self.insert(
                    names,
                    &placeholder,
                    Head {
                        last_version: 0,
                        last_frame: NO_PREV_FRAME,
                    },
                );
            }
        }
        let Some(prev) = self.head(frame.stream_id) else {
            return Err(ApplyError::UnknownStream(frame.stream_id));
        };
        if !lenient && frame.first_version != prev.last_version + 1 {
            return Err(ApplyError::VersionGap {
                expected: prev.last_version + 1,
                found: frame.first_version,
            });
        }
        if let Some(h) = self.heads.get_mut(frame.stream_id as usize) {
            *h = head;
        }
        Ok(())
    }

    /// Heads in id order (for the checkpoint).
    pub(crate) fn heads(&self) -> &[Head] {
        &self.heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_and_heads() {
        let names = Names::new();
        let mut s = Streams::default();
        for i in 0..1000u64 {
            let id = s
                .insert(
                    &names,
                    &format!("order-{i}"),
                    Head {
                        last_version: 0,
                        last_frame: i * 8,
                    },
                )
                .unwrap();
            assert_eq!(u64::from(id), i);
        }
        assert_eq!(s.lookup(&names, "order-517"), Some(517));
        assert_eq!(s.lookup(&names, "order-1000"), None);
        s.set_head(
            517,
            Head {
                last_version: 4,
                last_frame: 1 << 20,
            },
        );
        assert_eq!(s.version(&names, "order-517"), Some(4));
        assert_eq!(&*names[517], "order-517");
    }
}
