//! The baseline: a `BufWriter<File>` of length + CRC32-framed records, read
//! back through a `BufReader` that checks every CRC. No index, no recovery:
//! the least any log must do.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Engine, Result, Store, StreamRef, Tally, decode_record, encode_record, tally_stream};

/// Buffer size of both the writer and the reader.
const BUF_BYTES: usize = 64 << 10;

/// The `raw` engine.
pub struct Raw;

impl Engine for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }
    fn setup(&self) -> String {
        "BufWriter<File> (64 KiB) of [len u32][crc32 u32][stream u32][version u64][payload] records; \
         no-fsync lanes: one sync_data at the end; durable lane: write + sync_data per append under \
         one mutex (no group commit: threads take turns); replay: BufReader (64 KiB) checking every CRC"
            .to_string()
    }
    fn scans_for_streams(&self) -> bool {
        true
    }
    fn open(&self, dir: &Path, durable: bool) -> Result<Box<dyn Store>> {
        let path = dir.join("raw.log");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Box::new(RawStore {
            path,
            durable,
            writer: Mutex::new(Writer {
                out: BufWriter::with_capacity(BUF_BYTES, file),
                record: Vec::new(),
            }),
        }))
    }
}

/// The writer half, behind the store's mutex.
struct Writer {
    out: BufWriter<File>,
    /// Reused encoding buffer: no allocation per append.
    record: Vec<u8>,
}

impl Writer {
    fn write_record(&mut self, stream_id: u32, version: u64, payload: &[u8]) -> Result<()> {
        encode_record(&mut self.record, stream_id, version, payload);
        let crc = crc32fast::hash(&self.record);
        self.out
            .write_all(&(self.record.len() as u32).to_le_bytes())?;
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&self.record)?;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(())
    }
}

/// An open raw log.
struct RawStore {
    path: PathBuf,
    durable: bool,
    writer: Mutex<Writer>,
}

impl RawStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads every record, checking its CRC, and hands it to `f`.
    fn scan(&self, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64> {
        let mut reader = BufReader::with_capacity(BUF_BYTES, File::open(&self.path)?);
        let mut header = [0u8; 8];
        let mut record = Vec::new();
        let mut count = 0;
        loop {
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            record.resize(len, 0);
            reader.read_exact(&mut record)?;
            if crc32fast::hash(&record) != crc {
                return Err(format!("raw: CRC mismatch in record {count}").into());
            }
            f(&record)?;
            count += 1;
        }
        Ok(count)
    }
}

impl Store for RawStore {
    fn append(&self, stream: StreamRef<'_>, version: u64, payload: &'static [u8]) -> Result<()> {
        let mut w = self.lock();
        w.write_record(stream.id, version, payload)?;
        if self.durable {
            w.sync()?;
        }
        Ok(())
    }

    fn append_batch(
        &self,
        stream: StreamRef<'_>,
        first_version: u64,
        payloads: &[&'static [u8]],
    ) -> Result<()> {
        let mut w = self.lock();
        for (v, p) in (first_version..).zip(payloads) {
            w.write_record(stream.id, v, p)?;
        }
        if self.durable {
            w.sync()?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.lock().sync()
    }

    fn replay(&self) -> Result<Tally> {
        let mut tally = Tally::default();
        // Unwritten buffered records would be missed by the reader.
        self.lock().out.flush()?;
        self.scan(&mut |record| {
            tally.add(decode_record(record)?.1);
            Ok(())
        })?;
        Ok(tally)
    }

    fn read_stream(&self, stream: StreamRef<'_>) -> Result<Tally> {
        self.lock().out.flush()?;
        let mut tally = Tally::default();
        self.scan(&mut tally_stream(stream.id, &mut tally))?;
        Ok(tally)
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.lock().sync()
    }
}
