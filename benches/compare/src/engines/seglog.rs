//! seglog itself, through its public API only.

use std::path::Path;

use bytes::Bytes;
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};

use super::{Engine, Result, Store, StreamRef, Tally};

/// The `seglog` engine.
pub struct Seglog;

impl Engine for Seglog {
    fn name(&self) -> &'static str {
        "seglog"
    }
    fn setup(&self) -> String {
        "Options::new() (64 MiB segments, fallocate); no-fsync lanes: Durability::None + Log::sync at \
         the end; durable lane: Durability::Sync (group commit); ExpectedVersion::Any (peers check \
         nothing either); W1 one append per event, W2 one append of 100 events; W4 Log::replay \
         (borrowed) and read_all (owned); W5 and W7 reads Log::replay_stream (borrowed)"
            .to_string()
    }
    fn scans_for_streams(&self) -> bool {
        false
    }
    fn open(&self, dir: &Path, durable: bool) -> Result<Box<dyn Store>> {
        let durability = if durable {
            Durability::Sync
        } else {
            Durability::None
        };
        let log = Options::new().durability(durability).open(dir)?;
        Ok(Box::new(SeglogStore { log }))
    }
}

/// An open seglog log.
struct SeglogStore {
    log: Log,
}

/// The event type: short, like a real one would be after a type registry.
const EVENT_TYPE: &str = "e";

impl Store for SeglogStore {
    fn append(&self, stream: StreamRef<'_>, _version: u64, payload: &'static [u8]) -> Result<()> {
        // A `Bytes` over the static pool: no copy, as a caller holding
        // `Bytes` would append.
        let event = EventData::new(EVENT_TYPE, Bytes::from_static(payload));
        self.log.append(
            stream.name,
            ExpectedVersion::Any,
            std::slice::from_ref(&event),
        )?;
        Ok(())
    }

    fn append_batch(
        &self,
        stream: StreamRef<'_>,
        _first_version: u64,
        payloads: &[&'static [u8]],
    ) -> Result<()> {
        let events: Vec<EventData> = payloads
            .iter()
            .map(|p| EventData::new(EVENT_TYPE, Bytes::from_static(p)))
            .collect();
        self.log
            .append(stream.name, ExpectedVersion::Any, &events)?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(self.log.sync()?)
    }

    fn replay(&self) -> Result<Tally> {
        let mut tally = Tally::default();
        self.log.replay(Position::START, |e| {
            tally.add(e.payload());
        })?;
        Ok(tally)
    }

    fn replay_owned(&self) -> Option<Result<Tally>> {
        let run = || -> Result<Tally> {
            let mut tally = Tally::default();
            for e in self.log.read_all(Position::START)? {
                tally.add(e?.payload());
            }
            Ok(tally)
        };
        Some(run())
    }

    fn read_stream(&self, stream: StreamRef<'_>) -> Result<Tally> {
        // Borrowed, as W4's replay: the peers hand out borrowed values too.
        let mut tally = Tally::default();
        self.log
            .replay_stream(stream.name, 0, |e| tally.add(e.payload()))?;
        Ok(tally)
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.log.close()?)
    }
}
