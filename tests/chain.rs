//! The hash chain (issue 28): digests that move with every append and only
//! then, agree between the writer, a `Reader` and a reopen (which goes on
//! from the sealed segments' records), and differ between logs.

mod common;

use std::os::unix::fs::FileExt;

use common::MIB;
use seglog::{Digest, EventData, ExpectedVersion, Log, Options, Position, Reader};

fn options() -> Options {
    Options::new().segment_size(MIB)
}

/// `n` appends of a 2 KB event each, over 5 streams.
fn append(log: &Log, from: usize, n: usize) {
    for i in from..from + n {
        let event = EventData::new("Noted", vec![(i % 251) as u8; 2000]).with_id(i as u128);
        log.append(&format!("s-{}", i % 5), ExpectedVersion::Any, &[event])
            .expect("append");
    }
}

fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_digest_covers_every_append_and_only_moves_with_one() {
    let dir = tempfile::tempdir().expect("dir");
    let log = options().open(dir.path()).expect("open");
    let empty = log.digest().expect("digest");
    assert_eq!((empty.links, empty.log_id), (0, log.log_id()));
    append(&log, 0, 3);
    let three = log.digest().expect("digest");
    assert_eq!(three.links, 3);
    assert_ne!(three.hash, empty.hash);
    assert_eq!(log.digest().expect("again"), three, "nothing appended");
    let ends = log.read_all(Position::START).expect("read").last();
    let last = ends.expect("an event").expect("event");
    assert_eq!(three.position, last.next_position());
    append(&log, 3, 1);
    let four = log.digest().expect("digest");
    assert_eq!(four.links, 4);
    assert_ne!(four.hash, three.hash);
    assert_eq!(four.to_string().parse::<Digest>().expect("parse"), four);
}

#[test]
fn the_writer_a_reader_and_a_reopen_agree_across_sealed_segments() {
    let dir = tempfile::tempdir().expect("dir");
    let log = options().open(dir.path()).expect("open");
    // About 500 events of 2 KB to a 1 MiB segment: four segments sealed.
    append(&log, 0, 2_300);
    let digest = log.digest().expect("digest");
    assert_eq!(digest.links, 2_300);
    let reader = Reader::open(dir.path()).expect("reader");
    assert_eq!(reader.digest().expect("reader's digest"), digest);
    log.close().expect("close");

    // Every sealed segment records the chain in its header (bytes
    // 1536..1632, docs/FORMAT.md); the close recorded how far it linked the
    // active one (an open record: flags word 1); a spare made ahead has
    // none.
    let files = segment_files(dir.path());
    let sealed = (digest.position.frame_offset() / MIB) as usize;
    assert!(
        sealed >= 4 && files.len() > sealed,
        "{} segments",
        files.len()
    );
    for (i, file) in files.iter().enumerate() {
        let mut record = [0u8; 96];
        std::fs::File::open(file)
            .expect("open")
            .read_exact_at(&mut record, 1536)
            .expect("read");
        let recorded = record.iter().any(|&b| b != 0);
        assert_eq!(recorded, i <= sealed, "{file:?}");
        if recorded {
            let open = u32::from_le_bytes(record[4..8].try_into().expect("4 bytes"));
            assert_eq!(open, u32::from(i == sealed), "{file:?}");
            let links = u64::from_le_bytes(record[8..16].try_into().expect("8 bytes"));
            assert_eq!(links == digest.links, i == sealed, "{file:?}");
        }
    }

    // A reopen goes on from the records; a fresh reader likewise.
    let log = options().open(dir.path()).expect("reopen");
    assert_eq!(log.digest().expect("digest"), digest);
    assert_eq!(
        Reader::open(dir.path())
            .expect("reader")
            .digest()
            .expect("digest"),
        digest
    );
    // Appends after an open record, across a seal: the record is replaced
    // and the next open agrees again.
    append(&log, 2_300, 600);
    let later = log.digest().expect("digest");
    assert_eq!(later.links, 2_900);
    log.close().expect("close");
    let log = options().open(dir.path()).expect("reopen");
    assert_eq!(log.digest().expect("digest"), later);
}

#[test]
fn the_same_events_in_another_log_make_another_chain() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (x, y) = (
        options().open(a.path()).expect("a"),
        options().open(b.path()).expect("b"),
    );
    append(&x, 0, 5);
    append(&y, 0, 5);
    let (dx, dy) = (x.digest().expect("x"), y.digest().expect("y"));
    assert_eq!((dx.links, dx.position), (dy.links, dy.position));
    assert_ne!(dx.hash, dy.hash, "seeded with each log's id");
}

#[test]
fn a_damaged_chain_record_is_no_record_and_the_chain_is_linked_again() {
    let dir = tempfile::tempdir().expect("dir");
    let log = options().open(dir.path()).expect("open");
    append(&log, 0, 1_200);
    let digest = log.digest().expect("digest");
    log.close().expect("close");
    let file = &segment_files(dir.path())[1];
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .expect("open");
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, 1536 + 60).expect("read");
    f.write_all_at(&[byte[0] ^ 0x10], 1536 + 60).expect("write");
    drop(f);
    // The record fails its CRC: an open links that segment from its
    // frames, and verify has one record fewer to check, no failure.
    let log = options().open(dir.path()).expect("reopen");
    assert_eq!(log.digest().expect("digest"), digest);
    let report = log.verify(Some(&digest)).expect("verify");
    assert!(report.is_intact(), "{:?}", report.failure);
    assert_eq!(report.chain_records, report.segments - 1, "{report:?}");
}
