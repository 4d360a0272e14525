//! commitlog 0.2 (a Kafka-style segmented log). Its `flush` writes buffers
//! to the OS and msyncs the index but never fsyncs the segment file, so it
//! runs in the no-fsync lanes only, and the one sync those lanes end with
//! (W1, W2) is its `flush` followed by an fsync of every file it wrote,
//! done here: what a user would add to have the data on disk, and what
//! every other engine's sync costs.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{LogOptions, ReadLimit};

use super::{Engine, Result, Store, StreamRef, Tally, decode_record, encode_record, tally_stream};

/// The `commitlog` engine.
pub struct CommitLog;

impl Engine for CommitLog {
    fn name(&self) -> &'static str {
        "commitlog"
    }
    fn setup(&self) -> String {
        "commitlog 0.2, LogOptions defaults (1 GB segments), message = [stream u32][version u64]\
         [payload]; W1 append_msg per event, W2 one MessageBuf of 100 per append; sync = \
         CommitLog::flush (which does NOT fsync the segment: no durable lane) followed by \
         File::sync_data of every file in its directory, done by this program; replay = read() in \
         1 MiB slices, verify_hash per message; W5 must scan"
            .to_string()
    }
    fn has_durable_lane(&self) -> bool {
        false
    }
    fn scans_for_streams(&self) -> bool {
        true
    }
    fn open(&self, dir: &Path, durable: bool) -> Result<Box<dyn Store>> {
        if durable {
            return Err("commitlog has no durable lane (its flush does not fsync)".into());
        }
        let log = commitlog::CommitLog::new(LogOptions::new(dir))?;
        Ok(Box::new(CommitLogStore {
            dir: dir.to_path_buf(),
            log: Mutex::new(Inner {
                log,
                record: Vec::new(),
            }),
        }))
    }
}

/// The log and a reused encoding buffer, behind the store's mutex
/// (`CommitLog::append` takes `&mut self`).
struct Inner {
    log: commitlog::CommitLog,
    record: Vec<u8>,
}

/// An open commit log.
struct CommitLogStore {
    dir: PathBuf,
    log: Mutex<Inner>,
}

/// How much one `read` call returns at most.
const READ_BYTES: usize = 1 << 20;

impl CommitLogStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads every message in offset order, checking its hash.
    fn scan(&self, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        let inner = self.lock();
        let end = inner.log.next_offset();
        let mut offset = 0;
        let mut count = 0;
        while offset < end {
            let buf = inner.log.read(offset, ReadLimit::max_bytes(READ_BYTES))?;
            if buf.is_empty() {
                return Err(format!("commitlog: empty read at offset {offset} of {end}").into());
            }
            for m in buf.iter() {
                if !m.verify_hash() {
                    return Err(format!("commitlog: bad hash at offset {}", m.offset()).into());
                }
                f(m.payload())?;
                offset = m.offset() + 1;
                count += 1;
            }
        }
        Ok(count)
    }
}

impl Store for CommitLogStore {
    fn append(&self, stream: StreamRef<'_>, version: u64, payload: &'static [u8]) -> Result<()> {
        let inner = &mut *self.lock();
        encode_record(&mut inner.record, stream.id, version, payload);
        inner.log.append_msg(&inner.record)?;
        Ok(())
    }

    fn append_batch(
        &self,
        stream: StreamRef<'_>,
        first_version: u64,
        payloads: &[&'static [u8]],
    ) -> Result<()> {
        let inner = &mut *self.lock();
        let mut buf = MessageBuf::default();
        for (v, p) in (first_version..).zip(payloads) {
            encode_record(&mut inner.record, stream.id, v, p);
            buf.push(&inner.record)
                .map_err(|e| format!("commitlog: {e:?}"))?;
        }
        inner.log.append(&mut buf)?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let inner = &mut *self.lock();
        inner.log.flush()?;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.is_file() {
                std::fs::File::open(&path)?.sync_data()?;
            }
        }
        Ok(())
    }

    fn replay(&self) -> Result<Tally> {
        let mut tally = Tally::default();
        self.scan(&mut |m| {
            tally.add(decode_record(m)?.1);
            Ok(())
        })?;
        Ok(tally)
    }

    fn read_stream(&self, stream: StreamRef<'_>) -> Result<Tally> {
        let mut tally = Tally::default();
        self.scan(&mut tally_stream(stream.id, &mut tally))?;
        Ok(tally)
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.sync()
    }
}
