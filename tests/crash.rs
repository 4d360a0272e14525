//! A writer process killed with SIGKILL in the middle of `Durability::Sync`
//! appends: every acknowledged append survives, and every append present is
//! whole.
//!
//! The writer is this test binary run again (`child_writer`, ignored, and a
//! no-op unless `SEGLOG_CRASH_CHILD_DIR` is set); it prints one line per
//! acknowledged append.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use seglog::{Durability, EventData, ExpectedVersion, Options};

const DIR_ENV: &str = "SEGLOG_CRASH_CHILD_DIR";
const STREAMS: u64 = 10;

/// Event id: which append, how many events it had, and which one this is.
fn event_id(append: u64, count: u64, index: u64) -> u128 {
    u128::from(append << 16 | count << 8 | index)
}

fn decode_id(id: u128) -> (u64, u64, u64) {
    let id = id as u64;
    (id >> 16, (id >> 8) & 0xFF, id & 0xFF)
}

/// The payload of an event, derived from its id so the parent can check it.
fn payload(id: u128) -> Vec<u8> {
    let len = (id as u64).wrapping_mul(0x9E37_79B9) % 2_000;
    payload_for(id as u64, len as usize)
}

#[test]
#[ignore = "the writer process of sigkill_loses_no_acknowledged_append"]
fn child_writer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let log = Options::new()
        .segment_size(MIB)
        .durability(Durability::Sync)
        .open(&dir)
        .expect("child: open");
    let mut rng = Rng::new(77);
    let mut out = std::io::stdout().lock();
    // Bounded, in case the parent dies without killing us.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut append = 0u64;
    while Instant::now() < deadline {
        let stream = format!("s{}", rng.below(STREAMS));
        let count = rng.range(1, 5);
        let ids: Vec<u128> = (0..count).map(|i| event_id(append, count, i)).collect();
        let events: Vec<EventData> = ids
            .iter()
            .map(|&id| EventData::new("Written", payload(id)).with_id(id))
            .collect();
        let r = log
            .append(&stream, ExpectedVersion::Any, &events)
            .expect("child: append");
        let ids: Vec<String> = ids.iter().map(u128::to_string).collect();
        writeln!(
            out,
            "ACK {append} {stream} {} {count} {}",
            r.first_version,
            ids.join(",")
        )
        .expect("child: write");
        out.flush().expect("child: flush");
        append += 1;
    }
}

/// Kills the child if the parent fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One acknowledged append as the child reported it.
#[derive(Debug)]
struct Ack {
    append: u64,
    stream: String,
    first_version: u64,
    ids: Vec<u128>,
}

/// Parses an acknowledgement; the harness may have printed "test
/// child_writer ... " without a newline before the first one.
fn parse(line: &str) -> Option<Ack> {
    let at = line.find("ACK ")?;
    let mut parts = line[at + 4..].split(' ');
    let append = parts.next()?.parse().ok()?;
    let stream = parts.next()?.to_string();
    let first_version = parts.next()?.parse().ok()?;
    let count: usize = parts.next()?.parse().ok()?;
    let ids: Vec<u128> = parts
        .next()?
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    (ids.len() == count && parts.next().is_none()).then_some(Ack {
        append,
        stream,
        first_version,
        ids,
    })
}

