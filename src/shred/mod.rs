//! Crypto-shredding: payloads (and, when asked, metadata) sealed under a
//! key per subject before they are framed, so that destroying the key
//! ([`Log::forget`](crate::Log::forget)) erases them in place while every
//! other byte of the log, and so its hash chain, stays as it was.
//!
//! One concern a file: [`envelope`] seals and opens one payload (pure),
//! [`keystore`] is the key store file's bytes (pure), and this file holds
//! the master key, the key ring every handle of one log shares (the
//! subjects' keys in memory, the store's rewrites through the `Storage`
//! seam) and the steps the append and read paths call.
//! docs/ARCHITECTURE.md, "Crypto-shredding", says what is and is not erased.

#[cfg(test)]
mod crash_tests;
pub(crate) mod envelope;
pub(crate) mod keystore;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::Bytes;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::event::{EventData, PayloadState, RecordedEvent};
use crate::frame::{EVENT_FLAG_METADATA_SEALED, EVENT_FLAG_PAYLOAD_SEALED};
use crate::layout;
use crate::limits::MAX_SUBJECTS;
use crate::position::Position;
use crate::segment::{Segment, corrupt};
use crate::storage::{self, Storage};
use envelope::Part;

/// The application's key that protects a log's key store: 32 bytes, kept
/// by the application, never stored beside the log (see
/// [`Options::master_key`](crate::Options::master_key)). Its `Debug`
/// prints no byte of it, and its memory is zeroed when it is dropped.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// The key from its 32 bytes (drawn at random once, for example with
    /// [`MasterKey::generate`], and kept in the application's secret store).
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    /// A new key from the operating system's random source.
    pub fn generate() -> Result<MasterKey> {
        random().map(MasterKey::from_bytes)
    }

    /// Its 32 bytes, to keep in the application's secret store.
    pub fn to_bytes(&self) -> [u8; 32] {
        *self.0
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Random bytes from the operating system.
fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    OsRng.try_fill_bytes(&mut bytes).map_err(|e| Error::Io {
        path: PathBuf::from("getrandom"),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(bytes)
}

/// Identifies one version of the key store file: a rewrite renames a new
/// file over it, so its inode changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
        })
    }
}

/// The keys in memory.
#[derive(Default)]
struct Keys {
    next_id: u64,
    ids: HashMap<Box<str>, u64>,
    keys: HashMap<u64, (Box<str>, Zeroizing<[u8; 32]>)>,
    /// The file these were read from or last written as.
    stamp: Option<Stamp>,
}

/// A key being added: `(id, subject, key)`.
type NewKey = (u64, Box<str>, Zeroizing<[u8; 32]>);

/// A subject's key, or what became of it.
pub(crate) enum Lookup {
    Key(Zeroizing<[u8; 32]>),
    Forgotten,
}

/// Every subject's key of one log, shared by its handle and its reads.
pub(crate) struct KeyRing {
    store_key: Zeroizing<[u8; 32]>,
    /// Keys the `$audit` trail's subject hashes.
    hash_key: Zeroizing<[u8; 32]>,
    path: PathBuf,
    log_id: u128,
    storage: Arc<dyn Storage>,
    /// A `Log`'s ring writes the store; a `Reader`'s reloads it.
    writer: bool,
    keys: RwLock<Keys>,
    /// Serialises rewrites (and a reader's reloads): each rewrite starts
    /// from the one before.
    write: Mutex<()>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The context the `$audit` trail's subject hashes are keyed under.
const SUBJECT_HASH_CONTEXT: &str = "seglog 2026-12 subject hash v1";

impl KeyRing {
    /// The ring of the log `log_id` in `dir`, read from its key store if
    /// there is one (`writer`: a `Log`'s, which rewrites the store).
    pub(crate) fn open(
        dir: &Path,
        storage: Arc<dyn Storage>,
        log_id: u128,
        master: &MasterKey,
        writer: bool,
    ) -> Result<KeyRing> {
        let ring = KeyRing {
            store_key: keystore::store_key(&master.0),
            hash_key: Zeroizing::new(blake3::derive_key(SUBJECT_HASH_CONTEXT, &*master.0)),
            path: dir.join(layout::KEYS_FILE),
            log_id,
            storage,
            writer,
            keys: RwLock::new(Keys::default()),
            write: Mutex::new(()),
        };
        *ring.keys.write().unwrap_or_else(|p| p.into_inner()) = ring.load()?;
        Ok(ring)
    }

