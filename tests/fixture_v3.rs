//! The final on-disk format of issue 28 (version 3), pinned by a log the
//! code of that issue wrote: `tests/fixtures/v3-log/` holds
//!
//! - 1 MiB segments with chain records, the head of the log removed by
//!   retention (a `start` file naming the streams the removed segments
//!   defined, and the chain's link there), `$audit` events for that run
//!   and for a `forget`;
//! - events encrypted for two subjects under the key store `keys` (master
//!   key `[42; 32]`), one of the subjects forgotten;
//! - a soft-deleted and a hard-deleted stream (`$streams`);
//! - a consumer checkpoint; closed cleanly.
//!
//! `tests/fixtures/v3-log.dump` is every event from the log's start as
//! that code read it back, one line each, then the log's start, its signed
//! digest's text and the streams' last versions. Every test opens a copy
//! (opening writes to it) and must read exactly that, verify against the
//! digest, keep the deletions, and append after it.
//!
//! `SEGLOG_WRITE_FIXTURE=1 cargo test --test fixture_v3 -- --ignored`
//! writes both, only to pin a new format version beside this one.

use std::fs;
use std::path::{Path, PathBuf};

use seglog::ed25519_dalek::SigningKey;
use seglog::{
    Error, EventData, ExpectedVersion, Log, MasterKey, Options, Position, Reader, RecordedEvent,
    SignedDigest,
};

const FIXTURE: &str = "tests/fixtures/v3-log";
const DUMP: &str = "tests/fixtures/v3-log.dump";
const MIB: u64 = 1 << 20;

fn options() -> Options {
    Options::new()
        .segment_size(MIB)
        .master_key(MasterKey::from_bytes([42; 32]))
        .retention_interval(std::time::Duration::ZERO)
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn line_of(e: &RecordedEvent) -> String {
    format!(
        "{} {} {:?} {} {} {:?} {:?} {:016x} {:016x}",
        e.position().as_u64(),
        e.version(),
        e.stream(),
        e.event_type(),
        e.schema_version(),
        e.id(),
        e.payload_state(),
        fnv1a64(e.metadata()),
        fnv1a64(e.payload()),
    )
}

fn lines(events: impl Iterator<Item = seglog::Result<RecordedEvent>>) -> Vec<String> {
    events.map(|e| line_of(&e.expect("event"))).collect()
}

/// The streams whose last versions the dump pins.
const STREAMS: [&str; 6] = [
    "order-1",
    "order-2",
    "customer-7",
    "gone",
    "trimmed",
    "$audit",
];

fn copy_fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join("log");
    fs::create_dir(&dir).expect("dir");
    for entry in fs::read_dir(fixture_dir()).expect("the fixture") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
    (tmp, dir)
}

struct Dump {
    events: Vec<String>,
    start: u64,
    digest: String,
    versions: Vec<String>,
}

fn load_dump() -> Dump {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DUMP)).expect("dump");
    let mut dump = Dump {
        events: Vec::new(),
        start: 0,
        digest: String::new(),
        versions: Vec::new(),
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("event ") {
            dump.events.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("start ") {
            dump.start = rest.parse().expect("start");
        } else if let Some(rest) = line.strip_prefix("digest ") {
            dump.digest = rest.to_string();
        } else if let Some(rest) = line.strip_prefix("version ") {
            dump.versions.push(rest.to_string());
        }
    }
    dump
}

fn versions_of(last: impl Fn(&str) -> Option<u64>) -> Vec<String> {
    STREAMS
        .iter()
        .map(|s| format!("{s:?} {:?}", last(s)))
        .collect()
}

