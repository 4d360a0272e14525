//! Replays every committed fuzz corpus input through its target's logic, so
//! plain `cargo test` (stable, CI) exercises what `cargo fuzz` found.
//! `SEGLOG_WRITE_SEEDS=1 cargo test --test fuzz_corpus -- --ignored` rewrites
//! the seed inputs.

use std::path::Path;

use seglog::fuzzing::{decode_frame, encode_frame, open_mutated, ops_model};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {dir:?}: {e}"))
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read input"))
        })
        .collect();
    inputs.sort();
    inputs
}

/// Runs `each` on every input, split over two threads (each input opens a
/// log of its own, so they run side by side), and sums what it returns.
fn on_two_threads(
    inputs: &[(String, Vec<u8>)],
    each: impl Fn(&str, &[u8]) -> usize + Sync,
) -> usize {
    std::thread::scope(|s| {
        let halves: Vec<_> = [0, 1]
            .map(|half| {
                let each = &each;
                s.spawn(move || {
                    inputs
                        .iter()
                        .skip(half)
                        .step_by(2)
                        .map(|(name, data)| each(name, data))
                        .sum::<usize>()
                })
            })
            .into_iter()
            .collect();
        halves
            .into_iter()
            .map(|h| h.join().expect("replay thread"))
            .sum()
    })
}

/// What the `frame_decode` target does with one input: events walked as
/// given and after resealing the CRC.
fn frame_decode(data: &[u8]) -> (usize, usize) {
    let (position, frame) = match data.split_first_chunk::<8>() {
        Some((p, rest)) => (u64::from_le_bytes(*p) & !7, rest),
        None => (4096, data),
    };
    decode_frame(frame, position)
}

fn seed(position: u64, frame: &[u8]) -> Vec<u8> {
    let mut input = position.to_le_bytes().to_vec();
    input.extend_from_slice(frame);
    input
}

#[test]
fn frame_decode_corpus_replays_without_panics() {
    let inputs = corpus("frame_decode");
    assert!(inputs.len() >= 4, "seed corpus missing");
    let mut walked = 0;
    for (_, data) in &inputs {
        walked += frame_decode(data).0;
    }
    // The valid seeds decode: 1 + 3 events.
    assert!(walked >= 4, "valid seeds must decode, walked {walked}");
}

#[test]
fn valid_seed_decodes_and_damaged_copies_do_not() {
    let frame = encode_frame(8192, "order-1", &[("Placed", b"abc"), ("Paid", b"")]);
    assert_eq!(decode_frame(&frame, 8192), (2, 2));
    assert_eq!(
        decode_frame(&frame, 8200),
        (0, 2),
        "wrong position, then resealed"
    );
    let len = u32::from_le_bytes(frame[..4].try_into().expect("length")) as usize;
    assert!(
        len <= frame.len() && frame.len() - len < 8,
        "padding under 8 bytes"
    );
    for cut in 0..len {
        assert_eq!(decode_frame(&frame[..cut], 8192).0, 0, "cut at {cut}");
    }
}

