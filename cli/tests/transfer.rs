//! `seglog export` and `seglog import` run as a person runs them (the real
//! binary, through assert_cmd), checked through the library: a round trip
//! reproduces every event's content, an import is idempotent, a log held
//! by a writer is refused, bad input fails with its line number, and an
//! export runs beside a live writer.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use seglog::{EventData, ExpectedVersion, Log, MasterKey, Options, Reader, RecordedEvent};
use serde_json::Value;

/// The `seglog` binary.
fn seglog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seglog"))
}

/// Runs `seglog args`; returns its output.
fn run(args: &[&str]) -> Output {
    seglog().args(args).output().expect("run seglog")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Asserts the run succeeded; returns its stdout.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}; stderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts the run failed with `code` and said neither a panic nor Rust
/// debug output; returns its stderr.
fn fails(out: Output, code: i32) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    stderr
}

/// A small log: 1 MiB segments, so tests create little.
fn open(dir: &Path) -> Log {
    Options::new()
        .segment_size(1 << 20)
        .open(dir)
        .expect("open log")
}

fn append(log: &Log, stream: &str, events: Vec<EventData>) {
    log.append(stream, ExpectedVersion::Any, &events)
        .expect("append");
}

/// A log with what an export must carry exactly: several streams (one
/// named in UTF-8 with a space), ids and none, text and binary payloads
/// (ASCII with control characters counts as binary), JSON and binary
/// metadata, empty ones, schema versions other than 1, several types,
/// batches of several events, streams interleaved.
fn build_source(dir: &Path) {
    let log = open(dir);
    append(
        &log,
        "order-1",
        vec![
            EventData::new(
                "Placed",
                &br#"{"total":42,"note":"a \"quote\" \\ and\nnewline"}"#[..],
            )
            .with_metadata(&br#"{"correlation":"c-1"}"#[..])
            .with_id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            EventData::new("Paid", &b"{}"[..])
                .with_schema_version(2)
                .with_id(u128::MAX),
        ],
    );
    append(
        &log,
        "binary-2",
        vec![
            EventData::new("Blob", &b"\x00\xff\xfe binary"[..])
                .with_metadata(&b"\x80\x81"[..])
                .with_schema_version(7),
            EventData::new("Proto", &b"\x08\x96\x01"[..]).with_schema_version(65535),
        ],
    );
    append(
        &log,
        "order-1",
        vec![EventData::new("Shipped", &b""[..]).with_schema_version(3)],
    );
    append(
        &log,
        "注文 €",
        vec![
            EventData::new("Note", "tab\there, 注文, €".as_bytes())
                .with_metadata("unicode méta".as_bytes())
                .with_id(1),
        ],
    );
    append(
        &log,
        "binary-2",
        vec![EventData::new("Blob", &b"\x01\x02"[..]).with_metadata(&b"{}"[..])],
    );
    log.close().expect("close");
}

fn events(dir: &Path) -> Vec<RecordedEvent> {
    let reader = Reader::open(dir).expect("reader");
    reader
        .read_all(reader.log_start())
        .expect("read_all")
        .map(|e| e.expect("event"))
        .collect()
}

/// The content an import must reproduce (times and positions are the
/// target's own).
fn content(e: &RecordedEvent) -> (String, u64, String, u16, Option<u128>, Vec<u8>, Vec<u8>) {
    (
        e.stream().to_string(),
        e.version(),
        e.event_type().to_string(),
        e.stored_schema_version(),
        e.id(),
        e.metadata().to_vec(),
        e.payload().to_vec(),
    )
}

fn assert_same_content(source: &[RecordedEvent], target: &[RecordedEvent]) {
    assert_eq!(source.len(), target.len(), "event count");
    for (s, t) in source.iter().zip(target) {
        assert_eq!(content(s), content(t));
    }
}

/// The lines of an export, parsed.
fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The one JSON object a `--json` command printed.
fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

struct Fixture {
    _tmp: tempfile::TempDir,
    source: PathBuf,
    file: PathBuf,
    target: PathBuf,
}

/// A source log, the path of its export and of a target that does not
/// exist yet.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = tmp.path().join("source");
    build_source(&source);
    Fixture {
        source,
        file: tmp.path().join("export.jsonl"),
        target: tmp.path().join("target"),
        _tmp: tmp,
    }
}

