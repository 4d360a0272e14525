//! Round trips and damage detection of frames, by example and by property.
// Test inputs are built in range.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::events::RawEvent;
use super::*;
use crate::event::EventData;

fn sample() -> Vec<EventData> {
    vec![
        EventData::new("OrderPlaced", &b"payload-1"[..]).with_metadata(&b"m"[..]),
        EventData::new("OrderPaid", Vec::new())
            .with_id(0xfeed_beef)
            .with_schema_version(3),
    ]
}

fn encode(position: u64, meta: &BatchMeta<'_>, events: &[EventData]) -> Vec<u8> {
    let len = padded(batch_len(meta.defines, events)) as usize;
    let mut out = vec![0xAA; len];
    encode_batch(&mut out, position, &Checksum::new(7), meta, events);
    out
}

const META: BatchMeta<'static> = BatchMeta {
    stream_id: 3,
    defines: Some("order-42"),
    first_version: 5,
    prev_frame: NO_PREV_FRAME,
    timestamp_us: 1_700_000_000_000_000,
    durable_end: 1024,
};

#[test]
fn round_trip() {
    let events = sample();
    let buf = encode(4096, &META, &events);
    assert_eq!(buf.len() % 8, 0);
    let (frame, len) = decode(&buf, 4096, &Checksum::new(7)).unwrap();
    assert_eq!(len as usize, buf.len());
    let Frame::Events(f) = frame else {
        panic!("not events")
    };
    assert_eq!(f.stream_id, 3);
    assert_eq!(f.defines, Some("order-42"));
    assert_eq!(f.first_version, 5);
    assert_eq!(f.durable_end(4096), Some(1024));
    let got: Vec<_> = f.events().map(Result::unwrap).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].event_type, b"OrderPlaced");
    assert_eq!(got[0].payload, b"payload-1");
    assert_eq!(got[0].metadata, b"m");
    assert_eq!(got[0].id, None);
    assert_eq!(got[1].id, Some(0xfeed_beef));
    assert_eq!(got[1].schema_version, 3);
    assert_eq!(&buf[got[0].payload_start..][..9], b"payload-1");
}

#[test]
fn zeros_never_decode() {
    let zeros = [0u8; 64];
    assert_eq!(
        decode(&zeros, 4096, &Checksum::new(7)),
        Err(DecodeError::Zero)
    );
    assert_eq!(
        decode(&zeros[..3], 4096, &Checksum::new(7)),
        Err(DecodeError::Zero)
    );
}

#[test]
fn wrong_position_or_log_fails_checksum() {
    let buf = encode(4096, &META, &sample());
    assert!(matches!(
        decode(&buf, 4104, &Checksum::new(7)),
        Err(DecodeError::Checksum { .. })
    ));
    assert!(matches!(
        decode(&buf, 4096, &Checksum::new(8)),
        Err(DecodeError::Checksum { .. })
    ));
}

#[test]
fn every_truncation_and_bit_flip_is_detected() {
    let buf = encode(4096, &META, &sample());
    let len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
    for cut in 0..len {
        assert!(
            decode(&buf[..cut], 4096, &Checksum::new(7)).is_err(),
            "cut {cut}"
        );
    }
    for byte in 0..len {
        for bit in 0..8 {
            let mut bad = buf.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                decode(&bad, 4096, &Checksum::new(7)).is_err(),
                "{byte}:{bit}"
            );
        }
    }
}

#[test]
fn end_marker_round_trips() {
    let mut out = [0xFFu8; END_BYTES];
    encode_end(&mut out, 8192, &Checksum::new(1));
    assert_eq!(
        decode(&out, 8192, &Checksum::new(1)),
        Ok((Frame::End, END_BYTES as u64))
    );
}

