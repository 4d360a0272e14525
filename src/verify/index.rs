//! An index file held against its segment's frames, claim by claim: each
//! stream it says the segment defines, each head, each sparse entry and
//! each time entry must be what the frames say. A file that does not read
//! (a power cut can leave one: they are not synced) is derived data the
//! next open rebuilds, counted but not a failure; a file that reads and
//! says something false is, since an open would trust it.

use std::collections::HashMap;

use crate::frame::EventsFrame;
use crate::index::{Claims, SegmentIndex};
use crate::layout;
use crate::segment::Segment;
use crate::streams::Head;
use crate::view::LogView;

/// What the index file of a segment turned out to be.
pub(super) enum Outcome {
    /// The segment has none.
    None,
    /// It has one that does not read.
    Unreadable,
    Holds,
    /// A false claim, at a segment offset.
    Wrong(u64, String),
}

/// The file's claims, and what the frames walked so far say.
pub(super) struct SegmentFacts {
    base: u64,
    claims: Result<Option<Claims>, ()>,
    /// The next sparse entry and time entry the frames must meet.
    entry: usize,
    time: usize,
    defined: Vec<(u32, String)>,
    heads: HashMap<u32, (Head, u64)>,
    last_us: u64,
    wrong: Option<(u64, String)>,
}

impl SegmentFacts {
    /// The claims of `seg`'s index file, if it has one.
    pub(super) fn new(view: &LogView, seg: &Segment) -> SegmentFacts {
        let path = view.dir.join(layout::index_file(seg.base()));
        let claims = if path.exists() {
            SegmentIndex::read(&view.dir, view.log_id, seg.base())
                .and_then(SegmentIndex::claims)
                .ok_or(())
                .map(Some)
        } else {
            Ok(None)
        };
        SegmentFacts {
            base: seg.base(),
            claims,
            entry: 0,
            time: 0,
            defined: Vec::new(),
            heads: HashMap::new(),
            last_us: 0,
            wrong: None,
        }
    }

    /// The frame `f` at segment offset `o`: the entries and time entries
    /// that name it must describe it, and none may fall between frames.
    pub(super) fn frame(&mut self, o: u64, f: &EventsFrame<'_>) {
        let Ok(Some(claims)) = &self.claims else {
            return;
        };
        if self.wrong.is_some() || o >= claims.covered {
            return;
        }
        let at = self.base + o;
        let last_version = f.first_version + u64::from(f.event_count) - 1;
        let entries = claims.entries.as_deref().unwrap_or_default();
        while let Some((id, e)) = entries.get(self.entry).filter(|(_, e)| e.frame <= at) {
            if e.frame < at || *id != f.stream_id || e.version != f.first_version {
                let reason = format!(
                    "its sparse entry of stream {id}, version {}, names log offset {}, where \
                     no frame of that stream starts at that version",
                    e.version, e.frame
                );
                self.wrong = Some((e.frame.saturating_sub(self.base), reason));
                return;
            }
            self.entry += 1;
        }
        while let Some(t) = claims.times.get(self.time).filter(|t| t.offset <= o) {
            if t.offset < o || t.timestamp_us != f.timestamp_us {
                let reason = format!(
                    "its time entry ({} us at offset {}) names no frame committed then",
                    t.timestamp_us, t.offset
                );
                self.wrong = Some((t.offset, reason));
                return;
            }
            self.time += 1;
        }
        if let Some(name) = f.defines {
            self.defined.push((f.stream_id, name.to_string()));
        }
        let head = Head {
            last_version,
            last_frame: at,
        };
        self.heads.insert(f.stream_id, (head, o));
        self.last_us = self.last_us.max(f.timestamp_us);
    }

    /// The verdict, once the frames are walked up to `limit`: the end of a
    /// `sealed` segment's data, or the published end of the active one.
    pub(super) fn check(self, limit: u64, sealed: bool) -> Outcome {
        let claims = match self.claims {
            Ok(None) => return Outcome::None,
            Err(()) => return Outcome::Unreadable,
            Ok(Some(claims)) => claims,
        };
        if let Some((offset, reason)) = self.wrong {
            return Outcome::Wrong(offset, format!("the index file is wrong: {reason}"));
        }
        let wrong = |offset: u64, reason: String| {
            Outcome::Wrong(offset, format!("the index file is wrong: {reason}"))
        };
        if (sealed && claims.covered != limit) || claims.covered > limit {
            let reason = format!(
                "it covers frames up to {}, the data ends at {limit}",
                claims.covered
            );
            return wrong(limit.min(claims.covered), reason);
        }
        let entries = claims.entries.as_deref().unwrap_or_default();
        if let Some((id, e)) = entries.get(self.entry) {
            let reason = format!(
                "a sparse entry of stream {id} names {}, past its frames",
                e.frame
            );
            return wrong(e.frame.saturating_sub(self.base), reason);
        }
        if let Some(t) = claims.times.get(self.time) {
            return wrong(
                t.offset,
                format!("a time entry names offset {}, past its frames", t.offset),
            );
        }
        if claims.defined != self.defined {
            return wrong(
                0,
                "the streams it says the segment defines are not the frames'".into(),
            );
        }
        let mut heads: Vec<_> = self.heads.into_iter().collect();
        heads.sort_by_key(|(id, _)| *id);
        if heads.len() != claims.heads.len() {
            let reason = format!(
                "{} heads, the frames touch {} streams",
                claims.heads.len(),
                heads.len()
            );
            return wrong(0, reason);
        }
        for ((id, (head, o)), (claimed_id, claimed)) in heads.iter().zip(&claims.heads) {
            if id != claimed_id || head != claimed {
                let reason = format!("the head of stream {claimed_id} is not its last frame here");
                return wrong(*o, reason);
            }
        }
        if claims.last_us != self.last_us {
            return wrong(
                0,
                format!(
                    "its newest commit time {} is not the frames'",
                    claims.last_us
                ),
            );
        }
        Outcome::Holds
    }
}
