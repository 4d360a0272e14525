//! Subscriptions: a cursor over the log that reads history and then waits
//! at the head for what is published next.
//!
//! A subscription is not a queue. It holds a position and reads the
//! mapped segments from there, so a slow subscriber costs the writer
//! nothing and holds no copies of events; it only falls behind the head.
//! At the head it sleeps on the log's [`Watch`](crate::watch) until the
//! published end moves: no polling, a wake per publish while it waits.
//!
//! The handover from history to live has no seam to fall into: `$all`
//! subscriptions are one walk from `from` on, and the head is only where
//! that walk waits. A stream subscription reads the stream's history
//! through its index ([`ReadStream`]), then follows the global log from an
//! end taken *before* the last, empty, stream read began, keeping only
//! versions after the last it delivered: an event is either in that read or
//! at or after that end, and the version check drops the overlap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::position::Position;
use crate::read::{Fetched, LogCursor, ReadStream, Select};
use crate::upcast::Pending;
use crate::view::LogView;
use crate::watch::Woken;

/// Frames a subscription reads between two looks at its deadline: a
/// filtered subscription may pass over many frames before it finds one.
const FRAMES_PER_DEADLINE_CHECK: usize = 4096;

/// Which events a subscription hands out: by stream-name prefix and by
/// event type. Both default to everything; a prefix list and a type list
/// must both match.
///
/// Frames of streams that match no prefix are passed over whole (their
/// checksum is still checked, their events are not parsed); events of
/// other types are passed over after reading their header. Neither is
/// copied.
///
/// ```
/// use seglog::Filter;
/// let f = Filter::stream_prefix("order-").event_types(["Placed", "Paid"]);
/// assert!(f.matches("order-42", "Paid"));
/// assert!(!f.matches("order-42", "Shipped"));
/// assert!(!f.matches("invoice-7", "Paid"));
/// assert!(Filter::all().matches("anything", "Any"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    prefixes: Vec<String>,
    types: Vec<String>,
}

impl Filter {
    /// Every event.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Events of streams whose name starts with `prefix`.
    pub fn stream_prefix(prefix: impl Into<String>) -> Filter {
        Filter::all().or_stream_prefix(prefix)
    }

    /// Also events of streams whose name starts with `prefix`.
    pub fn or_stream_prefix(mut self, prefix: impl Into<String>) -> Filter {
        self.prefixes.push(prefix.into());
        self
    }

    /// Only events whose type is one of `types` (added to any types given
    /// before).
    pub fn event_types<I, T>(mut self, types: I) -> Filter
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.types.extend(types.into_iter().map(Into::into));
        self
    }

    /// Whether an event of `event_type` in `stream` passes.
    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        self.keeps_stream(stream) && self.keeps_type(event_type.as_bytes())
    }

    fn keeps_stream(&self, stream: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| stream.starts_with(p.as_str()))
    }

    fn keeps_type(&self, event_type: &[u8]) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t.as_bytes() == event_type)
    }
}

/// `$all` under a filter.
struct AllSelect<'a> {
    filter: &'a Filter,
    upcast: &'a Pending,
}

impl Select for AllSelect<'_> {
    fn frame(&mut self, shared: &LogView, stream_id: u32, _: u64, _: u64) -> bool {
        if self.filter.prefixes.is_empty() {
            return true;
        }
        // A name the registry does not know is left to the frame read,
        // which reports it.
        shared
            .names
            .get(stream_id as usize)
            .is_none_or(|name| self.filter.keeps_stream(name))
    }

    fn event(&mut self, _: u64, event_type: &[u8]) -> bool {
        self.filter.keeps_type(event_type) || self.upcast.may_rename(event_type)
    }
}

/// One stream, from a version on, under a filter.
struct StreamSelect<'a> {
    name: &'a str,
    id: &'a mut Option<u32>,
    next_version: u64,
    filter: &'a Filter,
    upcast: &'a Pending,
}

impl Select for StreamSelect<'_> {
    fn frame(&mut self, shared: &LogView, stream_id: u32, _: u64, last: u64) -> bool {
        let ours = match *self.id {
            Some(id) => id == stream_id,
            // Not created when subscribed: its first frame names it.
            None => {
                let named = shared
                    .names
                    .get(stream_id as usize)
                    .is_some_and(|n| &**n == self.name);
                if named {
                    *self.id = Some(stream_id);
                }
                named
            }
        };
        ours && last >= self.next_version
    }

    fn event(&mut self, version: u64, event_type: &[u8]) -> bool {
        version >= self.next_version
            && (self.filter.keeps_type(event_type) || self.upcast.may_rename(event_type))
    }
}

