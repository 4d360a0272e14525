//! Crypto-shredding end to end: encrypted events read back decrypted on
//! every read path, `forget` erases them in place (positions, versions,
//! types and plain metadata kept, the chain still verifying), across a
//! reopen and for a `Reader`; keys and key stores that do not fit are
//! errors that say so.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use seglog::{
    AUDIT_STREAM, Error, EventData, ExpectedVersion, FORGET_EVENT, Log, MasterKey, Options,
    PayloadState, Position, Reader, RecordedEvent, Upcasted, Upcasters,
};

const SEGMENT: u64 = 1 << 20;

fn master() -> MasterKey {
    MasterKey::from_bytes([0x42; 32])
}

fn options() -> Options {
    Options::new().segment_size(SEGMENT).master_key(master())
}

/// `(stream, version, type, payload, metadata, state)` of every event.
type Seen = (String, u64, String, Vec<u8>, Vec<u8>, PayloadState);

fn seen(e: &RecordedEvent) -> Seen {
    (
        e.stream().to_string(),
        e.version(),
        e.event_type().to_string(),
        e.payload().to_vec(),
        e.metadata().to_vec(),
        e.payload_state(),
    )
}

fn all(log: &Log) -> Vec<Seen> {
    log.read_all(Position::START)
        .unwrap()
        .map(|e| seen(&e.unwrap()))
        .collect()
}

/// Appends a mix: plain, encrypted under the stream, under a named
/// subject, with metadata encrypted too.
fn append_mix(log: &Log) {
    log.append(
        "order-1",
        ExpectedVersion::NoStream,
        &[
            EventData::new("Placed", &b"plain"[..]).with_metadata(&b"m0"[..]),
            EventData::new("Paid", &b"by card 4242"[..])
                .with_metadata(&b"m1"[..])
                .encrypted_for("customer:42"),
        ],
    )
    .unwrap();
    log.append(
        "order-2",
        ExpectedVersion::NoStream,
        &[EventData::new("Placed", &b"order two"[..])
            .with_metadata(&b"secret-meta"[..])
            .encrypted()
            .encrypt_metadata()],
    )
    .unwrap();
    log.append(
        "customer-42",
        ExpectedVersion::Any,
        &[EventData::new("Moved", &b"12 Rue X"[..]).encrypted_for("customer:42")],
    )
    .unwrap();
}

fn expected_mix() -> Vec<Seen> {
    let s = |stream: &str, v, t: &str, p: &[u8], m: &[u8], st| {
        (stream.into(), v, t.into(), p.to_vec(), m.to_vec(), st)
    };
    vec![
        s("order-1", 0, "Placed", b"plain", b"m0", PayloadState::Plain),
        s(
            "order-1",
            1,
            "Paid",
            b"by card 4242",
            b"m1",
            PayloadState::Decrypted,
        ),
        s(
            "order-2",
            0,
            "Placed",
            b"order two",
            b"secret-meta",
            PayloadState::Decrypted,
        ),
        s(
            "customer-42",
            0,
            "Moved",
            b"12 Rue X",
            b"",
            PayloadState::Decrypted,
        ),
    ]
}

