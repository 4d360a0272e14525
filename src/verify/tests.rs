//! Tamper tests: each way of altering a log that the chain exists to
//! catch, detected and located (issue 28).

use std::path::{Path, PathBuf};

use crate::frame::{Checksum, Frame, decode, seal_crc};
use crate::segment::HEADER_BYTES;
use crate::{Digest, EventData, ExpectedVersion, FailureKind, Log, Options, Reader, verify};

const MIB: u64 = 1 << 20;

fn options() -> Options {
    Options::new().segment_size(MIB)
}

/// A log of `n` 2 KB events over 5 streams: about 500 to a segment.
fn log_with(dir: &Path, n: usize) -> Log {
    let log = options().open(dir).expect("open");
    append(&log, 0, n);
    log
}

fn append(log: &Log, from: usize, n: usize) {
    for i in from..from + n {
        let event = EventData::new("Noted", vec![(i % 251) as u8; 2000])
            .with_metadata(&b"{\"by\":\"alice\"}"[..])
            .with_id(i as u128);
        log.append(&format!("s-{}", i % 5), ExpectedVersion::Any, &[event])
            .expect("append");
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

/// Rewrites the first events frame at or after segment offset `from` of
/// `file` with `edit` applied to its bytes and its CRC recomputed, as
/// someone who knows the format would. Returns the frame's offset.
fn tamper(
    file: &Path,
    log_id: u128,
    from: u64,
    edit: impl FnOnce(&mut Vec<u8>, &Frame<'_>),
) -> u64 {
    let mut bytes = std::fs::read(file).expect("read");
    let name = file.file_name().and_then(|s| s.to_str()).expect("name");
    let base = crate::layout::parse_segment_file(name).expect("a segment");
    let checksum = Checksum::new(log_id);
    let mut o = HEADER_BYTES;
    loop {
        let (frame, padded) = decode(&bytes[o as usize..], base + o, &checksum).expect("a frame");
        if o >= from {
            let len = u32::from_le_bytes(bytes[o as usize..][..4].try_into().expect("4")) as usize;
            let mut copy = bytes[o as usize..][..padded as usize].to_vec();
            edit(&mut copy, &frame);
            seal_crc(&mut copy, len, base + o, &checksum);
            bytes[o as usize..][..padded as usize].copy_from_slice(&copy);
            std::fs::write(file, &bytes).expect("write");
            return o;
        }
        o += padded;
    }
}

/// The offset in the frame's bytes of its first event's payload, and of
/// its first event's metadata.
fn first_event(frame: &Frame<'_>) -> (usize, usize) {
    let Frame::Events(f) = frame else {
        panic!("not an events frame")
    };
    let e = f.events().next().expect("an event").expect("parses");
    (e.payload_start, e.payload_start - e.metadata.len())
}

fn sealed_log(dir: &Path) -> (u128, Digest) {
    let log = log_with(dir, 2_300);
    let digest = log.digest().expect("digest");
    let id = log.log_id();
    log.close().expect("close");
    (id, digest)
}

#[test]
fn an_intact_log_verifies_through_a_reader_beside_its_writer_and_against_a_digest() {
    let dir = tempfile::tempdir().expect("dir");
    let log = log_with(dir.path(), 1_200);
    let earlier = log.digest().expect("digest");
    append(&log, 1_200, 1_200);
    let reader = Reader::open(dir.path()).expect("reader");
    let report = reader.verify(Some(&earlier)).expect("verify");
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.against, Some(earlier));
    assert_eq!((report.frames, report.events), (2_400, 2_400));
    // (The writer's records may come after the reader mapped the segments:
    // it links those frames itself.)
    assert!(report.segments >= 4, "{report:?}");
    assert_eq!(report.head, log.digest().expect("digest"));
    // Beside the writer, while it appends: up to what was published.
    append(&log, 2_400, 10);
    let live = reader.verify(None).expect("verify");
    assert!(live.is_intact() && live.frames >= 2_400, "{live:?}");
    log.close().expect("close");
    let report = verify(dir.path(), Some(&earlier)).expect("verify");
    assert!(report.is_intact(), "{:?}", report.failure);
    assert!(report.index_files >= 4, "{report:?}");
    let text = report.to_string();
    assert!(
        text.starts_with(&format!("{} segments, 2410 frames", report.segments)),
        "{text}"
    );
    assert!(
        text.contains("holds the digest") && text.ends_with(": intact"),
        "{text}"
    );
    assert_eq!(
        report.chain_records, report.segments,
        "the close's open record too"
    );
}

#[test]
fn a_payload_changed_with_its_crc_recomputed_is_found_in_its_segment() {
    let dir = tempfile::tempdir().expect("dir");
    let (id, digest) = sealed_log(dir.path());
    let file = &segments(dir.path())[1];
    tamper(file, id, 8192, |bytes, frame| {
        let (payload, _) = first_event(frame);
        bytes[payload + 10] ^= 0x40;
    });
    // The reader's CRC checks pass: the frame reads, with the new payload.
    let report = verify(dir.path(), Some(&digest)).expect("verify");
    let failure = report.failure.clone().expect("detected");
    assert_eq!(failure.kind, FailureKind::ChainRecord, "{failure}");
    assert_eq!(&failure.segment, file);
    assert!(failure.reason.contains("changed after"), "{failure}");
    assert!(report.to_string().ends_with(&failure.to_string()));
}

#[test]
fn metadata_type_or_version_changed_are_each_found_in_their_segment() {
    type Edit = fn(&mut Vec<u8>, &Frame<'_>);
    let edits: [(&str, Edit); 3] = [
        ("metadata", |b, f| {
            let (_, metadata) = first_event(f);
            b[metadata + 8] = b'e';
        }),
        ("type", |b, f| {
            let (_, metadata) = first_event(f);
            // "Noted" ends just before the metadata.
            b[metadata - 1] = b'D';
        }),
        ("version", |b, _| b[24] ^= 1),
    ];
    for (what, edit) in edits {
        let dir = tempfile::tempdir().expect("dir");
        let (id, _) = sealed_log(dir.path());
        let file = &segments(dir.path())[2];
        tamper(file, id, 4096 * 50, edit);
        let report = verify(dir.path(), None).expect("verify");
        let failure = report
            .failure
            .unwrap_or_else(|| panic!("{what}: not detected"));
        assert_eq!(failure.kind, FailureKind::ChainRecord, "{what}: {failure}");
        assert_eq!(&failure.segment, file, "{what}");
    }
}

#[test]
fn a_change_in_the_active_segment_is_found_by_the_close_record_or_else_only_a_digest() {
    // After a clean close the active segment's open record covers it.
    let dir = tempfile::tempdir().expect("dir");
    let log = log_with(dir.path(), 100);
    let id = log.log_id();
    log.close().expect("close");
    let file = &segments(dir.path())[0];
    tamper(file, id, 4096 * 10, |b, f| b[first_event(f).0] ^= 1);
    let failure = verify(dir.path(), None)
        .expect("verify")
        .failure
        .expect("found");
    assert_eq!(failure.kind, FailureKind::ChainRecord, "{failure}");
    assert_eq!(&failure.segment, file);

    // A writer that stopped without a close left no record there: the
    // chain alone cannot tell, an earlier digest can (the threat model).
    let dir = tempfile::tempdir().expect("dir");
    let log = log_with(dir.path(), 100);
    let digest = log.digest().expect("digest");
    let id = log.log_id();
    log.sync().expect("sync");
    std::mem::forget(log);
    let file = &segments(dir.path())[0];
    let at = tamper(file, id, 4096 * 10, |b, f| b[first_event(f).0] ^= 1);
    assert!(verify(dir.path(), None).expect("verify").is_intact());
    let failure = verify(dir.path(), Some(&digest))
        .expect("verify")
        .failure
        .expect("found against the digest");
    assert_eq!(failure.kind, FailureKind::Digest, "{failure}");
    assert_eq!(&failure.segment, file);
    assert!(failure.offset > at, "the digest's last frame: {failure}");
}

#[test]
fn a_sealed_segment_deleted_from_the_middle_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let (_, digest) = sealed_log(dir.path());
    let files = segments(dir.path());
    std::fs::remove_file(&files[2]).expect("remove");
    let report = verify(dir.path(), Some(&digest)).expect("verify");
    let failure = report.failure.expect("detected");
    assert_eq!(failure.kind, FailureKind::Layout, "{failure}");
    assert!(failure.reason.contains("missing"), "{failure}");
    let missing_base = 2 * MIB;
    assert!(
        failure.reason.contains(&missing_base.to_string()),
        "{failure}"
    );
}

#[test]
fn two_segments_swapped_are_named() {
    let dir = tempfile::tempdir().expect("dir");
    let (_, digest) = sealed_log(dir.path());
    let files = segments(dir.path());
    let tmp = dir.path().join("swap");
    std::fs::rename(&files[1], &tmp).expect("rename");
    std::fs::rename(&files[2], &files[1]).expect("rename");
    std::fs::rename(&tmp, &files[2]).expect("rename");
    let report = verify(dir.path(), Some(&digest)).expect("verify");
    let failure = report.failure.expect("detected");
    assert_eq!(failure.kind, FailureKind::Layout, "{failure}");
    assert!(
        failure.segment == files[1] || failure.segment == files[2],
        "{failure}"
    );
}

#[test]
fn a_log_cut_back_to_an_older_state_fails_a_newer_digest() {
    let dir = tempfile::tempdir().expect("dir");
    let older = tempfile::tempdir().expect("older");
    let log = log_with(dir.path(), 1_000);
    log.close().expect("close");
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, older.path().join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let log = options().open(dir.path()).expect("reopen");
    append(&log, 1_000, 600);
    let newer = log.digest().expect("digest");
    log.close().expect("close");

    let report = verify(older.path(), Some(&newer)).expect("verify");
    let failure = report.failure.expect("detected");
    assert_eq!(failure.kind, FailureKind::Digest, "{failure}");
    assert!(
        failure.reason.contains("before the digest's 1600"),
        "{failure}"
    );
    assert_eq!(report.head.links, 1_000);
    // The same older state, appended to differently, forks: found where
    // the chain reaches the digest's length.
    let forked = options().open(older.path()).expect("open");
    for i in 0..600 {
        let event = EventData::new("Other", vec![1u8; 2000]).with_id(10_000 + i);
        forked
            .append("s-0", ExpectedVersion::Any, &[event])
            .expect("append");
    }
    forked.close().expect("close");
    let failure = verify(older.path(), Some(&newer))
        .expect("verify")
        .failure
        .expect("detected");
    assert_eq!(failure.kind, FailureKind::Digest, "{failure}");
    assert!(failure.reason.contains("changed"), "{failure}");
}

#[test]
fn a_segment_from_another_log_is_named() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (_, digest) = sealed_log(a.path());
    sealed_log(b.path());
    let (ours, theirs) = (segments(a.path()), segments(b.path()));
    std::fs::copy(&theirs[1], &ours[1]).expect("copy");
    let report = verify(a.path(), Some(&digest)).expect("verify");
    let failure = report.failure.expect("detected");
    assert_eq!(failure.kind, FailureKind::Layout, "{failure}");
    assert_eq!(failure.segment, ours[1]);
    assert!(failure.reason.contains("another log"), "{failure}");
}

#[test]
fn an_index_file_claim_made_false_under_a_fresh_checksum_is_found() {
    let dir = tempfile::tempdir().expect("dir");
    sealed_log(dir.path());
    let index = dir.path().join(crate::layout::index_file(MIB));
    let mut bytes = std::fs::read(&index).expect("read");
    // The file is its metadata, their CRC, then the sparse entries (their
    // count at byte 56, 16 bytes each): the last time entry's timestamp
    // ends 8 bytes before the CRC.
    let entries = u32::from_le_bytes(bytes[56..60].try_into().expect("4")) as usize;
    let crc_at = bytes.len() - entries * 16 - 4;
    bytes[crc_at - 16] ^= 1;
    let crc = crc32fast::hash(&bytes[..crc_at]);
    bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&index, &bytes).expect("write");
    let report = verify(dir.path(), None).expect("verify");
    let failure = report.failure.clone().expect("detected");
    assert_eq!(failure.kind, FailureKind::IndexFile, "{failure}");
    assert_eq!(report.index_files_unreadable, 0, "{report:?}");
    assert_eq!(failure.segment, segments(dir.path())[1]);
    assert!(failure.reason.contains("time entry"), "{failure}");
}
