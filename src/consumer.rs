//! Durable named consumers: a subscription to `$all` that resumes after
//! the last position its owner acknowledged and checkpointed.
//!
//! Where the checkpoint lives, and why: in a small file of its own,
//! `consumer-{hex of the name}.ckpt` in the log's directory, replaced by
//! write, fsync, rename, fsync of the directory. Not in the log, because
//! - a checkpoint would then be an event: `read_all`, replays and positions
//!   would carry bookkeeping that is not the application's history;
//! - a consumer checkpoints at its own pace, and each checkpoint would
//!   otherwise queue behind (and add to) the writers' group commit;
//! - the file is replaced whole, so it never grows.
//!
//! The rename is atomic, so after a crash the file holds the old
//! checkpoint or the new one, never a torn mix; its checksum guards
//! against damage, and a damaged file is an error rather than a silent
//! restart from the beginning (which would deliver everything again) or a
//! skip.
//!
//! Delivery is at-least-once: events after the checkpoint are delivered
//! again after a crash, however many were acknowledged in memory. For
//! effectively-once, store [`RecordedEvent::next_position`](crate::RecordedEvent::next_position)
//! in the same transaction as the state it produced (in the consumer's own
//! database) and subscribe with
//! [`Log::subscribe_all`](crate::Log::subscribe_all) from it on restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::layout;
use crate::limits::MAX_CONSUMER_NAME_BYTES;
use crate::position::Position;
use crate::storage::{self, Storage};
use crate::subscribe::Subscription;
use crate::view::LogView;

const MAGIC: [u8; 8] = *b"SEGLOGCP";
const VERSION: u32 = 1;
/// Magic, version, name length and padding, log id, position.
const FIXED_BYTES: usize = 8 + 4 + 2 + 2 + 16 + 8;
const CRC_BYTES: usize = 4;
/// The largest checkpoint file: a longer one is refused unread.
const MAX_FILE_BYTES: u64 = (FIXED_BYTES + MAX_CONSUMER_NAME_BYTES + CRC_BYTES) as u64;

fn validate(name: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidConsumerName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_CONSUMER_NAME_BYTES {
        return Err(invalid("longer than MAX_CONSUMER_NAME_BYTES"));
    }
    Ok(())
}

fn encode(name: &str, log_id: u128, position: Position) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED_BYTES + name.len() + CRC_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    // `validate` bounds the name far below u16::MAX.
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    out.extend_from_slice(&log_id.to_le_bytes());
    out.extend_from_slice(&position.as_u64().to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The position in a checkpoint file's bytes, or why they are unusable.
fn decode(raw: &[u8], name: &str, log_id: u128) -> std::result::Result<Position, &'static str> {
    let body_len = raw.len().checked_sub(CRC_BYTES).ok_or("too short")?;
    let (body, crc) = raw.split_at(body_len);
    if body.len() < FIXED_BYTES {
        return Err("too short");
    }
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch");
    }
    let field = |at: usize, len: usize| body.get(at..at + len).ok_or("too short");
    if field(0, 8)? != MAGIC {
        return Err("not a checkpoint file");
    }
    let u64_at = |at| -> std::result::Result<u64, &'static str> {
        let b = field(at, 8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "too short")?))
    };
    let version = u32::from_le_bytes(field(8, 4)?.try_into().map_err(|_| "too short")?);
    if version != VERSION {
        return Err("unknown checkpoint version");
    }
    let name_len = usize::from(u16::from_le_bytes(
        field(12, 2)?.try_into().map_err(|_| "too short")?,
    ));
    let id = u128::from_le_bytes(field(16, 16)?.try_into().map_err(|_| "too short")?);
    if id != log_id {
        return Err("checkpoint of another log");
    }
    if field(FIXED_BYTES, name_len)? != name.as_bytes() || body.len() != FIXED_BYTES + name_len {
        return Err("checkpoint of another consumer");
    }
    Ok(Position::from_u64(u64_at(32)?))
}

