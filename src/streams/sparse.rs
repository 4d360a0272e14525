//! Each stream's sparse index entries, in version order: runs of an index
//! file's entries, used in place from its mapping, and runs of entries
//! recorded since open (scanned segments, new appends).
//!
//! Every list's runs share one vector, each list's side by side with room
//! to grow: loading an index file adds a run to each of its streams, and a
//! vector per list was one allocation per stream at open (a sixth of the
//! instructions of reopening 1,000 streams, and a fifth of its page
//! faults). A list that outgrows its room moves to the end with twice as
//! much, so the slots it leaves behind are at most as many as those in use.
//!
//! Memory per stream with entries: a 4-byte slot, a list (40 bytes), 24
//! bytes per run slot (room for at least 4 runs: one per index file the
//! stream has entries in, or per stretch recorded between files) and 16
//! bytes per recorded entry. A file's entries stay in the page cache,
//! shared with every process that maps the file.

use std::sync::Arc;

use super::IndexEntry;
use crate::index::{FileEntries, FileRun};

/// No list yet.
const NO_LIST: u32 = u32::MAX;
/// A run's source: the list's recorded entries, not a file.
const RECORDED: u32 = u32::MAX;

/// `len` entries from `start` of a file (`source`) or of the list's
/// recorded entries; the first holds `first_version`.
#[derive(Debug, Clone, Copy)]
struct Run {
    first_version: u64,
    source: u32,
    start: u32,
    len: u32,
}

/// Room for this many runs in a new list.
const FIRST_ROOM: u32 = 4;

/// What fills a run slot not yet in use.
const NO_RUN: Run = Run {
    first_version: 0,
    source: RECORDED,
    start: 0,
    len: 0,
};

/// A stream's runs: `len` of them from `at` in [`Sparse::runs`], with room
/// for `room`.
#[derive(Debug, Default)]
struct List {
    at: usize,
    len: u32,
    room: u32,
    recorded: Vec<IndexEntry>,
}

/// The sparse entries of every stream.
#[derive(Debug, Default)]
pub(crate) struct Sparse {
    /// Per stream id: index into `lists`, or [`NO_LIST`].
    list_of: Vec<u32>,
    lists: Vec<List>,
    /// Every list's runs and room.
    runs: Vec<Run>,
    files: Vec<Arc<FileEntries>>,
}

