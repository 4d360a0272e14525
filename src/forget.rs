//! `forget`: crypto-shredding's erasure (docs/ARCHITECTURE.md,
//! "Crypto-shredding"): a subject's key destroyed durably, after the
//! `$audit` event that records it.

use crate::audit::{self, JsonObject};
use crate::error::{Error, Result};
use crate::log::Log;
use crate::position::Position;
use crate::system::FORGET_EVENT;

impl Log {
    /// Destroys `subject`'s key (a stream's name for events appended
    /// [`encrypted`](crate::EventData::encrypted), or the name given to
    /// [`encrypted_for`](crate::EventData::encrypted_for)): from then on its
    /// events read in place, with their positions, versions, types, ids,
    /// times and plain metadata, but their payloads (and encrypted
    /// metadata) read as empty, [`PayloadState::Erased`](crate::PayloadState::Erased).
    /// The hash chain is untouched: [`Log::verify`] still succeeds.
    ///
    /// First records a [`FORGET_EVENT`](crate::FORGET_EVENT) in the
    /// [`AUDIT_STREAM`](crate::AUDIT_STREAM) and makes it durable (its
    /// position is returned), then rewrites the key store without the key,
    /// durably. Once this returns `Ok` the key is gone, after a crash too;
    /// a call that fails after the audit event may leave the key: call it
    /// again. A later append for the same subject gets a new key, which
    /// this forget does not touch.
    ///
    /// Errors: [`Error::NoMasterKey`], [`Error::UnknownSubject`] for a
    /// subject with no key (never used, or forgotten already: nothing is
    /// written). See docs/ARCHITECTURE.md "Crypto-shredding" for what
    /// stays on the disk.
    pub fn forget(&self, subject: &str) -> Result<Position> {
        let keys = self.view.keys.as_deref().ok_or(Error::NoMasterKey)?;
        keys.forget(subject, |key_id| {
            let payload = JsonObject::new()
                .num("key_id", key_id)
                .str("subject_hash", &keys.subject_hash(subject))
                .finish();
            audit::record(&self.append, FORGET_EVENT, payload)
        })
    }

    /// The keyed hash of `subject` a [`FORGET_EVENT`](crate::FORGET_EVENT)
    /// records (64 hex digits): BLAKE3 keyed with a key derived from the
    /// master key, so the audit trail names a forgotten subject only to
    /// whoever holds the master key. [`Error::NoMasterKey`] without one.
    pub fn subject_hash(&self, subject: &str) -> Result<String> {
        let keys = self.view.keys.as_deref().ok_or(Error::NoMasterKey)?;
        Ok(keys.subject_hash(subject))
    }
}
