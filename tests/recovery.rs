//! Recovery on open: a torn last frame is cut, garbage past the tail is
//! dropped, and damage to acknowledged data is `Error::Corrupt` (or
//! quarantined under `repair`), never silently skipped.

mod common;

use std::path::Path;

use common::*;
use seglog::{Durability, Error, EventData, ExpectedVersion, Log, Options, Position};

fn sync_options() -> Options {
    Options::new()
        .segment_size(MIB)
        .durability(Durability::Sync)
}

/// A `Durability::None` log open in `root/live`, and where its crash image
/// goes (`root/image`).
fn unsynced_log(root: &Path) -> (std::path::PathBuf, std::path::PathBuf, Log) {
    let live = root.join("live");
    let log = Options::new()
        .segment_size(MIB)
        .durability(Durability::None)
        .open(&live)
        .expect("open");
    (live, root.join("image"), log)
}

/// A payload of `len` random bytes whose last byte is not zero, so that
/// zeroing any suffix of a frame holding it changes the frame.
fn payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut p = rng.bytes(len);
    if let Some(last) = p.last_mut() {
        *last |= 1;
    }
    p
}

/// A crash image: a log whose last append lies beyond its segment's
/// watermark, copied while the writer still runs.
struct CrashImage {
    _tmp: tempfile::TempDir,
    image: std::path::PathBuf,
    /// Every event before the last append.
    before: Vec<Ev>,
    /// In-file (= log) offset and unpadded length of the last frame.
    last_frame: u64,
    last_len: u64,
    /// Offset of the frame before it.
    prev_frame: u64,
}

fn crash_image() -> CrashImage {
    let tmp = tempdir();
    let live = tmp.path().join("live");
    let image = tmp.path().join("image");
    let mut rng = Rng::new(4);
    let log = sync_options().open(&live).expect("open");
    let mut frames = Vec::new();
    let appends: [(&str, usize, usize); 4] =
        [("s", 2, 40), ("t", 1, 64), ("s", 1, 24), ("u", 2, 10)];
    for (stream, count, len) in appends {
        let events: Vec<EventData> = (0..count)
            .map(|i| {
                EventData::new("Made", payload(&mut rng, len + i))
                    .with_metadata(payload(&mut rng, 5))
                    .with_id(u128::from(rng.next_u64()))
            })
            .collect();
        let r = log
            .append(stream, ExpectedVersion::Any, &events)
            .expect("append");
        frames.push(r.first_position.frame_offset());
    }
    let all = snapshot(&log);
    copy_dir(&live, &image);
    log.close().expect("close");

    let seg = seg_path(&image, 0);
    let last_frame = frames[3];
    let last_len = frame_len(&seg, last_frame);
    // The premise of a crash image: the slot is not clean (its watermark is
    // where this run's open found the log's end), and each frame records the
    // durable end when it was written: under Sync the last frame records
    // that everything before it was durable (a lag of 0, header offset 20),
    // and nothing after it does.
    // (A new log has no slot yet: its watermark is the header's end.)
    if let Some(slot) = newest_slot(&seg) {
        assert_eq!(slot.watermark, 4096, "{slot:?}");
        assert_eq!(slot.flags & (SLOT_CLEAN | SLOT_SEALED), 0, "{slot:?}");
    }
    let lag = u32::from_le_bytes(
        read_at(&seg, last_frame + 20, 4)
            .try_into()
            .expect("4 bytes"),
    );
    assert_eq!(
        lag, 0,
        "the last frame was written once the others were durable"
    );
    let before: Vec<Ev> = all
        .into_iter()
        .filter(|e| e.position.frame_offset() < last_frame)
        .collect();
    assert_eq!(before.len(), 4);
    CrashImage {
        _tmp: tmp,
        image,
        before,
        last_frame,
        last_len,
        prev_frame: frames[2],
    }
}

