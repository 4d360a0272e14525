//! okaywal 0.3 (a group-commit write-ahead log). Every `commit` fsyncs
//! (batched across concurrent writers); there is no unsynced commit. Its
//! only way to read a whole log back is recovery: reopening the WAL with a
//! `LogManager` that is handed every entry.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use okaywal::{
    Configuration, Entry, EntryId, LogManager, ReadChunkResult, SegmentReader, WriteAheadLog,
};

use super::{Engine, Result, Store, StreamRef, Tally, decode_record, encode_record};

/// The `okaywal` engine.
pub struct OkayWal;

/// Preallocated size of the segment. A 1 GiB preallocation made every
/// commit take ~0.5 s here, so a moderate size: the file grows past it.
const PREALLOCATE_BYTES: u32 = 16 << 20;

impl Engine for OkayWal {
    fn name(&self) -> &'static str {
        "okaywal"
    }
    fn setup(&self) -> String {
        "okaywal 0.3, Configuration::default_for(dir) with preallocate 16 MiB and checkpoint_after_bytes \
         = u64::MAX (a log keeps everything; its checkpoints would recycle data); one entry per \
         append (write_chunk of [stream u32][version u64][payload] + commit, which always fsyncs, \
         group-committed across threads), W2 one entry of 100 chunks; W1 is time-bounded because \
         of that fsync and W4-W6 read a data set written in entries of 100; replay = reopen with a \
         LogManager reading every chunk and checking its CRC; W5 must scan (via recovery)"
            .to_string()
    }
    fn always_syncs(&self) -> bool {
        true
    }
    fn scans_for_streams(&self) -> bool {
        true
    }
    fn open(&self, dir: &Path, _durable: bool) -> Result<Box<dyn Store>> {
        let (wal, _) = open_wal(dir, Visit::Skip)?;
        Ok(Box::new(OkayWalStore {
            dir: dir.to_path_buf(),
            wal: Mutex::new(Some(wal)),
        }))
    }
}

/// What recovery does with each entry.
#[derive(Debug, Clone, Copy)]
enum Visit {
    /// Nothing: what a plain open costs (okaywal still walks every entry).
    Skip,
    /// Read every chunk, check its CRC, tally the payloads of the stream
    /// with this id (or of all streams for `None`).
    Read(Option<u32>),
}

/// The `LogManager` used for every open. Recovery runs in the opening
/// thread; the tally comes back through the shared cell.
#[derive(Debug)]
struct Reader {
    visit: Visit,
    tally: Arc<Mutex<Result<Tally>>>,
}

impl Reader {
    fn read_entry(
        &self,
        entry: &mut Entry<'_>,
        filter: Option<u32>,
        tally: &mut Tally,
    ) -> io::Result<()> {
        loop {
            match entry.read_chunk()? {
                ReadChunkResult::Chunk(mut chunk) => {
                    let bytes = chunk.read_all()?;
                    if !chunk.check_crc()? {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "okaywal: bad chunk CRC",
                        ));
                    }
                    let (id, payload) = decode_record(&bytes)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                    if filter.is_none_or(|want| want == id) {
                        tally.add(payload);
                    }
                }
                ReadChunkResult::EndOfEntry | ReadChunkResult::AbortedEntry => return Ok(()),
            }
        }
    }
}

impl LogManager for Reader {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        if let Visit::Read(filter) = self.visit {
            let mut guard = self.tally.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(tally) = guard.as_mut() {
                self.read_entry(entry, filter, tally)?;
            }
        }
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: EntryId,
        _checkpointed_entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        // Never reached: checkpoint_after_bytes is u64::MAX.
        Ok(())
    }
}

/// Opens the WAL in `dir`, visiting every recovered entry as `visit` says.
fn open_wal(dir: &Path, visit: Visit) -> Result<(WriteAheadLog, Tally)> {
    let tally = Arc::new(Mutex::new(Ok(Tally::default())));
    let manager = Reader {
        visit,
        tally: Arc::clone(&tally),
    };
    let wal = Configuration::default_for(dir)
        .preallocate_bytes(PREALLOCATE_BYTES)
        .checkpoint_after_bytes(u64::MAX)
        .open(manager)?;
    let tally = std::mem::replace(
        &mut *tally.lock().unwrap_or_else(|p| p.into_inner()),
        Ok(Tally::default()),
    )?;
    Ok((wal, tally))
}

/// An open WAL. The handle sits in an `Option` so a read can shut it down
/// and reopen it (recovery is the reader).
struct OkayWalStore {
    dir: PathBuf,
    wal: Mutex<Option<WriteAheadLog>>,
}

impl OkayWalStore {
    fn lock(&self) -> MutexGuard<'_, Option<WriteAheadLog>> {
        self.wal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shuts the WAL down and reopens it, reading as `visit` says.
    fn reopen_reading(&self, visit: Visit) -> Result<Tally> {
        let mut slot = self.lock();
        if let Some(wal) = slot.take() {
            wal.shutdown()?;
        }
        let (wal, tally) = open_wal(&self.dir, visit)?;
        *slot = Some(wal);
        Ok(tally)
    }

    /// A clone of the handle, so writers do not hold the store's mutex
    /// across a commit (that would defeat okaywal's group commit).
    fn handle(&self) -> Result<WriteAheadLog> {
        self.lock()
            .clone()
            .ok_or_else(|| "okaywal: log is closed".into())
    }
}

impl Store for OkayWalStore {
    fn append(&self, stream: StreamRef<'_>, version: u64, payload: &'static [u8]) -> Result<()> {
        let wal = self.handle()?;
        let mut record = Vec::with_capacity(payload.len() + super::RECORD_HEADER);
        encode_record(&mut record, stream.id, version, payload);
        let mut entry = wal.begin_entry()?;
        entry.write_chunk(&record)?;
        entry.commit()?;
        Ok(())
    }

    fn append_batch(
        &self,
        stream: StreamRef<'_>,
        first_version: u64,
        payloads: &[&'static [u8]],
    ) -> Result<()> {
        let wal = self.handle()?;
        let mut record = Vec::new();
        let mut entry = wal.begin_entry()?;
        for (v, p) in (first_version..).zip(payloads) {
            encode_record(&mut record, stream.id, v, p);
            entry.write_chunk(&record)?;
        }
        entry.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        // Every commit was already synced.
        Ok(())
    }

    fn replay(&self) -> Result<Tally> {
        self.reopen_reading(Visit::Read(None))
    }

    fn read_stream(&self, stream: StreamRef<'_>) -> Result<Tally> {
        self.reopen_reading(Visit::Read(Some(stream.id)))
    }

    fn close(self: Box<Self>) -> Result<()> {
        if let Some(wal) = self.lock().take() {
            wal.shutdown()?;
        }
        Ok(())
    }
}
