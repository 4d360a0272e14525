//! fjall 3 (an LSM tree): one keyspace keyed by stream name + big-endian
//! version, so a stream is one contiguous key range.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::{Engine, Result, Store, StreamRef, Tally};

/// The `fjall` engine.
pub struct Fjall;

impl Engine for Fjall {
    fn name(&self) -> &'static str {
        "fjall"
    }
    fn setup(&self) -> String {
        "fjall 3, default builder (journal flushed to the OS per write), one keyspace, key = stream \
         name + u64 BE version; no-fsync lanes: Keyspace::insert / OwnedWriteBatch then one \
         persist(SyncAll) at the end; durable lane: insert + Database::persist(SyncAll) per append \
         (batch.durability(Some(SyncAll)) for batches); W4 replay = full key-order iteration (not \
         commit order); W5 prefix scan"
            .to_string()
    }
    fn scans_for_streams(&self) -> bool {
        false
    }
    fn open(&self, dir: &Path, durable: bool) -> Result<Box<dyn Store>> {
        let db = Database::builder(dir).open()?;
        let events = db.keyspace("events", KeyspaceCreateOptions::default)?;
        Ok(Box::new(FjallStore {
            db,
            events,
            durable,
        }))
    }
}

/// An open fjall database.
struct FjallStore {
    db: Database,
    events: Keyspace,
    durable: bool,
}

/// Stream name then big-endian version: lexicographic key order is
/// (stream, version) order.
fn key(stream: &str, version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 8);
    k.extend_from_slice(stream.as_bytes());
    k.extend_from_slice(&version.to_be_bytes());
    k
}

impl Store for FjallStore {
    fn append(&self, stream: StreamRef<'_>, version: u64, payload: &'static [u8]) -> Result<()> {
        self.events.insert(key(stream.name, version), payload)?;
        if self.durable {
            self.db.persist(PersistMode::SyncAll)?;
        }
        Ok(())
    }

    fn append_batch(
        &self,
        stream: StreamRef<'_>,
        first_version: u64,
        payloads: &[&'static [u8]],
    ) -> Result<()> {
        let mut batch = self.db.batch();
        if self.durable {
            batch = batch.durability(Some(PersistMode::SyncAll));
        }
        for (v, p) in (first_version..).zip(payloads) {
            batch.insert(&self.events, key(stream.name, v), *p);
        }
        batch.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }

    fn replay(&self) -> Result<Tally> {
        let mut tally = Tally::default();
        for guard in self.events.iter() {
            tally.add(&guard.value()?);
        }
        Ok(tally)
    }

    fn read_stream(&self, stream: StreamRef<'_>) -> Result<Tally> {
        let mut tally = Tally::default();
        for guard in self.events.prefix(stream.name.as_bytes()) {
            tally.add(&guard.value()?);
        }
        Ok(tally)
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self);
        Ok(())
    }
}