/// Opens a damaged copy of the image and checks the torn frame was cut: the
/// earlier frames are all there and the log continues where it began.
fn check_cut(img: &CrashImage, dir: &Path, what: &str) {
    let log = sync_options()
        .open(dir)
        .unwrap_or_else(|e| panic!("{what}: open: {e}"));
    assert_eq!(snapshot(&log), img.before, "{what}");
    assert_eq!(
        log.stream_version("u"),
        None,
        "{what}: the torn frame defined u"
    );
    assert_eq!(log.stream_version("s"), Some(2), "{what}");
    let r = log
        .append(
            "u",
            ExpectedVersion::NoStream,
            &[EventData::new("After", &b"cut"[..])],
        )
        .unwrap_or_else(|e| panic!("{what}: append: {e}"));
    assert_eq!(r.first_position.frame_offset(), img.last_frame, "{what}");
    assert_eq!(r.first_version, 0, "{what}");
    log.close().expect("close");

    let log = Options::new().open(dir).expect("reopen");
    let events = snapshot(&log);
    assert_eq!(events.len(), img.before.len() + 1, "{what}");
    assert_eq!(events[..img.before.len()], img.before[..], "{what}");
    let new = events.last().expect("new event");
    assert_eq!(
        (
            new.stream.as_str(),
            new.version,
            new.event_type.as_str(),
            &new.payload[..]
        ),
        ("u", 0, "After", &b"cut"[..]),
        "{what}"
    );
    log.close().expect("close");
}

