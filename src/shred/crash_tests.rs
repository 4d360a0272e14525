//! Power cuts over the key store's writes and over `forget`: after a cut
//! at any durability point, every acknowledged event reads, an encrypted
//! one decrypted (its key was durable before it was acknowledged), and a
//! subject whose `forget` returned stays forgotten.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::storage::Storage;
use crate::storage::fault::{FaultStorage, Op};
use crate::{Durability, Error, EventData, ExpectedVersion, MasterKey, Options, PayloadState};
use crate::{Position, RecordedEvent};

const SEGMENT: u64 = crate::limits::MIN_SEGMENT_SIZE_BYTES;
const EIO: i32 = 5;

fn options(storage: &Arc<FaultStorage>) -> Options {
    Options::new()
        .segment_size(SEGMENT)
        .master_key(MasterKey::from_bytes([3; 32]))
        .storage(Arc::clone(storage) as Arc<dyn Storage>)
}

/// An acknowledged append of one encrypted event.
struct Ack {
    stream: String,
    version: u64,
    subject: String,
    payload: Vec<u8>,
    /// Durability points when its append returned.
    point: usize,
}

/// A forget: the points before it began and when it returned.
struct Forgot {
    subject: String,
    begun: usize,
    done: usize,
}

/// Durable encrypted appends over new and known subjects, with forgets of
/// some of them in between, and a subject that comes back after its
/// forget (a new key).
fn workload(dir: &Path, storage: &Arc<FaultStorage>) -> (Vec<Ack>, Vec<Forgot>) {
    let log = options(storage)
        .durability(Durability::Sync)
        .open(dir)
        .unwrap();
    let (mut acks, mut forgets) = (Vec::new(), Vec::new());
    for i in 0..60u32 {
        let stream = format!("s-{}", i % 5);
        let subject = format!("c:{}", i % 9 + i / 30 * 9);
        let payload = format!("event {i} of {subject}").into_bytes();
        let event = EventData::new("E", payload.clone()).encrypted_for(&subject);
        let r = log.append(&stream, ExpectedVersion::Any, &[event]).unwrap();
        acks.push(Ack {
            stream,
            version: r.first_version,
            subject,
            payload,
            point: storage.durability_points(),
        });
        if i % 20 == 19 {
            let subject = format!("c:{}", i % 7);
            let begun = storage.durability_points();
            log.forget(&subject).unwrap();
            let done = storage.durability_points();
            forgets.push(Forgot {
                subject,
                begun,
                done,
            });
        }
    }
    log.close().unwrap();
    (acks, forgets)
}

/// What an event read back must be after a cut at `point`.
fn check_event(point: usize, ack: &Ack, got: &RecordedEvent, forgets: &[Forgot]) {
    let forgot = forgets
        .iter()
        .filter(|f| f.subject == ack.subject && f.begun >= ack.point);
    let (mut must_erase, mut may_erase) = (false, false);
    for f in forgot {
        must_erase |= point >= f.done;
        may_erase |= point > f.begun;
    }
    match got.payload_state() {
        PayloadState::Decrypted if !must_erase => assert_eq!(got.payload(), &ack.payload[..]),
        PayloadState::Erased if may_erase => assert!(got.payload().is_empty()),
        state => panic!(
            "point {point}: {} v{} ({}) is {state:?}",
            ack.stream, ack.version, ack.subject
        ),
    }
}

/// Opens the log a cut at `point` left in `dir` and checks it.
fn check_cut(dir: &Path, point: usize, acks: &[Ack], forgets: &[Forgot]) {
    let log = Options::new()
        .segment_size(SEGMENT)
        .durability(Durability::None)
        .master_key(MasterKey::from_bytes([3; 32]))
        .open(dir)
        .unwrap_or_else(|e| panic!("point {point}: {e}"));
    let mut events: HashMap<(String, u64), RecordedEvent> = HashMap::new();
    for e in log.read_all(Position::START).unwrap() {
        let e = e.unwrap_or_else(|e| panic!("point {point}: {e}"));
        events.insert((e.stream().to_string(), e.version()), e);
    }
    for ack in acks {
        match events.get(&(ack.stream.clone(), ack.version)) {
            Some(got) => check_event(point, ack, got, forgets),
            None => assert!(ack.point > point, "point {point}: lost {}", ack.stream),
        }
    }
    let report = log.verify(None).unwrap();
    assert!(report.is_intact(), "point {point}: {:?}", report.failure);
    log.close().unwrap();
}

#[test]
fn every_power_cut_keeps_each_acknowledged_key_and_each_forget() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = Arc::new(FaultStorage::default());
    let (acks, forgets) = workload(&log_dir, &storage);
    assert_eq!(forgets.len(), 3);
    let mut checked = 0;
    storage.replay(|point, image, _| {
        let crash = dir.path().join(format!("crash-{point}"));
        image.write_to(&log_dir, &crash, None, |_| false).unwrap();
        check_cut(&crash, point, &acks, &forgets);
        std::fs::remove_dir_all(&crash).unwrap();
        checked += 1;
    });
    // Every new subject and every forget rewrites the store: four points
    // each (its file synced, renamed, directory synced), more than appends.
    assert!(checked > 100, "only {checked} points");
}

/// A key store that cannot be written fails the append that needed a new
/// key, with nothing appended; a forget whose rewrite fails keeps the key
/// and can be tried again.
#[test]
fn a_failed_key_store_write_fails_the_append_or_the_forget_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::default());
    let log = options(&storage).open(dir.path()).unwrap();
    let event = |p: &[u8]| [EventData::new("E", p.to_vec()).encrypted()];
    storage.fail(Op::Rename, 0, EIO, false);
    let failed = log.append("s", ExpectedVersion::Any, &event(b"one"));
    assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
    assert_eq!(log.stream_version("s"), None);
    log.append("s", ExpectedVersion::Any, &event(b"one"))
        .unwrap();

    // The preparer renames and syncs its spare segment too: once it is
    // ready, the next directory sync is the key store's.
    let started = std::time::Instant::now();
    while !matches!(*log.append.spare_state(), crate::append::Spare::Ready(_)) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no spare"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    storage.fail(Op::SyncDir, 0, EIO, false);
    assert!(matches!(log.forget("s"), Err(Error::Io { .. })));
    let payloads = || -> Vec<(Vec<u8>, PayloadState)> {
        log.read_all(Position::START)
            .unwrap()
            .map(Result::unwrap)
            .filter(|e| e.stream() == "s")
            .map(|e| (e.payload().to_vec(), e.payload_state()))
            .collect()
    };
    assert_eq!(payloads(), [(b"one".to_vec(), PayloadState::Decrypted)]);
    log.forget("s").unwrap();
    assert_eq!(payloads(), [(Vec::new(), PayloadState::Erased)]);
    let audits = log.read_stream(crate::AUDIT_STREAM, 0).unwrap().count();
    assert_eq!(audits, 2, "each attempt is recorded");
}
