//! The names of the files seglog keeps in a log directory: one place that
//! knows them all, so that open can tell the engine's own files (and its
//! own temporary files) from anything else a directory may hold, and touch
//! only those.
//!
//! | name | what |
//! |---|---|
//! | `seglog.lock` | the writer's `flock`; always empty |
//! | `{base:020}.seg` | a segment starting at log offset `base` |
//! | `{base:020}.idx` | that segment's index file (derived data) |
//! | `quarantine` | the ranges a repair skipped |
//! | `start` | where the log starts after retention removed segments |
//! | `consumer-{hex}.ckpt` | a durable consumer's checkpoint |
//! | `keys` | the subjects' keys, sealed under the master key (crypto-shredding) |
//! | any of these + `.tmp` | written, synced, then renamed over the name |
//! | `snapshots/{stream key}/{version:020}.snap` | a stream's snapshot (`.tmp` while written) |

use std::path::{Path, PathBuf};

/// The writer's lock file.
pub(crate) const LOCK_FILE: &str = "seglog.lock";
/// The quarantine list.
pub(crate) const QUARANTINE_FILE: &str = "quarantine";
/// Where the log starts once retention has removed segments (`start.rs`).
pub(crate) const START_FILE: &str = "start";
/// The key store (`shred/keystore.rs`).
pub(crate) const KEYS_FILE: &str = "keys";

const SEGMENT_SUFFIX: &str = ".seg";
const INDEX_SUFFIX: &str = ".idx";
const CHECKPOINT_PREFIX: &str = "consumer-";
const CHECKPOINT_SUFFIX: &str = ".ckpt";
const TMP_SUFFIX: &str = ".tmp";

/// The file name of the segment starting at log offset `base`: zero-padded
/// so a directory listing sorts in log order.
pub(crate) fn segment_file(base: u64) -> String {
    format!("{base:020}{SEGMENT_SUFFIX}")
}

/// The base offset named by a segment file name, if it is one.
pub(crate) fn parse_segment_file(name: &str) -> Option<u64> {
    parse_base(name.strip_suffix(SEGMENT_SUFFIX)?)
}

/// The file name of the index of the segment starting at `base`.
pub(crate) fn index_file(base: u64) -> String {
    format!("{base:020}{INDEX_SUFFIX}")
}