/// A durable named consumer of `$all`, from [`Log::consumer`](crate::Log::consumer).
///
/// [`Consumer::subscribe`] resumes after the last acknowledged position;
/// [`Consumer::ack`] records progress in memory and
/// [`Consumer::checkpoint`] makes it durable, so that after a restart (or a
/// crash) the consumer resumes after its last checkpoint. One consumer of a
/// name may be open per log at a time.
pub struct Consumer {
    shared: Arc<LogView>,
    name: String,
    path: PathBuf,
    acked: Option<Position>,
    checkpointed: Option<Position>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("acked", &self.acked)
            .field("checkpointed", &self.checkpointed)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    pub(crate) fn open(shared: Arc<LogView>, name: &str) -> Result<Consumer> {
        validate(name)?;
        let path = shared.dir.join(layout::checkpoint_file(name));
        let checkpointed = read(&path, name, shared.log_id)?;
        let fresh = shared
            .consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        if !fresh {
            return Err(Error::ConsumerInUse {
                name: name.to_string(),
            });
        }
        Ok(Consumer {
            shared,
            name: name.to_string(),
            path,
            acked: checkpointed,
            checkpointed,
        })
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last position acknowledged, checkpointed or not.
    pub fn acked(&self) -> Option<Position> {
        self.acked
    }

    /// The last position made durable by [`Consumer::checkpoint`] (or found
    /// at open).
    pub fn checkpointed(&self) -> Option<Position> {
        self.checkpointed
    }

    /// `$all` from just after the acknowledged position (from the start if
    /// nothing was acknowledged), then live.
    pub fn subscribe(&self) -> Result<Subscription> {
        match self.acked {
            Some(position) => Subscription::all_after(Arc::clone(&self.shared), position),
            None => Subscription::all(Arc::clone(&self.shared), Position::START),
        }
    }

    /// Records that the event at `position` (its
    /// [`RecordedEvent::position`](crate::RecordedEvent::position), not its
    /// `next_position`) and everything before it is processed; the consumer
    /// resumes after it. In memory only; an older position than the last
    /// one acknowledged changes nothing. A position that names no event of
    /// the log is refused ([`Error::InvalidPosition`]), so a checkpoint
    /// always names one.
    pub fn ack(&mut self, position: Position) -> Result<()> {
        if !crate::read::is_event(&self.shared, position) {
            return Err(Error::InvalidPosition { position });
        }
        self.acked = self.acked.max(Some(position));
        Ok(())
    }

    /// Acknowledges `event` as processed, as [`Consumer::ack`] does its
    /// position, once it is the last output of its stored event: an
    /// upcaster that split a stored event into several hands them all out
    /// at its position, and acknowledging an earlier one would skip the
    /// rest after a restart. Earlier outputs acknowledge nothing new, so a
    /// consumer that stops between them gets them again (at least once).
    pub fn ack_event(&mut self, event: &RecordedEvent) -> Result<()> {
        if event.is_last_output() {
            self.ack(event.position())
        } else {
            Ok(())
        }
    }

    /// Moves the consumer, durably, to resume after `to` (an event's
    /// position, as [`Consumer::ack`] takes), or from the log's start with
    /// `None`: backwards too, to process events again, or forwards, to
    /// skip them. What an operator does to a consumer that is stopped; a
    /// running one would overwrite it at its next checkpoint.
    pub fn reset(&mut self, to: Option<Position>) -> Result<()> {
        match to {
            Some(position) => {
                if !crate::read::is_event(&self.shared, position) {
                    return Err(Error::InvalidPosition { position });
                }
                self.acked = Some(position);
                self.checkpointed = None;
                self.checkpoint()
            }
            None => {
                let storage = &*self.shared.storage;
                match storage.remove(&self.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&self.path, e)),
                }
                storage
                    .sync_dir(&self.shared.dir)
                    .map_err(|e| Error::io(&self.shared.dir, e))?;
                self.acked = None;
                self.checkpointed = None;
                Ok(())
            }
        }
    }

    /// Makes the acknowledged position durable: write a new file, fsync it,
    /// rename it over the old, fsync the directory. Nothing to do when it
    /// was checkpointed already.
    pub fn checkpoint(&mut self) -> Result<()> {
        let Some(position) = self.acked else {
            return Ok(());
        };
        if self.checkpointed == Some(position) {
            return Ok(());
        }
        let storage = &*self.shared.storage;
        write(
            storage,
            &self.shared.dir,
            &self.path,
            &encode(&self.name, self.shared.log_id, position),
        )?;
        self.checkpointed = Some(position);
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared
            .consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.name);
    }
}

/// Every named consumer's checkpoint in `dir`: what retention keeps for
/// when asked to ([`Options::retain_for_consumers`](crate::Options::retain_for_consumers)).
/// A damaged checkpoint is an error: its consumer's place is unknown.
pub(crate) fn checkpoints(dir: &Path, log_id: u128) -> Result<Vec<(String, Position)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(layout::parse_checkpoint_file)
        else {
            continue;
        };
        if let Some(position) = read(&entry.path(), &name, log_id)? {
            found.push((name, position));
        }
    }
    Ok(found)
}

/// The checkpoint in `path`, `None` if there is none.
fn read(path: &Path, name: &str, log_id: u128) -> Result<Option<Position>> {
    let raw = match storage::entry::read(path, MAX_FILE_BYTES) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    decode(&raw, name, log_id)
        .map(Some)
        .map_err(|reason| Error::Corrupt {
            segment: path.to_path_buf(),
            offset: 0,
            reason: format!("consumer checkpoint: {reason}"),
        })
}

fn write(storage: &dyn Storage, dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = layout::tmp_path(path);
    let file = storage.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    storage
        .write_at(&file, &tmp, bytes, 0)
        .and_then(|()| storage.sync(&file, &tmp))
        .map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    storage.rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    storage.sync_dir(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_bytes_round_trip_and_every_damage_is_caught() {
        let p = Position::from_u64(0x1234_5678_9abc);
        let raw = encode("billing", 7, p);
        assert_eq!(decode(&raw, "billing", 7), Ok(p));
        assert_eq!(decode(&raw, "billing", 8), Err("checkpoint of another log"));
        assert_eq!(
            decode(&raw, "billin", 7),
            Err("checkpoint of another consumer")
        );
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad, "billing", 7).is_err(), "byte {i}");
        }
        for len in 0..raw.len() {
            assert!(decode(&raw[..len], "billing", 7).is_err(), "length {len}");
        }
    }

    #[test]
    fn names_become_hex_file_names() {
        assert!(validate("").is_err());
        assert!(validate(&"x".repeat(MAX_CONSUMER_NAME_BYTES + 1)).is_err());
        let longest = layout::checkpoint_file(&"\u{ff}".repeat(MAX_CONSUMER_NAME_BYTES / 2));
        assert!(longest.len() <= 255, "{}", longest.len());
    }
}