#[test]
fn the_v3_log_reads_verifies_and_goes_on_as_it_was_written() {
    let dump = load_dump();
    assert!(dump.events.len() > 50, "the dump holds the events");
    let (_tmp, dir) = copy_fixture();
    let log = options().open(&dir).expect("open the v3 fixture");
    let start = log.log_start();
    assert_eq!(start.as_u64(), dump.start);
    assert!(start > Position::START, "retention had removed the head");
    assert_eq!(lines(log.read_all(start).expect("read_all")), dump.events);
    assert_eq!(versions_of(|s| log.stream_version(s)), dump.versions);

    let signed: SignedDigest = dump.digest.parse().expect("the signed digest");
    let key = SigningKey::from_bytes(&[5; 32]);
    signed
        .verify_signature(&key.verifying_key())
        .expect("signature");
    let report = log.verify(Some(&signed.digest)).expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.against, Some(signed.digest));

    // The deletions and the forget hold, and the log goes on.
    assert!(matches!(
        log.read_stream("gone", 0),
        Err(Error::StreamDeleted { .. })
    ));
    assert_eq!(
        log.read_stream("trimmed", 0)
            .expect("read")
            .next()
            .unwrap()
            .unwrap()
            .version(),
        2
    );
    let erased = log.read_stream("customer-7", 0).expect("read");
    assert!(erased.map(|e| e.unwrap()).all(|e| e.is_erased()));
    let r = log
        .append(
            "order-1",
            ExpectedVersion::Any,
            &[EventData::new("Paid", "x").encrypted()],
        )
        .expect("append after the fixture");
    let back = log
        .read_all(r.first_position)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(&back.payload()[..], b"x");
    log.close().expect("close");

    let reader = Reader::open_with(&dir, &options()).expect("reader");
    let mut through_reader = lines(reader.read_all(start).expect("read_all"));
    through_reader.pop();
    assert_eq!(through_reader, dump.events);
    assert!(
        seglog::verify(&dir, Some(&signed.digest))
            .expect("verify")
            .is_intact()
    );
}

/// Writes the fixture (see the module docs).
#[test]
#[ignore = "writes tests/fixtures/v3-log: only to pin a new format version"]
fn write_v3_fixture() {
    if std::env::var_os("SEGLOG_WRITE_FIXTURE").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join("log");
    let log = options()
        .retain_max_bytes(2 * MIB)
        .open(&dir)
        .expect("create");
    write_events(&log);
    let start = log.log_start();
    let key = SigningKey::from_bytes(&[5; 32]);
    let digest = log.digest().expect("digest").sign(&key).to_string();
    let mut dump = String::new();
    for line in lines(log.read_all(start).expect("read_all")) {
        dump.push_str(&format!("event {line}\n"));
    }
    dump.push_str(&format!("start {}\n", start.as_u64()));
    dump.push_str(&format!("digest {digest}\n"));
    for line in versions_of(|s| log.stream_version(s)) {
        dump.push_str(&format!("version {line}\n"));
    }
    log.close().expect("close");
    let target = fixture_dir();
    let _ = fs::remove_dir_all(&target);
    fs::create_dir_all(&target).expect("fixture dir");
    for entry in fs::read_dir(&dir).expect("log dir") {
        let entry = entry.expect("entry");
        if entry.file_name() != "seglog.lock" {
            fs::copy(entry.path(), target.join(entry.file_name())).expect("copy");
        }
    }
    fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(DUMP), dump).expect("dump");
}

fn write_events(log: &Log) {
    let big = |i: u8| vec![i; 30_000];
    for round in 0..3u8 {
        for i in 0..40u8 {
            let event =
                EventData::new("Placed", big(i)).with_id(u128::from(round) << 8 | u128::from(i));
            let stream = format!("order-{}", i % 3);
            log.append(&stream, ExpectedVersion::Any, &[event])
                .expect("append");
        }
    }
    let private = |s: &str| EventData::new("Moved", format!("address of {s}")).with_metadata("m");
    log.append(
        "customer-7",
        ExpectedVersion::Any,
        &[private("7").encrypted()],
    )
    .expect("append");
    log.append(
        "customer-7",
        ExpectedVersion::Any,
        &[private("7b").encrypted().encrypt_metadata()],
    )
    .expect("append");
    log.append(
        "order-1",
        ExpectedVersion::Any,
        &[private("8").encrypted_for("customer:8")],
    )
    .expect("append");
    log.append(
        "gone",
        ExpectedVersion::NoStream,
        &[EventData::new("Opened", "g")],
    )
    .expect("append");
    let trimmed: Vec<_> = (0..4)
        .map(|i| EventData::new("Step", format!("{i}")))
        .collect();
    log.append("trimmed", ExpectedVersion::NoStream, &trimmed)
        .expect("append");
    let retained = log.apply_retention().expect("retention");
    assert!(retained.segments >= 1, "{retained:?}");
    log.forget("customer-7").expect("forget");
    log.truncate_stream("trimmed", 2).expect("truncate");
    log.delete_stream("gone").expect("delete");
    let mut billing = log.consumer("billing").expect("consumer");
    billing.ack(log.log_start()).expect("ack");
    billing.checkpoint().expect("checkpoint");
}
