//! Arbitrary sequences of appends, reads, reopens, power cuts and injected
//! faults against an in-memory model, through the fault-injecting storage.
//! The operation encoding is documented on `seglog::fuzzing::ops_model`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    seglog::fuzzing::ops_model(data, &dir.path().join("log"));
});