fn segment_bytes(dir: &Path) -> Vec<u8> {
    common::segment_files(dir)
        .iter()
        .flat_map(|(_, p)| std::fs::read(p).unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn encrypted_and_plain_events_read_back_on_every_path() {
    let dir = common::tempdir();
    let log = options().open(dir.path()).unwrap();
    append_mix(&log);
    assert_eq!(all(&log), expected_mix());

    let mut replayed = Vec::new();
    log.replay(Position::START, |e| {
        replayed.push((
            e.payload().to_vec(),
            e.metadata().to_vec(),
            e.payload_state(),
        ))
    })
    .unwrap();
    let want: Vec<_> = expected_mix()
        .into_iter()
        .map(|s| (s.3, s.4, s.5))
        .collect();
    assert_eq!(replayed, want);

    let forward: Vec<_> = log
        .read_stream("order-1", 0)
        .unwrap()
        .map(|e| seen(&e.unwrap()))
        .collect();
    assert_eq!(forward, expected_mix()[..2]);
    let backward: Vec<_> = log
        .read_stream_backward("order-1", u64::MAX)
        .unwrap()
        .map(|e| e.unwrap().payload().to_vec())
        .collect();
    assert_eq!(backward, [b"by card 4242".to_vec(), b"plain".to_vec()]);
    let mut streamed = Vec::new();
    log.replay_stream("order-2", 0, |e| streamed.push(e.metadata().to_vec()))
        .unwrap();
    assert_eq!(streamed, [b"secret-meta".to_vec()]);

    let mut sub = log.subscribe_stream("customer-42", 0).unwrap();
    let live = sub.next_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(seen(&live), expected_mix()[3]);
    let consumer = log.consumer("c").unwrap();
    let mut sub = consumer.subscribe().unwrap();
    let first = sub.next_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(seen(&first), expected_mix()[0]);

    // Neither a payload, encrypted metadata nor a subject reaches a segment.
    let bytes = segment_bytes(dir.path());
    assert!(contains(&bytes, b"plain"));
    for secret in [
        &b"by card 4242"[..],
        b"secret-meta",
        b"12 Rue X",
        b"customer:42",
    ] {
        assert!(
            !contains(&bytes, secret),
            "{:?} on disk",
            String::from_utf8_lossy(secret)
        );
    }
    let keys = dir.path().join("keys");
    let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!contains(&std::fs::read(&keys).unwrap(), b"customer:42"));
}

#[test]
fn forget_erases_in_place_and_the_chain_still_verifies() {
    let dir = common::tempdir();
    let log = options().open(dir.path()).unwrap();
    append_mix(&log);
    let digest = log.digest().unwrap();
    let before = log
        .read_all(Position::START)
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();

    let audit_at = log.forget("customer:42").unwrap();
    let after: Vec<_> = log
        .read_all(Position::START)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(after.len(), before.len() + 1, "the $audit event follows");
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (
                b.stream(),
                b.version(),
                b.position(),
                b.event_type(),
                b.id(),
                b.timestamp_micros()
            ),
            (
                a.stream(),
                a.version(),
                a.position(),
                a.event_type(),
                a.id(),
                a.timestamp_micros()
            )
        );
    }
    let states: Vec<_> = after
        .iter()
        .map(|e| (e.payload_state(), e.payload().to_vec()))
        .collect();
    assert_eq!(
        states[..4],
        [
            (PayloadState::Plain, b"plain".to_vec()),
            (PayloadState::Erased, Vec::new()),
            (PayloadState::Decrypted, b"order two".to_vec()),
            (PayloadState::Erased, Vec::new()),
        ]
    );
    assert_eq!(after[1].metadata().as_ref(), b"m1", "plain metadata stays");
    assert!(after[1].is_erased() && !after[2].is_erased());

    let audit = &after[4];
    assert_eq!(
        (audit.stream(), audit.event_type(), audit.position()),
        (AUDIT_STREAM, FORGET_EVENT, audit_at)
    );
    let hash = log.subject_hash("customer:42").unwrap();
    assert_eq!(hash.len(), 64);
    let text = std::str::from_utf8(audit.payload()).unwrap();
    assert_eq!(
        text,
        format!("{{\"key_id\":1,\"subject_hash\":\"{hash}\"}}")
    );

    let mut erased = 0;
    log.replay(Position::START, |e| erased += usize::from(e.is_erased()))
        .unwrap();
    assert_eq!(erased, 2);
    let report = log.verify(Some(&digest)).unwrap();
    assert!(report.is_intact(), "{:?}", report.failure);

    assert!(matches!(
        log.forget("customer:42"),
        Err(Error::UnknownSubject { .. })
    ));
    assert!(matches!(
        log.forget("nobody"),
        Err(Error::UnknownSubject { .. })
    ));
    // A returning customer gets a new key.
    log.append(
        "customer-42",
        ExpectedVersion::Exact(0),
        &[EventData::new("Back", &b"hello again"[..]).encrypted_for("customer:42")],
    )
    .unwrap();
    log.close().unwrap();

    let log = options().open(dir.path()).unwrap();
    let reopened = all(&log);
    assert_eq!(reopened[1].5, PayloadState::Erased);
    assert_eq!(reopened[3].5, PayloadState::Erased);
    assert_eq!(reopened[5].3, b"hello again");
    assert!(log.verify(Some(&digest)).unwrap().is_intact());
}

#[test]
fn a_reader_sees_keys_made_and_forgotten_after_it_opened() {
    let dir = common::tempdir();
    let log = options().open(dir.path()).unwrap();
    log.append(
        "a",
        ExpectedVersion::Any,
        &[EventData::new("T", &b"first"[..]).encrypted()],
    )
    .unwrap();
    let reader = Reader::open_with(dir.path(), &options()).unwrap();
    log.append(
        "b",
        ExpectedVersion::Any,
        &[EventData::new("T", &b"second"[..]).encrypted()],
    )
    .unwrap();
    let payloads = |r: &Reader| -> Vec<(Vec<u8>, PayloadState)> {
        r.read_all(Position::START)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.stream() != AUDIT_STREAM)
            .map(|e| (e.payload().to_vec(), e.payload_state()))
            .collect()
    };
    assert_eq!(
        payloads(&reader),
        [
            (b"first".to_vec(), PayloadState::Decrypted),
            (b"second".to_vec(), PayloadState::Decrypted),
        ]
    );
    log.forget("a").unwrap();
    assert_eq!(
        payloads(&reader),
        [
            (Vec::new(), PayloadState::Erased),
            (b"second".to_vec(), PayloadState::Decrypted),
        ]
    );
    let mut seen = Vec::new();
    reader
        .replay(Position::START, |e| seen.push(e.payload_state()))
        .unwrap();
    assert_eq!(seen[..2], [PayloadState::Erased, PayloadState::Decrypted]);
}