    fn lock_write(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The store as on disk; empty (ids from 1) when there is none yet.
    fn load(&self) -> Result<Keys> {
        let stamp = Stamp::of(&self.path);
        let bytes = match storage::entry::read(&self.path, keystore::MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Keys {
                    next_id: 1,
                    ..Keys::default()
                });
            }
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let contents = keystore::decode(&bytes, &self.path, &self.store_key, self.log_id)?;
        let mut keys = Keys {
            next_id: contents.next_id,
            stamp,
            ..Keys::default()
        };
        for e in contents.entries {
            keys.ids.insert(e.subject.clone(), e.id);
            keys.keys.insert(e.id, (e.subject, e.key));
        }
        Ok(keys)
    }

    /// A reader's ring: reads the store again if the file changed since
    /// (one `stat`), so a reader sees keys the writer made and forgot.
    pub(crate) fn refresh(&self) -> Result<()> {
        if self.writer || Stamp::of(&self.path) == self.read().stamp {
            return Ok(());
        }
        let _reloading = self.lock_write();
        let fresh = self.load()?;
        *self.write_keys() = fresh;
        Ok(())
    }

    /// The bytes of the store holding `keys` without `leaving` and with
    /// `adding` (each `(id, subject, key)`).
    fn encode(
        &self,
        keys: &Keys,
        next_id: u64,
        leaving: Option<u64>,
        adding: &[NewKey],
    ) -> Result<Vec<u8>> {
        let mut entries: Vec<(u64, &str, &[u8; 32])> = keys
            .keys
            .iter()
            .filter(|(id, _)| Some(**id) != leaving)
            .map(|(id, (subject, key))| (*id, &**subject, &**key))
            .chain(adding.iter().map(|(id, s, k)| (*id, &**s, &**k)))
            .collect();
        entries.sort_unstable_by_key(|e| e.0);
        let nonce = random()?;
        keystore::encode(
            &self.store_key,
            self.log_id,
            &nonce,
            next_id,
            entries.into_iter(),
        )
        .ok_or(Error::TooManySubjects { max: MAX_SUBJECTS })
    }

    /// Replaces the store on disk: temporary file, fsync, rename, fsync of
    /// the directory, all through the seam.
    fn replace(&self, bytes: &[u8]) -> Result<()> {
        debug_assert!(keystore::decode(bytes, &self.path, &self.store_key, self.log_id).is_ok());
        storage::replace_file(&*self.storage, &self.path, bytes)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Makes sure each of `subjects` has a key, durably in the store before
    /// this returns: one rewrite for all the new ones.
    pub(crate) fn ensure<'a>(&self, subjects: impl Iterator<Item = &'a str> + Clone) -> Result<()> {
        let known = |keys: &Keys| subjects.clone().all(|s| keys.ids.contains_key(s));
        if known(&self.read()) {
            return Ok(());
        }
        for s in subjects.clone() {
            keystore::check_subject(s)?;
        }
        let _writing = self.lock_write();
        let (bytes, adding, next_id) = {
            let keys = self.read();
            let mut adding: Vec<NewKey> = Vec::new();
            let mut next_id = keys.next_id;
            for s in subjects {
                if keys.ids.contains_key(s) || adding.iter().any(|(_, a, _)| &**a == s) {
                    continue;
                }
                if keys.ids.len() + adding.len() >= MAX_SUBJECTS {
                    return Err(Error::TooManySubjects { max: MAX_SUBJECTS });
                }
                adding.push((next_id, s.into(), Zeroizing::new(random()?)));
                next_id += 1;
            }
            (self.encode(&keys, next_id, None, &adding)?, adding, next_id)
        };
        self.replace(&bytes)?;
        let mut keys = self.write_keys();
        keys.next_id = next_id;
        keys.stamp = Stamp::of(&self.path);
        for (id, subject, key) in adding {
            keys.ids.insert(subject.clone(), id);
            keys.keys.insert(id, (subject, key));
        }
        Ok(())
    }

