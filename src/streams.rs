//! The stream registry: names interned to 32-bit ids, each stream's head
//! (last version, last frame) for expected-version checks and back-links,
//! and its sparse index: one entry per frame that holds a multiple of the
//! index interval `K` as a version (counting from `K`: version 0 alone marks
//! nothing, a stream's first frame is where its back-links end). An entry
//! names its frame's first version, so a creating batch longer than `K`
//! yields an entry at version 0.
//!
//! Memory per stream: the name (one `Arc<str>` in the lock-free id -> name
//! table that readers use), 8 bytes plus a control byte in the name -> id
//! hash table (an id and its name's 32-bit hash, not a second copy of the
//! name), and a
//! 16-byte head plus a 4-byte sparse-list slot; streams longer than `K`
//! events add a list of 16-byte entries.

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

/// A sparse index entry: the frame at log offset `frame` starts at `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) version: u64,
    pub(crate) frame: u64,
}

/// What recording a frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) id: u32,
    pub(crate) head: Head,
    /// The sparse entry the frame added, if it holds a multiple of `K`.
    pub(crate) entry: Option<IndexEntry>,
}

/// Why a stream could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// The name is registered already.
    Duplicate,
    /// The log holds the most streams it can.
    Full,
}

/// A name's hash as the table uses it: 32 bits, kept in the high half of
/// each slot and spread over both halves of the value the table sees.
fn name_hash(hasher: &DefaultHashBuilder, name: &str) -> u64 {
    let h = hasher.hash_one(name) >> 32;
    (h << 32) | h
}

fn slot_hash(slot: u64) -> u64 {
    let h = slot >> 32;
    (h << 32) | h
}

fn slot_id(slot: u64) -> u32 {
    (slot & u64::from(u32::MAX)) as u32
}

/// Whether `slot` holds `name` (whose hash is `hash`): hashes first, then
/// the name itself.
fn matches(names: &Names, slot: u64, hash: u64, name: &str) -> bool {
    slot >> 32 == hash >> 32
        && names
            .get(slot_id(slot) as usize)
            .is_some_and(|n| &**n == name)
}

/// No sparse list yet.
const NO_LIST: u32 = u32::MAX;

/// Names by id, readable by any thread without a lock.
pub(crate) type Names = boxcar::Vec<Arc<str>>;

