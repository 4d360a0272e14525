//! The reading commands (`dump`, `get`, `stream`, `tail`) run as a person
//! or a script runs them: the built `seglog` against logs made with the
//! library, their output compared exactly (issue 29, items 1, 3 and 4).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use seglog::{Clock, EventData, ExpectedVersion, Log, Options, Position};
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