#[test]
#[ignore = "rewrites the committed seeds; run with SEGLOG_WRITE_SEEDS=1"]
fn write_seeds() {
    if std::env::var_os("SEGLOG_WRITE_SEEDS").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame_decode");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let one = encode_frame(4096, "s", &[("T", b"payload")]);
    let three = encode_frame(
        1 << 20,
        "order-42",
        &[("A", b""), ("B", &[7; 300]), ("C", b"x")],
    );
    let mut torn = three.clone();
    torn.truncate(three.len() / 2);
    let mut huge_len = one.clone();
    huge_len[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    for (name, bytes) in [
        ("valid-one-event", seed(4096, &one)),
        ("valid-three-events", seed(1 << 20, &three)),
        ("torn", seed(1 << 20, &torn)),
        ("huge-length", seed(4096, &huge_len)),
        ("zeros", vec![0; 64]),
    ] {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

/// Events in the undamaged base log of `open_mutated`, counted once per
/// way it reads them: `read_all`, `replay`, and each stream from four
/// versions in both directions.
fn undamaged_reads() -> usize {
    let dir = tempfile::tempdir().expect("tempdir");
    open_mutated(&[0], &dir.path().join("log"))
}

#[test]
fn open_mutated_corpus_replays_without_panics() {
    let inputs = corpus("open_mutated");
    assert!(inputs.len() >= 8, "seed corpus missing");
    let whole = undamaged_reads();
    let damaged_less: usize = on_two_threads(&inputs, |name, data| {
        let dir = tempfile::tempdir().expect("tempdir");
        let read = open_mutated(data, &dir.path().join("log"));
        assert!(read <= whole + 64, "{name}: read {read} of {whole}");
        usize::from(read < whole)
    });
    assert!(damaged_less > 0, "some seeds must lose reads to damage");
}

#[test]
fn open_mutated_reads_everything_undamaged_and_repair_keeps_later_frames() {
    // 1,000 appends of 2 events over 3 streams; read_all + replay = 2 x 2,000.
    let whole = undamaged_reads();
    assert!(whole > 2 * 2_000, "read {whole}");
    // One flipped byte inside the first segment's frames: without repair the
    // open or the reads stop at it; with repair everything else stays.
    let flip = edit(0, 1, 100_000, 0x40);
    let dir = tempfile::tempdir().expect("tempdir");
    let strict = open_mutated(&[[0].as_slice(), &flip].concat(), &dir.path().join("a"));
    let repaired = open_mutated(&[[1].as_slice(), &flip].concat(), &dir.path().join("b"));
    assert!(strict < whole, "strict read {strict} of {whole}");
    assert!(
        repaired > strict && repaired + 64 > 2 * 2_000,
        "repair kept {repaired}, strict {strict}"
    );
}

/// One `open_mutated` edit.
fn edit(kind: u8, file: u8, offset: u32, arg: u16) -> Vec<u8> {
    let mut e = vec![kind, file];
    e.extend_from_slice(&offset.to_le_bytes());
    e.extend_from_slice(&arg.to_le_bytes());
    e
}

#[test]
#[ignore = "rewrites the committed seeds; run with SEGLOG_WRITE_SEEDS=1"]
fn write_open_mutated_seeds() {
    if std::env::var_os("SEGLOG_WRITE_SEEDS").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/open_mutated");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    // Files in name order: 0.idx, 0.seg, 1.idx, 1.seg, 2.idx, 2.seg.
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("untouched", vec![0]),
        (
            "flipped-frame-byte",
            [vec![0], edit(0, 1, 70_000, 1)].concat(),
        ),
        (
            "flipped-frame-byte-repair",
            [vec![1], edit(0, 1, 70_000, 1)].concat(),
        ),
        (
            "truncated-tail-segment",
            [vec![0], edit(1, 5, 9_000, 0)].concat(),
        ),
        (
            "truncated-sealed-segment",
            [vec![0], edit(1, 1, 500_000, 0)].concat(),
        ),
        ("zeroed-tail", [vec![0], edit(2, 5, 4_096, 60_000)].concat()),
        ("index-deleted", [vec![0], edit(3, 0, 0, 0)].concat()),
        ("index-garbage", [vec![0], edit(0, 2, 40, 0xff)].concat()),
        ("wrong-magic", [vec![0], edit(0, 3, 0, 1)].concat()),
        ("future-version", [vec![0], edit(5, 3, 8, 2)].concat()),
        (
            "misdirected-frame",
            [vec![0], edit(4, 3, 300_000, 8_000)].concat(),
        ),
        ("stale-index-restored", [vec![0], edit(7, 2, 0, 0)].concat()),
        (
            "stale-segment-restored",
            [vec![0], edit(7, 3, 0, 1)].concat(),
        ),
        (
            "middle-segment-deleted",
            [vec![0], edit(3, 3, 0, 0)].concat(),
        ),
        ("garbage-appended", [vec![0], edit(6, 5, 0, 3_000)].concat()),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

#[test]
fn ops_model_corpus_replays_against_the_model() {
    let inputs = corpus("ops_model");
    assert!(inputs.len() >= 5, "seed corpus missing");
    let ran: usize = on_two_threads(&inputs, |name, data| {
        // Shown only when the test fails: which input broke the model.
        eprintln!("ops_model input {name}");
        let dir = tempfile::tempdir().expect("tempdir");
        ops_model(data, &dir.path().join("log"))
    });
    assert!(ran >= 40, "seeds run {ran} operations");
}

/// `ops_model` operations: `[kind, stream, b, c]`.
fn ops(list: &[[u8; 4]]) -> Vec<u8> {
    list.concat()
}

#[test]
#[ignore = "rewrites the committed seeds; run with SEGLOG_WRITE_SEEDS=1"]
fn write_ops_model_seeds() {
    if std::env::var_os("SEGLOG_WRITE_SEEDS").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ops_model");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let append = |s: u8, size: u8, n: u8| [0, s, size * 3, n];
    let mut big: Vec<[u8; 4]> = (0..12).map(|i| append(i % 4, 80, 2)).collect();
    big.extend([
        [5, 0, 0, 0],
        [7, 0, 0, 0],
        [5, 0, 0, 0],
        [3, 1, 2, 0],
        [4, 2, 7, 0],
    ]);
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "append-read",
            ops(&[
                append(0, 1, 2),
                append(1, 2, 0),
                append(0, 3, 1),
                [3, 0, 1, 0],
                [4, 0, 7, 0],
                [5, 0, 0, 0],
            ]),
        ),
        (
            "expected-versions",
            ops(&[
                [1, 0, 1, 0],
                [2, 0, 2, 0],
                [1, 0, 1, 1],
                [2, 0, 2, 0],
                [1, 0, 4, 0],
                [5, 0, 0, 0],
            ]),
        ),
        (
            "reopen-and-cut",
            ops(&[
                append(2, 5, 2),
                [6, 0, 0, 0],
                append(2, 1, 0),
                [7, 0, 0, 0],
                [3, 2, 0, 0],
                append(3, 1, 1),
                [7, 0, 0, 0],
                [5, 0, 0, 0],
            ]),
        ),
        (
            "failed-fsync",
            ops(&[
                append(1, 1, 0),
                [8, 0, 0, 0],
                append(1, 2, 0),
                append(1, 3, 0),
                [6, 0, 0, 0],
                [3, 1, 0, 0],
                append(1, 4, 0),
                [5, 0, 0, 0],
            ]),
        ),
        (
            "failed-fsync-then-cut",
            ops(&[
                append(0, 2, 2),
                [8, 0, 0, 0],
                append(0, 2, 2),
                [7, 0, 0, 0],
                [5, 0, 0, 0],
            ]),
        ),
        ("rolls-and-cut", ops(&big)),
        ("disk-full", {
            let mut list = vec![[9, 0, 0, 0]];
            list.extend((0..14).map(|i| append(i % 4, 80, 2)));
            list.extend([
                [10, 0, 0, 0],
                append(0, 1, 0),
                [5, 0, 0, 0],
                [6, 0, 0, 0],
                [5, 0, 0, 0],
            ]);
            ops(&list)
        }),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}
