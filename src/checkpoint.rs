//! The stream-heads checkpoint: every stream's name and head as of a log
//! offset, written at a clean close so the next open scans only what follows
//! it instead of every sealed segment. Derived data: a missing, stale or
//! damaged checkpoint is ignored (with a warning) and heads are rebuilt from
//! the segments, which stay the only source of truth.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::segment::sync_dir;
use crate::streams::{Head, Names, Streams};

pub(crate) const FILE_NAME: &str = "streams.ckpt";
const MAGIC: [u8; 8] = *b"SEGLOGCK";
const VERSION: u32 = 1;
const FIXED_BYTES: usize = 8 + 4 + 4 + 16 + 8 + 8;
/// Smallest encoding of one stream: name length, one name byte, two u64s.
const MIN_ENTRY_BYTES: u64 = 2 + 1 + 8 + 8;

/// Writes the checkpoint for `streams` covering the log up to `covered`
/// (write to a temporary file, fsync, rename, fsync the directory).
pub(crate) fn write(
    dir: &Path,
    log_id: u128,
    covered: u64,
    names: &Names,
    streams: &Streams,
) -> Result<()> {
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let path = dir.join(FILE_NAME);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut crc = crc32fast::Hasher::new();
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut put = |bytes: &[u8]| -> std::io::Result<()> {
            crc.update(bytes);
            out.write_all(bytes)
        };
        put(&MAGIC)?;
        put(&VERSION.to_le_bytes())?;
        put(&[0; 4])?;
        put(&log_id.to_le_bytes())?;
        put(&covered.to_le_bytes())?;
        put(&(streams.len() as u64).to_le_bytes())?;
        for (id, head) in streams.heads().iter().enumerate() {
            let name = names.get(id).map_or("", |n| &**n);
            put(&(name.len() as u16).to_le_bytes())?;
            put(name.as_bytes())?;
            put(&head.last_version.to_le_bytes())?;
            put(&head.last_frame.to_le_bytes())?;
        }
        out.write_all(&crc.finalize().to_le_bytes())?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    result.map_err(|e| Error::io(&path, e))?;
    sync_dir(dir)
}

/// A loaded checkpoint: heads as of `covered`.
pub(crate) struct Loaded {
    pub(crate) covered: u64,
    pub(crate) streams: Streams,
}

/// Reads the checkpoint of log `log_id`, filling `names`. `None` (after a
/// warning) when it is missing, damaged or belongs to another log.
pub(crate) fn read(dir: &Path, log_id: u128, names: &Names) -> Option<Loaded> {
    let path = dir.join(FILE_NAME);
    let mut raw = Vec::new();
    match File::open(&path).and_then(|mut f| f.read_to_end(&mut raw)) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!("seglog: cannot read {path:?} ({e}); rebuilding stream heads from segments");
            return None;
        }
    }
    match decode(&raw, log_id, names) {
        Ok(loaded) => Some(loaded),
        Err(reason) => {
            log::warn!(
                "seglog: ignoring {path:?}: {reason}; rebuilding stream heads from segments"
            );
            None
        }
    }
}

fn decode(raw: &[u8], log_id: u128, names: &Names) -> std::result::Result<Loaded, &'static str> {
    let body_len = raw.len().checked_sub(4).ok_or("too short")?;
    let (body, crc) = raw.split_at(body_len);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch");
    }
    let mut r = Reader { b: body };
    if r.take(8)? != MAGIC || r.u32()? != VERSION {
        return Err("unknown format");
    }
    r.take(4)?;
    if r.u128()? != log_id {
        return Err("belongs to another log");
    }
    let covered = r.u64()?;
    let count = r.u64()?;
    if count.saturating_mul(MIN_ENTRY_BYTES) > (body.len() - FIXED_BYTES) as u64 {
        return Err("stream count larger than the file");
    }
    let mut streams = Streams::default();
    for _ in 0..count {
        let len = usize::from(r.u16()?);
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| "name not UTF-8")?;
        let head = Head {
            last_version: r.u64()?,
            last_frame: r.u64()?,
        };
        if name.is_empty() || streams.lookup(names, name).is_some() {
            return Err("invalid or duplicate stream name");
        }
        streams
            .insert(names, name, head)
            .ok_or("too many streams")?;
    }
    if !r.b.is_empty() {
        return Err("trailing bytes");
    }
    Ok(Loaded { covered, streams })
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], &'static str> {
        if self.b.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], &'static str> {
        self.take(N)?.try_into().map_err(|_| "truncated")
    }
    fn u16(&mut self) -> std::result::Result<u16, &'static str> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> std::result::Result<u32, &'static str> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> std::result::Result<u64, &'static str> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> std::result::Result<u128, &'static str> {
        Ok(u128::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let names = Names::new();
        let mut s = Streams::default();
        for i in 0..100u64 {
            s.insert(
                &names,
                &format!("s-{i}"),
                Head {
                    last_version: i,
                    last_frame: 4096 + i * 8,
                },
            )
            .unwrap();
        }
        write(dir.path(), 5, 123_456, &names, &s).unwrap();
        let fresh = Names::new();
        let loaded = read(dir.path(), 5, &fresh).unwrap();
        assert_eq!(loaded.covered, 123_456);
        assert_eq!(loaded.streams.heads(), s.heads());
        assert_eq!(loaded.streams.lookup(&fresh, "s-42"), Some(42));
        assert!(read(dir.path(), 6, &Names::new()).is_none(), "other log");
        let path = dir.path().join(FILE_NAME);
        let mut raw = fs::read(&path).unwrap();
        raw[60] ^= 0x10;
        fs::write(&path, &raw).unwrap();
        assert!(read(dir.path(), 5, &Names::new()).is_none(), "damaged");
    }
}
