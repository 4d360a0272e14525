//! Upcasting on read: stored events of an older schema handed out as the
//! current code expects them, on every read path, while the stored bytes
//! never change.
//!
//! A step is registered for an event type and a stored schema version `v`;
//! it turns one event into zero, one or several events of version `v + 1`
//! (a drop, a change, a split), which may carry another type name (a
//! rename). Steps chain: an output that has a step of its own goes on
//! through it, until every output is at its type's current version. The
//! chains are checked when the set is built ([`UpcastersBuilder::build`]),
//! so a read never meets a gap.
//!
//! Cost: with no upcasters registered, one branch per event. With some, a
//! 256-bit filter over the type's length and first and last bytes decides
//! for most events that no step can apply (no hashing, no lookup); only the
//! events that pass it are looked up, and only those with a step are
//! copied into owned outputs.

mod check;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::event::{EventRef, EventType, RecordedEvent};
use crate::limits::{MAX_EVENT_TYPE_BYTES, MAX_UPCAST_OUTPUTS, MAX_UPCAST_STEPS};

/// A stored event (or an earlier step's output) handed to an upcaster step.
#[derive(Debug, Clone, Copy)]
pub struct UpcastInput<'a> {
    event_type: &'a str,
    schema_version: u16,
    metadata: &'a [u8],
    payload: &'a [u8],
}

impl<'a> UpcastInput<'a> {
    /// The event's type.
    pub fn event_type(&self) -> &'a str {
        self.event_type
    }

    /// Its schema version: the version the step was registered for.
    pub fn schema_version(&self) -> u16 {
        self.schema_version
    }

    /// Its metadata.
    pub fn metadata(&self) -> &'a [u8] {
        self.metadata
    }

    /// Its payload.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// One event a step returns, at the step's next schema version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcasted {
    event_type: EventType,
    metadata: Bytes,
    payload: Bytes,
}

impl Upcasted {
    /// An event of `event_type` (which the step must have declared) with
    /// `payload` and no metadata.
    pub fn new(event_type: impl Into<EventType>, payload: impl Into<Bytes>) -> Upcasted {
        Upcasted {
            event_type: event_type.into(),
            metadata: Bytes::new(),
            payload: payload.into(),
        }
    }

    /// The input's type, metadata and payload, copied: for a step that
    /// changes nothing but the version, or as a start to change one field.
    pub fn from_input(input: &UpcastInput<'_>) -> Upcasted {
        Upcasted::new(input.event_type, Bytes::copy_from_slice(input.payload))
            .with_metadata(Bytes::copy_from_slice(input.metadata))
    }

    /// With `metadata`.
    pub fn with_metadata(mut self, metadata: impl Into<Bytes>) -> Upcasted {
        self.metadata = metadata.into();
        self
    }

    fn as_input(&self, schema_version: u16) -> UpcastInput<'_> {
        UpcastInput {
            event_type: self.event_type.as_str(),
            schema_version,
            metadata: &self.metadata,
            payload: &self.payload,
        }
    }
}

/// What a step returns: its outputs, or why it could not read its input
/// (the read then reports [`Error::Upcast`] for that event and can go on
/// after it).
pub type UpcastResult = std::result::Result<Vec<Upcasted>, String>;

type StepFn = dyn Fn(&UpcastInput<'_>) -> UpcastResult + Send + Sync;

struct Step {
    emits: Vec<String>,
    run: Box<StepFn>,
}

/// Collects upcaster steps; [`UpcastersBuilder::build`] checks them.
#[derive(Default)]
pub struct UpcastersBuilder {
    steps: Vec<(String, u16, Step)>,
}

impl fmt::Debug for UpcastersBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpcastersBuilder")
            .field("steps", &self.steps.len())
            .finish()
    }
}