#[test]
fn torn_last_frame_is_cut_at_every_offset() {
    let img = crash_image();
    let seg = seg_name(0);
    let mut rng = Rng::new(44);
    let work = tempdir();
    // Every cut inside the unpadded frame zeroes the frame from there on (a
    // write that stopped at `cut`). Garbage (random bytes from the cut to
    // the frame's end: a write that left junk behind) is tried at every
    // offset of the length and checksum fields and every 8th byte after:
    // each case costs two opens, and the suite must stay fast.
    let mut cases = Vec::new();
    for cut in 0..img.last_len {
        cases.push((cut, false));
        if cut < 16 || cut % 8 == 3 {
            cases.push((cut, true));
        }
    }
    assert!(
        img.last_len > 100,
        "a frame long enough to cut in many places"
    );
    for (case, &(cut, garbage)) in cases.iter().enumerate() {
        let dir = work.path().join(format!("case-{case}"));
        copy_dir(&img.image, &dir);
        let path = dir.join(&seg);
        let n = (img.last_len - cut) as usize;
        let original = read_at(&path, img.last_frame + cut, n);
        let bytes = if garbage { rng.bytes(n) } else { vec![0; n] };
        assert_ne!(
            bytes, original,
            "cut {cut}: the damage must change the frame"
        );
        write_at(&path, img.last_frame + cut, &bytes);
        check_cut(&img, &dir, &format!("cut {cut} garbage {garbage}"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}

/// The same image, damaged below the watermark, is not a torn tail.
#[test]
fn damage_to_a_frame_a_later_frame_recorded_as_durable_is_corrupt() {
    let img = crash_image();
    let path = seg_path(&img.image, 0);
    flip_bit(&path, img.prev_frame + 50, 3);
    match sync_options().open(&img.image) {
        Err(e) => assert_corrupt(&e, &path, img.prev_frame),
        Ok(log) => panic!(
            "opened a log with damaged acknowledged data: {:?}",
            snapshot(&log)
        ),
    }
    // Nothing was cut by the failed open: restoring the bit restores the log.
    flip_bit(&path, img.prev_frame + 50, 3);
    let log = sync_options().open(&img.image).expect("open");
    let events = snapshot(&log);
    assert_eq!(events[..4], img.before[..]);
    assert_eq!(events.len(), 6, "the whole last frame is kept");
    assert!(events[4..].iter().all(|e| e.stream == "u"));
}

/// Builds a closed log over several 1 MiB segments; returns its events.
fn multi_segment_log(dir: &Path) -> Vec<Ev> {
    let log = Options::new()
        .segment_size(MIB)
        .durability(Durability::None)
        .open(dir)
        .expect("open");
    let mut rng = Rng::new(6);
    for i in 0..160u64 {
        let stream = format!("s{}", i % 5);
        let count = rng.range(1, 3) as usize;
        let events: Vec<EventData> = (0..count)
            .map(|_| {
                let len = rng.range(4_000, 12_000) as usize;
                EventData::new("Filled", payload(&mut rng, len)).with_id(u128::from(i))
            })
            .collect();
        log.append(&stream, ExpectedVersion::Any, &events)
            .expect("append");
    }
    let events = snapshot(&log);
    log.close().expect("close");
    assert!(segment_files(dir).len() >= 3, "needs sealed segments");
    events
}

#[test]
fn bit_flip_in_a_sealed_segment_is_reported_on_read_refused_on_scan_and_repairable() {
    let tmp = tempdir();
    let dir = tmp.path();
    let all = multi_segment_log(dir);
    let seg0 = seg_path(dir, 0);
    // A frame in the middle of the first (sealed) segment, of a stream that
    // already existed (so repair keeps every stream's name).
    let mut frames: Vec<u64> = all.iter().map(|e| e.position.frame_offset()).collect();
    frames.dedup();
    let in_first: Vec<u64> = frames.iter().copied().filter(|&f| f < MIB).collect();
    assert!(in_first.len() > 20);
    let victim = in_first[in_first.len() / 2];
    let victim_events: Vec<&Ev> = all
        .iter()
        .filter(|e| e.position.frame_offset() == victim)
        .collect();
    assert!(victim_events[0].version > 0);
    let slot = newest_slot(&seg0).expect("slot");
    assert_ne!(slot.flags & SLOT_SEALED, 0, "segment 0 is sealed: {slot:?}");
    let len = frame_len(&seg0, victim);
    flip_bit(&seg0, victim + len / 2, 5);

    let before: Vec<Ev> = all
        .iter()
        .filter(|e| e.position.frame_offset() < victim)
        .cloned()
        .collect();
    let after: Vec<Ev> = all
        .iter()
        .filter(|e| e.position.frame_offset() > victim)
        .cloned()
        .collect();

    // With the index files, open does not scan sealed segments: the damage
    // surfaces when read, naming the file and the frame's offset in it.
    {
        let log = Options::new().open(dir).expect("open with index files");
        let (got, err) = try_read_from(&log, Position::START);
        let got: Vec<Ev> = got.iter().map(Ev::from).collect();
        assert_eq!(got, before, "events before the damaged frame");
        assert_corrupt(&err.expect("an error"), &seg0, victim);
        // The borrowed path reports it the same way.
        let mut seen = 0usize;
        let err = log
            .replay(Position::START, |_| seen += 1)
            .expect_err("replay of a damaged frame");
        assert_corrupt(&err, &seg0, victim);
        assert_eq!(seen, before.len());
        // Reads of the damaged frame's stream find it too, whichever way
        // and path: each frame's checksum is checked where the stream's
        // back-links reach it.
        let stream = &victim_events[0].stream;
        let older: Vec<Ev> = before
            .iter()
            .filter(|e| &e.stream == stream)
            .cloned()
            .collect();
        let newer: Vec<Ev> = after
            .iter()
            .filter(|e| &e.stream == stream)
            .cloned()
            .collect();
        assert!(!older.is_empty() && !newer.is_empty());
        let mut got = Vec::new();
        let mut err = None;
        for e in log.read_stream(stream, 0).expect("read_stream") {
            match e {
                Ok(e) => got.push(Ev::from(&e)),
                Err(e) => err = Some(e),
            }
        }
        // Forward reads verify a stretch of frames before handing any out:
        // what comes first is a prefix of the events before the damage.
        assert_eq!(got[..], older[..got.len()], "forward read_stream");
        assert_corrupt(&err.expect("forward read_stream error"), &seg0, victim);
        let mut got = Vec::new();
        let err = log
            .replay_stream(stream, 0, |e| got.push(Ev::from(e)))
            .expect_err("replay_stream of a damaged frame");
        assert_eq!(got[..], older[..got.len()], "replay_stream");
        assert_corrupt(&err, &seg0, victim);
        let mut got = Vec::new();
        let mut err = None;
        for e in log
            .read_stream_backward(stream, u64::MAX)
            .expect("read_stream_backward")
        {
            match e {
                Ok(e) => got.push(Ev::from(&e)),
                Err(e) => err = Some(e),
            }
        }
        // Backward, every event after the damage comes first.
        assert_eq!(got, newer.iter().rev().cloned().collect::<Vec<_>>());
        assert_corrupt(&err.expect("backward error"), &seg0, victim);
        // Reading from after the damage serves everything after it.
        assert_eq!(
            read_from(&log, after[0].position)
                .iter()
                .map(Ev::from)
                .collect::<Vec<_>>(),
            after
        );
        // Reading from the damaged frame itself is the damage, not a bad position.
        let (got, err) = try_read_from(&log, victim_events[0].position);
        assert!(got.is_empty());
        assert_corrupt(&err.expect("an error"), &seg0, victim);
        log.close().expect("close");
    }

    // Without it, open scans every segment and refuses.
    remove_index_files(dir);
    match Options::new().open(dir) {
        Err(e) => assert_corrupt(&e, &seg0, victim),
        Ok(_) => panic!("open scanned past a damaged frame"),
    }

    // Repair quarantines exactly that frame and keeps everything else.
    let expected: Vec<Ev> = before.iter().chain(&after).cloned().collect();
    {
        let log = Options::new().repair(true).open(dir).expect("repair");
        let q = log.quarantined();
        assert_eq!(q.len(), 1, "{q:?}");
        assert_eq!(q[0].segment.file_name(), seg0.file_name());
        assert_eq!(q[0].offset, victim);
        assert_eq!(q[0].len_bytes, padded(len));
        assert_eq!(snapshot(&log), expected);
        log.close().expect("close");
    }
    // The decision is remembered: a normal open reads around it too, and
    // the log keeps working.
    let log = Options::new().open(dir).expect("open after repair");
    assert_eq!(log.quarantined().len(), 1);
    assert_eq!(snapshot(&log), expected);
    let stream = &victim_events[0].stream;
    let last = all
        .iter()
        .rev()
        .find(|e| &e.stream == stream)
        .expect("stream");
    let r = log
        .append(
            stream,
            ExpectedVersion::Exact(last.version),
            &[EventData::new("Z", &b"z"[..])],
        )
        .expect("append after repair");
    assert_eq!(r.first_version, last.version + 1);
    log.close().expect("close");
}

/// After a clean close the watermark is the end: damage to the last frame
/// is acknowledged data, not a torn tail.
#[test]
fn damaged_last_frame_after_clean_close_is_corrupt() {
    let tmp = tempdir();
    let dir = tmp.path();
    let log = sync_options().open(dir).expect("open");
    for i in 0..5u8 {
        log.append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("E", vec![i + 1; 100])],
        )
        .expect("append");
    }
    let all = snapshot(&log);
    log.close().expect("close");
    let seg = seg_path(dir, 0);
    let last = all.last().expect("events").position.frame_offset();
    let slot = newest_slot(&seg).expect("slot");
    assert_ne!(slot.flags & SLOT_CLEAN, 0, "{slot:?}");
    assert_eq!(
        slot.watermark,
        all.last().expect("events").next_position.frame_offset()
    );
    flip_bit(&seg, last + 60, 0);

    let log = Options::new().open(dir).expect("open with index files");
    let (got, err) = try_read_from(&log, Position::START);
    assert_eq!(got.iter().map(Ev::from).collect::<Vec<_>>(), all[..4]);
    assert_corrupt(&err.expect("error"), &seg, last);
    log.close().expect("close");

    remove_index_files(dir);
    match Options::new().open(dir) {
        Err(e) => assert_corrupt(&e, &seg, last),
        Ok(_) => panic!("a damaged acknowledged frame was treated as a torn tail"),
    }
}

fn garbage_after_tail(remove_index_files_first: bool) {
    let tmp = tempdir();
    let dir = tmp.path();
    let all = multi_segment_log(dir);
    let tail = all.last().expect("events").next_position.frame_offset();
    let (path, offset) = locate(dir, MIB, tail);
    assert!(
        offset > HEADER_BYTES && tail > MIB,
        "tail in a later segment"
    );
    let mut rng = Rng::new(55);
    write_at(&path, offset, &rng.bytes(3000));
    if remove_index_files_first {
        remove_index_files(dir);
    }

    let log = Options::new().open(dir).expect("open");
    assert_eq!(snapshot(&log), all);
    assert!(log.quarantined().is_empty());
    // The garbage is gone from the file, not just skipped.
    assert!(read_at(&path, offset, 3000).iter().all(|&b| b == 0));
    let r = log
        .append(
            "s0",
            ExpectedVersion::Any,
            &[EventData::new("After", &b"garbage"[..])],
        )
        .expect("append");
    assert_eq!(r.first_position.frame_offset(), tail);
    log.close().expect("close");

    let log = Options::new().open(dir).expect("reopen");
    let events = snapshot(&log);
    assert_eq!(events[..all.len()], all[..]);
    assert_eq!(events.len(), all.len() + 1);
    assert_eq!(&events[all.len()].payload[..], b"garbage");
    log.close().expect("close");
}

#[test]
fn garbage_after_the_tail_is_dropped() {
    garbage_after_tail(false);
}

#[test]
fn garbage_after_the_tail_is_dropped_on_a_full_scan() {
    garbage_after_tail(true);
}

/// A log that only ever saw an open and close stays empty and usable.
#[test]
fn empty_log_reopens_empty() {
    let tmp = tempdir();
    Options::new()
        .open(tmp.path())
        .expect("open")
        .close()
        .expect("close");
    let log: Log = Options::new().open(tmp.path()).expect("reopen");
    assert!(snapshot(&log).is_empty());
    assert_eq!(log.stream_count(), 0);
    let r = log
        .append(
            "a",
            ExpectedVersion::NoStream,
            &[EventData::new("A", &b""[..])],
        )
        .expect("append");
    assert_eq!(r.first_position.frame_offset(), HEADER_BYTES);
    match Options::new().open(tmp.path()) {
        Err(Error::Locked { dir }) => assert_eq!(dir, tmp.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    log.close().expect("close");
}

/// Segments keep the size they were made with; a reopen with a larger
/// `segment_size` applies to segments made from then on, including the one
/// a large append rolls into (even when a spare of the old size was left
/// ready by the previous run).
#[test]
fn reopen_with_a_larger_segment_size_takes_larger_events() {
    let tmp = tempdir();
    let dir = tmp.path();
    let log = Options::new().segment_size(MIB).open(dir).expect("open");
    log.append(
        "s",
        ExpectedVersion::NoStream,
        &[EventData::new("Small", &b"1"[..])],
    )
    .expect("append");
    // Wait for the preparer's spare segment, so the reopen finds one of the
    // old size ready.
    let spare = seg_path(dir, MIB);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !spare.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no spare segment made"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    log.close().expect("close");
    assert_eq!(std::fs::metadata(&spare).expect("spare").len(), MIB);

    let big = vec![0x5Au8; 3 * MIB as usize / 2];
    let log = Options::new()
        .segment_size(2 * MIB)
        .open(dir)
        .expect("reopen");
    let r = log
        .append(
            "s",
            ExpectedVersion::Exact(0),
            &[EventData::new("Big", big.clone())],
        )
        .expect("an event that fits the new segment size");
    assert_eq!(r.first_version, 1);
    let events = read_all(&log);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].payload().len(), big.len());
    log.close().expect("close");

    let log = Options::new().open(dir).expect("reopen");
    let events = snapshot(&log);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].payload, big);
    let sizes: Vec<u64> = segment_files(dir)
        .iter()
        .map(|(_, p)| std::fs::metadata(p).expect("stat").len())
        .collect();
    assert_eq!(sizes[0], MIB);
    // The big event went into a new, larger segment right after the first.
    assert_eq!(r.first_position.frame_offset(), MIB + HEADER_BYTES);
    let path = seg_path(dir, MIB);
    assert_eq!(std::fs::metadata(path).expect("stat").len(), 2 * MIB);
    log.close().expect("close");
}

