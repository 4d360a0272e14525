//! Replays every committed fuzz corpus input through its target's logic, so
//! plain `cargo test` (stable, CI) exercises what `cargo fuzz` found.
//! `SEGLOG_WRITE_SEEDS=1 cargo test --test fuzz_corpus -- --ignored` rewrites
//! the seed inputs.

use std::path::Path;

use seglog::fuzzing::{decode_frame, encode_frame};

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