impl UpcastersBuilder {
    /// Registers the step for events of `event_type` stored at
    /// `from_version`: `run` turns one into zero or more events of version
    /// `from_version + 1`, each of a type in `emits` (the type itself for a
    /// change, another name for a rename; what the checks follow).
    pub fn step<F>(mut self, event_type: &str, from_version: u16, emits: &[&str], run: F) -> Self
    where
        F: Fn(&UpcastInput<'_>) -> UpcastResult + Send + Sync + 'static,
    {
        let step = Step {
            emits: emits.iter().map(|t| (*t).to_string()).collect(),
            run: Box::new(run),
        };
        self.steps
            .push((event_type.to_string(), from_version, step));
        self
    }

    /// The upcasters, once every chain is whole: [`Error::UpcasterChain`]
    /// names the step of a gap (a version with no step between a type's
    /// oldest and newest, or an output at a version its type has no step
    /// from), a step registered twice, or a chain longer than
    /// [`MAX_UPCAST_STEPS`](crate::limits::MAX_UPCAST_STEPS).
    pub fn build(self) -> Result<Upcasters> {
        let shapes: Vec<check::StepShape<'_>> = self
            .steps
            .iter()
            .map(|(t, v, s)| check::StepShape {
                event_type: t,
                from: *v,
                emits: &s.emits,
            })
            .collect();
        if let Err((event_type, schema_version, reason)) = check::check(&shapes) {
            return Err(Error::UpcasterChain {
                event_type,
                schema_version,
                reason,
            });
        }
        let mut types: HashMap<Box<str>, TypeSteps> = HashMap::new();
        let mut filter = [0u64; 4];
        let mut steps = self.steps;
        steps.sort_by_key(|(_, v, _)| *v);
        for (event_type, from, step) in steps {
            let bit = filter_bit(event_type.as_bytes());
            filter[bit / 64] |= 1 << (bit % 64);
            let entry = types
                .entry(event_type.into_boxed_str())
                .or_insert_with(|| TypeSteps {
                    oldest: from,
                    steps: Vec::new(),
                });
            // Sorted and checked contiguous: each step lands at its index.
            debug_assert_eq!(usize::from(from - entry.oldest), entry.steps.len());
            entry.steps.push(step);
        }
        Ok(Upcasters {
            inner: Arc::new(Inner { types, filter }),
        })
    }
}

struct TypeSteps {
    oldest: u16,
    /// The step from `oldest + i` at `i`.
    steps: Vec<Step>,
}

struct Inner {
    types: HashMap<Box<str>, TypeSteps>,
    /// Bit [`filter_bit`] of every type that has a step.
    filter: [u64; 4],
}

/// A checked set of upcaster chains, registered on
/// [`Options::upcasters`](crate::Options::upcasters): every read of a
/// `Log` or a `Reader` opened with those options applies them. Cheap to
/// clone.
#[derive(Clone)]
pub struct Upcasters {
    inner: Arc<Inner>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut types: Vec<(&str, u16)> = self
            .inner
            .types
            .iter()
            .map(|(t, s)| (&**t, s.current()))
            .collect();
        types.sort_unstable();
        f.debug_struct("Upcasters")
            .field("current_versions", &types)
            .finish()
    }
}

impl TypeSteps {
    fn current(&self) -> u16 {
        // Checked at build: `oldest + len` is at most u16::MAX.
        self.oldest
            .saturating_add(u16::try_from(self.steps.len()).unwrap_or(u16::MAX))
    }
}

/// Which of the filter's 256 bits stands for a type: its length and its
/// first, middle and last bytes, mixed by one multiplication (a few
/// instructions on bytes the reader has just loaded).
#[inline(always)]
fn filter_bit(event_type: &[u8]) -> usize {
    let byte = |i: usize| u32::from(event_type.get(i).copied().unwrap_or(0));
    let n = event_type.len();
    let key =
        (n as u32 & 0xFF) | byte(0) << 8 | byte(n / 2) << 16 | byte(n.saturating_sub(1)) << 24;
    (key.wrapping_mul(0x9E37_79B1) >> 24) as usize
}

impl Upcasters {
    /// Starts a set of steps.
    pub fn builder() -> UpcastersBuilder {
        UpcastersBuilder::default()
    }

    /// The schema version events of `event_type` are handed out at once
    /// upcast: one past its newest step. `None` for a type with no step.
    pub fn current_version(&self, event_type: &str) -> Option<u16> {
        self.inner.types.get(event_type).map(TypeSteps::current)
    }