#[test]
fn a_round_trip_reproduces_every_event_byte_for_byte() {
    let f = fixture();
    let summary = ok(run(&["export", path(&f.source), "--output", path(&f.file)]));
    assert!(
        summary.contains("exported  7 events of 3 streams"),
        "{summary}"
    );
    let written = std::fs::read_to_string(&f.file).expect("export file");
    let lines = lines(&written);
    assert_eq!(lines.len(), 7);
    let first = &lines[0];
    let keys: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "stream",
            "version",
            "type",
            "schema_version",
            "id",
            "time",
            "position",
            "metadata",
            "payload"
        ]
    );
    assert_eq!(first["id"], "0123456789abcdef0123456789abcdef");
    assert_eq!(
        first["payload"],
        r#"{"total":42,"note":"a \"quote\" \\ and\nnewline"}"#
    );
    assert_eq!(first["position"], "4096:0");
    let time = first["time"].as_str().expect("time");
    assert!(time.len() == 27 && time.ends_with('Z'), "{time}");
    // Binary: base64, both payload and metadata.
    assert_eq!(lines[2]["stream"], "binary-2");
    assert_eq!(lines[2]["payload_base64"], "AP/+IGJpbmFyeQ==");
    assert_eq!(lines[2]["metadata_base64"], "gIE=");
    assert_eq!(lines[2]["id"], Value::Null);
    assert_eq!(lines[3]["schema_version"], 65535);
    assert_eq!(
        lines[3]["payload_base64"], "CJYB",
        "ASCII with control characters"
    );
    assert_eq!(lines[5]["payload"], "tab\there, 注文, €");

    let summary = ok(run(&["import", path(&f.target), path(&f.file)]));
    assert!(summary.contains("imported  7 events"), "{summary}");
    assert!(summary.contains("streams   3 in 7 lines"), "{summary}");
    assert_same_content(&events(&f.source), &events(&f.target));
}

#[test]
fn importing_the_same_export_again_changes_nothing() {
    let f = fixture();
    ok(run(&["export", path(&f.source), "-o", path(&f.file)]));
    ok(run(&["import", path(&f.target), path(&f.file)]));
    let before = events(&f.target);
    // Again, from stdin this time.
    let out = seglog()
        .args(["--json", "import", path(&f.target), "-"])
        .write_stdin(std::fs::read(&f.file).expect("export file"))
        .output()
        .expect("run");
    let summary = json(&ok(out));
    assert_eq!(summary["imported"], 0);
    assert_eq!(summary["present"], 7);
    assert_eq!(summary["lines"], 7);
    let after = events(&f.target);
    assert_same_content(&before, &after);
    let positions = |all: &[RecordedEvent]| all.iter().map(|e| e.position()).collect::<Vec<_>>();
    assert_eq!(positions(&before), positions(&after), "nothing appended");
}

#[test]
fn an_import_into_a_log_held_by_a_writer_is_refused() {
    let f = fixture();
    ok(run(&["export", path(&f.source), "-o", path(&f.file)]));
    let held = open(&f.target);
    let stderr = fails(run(&["import", path(&f.target), path(&f.file)]), 3);
    assert!(
        stderr.contains("is held by a writer") && stderr.contains("stop it first"),
        "{stderr}"
    );
    assert_eq!(held.stream_count(), 0, "nothing appended");
    held.close().expect("close");
}

#[test]
fn bad_input_fails_with_its_line_number_and_keeps_what_came_before() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let target = tmp.path().join("target");
    let write = |name: &str, body: &str| {
        let file = tmp.path().join(name);
        std::fs::write(&file, body).expect("write");
        file
    };
    let good = r#"{"stream":"s","version":0,"type":"T","id":"0000000000000000000000000000000a","payload":"x"}"#;

    let malformed = write("malformed.jsonl", &format!("{good}\n\n{{\"stream\": \n"));
    let stderr = fails(run(&["import", path(&target), path(&malformed)]), 1);
    assert!(stderr.contains("line 3: not a JSON object"), "{stderr}");
    assert_eq!(events(&target).len(), 1, "line 1 was imported");

    let gap = write(
        "gap.jsonl",
        r#"{"stream":"s","version":5,"type":"T","payload":"x"}"#,
    );
    let stderr = fails(run(&["import", path(&target), path(&gap)]), 1);
    assert!(
        stderr.contains("line 1: stream \"s\" version 5 follows version 0")
            && stderr.contains("versions 1 to 4 are missing"),
        "{stderr}"
    );

    let other_id = good.replace("0a\"", "0b\"");
    let conflict = write("conflict.jsonl", &other_id);
    let stderr = fails(run(&["import", path(&target), path(&conflict)]), 1);
    assert!(
        stderr.contains("line 1: stream \"s\" version 0 is event 0000000000000000000000000000000a")
            && stderr.contains("but event 0000000000000000000000000000000b in the input"),
        "{stderr}"
    );

    // Over the bound of 1 MiB segments: refused by its length, unparsed.
    let long = write("long.jsonl", &format!("{good}\n{}\n", "x".repeat(3 << 20)));
    let stderr = fails(
        run(&["import", path(&target), path(&long), "--segment-mib", "1"]),
        1,
    );
    assert!(stderr.contains("line 2 is longer than 2.1 MiB"), "{stderr}");

    let stderr = fails(run(&["import", path(&target), "/nonexistent/export"]), 3);
    assert!(
        stderr.contains("cannot read /nonexistent/export"),
        "{stderr}"
    );
    assert_eq!(events(&target).len(), 1, "nothing else appended");
}