    /// The key id and key of `subject`, which [`KeyRing::ensure`] made.
    fn key_of(&self, subject: &str) -> Option<(u64, Zeroizing<[u8; 32]>)> {
        let keys = self.read();
        let id = *keys.ids.get(subject)?;
        keys.keys.get(&id).map(|(_, k)| (id, k.clone()))
    }

    /// The key `id`, or that it was forgotten. An id the store never
    /// issued sends a reader's ring back to the file once (the writer may
    /// have made it since); for the writer's it is damage.
    pub(crate) fn lookup(&self, id: u64) -> Result<Lookup> {
        for attempt in 0..2 {
            {
                let keys = self.read();
                if let Some((_, key)) = keys.keys.get(&id) {
                    return Ok(Lookup::Key(key.clone()));
                }
                if id < keys.next_id {
                    return Ok(Lookup::Forgotten);
                }
            }
            if self.writer || attempt == 1 {
                break;
            }
            let _reloading = self.lock_write();
            let fresh = self.load()?;
            *self.write_keys() = fresh;
        }
        Err(Error::Corrupt {
            segment: self.path.clone(),
            offset: 0,
            reason: format!("key id {id} of an envelope was never issued by this key store"),
        })
    }

    /// The keyed BLAKE3 hash of `subject` the `$audit` trail records: it
    /// names the subject to whoever holds the master key, and to nobody
    /// else (a plain hash of an e-mail address is found by guessing).
    pub(crate) fn subject_hash(&self, subject: &str) -> String {
        blake3::keyed_hash(&self.hash_key, subject.as_bytes())
            .to_hex()
            .to_string()
    }

    /// Destroys `subject`'s key: `announce(key id)` first (the `$audit`
    /// event, durable before anything is removed), then the store
    /// rewritten without it, then the key dropped from memory. A rewrite
    /// that fails leaves the key in memory, as it may still be on disk:
    /// the caller tries the forget again.
    pub(crate) fn forget(
        &self,
        subject: &str,
        announce: impl FnOnce(u64) -> Result<Position>,
    ) -> Result<Position> {
        debug_assert!(self.writer, "only a Log forgets");
        let _writing = self.lock_write();
        let Some((id, _)) = self.key_of(subject) else {
            return Err(Error::UnknownSubject {
                subject: subject.into(),
            });
        };
        let position = announce(id)?;
        let bytes = {
            let keys = self.read();
            self.encode(&keys, keys.next_id, Some(id), &[])?
        };
        self.replace(&bytes)?;
        let mut keys = self.write_keys();
        keys.ids.remove(subject);
        keys.keys.remove(&id);
        keys.stamp = Stamp::of(&self.path);
        Ok(position)
    }
}

/// `events` with each one asked to be sealed ([`EventData::encrypted`])
/// sealed, under the key of its subject (the stream's name unless it
/// names one); keys for new subjects are made and durable first. `None`
/// when no event asks: the batch goes on as given.
pub(crate) fn seal_batch(
    ring: Option<&KeyRing>,
    stream: &str,
    events: &[EventData],
) -> Result<Option<Vec<EventData>>> {
    if events.iter().all(|e| e.seal.is_none()) {
        return Ok(None);
    }
    let ring = ring.ok_or(Error::NoMasterKey)?;
    ring.ensure(subjects(stream, events))?;
    events
        .iter()
        .map(|e| seal_event(ring, stream, e))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// The subjects of the events of a batch that asks for sealing.
pub(crate) fn subjects<'a>(
    stream: &'a str,
    events: &'a [EventData],
) -> impl Iterator<Item = &'a str> + Clone {
    events.iter().filter_map(move |e| {
        e.seal
            .as_ref()
            .map(|s| s.subject.as_deref().unwrap_or(stream))
    })
}

