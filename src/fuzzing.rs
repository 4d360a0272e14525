//! Entry points for the fuzz targets in `fuzz/` and the corpus replay test.
//! Not part of the stable API, and compiled only with the `testing` feature
//! (the fuzz crate and this package's own tests enable it), so a program
//! that embeds seglog never builds it or the fault-injecting storage it
//! drives.

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

/// What the model knows of one append whose outcome is open: its sync
/// failed, so it may or may not be on disk.
#[derive(Debug, Clone)]
struct Pending {
    stream: usize,
    payloads: Vec<Vec<u8>>,
}

/// Streams of [`ops_model`].
const MODEL_STREAMS: [&str; 4] = ["a", "bb", "order-3", "invoice-44"];

/// Runs the operations encoded in `data` against a log in `dir` (which
/// must be empty or absent) under `Durability::Sync`, through the
/// fault-injecting storage, and checks every read against an in-memory
/// model. Panics when the log and the model disagree; returns how many
/// operations ran.
///
/// Each 4 bytes are one operation `[kind, a, b, c]`: 0-2 append a batch of
/// `1 + c % 3` events to stream `a % 4` (expected version `Any`, the
/// model's `Exact`, or `NoStream`, by `b % 3`; a wrong expectation must be
/// refused); 3 reads a stream forward from version `b % 8`; 4 reads it
/// backward; 5 reads everything (`read_all`, or with an odd `b` through a
/// `$all` and a stream subscription); 6 closes and reopens; 7 cuts the power
/// (the next open sees only what was synced); 8 makes the next flush fail
/// with EIO (the log is poisoned until reopened); 9 fills the disk for
/// segment creation, 10 frees it.
// A test oracle: its job is to panic when the log and the model disagree.
#[allow(clippy::expect_used, clippy::panic)]
pub fn ops_model(data: &[u8], dir: &std::path::Path) -> usize {
    use crate::storage::fault::{FaultStorage, Op};
    use crate::{Durability, Error, EventData, ExpectedVersion, Log, Options, Position};

    let storage = std::sync::Arc::new(FaultStorage::journal_only());
    let open = |dir: &std::path::Path| {
        Options::new()
            .segment_size(crate::limits::MIN_SEGMENT_SIZE_BYTES)
            .index_interval(4)
            .durability(Durability::Sync)
            .storage(std::sync::Arc::clone(&storage) as std::sync::Arc<dyn crate::storage::Storage>)
            .open(dir)
    };
    let mut dir = dir.to_path_buf();
    let mut log: Option<Log> = open(&dir).ok();
    let mut model: Vec<Vec<Vec<u8>>> = vec![Vec::new(); MODEL_STREAMS.len()];
    let mut pending: Option<Pending> = None;
    let mut poisoned = false;
    // A flush failure was injected since the last open: the sync thread's
    // own flushes (dropping the clean flag after a reopen) may meet it, so
    // the log may be poisoned without an append having failed.
    let mut flush_fault = false;
    let mut generation = 0;
    let mut ran = 0;

    // After a reopen: the pending append is either whole in the log or
    // absent; then log and model must agree exactly.
    let reconcile = |log: &Log, model: &mut Vec<Vec<Vec<u8>>>, pending: &mut Option<Pending>| {
        if let Some(p) = pending.take() {
            let have = log
                .stream_version(MODEL_STREAMS[p.stream])
                .map_or(0, |v| v + 1);
            let before = model[p.stream].len() as u64;
            assert!(
                have == before || have == before + p.payloads.len() as u64,
                "a failed append is half there: {have} events, model {before} + {}",
                p.payloads.len()
            );
            if have > before {
                model[p.stream].extend(p.payloads);
            }
        }
        for (s, name) in MODEL_STREAMS.iter().enumerate() {
            let got: Vec<Vec<u8>> = log
                .read_stream(name, 0)
                .expect("read_stream after reopen")
                .map(|e| e.expect("event").payload().to_vec())
                .collect();
            assert!(
                got == model[s],
                "stream {name} after reopen: {} events, model {}",
                got.len(),
                model[s].len()
            );
        }
    };

    for op in data.chunks_exact(4).take(200) {
        ran += 1;
        let (kind, a, b, c) = (op[0] % 11, op[1], op[2], op[3]);
        let s = a as usize % MODEL_STREAMS.len();
        let name = MODEL_STREAMS[s];
        match kind {
            0..=2 => {
                let Some(l) = log.as_ref() else { continue };
                let count = 1 + usize::from(c % 3);
                let payloads: Vec<Vec<u8>> = (0..count)
                    .map(|k| vec![b ^ k as u8; 1 + usize::from(b) * 256 + k])
                    .collect();
                let events: Vec<EventData> = payloads
                    .iter()
                    .map(|p| EventData::new("M", p.clone()))
                    .collect();
                let len = model[s].len() as u64;
                let expected = match b % 3 {
                    0 => ExpectedVersion::Any,
                    1 => ExpectedVersion::Exact(len.wrapping_sub(u64::from(c % 2))),
                    _ => ExpectedVersion::NoStream,
                };
                let fits = expected.matches(len.checked_sub(1));
                match l.append(name, expected, &events) {
                    Ok(r) => {
                        assert!(fits, "{expected:?} accepted at {len} events");
                        assert!(!poisoned, "a poisoned log acknowledged an append");
                        assert_eq!(r.first_version, len);
                        model[s].extend(payloads);
                    }
                    Err(Error::WrongExpectedVersion { actual, .. }) => {
                        assert!(!fits, "{expected:?} refused at {len} events");
                        assert_eq!(actual, len.checked_sub(1));
                    }
                    Err(Error::Poisoned { .. }) if !poisoned && fits => {
                        poisoned = true;
                        pending = Some(Pending {
                            stream: s,
                            payloads,
                        });
                    }
                    Err(Error::Poisoned { .. } | Error::Io { .. }) => {}
                    Err(e) => panic!("append: unexpected {e}"),
                }
            }
            3 | 4 => {
                let Some(l) = log.as_ref() else { continue };
                if pending.is_some() {
                    continue;
                }
                let from = u64::from(b % 8);
                let (got, want): (Vec<Vec<u8>>, Vec<Vec<u8>>) = if kind == 3 {
                    let got = l.read_stream(name, from).expect("read_stream");
                    let want = model[s].iter().skip(from as usize).cloned().collect();
                    (
                        got.map(|e| e.expect("event").payload().to_vec()).collect(),
                        want,
                    )
                } else {
                    let got = l.read_stream_backward(name, from).expect("backward");
                    let keep = (from as usize + 1).min(model[s].len());
                    let want = model[s][..keep].iter().rev().cloned().collect();
                    (
                        got.map(|e| e.expect("event").payload().to_vec()).collect(),
                        want,
                    )
                };
                assert!(
                    got == want,
                    "{name} from {from} (kind {kind}): {} events, model {}",
                    got.len(),
                    want.len()
                );
            }
            5 if b % 2 == 1 => {
                // Subscriptions: `$all` from the start and one stream from
                // `c % 8` hand out the model's events, then find the head.
                let Some(l) = log.as_ref() else { continue };
                if pending.is_some() {
                    continue;
                }
                let drain = |mut sub: crate::Subscription| {
                    let mut got = Vec::new();
                    loop {
                        match sub.next_timeout(std::time::Duration::ZERO) {
                            Ok(Some(e)) => got.push(e),
                            Ok(None) => return got,
                            Err(Error::Poisoned { .. }) if poisoned || flush_fault => return got,
                            Err(e) => panic!("subscription: unexpected {e}"),
                        }
                    }
                };
                let mut counts = vec![0usize; MODEL_STREAMS.len()];
                for e in drain(l.subscribe_all(Position::START).expect("subscribe_all")) {
                    let s = MODEL_STREAMS
                        .iter()
                        .position(|n| *n == e.stream())
                        .expect("known");
                    assert_eq!(e.version(), counts[s] as u64, "subscription order");
                    assert!(
                        e.payload() == &model[s][counts[s]][..],
                        "subscription payload"
                    );
                    counts[s] += 1;
                }
                let lens: Vec<usize> = model.iter().map(Vec::len).collect();
                assert_eq!(counts, lens, "subscribe_all");
                let from = usize::from(c % 8);
                let got: Vec<Vec<u8>> =
                    drain(l.subscribe_stream(name, from as u64).expect("subscribe"))
                        .iter()
                        .map(|e| e.payload().to_vec())
                        .collect();
                let want: Vec<Vec<u8>> = model[s].iter().skip(from).cloned().collect();
                assert!(got == want, "subscribe_stream {name} from {from}");
            }
            5 => {
                let Some(l) = log.as_ref() else { continue };
                if pending.is_some() {
                    continue;
                }
                let mut counts = vec![0usize; MODEL_STREAMS.len()];
                for e in l.read_all(Position::START).expect("read_all") {
                    let e = e.expect("event");
                    let s = MODEL_STREAMS
                        .iter()
                        .position(|n| *n == e.stream())
                        .expect("known");
                    assert_eq!(e.version(), counts[s] as u64);
                    assert!(e.payload() == &model[s][counts[s]][..], "read_all payload");
                    counts[s] += 1;
                }
                let lens: Vec<usize> = model.iter().map(Vec::len).collect();
                assert_eq!(counts, lens, "read_all");
            }
            6 | 7 => {
                if let Some(l) = log.take() {
                    if kind == 6 {
                        let _ = l.close();
                    } else {
                        // Power cut: only what was synced by now is kept
                        // (the log is dropped after, so its threads stop).
                        let points = storage.durability_points();
                        drop(l);
                        let image = storage.image_at(points);
                        generation += 1;
                        let next = dir.with_extension(format!("cut{generation}"));
                        if let Some(image) = image {
                            image.write_to(&dir, &next, None, |_| false).expect("image");
                            storage.adopt(&next).expect("adopt the image");
                        }
                        dir = next;
                    }
                }
                storage.heal();
                poisoned = false;
                flush_fault = false;
                match open(&dir) {
                    Ok(l) => {
                        reconcile(&l, &mut model, &mut pending);
                        log = Some(l);
                    }
                    Err(e) => panic!("reopen: {e}"),
                }
            }
            8 => {
                storage.fail(Op::Flush, 0, 5, false);
                flush_fault = true;
            }
            9 => storage.fail(Op::Reserve, 0, 28, true),
            _ => storage.heal(),
        }
    }
    if let Some(l) = log {
        let _ = l.close();
    }
    ran
}
