//! The reading commands (`dump`, `get`, `stream`, `tail`) run as a person
//! or a script runs them: the built `seglog` against logs made with the
//! library, their output compared exactly, and beside a live writer in
//! another process (issue 29, items 1 to 4).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as StdCommand, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use seglog::{
    Clock, Durability, EventData, ExpectedVersion, Log, Options, Position, Reader, RecordedEvent,
};
use serde_json::{Value, json};

/// A clock the test sets: commit times are exact, so outputs are too.
#[derive(Debug)]
struct SetClock(AtomicU64);

impl Clock for SetClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.0.load(Ordering::SeqCst))
    }
}

/// 2026-12-06T10:00:00Z in microseconds since the epoch.
const TEN_O_CLOCK_US: u64 = 1_796_551_200_000_000;

/// A binary payload: not UTF-8, so shown in hex.
const BINARY: [u8; 5] = [0x00, 0x9f, 0x92, 0x96, 0xff];

/// The sample log: six events over three streams, one a minute from
/// 10:00, the last two in one append (one frame).
struct Sample {
    dir: tempfile::TempDir,
    /// Each event's position, in log order.
    at: Vec<Position>,
}

impl Sample {
    fn dir(&self) -> &str {
        self.dir.path().to_str().expect("UTF-8 temporary path")
    }

    fn p(&self, i: usize) -> String {
        self.at[i].to_string()
    }
}

