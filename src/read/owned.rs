//! Owned events: what `read_all`, stream reads and subscriptions hand
//! out. Payloads, metadata and types are slices of one `Bytes` per segment
//! (never copies): one reference-count increment per field.

use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::Result;
use crate::event::PayloadState;
use crate::event::RecordedEvent;
use crate::frame::{self, DecodeError};
use crate::segment::{HEADER_BYTES, Segment, corrupt};
use crate::shred::Unsealer;
use crate::upcast::Upcasters;
use crate::view::LogView;
use crate::walk::FrameInfo;

/// Remembers the last event type found to be UTF-8: types repeat, so most
/// events cost a short compare instead of a validation. With upcasters, it
/// also remembers whether a step applies to that type at the last schema
/// version asked about, so the lookup runs once per change of either.
/// It travels with the read's [`Unsealer`] (the keys encrypted events
/// open with), which every event of the read passes by as well.
#[derive(Debug, Default)]
pub(super) struct TypeCache {
    last: String,
    upcasters: Option<Upcasters>,
    /// For `last`: the schema version last asked about and whether a step
    /// applies to it.
    step: Option<(u16, bool)>,
    pub(super) unseal: Unsealer,
    log_id: u128,
}

impl TypeCache {
    /// A cache for a read of `view`, with its upcasters and keys.
    pub(super) fn new(view: &LogView) -> TypeCache {
        TypeCache {
            last: String::new(),
            upcasters: view.upcasters.clone(),
            step: None,
            unseal: Unsealer::new(view.keys.clone()),
            log_id: view.log_id,
        }
    }

    /// Opens the envelopes of `raw` into the unsealer's buffers; the
    /// error located in the frame at `at` of `seg`.
    #[cold]
    pub(super) fn open(
        &mut self,
        raw: &frame::RawEvent<'_>,
        seg: &Segment,
        at: u64,
    ) -> Result<PayloadState> {
        self.unseal
            .open(raw.flags, self.log_id, raw.payload, raw.metadata)
            .map_err(|e| e.at(seg, at))
    }

    /// [`TypeCache::check`], and the unsealer its event's plaintexts are in.
    #[inline]
    pub(super) fn check_with(
        &mut self,
        raw: &[u8],
        version: u16,
    ) -> Option<(&str, bool, &Unsealer)> {
        let applies = self.check(raw, version)?.1;
        Some((&self.last, applies, &self.unseal))
    }

    /// `raw` as a `&str` if it is UTF-8, and whether an upcaster step
    /// applies to it at `version`.
    #[inline]
    pub(super) fn check(&mut self, raw: &[u8], version: u16) -> Option<(&str, bool)> {
        if !same_bytes(raw, self.last.as_bytes()) {
            self.replace(raw)?;
        }
        let applies = match (&self.upcasters, self.step) {
            (None, _) => false,
            (Some(_), Some((v, applies))) if v == version => applies,
            (Some(u), _) => {
                let applies = u.has_step(&self.last, version);
                self.step = Some((version, applies));
                applies
            }
        };
        Some((&self.last, applies))
    }

    /// Validates `raw` and remembers it: once per change of type.
    #[cold]
    fn replace(&mut self, raw: &[u8]) -> Option<()> {
        let valid = std::str::from_utf8(raw).ok()?;
        self.last.clear();
        self.last.push_str(valid);
        self.step = None;
        Some(())
    }
}

/// `a == b` without a call to `memcmp` for the short strings event types
/// mostly are: of equal lengths up to 16, two loads of each that overlap
/// (its first and its last bytes) cover every byte.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn ends<const N: usize>(a: &[u8], b: &[u8]) -> bool {
        a.first_chunk::<N>() == b.first_chunk::<N>() && a.last_chunk::<N>() == b.last_chunk::<N>()
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last(),
        4..=7 => ends::<4>(a, b),
        8..=16 => ends::<8>(a, b),
        _ => a == b,
    }
}

/// The published bytes of one segment from `HEADER_BYTES` on, as one
/// `Bytes` that every event sliced from it shares: one allocation per
/// segment (and per growth of the active one), not per event.
#[derive(Default)]
pub(super) struct SegmentBytes {
    bytes: Bytes,
    base: Option<u64>,
    end: u64,
}

impl SegmentBytes {
    /// The bytes of the frame `info` of `seg`.
    pub(super) fn frame(&mut self, seg: &Arc<Segment>, info: &FrameInfo) -> Result<Bytes> {
        let end = info.start + info.len;
        if self.base != Some(seg.base()) || end > self.end {
            let published = seg.published();
            let owner = seg
                .slice(HEADER_BYTES, published)
                .ok_or_else(|| corrupt(seg, info.start, "frame beyond the published end"))?;
            self.bytes = Bytes::from_owner(owner);
            self.base = Some(seg.base());
            self.end = published;
        }
        if end > self.end {
            return Err(corrupt(seg, info.start, "frame beyond the published end"));
        }
        Ok(self
            .bytes
            .slice((info.start - HEADER_BYTES) as usize..(end - HEADER_BYTES) as usize))
    }
}

/// The events of one frame, handed out as owned `RecordedEvent`s.
pub(super) struct OwnedFrame {
    seg: Arc<Segment>,
    pub(super) info: FrameInfo,
    bytes: Bytes,
    stream: ByteString,
    at: usize,
    index: u16,
}

