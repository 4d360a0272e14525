//! Arbitrary bytes into the frame decoder: it must never panic, read out of
//! bounds or allocate, whatever the bytes claim.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose the frame's position, the rest is the frame.
    let (position, frame) = match data.split_first_chunk::<8>() {
        Some((p, rest)) => (u64::from_le_bytes(*p) & !7, rest),
        None => (4096, data),
    };
    seglog::fuzzing::decode_frame(frame, position);
});
