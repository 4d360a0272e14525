//! Entry points for the fuzz targets in `fuzz/` and the corpus replay test.
//! Not part of the stable API, and compiled only with the `testing` feature
//! (the fuzz crate and this package's own tests enable it), so a program
//! that embeds seglog never builds it or the fault-injecting storage it
//! drives.

use crate::frame::{self, Checksum, Frame};

mod model;
mod mutated;

pub use model::ops_model;
pub use mutated::open_mutated;

/// Log id the fuzz seeds are encoded with.
pub const FUZZ_LOG_ID: u128 = 0x5E61_0600_0000_0000_0000_0000_0000_0001;

/// Decodes `bytes` as a frame at log offset `position` with both decoders
/// and walks every event; then does the same with the CRC field rewritten to
/// match, so arbitrary contents reach the structure checks behind the CRC.
/// Returns how many events were walked as given and after resealing. Panics
/// only when the two decoders disagree (a bug the fuzzer is looking for).
pub fn decode_frame(bytes: &[u8], position: u64) -> (usize, usize) {
    let walked = decode_both(bytes, position);
    let mut resealed = bytes.to_vec();
    let len = resealed
        .first_chunk::<4>()
        .map_or(0, |l| u32::from_le_bytes(*l) as usize);
    if (8..=resealed.len()).contains(&len) {
        frame::seal_crc(&mut resealed, len, position, &Checksum::new(FUZZ_LOG_ID));
    }
    (walked, decode_both(&resealed, position))
}

fn decode_both(bytes: &[u8], position: u64) -> usize {
    let checksum = Checksum::new(FUZZ_LOG_ID);
    let full = frame::decode(bytes, position, &checksum);
    let lazy = frame::decode_lazy(bytes, position, &checksum);
    // A frame the full decoder accepts, the lazy one accepts too.
    assert!(
        full.is_err() || lazy.is_ok(),
        "lazy decode refused a valid frame"
    );
    match lazy {
        Ok((Frame::Events(f), len)) => {
            assert!(len as usize >= f.bytes.len() && len % frame::ALIGN == 0);
            f.events().take_while(Result::is_ok).count()
        }
        Ok((Frame::End, _)) | Err(_) => 0,
    }
}

/// Encodes one valid frame of `events` (type, payload) for stream `name` at
/// `position`: seeds for the corpus.
pub fn encode_frame(position: u64, name: &str, events: &[(&str, &[u8])]) -> Vec<u8> {
    let events: Vec<crate::EventData> = events
        .iter()
        .map(|(t, p)| crate::EventData::new(*t, p.to_vec()))
        .collect();
    let meta = frame::BatchMeta {
        stream_id: 0,
        defines: Some(name),
        first_version: 0,
        prev_frame: frame::NO_PREV_FRAME,
        timestamp_us: 1,
        durable_end: 0,
    };
    let len = frame::padded(frame::batch_len(meta.defines, &events)) as usize;
    let mut out = vec![0; len];
    frame::encode_batch(
        &mut out,
        position,
        &Checksum::new(FUZZ_LOG_ID),
        &meta,
        &events,
    );
    out
}
