//! The engines under comparison, behind one trait so every workload runs the
//! same code on each of them.

use std::path::Path;

pub mod commitlog;
pub mod fjall;
pub mod okaywal;
pub mod raw;
pub mod redb;
pub mod seglog;
pub mod sqlite;

/// Errors from any engine, boxed: the program only reports them.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result with the boxed [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// A stream as each engine wants it: engines keyed by name use `name`, the
/// framed logs (raw, okaywal, commitlog) store the numeric `id`.
#[derive(Debug, Clone, Copy)]
pub struct StreamRef<'a> {
    /// Numeric id, stored in the record by engines without a stream index.
    pub id: u32,
    /// Fixed-width name (`stream-0000042`), so a name is never a prefix of another.
    pub name: &'a str,
}

/// One engine: how it is configured and how to open a store over a directory.
pub trait Engine: Sync {
    /// Short name used in the table and on the command line.
    fn name(&self) -> &'static str;
    /// One line saying how the engine is set up, printed before the table.
    fn setup(&self) -> String;
    /// Whether the engine has a durable lane (an acknowledged append is on disk).
    fn has_durable_lane(&self) -> bool {
        true
    }
    /// Whether every append commit costs an fsync whatever the settings
    /// (okaywal): W1 then runs time-bounded and the read data set is written
    /// in batches instead.
    fn always_syncs(&self) -> bool {
        false
    }
    /// Whether reading one stream needs a scan of the whole log.
    fn scans_for_streams(&self) -> bool;
    /// Opens (or creates) a store in `dir`; `durable` selects the durable lane.
    fn open(&self, dir: &Path, durable: bool) -> Result<Box<dyn Store>>;
}

/// An open store. `Send + Sync` so the durable lane can share it between
/// threads; engines whose handle is not `Sync` keep it behind a mutex.
pub trait Store: Send + Sync {
    /// Appends one event (one acknowledged append). Payloads are `'static`
    /// (one leaked pool) so engines that take `Bytes` need not copy them.
    fn append(&self, stream: StreamRef<'_>, version: u64, payload: &'static [u8]) -> Result<()>;
    /// Appends `payloads` to one stream as one batch / transaction, versions
    /// from `first_version` on.
    fn append_batch(
        &self,
        stream: StreamRef<'_>,
        first_version: u64,
        payloads: &[&'static [u8]],
    ) -> Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&self) -> Result<()>;
    /// Reads every event in log order, touching each payload.
    fn replay(&self) -> Result<Tally>;
    /// A second replay flavour worth reporting (seglog's owned `read_all`).
    fn replay_owned(&self) -> Option<Result<Tally>> {
        None
    }
    /// Reads the events of one stream, oldest first.
    fn read_stream(&self, stream: StreamRef<'_>) -> Result<Tally>;
    /// Closes cleanly (what W6 reopens after).
    fn close(self: Box<Self>) -> Result<()>;
}

/// What a read saw. Every reader folds each payload in (length and last
/// byte) so no engine can skip the bytes, and the caller can check counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Events read.
    pub events: u64,
    /// Payload bytes read.
    pub payload_bytes: u64,
    /// Sum of each payload's last byte: forces a read of the payload.
    pub fold: u64,
}

impl Tally {
    /// Counts one event.
    pub fn add(&mut self, payload: &[u8]) {
        self.events += 1;
        self.payload_bytes += payload.len() as u64;
        self.fold = self
            .fold
            .wrapping_add(u64::from(payload.last().copied().unwrap_or(0)));
    }
}

/// Every engine, the baseline first.
pub fn all() -> Vec<Box<dyn Engine>> {
    vec![
        Box::new(raw::Raw),
        Box::new(seglog::Seglog),
        Box::new(okaywal::OkayWal),
        Box::new(fjall::Fjall),
        Box::new(redb::Redb),
        Box::new(sqlite::Sqlite),
        Box::new(commitlog::CommitLog),
    ]
}

/// Size of the record header shared by the framed engines: stream id (u32)
/// and version (u64), little endian.
pub const RECORD_HEADER: usize = 12;

/// Encodes `[stream id u32][version u64][payload]` into `out` (cleared first).
pub fn encode_record(out: &mut Vec<u8>, stream_id: u32, version: u64, payload: &[u8]) {
    out.clear();
    out.extend_from_slice(&stream_id.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(payload);
}

/// A record visitor for engines that read a stream by scanning the whole
/// log: tallies the payloads of stream `id`'s records.
pub fn tally_stream(id: u32, tally: &mut Tally) -> impl FnMut(&[u8]) -> Result<()> + '_ {
    move |record| {
        let (of, payload) = decode_record(record)?;
        if of == id {
            tally.add(payload);
        }
        Ok(())
    }
}

/// Splits a record made by [`encode_record`] into stream id and payload.
pub fn decode_record(record: &[u8]) -> Result<(u32, &[u8])> {
    if record.len() < RECORD_HEADER {
        return Err(format!(
            "record of {} bytes is shorter than its header",
            record.len()
        )
        .into());
    }
    let id = u32::from_le_bytes([record[0], record[1], record[2], record[3]]);
    Ok((id, &record[RECORD_HEADER..]))
}
