//! The commands that read a log and never change it: they open it through
//! a [`seglog::Reader`], which takes no lock, so they run beside the
//! service that writes it.

pub(crate) mod dump;
mod event;
mod filter;
pub(crate) mod get;
pub(crate) mod info;
mod segment;
pub(crate) mod stream;
pub(crate) mod tail;
pub(crate) mod verify;

use std::path::{Path, PathBuf};

use clap::Args;
use seglog::{MasterKey, Options, Reader};

use crate::failure::{Failure, check_log_dir};

/// How a read-only command opens its log: the directory, and the master
/// key that decrypts encrypted payloads (without it they read as an
/// error naming what is missing).
#[derive(Args, Clone)]
pub(crate) struct LogArgs {
    /// The log's directory.
    pub(crate) dir: PathBuf,
    /// A file holding the log's master key (32 bytes, raw or as 64 hex
    /// digits), to show encrypted payloads decrypted.
    #[arg(long, value_name = "FILE")]
    pub(crate) master_key_file: Option<PathBuf>,
}

impl LogArgs {
    /// The log opened read-only, beside any writer.
    pub(crate) fn open(&self) -> Result<Reader, Failure> {
        check_log_dir(&self.dir)?;
        let mut options = Options::new();
        if let Some(file) = &self.master_key_file {
            options = options.master_key(read_master_key(file)?);
        }
        Reader::open_with(&self.dir, &options).map_err(|e| Failure::from_log(&self.dir, e))
    }
}

/// The master key in `file`: 32 raw bytes, or 64 hex digits (a trailing
/// newline allowed).
pub(crate) fn read_master_key(file: &Path) -> Result<MasterKey, Failure> {
    let raw = std::fs::read(file).map_err(|e| {
        Failure::failed(format!(
            "cannot read the master key {}: {e}",
            file.display()
        ))
    })?;
    let bytes = match raw.len() {
        32 => raw,
        _ => hex(std::str::from_utf8(&raw).unwrap_or("").trim()).unwrap_or_default(),
    };
    let key: [u8; 32] = bytes.try_into().map_err(|_| {
        Failure::usage(format!(
            "{} does not hold a master key: 32 bytes, or 64 hex digits",
            file.display()
        ))
    })?;
    Ok(MasterKey::from_bytes(key))
}

/// The bytes `text` spells in hex, if it does.
pub(crate) fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