#[test]
fn export_takes_one_stream_or_starts_at_a_position_or_a_time() {
    let f = fixture();
    let stream = ok(run(&["export", path(&f.source), "--stream", "binary-2"]));
    let got: Vec<(String, u64)> = lines(&stream)
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap_or("").to_string(),
                l["version"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    let wanted: Vec<(String, u64)> = (0..3).map(|v| ("binary-2".to_string(), v)).collect();
    assert_eq!(got, wanted);

    let all = events(&f.source);
    let from = all[4].position().to_string();
    let tail = lines(&ok(run(&["export", path(&f.source), "--from", &from])));
    let positions: Vec<&str> = tail.iter().filter_map(|l| l["position"].as_str()).collect();
    let wanted: Vec<String> = all[4..].iter().map(|e| e.position().to_string()).collect();
    assert_eq!(positions, wanted);

    // A time: what was committed from then on, nothing before.
    std::thread::sleep(Duration::from_millis(20));
    let since = SystemTime::now();
    std::thread::sleep(Duration::from_millis(20));
    let log = open(&f.source);
    append(&log, "later", vec![EventData::new("Late", &b"1"[..])]);
    log.close().expect("close");
    let at = humantime::format_rfc3339_micros(since).to_string();
    let late = lines(&ok(run(&["export", path(&f.source), "--from", &at])));
    assert_eq!(late.len(), 1);
    assert_eq!(late[0]["stream"], "later");

    let bad = fails(run(&["export", path(&f.source), "--from", "yesterday"]), 2);
    assert!(bad.contains("--from"), "{bad}");
}

#[test]
fn export_runs_beside_a_live_writer_and_says_where_the_next_one_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("live");
    let file = tmp.path().join("first.jsonl");
    let log = open(&dir);
    for i in 0..500u32 {
        append(
            &log,
            &format!("s-{}", i % 7),
            vec![EventData::new("E", i.to_string())],
        );
    }
    let writer = std::thread::scope(|scope| {
        let appending = scope.spawn(|| {
            for i in 0..500u32 {
                append(&log, "during", vec![EventData::new("E", i.to_string())]);
            }
        });
        let out = ok(run(&["--json", "export", path(&dir), "-o", path(&file)]));
        appending.join().expect("writer thread");
        json(&out)
    });
    let exported = lines(&std::fs::read_to_string(&file).expect("export"));
    let count = writer["events"].as_u64().expect("events") as usize;
    assert_eq!(exported.len(), count);
    assert!(count >= 500, "{count}");
    let all = events(&dir);
    for (line, event) in exported.iter().zip(&all) {
        assert_eq!(
            line["position"],
            event.position().to_string(),
            "a prefix of the log"
        );
    }
    // The rest, from where the first export said it ended.
    let next = writer["next"].as_str().expect("next");
    let rest = lines(&ok(run(&["export", path(&dir), "--from", next])));
    assert_eq!(count + rest.len(), all.len());
    assert_eq!(
        rest.first().map(|l| l["position"].clone()),
        all.get(count)
            .map(|e| Value::from(e.position().to_string()))
    );
    log.close().expect("close");
}

