//! `Reader`: a read-only follower of a log another handle or process
//! writes. It sees exactly what the writer published, across segment
//! rolls, without taking the writer's lock.
//!
//! The cross-process test runs this binary again as a writer and as a
//! reader (`child_writer` and `child_reader`, ignored, and no-ops unless
//! `SEGLOG_READER_CHILD` is set).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use seglog::{
    Durability, Error, EventData, ExpectedVersion, Log, Options, Position, Reader, RecordedEvent,
};

const CHILD_ENV: &str = "SEGLOG_READER_CHILD";
const WAIT: Duration = Duration::from_secs(20);

fn key(e: &RecordedEvent) -> String {
    format!(
        "{} {} {} {} {}",
        e.position().as_u64(),
        e.stream(),
        e.version(),
        e.event_type(),
        e.payload().len()
    )
}

fn writer(dir: &Path, durability: Durability) -> Log {
    Options::new()
        .segment_size(MIB)
        .durability(durability)
        .open(dir)
        .expect("open")
}

fn append_some(log: &Log, rng: &mut Rng, n: u64) {
    for _ in 0..n {
        let stream = format!("s-{}", rng.below(20));
        let len = rng.below(3_000) as usize;
        log.append(
            &stream,
            ExpectedVersion::Any,
            &[EventData::new("Tick", rng.bytes(len))],
        )
        .expect("append");
    }
}

#[test]
fn a_reader_sees_what_the_writer_published_across_rolls() {
    let dir = tempdir();
    let log = writer(dir.path(), Durability::None);
    let mut rng = Rng::new(11);
    append_some(&log, &mut rng, 300);
    let reader = Reader::open(dir.path()).expect("reader");
    let mut live = reader.subscribe_all(Position::START).expect("subscribe");
    let mut stream = reader.subscribe_stream("s-3", 2).expect("subscribe");
    append_some(&log, &mut rng, 1_500);
    assert!(
        segment_files(dir.path()).len() >= 3,
        "the test should roll segments"
    );
    let all: Vec<String> = read_all(&log).iter().map(key).collect();
    let mut seen = Vec::new();
    while seen.len() < all.len() {
        let e = live
            .next_timeout(WAIT)
            .expect("follow")
            .expect("an event in time");
        seen.push(key(&e));
    }
    assert!(seen == all, "the subscription differs from the log");
    let read: Vec<String> = reader
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| key(&e.expect("event")))
        .collect();
    assert!(read == all, "read_all differs from the log");
    let mut replayed = Vec::new();
    let end = reader
        .replay(Position::START, |e| replayed.push(e.position().as_u64()))
        .expect("replay");
    assert_eq!(replayed.len(), all.len());
    assert_eq!(end, read_all(&log).last().expect("events").next_position());
    let mut versions = Vec::new();
    reader
        .replay_stream("s-4", 0, |e| versions.push(e.version()))
        .expect("replay_stream");
    assert_eq!(versions, (0..versions.len() as u64).collect::<Vec<_>>());
    assert_eq!(Some(versions.len() as u64 - 1), log.stream_version("s-4"));
    for s in 0..20 {
        let name = format!("s-{s}");
        assert_eq!(
            reader.stream_version(&name).expect("version"),
            log.stream_version(&name)
        );
        let mine: Vec<String> = log
            .read_stream(&name, 0)
            .expect("read")
            .map(|e| key(&e.expect("e")))
            .collect();
        let theirs: Vec<String> = reader
            .read_stream(&name, 0)
            .expect("read")
            .map(|e| key(&e.expect("e")))
            .collect();
        assert_eq!(mine, theirs, "{name}");
        let back: Vec<String> = reader
            .read_stream_backward(&name, u64::MAX)
            .expect("read")
            .map(|e| key(&e.expect("e")))
            .collect();
        assert_eq!(
            back,
            mine.iter().rev().cloned().collect::<Vec<_>>(),
            "{name} backward"
        );
    }
    let want: Vec<String> = log
        .read_stream("s-3", 2)
        .expect("read")
        .map(|e| key(&e.expect("e")))
        .collect();
    for w in &want {
        let e = stream
            .next_timeout(WAIT)
            .expect("follow")
            .expect("an event in time");
        assert_eq!(&key(&e), w);
    }
    // The writer was never blocked: it still appends, and closes cleanly.
    append_some(&log, &mut rng, 5);
    log.close().expect("close");
    drop(reader);
    assert!(matches!(
        live.next_timeout(WAIT),
        Err(Error::Closed) | Ok(Some(_))
    ));
}

