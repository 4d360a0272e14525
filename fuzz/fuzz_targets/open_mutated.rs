//! A small valid log damaged by arbitrary edits and truncations, then opened
//! and read in every way: `Ok` or a clean `Error`, never a panic, an abort
//! or a SIGBUS. The edit encoding is documented on
//! `seglog::fuzzing::open_mutated`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    seglog::fuzzing::open_mutated(data, &dir.path().join("log"));
});
