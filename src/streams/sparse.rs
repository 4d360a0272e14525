//! Each stream's sparse index entries, in version order: runs of an index
//! file's entries, used in place from its mapping, and runs of entries
//! recorded since open (scanned segments, new appends).
//!
//! Memory per stream with entries: a 4-byte slot, a list of two vectors
//! (48 bytes), 24 bytes per run (one per index file the stream has entries
//! in, or per stretch recorded between files) and 16 bytes per recorded
//! entry. A file's entries stay in the page cache, shared with every
//! process that maps the file.

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

#[derive(Debug, Default)]
struct List {
    runs: Vec<Run>,
    recorded: Vec<IndexEntry>,
}

/// The sparse entries of every stream.
#[derive(Debug, Default)]
pub(crate) struct Sparse {
    /// Per stream id: index into `lists`, or [`NO_LIST`].
    list_of: Vec<u32>,
    lists: Vec<List>,
    files: Vec<Arc<FileEntries>>,
}

impl Sparse {
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.list_of.reserve(additional);
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

    fn list_mut(&mut self, id: u32) -> Option<&mut List> {
        let slot = self.list_of.get_mut(id as usize)?;
        if *slot == NO_LIST {
            *slot = self.lists.len() as u32;
            self.lists.push(List::default());
        }
        self.lists.get_mut(*slot as usize)
    }

    fn list(&self, id: u32) -> Option<&List> {
        let slot = *self.list_of.get(id as usize)?;
        self.lists.get(slot as usize)
    }

    /// Adds a stream's run of entries of file `source`, later than every
    /// entry the stream has.
    pub(crate) fn add_file_run(&mut self, source: u32, run: FileRun) {
        debug_assert!((source as usize) < self.files.len() && run.len > 0);
        let Some(list) = self.list_mut(run.id) else {
            return;
        };
        debug_assert!(
            list.runs
                .last()
                .is_none_or(|r| r.first_version < run.first_version)
        );
        list.runs.push(Run {
            first_version: run.first_version,
            source,
            start: run.start,
            len: run.len,
        });
    }

    /// Adds an entry recorded from a frame, later than every entry the
    /// stream has.
    pub(crate) fn push(&mut self, id: u32, entry: IndexEntry) {
        let Some(list) = self.list_mut(id) else {
            return;
        };
        debug_assert!(
            list.recorded
                .last()
                .is_none_or(|e| e.version < entry.version)
        );
        let at = list.recorded.len() as u32;
        list.recorded.push(entry);
        match list.runs.last_mut() {
            Some(run) if run.source == RECORDED && run.start + run.len == at => run.len += 1,
            _ => list.runs.push(Run {
                first_version: entry.version,
                source: RECORDED,
                start: at,
                len: 1,
            }),
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
        let from = list
            .runs
            .partition_point(|r| r.first_version <= version)
            .saturating_sub(1);
        for run in &list.runs[from..] {
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
        for run in list.runs.iter().filter(|r| self.usable(r)) {
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
    }
}