#[test]
fn sigkill_loses_no_acknowledged_append() {
    let tmp = tempdir();
    let dir = tmp.path().join("log");
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = KillOnDrop(
        Command::new(exe)
            .args([
                "--exact",
                "child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the writer"),
    );
    let stdout = child.0.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                // A line cut by the kill has no newline: not an acknowledgement.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });

    // Let the writer run for about a second once it acknowledges its first
    // append, then kill it without warning.
    let mut lines = Vec::new();
    let first_deadline = Instant::now() + Duration::from_secs(30);
    while !lines.iter().any(|l: &String| l.contains("ACK ")) {
        let left = first_deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(e) => panic!("the writer acknowledged nothing ({e}); its output: {lines:?}"),
        }
    }
    // The writer process holds the directory: a second process is refused.
    match Options::new().segment_size(MIB).open(&dir) {
        Err(seglog::Error::Locked { dir: locked }) => assert_eq!(locked, dir),
        other => panic!("opened a directory another process writes: {other:?}"),
    }
    let kill_at = Instant::now() + Duration::from_secs(1);
    while let Some(left) = kill_at.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(e) => panic!("the writer stopped early ({e}); its output: {lines:?}"),
        }
    }
    child.0.kill().expect("kill");
    let status = child.0.wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(9),
        "the writer must die by SIGKILL: {status:?}"
    );
    reader.join().expect("reader");
    lines.extend(rx.try_iter());
    let acks: Vec<Ack> = lines.iter().filter_map(|l| parse(l.trim_end())).collect();
    assert!(acks.len() >= 20, "only {} acknowledged appends", acks.len());
    for (i, a) in acks.iter().enumerate() {
        assert_eq!(a.append, i as u64, "acknowledgements in order");
    }

    let log = Options::new().open(&dir).expect("reopen after the kill");
    let events = snapshot(&log);
    check_positions(&events, MIB);
    let mut index_of: HashMap<u128, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let id = e.id.expect("every event has an id");
        assert!(index_of.insert(id, i).is_none(), "id {id} twice");
        assert_eq!(e.payload, payload(id), "payload of {id}");
    }

    // Every acknowledged append is present, whole, adjacent, as reported.
    for a in &acks {
        let first = *index_of
            .get(&a.ids[0])
            .unwrap_or_else(|| panic!("acknowledged append lost: {a:?}"));
        for (k, id) in a.ids.iter().enumerate() {
            let e = &events[first + k];
            assert_eq!(e.id, Some(*id), "{a:?} not adjacent");
            assert_eq!(e.stream, a.stream);
            assert_eq!(e.version, a.first_version + k as u64);
            assert_eq!(
                e.position.frame_offset(),
                events[first].position.frame_offset()
            );
        }
    }

    // Every append present is whole: its events, all of them, in one frame,
    // and appends are present from the first one on without a gap; at most
    // the ones in flight at the kill (unacknowledged) follow.
    let mut present: BTreeMap<u64, Vec<&Ev>> = BTreeMap::new();
    for e in &events {
        let (append, _, _) = decode_id(e.id.expect("id"));
        present.entry(append).or_default().push(e);
    }
    for (append, evs) in &present {
        let (_, count, _) = decode_id(evs[0].id.expect("id"));
        assert_eq!(evs.len() as u64, count, "append {append} is partial");
        for (k, e) in evs.iter().enumerate() {
            assert_eq!(decode_id(e.id.expect("id")), (*append, count, k as u64));
            assert_eq!(e.position.frame_offset(), evs[0].position.frame_offset());
            assert_eq!(usize::from(e.position.index_in_frame()), k);
            assert_eq!(e.version, evs[0].version + k as u64);
        }
    }
    let appends: Vec<u64> = present.keys().copied().collect();
    let last_acked = acks.len() as u64 - 1;
    eprintln!(
        "{} appends acknowledged, {} present, {} events over {} segments",
        acks.len(),
        appends.len(),
        events.len(),
        events
            .last()
            .map_or(0, |e| e.position.frame_offset() / MIB + 1)
    );
    assert_eq!(appends, (0..appends.len() as u64).collect::<Vec<_>>());
    assert!(
        (last_acked..=last_acked + 2).contains(&(appends.len() as u64 - 1)),
        "{} appends present, {} acknowledged",
        appends.len(),
        acks.len()
    );
    // Versions of every stream run 0, 1, 2, ... with no hole.
    let mut next: HashMap<&str, u64> = HashMap::new();
    for e in &events {
        let v = next.entry(e.stream.as_str()).or_insert(0);
        assert_eq!(e.version, *v, "{} version", e.stream);
        *v += 1;
    }
    for (stream, n) in &next {
        assert_eq!(log.stream_version(stream), Some(n - 1));
    }

    // The recovered log takes appends and keeps them.
    let r = log
        .append(
            "s0",
            ExpectedVersion::Any,
            &[EventData::new("After", &b"kill"[..])],
        )
        .expect("append after recovery");
    log.close().expect("close");
    let log = Options::new().open(&dir).expect("reopen");
    let again = read_all(&log);
    assert_eq!(again.len(), events.len() + 1);
    let last = again.last().expect("events");
    assert_eq!(last.position(), r.first_position);
    assert_eq!(&last.payload()[..], b"kill");
    log.close().expect("close");
}