impl Sparse {
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.list_of.reserve(additional);
    }

    /// Makes room for `lists` more lists, each with its first room for
    /// runs, so loading an index file grows neither vector run by run.
    pub(crate) fn reserve_lists(&mut self, lists: usize) {
        self.lists.reserve(lists);
        self.runs.reserve(lists * FIRST_ROOM as usize);
    }

    /// Makes room for one more stream, the next id.
    pub(crate) fn push_stream(&mut self) {
        self.list_of.push(NO_LIST);
    }

    /// Keeps an index file's entries for runs of them; returns their source.
    pub(crate) fn add_file(&mut self, file: Arc<FileEntries>) -> u32 {
        debug_assert!(self.files.len() < RECORDED as usize);
        self.files.push(file);
        (self.files.len() - 1) as u32
    }

    /// Stream `id`'s list, made if it has none.
    fn list_slot(&mut self, id: u32) -> Option<usize> {
        let slot = self.list_of.get_mut(id as usize)?;
        if *slot == NO_LIST {
            *slot = self.lists.len() as u32;
            self.lists.push(List::default());
        }
        Some(*slot as usize)
    }

    fn list(&self, id: u32) -> Option<&List> {
        let slot = *self.list_of.get(id as usize)?;
        self.lists.get(slot as usize)
    }

    fn runs_of(&self, list: &List) -> &[Run] {
        &self.runs[list.at..list.at + list.len as usize]
    }

    /// Appends `run` to list `slot`, moving the list to the end of the runs
    /// with twice the room if it has none left (growing in place if it is
    /// at the end already).
    fn push_run(&mut self, slot: usize, run: Run) {
        let list = &mut self.lists[slot];
        if list.len == list.room {
            let room = (list.room * 2).max(FIRST_ROOM);
            let end = list.at + list.room as usize;
            if list.room > 0 && end == self.runs.len() {
                self.runs.resize(list.at + room as usize, NO_RUN);
            } else {
                let at = self.runs.len();
                self.runs.extend_from_within(list.at..end);
                self.runs.resize(at + room as usize, NO_RUN);
                list.at = at;
            }
            list.room = room;
        }
        self.runs[list.at + list.len as usize] = run;
        list.len += 1;
        debug_assert!(list.at + list.room as usize <= self.runs.len());
    }

    /// Adds a stream's run of entries of file `source`, later than every
    /// entry the stream has.
    pub(crate) fn add_file_run(&mut self, source: u32, run: FileRun) {
        debug_assert!((source as usize) < self.files.len() && run.len > 0);
        let Some(slot) = self.list_slot(run.id) else {
            return;
        };
        debug_assert!(
            self.runs_of(&self.lists[slot])
                .last()
                .is_none_or(|r| r.first_version < run.first_version)
        );
        self.push_run(
            slot,
            Run {
                first_version: run.first_version,
                source,
                start: run.start,
                len: run.len,
            },
        );
    }

    /// Adds an entry recorded from a frame, later than every entry the
    /// stream has.
    pub(crate) fn push(&mut self, id: u32, entry: IndexEntry) {
        let Some(slot) = self.list_slot(id) else {
            return;
        };
        let list = &mut self.lists[slot];
        debug_assert!(
            list.recorded
                .last()
                .is_none_or(|e| e.version < entry.version)
        );
        let at = list.recorded.len() as u32;
        list.recorded.push(entry);
        let last = list.len.checked_sub(1).map(|i| list.at + i as usize);
        match last.map(|i| &mut self.runs[i]) {
            Some(run) if run.source == RECORDED && run.start + run.len == at => run.len += 1,
            _ => self.push_run(
                slot,
                Run {
                    first_version: entry.version,
                    source: RECORDED,
                    start: at,
                    len: 1,
                },
            ),
        }
    }

    fn entry(&self, list: &List, run: &Run, i: u32) -> IndexEntry {
        debug_assert!(i < run.len);
        let entry = match self.files.get(run.source as usize) {
            Some(file) => file.entry(run.start + i),
            None => list.recorded[(run.start + i) as usize],
        };
        debug_assert!(i > 0 || entry.version == run.first_version);
        entry
    }

    /// Whether a run's entries can be used: recorded ones always, a file's
    /// once they match their checksum.
    fn usable(&self, run: &Run) -> bool {
        self.files
            .get(run.source as usize)
            .is_none_or(|file| file.is_intact())
    }

    /// Calls `visit` on stream `id`'s entries above `version`, oldest first,
    /// while it returns true. A binary search over the runs by their first
    /// versions, then within the run; runs of a file that fails its
    /// checksum are passed over, so the answer is exact over the usable
    /// entries.
    fn visit_above(&self, id: u32, version: u64, mut visit: impl FnMut(IndexEntry) -> bool) {
        let Some(list) = self.list(id) else {
            return;
        };
        let runs = self.runs_of(list);
        let from = runs
            .partition_point(|r| r.first_version <= version)
            .saturating_sub(1);
        for run in &runs[from..] {
            if !self.usable(run) {
                continue;
            }
            let (mut lo, mut hi) = (0, run.len);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.entry(list, run, mid).version <= version {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            for i in lo..run.len {
                if !visit(self.entry(list, run, i)) {
                    return;
                }
            }
        }
    }

    /// Stream `id`'s first entry above `version`.
    pub(crate) fn entry_above(&self, id: u32, version: u64) -> Option<IndexEntry> {
        let mut found = None;
        self.visit_above(id, version, |e| {
            found = Some(e);
            false
        });
        found
    }

    /// Stream `id`'s first usable entry whose frame starts at or after log
    /// offset `frame`. Versions and frames grow together, so each run is
    /// searched by frame as it is by version; a run ending before `frame`
    /// is passed over on its last entry.
    pub(crate) fn entry_from_frame(&self, id: u32, frame: u64) -> Option<IndexEntry> {
        let list = self.list(id)?;
        for run in self.runs_of(list).iter().filter(|r| self.usable(r)) {
            let Some(last) = run.len.checked_sub(1) else {
                continue;
            };
            if self.entry(list, run, last).frame < frame {
                continue;
            }
            let (mut lo, mut hi) = (0, last);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.entry(list, run, mid).frame < frame {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            return Some(self.entry(list, run, lo));
        }
        None
    }

    /// Up to `n` of stream `id`'s entries above `version`, oldest first.
    pub(crate) fn entries_above(&self, id: u32, version: u64, n: usize) -> Vec<IndexEntry> {
        let mut found = Vec::with_capacity(n.min(64));
        if n > 0 {
            self.visit_above(id, version, |e| {
                found.push(e);
                found.len() < n
            });
        }
        found
    }

    /// Every usable entry of stream `id`, oldest first.
    #[cfg(test)]
    pub(crate) fn all(&self, id: u32) -> Vec<IndexEntry> {
        let mut all = Vec::new();
        let Some(list) = self.list(id) else {
            return all;
        };
        for run in self.runs_of(list).iter().filter(|r| self.usable(r)) {
            all.extend((0..run.len).map(|i| self.entry(list, run, i)));
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u64) -> IndexEntry {
        IndexEntry {
            version,
            frame: version * 1000 + 7,
        }
    }

    /// Streams whose runs interleave (each file adds one per stream, and
    /// entries are recorded between files, extending a stretch or starting
    /// one): every stream still reads back exactly its own entries.
    #[test]
    fn interleaved_runs_of_many_streams_read_back_exactly() {
        const STREAMS: u32 = 5;
        let mut sparse = Sparse::default();
        let mut model: Vec<Vec<IndexEntry>> = vec![Vec::new(); STREAMS as usize];
        for _ in 0..STREAMS {
            sparse.push_stream();
        }
        let mut next = vec![0u64; STREAMS as usize];
        for round in 0..12u32 {
            // A file holding a run of (round % 3 + 1) entries of every
            // stream but one, streams in id order as index files have them.
            let mut file = Vec::new();
            let mut runs = Vec::new();
            for id in (0..STREAMS).filter(|&id| id != round % STREAMS) {
                let len = round % 3 + 1;
                let first = next[id as usize];
                runs.push(FileRun {
                    id,
                    start: file.len() as u32,
                    len,
                    first_version: first,
                });
                for v in first..first + u64::from(len) {
                    file.push(entry(v));
                    model[id as usize].push(entry(v));
                }
                next[id as usize] += u64::from(len);
            }
            let source = sparse.add_file(Arc::new(FileEntries::of(&file)));
            for run in runs {
                sparse.add_file_run(source, run);
            }
            // Then entries recorded for some streams, a stretch each.
            for id in (0..STREAMS).filter(|id| (id + round) % 2 == 0) {
                for _ in 0..=round % 2 {
                    let v = next[id as usize];
                    sparse.push(id, entry(v));
                    model[id as usize].push(entry(v));
                    next[id as usize] += 1;
                }
            }
        }
        for id in 0..STREAMS {
            let want = &model[id as usize];
            assert_eq!(&sparse.all(id), want, "stream {id}");
            for (i, e) in want.iter().enumerate() {
                assert_eq!(
                    sparse.entry_above(id, e.version),
                    want.get(i + 1).copied(),
                    "stream {id} above {}",
                    e.version
                );
            }
            assert_eq!(sparse.entries_above(id, 0, 3), want[1..4].to_vec());
        }
        assert_eq!(sparse.all(STREAMS), Vec::new(), "no such stream");
        // Lists moved as they grew: what they left behind is no more than
        // the room they hold now.
        let room: usize = sparse.lists.iter().map(|l| l.room as usize).sum();
        assert!(sparse.lists.iter().all(|l| l.room > 8), "every list moved");
        assert!(sparse.runs.len() <= 2 * room, "{} slots", sparse.runs.len());
    }
}
