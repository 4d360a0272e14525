//! The model's snapshots: saves at any version (past the end and of
//! unknown streams too), the newest `KEPT` per stream kept, loads at or
//! before a version, and states rebuilt as of a version, a position or a
//! time from a snapshot plus events, each against the model. A snapshot's
//! bytes are the true state at its version (events counted, payload bytes
//! summed), so a rebuild from any of them must equal a replay.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use seglog::{Error, Log, RecordedEvent, Snapshot};

use super::history::{AsOfPick, as_of_strategy};
use super::{FromVersion, Model, Pick, from_strategy, from_version, stream_choice};

/// Snapshots kept per stream in the model's logs.
pub const KEPT: usize = 2;

/// The state a rebuild makes: events applied and their payload bytes.
type State = (u64, u64);

#[derive(Debug, Clone)]
pub enum SnapshotOp {
    /// Saves a snapshot of this schema (1 is the one rebuilds accept).
    Save {
        at: FromVersion,
        schema: u16,
    },
    Load {
        at: FromVersion,
    },
    Rebuild {
        point: AsOfPick,
    },
}

pub fn snapshot_strategy() -> impl Strategy<Value = (Pick, SnapshotOp)> {
    let op = prop_oneof![
        3 => (from_strategy(), prop_oneof![4 => Just(1u16), 1 => Just(2u16)])
            .prop_map(|(at, schema)| SnapshotOp::Save { at, schema }),
        2 => from_strategy().prop_map(|at| SnapshotOp::Load { at }),
        2 => as_of_strategy().prop_map(|point| SnapshotOp::Rebuild { point }),
    ];
    (stream_choice(), op)
}

/// What the model keeps of snapshots: per stream, version to (schema,
/// bytes), at most [`KEPT`], the newest by version.
#[derive(Debug, Default)]
pub struct Snapshots(HashMap<String, BTreeMap<u64, (u16, Vec<u8>)>>);

fn encode((events, bytes): State) -> Vec<u8> {
    [events.to_le_bytes(), bytes.to_le_bytes()].concat()
}

fn decode(s: &Snapshot) -> Result<State, String> {
    let b = s.bytes();
    let half = |r: std::ops::Range<usize>| -> Result<u64, String> {
        let raw = b.get(r).ok_or("short")?;
        Ok(u64::from_le_bytes(raw.try_into().map_err(|_| "short")?))
    };
    if b.len() != 16 {
        return Err(format!("{} bytes", b.len()));
    }
    Ok((half(0..8)?, half(8..16)?))
}

fn apply(state: &mut State, e: &RecordedEvent) {
    state.0 += 1;
    state.1 += e.payload().len() as u64;
}

/// The state of `stream` in the model up to version `v`.
fn state_at(model: &Model, stream: &str, v: u64) -> State {
    let events = model.streams.get(stream).map_or(&[][..], |s| &s.events[..]);
    let upto = &events[..events
        .len()
        .min(usize::try_from(v).unwrap_or(usize::MAX).saturating_add(1))];
    (
        upto.len() as u64,
        upto.iter().map(|e| e.payload.len() as u64).sum(),
    )
}

impl Snapshots {
    pub fn apply(
        &mut self,
        log: &Log,
        model: &Model,
        names: &[String],
        pick: &Pick,
        op: &SnapshotOp,
    ) {
        let name = pick.name(names);
        match op {
            SnapshotOp::Save { at, schema } => self.save(log, model, name, at, *schema),
            SnapshotOp::Load { at } => {
                let at = from_version(model, name, at);
                let what = format!("load_snapshot({name:?}, {at})");
                let got = log.load_snapshot(name, at).expect(&what);
                let want = self
                    .0
                    .get(name.as_str())
                    .and_then(|s| s.range(..=at).next_back());
                match (got, want) {
                    (None, None) => {}
                    (Some(g), Some((v, (schema, bytes)))) => {
                        assert_eq!(g.stream(), name.as_str(), "{what}");
                        assert_eq!((g.version(), g.schema_version()), (*v, *schema), "{what}");
                        assert_eq!(&g.bytes()[..], &bytes[..], "{what}");
                    }
                    (got, want) => panic!("{what}: got {got:?}, model has {want:?}"),
                }
            }
            SnapshotOp::Rebuild { point } => self.rebuild(log, model, names, pick, point),
        }
    }

    fn save(&mut self, log: &Log, model: &Model, name: &str, at: &FromVersion, schema: u16) {
        let v = from_version(model, name, at);
        let what = format!("save_snapshot({name:?}, {v})");
        let bytes = encode(state_at(model, name, v));
        let got = log.save_snapshot(name, v, schema, bytes.clone());
        match (model.last(name), got) {
            (None, Err(Error::UnknownStream { stream })) => assert_eq!(stream, name, "{what}"),
            (
                Some(last),
                Err(Error::SnapshotAhead {
                    version,
                    last_version,
                    ..
                }),
            ) if v > last => {
                assert_eq!((version, last_version), (v, last), "{what}");
            }
            (Some(last), Ok(())) if v <= last => {
                let kept = self.0.entry(name.to_string()).or_default();
                kept.insert(v, (schema, bytes));
                while kept.len() > KEPT {
                    kept.pop_first();
                }
                let listed: Vec<u64> = kept.keys().rev().copied().collect();
                assert_eq!(log.snapshot_versions(name), listed, "{what}: kept");
            }
            (last, got) => panic!("{what}: stream at {last:?}, got {got:?}"),
        }
    }

    fn rebuild(&self, log: &Log, model: &Model, names: &[String], pick: &Pick, point: &AsOfPick) {
        let name = pick.name(names);
        let as_of = super::history::as_of(model, name, point);
        let Some(as_of) = as_of else {
            return;
        };
        let what = format!("rebuild_as_of({name:?}, {as_of:?})");
        let got = log
            .rebuild_as_of(name, as_of, 1, decode, || (0, 0), apply)
            .expect(&what);
        let version = log.stream_version_as_of(name, as_of).expect(&what);
        let want = version.map_or((0, 0), |v| state_at(model, name, v));
        assert_eq!((got.state, got.version), (want, version), "{what}");
        // The newest snapshot of schema 1 at or before that version.
        let from = version.and_then(|v| {
            self.0.get(name.as_str()).and_then(|s| {
                s.range(..=v)
                    .rev()
                    .find(|(_, (schema, _))| *schema == 1)
                    .map(|(v, _)| *v)
            })
        });
        assert_eq!(got.from_snapshot, from, "{what}: started from");
    }
}