#[test]
fn keys_that_do_not_fit_are_errors_that_say_so() {
    let dir = common::tempdir();
    let log = options().open(dir.path()).unwrap();
    append_mix(&log);
    log.close().unwrap();

    let wrong = Options::new()
        .master_key(MasterKey::from_bytes([1; 32]))
        .open(dir.path());
    assert!(
        matches!(wrong, Err(Error::WrongMasterKey { ref path }) if path.ends_with("keys")),
        "{wrong:?}"
    );
    let wrong = Reader::open_with(
        dir.path(),
        &Options::new().master_key(MasterKey::from_bytes([1; 32])),
    );
    assert!(matches!(wrong, Err(Error::WrongMasterKey { .. })));

    let plain = Log::open(dir.path()).unwrap();
    let (events, error) = common::try_read_from(&plain, Position::START);
    assert_eq!(
        events.len(),
        1,
        "the plain event before the first encrypted one"
    );
    assert!(matches!(error, Some(Error::NoMasterKey)), "{error:?}");
    let sealed = [EventData::new("T", &b"x"[..]).encrypted()];
    assert!(matches!(
        plain.append("s", ExpectedVersion::Any, &sealed),
        Err(Error::NoMasterKey)
    ));
    assert!(matches!(
        plain.forget("customer:42"),
        Err(Error::NoMasterKey)
    ));
    plain.close().unwrap();

    let keys = dir.path().join("keys");
    let mut bytes = std::fs::read(&keys).unwrap();
    bytes[70] ^= 1;
    std::fs::write(&keys, &bytes).unwrap();
    match options().open(dir.path()) {
        Err(Error::Corrupt { segment, .. }) => assert_eq!(segment, keys),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_subjects_are_refused_and_nothing_is_written() {
    let dir = common::tempdir();
    let log = options().open(dir.path()).unwrap();
    for subject in [
        String::new(),
        "x".repeat(seglog::limits::MAX_SUBJECT_BYTES + 1),
    ] {
        let e = [EventData::new("T", &b"x"[..]).encrypted_for(&subject)];
        assert!(matches!(
            log.append("s", ExpectedVersion::Any, &e),
            Err(Error::InvalidSubject { .. })
        ));
    }
    assert_eq!(log.stream_count(), 0);
    assert!(!dir.path().join("keys").exists());
    assert_eq!(format!("{:?}", master()), "MasterKey(..)");
}

/// `append_many` makes every new subject's key in one store rewrite and
/// seals each request's events.
#[test]
fn append_many_seals_each_request() {
    let dir = common::tempdir();
    let log = options().open(dir.path()).unwrap();
    let a = [EventData::new("T", &b"one"[..]).encrypted()];
    let b = [EventData::new("T", &b"two"[..]).encrypted_for("p:1")];
    let requests = [
        seglog::AppendRequest {
            stream: "a",
            expected: ExpectedVersion::Any,
            events: &a,
        },
        seglog::AppendRequest {
            stream: "b",
            expected: ExpectedVersion::Any,
            events: &b,
        },
        seglog::AppendRequest {
            stream: "",
            expected: ExpectedVersion::Any,
            events: &b,
        },
    ];
    let results = log.append_many(&requests).unwrap();
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(matches!(results[2], Err(Error::EmptyStreamName)));
    let payloads: Vec<_> = all(&log).into_iter().map(|s| (s.3, s.5)).collect();
    assert_eq!(
        payloads,
        [
            (b"one".to_vec(), PayloadState::Decrypted),
            (b"two".to_vec(), PayloadState::Decrypted),
        ]
    );
    log.forget("p:1").unwrap();
    assert_eq!(all(&log)[1].5, PayloadState::Erased);
}

/// Upcasters run on the decrypted payload; an erased event passes through
/// them untouched.
#[test]
fn upcasters_see_plaintext_and_skip_erased_events() {
    let dir = common::tempdir();
    let upcasters = Upcasters::builder()
        .step("T", 1, &["T"], |input| {
            let mut p = input.payload().to_vec();
            p.extend_from_slice(b"+v2");
            Ok(vec![Upcasted::new("T", p)])
        })
        .build()
        .unwrap();
    let log = options().upcasters(upcasters).open(dir.path()).unwrap();
    for s in ["a", "b"] {
        log.append(
            s,
            ExpectedVersion::Any,
            &[EventData::new("T", &b"p"[..]).encrypted()],
        )
        .unwrap();
    }
    log.forget("a").unwrap();
    let got: Vec<_> = all(&log)
        .into_iter()
        .filter(|s| s.0 != AUDIT_STREAM)
        .map(|s| (s.3, s.5))
        .collect();
    assert_eq!(
        got,
        [
            (Vec::new(), PayloadState::Erased),
            (b"p+v2".to_vec(), PayloadState::Decrypted),
        ]
    );
    let mut replayed = Vec::new();
    log.replay(Position::START, |e| {
        replayed.push((e.payload().to_vec(), e.schema_version()))
    })
    .unwrap();
    assert_eq!(replayed[..2], [(Vec::new(), 1), (b"p+v2".to_vec(), 2)]);
}
