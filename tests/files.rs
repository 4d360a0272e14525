//! What the log puts on disk: only its own file names, private to the owner,
//! whatever the stream names and event types say.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use seglog::{Durability, EventData, ExpectedVersion, Options};

#[test]
fn files_are_private_and_names_never_become_paths() {
    let root = tempdir();
    let dir = root.path().join("log");
    let log = Options::new()
        .segment_size(MIB)
        .durability(Durability::None)
        .repair(true)
        .open(&dir)
        .expect("open");
    let hostile = [
        "../escape",
        "/tmp/absolute",
        "a/b/c",
        "..",
        "nul\0byte",
        "übergröße",
    ];
    for (i, name) in hostile.iter().cycle().take(600).enumerate() {
        log.append(
            name,
            ExpectedVersion::Any,
            &[EventData::new(*name, vec![i as u8; 3_000])],
        )
        .expect("append");
    }
    log.close().expect("close");
    // Damage a frame so a repair writes the quarantine list too.
    let seg = seg_path(&dir, 0);
    let mut b = read_at(&seg, HEADER_BYTES + 100, 1);
    b[0] ^= 0xff;
    write_at(&seg, HEADER_BYTES + 100, &b);
    remove_index_files(&dir);
    let log = Options::new()
        .segment_size(MIB)
        .durability(Durability::None)
        .repair(true)
        .open(&dir)
        .expect("repair");
    assert_eq!(log.quarantined().len(), 1);
    // The lost frame defined the first stream: its later events stay
    // readable under a placeholder, and every other stream is whole.
    let events = read_all(&log);
    assert_eq!(events.len(), 599);
    let lost = events
        .iter()
        .filter(|e| e.stream() == "$lost-stream-0")
        .count();
    assert_eq!(lost, 99);
    assert_eq!(log.stream_version("/tmp/absolute"), Some(99));
    log.close().expect("close");

    let mut names: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let mode = entry.metadata().expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
        names.push(name);
    }
    names.sort();
    assert!(
        names.iter().all(|n| n.ends_with(".seg")
            || n.ends_with(".idx")
            || n == "seglog.lock"
            || n == "quarantine"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(".seg")) && names.iter().any(|n| n.ends_with(".idx")));
    let outside: Vec<_> = std::fs::read_dir(root.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        outside,
        vec![std::ffi::OsString::from("log")],
        "nothing outside the log directory"
    );
}
