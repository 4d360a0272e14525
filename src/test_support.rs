//! Helpers the unit tests share.

use crate::{Log, Position};

/// Events as (stream, version, payload).
pub(crate) type Events = Vec<(String, u64, Vec<u8>)>;

/// Every event of `log`, from the start, through `read_all`.
pub(crate) fn all_events(log: &Log) -> Events {
    log.read_all(Position::START)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.stream().to_string(), e.version(), e.payload().to_vec())
        })
        .collect()
}