enum Phase {
    /// Reading the stream's history through its index. `end_before` is the
    /// published end taken before `read` began.
    CatchUp {
        read: ReadStream,
        end_before: u64,
        delivered: bool,
    },
    /// Following the global log for the stream's frames.
    Live(LogCursor),
}

enum Mode {
    All(LogCursor),
    Stream {
        name: String,
        id: Option<u32>,
        next_version: u64,
        phase: Phase,
    },
}

/// A subscription: every event from a starting point in commit order, once
/// each, then every event published after, as it is published. Returned by
/// [`Log::subscribe_all`](crate::Log::subscribe_all),
/// [`Log::subscribe_stream`](crate::Log::subscribe_stream) and
/// [`Consumer::subscribe`](crate::Consumer::subscribe).
///
/// Pull with [`Subscription::next_timeout`], or iterate: the iterator
/// blocks at the head and ends when the log is closed. An event becomes
/// visible when it is published: under [`Durability::Sync`](crate::Durability::Sync)
/// once it is on disk and its append has been released to return `Ok`,
/// otherwise just before its append returns. A subscriber never sees an
/// event whose append fails or has not been acknowledged; it may receive
/// one while the appending thread is still on its way out of `append`.
///
/// A filtered subscription moves [`Subscription::position`] past what it
/// passed over only when a call returns: a `next_timeout` over a tail of
/// non-matching events returns `Ok(None)` at its deadline, positioned at
/// the head.
pub struct Subscription {
    shared: Arc<LogView>,
    filter: Filter,
    mode: Mode,
    /// Events at or before this position were handed out already (a
    /// consumer resuming after its acknowledged position).
    after: Option<Position>,
    /// Where to go on after the last event handed out.
    resume: Position,
    failed: bool,
    /// Outputs of an upcast event still to hand out.
    upcast: Pending,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("filter", &self.filter)
            .field("position", &self.resume)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn all(shared: Arc<LogView>, from: Position) -> Result<Subscription> {
        shared.check_from(from)?;
        if shared.is_past_published(from.frame_offset()) {
            return Err(Error::InvalidPosition { position: from });
        }
        Ok(Subscription {
            upcast: Pending::new(shared.upcasters.clone(), false),
            mode: Mode::All(LogCursor::new(Arc::clone(&shared), from)),
            shared,
            filter: Filter::all(),
            after: None,
            resume: from,
            failed: false,
        })
    }

    /// `$all` after `position`: from it, dropping the event at it.
    pub(crate) fn all_after(shared: Arc<LogView>, position: Position) -> Result<Subscription> {
        let mut sub = Subscription::all(shared, position)?;
        sub.after = Some(position);
        Ok(sub)
    }

    pub(crate) fn stream(
        shared: Arc<LogView>,
        name: &str,
        from_version: u64,
    ) -> Result<Subscription> {
        let (read, end_before, id) = stream_read(&shared, name, from_version)?;
        Ok(Subscription {
            mode: Mode::Stream {
                name: name.to_string(),
                id,
                next_version: from_version,
                phase: Phase::CatchUp {
                    read,
                    end_before,
                    delivered: false,
                },
            },
            resume: Position::START,
            upcast: Pending::new(shared.upcasters.clone(), false),
            shared,
            filter: Filter::all(),
            after: None,
            failed: false,
        })
    }

    /// This subscription, handing out only what `filter` matches.
    pub fn filter(mut self, filter: Filter) -> Subscription {
        self.filter = filter;
        self
    }

    /// The position after the last event handed out, or, for `$all`, passed
    /// over by the filter: where a new `$all` subscription would go on.
    /// (A stream subscription starts at [`Position::START`] here.)
    pub fn position(&self) -> Position {
        self.resume
    }

    /// The next event, waiting at most `timeout` for one to be published.
    /// `Ok(None)` when the time ran out; [`Error::Closed`] once the log was
    /// closed and everything it published has been handed out. After any
    /// other error (damaged data, a poisoned log) the subscription is over:
    /// later calls return [`Error::Closed`].
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<RecordedEvent>> {
        self.next_until(Instant::now().checked_add(timeout))
    }

    /// The next event, waiting until `deadline` (`None`: for ever).
    fn next_until(&mut self, deadline: Option<Instant>) -> Result<Option<RecordedEvent>> {
        if self.failed {
            return Err(Error::Closed);
        }
        let result = self.next_inner(deadline);
        match &result {
            // An event an upcaster could not read: the next call goes on
            // after it.
            Err(Error::Upcast { next, .. }) => self.resume = *next,
            Err(e) if !matches!(e, Error::Closed) => self.failed = true,
            _ => {}
        }
        result
    }