fn sample() -> Sample {
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = Arc::new(SetClock(AtomicU64::new(TEN_O_CLOCK_US)));
    let log = Options::new()
        .clock(clock.clone())
        .open(dir.path())
        .expect("open");
    let appends: Vec<(&str, Vec<EventData>)> = vec![
        (
            "order-1",
            vec![
                EventData::new("Placed", &br#"{"total": 42, "items": ["a", "b"]}"#[..])
                    .with_id(0x2a)
                    .with_metadata(&br#"{"by":"ann"}"#[..]),
            ],
        ),
        (
            "order-1",
            vec![EventData::new("Noted", &b"hello\tworld"[..])],
        ),
        ("blob-1", vec![EventData::new("Blob", &BINARY[..])]),
        (
            "order-2",
            vec![EventData::new("Placed", &br#"{"total":7}"#[..]).with_schema_version(2)],
        ),
        (
            "order-1",
            vec![
                EventData::new("Paid", &b"{}"[..]),
                EventData::new("Shipped", "x".repeat(100).into_bytes()),
            ],
        ),
    ];
    let mut at = Vec::new();
    for (minute, (stream, events)) in appends.into_iter().enumerate() {
        clock.0.store(
            TEN_O_CLOCK_US + minute as u64 * 60_000_000,
            Ordering::SeqCst,
        );
        let r = log
            .append(stream, ExpectedVersion::Any, &events)
            .expect("append");
        at.push(r.first_position);
        if r.last_position != r.first_position {
            at.push(r.last_position);
        }
    }
    log.close().expect("close");
    Sample { dir, at }
}

fn seglog() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seglog"));
    command.env("NO_COLOR", "1");
    command
}

/// Runs `seglog ARGS`, expecting status 0: its stdout.
fn ok(args: &[&str]) -> String {
    let output = seglog().args(args).output().expect("run seglog");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "seglog {args:?}: {} {stderr}",
        output.status
    );
    stdout
}

/// Runs `seglog ARGS`, expecting exit status `status`: its stderr.
fn fails(args: &[&str], status: i32) -> String {
    let output = seglog().args(args).output().expect("run seglog");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8 errors");
    assert_eq!(
        output.status.code(),
        Some(status),
        "seglog {args:?}: {stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "seglog {args:?} printed on stdout"
    );
    assert_no_debug_output(&stderr);
    stderr
}

/// No panic, no Rust debug formatting of a library error.
fn assert_no_debug_output(stderr: &str) {
    for debug in ["panicked", "Position(", "Error {", "Io {", "Some(", "\"/"] {
        assert!(!stderr.contains(debug), "debug output in {stderr:?}");
    }
}

/// Each line of `stdout` as a JSON object.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// One column of JSON lines.
fn column(lines: &[Value], key: &str) -> Vec<Value> {
    lines.iter().map(|l| l[key].clone()).collect()
}

#[test]
fn dump_prints_a_table_with_every_payload_kind() {
    let s = sample();
    let out = ok(&["dump", s.dir()]);
    let x64 = "x".repeat(64);
    let expected = format!(
        "\
position  time                         stream   version  type     schema  id                                payload
{}    2026-12-06T10:00:00.000000Z  order-1        0  Placed        1  0000000000000000000000000000002a  {{\"total\":42,\"items\":[\"a\",\"b\"]}}
{}    2026-12-06T10:01:00.000000Z  order-1        1  Noted         1                                    hello\\tworld
{}    2026-12-06T10:02:00.000000Z  blob-1         0  Blob          1                                    009f9296ff
{}    2026-12-06T10:03:00.000000Z  order-2        0  Placed        2                                    {{\"total\":7}}
{}    2026-12-06T10:04:00.000000Z  order-1        2  Paid          1                                    {{}}
{}    2026-12-06T10:04:00.000000Z  order-1        3  Shipped       1                                    {x64}… (100 B)
",
        s.p(0),
        s.p(1),
        s.p(2),
        s.p(3),
        s.p(4),
        s.p(5)
    );
    assert_eq!(out, expected);
}

#[test]
fn dump_json_gives_every_field_and_payloads_whole() {
    let s = sample();
    let lines = json_lines(&ok(&["dump", s.dir(), "--json"]));
    assert_eq!(lines.len(), 6);
    assert_eq!(
        lines[0],
        json!({
            "position": s.p(0),
            "next_position": s.p(1),
            "time": "2026-12-06T10:00:00.000000Z",
            "time_us": TEN_O_CLOCK_US,
            "stream": "order-1",
            "version": 0,
            "type": "Placed",
            "schema_version": 1,
            "id": "0000000000000000000000000000002a",
            "payload_state": "plain",
            "payload_bytes": 34,
            "payload_encoding": "json",
            "payload": {"total": 42, "items": ["a", "b"]},
            "metadata_bytes": 12,
            "metadata_encoding": "json",
            "metadata": {"by": "ann"},
        })
    );
    // Text, binary (hex), and a long payload never cut.
    assert_eq!(
        (&lines[1]["payload_encoding"], &lines[1]["payload"]),
        (&json!("text"), &json!("hello\tworld"))
    );
    assert_eq!(
        (&lines[2]["payload_encoding"], &lines[2]["payload"]),
        (&json!("hex"), &json!("009f9296ff"))
    );
    assert_eq!(lines[5]["payload"], json!("x".repeat(100)));
    assert_eq!(lines[5]["position"], json!(s.p(5)));
    assert!(s.p(5).ends_with(":1"), "two events in one frame");
    assert_eq!(lines[3]["schema_version"], json!(2));
    assert_eq!(lines[1]["id"], Value::Null);
}

#[test]
fn dump_filters_by_stream_type_from_and_limit() {
    let s = sample();
    let positions = |args: &[&str]| {
        let mut all = vec!["dump", s.dir(), "--json"];
        all.extend_from_slice(args);
        column(&json_lines(&ok(&all)), "position")
    };
    let p = |i: usize| json!(s.p(i));
    assert_eq!(
        positions(&["--stream", "order-1"]),
        [p(0), p(1), p(4), p(5)]
    );
    assert_eq!(positions(&["--type", "Placed"]), [p(0), p(3)]);
    assert_eq!(
        positions(&["--type", "Placed", "--type", "Blob"]),
        [p(0), p(2), p(3)]
    );
    assert_eq!(positions(&["--from", &s.p(2)]), [p(2), p(3), p(4), p(5)]);
    // Inside a frame: from its second event.
    assert_eq!(positions(&["--from", &s.p(5)]), [p(5)]);
    // A time: the first event committed at or after it.
    assert_eq!(
        positions(&["--from", "2026-12-06T10:02:30Z"]),
        [p(3), p(4), p(5)]
    );
    assert_eq!(positions(&["--from", "2026-12-06T10:02:00Z"])[0], p(2));
    assert_eq!(positions(&["--limit", "2"]), [p(0), p(1)]);
    assert_eq!(positions(&["--limit", "0"]), Vec::<Value>::new());
    assert_eq!(
        positions(&[
            "--stream",
            "order-1",
            "--type",
            "Paid",
            "--type",
            "Noted",
            "--from",
            &s.p(1)
        ]),
        [p(1), p(4)]
    );
    assert_eq!(
        positions(&["--stream", "order-1", "--from", &s.p(2), "--limit", "1"]),
        [p(4)]
    );
    // Nothing matches: people are told, scripts get no line.
    assert_eq!(ok(&["dump", s.dir(), "--type", "Nope"]), "no events\n");
    assert_eq!(ok(&["dump", s.dir(), "--type", "Nope", "--json"]), "");
}

#[test]
fn dump_refuses_what_it_cannot_read_with_a_message() {
    let s = sample();
    let err = fails(&["dump", s.dir(), "--from", "yesterday"], 2);
    assert!(
        err.contains("not a position") && err.contains("or a time like"),
        "{err}"
    );
    let err = fails(&["dump", s.dir(), "--from", "2026-13-45"], 2);
    assert!(err.contains("is not a time"), "{err}");
    let err = fails(&["dump", s.dir(), "--from", "4104"], 3);
    assert!(err.contains("no event at position 4104:0"), "{err}");
    let err = fails(&["dump", s.dir(), "--from", "99999992"], 3);
    assert!(err.contains("past the end of the log"), "{err}");
    let err = fails(&["dump", s.dir(), "--stream", "order-9"], 3);
    assert_eq!(err, format!("seglog: no stream order-9 in {}\n", s.dir()));
    let missing = s.dir.path().join("nope");
    let err = fails(&["dump", missing.to_str().expect("UTF-8")], 3);
    assert!(err.contains("no such directory"), "{err}");
    fails(&["dump", s.dir(), "--payload", "yaml"], 2);
}

#[test]
fn payload_modes_show_json_text_hex_or_nothing() {
    let s = sample();
    let shown = |mode: &str| {
        let lines = json_lines(&ok(&["dump", s.dir(), "--json", "--payload", mode]));
        lines
            .iter()
            .take(3)
            .map(|l| (l["payload_encoding"].clone(), l["payload"].clone()))
            .collect::<Vec<_>>()
    };
    let e = |encoding: &str, payload: Value| (json!(encoding), payload);
    assert_eq!(
        shown("json"),
        [
            e("json", json!({"total": 42, "items": ["a", "b"]})),
            e("hex", json!("68656c6c6f09776f726c64")),
            e("hex", json!("009f9296ff")),
        ]
    );
    assert_eq!(
        shown("text"),
        [
            e("text", json!(r#"{"total": 42, "items": ["a", "b"]}"#)),
            e("text", json!("hello\tworld")),
            // Each byte that starts no UTF-8 sequence is one U+FFFD.
            e("text", json!("\0\u{fffd}\u{fffd}\u{fffd}\u{fffd}")),
        ]
    );
    assert_eq!(shown("hex")[2], e("hex", json!("009f9296ff")));
    let none = json_lines(&ok(&["dump", s.dir(), "--json", "--payload", "none"]));
    assert!(none[0].get("payload").is_none() && none[0].get("metadata").is_none());
    assert_eq!(none[0]["payload_bytes"], json!(34));
    let table = ok(&["dump", s.dir(), "--payload", "none", "--limit", "1"]);
    assert_eq!(
        table.lines().next().map(str::trim_end),
        Some("position  time                         stream   version  type    schema  id")
    );
}

#[test]
fn get_prints_one_event_whole() {
    let s = sample();
    let out = ok(&["get", s.dir(), &s.p(0)]);
    let expected = format!(
        "\
position: {}
next:     {}
time:     2026-12-06T10:00:00.000000Z
stream:   order-1
version:  0
type:     Placed
schema:   1
id:       0000000000000000000000000000002a
state:    plain
metadata: (json, 12 B) {{\"by\":\"ann\"}}
payload:  (json, 34 B) {{\"total\":42,\"items\":[\"a\",\"b\"]}}
",
        s.p(0),
        s.p(1)
    );
    assert_eq!(out, expected);
    // The second event of a frame; its long payload whole.
    let out = ok(&["get", s.dir(), &s.p(5)]);
    assert!(out.contains(&format!("payload:  (text, 100 B) {}\n", "x".repeat(100))));
    let binary = ok(&["get", s.dir(), &s.p(2)]);
    assert!(
        binary.contains("payload:  (hex, 5 B) 009f9296ff\n"),
        "{binary}"
    );
    // --json: the object dump prints for it.
    let one = json_lines(&ok(&["get", s.dir(), &s.p(3), "--json"]));
    let dumped = json_lines(&ok(&["dump", s.dir(), "--json"]));
    assert_eq!(one, [dumped[3].clone()]);
}

#[test]
fn get_of_a_position_that_is_not_an_event_exits_3() {
    let s = sample();
    let dir = s.dir();
    // Inside a frame, past a frame's last event, before the first frame,
    // past the end.
    let mid_frame = format!("{}", s.at[0].frame_offset() + 8);
    let past_index = format!("{}:1", s.at[0].frame_offset());
    for (position, why) in [
        (
            mid_frame.as_str(),
            "give a position as the tool prints it".to_string(),
        ),
        (
            past_index.as_str(),
            "give a position as the tool prints it".to_string(),
        ),
        ("0", format!("the next event is at {}", s.p(0))),
        ("99999992", "the log ends at".to_string()),
    ] {
        let err = fails(&["get", dir, position], 3);
        assert!(err.starts_with("seglog: no event at position"), "{err}");
        assert!(err.contains(&why), "{position}: {err}");
    }
    let err = fails(&["get", dir, "4100"], 2);
    assert!(err.contains("frames start at multiples of 8"), "{err}");
    fails(&["get", dir, "x:1"], 2);
    fails(&["get", dir], 2);
}

#[test]
fn stream_reads_forward_backward_from_a_version_and_as_of() {
    let s = sample();
    let versions = |args: &[&str]| {
        let mut all = vec!["stream", s.dir(), "order-1", "--json"];
        all.extend_from_slice(args);
        column(&json_lines(&ok(&all)), "version")
    };
    assert_eq!(versions(&[]), [json!(0), json!(1), json!(2), json!(3)]);
    assert_eq!(
        versions(&["--backward"]),
        [json!(3), json!(2), json!(1), json!(0)]
    );
    assert_eq!(versions(&["--from-version", "2"]), [json!(2), json!(3)]);
    assert_eq!(
        versions(&["--backward", "--from-version", "1"]),
        [json!(1), json!(0)]
    );
    assert_eq!(versions(&["--limit", "1", "--backward"]), [json!(3)]);
    // As of a version, a position (events before it), a time.
    assert_eq!(versions(&["--as-of", "1"]), [json!(0), json!(1)]);
    assert_eq!(
        versions(&["--as-of", &s.p(5)]),
        [json!(0), json!(1), json!(2)]
    );
    assert_eq!(
        versions(&["--as-of", "2026-12-06T10:01:30Z"]),
        [json!(0), json!(1)]
    );
    assert_eq!(
        versions(&[
            "--as-of",
            "2026-12-06T10:04:00Z",
            "--backward",
            "--from-version",
            "2"
        ]),
        [json!(2), json!(1), json!(0)]
    );
    assert_eq!(versions(&["--as-of", &s.p(1), "--backward"]), [json!(0)]);
    assert_eq!(
        versions(&["--as-of", "2026-12-06T09:00:00Z"]),
        Vec::<Value>::new()
    );
    // The table for people: the same columns as dump.
    let table = ok(&["stream", s.dir(), "order-2"]);
    assert_eq!(
        table,
        format!(
            "\
position  time                         stream   version  type    schema  id  payload
{}    2026-12-06T10:03:00.000000Z  order-2        0  Placed       2      {{\"total\":7}}
",
            s.p(3)
        )
    );
    let err = fails(&["stream", s.dir(), "order-9"], 3);
    assert_eq!(err, format!("seglog: no stream order-9 in {}\n", s.dir()));
    fails(&["stream", s.dir(), "order-1", "--as-of", "soon"], 2);
}

#[test]
fn stream_of_a_deleted_stream_says_so() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = Log::open(dir.path()).expect("open");
    log.append(
        "gone",
        ExpectedVersion::NoStream,
        &[EventData::new("A", &b"{}"[..])],
    )
    .expect("append");
    log.delete_stream("gone").expect("delete");
    log.close().expect("close");
    let path = dir.path().to_str().expect("UTF-8");
    let err = fails(&["stream", path, "gone"], 3);
    assert_eq!(
        err,
        format!(
            "seglog: stream gone in {path} is deleted: it is read no more (`seglog dump` shows its events until retention removes them)\n"
        )
    );
}

#[test]
fn erased_events_show_as_erased() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = [7u8; 32];
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, key).expect("key file");
    let log_dir = dir.path().join("log");
    let log = Options::new()
        .master_key(seglog::MasterKey::from_bytes(key))
        .open(&log_dir)
        .expect("open");
    let secret = EventData::new("Registered", &br#"{"name":"ann"}"#[..]).encrypted();
    let r = log
        .append("customer-1", ExpectedVersion::NoStream, &[secret])
        .expect("append");
    log.forget("customer-1").expect("forget");
    log.close().expect("close");
    let (path, key_path) = (
        log_dir.to_str().expect("UTF-8"),
        key_file.to_str().expect("UTF-8"),
    );
    let lines = json_lines(&ok(&[
        "dump",
        path,
        "--json",
        "--master-key-file",
        key_path,
        "--stream",
        "customer-1",
    ]));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["payload_state"], json!("erased"));
    assert_eq!(lines[0]["payload"], Value::Null);
    assert_eq!(lines[0]["payload_encoding"], Value::Null);
    let table = ok(&[
        "dump",
        path,
        "--master-key-file",
        key_path,
        "--stream",
        "customer-1",
    ]);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.ends_with("  (erased)")),
        "{table}"
    );
    let got = ok(&[
        "get",
        path,
        &r.first_position.to_string(),
        "--master-key-file",
        key_path,
    ]);
    assert!(got.contains("state:    erased\n"), "{got}");
    assert!(
        got.contains("payload:  (erased: its key was destroyed)\n"),
        "{got}"
    );
}

/// A log over several 1 MiB segments: `n` events of about 1 KiB, one
/// append each, over streams `s-0` to `s-9`, typed `Even` and `Odd` by
/// their index. Returns every event, in log order.
fn segmented_log(n: usize) -> (tempfile::TempDir, Vec<RecordedEvent>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = Options::new()
        .segment_size(1 << 20)
        .durability(Durability::None)
        .open(dir.path())
        .expect("open");
    let pad = "p".repeat(1000);
    for i in 0..n {
        let kind = if i % 2 == 0 { "Even" } else { "Odd" };
        let payload = format!(r#"{{"i":{i},"pad":"{pad}"}}"#);
        log.append(
            &format!("s-{}", i % 10),
            ExpectedVersion::Any,
            &[EventData::new(kind, payload.into_bytes())],
        )
        .expect("append");
    }
    log.close().expect("close");
    let reader = Reader::open(dir.path()).expect("reader");
    let all = reader
        .read_all(Position::START)
        .expect("read")
        .collect::<seglog::Result<Vec<_>>>()
        .expect("events");
    (dir, all)
}

/// `got` and `want` hold the same positions; on a difference, says where
/// (rather than print thousands of positions).
fn assert_positions(got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len(), "how many");
    let first = got.iter().zip(want).position(|(g, w)| g != w);
    assert_eq!(first, None, "first difference at this index");
}

fn positions_of<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Vec<Value> {
    events
        .into_iter()
        .map(|e| json!(e.position().to_string()))
        .collect()
}

#[test]
fn tail_shows_the_last_events_reading_back_segment_by_segment() {
    let (dir, all) = segmented_log(3_000);
    let path = dir.path().to_str().expect("UTF-8");
    let segments = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .count();
    assert!(
        segments >= 4,
        "{segments} segments: the walk back is not tested"
    );
    let tail = |args: &[&str]| {
        let mut every = vec!["tail", path, "--json"];
        every.extend_from_slice(args);
        column(&json_lines(&ok(&every)), "position")
    };
    // Across segment boundaries: the last 1,500 span two or three.
    assert_positions(&tail(&["-n", "1500"]), &positions_of(&all[1_500..]));
    assert_positions(&tail(&[]), &positions_of(&all[2_990..]));
    assert_positions(&tail(&["-n", "5000"]), &positions_of(&all));
    assert_eq!(tail(&["-n", "0"]), Vec::<Value>::new());
    let odd: Vec<&RecordedEvent> = all.iter().filter(|e| e.event_type() == "Odd").collect();
    assert_eq!(
        tail(&["-n", "3", "--type", "Odd"]),
        positions_of(odd[odd.len() - 3..].to_vec())
    );
    let s3: Vec<&RecordedEvent> = all.iter().filter(|e| e.stream() == "s-3").collect();
    assert_eq!(
        tail(&["--events", "4", "--stream", "s-3"]),
        positions_of(s3[s3.len() - 4..].to_vec())
    );
    assert_eq!(
        tail(&["-n", "2", "--stream", "s-3", "--type", "Even"]),
        Vec::<Value>::new(),
        "s-3 holds only odd indexes"
    );
    // The table: a heading and ten rows.
    assert_eq!(ok(&["tail", path]).lines().count(), 11);
    assert_eq!(ok(&["tail", path, "-n", "0"]), "no events\n");
    let err = fails(&["tail", path, "--stream", "s-99"], 3);
    assert_eq!(err, format!("seglog: no stream s-99 in {path}\n"));
    fails(&["tail", path, "-n", "2000000"], 2);
}

/// A `seglog` running in the background, its output read line by line.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The reader of its stdout, handed back once `wanted` lines are read.
    reader: Option<std::thread::JoinHandle<BufReader<std::process::ChildStdout>>>,
}

impl Running {
    /// Starts `seglog ARGS`; a thread reads the first `wanted` lines of
    /// its stdout, then stops reading (keeping the pipe open).
    fn start(args: &[&str], wanted: usize) -> Running {
        let mut child = StdCommand::new(env!("CARGO_BIN_EXE_seglog"))
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start seglog");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            for _ in 0..wanted {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || send.send(line).is_err() {
                    break;
                }
            }
            reader
        });
        Running {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The next line, within 30 s.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a line from seglog within 30 s")
    }

    /// Its exit status, within 10 s (killed and failed past that), and
    /// its stderr.
    fn wait(mut self) -> (ExitStatus, String) {
        let status = wait_for(&mut self.child, Duration::from_secs(10));
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr).expect("stderr");
        }
        (status, stderr)
    }

    /// SIGTERM, with the pipe still open: it must stop by the signal.
    fn terminate(mut self) -> (ExitStatus, String) {
        let _open = self.reader.take().map(|r| r.join().expect("reader"));
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        self.wait()
    }

    /// Closes its stdout (a `| head` that had enough): it must stop.
    fn close_output(mut self) -> (ExitStatus, String) {
        drop(self.reader.take().map(|r| r.join().expect("reader")));
        self.wait()
    }
}

/// `child`'s exit status within `limit`; killed, and the test failed,
/// past it.
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tail_follow_shows_each_new_event_and_stops_cleanly() {
    let s = sample();
    let tail = Running::start(
        &[
            "tail",
            s.dir(),
            "-f",
            "-n",
            "1",
            "--json",
            "--stream",
            "order-1",
            "--type",
            "Paid",
        ],
        2,
    );
    let first: Value = serde_json::from_str(&tail.line()).expect("JSON");
    assert_eq!(first["position"], json!(s.p(4)));
    let log = Log::open(s.dir.path()).expect("open");
    // Another stream, another type: passed over.
    log.append(
        "order-2",
        ExpectedVersion::Any,
        &[EventData::new("Paid", &b"{}"[..])],
    )
    .expect("append");
    log.append(
        "order-1",
        ExpectedVersion::Any,
        &[EventData::new("Noted", &b"{}"[..])],
    )
    .expect("append");
    let paid = log
        .append(
            "order-1",
            ExpectedVersion::Any,
            &[EventData::new("Paid", &br#"{"again":true}"#[..])],
        )
        .expect("append");
    let live: Value = serde_json::from_str(&tail.line()).expect("JSON");
    assert_eq!(live["position"], json!(paid.first_position.to_string()));
    assert_eq!(live["payload"], json!({"again": true}));
    let (status, stderr) = tail.terminate();
    assert!(status.success(), "SIGTERM: {status} {stderr}");
    assert_eq!(stderr, "");

    // A reader that leaves (`| head -1`) on a quiet log stops it too.
    let tail = Running::start(&["tail", s.dir(), "-f", "-n", "1"], 1);
    let heading = tail.line();
    assert!(heading.starts_with("position"), "{heading}");
    let (status, stderr) = tail.close_output();
    assert!(status.success(), "closed pipe: {status} {stderr}");
    log.close().expect("close");
}

/// The writer of `reads_run_beside_a_live_writer_in_another_process`:
/// this test binary run again with this test alone. It appends until the
/// stop file appears (or two minutes pass), ten events per millisecond at
/// most, then prints how many it appended and its slowest append.
#[test]
#[ignore = "the appending child of reads_run_beside_a_live_writer_in_another_process"]
fn appending_child() {
    let (Some(dir), Some(stop)) = (
        std::env::var_os("SEGLOG_TEST_WRITER_DIR"),
        std::env::var_os("SEGLOG_TEST_WRITER_STOP"),
    ) else {
        return;
    };
    let log = Options::new()
        .segment_size(1 << 20)
        .durability(Durability::None)
        .open(&dir)
        .expect("open");
    let started = Instant::now();
    let (mut appended, mut slowest) = (0u64, Duration::ZERO);
    while !Path::new(&stop).exists() && started.elapsed() < Duration::from_secs(120) {
        for _ in 0..10 {
            let payload = format!(r#"{{"n":{appended}}}"#);
            let t = Instant::now();
            log.append(
                &format!("live-{}", appended % 10),
                ExpectedVersion::Any,
                &[EventData::new("Tick", payload.into_bytes())],
            )
            .expect("append");
            slowest = slowest.max(t.elapsed());
            appended += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    log.close().expect("close");
    println!("appended {appended} slowest_ms {}", slowest.as_millis());
}

/// Kills a child left running by a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Positions of JSON lines, in order.
fn parsed_positions(lines: &[Value]) -> Vec<Position> {
    lines
        .iter()
        .map(|l| {
            l["position"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no position in {l}"))
        })
        .collect()
}

#[test]
fn reads_run_beside_a_live_writer_in_another_process() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log_dir = dir.path().join("log");
    let stop = dir.path().join("stop");
    let writer = StdCommand::new(std::env::current_exe().expect("test binary"))
        .args(["appending_child", "--exact", "--ignored", "--nocapture"])
        .env("SEGLOG_TEST_WRITER_DIR", &log_dir)
        .env("SEGLOG_TEST_WRITER_STOP", &stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let mut writer = KillOnDrop(writer);
    let reader = wait_for_appends(&log_dir, 200);
    // A real writer: it holds the log's lock.
    assert!(matches!(
        Log::open(&log_dir),
        Err(seglog::Error::Locked { .. })
    ));
    let path = log_dir.to_str().expect("UTF-8");
    let before = reader.refresh().expect("refresh");

    let dumped = json_lines(&ok(&["dump", path, "--json"]));
    assert!(dumped.len() >= 2_000, "{} events dumped", dumped.len());
    assert!(dumped.iter().all(|l| l["type"] == json!("Tick")));
    assert!(parsed_positions(&dumped).windows(2).all(|w| w[0] < w[1]));
    let last = parsed_positions(&json_lines(&ok(&["tail", path, "-n", "5", "--json"])));
    assert_eq!(last.len(), 5);
    assert!(last.windows(2).all(|w| w[0] < w[1]) && last[0] > parsed_positions(&dumped)[0]);
    let verified = ok(&["verify", path]);
    assert!(verified.contains("intact"), "{verified}");
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", path, "--json"])).expect("info JSON");
    let counted = info["events"].as_u64().expect("events");
    assert!(counted >= dumped.len() as u64, "{counted} events counted");

    // Live: only events appended after it started.
    let started_at = reader.refresh().expect("refresh");
    let tail = Running::start(
        &["tail", path, "-f", "-n", "0", "--json", "--type", "Tick"],
        3,
    );
    let live: Vec<Value> = (0..3)
        .map(|_| serde_json::from_str(&tail.line()).expect("JSON"))
        .collect();
    let live = parsed_positions(&live);
    assert!(
        live[0] >= started_at && live.windows(2).all(|w| w[0] < w[1]),
        "{live:?}"
    );
    let (status, stderr) = tail.terminate();
    assert!(status.success(), "tail -f at SIGTERM: {status} {stderr}");

    // The writer went on appending all along, never blocked by a reader.
    assert!(reader.refresh().expect("refresh") > before);
    assert!(
        writer.0.try_wait().expect("writer").is_none(),
        "the writer stopped early"
    );
    std::fs::write(&stop, b"").expect("stop file");
    let status = wait_for(&mut writer.0, Duration::from_secs(60));
    let mut report = String::new();
    if let Some(mut out) = writer.0.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut report).expect("writer output");
    }
    assert!(status.success(), "writer: {status} {report}");
    let (appended, slowest_ms) = writer_report(&report);
    assert!(slowest_ms < 2_000, "an append waited {slowest_ms} ms");
    let kept = Reader::open(&log_dir)
        .expect("reader")
        .read_all(Position::START)
        .expect("read");
    assert_eq!(kept.count() as u64, appended);
}

/// A reader of the log the child writes, once it holds `per_stream`
/// events in each of its ten streams (within 60 s).
fn wait_for_appends(dir: &Path, per_stream: u64) -> Reader {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(reader) = Reader::open(dir)
            && reader
                .stream_version("live-9")
                .is_ok_and(|v| v.is_some_and(|v| v + 1 >= per_stream))
        {
            return reader;
        }
        assert!(
            Instant::now() < deadline,
            "the writer appended too little in 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `appended N slowest_ms M` from the writer's output.
fn writer_report(output: &str) -> (u64, u64) {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("appended "))
        .unwrap_or_else(|| panic!("no report in {output:?}"));
    let mut words = line.split_whitespace();
    let appended = words.next().and_then(|w| w.parse().ok()).expect("count");
    let slowest = words.nth(1).and_then(|w| w.parse().ok()).expect("slowest");
    (appended, slowest)
}