/// One event sealed, if it asks to be.
fn seal_event(ring: &KeyRing, stream: &str, event: &EventData) -> Result<EventData> {
    let Some(seal) = &event.seal else {
        return Ok(event.clone());
    };
    let subject = seal.subject.as_deref().unwrap_or(stream);
    let (id, key) = ring.key_of(subject).ok_or_else(|| Error::UnknownSubject {
        subject: subject.into(),
    })?;
    let one = |part: Part, plain: &[u8]| -> Result<Bytes> {
        let sealed = envelope::seal(&key, id, &random()?, ring.log_id, part, plain);
        sealed.map(Bytes::from).ok_or(Error::EventTooLarge {
            index: 0,
            size_bytes: plain.len() as u64,
            max_bytes: u32::MAX.into(),
        })
    };
    let mut out = event.clone();
    out.seal = None;
    out.payload = one(Part::Payload, &event.payload)?;
    out.envelopes = EVENT_FLAG_PAYLOAD_SEALED;
    if seal.metadata {
        out.metadata = one(Part::Metadata, &event.metadata)?;
        out.envelopes |= EVENT_FLAG_METADATA_SEALED;
    }
    Ok(out)
}

/// Why an event's envelopes did not open.
pub(crate) enum Unseal {
    /// The read has no master key.
    NoKey,
    /// An envelope is malformed or does not open with its key.
    Damaged(&'static str),
    /// The key store could not be read.
    Failed(Error),
}

impl Unseal {
    /// The error a read reports for the event of the frame at segment
    /// offset `at` of `seg`.
    pub(crate) fn at(self, seg: &Segment, at: u64) -> Error {
        match self {
            Unseal::NoKey => Error::NoMasterKey,
            Unseal::Damaged(reason) => corrupt(seg, at, reason),
            Unseal::Failed(e) => e,
        }
    }
}

/// Opens the envelopes of the events a read meets: the read's ring and
/// the buffers plaintexts go to (reused by borrowed reads).
#[derive(Debug, Default)]
pub(crate) struct Unsealer {
    ring: Option<Arc<KeyRing>>,
    pub(crate) payload: Vec<u8>,
    pub(crate) metadata: Vec<u8>,
}

impl Unsealer {
    /// An unsealer with `ring` (none: the read has no master key).
    pub(crate) fn new(ring: Option<Arc<KeyRing>>) -> Unsealer {
        Unsealer {
            ring,
            ..Unsealer::default()
        }
    }

    /// Opens the envelopes `flags` names among `payload` and `metadata`
    /// into this unsealer's buffers (left empty when the key is gone).
    #[cold]
    pub(crate) fn open(
        &mut self,
        flags: u8,
        log_id: u128,
        payload: &[u8],
        metadata: &[u8],
    ) -> Result<PayloadState, Unseal> {
        let ring = self.ring.as_deref().ok_or(Unseal::NoKey)?;
        let parts = [
            (EVENT_FLAG_PAYLOAD_SEALED, Part::Payload, payload),
            (EVENT_FLAG_METADATA_SEALED, Part::Metadata, metadata),
        ];
        let mut state = PayloadState::Decrypted;
        for (flag, part, sealed) in parts {
            let out = match part {
                Part::Payload => &mut self.payload,
                Part::Metadata => &mut self.metadata,
            };
            out.clear();
            if flags & flag == 0 {
                continue;
            }
            let id = envelope::key_id(sealed).ok_or(Unseal::Damaged("envelope too short"))?;
            match ring.lookup(id).map_err(Unseal::Failed)? {
                Lookup::Key(key) => {
                    envelope::open_into(&key, log_id, part, sealed, out).map_err(Unseal::Damaged)?
                }
                Lookup::Forgotten => state = PayloadState::Erased,
            }
        }
        Ok(state)
    }

    /// [`Unsealer::open`] for an owned event: its sealed fields replaced
    /// by their plaintexts (or emptied, erased; an erased event is handed
    /// out as it is, no upcaster runs on it).
    #[cold]
    pub(crate) fn open_owned(
        &mut self,
        flags: u8,
        log_id: u128,
        event: &mut RecordedEvent,
    ) -> Result<(), Unseal> {
        let state = self.open(flags, log_id, &event.payload, &event.metadata)?;
        if flags & EVENT_FLAG_PAYLOAD_SEALED != 0 {
            event.payload = Bytes::from(std::mem::take(&mut self.payload));
        }
        if flags & EVENT_FLAG_METADATA_SEALED != 0 {
            event.metadata = Bytes::from(std::mem::take(&mut self.metadata));
        }
        event.payload_state = state;
        if state == PayloadState::Erased {
            event.output = (0, 1);
        }
        Ok(())
    }
}