    fn next_inner(&mut self, deadline: Option<Instant>) -> Result<Option<RecordedEvent>> {
        loop {
            // Taken before reading: anything published after the read
            // reached the end moves the end past this.
            if let Some(output) = self.upcast.pop() {
                if let Some(event) = self.hand_out(output) {
                    return Ok(Some(event));
                }
                continue;
            }
            let seen = self.shared.watch.end();
            match self.step()? {
                Fetched::Event(event) => {
                    if self.after.is_some_and(|after| event.position <= after) {
                        continue;
                    }
                    self.after = None;
                    self.resume = event.next_position;
                    if let Some(output) = self.upcast.pass(event)?
                        && let Some(event) = self.hand_out(output)
                    {
                        return Ok(Some(event));
                    }
                    continue;
                }
                Fetched::Budget => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                    continue;
                }
                Fetched::End => {}
            }
            match self.shared.watch.wait_past(seen, deadline) {
                Woken::Moved => {}
                Woken::TimedOut => return Ok(None),
                Woken::Closed => {
                    return Err(match self.shared.watch.poisoned() {
                        Some(reason) => Error::Poisoned {
                            reason: reason.to_string(),
                        },
                        None => Error::Closed,
                    });
                }
            }
        }
    }

    /// `output` (of an upcast event, or one as stored) if the filter keeps
    /// its type, which upcasting may have changed; it is passed over
    /// either way.
    fn hand_out(&mut self, output: RecordedEvent) -> Option<RecordedEvent> {
        self.resume = output.next_position;
        self.filter
            .keeps_type(output.event_type.as_ref())
            .then_some(output)
    }

    /// The next stored event from history or what is published, without
    /// waiting.
    fn step(&mut self) -> Result<Fetched> {
        let filter = &self.filter;
        let upcast = &self.upcast;
        match &mut self.mode {
            Mode::All(cursor) => {
                let step =
                    cursor.next(&mut AllSelect { filter, upcast }, FRAMES_PER_DEADLINE_CHECK);
                if !matches!(step, Ok(Fetched::Event(_))) {
                    self.resume = cursor.resume();
                }
                step
            }
            Mode::Stream {
                name,
                id,
                next_version,
                phase,
            } => loop {
                match phase {
                    Phase::CatchUp {
                        read,
                        end_before,
                        delivered,
                    } => match read.next() {
                        Some(Ok(event)) => {
                            *delivered = true;
                            *next_version = event.version + 1;
                            let kind = event.event_type.as_ref();
                            if filter.keeps_type(kind) || upcast.may_rename(kind) {
                                return Ok(Fetched::Event(event));
                            }
                        }
                        Some(Err(e)) => return Err(e),
                        // More may have come while the read ran: read again
                        // until a read finds nothing new.
                        None if *delivered => {
                            let (again, end, found) =
                                stream_read(&self.shared, name, *next_version)?;
                            *id = id.or(found);
                            *phase = Phase::CatchUp {
                                read: again,
                                end_before: end,
                                delivered: false,
                            };
                        }
                        None => {
                            let from = Position::new(*end_before, 0);
                            *phase = Phase::Live(LogCursor::new(Arc::clone(&self.shared), from));
                        }
                    },
                    Phase::Live(cursor) => {
                        let mut select = StreamSelect {
                            name,
                            id,
                            next_version: *next_version,
                            filter,
                            upcast,
                        };
                        let step = cursor.next(&mut select, FRAMES_PER_DEADLINE_CHECK)?;
                        if let Fetched::Event(event) = &step {
                            *next_version = event.version + 1;
                        }
                        return Ok(step);
                    }
                }
            },
        }
    }
}

/// A forward read of stream `name` from `from_version`, the published end
/// taken just before it, and the stream's id if it exists.
fn stream_read(
    shared: &Arc<LogView>,
    name: &str,
    from_version: u64,
) -> Result<(ReadStream, u64, Option<u32>)> {
    let end_before = shared.watch.end();
    let head = shared.stream_head(name);
    let id = head.map(|(id, _)| id);
    let read = ReadStream::new(Arc::clone(shared), head, from_version, false)?.stored_only();
    Ok((read, end_before, id))
}

impl Iterator for Subscription {
    type Item = Result<RecordedEvent>;

    /// Blocks until the next event; ends once the log is closed and every
    /// event it published was handed out, or after an error.
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_until(None) {
            Ok(Some(event)) => Some(Ok(event)),
            Ok(None) | Err(Error::Closed) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
