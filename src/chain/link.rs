//! One link of the hash chain: pure functions over a frame's stored bytes
//! (docs/FORMAT.md, "Hash chain").
//!
//! A link hashes the previous link, the frame's log offset and the frame's
//! bytes as stored, except its CRC (which the link supersedes) and with
//! each payload replaced by the payload's own hash. So a payload can be
//! erased in place later and the chain still verifies from that hash, and
//! nothing is re-serialised: what is hashed is what is on disk.
#![deny(clippy::indexing_slicing)]

use crate::frame::{DecodeError, EventsFrame};

/// A BLAKE3 hash: a link, the chain's head, a payload's hash.
pub(crate) type Hash = [u8; 32];

/// The key of the chain's first link, derived from the log's id, so a
/// segment of another log never continues this log's chain.
pub(crate) fn genesis(log_id: u128) -> Hash {
    blake3::derive_key(
        "seglog 2026-12 hash chain v1 genesis",
        &log_id.to_le_bytes(),
    )
}

/// The link after `prev` for the events frame `frame` at log offset
/// `offset`. An event whose bytes do not parse is an error (a frame that
/// passed a full check never has one).
pub(crate) fn link(prev: &Hash, offset: u64, frame: &EventsFrame<'_>) -> Result<Hash, DecodeError> {
    let bytes = frame.bytes;
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(&offset.to_le_bytes());
    h.update(bytes.get(..4).unwrap_or_default());
    let mut at = 8;
    for event in frame.events() {
        let event = event?;
        let payload_end = event.payload_start + event.payload.len();
        h.update(bytes.get(at..event.payload_start).unwrap_or_default());
        h.update(blake3::hash(event.payload).as_bytes());
        at = payload_end;
    }
    h.update(bytes.get(at..).unwrap_or_default());
    Ok(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventData;
    use crate::frame::{BatchMeta, Checksum, Frame, batch_len, decode, encode_batch};

    fn framed(events: &[EventData], offset: u64) -> Vec<u8> {
        let checksum = Checksum::new(7);
        let len = batch_len(Some("s"), events) as usize;
        let mut buf = vec![0u8; len.next_multiple_of(8)];
        let meta = BatchMeta {
            stream_id: 0,
            defines: Some("s"),
            first_version: 1,
            prev_frame: u64::MAX,
            timestamp_us: 5,
            durable_end: 0,
        };
        encode_batch(&mut buf, offset, &checksum, &meta, events);
        buf
    }

    fn link_of(buf: &[u8], offset: u64) -> Hash {
        let (Frame::Events(f), _) = decode(buf, offset, &Checksum::new(7)).expect("frame") else {
            panic!("not an events frame");
        };
        link(&genesis(7), offset, &f).expect("link")
    }

    #[test]
    fn a_link_covers_every_stored_byte_but_the_crc_and_sees_payloads_through_their_hash() {
        let events = [
            EventData::new("A", &b"first payload"[..]).with_metadata(&b"m"[..]),
            EventData::new("B", &b"second"[..]).with_id(9),
        ];
        let buf = framed(&events, 4096);
        let base = link_of(&buf, 4096);
        assert_eq!(base, link_of(&buf, 4096), "deterministic");
        assert_ne!(base, link_of(&framed(&events, 4104), 4104), "the offset");
        let other_prev = {
            let (Frame::Events(f), _) = decode(&buf, 4096, &Checksum::new(7)).expect("frame")
            else {
                panic!()
            };
            link(&genesis(8), 4096, &f).expect("link")
        };
        assert_ne!(base, other_prev, "the previous link");
        // Each field changed (and the CRC recomputed by re-encoding) moves
        // the link: payload, metadata, type, id.
        for changed in [
            [
                EventData::new("A", &b"first payloaD"[..]).with_metadata(&b"m"[..]),
                events[1].clone(),
            ],
            [
                EventData::new("A", &b"first payload"[..]).with_metadata(&b"M"[..]),
                events[1].clone(),
            ],
            [
                events[0].clone(),
                EventData::new("C", &b"second"[..]).with_id(9),
            ],
            [
                events[0].clone(),
                EventData::new("B", &b"second"[..]).with_id(10),
            ],
        ] {
            assert_ne!(base, link_of(&framed(&changed, 4096), 4096));
        }
    }
}