/// A crash while several appends were written but none synced: a torn frame
/// with valid frames after it is still a torn write (no later frame recorded
/// it as durable), so the log is cut there and the later, never
/// acknowledged frames go with it: an append never half-appears and the
/// log keeps its order.
#[test]
fn torn_frame_inside_an_unsynced_group_cuts_the_rest_of_the_group() {
    let tmp = tempdir();
    let (live, image, log) = unsynced_log(tmp.path());
    let mut frames = Vec::new();
    for i in 0..5u64 {
        let r = log
            .append(
                "s",
                ExpectedVersion::Any,
                &[EventData::new("E", i.to_le_bytes().to_vec())],
            )
            .expect("append");
        frames.push(r.first_position.frame_offset());
    }
    copy_dir(&live, &image);
    log.close().expect("close");
    let path = seg_path(&image, 0);
    flip_bit(&path, frames[2] + 50, 1);
    let log = Options::new().segment_size(MIB).open(&image).expect("open");
    let events = snapshot(&log);
    assert_eq!(events.len(), 2, "cut at the torn frame: {events:?}");
    assert_eq!(log.stream_version("s"), Some(1));
    assert!(
        read_at(&path, frames[2], 4096).iter().all(|&b| b == 0),
        "the cut is cleared"
    );
}