#[test]
fn a_reader_of_a_closed_log_loads_index_files_and_sync_logs_publish_late() {
    let dir = tempdir();
    let log = writer(dir.path(), Durability::Sync);
    let mut rng = Rng::new(12);
    append_some(&log, &mut rng, 150);
    let before: Vec<String> = read_all(&log).iter().map(key).collect();
    log.close().expect("close");
    let reader = Reader::open(dir.path()).expect("reader");
    let read: Vec<String> = reader
        .read_all(Position::START)
        .expect("read")
        .map(|e| key(&e.expect("e")))
        .collect();
    assert_eq!(read, before);
    // A writer reopening the log does not disturb the reader, and the
    // reader follows it.
    let log = writer(dir.path(), Durability::Sync);
    let mut live = reader.subscribe_all(Position::START).expect("subscribe");
    append_some(&log, &mut rng, 50);
    let all: Vec<String> = read_all(&log).iter().map(key).collect();
    let mut seen = Vec::new();
    while seen.len() < all.len() {
        seen.push(key(&live
            .next_timeout(WAIT)
            .expect("follow")
            .expect("in time")));
    }
    assert_eq!(seen, all);
    assert!(Reader::open(dir.path().join("missing")).is_err());
}

fn child(role: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            role,
            "--ignored",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn")
}

/// A writer process and a reader process started side by side: the reader
/// follows the writer live, through several segment rolls, and sees
/// exactly the log.
#[test]
fn a_reader_process_follows_a_writer_process() {
    let dir = tempdir();
    // The log must exist before the reader opens it.
    writer(dir.path(), Durability::None)
        .close()
        .expect("create");
    let started = Instant::now();
    let mut w = child("child_writer", dir.path());
    let mut r = child("child_reader", dir.path());
    let reader_out = BufReader::new(r.stdout.take().expect("stdout"));
    let seen: Vec<String> = reader_out
        .lines()
        .map(|l| l.expect("line"))
        // libtest prints "test child_reader ... " before the first line.
        .filter_map(|l| l.split_once("EVENT ").map(|(_, e)| e.to_string()))
        .collect();
    assert!(w.wait().expect("writer").success(), "writer failed");
    assert!(r.wait().expect("reader").success(), "reader failed");
    let log = Log::open(dir.path()).expect("reopen");
    let all: Vec<String> = read_all(&log).iter().map(key).collect();
    assert!(all.len() > 2_000, "{}", all.len());
    assert_eq!(seen.len(), all.len());
    assert!(
        seen == all,
        "the reader process saw something else than the log"
    );
    assert!(segment_files(dir.path()).len() >= 4, "rolls");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
#[ignore = "run by a_reader_process_follows_a_writer_process"]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let log = writer(Path::new(&dir), Durability::None);
    let mut rng = Rng::new(99);
    for round in 0..60 {
        append_some(&log, &mut rng, 40);
        if round % 8 == 0 {
            // Let the reader catch up to the head now and then, so it
            // waits there and must be woken.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    log.append(
        "control",
        ExpectedVersion::Any,
        &[EventData::new("Done", &b""[..])],
    )
    .expect("done");
    log.close().expect("close");
}

#[test]
#[ignore = "run by a_reader_process_follows_a_writer_process"]
fn child_reader() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let reader = Reader::open(Path::new(&dir)).expect("reader");
    let mut sub = reader.subscribe_all(Position::START).expect("subscribe");
    let out = std::io::stdout();
    let mut out = out.lock();
    loop {
        let e = sub
            .next_timeout(WAIT)
            .expect("follow")
            .expect("an event in time");
        writeln!(out, "EVENT {}", key(&e)).expect("stdout");
        if e.stream() == "control" {
            break;
        }
    }
}