#[test]
fn erased_events_are_erased_again_and_system_streams_skipped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = tmp.path().join("source");
    let key_file = tmp.path().join("master.key");
    let key = MasterKey::generate().expect("key");
    std::fs::write(&key_file, key.to_bytes()).expect("key file");
    let with_key = || {
        Options::new()
            .segment_size(1 << 20)
            .master_key(MasterKey::from_bytes(key.to_bytes()))
    };
    let log = with_key().open(&source).expect("open");
    append(
        &log,
        "customer-7",
        vec![
            EventData::new("Registered", &b"{\"name\":\"Ada\"}"[..])
                .encrypted()
                .with_metadata(&b"m"[..])
                .with_id(7),
            EventData::new("Moved", &b"{\"city\":\"Paris\"}"[..]).encrypted(),
        ],
    );
    append(
        &log,
        "customer-7",
        vec![EventData::new("Note", &b"plain"[..])],
    );
    log.forget("customer-7").expect("forget");
    log.close().expect("close");

    let file = tmp.path().join("export.jsonl");
    let key_arg = path(&key_file);
    let summary = json(&ok(run(&[
        "--json",
        "export",
        path(&source),
        "--master-key-file",
        key_arg,
        "-o",
        path(&file),
    ])));
    assert_eq!(
        (
            summary["events"].as_u64(),
            summary["audit_skipped"].as_u64()
        ),
        (Some(3), Some(1))
    );
    let written = lines(&std::fs::read_to_string(&file).expect("export"));
    assert_eq!(written[0]["erased"], true);
    assert!(written[0].get("payload").is_none() && written[0].get("payload_base64").is_none());
    assert_eq!(written[0]["metadata"], "m", "plain metadata stays");
    assert_eq!(written[2]["payload"], "plain");

    // Without a key, an erased event cannot be erased again: refused.
    let target = tmp.path().join("target");
    let stderr = fails(run(&["import", path(&target), path(&file)]), 3);
    assert!(
        stderr.contains("line 1:") && stderr.contains("--master-key-file"),
        "{stderr}"
    );

    // With --include-system, the $audit event is in the file and skipped.
    ok(run(&[
        "export",
        path(&source),
        "--master-key-file",
        key_arg,
        "--include-system",
        "-o",
        path(&file),
    ]));
    let summary = json(&ok(run(&[
        "--json",
        "import",
        path(&target),
        path(&file),
        "--master-key-file",
        key_arg,
    ])));
    assert_eq!(
        (
            summary["imported"].as_u64(),
            summary["erased"].as_u64(),
            summary["system"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    let reader = Reader::open_with(&target, &with_key()).expect("reader");
    let got: Vec<RecordedEvent> = reader
        .read_stream("customer-7", 0)
        .expect("read")
        .map(|e| e.expect("event"))
        .collect();
    let erased: Vec<bool> = got.iter().map(RecordedEvent::is_erased).collect();
    assert_eq!(erased, [true, true, false]);
    assert_eq!(
        (got[0].event_type(), got[0].id(), &got[0].metadata()[..]),
        ("Registered", Some(7), &b"m"[..])
    );
    assert_eq!(&got[2].payload()[..], b"plain");
    let again = json(&ok(run(&[
        "--json",
        "import",
        path(&target),
        path(&file),
        "--master-key-file",
        key_arg,
    ])));
    assert_eq!(
        (again["imported"].as_u64(), again["present"].as_u64()),
        (Some(0), Some(3))
    );
}

#[test]
fn export_of_a_missing_directory_or_stream_says_so() {
    let stderr = fails(run(&["export", "/nonexistent/seglog-log"]), 3);
    assert!(
        stderr.contains("/nonexistent/seglog-log: no such directory"),
        "{stderr}"
    );
    let f = fixture();
    let none = ok(run(&[
        "export",
        path(&f.source),
        "--stream",
        "no-such-stream",
    ]));
    assert_eq!(none, "");
}

#[test]
fn deletions_travel_with_their_streams_and_apply_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let source = tmp.path().join("source");
    let log = open(&source);
    let e = |i: u32| EventData::new("E", i.to_string()).with_id(u128::from(i) + 100);
    append(&log, "gone", vec![e(0), e(1)]);
    append(&log, "cut", vec![e(2), e(3), e(4)]);
    log.delete_stream("gone").expect("delete");
    log.truncate_stream("cut", 2).expect("truncate");
    append(&log, "cut", vec![e(5)]);
    log.close().expect("close");

    let file = tmp.path().join("export.jsonl");
    ok(run(&["export", path(&source), "-o", path(&file)]));
    let written = lines(&std::fs::read_to_string(&file).expect("export"));
    let streams: Vec<&str> = written
        .iter()
        .filter_map(|l| l["stream"].as_str())
        .collect();
    assert_eq!(
        streams,
        [
            "gone", "gone", "cut", "cut", "cut", "$streams", "$streams", "cut"
        ],
        "the deletions in their place"
    );

    let target = tmp.path().join("target");
    let summary = json(&ok(run(&["--json", "import", path(&target), path(&file)])));
    assert_eq!(
        (summary["imported"].as_u64(), summary["deletions"].as_u64()),
        (Some(6), Some(2))
    );
    let reader = Reader::open(&target).expect("reader");
    assert!(matches!(
        reader
            .read_stream("gone", 0)
            .map(|mut r| r.next().map(|e| e.map(|e| e.version()))),
        Err(seglog::Error::StreamDeleted { .. })
    ));
    let cut: Vec<u64> = reader
        .read_stream("cut", 0)
        .expect("read")
        .map(|e| e.expect("event").version())
        .collect();
    assert_eq!(cut, [2, 3], "versions 0 and 1 hidden as in the source");
    let before = events(&target);

    let again = json(&ok(run(&["--json", "import", path(&target), path(&file)])));
    assert_eq!(
        (
            again["imported"].as_u64(),
            again["deletions"].as_u64(),
            again["present"].as_u64()
        ),
        (Some(0), Some(0), Some(8))
    );
    let positions = |all: &[RecordedEvent]| all.iter().map(|e| e.position()).collect::<Vec<_>>();
    assert_eq!(
        positions(&before),
        positions(&events(&target)),
        "nothing written"
    );
}