fn parse_base(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The checkpoint file of consumer `name`: the name in hex, so no name can
/// reach the file system as a path.
pub(crate) fn checkpoint_file(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{CHECKPOINT_PREFIX}{hex}{CHECKPOINT_SUFFIX}")
}

/// The consumer name a checkpoint file name encodes, if it is one.
pub(crate) fn parse_checkpoint_file(name: &str) -> Option<String> {
    if !is_checkpoint_file(name) {
        return None;
    }
    let hex = &name[CHECKPOINT_PREFIX.len()..name.len() - CHECKPOINT_SUFFIX.len()];
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn is_checkpoint_file(name: &str) -> bool {
    name.strip_prefix(CHECKPOINT_PREFIX)
        .and_then(|rest| rest.strip_suffix(CHECKPOINT_SUFFIX))
        .is_some_and(|hex| {
            !hex.is_empty()
                && hex.len() % 2 == 0
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// The directory of every stream's snapshots, in the log directory.
pub(crate) const SNAPSHOT_DIR: &str = "snapshots";
const SNAPSHOT_SUFFIX: &str = ".snap";
/// Stream names up to this length name their snapshot directory in hex
/// (240 characters); longer ones by a hash, so every name fits 255 bytes.
const SNAPSHOT_HEX_MAX_BYTES: usize = 120;

/// The directory (under [`SNAPSHOT_DIR`]) of stream `stream`'s snapshots:
/// the name in hex, or for a name over 120 bytes `h-` and its 128-bit
/// FNV-1a hash in hex. Both come from bytes, never from the name as a
/// path; the two forms cannot meet (`h` and `-` are not hex digits). Two
/// long names with one hash would share a directory: each file holds its
/// stream's full name, and a load skips the other stream's.
pub(crate) fn snapshot_stream_dir(stream: &str) -> String {
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    if stream.len() <= SNAPSHOT_HEX_MAX_BYTES {
        return hex(stream.as_bytes());
    }
    const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let hash = stream
        .bytes()
        .fold(OFFSET_BASIS, |h, b| (h ^ u128::from(b)).wrapping_mul(PRIME));
    format!("h-{}", hex(&hash.to_be_bytes()))
}

/// The file name of a stream's snapshot at `version`: zero-padded so a
/// listing sorts by version.
pub(crate) fn snapshot_file(version: u64) -> String {
    format!("{version:020}{SNAPSHOT_SUFFIX}")
}

/// The version named by a snapshot file name, if it is one.
pub(crate) fn parse_snapshot_file(name: &str) -> Option<u64> {
    parse_base(name.strip_suffix(SNAPSHOT_SUFFIX)?)
}

/// Whether `name` is a snapshot file's temporary name: the leftover of an
/// interrupted save, removed by the next save of that stream.
pub(crate) fn is_snapshot_tmp(name: &str) -> bool {
    name.strip_suffix(TMP_SUFFIX)
        .and_then(parse_snapshot_file)
        .is_some()
}

/// `path` with `.tmp` appended: the name a file is written under before it
/// is renamed into place.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// Whether `name` is one the engine writes a file under before renaming it
/// into place: what open may remove as the leftover of an interrupted
/// write. Anything else ending in `.tmp` belongs to someone else.
pub(crate) fn is_engine_tmp(name: &str) -> bool {
    let Some(target) = name.strip_suffix(TMP_SUFFIX) else {
        return false;
    };
    let base = target
        .strip_suffix(SEGMENT_SUFFIX)
        .or_else(|| target.strip_suffix(INDEX_SUFFIX));
    base.and_then(parse_base).is_some()
        || target == QUARANTINE_FILE
        || target == START_FILE
        || target == KEYS_FILE
        || is_checkpoint_file(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_and_parse() {
        assert_eq!(segment_file(4096), "00000000000000004096.seg");
        assert_eq!(parse_segment_file(&segment_file(1 << 40)), Some(1 << 40));
        assert_eq!(parse_segment_file("4096.seg"), None);
        assert_eq!(parse_segment_file("0000000000000000409x.seg"), None);
        assert_eq!(parse_segment_file(&index_file(0)), None);
        assert!(segment_file(9) < segment_file(10));
    }

    #[test]
    fn only_the_engines_own_temporary_names_are_its_own() {
        for ours in [
            format!("{}.tmp", segment_file(1 << 20)),
            format!("{}.tmp", index_file(0)),
            "quarantine.tmp".to_string(),
            "start.tmp".to_string(),
            "keys.tmp".to_string(),
            format!("{}.tmp", checkpoint_file("billing")),
        ] {
            assert!(is_engine_tmp(&ours), "{ours}");
        }
        for theirs in [
            "notes.tmp",
            ".tmp",
            "quarantine",
            "4096.seg.tmp",
            "00000000000000000000.log.tmp",
            "consumer-.ckpt.tmp",
            "consumer-6.ckpt.tmp",
            "consumer-6G.ckpt.tmp",
            "00000000000000000000.seg.tmp.tmp",
            "seglog.lock.tmp",
        ] {
            assert!(!is_engine_tmp(theirs), "{theirs}");
        }
    }

    #[test]
    fn snapshot_names_are_hex_or_a_hash_and_fit_a_file_name() {
        assert_eq!(snapshot_stream_dir("a/../b"), "612f2e2e2f62");
        let long = "\u{ff}".repeat(crate::limits::MAX_STREAM_NAME_BYTES / 2);
        let hashed = snapshot_stream_dir(&long);
        assert!(hashed.starts_with("h-") && hashed.len() == 34, "{hashed}");
        assert_eq!(hashed, snapshot_stream_dir(&long), "stable");
        assert_ne!(hashed, snapshot_stream_dir(&format!("{long}x")));
        assert!(snapshot_stream_dir(&"x".repeat(SNAPSHOT_HEX_MAX_BYTES)).len() <= 255);
        assert_eq!(parse_snapshot_file(&snapshot_file(42)), Some(42));
        assert_eq!(parse_snapshot_file("42.snap"), None);
        assert!(is_snapshot_tmp(&format!("{}.tmp", snapshot_file(7))));
        assert!(!is_snapshot_tmp(&snapshot_file(7)));
    }

    #[test]
    fn checkpoint_names_are_hex() {
        assert_eq!(checkpoint_file("a/../b"), "consumer-612f2e2e2f62.ckpt");
        assert!(is_checkpoint_file(&checkpoint_file("\u{ff}x")));
        assert_eq!(
            parse_checkpoint_file(&checkpoint_file("\u{ff}x")).as_deref(),
            Some("\u{ff}x")
        );
        assert_eq!(parse_checkpoint_file("consumer-ff.ckpt"), None, "not UTF-8");
        assert_eq!(parse_checkpoint_file("consumer-.ckpt"), None);
    }
}