impl OwnedFrame {
    pub(super) fn new(
        shared: &LogView,
        cache: &mut SegmentBytes,
        seg: &Arc<Segment>,
        info: FrameInfo,
    ) -> Result<OwnedFrame> {
        let bytes = cache.frame(seg, &info)?;
        let stream = shared
            .names
            .get(info.stream_id as usize)
            .cloned()
            .ok_or_else(|| {
                corrupt(
                    seg,
                    info.start,
                    format!("unknown stream id {}", info.stream_id),
                )
            })?;
        Ok(OwnedFrame {
            seg: Arc::clone(seg),
            info,
            bytes,
            stream,
            at: info.events_start,
            index: 0,
        })
    }

    /// The next event at or after the frame's skip point; `None` at its end.
    pub(super) fn next_event(&mut self, types: &mut TypeCache) -> Option<Result<RecordedEvent>> {
        self.next_kept(types, &mut |_, _| true)
    }

    /// [`OwnedFrame::next_event`] for which `keep(version, event type)`
    /// holds: the others are passed over after parsing their header, without
    /// a `RecordedEvent` or a reference count made for them.
    pub(super) fn next_kept(
        &mut self,
        types: &mut TypeCache,
        keep: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Option<Result<RecordedEvent>> {
        loop {
            if u32::from(self.index) >= self.info.count {
                return None;
            }
            let parsed = frame::parse_event(&self.bytes, self.at);
            let (raw, next) = match parsed {
                Ok(ok) => ok,
                Err(e) => {
                    self.index = u16::MAX;
                    return Some(Err(corrupt(&self.seg, self.info.start, e)));
                }
            };
            let index = self.index;
            self.at = next;
            self.index += 1;
            let version = self.info.first_version + u64::from(index);
            if index < self.info.skip || !keep(version, raw.event_type) {
                continue;
            }
            let Some((_, upcast)) = types.check(raw.event_type, raw.schema_version) else {
                self.index = u16::MAX;
                return Some(Err(corrupt(
                    &self.seg,
                    self.info.start,
                    DecodeError::Malformed("event type not UTF-8"),
                )));
            };
            // A sealed event goes its own way: built in place here, the
            // plain event is returned without a stop in memory (with the
            // sealed branch beside it, owned replay ran about 6% slower).
            if raw.flags & frame::EVENT_FLAGS_SEALED != 0 {
                let sealed = self.sealed(types, &raw, version, index, upcast);
                if sealed.is_err() {
                    self.index = u16::MAX;
                }
                return Some(sealed);
            }
            return Some(Ok(self.build(&raw, version, index, upcast)));
        }
    }

    /// The event `raw`, the `index`th of the frame, as stored.
    #[inline(always)]
    fn build(
        &self,
        raw: &frame::RawEvent<'_>,
        version: u64,
        index: u16,
        upcast: bool,
    ) -> RecordedEvent {
        let slice = |start: usize, len: usize| self.bytes.slice(start..start + len);
        RecordedEvent {
            stream: self.stream.clone(),
            version,
            position: self.info.position(index),
            next_position: self.info.next_position(index),
            event_type: slice(raw.event_type_start, raw.event_type.len()),
            schema_version: raw.schema_version,
            stored_schema_version: raw.schema_version,
            // (0, 0): not upcast yet; the read's `Pending` does it.
            output: (0, u16::from(!upcast)),
            id: raw.id,
            timestamp_us: self.info.timestamp_us,
            metadata: slice(raw.metadata_start, raw.metadata.len()),
            payload: slice(raw.payload_start, raw.payload.len()),
            payload_state: PayloadState::Plain,
        }
    }

    /// A sealed event, its envelopes opened (or erased).
    #[cold]
    #[inline(never)]
    fn sealed(
        &self,
        types: &mut TypeCache,
        raw: &frame::RawEvent<'_>,
        version: u64,
        index: u16,
        upcast: bool,
    ) -> Result<RecordedEvent> {
        let mut event = self.build(raw, version, index, upcast);
        types
            .unseal
            .open_owned(raw.flags, types.log_id, &mut event)
            .map_err(|e| e.at(&self.seg, self.info.start))?;
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `same_bytes` is `==` for every length it compares by parts, with a
    /// difference at any byte.
    #[test]
    fn same_bytes_is_equality() {
        for n in 0..=20usize {
            let a: Vec<u8> = (0..n).map(|i| b'a' + i as u8).collect();
            assert!(same_bytes(&a, &a.clone()));
            if let Some(shorter) = n.checked_sub(1) {
                assert!(!same_bytes(&a, &a[..shorter]));
            }
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x80;
                assert!(!same_bytes(&a, &b), "length {n}, byte {i}");
            }
        }
    }

    /// The cache hands out a type only once it is UTF-8, and a changed
    /// type only once that one is.
    #[test]
    fn type_cache_checks_each_new_type() {
        let mut types = TypeCache::default();
        assert_eq!(types.check(b"OrderPlaced", 1), Some(("OrderPlaced", false)));
        assert_eq!(types.check(b"OrderPlaced", 1), Some(("OrderPlaced", false)));
        assert_eq!(types.check(b"OrderPlace\xff", 1), None);
        assert_eq!(types.check(b"e", 1), Some(("e", false)));
        assert_eq!(types.check(b"\xff", 1), None);
        assert_eq!(types.check(b"e", 1), Some(("e", false)));
    }
}