#[test]
fn huge_length_fails_without_reading() {
    let mut buf = encode(4096, &META, &sample());
    buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode(&buf, 4096, &Checksum::new(7)),
        Err(DecodeError::Truncated { .. })
    ));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn event() -> impl Strategy<Value = EventData> {
        (
            "[A-Za-z][A-Za-z0-9.]{0,30}",
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(any::<u8>(), 0..40),
            any::<u16>(),
            proptest::option::of(any::<u128>()),
        )
            .prop_map(|(event_type, payload, metadata, schema, id)| {
                let e = EventData::new(event_type, payload)
                    .with_metadata(metadata)
                    .with_schema_version(schema);
                match id {
                    Some(id) => e.with_id(id),
                    None => e,
                }
            })
    }

    fn batch() -> impl Strategy<Value = (u64, Option<String>, u32, u64, u64, Vec<EventData>)> {
        (
            (512u64..1 << 40).prop_map(|p| p * ALIGN),
            proptest::option::of("[a-z0-9-]{1,60}"),
            any::<u32>(),
            0u64..1 << 48,
            any::<u64>(),
            proptest::collection::vec(event(), 1..6),
        )
    }

    fn encoded(position: u64, meta: &BatchMeta<'_>, events: &[EventData]) -> Vec<u8> {
        let len = padded(batch_len(meta.defines, events)) as usize;
        let mut out = vec![0; len];
        encode_batch(&mut out, position, &Checksum::new(42), meta, events);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("SEGLOG_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
        ))]

        /// Every valid batch decodes, with both decoders, to exactly what was
        /// encoded.
        #[test]
        fn every_valid_frame_round_trips(
            (position, defines, stream_id, first_version, timestamp_us, events) in batch()
        ) {
            let meta = BatchMeta {
                stream_id,
                defines: defines.as_deref(),
                first_version,
                prev_frame: position - ALIGN,
                timestamp_us,
                durable_end: position - 4096,
            };
            let buf = encoded(position, &meta, &events);
            for decoded in [
                decode(&buf, position, &Checksum::new(42)),
                decode_lazy(&buf, position, &Checksum::new(42)),
            ] {
                let (frame, len) = decoded.expect("a valid frame decodes");
                prop_assert_eq!(len as usize, buf.len());
                let Frame::Events(f) = frame else { panic!("not an events frame") };
                prop_assert_eq!(f.stream_id, stream_id);
                prop_assert_eq!(f.defines, defines.as_deref());
                prop_assert_eq!(f.first_version, first_version);
                prop_assert_eq!(f.prev_frame, position - ALIGN);
                prop_assert_eq!(f.timestamp_us, timestamp_us);
                prop_assert_eq!(f.durable_end(position), Some(position - 4096));
                let got: Vec<RawEvent<'_>> = f.events().collect::<Result<_, _>>().expect("events");
                prop_assert_eq!(got.len(), events.len());
                for (g, e) in got.iter().zip(&events) {
                    prop_assert_eq!(g.event_type, e.event_type.as_str().as_bytes());
                    prop_assert_eq!(g.payload, &e.payload[..]);
                    prop_assert_eq!(g.metadata, &e.metadata[..]);
                    prop_assert_eq!(g.schema_version, e.schema_version);
                    prop_assert_eq!(g.id, e.id);
                }
            }
        }

        /// Any change to any byte of a frame's length, checksum or content
        /// is detected by both decoders; so is the frame at another position
        /// or under another log's id.
        #[test]
        fn any_byte_change_is_detected(
            (position, defines, stream_id, first_version, timestamp_us, events) in batch(),
            at in any::<prop::sample::Index>(),
            xor in 1u8..,
        ) {
            let meta = BatchMeta {
                stream_id,
                defines: defines.as_deref(),
                first_version,
                prev_frame: NO_PREV_FRAME,
                timestamp_us,
                durable_end: 0,
            };
            let buf = encoded(position, &meta, &events);
            let unpadded = batch_len(meta.defines, &events) as usize;
            let mut bad = buf.clone();
            let i = at.index(unpadded);
            bad[i] ^= xor;
            prop_assert!(decode(&bad, position, &Checksum::new(42)).is_err(), "byte {} changed", i);
            prop_assert!(decode_lazy(&bad, position, &Checksum::new(42)).is_err(), "byte {} changed (lazy)", i);
            prop_assert!(decode(&buf, position + ALIGN, &Checksum::new(42)).is_err());
            prop_assert!(decode(&buf, position, &Checksum::new(43)).is_err());
        }
    }
}
