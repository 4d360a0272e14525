//! Helpers shared by the integration tests: a seeded PRNG, event snapshots,
//! reading the whole log, and byte-level access to segment files (the layout
//! of `src/segment.rs` and `src/frame.rs`).
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use seglog::{Error, EventRef, Log, Position, RecordedEvent};

/// Bytes of a segment's header page; the first frame starts here.
pub const HEADER_BYTES: u64 = 4096;
/// Bytes of the end-of-segment marker frame.
pub const END_BYTES: u64 = 16;
/// Fixed part of an events frame.
pub const FRAME_HEADER_BYTES: u64 = 48;
/// Fixed part of each event inside a frame.
pub const EVENT_HEADER_BYTES: u64 = 16;
/// An event id inside a frame.
pub const EVENT_ID_BYTES: u64 = 16;
/// The smallest segment size accepted.
pub const MIB: u64 = 1 << 20;
/// Removes every index file (`*.idx`, derived data) of the log in `dir`, so
/// the next open rebuilds them from the segments; returns how many there were.
pub fn remove_index_files(dir: &Path) -> usize {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "idx") {
            std::fs::remove_file(&path).expect("remove index file");
            removed += 1;
        }
    }
    assert!(removed > 0, "no index file in {dir:?}");
    removed
}

/// xorshift64*: tiny, seeded, reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Never zero (xorshift's fixed point), and nearby seeds diverge.
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1)
    }

    /// A seed from `SEGLOG_SEED` if set, else `default`; printed so a failure
    /// can be replayed.
    pub fn seeded(default: u64) -> Rng {
        let seed = std::env::var("SEGLOG_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        eprintln!("seed {seed} (set SEGLOG_SEED to override)");
        Rng::new(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Log-uniform in `0..=max`: every order of magnitude equally likely.
    pub fn log_uniform(&mut self, max: u64) -> u64 {
        let x = ((max + 1) as f64).powf(self.unit()) - 1.0;
        (x as u64).min(max)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// Payload bytes determined by `(seed, len)`, so big logs need not keep
/// their payloads in memory to check them.
pub fn payload_for(seed: u64, len: usize) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// A temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Everything a reader can observe about one event, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ev {
    pub stream: String,
    pub version: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub id: Option<u128>,
    pub metadata: Vec<u8>,
    pub payload: Vec<u8>,
    pub position: Position,
    pub next_position: Position,
    pub timestamp_us: u64,
}

impl From<&RecordedEvent> for Ev {
    fn from(e: &RecordedEvent) -> Ev {
        Ev::from(e.as_event_ref())
    }
}

impl From<EventRef<'_>> for Ev {
    fn from(e: EventRef<'_>) -> Ev {
        Ev {
            stream: e.stream().to_string(),
            version: e.version(),
            event_type: e.event_type().to_string(),
            schema_version: e.schema_version(),
            id: e.id(),
            metadata: e.metadata().to_vec(),
            payload: e.payload().to_vec(),
            position: e.position(),
            next_position: e.next_position(),
            timestamp_us: e.timestamp_micros(),
        }
    }
}

/// Every event from `from`, stopping at the first error, which is returned
/// alongside the events read before it.
pub fn try_read_from(log: &Log, from: Position) -> (Vec<RecordedEvent>, Option<Error>) {
    let mut out = Vec::new();
    let iter = match log.read_all(from) {
        Ok(iter) => iter,
        Err(e) => return (out, Some(e)),
    };
    for e in iter {
        match e {
            Ok(e) => out.push(e),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Every event from `from`; panics on any error.
pub fn read_from(log: &Log, from: Position) -> Vec<RecordedEvent> {
    let (events, err) = try_read_from(log, from);
    if let Some(err) = err {
        panic!(
            "read_all({from:?}) failed after {} events: {err}",
            events.len()
        );
    }
    events
}

/// Every event of the log; panics on any error.
pub fn read_all(log: &Log) -> Vec<RecordedEvent> {
    read_from(log, Position::START)
}

/// Every event of the log as owned snapshots.
pub fn snapshot(log: &Log) -> Vec<Ev> {
    read_all(log).iter().map(Ev::from).collect()
}

/// Every event from `from` through the borrowed replay path, and the
/// position it says to resume from.
pub fn replay_from(log: &Log, from: Position) -> seglog::Result<(Vec<Ev>, Position)> {
    let mut out = Vec::new();
    let resume = log.replay(from, |e| out.push(Ev::from(e)))?;
    Ok((out, resume))
}

/// The file name of the segment starting at log offset `base`.
pub fn seg_name(base: u64) -> String {
    format!("{base:020}.seg")
}

pub fn seg_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(seg_name(base))
}

/// The segment files of `dir`, sorted by base.
pub fn segment_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| {
            let e = e.expect("dir entry");
            let name = e.file_name().into_string().ok()?;
            let base = name.strip_suffix(".seg")?.parse().ok()?;
            Some((base, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The segment file holding the frame at log offset `frame_offset` and its
/// offset inside that file.
pub fn locate(dir: &Path, segment_size: u64, frame_offset: u64) -> (PathBuf, u64) {
    let base = frame_offset / segment_size * segment_size;
    (seg_path(dir, base), frame_offset - base)
}

pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let file = fs::File::open(path).expect("open for reading");
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).expect("read_exact_at");
    buf
}

pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for writing");
    file.write_all_at(bytes, offset).expect("write_all_at");
}

pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut b = read_at(path, offset, 1);
    b[0] ^= 1 << bit;
    write_at(path, offset, &b);
}

/// The unpadded length stored in the frame at `offset` of a segment file.
pub fn frame_len(path: &Path, offset: u64) -> u64 {
    let raw = read_at(path, offset, 4);
    u64::from(u32::from_le_bytes(raw.try_into().expect("4 bytes")))
}

pub fn padded(len: u64) -> u64 {
    len.next_multiple_of(8)
}

/// Copies the regular files of `src` into a new `dst` while a log may be
/// running in `src`: what a crash (of the process, not of the kernel) would
/// leave. Files that vanish meanwhile (a segment being created) are skipped.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("create copy dir");
    for entry in fs::read_dir(src).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == "seglog.lock" {
            continue;
        }
        match fs::copy(entry.path(), dst.join(&name)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("copy {:?}: {e}", entry.path()),
        }
    }
}

/// Encoded (padded) length of a frame: the stream name is counted only when
/// `defines` (the stream's first append). Mirrors `frame::batch_len`.
pub fn frame_bytes(defines: Option<&str>, events: &[(usize, usize, usize, bool)]) -> u64 {
    let mut len = FRAME_HEADER_BYTES + defines.map_or(0, |s| s.len() as u64);
    for &(ty, meta, payload, id) in events {
        len +=
            EVENT_HEADER_BYTES + if id { EVENT_ID_BYTES } else { 0 } + (ty + meta + payload) as u64;
    }
    padded(len)
}

/// Asserts that `err` is `Error::Corrupt` naming `segment` and `offset`.
#[track_caller]
pub fn assert_corrupt(err: &Error, segment: &Path, offset: u64) {
    match err {
        Error::Corrupt {
            segment: s,
            offset: o,
            ..
        } => {
            assert_eq!(s.file_name(), segment.file_name(), "wrong segment in {err}");
            assert_eq!(*o, offset, "wrong offset in {err}");
        }
        other => panic!("expected Error::Corrupt at {segment:?}:{offset}, got {other:?}"),
    }
}

/// Checks the invariants of a whole-log read: positions strictly increase,
/// and each event's `next_position` is the next event's position or, when
/// the next event starts another segment, a frame (the end marker) between
/// them in the earlier segment.
#[track_caller]
pub fn check_positions(events: &[Ev], segment_size: u64) {
    for pair in events.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.position < b.position, "{a:?} then {b:?}");
        if a.next_position != b.position {
            let seg_of = |p: Position| p.frame_offset() / segment_size;
            assert_eq!(a.next_position.index_in_frame(), 0, "{a:?}");
            assert_eq!(b.position.index_in_frame(), 0, "{b:?}");
            assert!(a.next_position < b.position, "{a:?} then {b:?}");
            assert_eq!(seg_of(a.next_position), seg_of(a.position), "{a:?}");
            assert!(seg_of(b.position) > seg_of(a.position), "{a:?} then {b:?}");
            // The gap is the end marker, at the end of the earlier segment.
            assert!(
                a.next_position.frame_offset() + END_BYTES
                    <= (seg_of(a.position) + 1) * segment_size,
                "{a:?}"
            );
        }
    }
}

/// One watermark slot of a segment header, as `src/segment.rs` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub seq: u64,
    pub watermark: u64,
    pub flags: u32,
}

/// Slot flag: the watermark is the segment's end (an end marker sits there).
pub const SLOT_SEALED: u32 = 1;
/// Slot flag: written at a clean close.
pub const SLOT_CLEAN: u32 = 2;

/// The newest valid watermark slot of a segment file (slots at 512 and 1024).
pub fn newest_slot(path: &Path) -> Option<Slot> {
    [512u64, 1024]
        .into_iter()
        .filter_map(|at| {
            let raw = read_at(path, at, 28);
            let crc = u32::from_le_bytes(raw[24..28].try_into().ok()?);
            if raw.iter().all(|&b| b == 0) || crc32fast::hash(&raw[..24]) != crc {
                return None;
            }
            Some(Slot {
                seq: u64::from_le_bytes(raw[..8].try_into().ok()?),
                watermark: u64::from_le_bytes(raw[8..16].try_into().ok()?),
                flags: u32::from_le_bytes(raw[16..20].try_into().ok()?),
            })
        })
        .max_by_key(|s| s.seq)
}