/// Name -> id, heads and sparse indexes; owned by whoever holds the tail.
#[derive(Debug)]
pub(crate) struct Streams {
    /// Each slot packs a stream's id (low 32 bits) with the 32-bit hash of
    /// its name (high), so growing the table rehashes without reading a
    /// single name, and a probe compares hashes before names.
    ids: HashTable<u64>,
    heads: Vec<Head>,
    /// Per stream: index into `lists`, or [`NO_LIST`].
    list_of: Vec<u32>,
    lists: Vec<Vec<IndexEntry>>,
    hasher: DefaultHashBuilder,
    interval: u64,
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
    /// An empty registry indexing every `interval` versions (at least 1).
    pub(crate) fn new(interval: u64) -> Self {
        Streams {
            ids: HashTable::new(),
            heads: Vec::new(),
            list_of: Vec::new(),
            lists: Vec::new(),
            hasher: DefaultHashBuilder::default(),
            interval: interval.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heads.len()
    }

    /// The id of `name`, if the stream exists.
    pub(crate) fn lookup(&self, names: &Names, name: &str) -> Option<u32> {
        let hash = name_hash(&self.hasher, name);
        self.ids
            .find(hash, |&slot| matches(names, slot, hash, name))
            .map(|&slot| slot_id(slot))
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

    /// Makes room for `additional` more streams (loading an index file).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.ids.reserve(additional, |&slot| slot_hash(slot));
        self.heads.reserve(additional);
        self.list_of.reserve(additional);
    }

    /// Registers a new stream and returns its id, in one probe of the table.
    pub(crate) fn insert(
        &mut self,
        names: &Names,
        name: &str,
        head: Head,
    ) -> Result<u32, InsertError> {
        let id = u32::try_from(self.heads.len()).map_err(|_| InsertError::Full)?;
        if u64::from(id) >= limits::MAX_STREAMS {
            return Err(InsertError::Full);
        }
        let hash = name_hash(&self.hasher, name);
        let entry = self.ids.entry(
            hash,
            |&slot| matches(names, slot, hash, name),
            |&slot| slot_hash(slot),
        );
        let hashbrown::hash_table::Entry::Vacant(vacant) = entry else {
            return Err(InsertError::Duplicate);
        };
        let pushed = names.push(Arc::from(name));
        assert_eq!(pushed, id as usize, "names and heads out of step");
        vacant.insert((hash << 32) | u64::from(id));
        self.heads.push(head);
        self.list_of.push(NO_LIST);
        Ok(id)
    }

    /// Overwrites a stream's head (loading an index file).
    pub(crate) fn set_head(&mut self, id: u32, head: Head) {
        if let Some(h) = self.heads.get_mut(id as usize) {
            *h = head;
        }
    }

    /// Appends a sparse entry to a stream's list (loading an index file).
    pub(crate) fn push_entry(&mut self, id: u32, entry: IndexEntry) {
        let Some(list) = self.list_of.get_mut(id as usize) else {
            return;
        };
        if *list == NO_LIST {
            *list = self.lists.len() as u32;
            self.lists.push(Vec::new());
        }
        if let Some(entries) = self.lists.get_mut(*list as usize) {
            debug_assert!(entries.last().is_none_or(|e| e.version < entry.version));
            entries.push(entry);
        }
    }

    /// Records a frame of stream `id` holding `first..=last` at log offset
    /// `frame`: the new head, and a sparse entry when the frame holds a
    /// multiple of the interval.
    pub(crate) fn record(&mut self, id: u32, first: u64, last: u64, frame: u64) -> Recorded {
        let head = Head {
            last_version: last,
            last_frame: frame,
        };
        self.set_head(id, head);
        let boundary = first.div_ceil(self.interval).max(1) * self.interval;
        let entry = (boundary <= last).then_some(IndexEntry {
            version: first,
            frame,
        });
        if let Some(entry) = entry {
            self.push_entry(id, entry);
        }
        Recorded { id, head, entry }
    }

    /// The sparse entries of stream `id`, oldest first.
    pub(crate) fn entries(&self, id: u32) -> &[IndexEntry] {
        self.list_of
            .get(id as usize)
            .and_then(|&l| self.lists.get(l as usize))
            .map_or(&[], Vec::as_slice)
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
    ) -> Result<Recorded, ApplyError> {
        let first = frame.first_version;
        let last = first + u64::from(frame.event_count) - 1;
        let expected_id = self.heads.len() as u32;
        if let Some(name) = frame.defines {
            if frame.stream_id != expected_id {
                return Err(ApplyError::DefinitionOutOfOrder {
                    id: frame.stream_id,
                    expected: expected_id,
                });
            }
            if first != 0 && !lenient {
                return Err(ApplyError::VersionGap {
                    expected: 0,
                    found: first,
                });
            }
            let head = Head {
                last_version: last,
                last_frame: at,
            };
            let id = self.insert(names, name, head).map_err(|e| match e {
                InsertError::Duplicate => ApplyError::DuplicateName,
                InsertError::Full => ApplyError::UnknownStream(frame.stream_id),
            })?;
            return Ok(self.record(id, first, last, at));
        }
        if lenient {
            // Frames whose definition was quarantined keep their events
            // readable under a placeholder name.
            while (self.heads.len() as u32) <= frame.stream_id {
                let placeholder = format!("$lost-stream-{}", self.heads.len());
                let head = Head {
                    last_version: 0,
                    last_frame: NO_PREV_FRAME,
                };
                if self.insert(names, &placeholder, head).is_err() {
                    return Err(ApplyError::UnknownStream(frame.stream_id));
                }
            }
        }
        let Some(prev) = self.head(frame.stream_id) else {
            return Err(ApplyError::UnknownStream(frame.stream_id));
        };
        if !lenient && first != prev.last_version + 1 {
            return Err(ApplyError::VersionGap {
                expected: prev.last_version + 1,
                found: first,
            });
        }
        Ok(self.record(frame.stream_id, first, last, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_and_heads() {
        let names = Names::new();
        let mut s = Streams::new(32);
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

#[cfg(test)]
mod index_tests {
    use super::*;

    #[test]
    fn entries_mark_frames_holding_multiples_of_the_interval() {
        let names = Names::new();
        let mut s = Streams::new(4);
        let head = Head {
            last_version: 2,
            last_frame: 0,
        };
        let id = s.insert(&names, "s", head).unwrap();
        // Frames: 0..=2 (no entry: version 0 never counts), 3..=5 (holds 4),
        // 6..=6, 7..=12 (holds 8 and 12: one entry), 13..=15.
        let frames = [(3, 5, 100), (6, 6, 200), (7, 12, 300), (13, 15, 400)];
        let added: Vec<_> = frames
            .iter()
            .map(|&(f, l, at)| s.record(id, f, l, at).entry)
            .collect();
        assert_eq!(
            added,
            vec![
                Some(IndexEntry {
                    version: 3,
                    frame: 100
                }),
                None,
                Some(IndexEntry {
                    version: 7,
                    frame: 300
                }),
                None,
            ]
        );
        assert_eq!(s.entries(id).len(), 2);
        assert_eq!(s.head(id).unwrap().last_version, 15);
        assert!(s.entries(id + 1).is_empty());
    }
}