/// Every file of the log but its lock: name, inode and contents.
fn files_of(dir: &Path) -> Vec<(std::ffi::OsString, u64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("dir entry"))
        .filter(|e| e.file_name() != "seglog.lock")
        .map(|e| {
            let ino = e.metadata().expect("metadata").ino();
            (e.file_name(), ino, std::fs::read(e.path()).expect("read"))
        })
        .collect();
    files.sort();
    files
}

/// An open that only reads (a projection rebuilt, an audit query) leaves
/// every file as it found it: no slot rewritten, no index file replaced,
/// no spare segment made, whatever it read and however it closed.
#[test]
fn a_session_that_only_reads_writes_nothing() {
    let tmp = tempdir();
    let dir = tmp.path();
    let log = Options::new().segment_size(MIB).open(dir).expect("open");
    for i in 0..3_000u64 {
        log.append(
            &format!("s-{}", i % 7),
            ExpectedVersion::Any,
            &[EventData::new("E", vec![(i % 251) as u8; 900])],
        )
        .expect("append");
    }
    let all = snapshot(&log);
    log.close().expect("close");
    let before = files_of(dir);
    assert!(before.len() > 4, "several segments and their index files");

    for sync in [false, true] {
        let log = Options::new().segment_size(MIB).open(dir).expect("reopen");
        assert_eq!(snapshot(&log), all);
        let s3: Vec<_> = log
            .read_stream("s-3", 0)
            .expect("read_stream")
            .map(|e| e.expect("event").version())
            .collect();
        assert_eq!(
            s3,
            (0..all.len() as u64 / 7 + 1)
                .take(s3.len())
                .collect::<Vec<_>>()
        );
        assert_eq!(log.stream_version("s-6"), Some(427));
        if sync {
            log.sync().expect("sync with nothing to sync");
            log.close().expect("close");
        } else {
            drop(log);
        }
        assert!(
            files_of(dir) == before,
            "a reading session changed the files"
        );
    }

    // Writing after such a session still works, and is kept.
    let log = Options::new()
        .segment_size(MIB)
        .durability(Durability::Sync)
        .open(dir)
        .expect("reopen");
    let r = log
        .append(
            "s-0",
            ExpectedVersion::Exact(428),
            &[EventData::new("E", &b"x"[..])],
        )
        .expect("append after a reading session");
    assert_eq!(r.first_version, 429);
    drop(log);
    let log = Options::new().segment_size(MIB).open(dir).expect("reopen");
    assert_eq!(log.stream_version("s-0"), Some(429));
    assert_eq!(snapshot(&log).len(), all.len() + 1);
}

