//! The borrowed paths: `replay` and `replay_stream` hand out `EventRef`s
//! straight from the mapping, no copy and no allocation per event. A
//! long replay gets a helper thread checking checksums ahead of it
//! (`ahead.rs`).

use std::sync::Arc;

use super::ahead::{self, Ahead};
use super::owned::TypeCache;
use super::stream::ReadStream;
use super::walker::Walker;
use crate::error::Result;
use crate::event::EventRef;
use crate::event::PayloadState;
use crate::frame::{
    EVENT_FLAG_METADATA_SEALED, EVENT_FLAG_PAYLOAD_SEALED, EVENT_FLAGS_SEALED, EventIter,
};
use crate::position::Position;
use crate::segment::{Segment, corrupt};
use crate::shred::Unsealer;
use crate::view::LogView;
use crate::walk::{Check, FrameInfo, Step};

impl Walker {
    /// Hands `f` the events of up to `left` frames that follow in the
    /// current segment, up to its published end as read once here: the
    /// common case of [`Walker::next_frame`] without its per-frame segment
    /// fetch, `published` load and `FrameInfo` hand-over. It stops before
    /// anything else (an end marker, damage, the published end, a position
    /// still to prove), which `next_frame` then handles. Returns where to
    /// resume after the last frame it handed out, if any.
    fn replay_run<F>(
        &mut self,
        types: &mut TypeCache,
        f: &mut F,
        left: &mut usize,
    ) -> Result<Option<Position>>
    where
        F: FnMut(EventRef<'_>),
    {
        if self.unproven.is_some() || self.skip > 0 {
            return Ok(None);
        }
        let Some(seg) = self.seg.as_deref() else {
            return Ok(None);
        };
        let trusted = std::mem::take(&mut self.trusted);
        let mut frames = Walker::frames(
            &self.shared,
            seg,
            self.offset,
            self.ahead.as_deref(),
            trusted,
        );
        let mut resume = None;
        let result = loop {
            if *left == 0 {
                break Ok(());
            }
            let start = frames.offset();
            // Anything but an events frame goes back to `next_frame`.
            let Step::Events(decoded, padded) = frames.next(Check::Lazy) else {
                frames.seek(start);
                break Ok(());
            };
            Walker::passed(
                self.ahead.as_deref(),
                &mut self.frames,
                seg.base() + start + padded,
            );
            let info = FrameInfo::new(seg, start, &decoded, padded, 0);
            resume = Some(Position::new(info.next_global, 0));
            *left -= 1;
            if let Err(e) = frame_events(&self.shared, seg, decoded.bytes, &info, types, f) {
                break Err(e);
            }
        };
        self.offset = frames.offset();
        self.trusted = frames.trusted();
        result.map(|()| resume)
    }
}

/// The borrowed stream read behind
/// [`Log::replay_stream`](crate::Log::replay_stream): the frames a forward
/// [`ReadStream`] plans, handed out as `EventRef`s straight from the
/// mapping. Returns the version after the last event seen.
pub(crate) fn replay_stream<F>(
    shared: &Arc<LogView>,
    stream: Option<(u32, crate::streams::Head)>,
    from_version: u64,
    mut f: F,
) -> Result<u64>
where
    F: FnMut(EventRef<'_>),
{
    let mut read = ReadStream::new(Arc::clone(shared), stream, from_version, false)?;
    if read.done {
        return Ok(from_version);
    }
    let mut types = TypeCache::new(shared);
    let mut info = FrameInfo::EMPTY;
    while let Some(seg) = read.next_frame_into(&mut info)? {
        frame_refs(shared, read.segs.get(seg), &info, &mut types, &mut f)?;
        read.next_version = info.last_version() + 1;
    }
    Ok(read.next_version)
}

/// Calls `f` with a borrowed view of each event of the frame `info` of
/// `seg` from its skip point on: the one loop behind both borrowed paths.
fn frame_refs<F>(
    shared: &LogView,
    seg: &Segment,
    info: &FrameInfo,
    types: &mut TypeCache,
    f: &mut F,
) -> Result<()>
where
    F: FnMut(EventRef<'_>),
{
    let bytes = seg
        .bytes(info.start, info.start + info.len)
        .ok_or_else(|| corrupt(seg, info.start, "frame beyond the published end"))?;
    frame_events(shared, seg, bytes, info, types, f)
}

/// [`frame_refs`] for the frame's unpadded `bytes`, already found published.
// Always inlined: the replay's loop then keeps the frame's fields in
// registers instead of building a `FrameInfo` in memory for a call.
#[inline(always)]
fn frame_events<F>(
    shared: &LogView,
    seg: &Segment,
    bytes: &[u8],
    info: &FrameInfo,
    types: &mut TypeCache,
    f: &mut F,
) -> Result<()>
where
    F: FnMut(EventRef<'_>),
{
    let stream = shared.names.get(info.stream_id as usize).ok_or_else(|| {
        corrupt(
            seg,
            info.start,
            format!("unknown stream id {}", info.stream_id),
        )
    })?;
    let upcasters = shared.upcasters.as_ref();
    for (i, raw) in EventIter::new(bytes, info.events_start, info.count).enumerate() {
        let raw = raw.map_err(|e| corrupt(seg, info.start, e))?;
        let index = i as u16;
        if index < info.skip {
            continue;
        }
        let sealed = raw.flags & EVENT_FLAGS_SEALED != 0;
        let state = if sealed {
            types.open(&raw, seg, info.start)?
        } else {
            PayloadState::Plain
        };
        let (event_type, upcast, unsealed) =
            types
                .check_with(raw.event_type, raw.schema_version)
                .ok_or_else(|| corrupt(seg, info.start, "event type not UTF-8"))?;
        let mut event = EventRef {
            stream,
            version: info.first_version + i as u64,
            position: info.position(index),
            next_position: info.next_position(index),
            event_type,
            schema_version: raw.schema_version,
            stored_schema_version: raw.schema_version,
            output: (0, 1),
            id: raw.id,
            timestamp_us: info.timestamp_us,
            metadata: raw.metadata,
            payload: raw.payload,
            payload_state: state,
        };
        if sealed {
            unsealed_ref(&mut event, raw.flags, unsealed);
        }
        match upcasters {
            Some(u) if upcast && state != PayloadState::Erased => u.upcast_ref(event, f)?,
            _ => f(event),
        }
    }
    Ok(())
}

/// Points a borrowed event's sealed fields at their plaintexts (empty
/// when erased).
#[cold]
fn unsealed_ref<'a>(event: &mut EventRef<'a>, flags: u8, unsealed: &'a Unsealer) {
    if flags & EVENT_FLAG_PAYLOAD_SEALED != 0 {
        event.payload = &unsealed.payload;
    }
    if flags & EVENT_FLAG_METADATA_SEALED != 0 {
        event.metadata = &unsealed.metadata;
    }
}

/// The borrowed replay path behind [`Log::replay`](crate::Log::replay).
///
/// A long replay (see `ahead.rs`) gets a helper thread checking checksums
/// ahead of it, started once the first frame proved the start a boundary.
pub(crate) fn replay<F>(shared: &Arc<LogView>, from: Position, mut f: F) -> Result<Position>
where
    F: FnMut(EventRef<'_>),
{
    shared.check_from(from)?;
    let mut walker = Walker::new(Arc::clone(shared), from);
    let mut types = TypeCache::new(shared);
    let Some(next) = replay_frames(shared, &mut walker, &mut types, &mut f, Some(1))? else {
        return Ok(from);
    };
    let Some(slot) = ahead::HelperSlot::take(shared, next.frame_offset()) else {
        return Ok(replay_frames(shared, &mut walker, &mut types, &mut f, None)?.unwrap_or(next));
    };
    let helper = Arc::new(Ahead::new(next.frame_offset()));
    std::thread::scope(|s| {
        let theirs = &helper;
        let spawned = std::thread::Builder::new()
            .name("seglog-verify".into())
            .spawn_scoped(s, move || {
                ahead::verify(shared, theirs);
                drop(slot);
            });
        if spawned.is_ok() {
            walker.ahead = Some(Arc::clone(&helper));
        }
        let _stop = ahead::StopOnDrop(&helper);
        Ok(replay_frames(shared, &mut walker, &mut types, &mut f, None)?.unwrap_or(next))
    })
}

#[cfg(test)]
impl Walker {
    /// Walks with `ahead` as its helper, whatever that helper does.
    pub(crate) fn set_ahead_for_tests(&mut self, ahead: Arc<Ahead>) {
        self.ahead = Some(ahead);
    }
}

/// Replays every frame `walker` reaches into `f`, with no helper of its own.
#[cfg(test)]
pub(crate) fn replay_with<F>(shared: &LogView, walker: &mut Walker, mut f: F) -> Result<()>
where
    F: FnMut(EventRef<'_>),
{
    let mut types = TypeCache::new(shared);
    replay_frames(shared, walker, &mut types, &mut f, None).map(|_| ())
}

/// Replays up to `limit` frames (all with `None`); returns where to resume
/// after the last one, `None` if there was none.
fn replay_frames<F>(
    shared: &LogView,
    walker: &mut Walker,
    types: &mut TypeCache,
    f: &mut F,
    limit: Option<usize>,
) -> Result<Option<Position>>
where
    F: FnMut(EventRef<'_>),
{
    let mut resume = None;
    let mut left = limit.unwrap_or(usize::MAX);
    loop {
        if let Some(run) = walker.replay_run(types, f, &mut left)? {
            resume = Some(run);
        }
        if left == 0 {
            break;
        }
        let Some(info) = walker.next_frame()? else {
            break;
        };
        let Some(seg) = walker.segment() else { break };
        frame_refs(shared, seg, &info, types, f)?;
        resume = Some(Position::new(info.next_global, 0));
        left -= 1;
    }
    Ok(resume)
}
