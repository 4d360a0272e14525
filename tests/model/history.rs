//! The model's time travel: a clock the case moves (back too), commit
//! times predicted from it (never below the newest one stored), and
//! `position_at`, reads from a time and a stream as of a version, a
//! position or a time, each checked against the model by a linear search.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::sample::Index;
use seglog::{AsOf, Clock, Log, Position};

use super::{Ev, FromVersion, Model, Pick, check_event, check_read, collect};

/// The clock every log of a case reads, in microseconds.
#[derive(Debug)]
pub struct ModelClock(AtomicU64);

impl ModelClock {
    pub fn new() -> ModelClock {
        ModelClock(AtomicU64::new(1_000_000))
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves the clock by `delta` µs, back when negative (never below 1).
    pub fn step(&self, delta: i32) {
        let now = self.get().saturating_add_signed(i64::from(delta)).max(1);
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ModelClock {
    fn now(&self) -> SystemTime {
        at(self.get())
    }
}

pub fn at(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// An event's position, from what the model keeps of it.
pub fn position_of(ev: &Ev) -> Position {
    Position::from_u64(((ev.frame_offset >> 3) << 16) | u64::from(ev.index_in_frame))
}

/// A point in time near an event of the case: its time plus `delta` µs.
#[derive(Debug, Clone)]
pub struct TimePick {
    event: Index,
    delta: i8,
}

/// A point for a stream as of it.
#[derive(Debug, Clone)]
pub enum AsOfPick {
    Version(FromVersion),
    /// The position of an event of the case (any stream).
    Position(Index),
    Time(TimePick),
}

pub fn clock_strategy() -> impl Strategy<Value = i32> {
    prop_oneof![4 => 0i32..=50, 1 => -2_000i32..=0, 1 => 1_000i32..=100_000]
}

pub fn time_strategy() -> impl Strategy<Value = TimePick> {
    (
        any::<Index>(),
        prop_oneof![2 => Just(0i8), 1 => any::<i8>()],
    )
        .prop_map(|(event, delta)| TimePick { event, delta })
}

pub fn as_of_strategy() -> impl Strategy<Value = AsOfPick> {
    prop_oneof![
        super::from_strategy().prop_map(AsOfPick::Version),
        any::<Index>().prop_map(AsOfPick::Position),
        time_strategy().prop_map(AsOfPick::Time),
    ]
}

impl Model {
    /// Every event in commit order, with its stream and version.
    fn events(&self) -> impl Iterator<Item = (&str, u64, &Ev)> {
        self.all
            .iter()
            .map(|(s, v)| (s.as_str(), *v, &self.streams[s].events[*v as usize]))
    }

    /// The time `pick` stands for; `None` in an empty log.
    fn time(&self, pick: &TimePick) -> Option<u64> {
        if self.all.is_empty() {
            return None;
        }
        let (s, v) = pick.event.get(&self.all);
        let t = self.streams[s].events[*v as usize].time_us;
        Some(t.saturating_add_signed(i64::from(pick.delta)))
    }

    /// The index in `all` of the first event committed at or after `t`.
    fn first_at_or_after(&self, t: u64) -> Option<usize> {
        self.events().position(|(_, _, e)| e.time_us >= t)
    }
}

/// `position_at` and the reads from a time, against the model.
pub fn check_since(log: &Log, model: &Model, pick: &TimePick) {
    let Some(t) = model.time(pick) else {
        assert_eq!(
            log.position_at(at(5)).expect("position_at"),
            Position::START
        );
        return;
    };
    let what = format!("position_at({t})");
    let got = log.position_at(at(t)).expect(&what);
    let from = model.first_at_or_after(t);
    match from {
        Some(0) => assert_eq!(got, Position::START, "{what}"),
        Some(i) => {
            let (s, v) = &model.all[i];
            assert_eq!(
                got,
                position_of(&model.streams[s].events[*v as usize]),
                "{what}"
            );
        }
        None => {
            let (_, _, newest) = model.events().last().expect("events");
            assert!(
                got > position_of(newest),
                "{what}: {got:?} not past the end"
            );
        }
    }
    let read = collect(log.read_all_since(at(t)).expect(&what), &what);
    let want: Vec<(&str, u64, &Ev)> = model
        .events()
        .skip(from.unwrap_or(model.all.len()))
        .collect();
    assert_eq!(read.len(), want.len(), "read_all_since({t}): count");
    for (e, (s, v, ev)) in read.iter().zip(want) {
        check_event(e, s, v, ev, &format!("read_all_since({t})"));
    }
}

/// Which of a stream's events (by version) a point keeps.
type Keep = Box<dyn Fn(u64, &Ev) -> bool>;

/// The point `pick` stands for in the model now; `None` when it names an
/// event of an empty log.
pub fn as_of(model: &Model, name: &str, pick: &AsOfPick) -> Option<AsOf> {
    Some(match pick {
        AsOfPick::Version(from) => AsOf::Version(super::from_version(model, name, from)),
        AsOfPick::Position(i) => {
            let (s, v) = (!model.all.is_empty()).then(|| i.get(&model.all))?;
            AsOf::Position(position_of(&model.streams[s].events[*v as usize]))
        }
        AsOfPick::Time(t) => AsOf::Time(at(model.time(t)?)),
    })
}

/// A stream as of `pick`, and its version as of it, against the model.
pub fn check_as_of(log: &Log, model: &Model, names: &[String], stream: &Pick, pick: &AsOfPick) {
    let name = stream.name(names);
    let events = model.streams.get(name).map_or(&[][..], |s| &s.events[..]);
    let (as_of, keep): (AsOf, Keep) = match pick {
        AsOfPick::Version(from) => {
            let v = super::from_version(model, name, from);
            (AsOf::Version(v), Box::new(move |version, _| version <= v))
        }
        AsOfPick::Position(i) => {
            let Some((s, v)) = (!model.all.is_empty()).then(|| i.get(&model.all)) else {
                return;
            };
            let p = position_of(&model.streams[s].events[*v as usize]);
            (AsOf::Position(p), Box::new(move |_, e| position_of(e) < p))
        }
        AsOfPick::Time(t) => {
            let Some(t) = model.time(t) else {
                return;
            };
            (AsOf::Time(at(t)), Box::new(move |_, e| e.time_us <= t))
        }
    };
    let want: Vec<(u64, Ev)> = events
        .iter()
        .enumerate()
        .map(|(v, e)| (v as u64, e.clone()))
        .filter(|(v, e)| keep(*v, e))
        .collect();
    let what = format!("read_stream_as_of({name:?}, {as_of:?})");
    let got = collect(log.read_stream_as_of(name, as_of).expect(&what), &what);
    check_read(&got, &want, name, &what);
    let version = log.stream_version_as_of(name, as_of).expect(&what);
    assert_eq!(version, want.last().map(|(v, _)| *v), "{what}: version");
    // From the middle, as after a snapshot.
    let from = want.len() as u64 / 2;
    let got = collect(
        log.read_stream_as_of_from(name, from, as_of).expect(&what),
        &what,
    );
    check_read(
        &got,
        &want[from as usize..],
        name,
        &format!("{what} from {from}"),
    );
}
