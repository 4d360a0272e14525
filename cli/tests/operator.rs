//! `seglog info`, `verify`, `consumers`, `completions` and `man` run as
//! an operator runs them: exit statuses, what they print for people and
//! for scripts, and the errors a person can act on, never a panic.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use seglog::{Durability, EventData, ExpectedVersion, Log, Options, Position};

fn seglog(args: &[&str]) -> Output {
    Command::cargo_bin("seglog")
        .expect("the seglog binary")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run seglog")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The status, and stderr, checked free of Rust's own panic and debug
/// output whatever the status.
fn status(out: &Output) -> i32 {
    let err = text(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert!(
        !err.contains("Io {") && !err.contains("Corrupt {"),
        "debug output: {err}"
    );
    out.status.code().expect("exit status")
}

/// A closed log: 2 segments of 1 MiB over 3 streams, a checkpointed
/// consumer; returns the events' positions.
fn make_log(dir: &Path) -> Vec<Position> {
    let log = Options::new()
        .segment_size(1 << 20)
        .durability(Durability::None)
        .open(dir)
        .expect("open");
    let positions: Vec<Position> = (0..1500u32)
        .map(|i| {
            log.append(
                &format!("orders-{}", i % 3),
                ExpectedVersion::Any,
                &[EventData::new("OrderPlaced", vec![7u8; 1000])],
            )
            .expect("append")
            .first_position
        })
        .collect();
    let mut consumer = log.consumer("billing").expect("consumer");
    consumer.ack(positions[100]).expect("ack");
    consumer.checkpoint().expect("checkpoint");
    drop(consumer);
    log.close().expect("close");
    positions
}

fn json_line(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn info_reports_the_log_for_people_and_for_scripts() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_log(dir.path());
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let out = seglog(&["info", dir_arg]);
    assert_eq!(status(&out), 0);
    let shown = text(&out.stdout);
    assert!(shown.contains("1,500 in 3 streams"), "{shown}");
    assert!(shown.contains("00000000000000000000.seg"), "{shown}");
    assert!(shown.contains("billing"), "{shown}");
    assert!(!shown.contains('\x1b'), "no colour off a terminal");

    let out = seglog(&["info", dir_arg, "--json"]);
    assert_eq!(status(&out), 0);
    let info = json_line(&out);
    assert_eq!(info["events"], 1500);
    assert_eq!(info["streams"], 3);
    assert_eq!(info["segments"].as_array().map(Vec::len), Some(2));
    assert_eq!(info["segments"][0]["sealed"], true);
    assert_eq!(info["consumers"][0]["name"], "billing");
    assert!(
        info["chain_head"]
            .as_str()
            .is_some_and(|d| d.starts_with("seglog-digest 1 "))
    );
}

#[test]
fn verify_exits_0_when_intact_and_1_at_damage_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    let positions = make_log(dir.path());
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let out = seglog(&["verify", dir_arg, "--json"]);
    assert_eq!(status(&out), 0);
    let report = json_line(&out);
    assert_eq!(report["intact"], true);
    assert_eq!(report["events"], 1500);
    let digest = report["head"].as_str().expect("head").to_string();
    let out = seglog(&["verify", dir_arg, "--digest", &digest]);
    assert_eq!(status(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("intact"));

    // A payload byte of the 11th event, in the sealed first segment.
    let seg = dir.path().join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).expect("read");
    let frame = positions[10].frame_offset() as usize;
    bytes[frame + 200] ^= 0x55;
    std::fs::write(&seg, &bytes).expect("write");
    let out = seglog(&["verify", dir_arg, "--json"]);
    assert_eq!(status(&out), 1);
    let report = json_line(&out);
    assert_eq!(report["intact"], false);
    assert_eq!(report["failure"]["offset"], frame as u64);
    assert_eq!(report["failure"]["position"], positions[10].to_string());
    assert!(
        report["failure"]["segment"]
            .as_str()
            .is_some_and(|s| s.ends_with("00000000000000000000.seg"))
    );
    let out = seglog(&["verify", dir_arg]);
    assert_eq!(status(&out), 1);
    assert!(
        text(&out.stdout).contains(&format!("at offset {frame}")),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn consumers_are_listed_and_reset_only_with_yes_and_the_writer_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let positions = make_log(dir.path());
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let out = seglog(&["consumers", "list", dir_arg, "--json"]);
    assert_eq!(status(&out), 0);
    assert_eq!(json_line(&out)["checkpoint"], positions[100].to_string());

    let to = positions[5].to_string();
    let out = seglog(&["consumers", "reset", dir_arg, "billing", "--to", &to]);
    assert_eq!(status(&out), 2);
    assert!(
        text(&out.stderr).contains("add --yes"),
        "{}",
        text(&out.stderr)
    );

    let log = Log::open(dir.path()).expect("a running service");
    let out = seglog(&[
        "consumers",
        "reset",
        dir_arg,
        "billing",
        "--to",
        &to,
        "--yes",
    ]);
    assert_eq!(status(&out), 3);
    assert!(
        text(&out.stderr).contains("held by a writer"),
        "{}",
        text(&out.stderr)
    );
    drop(log);

    let out = seglog(&[
        "consumers",
        "reset",
        dir_arg,
        "billing",
        "--to",
        &to,
        "--yes",
    ]);
    assert_eq!(status(&out), 0, "{}", text(&out.stderr));
    let out = seglog(&["consumers", "show", dir_arg, "billing", "--json"]);
    assert_eq!(json_line(&out)["checkpoint"], to);
}

#[test]
fn errors_name_what_is_wrong_with_the_right_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let missing = missing.to_str().expect("utf-8 path");
    let empty = dir.path().to_str().expect("utf-8 path");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let file = file.to_str().expect("utf-8 path");
    for (args, code, says) in [
        (vec!["info", missing], 3, "no such directory"),
        (vec!["verify", missing], 3, "no such directory"),
        (vec!["info", empty], 3, "not a seglog log"),
        (vec!["consumers", "list", file], 3, "not a directory"),
        (
            vec!["verify", empty, "--digest", "seglog-digest 9"],
            2,
            "not a seglog digest",
        ),
        (
            vec!["consumers", "reset", empty, "x", "--to", "12:x"],
            2,
            "not a position",
        ),
        (vec!["info"], 2, "Usage"),
        (vec!["no-such-command"], 2, "unrecognized subcommand"),
        (vec!["completions", "tcsh"], 2, "invalid value"),
    ] {
        let out = seglog(&args);
        assert_eq!(status(&out), code, "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_damaged_header_is_named_with_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_log(dir.path());
    let seg = dir.path().join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[20] ^= 0xff;
    std::fs::write(&seg, &bytes).expect("write");
    let out = seglog(&["info", dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(status(&out), 1);
    let err = text(&out.stderr);
    assert!(
        err.contains("00000000000000000000.seg") && err.contains("offset 0"),
        "{err}"
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = seglog(&["completions", shell]);
        assert_eq!(status(&out), 0);
        let script = text(&out.stdout);
        assert!(
            script.contains("verify") && script.contains("consumers"),
            "{shell}"
        );
    }
    let out = seglog(&["man"]);
    assert_eq!(status(&out), 0);
    let page = text(&out.stdout);
    assert!(
        page.contains(".TH seglog 1") && page.contains("verify"),
        "{page}"
    );
}

#[test]
fn an_export_to_a_device_is_not_synced_and_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_log(dir.path());
    let dir_arg = dir.path().to_str().expect("utf-8 path");
    let out = seglog(&["export", dir_arg, "--output", "/dev/null", "--json"]);
    assert_eq!(status(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"events\":1500"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_segment_file_dumps_alone_and_stops_at_its_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let positions = make_log(dir.path());
    let copy = dir.path().join("evidence.bin");
    std::fs::copy(dir.path().join("00000000000000000000.seg"), &copy).expect("copy");
    let copy_arg = copy.to_str().expect("utf-8 path");
    let out = seglog(&["dump", "--segment", copy_arg, "--json", "--limit", "3"]);
    assert_eq!(status(&out), 0, "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["position"], positions[1].to_string());
    assert_eq!(lines[1]["stream"], "orders-1");
    assert_eq!(lines[1]["type"], "OrderPlaced");

    let mut bytes = std::fs::read(&copy).expect("read");
    let frame = positions[10].frame_offset() as usize;
    bytes[frame + 200] ^= 0x55;
    std::fs::write(&copy, &bytes).expect("write");
    let out = seglog(&["dump", "--segment", copy_arg, "--json"]);
    assert_eq!(status(&out), 1);
    assert_eq!(
        text(&out.stdout).lines().count(),
        10,
        "the events before the damage"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("evidence.bin") && err.contains(&format!("offset {frame}")),
        "{err}"
    );

    std::fs::write(&copy, vec![b'x'; 8192]).expect("write");
    let out = seglog(&["dump", "--segment", copy_arg]);
    assert_eq!(status(&out), 1);
    assert!(
        text(&out.stderr).contains("not a seglog file"),
        "{}",
        text(&out.stderr)
    );
    let out = seglog(&["dump", "--segment", copy_arg, "--stream", "x"]);
    assert_eq!(status(&out), 2);
}

#[test]
fn the_measurements_speak_json_too() {
    let out = seglog(&["demo", "--events", "2000", "--streams", "10", "--json"]);
    assert_eq!(status(&out), 0, "{}", text(&out.stderr));
    let phases: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object a line");
            v["phase"].as_str().expect("phase").to_string()
        })
        .collect();
    assert_eq!(phases, ["append", "replay_borrowed", "replay_owned"]);
}
