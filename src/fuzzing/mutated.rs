//! The `open_mutated` target: a small valid log, damaged by encoded edits,
//! then opened and read every way.

use std::path::Path;
use std::sync::OnceLock;

use crate::{Durability, EventData, ExpectedVersion, Log, Options, Position, limits};

/// Streams of the base log that [`open_mutated`] damages.
const MUTATED_STREAMS: [&str; 3] = ["order-1", "order-2", "invoice-7"];

/// At most this many edits are applied from one input.
const MAX_EDITS: usize = 64;

/// The files of a small valid log, cleanly closed, built once per process:
/// two sealed 1 MiB segments and an active one, their index files, three
/// streams with a sparse entry every 4 versions. Sorted by name.
fn base_log() -> &'static [(String, Vec<u8>)] {
    static BASE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("seglog-fuzz-base-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let built = build_base(&dir);
        let mut files = Vec::new();
        if built.is_ok()
            && let Ok(entries) = std::fs::read_dir(&dir)
        {
            for entry in entries.flatten() {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    files.push((entry.file_name().to_string_lossy().into_owned(), bytes));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        files.sort();
        assert!(files.len() >= 4, "fuzz base log was not built: {built:?}");
        files
    })
}

/// Writes the base log: 1,000 appends of two events over three streams.
fn build_base(dir: &Path) -> crate::Result<()> {
    let log = options(false).open(dir)?;
    for i in 0..1_000u32 {
        let stream = MUTATED_STREAMS[i as usize % MUTATED_STREAMS.len()];
        let payload = vec![i as u8; 1_400 + (i as usize % 400)];
        let events = [
            EventData::new("Placed", payload),
            EventData::new("Paid", i.to_le_bytes().to_vec()),
        ];
        log.append(stream, ExpectedVersion::Any, &events)?;
    }
    log.close()
}

/// The options the base log is written and every mutated copy opened with.
fn options(repair: bool) -> Options {
    Options::new()
        .segment_size(limits::MIN_SEGMENT_SIZE_BYTES)
        .index_interval(4)
        .durability(Durability::None)
        .repair(repair)
}

/// Applies the edits encoded in `data` to a copy of a small valid log in
/// `dir` (which must be empty or absent), then opens it and reads
/// everything: every `Log` call must return `Ok` or a clean `Error`.
/// Returns how many events were read.
///
/// `data[0]` picks the options (bit 0: repair). Then each 8 bytes are one
/// edit `[kind, file, offset: u32 LE, arg: u16 LE]` on the files in name
/// order: 0 flips bits of a byte, 1 truncates, 2 zeroes a range, 3 deletes
/// the file, 4 copies 64 bytes from elsewhere in the file (a misdirected
/// write), 5 writes a 16-bit value, 6 appends garbage, 7 puts an older copy
/// of another file of the log in its place (a stale restore).
pub fn open_mutated(data: &[u8], dir: &Path) -> usize {
    let base = base_log();
    let mut files: Vec<(String, Option<Vec<u8>>)> = base
        .iter()
        .map(|(name, bytes)| (name.clone(), Some(bytes.clone())))
        .collect();
    let (repair, edits) = match data.split_first() {
        Some((options, edits)) => (options & 1 == 1, edits),
        None => (false, data),
    };
    for edit in edits.chunks_exact(8).take(MAX_EDITS) {
        if let Ok(edit) = <&[u8; 8]>::try_from(edit) {
            apply_edit(&mut files, base, edit);
        }
    }
    let _ = std::fs::create_dir_all(dir);
    for (name, bytes) in &files {
        if let Some(bytes) = bytes {
            let _ = std::fs::write(dir.join(name), bytes);
        }
    }
    let Ok(log) = options(repair).open(dir) else {
        return 0;
    };
    let read = read_everything(&log);
    let event = [EventData::new("AfterOpen", b"x".to_vec())];
    let _ = log.append("order-1", ExpectedVersion::Any, &event);
    let _ = log.close();
    read
}

/// Applies one edit `[kind, file, offset: u32 LE, arg: u16 LE]` (see
/// [`open_mutated`]) to `files`, copies of `base`.
fn apply_edit(files: &mut [(String, Option<Vec<u8>>)], base: &[(String, Vec<u8>)], edit: &[u8; 8]) {
    let kind = edit[0] % 8;
    let file = edit[1] as usize % files.len();
    let offset = u32::from_le_bytes([edit[2], edit[3], edit[4], edit[5]]) as usize;
    let arg = u16::from_le_bytes([edit[6], edit[7]]);
    let other = base[arg as usize % base.len()].1.clone();
    let Some(bytes) = files[file].1.as_mut() else {
        return;
    };
    let len = bytes.len();
    let at = if len == 0 { 0 } else { offset % len };
    match kind {
        0 if len > 0 => bytes[at] ^= (arg as u8).max(1),
        1 => bytes.truncate(at),
        2 => {
            let end = (at + usize::from(arg)).min(len);
            bytes[at..end].fill(0);
        }
        3 => files[file].1 = None,
        4 if len >= 64 => {
            let from = (usize::from(arg) * 8) % (len - 63);
            let to = at.min(len - 64);
            bytes.copy_within(from..from + 64, to);
        }
        5 if len >= 2 => {
            let to = at.min(len - 2);
            bytes[to..to + 2].copy_from_slice(&arg.to_le_bytes());
        }
        6 => bytes.extend((0..usize::from(arg % 4096)).map(|i| (i as u8) ^ edit[1])),
        7 => files[file].1 = Some(other),
        _ => {}
    }
}

/// Reads `log` every way a user can, counting the events handed out before
/// each read's first error: `read_all`, `replay`, and each stream from four
/// versions in both directions.
fn read_everything(log: &Log) -> usize {
    let mut read = 0;
    if let Ok(all) = log.read_all(Position::START) {
        read += all.take_while(Result::is_ok).count();
    }
    let _ = log.replay(Position::START, |_| read += 1);
    for stream in MUTATED_STREAMS {
        for from in [0, 5, 1_000, u64::MAX] {
            if let Ok(events) = log.read_stream(stream, from) {
                read += events.take_while(Result::is_ok).count();
            }
            if let Ok(events) = log.read_stream_backward(stream, from) {
                read += events.take_while(Result::is_ok).count();
            }
        }
    }
    read
}
