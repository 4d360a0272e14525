//! SQLite (bundled, through rusqlite) in WAL mode: one table with the global
//! position as rowid and a unique (stream, version) index.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, params};

use super::{Engine, Result, Store, StreamRef, Tally};

/// The `sqlite` engine.
pub struct Sqlite;

const INSERT: &str = "INSERT INTO events (stream, version, payload) VALUES (?1, ?2, ?3)";

impl Engine for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn setup(&self) -> String {
        "SQLite (rusqlite, bundled) journal_mode=WAL, events(position INTEGER PRIMARY KEY, stream \
         TEXT, version INTEGER, payload BLOB, UNIQUE(stream, version)), cached prepared INSERT; \
         no-fsync lanes: synchronous=OFF, one autocommit INSERT per append (W1), one transaction \
         per 100 (W2), wal_checkpoint(FULL) under synchronous=FULL at the end; durable lane: \
         synchronous=FULL, one commit per append; one connection behind a mutex (SQLite has one \
         writer anyway); W4 ORDER BY position; W5 indexed WHERE stream = ?"
            .to_string()
    }
    fn scans_for_streams(&self) -> bool {
        false
    }
    fn open(&self, dir: &Path, durable: bool) -> Result<Box<dyn Store>> {
        let conn = Connection::open(dir.join("events.sqlite"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                 position INTEGER PRIMARY KEY,
                 stream TEXT NOT NULL,
                 version INTEGER NOT NULL,
                 payload BLOB NOT NULL,
                 UNIQUE (stream, version))",
        )?;
        Ok(Box::new(SqliteStore {
            conn: Mutex::new(conn),
            durable,
        }))
    }
}

/// An open SQLite database.
struct SqliteStore {
    conn: Mutex<Connection>,
    durable: bool,
}

impl SqliteStore {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for SqliteStore {
    fn append(&self, stream: StreamRef<'_>, version: u64, payload: &'static [u8]) -> Result<()> {
        let conn = self.lock();
        let mut insert = conn.prepare_cached(INSERT)?;
        insert.execute(params![stream.name, version as i64, payload])?;
        Ok(())
    }

    fn append_batch(
        &self,
        stream: StreamRef<'_>,
        first_version: u64,
        payloads: &[&'static [u8]],
    ) -> Result<()> {
        let mut conn = self.lock();
        let txn = conn.transaction()?;
        {
            let mut insert = txn.prepare_cached(INSERT)?;
            for (v, p) in (first_version..).zip(payloads) {
                insert.execute(params![stream.name, v as i64, *p])?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let conn = self.lock();
        if !self.durable {
            // A checkpoint under synchronous=FULL syncs the WAL and the database file.
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))?;
            conn.pragma_update(None, "synchronous", "OFF")?;
        }
        Ok(())
    }

    fn replay(&self) -> Result<Tally> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT payload FROM events ORDER BY position")?;
        let mut rows = stmt.query([])?;
        let mut tally = Tally::default();
        while let Some(row) = rows.next()? {
            tally.add(row.get_ref(0)?.as_blob()?);
        }
        Ok(tally)
    }

    fn read_stream(&self, stream: StreamRef<'_>) -> Result<Tally> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached("SELECT payload FROM events WHERE stream = ?1 ORDER BY version")?;
        let mut rows = stmt.query([stream.name])?;
        let mut tally = Tally::default();
        while let Some(row) = rows.next()? {
            tally.add(row.get_ref(0)?.as_blob()?);
        }
        Ok(tally)
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.sync()?;
        let conn = self.conn.into_inner().unwrap_or_else(|p| p.into_inner());
        conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }
}