/// A session that recovered a crashed log and appended nothing still
/// closes it cleanly: the next open finds the clean slot at the end.
#[test]
fn a_reading_session_after_a_crash_closes_the_log_cleanly() {
    let tmp = tempdir();
    let (live, image, log) = unsynced_log(tmp.path());
    for i in 0..10u64 {
        log.append(
            "s",
            ExpectedVersion::Any,
            &[EventData::new("E", i.to_le_bytes().to_vec())],
        )
        .expect("append");
    }
    log.sync().expect("sync");
    let all = snapshot(&log);
    copy_dir(&live, &image);
    drop(log);
    let seg = seg_path(&image, 0);
    let crashed = newest_slot(&seg);
    assert!(
        crashed.is_none_or(|s| s.flags & SLOT_CLEAN == 0),
        "{crashed:?}"
    );

    let log = Options::new()
        .segment_size(MIB)
        .open(&image)
        .expect("recover");
    assert_eq!(snapshot(&log), all);
    log.close().expect("close");
    let slot = newest_slot(&seg).expect("slot");
    assert_ne!(slot.flags & SLOT_CLEAN, 0, "{slot:?}");
    assert_eq!(
        slot.watermark,
        all.last().expect("events").next_position.frame_offset()
    );
    let log = Options::new()
        .segment_size(MIB)
        .open(&image)
        .expect("reopen");
    assert_eq!(snapshot(&log), all);
    assert_eq!(log.stream_version("s"), Some(9));
}