    /// Whether a step may apply to `event_type`: `false` is certain,
    /// `true` must be looked up.
    #[inline(always)]
    pub(crate) fn may_apply(&self, event_type: &[u8]) -> bool {
        let bit = filter_bit(event_type);
        self.inner.filter[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Whether a step applies to `event_type` stored at `version`.
    pub(crate) fn has_step(&self, event_type: &str, version: u16) -> bool {
        self.may_apply(event_type.as_bytes()) && self.step_for(event_type, version).is_some()
    }

    fn step_for(&self, event_type: &str, version: u16) -> Option<&Step> {
        let steps = self.inner.types.get(event_type)?;
        let at = version.checked_sub(steps.oldest)?;
        steps.steps.get(usize::from(at))
    }

    /// Runs `input` through its chain: `None` when no step applies (the
    /// event is handed out as stored), else the outputs with their schema
    /// versions, in order.
    fn run(
        &self,
        input: &UpcastInput<'_>,
    ) -> std::result::Result<Option<Vec<(u16, Upcasted)>>, String> {
        let Some(first) = self.step_for(input.event_type, input.schema_version) else {
            return Ok(None);
        };
        let mut items = run_step(first, input)?;
        // The build bounded every chain: this ends within its steps.
        for _ in 1..MAX_UPCAST_STEPS {
            let pending = |(v, e): &(u16, Upcasted)| self.step_for(e.event_type.as_str(), *v);
            if !items.iter().any(|item| pending(item).is_some()) {
                break;
            }
            let mut next = Vec::with_capacity(items.len());
            for (v, e) in items {
                match self.step_for(e.event_type.as_str(), v) {
                    Some(step) => next.extend(run_step(step, &e.as_input(v))?),
                    None => next.push((v, e)),
                }
                if next.len() > MAX_UPCAST_OUTPUTS {
                    return Err(format!(
                        "more than {MAX_UPCAST_OUTPUTS} events from one stored event"
                    ));
                }
            }
            items = next;
        }
        Ok(Some(items))
    }

    /// Upcasts an owned event: `Ok(None)` when it was dropped; else its
    /// first output, the others queued in `rest` (in the order they are to
    /// be handed out: reversed for a backward read).
    pub(crate) fn upcast_owned(
        &self,
        event: RecordedEvent,
        rest: &mut VecDeque<RecordedEvent>,
        backward: bool,
    ) -> Result<Option<RecordedEvent>> {
        let input = UpcastInput {
            event_type: event.event_type(),
            schema_version: event.schema_version,
            metadata: &event.metadata,
            payload: &event.payload,
        };
        let items = match self.run(&input) {
            Ok(None) => {
                let mut event = event;
                event.output = (0, 1);
                return Ok(Some(event));
            }
            Ok(Some(items)) => items,
            Err(reason) => return Err(upcast_error(&event.as_event_ref(), reason)),
        };
        let count = items.len();
        let mut outputs = items.into_iter().enumerate().map(|(i, (version, e))| {
            let mut out = event.clone();
            out.event_type = Bytes::copy_from_slice(e.event_type.as_str().as_bytes());
            out.schema_version = version;
            out.metadata = e.metadata;
            out.payload = e.payload;
            out.output = output_of(i, count);
            if i + 1 < count {
                // Resuming from an output that is not the last repeats the
                // stored event's outputs: at least once, never skipped.
                out.next_position = event.position;
            }
            out
        });
        if backward {
            let mut all: Vec<RecordedEvent> = outputs.collect();
            let first = all.pop();
            rest.extend(all.into_iter().rev());
            Ok(first)
        } else {
            let first = outputs.next();
            rest.extend(outputs);
            Ok(first)
        }
    }

    /// Upcasts a borrowed event, handing `f` each output in order (or the
    /// event itself when no step applies). Never inlined: the replay loops
    /// that call it, for events a step applies to, stay small.
    #[inline(never)]
    pub(crate) fn upcast_ref<F>(&self, event: EventRef<'_>, f: &mut F) -> Result<()>
    where
        F: FnMut(EventRef<'_>),
    {
        let input = UpcastInput {
            event_type: event.event_type,
            schema_version: event.schema_version,
            metadata: event.metadata,
            payload: event.payload,
        };
        let items = match self.run(&input) {
            Ok(None) => {
                f(event);
                return Ok(());
            }
            Ok(Some(items)) => items,
            Err(reason) => return Err(upcast_error(&event, reason)),
        };
        let count = items.len();
        for (i, (version, e)) in items.iter().enumerate() {
            let mut out = event;
            out.event_type = e.event_type.as_str();
            out.schema_version = *version;
            out.metadata = &e.metadata;
            out.payload = &e.payload;
            out.output = output_of(i, count);
            if i + 1 < count {
                out.next_position = event.position;
            }
            f(out);
        }
        Ok(())
    }
}

/// `(index, count)` of output `i` of `count`, within the bound the chain
/// enforces.
fn output_of(i: usize, count: usize) -> (u16, u16) {
    let clamp = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    (clamp(i), clamp(count))
}

/// Runs one step on `input` and checks what it returned.
fn run_step(
    step: &Step,
    input: &UpcastInput<'_>,
) -> std::result::Result<Vec<(u16, Upcasted)>, String> {
    let next = input.schema_version + 1;
    let outputs = (step.run)(input)?;
    if outputs.len() > MAX_UPCAST_OUTPUTS {
        return Err(format!(
            "more than {MAX_UPCAST_OUTPUTS} events from one stored event"
        ));
    }
    for out in &outputs {
        let t = out.event_type.as_str();
        if !step.emits.iter().any(|declared| declared == t) {
            return Err(format!(
                "the step from version {} emitted type {t:?}, which it does not declare",
                input.schema_version
            ));
        }
        if t.is_empty() || t.len() > MAX_EVENT_TYPE_BYTES {
            return Err(format!(
                "the step from version {} emitted an empty or too long type",
                input.schema_version
            ));
        }
    }
    Ok(outputs.into_iter().map(|e| (next, e)).collect())
}

fn upcast_error(event: &EventRef<'_>, reason: String) -> Error {
    Error::Upcast {
        position: event.position,
        next: event.next_position,
        event_type: event.event_type.to_string(),
        schema_version: event.schema_version,
        reason: reason.into(),
    }
}

/// The outputs an owned read still has to hand out, and the upcasters
/// that make them: what each owned iterator keeps. Frames mark each event
/// they hand out with the step lookup's answer (see
/// [`RecordedEvent::needs_upcast`]), so an event with no step passes here
/// on one compare.
#[derive(Default)]
pub(crate) struct Pending {
    upcasters: Option<Upcasters>,
    queue: VecDeque<RecordedEvent>,
    backward: bool,
}

impl Pending {
    pub(crate) fn new(upcasters: Option<Upcasters>, backward: bool) -> Pending {
        Pending {
            upcasters,
            queue: VecDeque::new(),
            backward,
        }
    }

    /// The next output of an upcast event still to hand out.
    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<RecordedEvent> {
        if self.queue.is_empty() {
            return None;
        }
        self.queue.pop_front()
    }

    /// `event` as it is to be handed out: itself, its first output (the
    /// others queued), or `None` when it was dropped.
    #[inline(always)]
    pub(crate) fn pass(&mut self, event: RecordedEvent) -> Result<Option<RecordedEvent>> {
        if event.needs_upcast() {
            self.upcast(event)
        } else {
            Ok(Some(event))
        }
    }

    /// [`Pending::pass`] for an event a step applies to. A read that hands
    /// out stored events (a subscription's catch-up, which upcasts itself)
    /// has no upcasters and leaves it marked.
    #[inline(never)]
    pub(crate) fn upcast(&mut self, event: RecordedEvent) -> Result<Option<RecordedEvent>> {
        match &self.upcasters {
            Some(u) => u.upcast_owned(event, &mut self.queue, self.backward),
            None => Ok(Some(event)),
        }
    }

    /// Whether a filter on event types must let `event_type` through to be
    /// upcast first: a step may rename it.
    #[inline]
    pub(crate) fn may_rename(&self, event_type: &[u8]) -> bool {
        self.upcasters
            .as_ref()
            .is_some_and(|u| u.may_apply(event_type))
    }
}

#[cfg(test)]
mod tests;
