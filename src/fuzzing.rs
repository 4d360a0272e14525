//! Entry points for the fuzz targets in `fuzz/` and the corpus replay test.
//! Not part of the stable API.

use crate::frame::{self, Checksum, Frame};

/// Log id the fuzz seeds are encoded with.
pub const FUZZ_LOG_ID: u128 = 0x5E61_0600_0000_0000_0000_0000_0000_0001;

/// Decodes `bytes` as a frame at log offset `position` with both decoders
/// and walks every event; then does the same with the CRC field rewritten to
/// match, so arbitrary contents reach the structure checks behind the CRC.
/// Returns how many events were walked as given and after resealing. Panics
/// only when the two decoders disagree (a bug the fuzzer is looking for).
pub fn decode_frame(bytes: &[u8], position: u64) -> (usize, usize) {
    let walked = decode_both(bytes, position);
    let mut resealed = bytes.to_vec();
    let len = resealed
        .first_chunk::<4>()
        .map_or(0, |l| u32::from_le_bytes(*l) as usize);
    if (8..=resealed.len()).contains(&len) {
        frame::seal_crc(&mut resealed, len, position, &Checksum::new(FUZZ_LOG_ID));
    }
    (walked, decode_both(&resealed, position))
}

fn decode_both(bytes: &[u8], position: u64) -> usize {
    let checksum = Checksum::new(FUZZ_LOG_ID);
    let full = frame::decode(bytes, position, &checksum);
    let lazy = frame::decode_lazy(bytes, position, &checksum);
    // A frame the full decoder accepts, the lazy one accepts too.
    assert!(
        full.is_err() || lazy.is_ok(),
        "lazy decode refused a valid frame"
    );
    match lazy {
        Ok((Frame::Events(f), len)) => {
            assert!(len as usize >= f.bytes.len() && len % frame::ALIGN == 0);
            f.events().take_while(Result::is_ok).count()
        }
        Ok((Frame::End, _)) | Err(_) => 0,
    }
}

/// Encodes one valid frame of `events` (type, payload) for stream `name` at
/// `position`: seeds for the corpus.
pub fn encode_frame(position: u64, name: &str, events: &[(&str, &[u8])]) -> Vec<u8> {
    let events: Vec<crate::EventData> = events
        .iter()
        .map(|(t, p)| crate::EventData::new(*t, p.to_vec()))
        .collect();
    let meta = frame::BatchMeta {
        stream_id: 0,
        defines: Some(name),
        first_version: 0,
        prev_frame: frame::NO_PREV_FRAME,
        timestamp_us: 1,
        durable_end: 0,
    };
    let len = frame::padded(frame::batch_len(meta.defines, &events)) as usize;
    let mut out = vec![0; len];
    frame::encode_batch(
        &mut out,
        position,
        &Checksum::new(FUZZ_LOG_ID),
        &meta,
        &events,
    );
    out
}

/// Streams of the base log that [`open_mutated`] damages.
const MUTATED_STREAMS: [&str; 3] = ["order-1", "order-2", "invoice-7"];

/// The files of a small valid log, cleanly closed, built once per process:
/// two sealed 1 MiB segments and an active one, their index files, three
/// streams with a sparse entry every 4 versions. Sorted by name.
fn base_log() -> &'static [(String, Vec<u8>)] {
    static BASE: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("seglog-fuzz-base-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let built = (|| -> crate::Result<()> {
            let log = crate::Options::new()
                .segment_size(crate::limits::MIN_SEGMENT_SIZE_BYTES)
                .index_interval(4)
                .durability(crate::Durability::None)
                .open(&dir)?;
            for i in 0..1_000u32 {
                let stream = MUTATED_STREAMS[i as usize % MUTATED_STREAMS.len()];
                let payload = vec![i as u8; 1_400 + (i as usize % 400)];
                let events = [
                    crate::EventData::new("Placed", payload),
                    crate::EventData::new("Paid", i.to_le_bytes().to_vec()),
                ];
                log.append(stream, crate::ExpectedVersion::Any, &events)?;
            }
            log.close()
        })();
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
pub fn open_mutated(data: &[u8], dir: &std::path::Path) -> usize {
    let base = base_log();
    let mut files: Vec<(String, Option<Vec<u8>>)> = base
        .iter()
        .map(|(name, bytes)| (name.clone(), Some(bytes.clone())))
        .collect();
    let (repair, edits) = match data.split_first() {
        Some((options, edits)) => (options & 1 == 1, edits),
        None => (false, data),
    };
    for edit in edits.chunks_exact(8).take(64) {
        let kind = edit[0] % 8;
        let file = edit[1] as usize % files.len();
        let offset = u32::from_le_bytes([edit[2], edit[3], edit[4], edit[5]]) as usize;
        let arg = u16::from_le_bytes([edit[6], edit[7]]);
        let other = base[arg as usize % base.len()].1.clone();
        let Some(bytes) = files[file].1.as_mut() else {
            continue;
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
    let _ = std::fs::create_dir_all(dir);
    for (name, bytes) in &files {
        if let Some(bytes) = bytes {
            let _ = std::fs::write(dir.join(name), bytes);
        }
    }
    let options = crate::Options::new()
        .segment_size(crate::limits::MIN_SEGMENT_SIZE_BYTES)
        .index_interval(4)
        .durability(crate::Durability::None)
        .repair(repair);
    let Ok(log) = options.open(dir) else {
        return 0;
    };
    let mut read = 0;
    if let Ok(all) = log.read_all(crate::Position::START) {
        read += all.take_while(Result::is_ok).count();
    }
    let _ = log.replay(crate::Position::START, |_| read += 1);
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
    let event = [crate::EventData::new("AfterOpen", b"x".to_vec())];
    let _ = log.append("order-1", crate::ExpectedVersion::Any, &event);
    let _ = log.close();
    read
}
