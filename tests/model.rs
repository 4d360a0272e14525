//! Model-based property test: random appends (every kind of expected
//! version, with and without event ids, retries of earlier appends), reads of
//! single streams forward and backward from random versions, full reads,
//! reopens, and deleted or damaged index files, over 5 to 20 random stream
//! names, each result checked exactly against an in-memory model. A clock
//! the case moves (back as well as forward) gives the commit times, and
//! time travel (`position_at`, reads from a time, a stream as of a version,
//! a position or a time) is checked against the model too
//! (`model/history.rs`), as are snapshots: saves, the newest kept, loads,
//! and states rebuilt as of a point from a snapshot plus events
//! (`model/snapshots.rs`).
//!
//! Small segments (1 MiB, with occasional large events) make segments roll;
//! small index intervals (1 to 8, per case and sometimes changed at a
//! reopen) make sparse index entries.
//!
//! `SEGLOG_PROPTEST_CASES=500 cargo test --test model` runs more cases
//! (default 24, sized for CI).

mod common;
#[path = "model/history.rs"]
mod history;
#[path = "model/snapshots.rs"]
mod snapshots;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use seglog::{
    AppendResult, Durability, Error, EventData, ExpectedVersion, Log, Options, Position,
    RecordedEvent,
};

const SEGMENT_BYTES: u64 = 1 << 20;
const DEFAULT_CASES: u32 = 24;

fn cases() -> u32 {
    std::env::var("SEGLOG_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

const EVENT_TYPES: [&str; 3] = ["Placed", "Ärger-ångest", "T"];

// ---------------------------------------------------------------------------
// Operations

/// A version to read from, relative to the stream's state when it runs.
#[derive(Debug, Clone)]
enum FromVersion {
    Zero,
    /// The stream's last version plus this (clamped at 0): near the end,
    /// and past it.
    NearEnd(i8),
    /// An absolute version.
    At(u8),
    Max,
}

/// An expected version, relative to the stream's state when it runs.
#[derive(Debug, Clone)]
enum Expect {
    Any,
    NoStream,
    StreamExists,
    /// `Exact(last + delta)`, clamped at 0 (right for `delta == 0`).
    ExactNear(i8),
    ExactAt(u8),
}

#[derive(Debug, Clone)]
struct EventSpec {
    event_type: usize,
    payload_len: usize,
    metadata: bool,
}

/// What happens to the index files between a close and the reopen.
#[derive(Debug, Clone)]
enum IndexFiles {
    Keep,
    DeleteAll,
    DeleteOne(Index),
    /// Flip one byte of one file.
    Damage(Index, Index),
    /// Cut one file short.
    Truncate(Index, Index),
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: Pick,
        expect: Expect,
        events: Vec<EventSpec>,
        /// A large payload for the first event (makes segments roll).
        big: Option<usize>,
        with_ids: bool,
    },
    /// Repeats an earlier successful append verbatim (a client retry).
    Retry(Index),
    Read {
        stream: Pick,
        from: FromVersion,
        backward: bool,
        /// Append this event to the stream after the read's first event:
        /// a read yields the stream as it was when it began.
        interleave: Option<EventSpec>,
    },
    ReadAll,
    Reopen {
        index_files: IndexFiles,
        /// A new index interval for the reopened log.
        interval: Option<u64>,
    },
    /// Moves the clock by this many µs (back when negative).
    Clock(i32),
    /// `position_at` and `read_all_since` a time near an event.
    Since(history::TimePick),
    /// A stream as of a version, a position or a time.
    AsOf {
        stream: Pick,
        point: history::AsOfPick,
    },
    /// A snapshot saved, loaded, or a state rebuilt from one.
    Snapshot(Pick, snapshots::SnapshotOp),
}

/// Which stream an operation touches.
#[derive(Debug, Clone)]
enum Pick {
    /// One of the first two names, so some streams grow long.
    Hot(bool),
    Any(Index),
}

impl Pick {
    fn name<'a>(&self, names: &'a [String]) -> &'a String {
        match self {
            Pick::Hot(b) => &names[usize::from(*b)],
            Pick::Any(i) => i.get(names),
        }
    }
}

fn stream_choice() -> impl Strategy<Value = Pick> {
    prop_oneof![
        any::<bool>().prop_map(Pick::Hot),
        any::<Index>().prop_map(Pick::Any),
    ]
}

fn from_strategy() -> impl Strategy<Value = FromVersion> {
    prop_oneof![
        1 => Just(FromVersion::Zero),
        3 => (-3i8..=3).prop_map(FromVersion::NearEnd),
        3 => any::<u8>().prop_map(|v| FromVersion::At(v % 40)),
        1 => Just(FromVersion::Max),
    ]
}

fn expect_strategy() -> impl Strategy<Value = Expect> {
    prop_oneof![
        2 => Just(Expect::Any),
        1 => Just(Expect::NoStream),
        1 => Just(Expect::StreamExists),
        3 => Just(Expect::ExactNear(0)),
        2 => (-2i8..=2).prop_map(Expect::ExactNear),
        1 => any::<u8>().prop_map(|v| Expect::ExactAt(v % 8)),
    ]
}

fn event_strategy() -> impl Strategy<Value = EventSpec> {
    (0..EVENT_TYPES.len() + 1, 0usize..40, any::<bool>()).prop_map(
        |(event_type, payload_len, metadata)| EventSpec {
            event_type,
            payload_len,
            metadata,
        },
    )
}

fn index_files_strategy() -> impl Strategy<Value = IndexFiles> {
    prop_oneof![
        2 => Just(IndexFiles::Keep),
        2 => Just(IndexFiles::DeleteAll),
        1 => any::<Index>().prop_map(IndexFiles::DeleteOne),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(f, b)| IndexFiles::Damage(f, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(f, b)| IndexFiles::Truncate(f, b)),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let append = (
        stream_choice(),
        expect_strategy(),
        prop::collection::vec(event_strategy(), 1..=5),
        prop_oneof![3 => Just(None), 1 => (150_000usize..=450_000).prop_map(Some)],
        any::<bool>(),
    )
        .prop_map(|(stream, expect, events, big, with_ids)| Op::Append {
            stream,
            expect,
            events,
            big,
            with_ids,
        });
    let read = (
        stream_choice(),
        from_strategy(),
        any::<bool>(),
        prop_oneof![3 => Just(None), 1 => event_strategy().prop_map(Some)],
    )
        .prop_map(|(stream, from, backward, interleave)| Op::Read {
            stream,
            from,
            backward,
            interleave,
        });
    let reopen = (
        index_files_strategy(),
        prop_oneof![3 => Just(None), 1 => (1u64..=8).prop_map(Some)],
    )
        .prop_map(|(index_files, interval)| Op::Reopen {
            index_files,
            interval,
        });
    let as_of = (stream_choice(), history::as_of_strategy())
        .prop_map(|(stream, point)| Op::AsOf { stream, point });
    prop_oneof![
        12 => append,
        2 => any::<Index>().prop_map(Op::Retry),
        8 => read,
        1 => Just(Op::ReadAll),
        2 => reopen,
        4 => history::clock_strategy().prop_map(Op::Clock),
        2 => history::time_strategy().prop_map(Op::Since),
        4 => as_of,
        8 => snapshots::snapshot_strategy().prop_map(|(p, op)| Op::Snapshot(p, op)),
    ]
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,6}-[0-9]{1,3}",
        2 => "\\PC{1,12}",
        1 => Just("n".repeat(seglog::limits::MAX_STREAM_NAME_BYTES)),
    ]
}

// ---------------------------------------------------------------------------
// The model

/// One event as the model expects to read it back.
#[derive(Debug, Clone)]
struct Ev {
    event_type: String,
    payload: Bytes,
    metadata: Bytes,
    schema_version: u16,
    id: Option<u128>,
    frame_offset: u64,
    index_in_frame: u16,
    /// Commit time, µs.
    time_us: u64,
}

/// One successful append, as a retry would be matched against it.
#[derive(Debug, Clone)]
struct Appended {
    first_version: u64,
    ids: Vec<Option<u128>>,
    result: AppendResult,
}

#[derive(Debug, Default)]
struct StreamModel {
    events: Vec<Ev>,
    appends: Vec<Appended>,
}

impl StreamModel {
    fn last(&self) -> Option<u64> {
        (self.events.len() as u64).checked_sub(1)
    }
}

/// What the model says an append must do.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Write new events starting at this version.
    Write(u64),
    /// A retry of an earlier append: its result, nothing written.
    Original(AppendResult),
    WrongExpectedVersion(Option<u64>),
}

/// The events of one append, with what `EventData` does not expose.
#[derive(Debug, Clone, Default)]
struct Batch {
    events: Vec<EventData>,
    ids: Vec<Option<u128>>,
    schema_versions: Vec<u16>,
}

#[derive(Default)]
struct Model {
    streams: HashMap<String, StreamModel>,
    /// (stream, version) of every event in commit order.
    all: Vec<(String, u64)>,
    /// Every successful append, for retries.
    history: Vec<(String, ExpectedVersion, Batch)>,
    /// Frame offset of the newest frame, if any.
    last_frame: Option<u64>,
    /// The newest commit time: no later one is below it.
    last_time_us: u64,
}

impl Model {
    fn last(&self, stream: &str) -> Option<u64> {
        self.streams.get(stream).and_then(StreamModel::last)
    }

    /// The expected-version rule and the documented idempotency window
    /// (docs/ARCHITECTURE.md, "Idempotent appends"), written independently
    /// of the library's code: a batch whose events all carry ids and repeat
    /// an earlier append's ids (same order, same count) returns that
    /// append's result when the earlier append is the one that followed
    /// version `n` (`Exact(n)`), created the stream (`NoStream`) or is the
    /// stream's last append (`Any`, `StreamExists`).
    fn outcome(&self, stream: &str, expected: ExpectedVersion, batch: &Batch) -> Outcome {
        let actual = self.last(stream);
        if let (Some(s), Some(last)) = (self.streams.get(stream), actual)
            && batch.ids.iter().all(Option::is_some)
        {
            let candidate = match expected {
                ExpectedVersion::Exact(n) if n < last => {
                    s.appends.iter().find(|a| a.first_version == n + 1)
                }
                ExpectedVersion::Exact(_) => None,
                ExpectedVersion::NoStream => s.appends.iter().find(|a| a.first_version == 0),
                ExpectedVersion::Any | ExpectedVersion::StreamExists => s.appends.last(),
            };
            if let Some(a) = candidate
                && a.ids == batch.ids
            {
                return Outcome::Original(a.result);
            }
        }
        let ok = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(n) => actual == Some(n),
        };
        if ok {
            Outcome::Write(actual.map_or(0, |v| v + 1))
        } else {
            Outcome::WrongExpectedVersion(actual)
        }
    }

    fn record(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        batch: &Batch,
        (result, time_us): (AppendResult, u64),
    ) {
        let frame_offset = result.first_position.frame_offset();
        self.last_time_us = time_us;
        let s = self.streams.entry(stream.to_string()).or_default();
        s.appends.push(Appended {
            first_version: result.first_version,
            ids: batch.ids.clone(),
            result,
        });
        for (i, e) in batch.events.iter().enumerate() {
            let version = result.first_version + i as u64;
            self.all.push((stream.to_string(), version));
            s.events.push(Ev {
                event_type: e.event_type().to_string(),
                payload: Bytes::copy_from_slice(e.payload()),
                metadata: Bytes::copy_from_slice(e.metadata()),
                schema_version: batch.schema_versions[i],
                id: batch.ids[i],
                frame_offset,
                index_in_frame: i as u16,
                time_us,
            });
        }
        self.history
            .push((stream.to_string(), expected, batch.clone()));
        self.last_frame = Some(frame_offset);
    }
}

/// Builds event number `n` of a case: payload, metadata, schema version
/// and id are functions of `n` and the spec; ids are unique within a case.
fn push_event(batch: &mut Batch, n: u64, spec: &EventSpec, big: Option<usize>, id: bool) {
    let len = big.unwrap_or(spec.payload_len);
    let mut payload = vec![0u8; len];
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in payload.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let event_type = match EVENT_TYPES.get(spec.event_type) {
        Some(t) => t.to_string(),
        None => "t".repeat(seglog::limits::MAX_EVENT_TYPE_BYTES),
    };
    let metadata = if spec.metadata {
        n.to_le_bytes().to_vec()
    } else {
        Vec::new()
    };
    let schema = (n % 3) as u16 + 1;
    let mut e = EventData::new(event_type, payload)
        .with_metadata(metadata)
        .with_schema_version(schema);
    let id = id.then(|| u128::from(n) << 64 | 0xC0FFEE);
    if let Some(id) = id {
        e = e.with_id(id);
    }
    batch.events.push(e);
    batch.ids.push(id);
    batch.schema_versions.push(schema);
}

// ---------------------------------------------------------------------------
// Checks

fn check_event(e: &RecordedEvent, stream: &str, version: u64, want: &Ev, what: &str) {
    assert_eq!(e.stream(), stream, "{what}: stream");
    assert_eq!(e.version(), version, "{what}: version");
    assert_eq!(e.event_type(), want.event_type, "{what}: event type");
    assert_eq!(e.payload(), &want.payload, "{what}: payload of v{version}");
    assert_eq!(e.metadata(), &want.metadata, "{what}: metadata");
    assert_eq!(e.schema_version(), want.schema_version, "{what}: schema");
    assert_eq!(e.id(), want.id, "{what}: id");
    assert_eq!(
        (e.position().frame_offset(), e.position().index_in_frame()),
        (want.frame_offset, want.index_in_frame),
        "{what}: position of {stream} v{version}"
    );
    assert_eq!(e.timestamp_micros(), want.time_us, "{what}: commit time");
}

fn collect(
    iter: impl Iterator<Item = seglog::Result<RecordedEvent>>,
    what: &str,
) -> Vec<RecordedEvent> {
    iter.map(|e| e.unwrap_or_else(|err| panic!("{what}: {err}")))
        .collect()
}

/// What reading `stream` from `from` must yield: (version, event) in order.
fn expected_read(model: &Model, stream: &str, from: u64, backward: bool) -> Vec<(u64, Ev)> {
    let Some(s) = model.streams.get(stream) else {
        return Vec::new();
    };
    let numbered = s
        .events
        .iter()
        .cloned()
        .enumerate()
        .map(|(v, e)| (v as u64, e));
    if backward {
        numbered.filter(|(v, _)| *v <= from).rev().collect()
    } else {
        numbered.filter(|(v, _)| *v >= from).collect()
    }
}

fn read_stream(log: &Log, stream: &str, from: u64, backward: bool) -> seglog::ReadStream {
    let read = if backward {
        log.read_stream_backward(stream, from)
    } else {
        log.read_stream(stream, from)
    };
    read.unwrap_or_else(|e| panic!("read_stream({stream:?}, {from}, backward {backward}): {e}"))
}

fn check_read(got: &[RecordedEvent], want: &[(u64, Ev)], stream: &str, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: event count");
    for (e, (v, ev)) in got.iter().zip(want) {
        check_event(e, stream, *v, ev, what);
    }
}

fn check_forward(log: &Log, model: &Model, stream: &str, from: u64) {
    let what = format!("read_stream({stream:?}, {from})");
    let got = collect(read_stream(log, stream, from, false), &what);
    check_read(
        &got,
        &expected_read(model, stream, from, false),
        stream,
        &what,
    );
}

fn check_backward(log: &Log, model: &Model, stream: &str, from: u64) {
    let what = format!("read_stream_backward({stream:?}, {from})");
    let got = collect(read_stream(log, stream, from, true), &what);
    check_read(
        &got,
        &expected_read(model, stream, from, true),
        stream,
        &what,
    );
}

fn check_read_all(log: &Log, model: &Model) {
    let got = collect(log.read_all(Position::START).expect("read_all"), "read_all");
    assert_eq!(got.len(), model.all.len(), "read_all: event count");
    let mut last_ts = 0;
    for (i, (e, (stream, version))) in got.iter().zip(&model.all).enumerate() {
        let want = &model.streams[stream].events[*version as usize];
        check_event(e, stream, *version, want, &format!("read_all[{i}]"));
        assert!(e.timestamp_micros() >= last_ts, "timestamps went back");
        last_ts = e.timestamp_micros();
    }
}

/// Everything observable about every stream, after a reopen.
fn check_everything(log: &Log, model: &Model, names: &[String]) {
    assert_eq!(log.stream_count(), model.streams.len(), "stream_count");
    check_read_all(log, model);
    for name in names {
        assert_eq!(
            log.stream_version(name),
            model.last(name),
            "stream_version({name:?})"
        );
        check_forward(log, model, name, 0);
        check_backward(log, model, name, u64::MAX);
    }
}

// ---------------------------------------------------------------------------
// Index files

fn list_index_files(dir: &Path) -> Vec<(u64, std::path::PathBuf)> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .map(|p| {
            let base = p
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("index file name {p:?}"));
            (base, p)
        })
        .collect();
    found.sort();
    found
}

/// Bases of the segments that hold data, up to and including the active one
/// (the one holding the newest frame; segment 0 for an empty log).
fn segments_in_use(model: &Model) -> u64 {
    model.last_frame.map_or(0, |f| f / SEGMENT_BYTES) + 1
}

fn change_index_files(dir: &Path, what: &IndexFiles) {
    let files = list_index_files(dir);
    match what {
        IndexFiles::Keep => {}
        IndexFiles::DeleteAll => {
            common::remove_index_files(dir);
        }
        IndexFiles::DeleteOne(i) => {
            std::fs::remove_file(&i.get(&files).1).expect("remove index file");
        }
        IndexFiles::Damage(i, byte) => {
            let path = &i.get(&files).1;
            let mut raw = std::fs::read(path).expect("read index file");
            let at = byte.index(raw.len());
            raw[at] ^= 0x5A;
            std::fs::write(path, raw).expect("write index file");
        }
        IndexFiles::Truncate(i, len) => {
            let path = &i.get(&files).1;
            let raw = std::fs::read(path).expect("read index file");
            let keep = len.index(raw.len());
            std::fs::write(path, &raw[..keep]).expect("write index file");
        }
    }
}

// ---------------------------------------------------------------------------
// The runner

struct Run {
    dir: tempfile::TempDir,
    clock: Arc<history::ModelClock>,
    log: Option<Log>,
    interval: u64,
    names: Vec<String>,
    model: Model,
    snapshots: snapshots::Snapshots,
    next_event: u64,
}

/// The version `from` stands for in `stream` as the model has it now.
fn from_version(model: &Model, stream: &str, from: &FromVersion) -> u64 {
    match *from {
        FromVersion::Zero => 0,
        FromVersion::NearEnd(d) => {
            let last = model.last(stream).map_or(0, |v| v as i64);
            (last + i64::from(d)).max(0) as u64
        }
        FromVersion::At(v) => u64::from(v),
        FromVersion::Max => u64::MAX,
    }
}

fn open(dir: &Path, interval: u64, clock: &Arc<history::ModelClock>) -> Log {
    Options::new()
        .clock(Arc::clone(clock) as Arc<dyn seglog::Clock>)
        .snapshots_kept(snapshots::KEPT)
        .segment_size(SEGMENT_BYTES)
        .index_interval(interval)
        .durability(Durability::None)
        .open(dir)
        .expect("open")
}

impl Run {
    fn log(&self) -> &Log {
        self.log.as_ref().expect("open log")
    }

    fn append(&mut self, stream: &str, expected: ExpectedVersion, batch: &Batch) {
        let predicted = self.model.outcome(stream, expected, batch);
        let time_us = self.model.last_time_us.max(self.clock.get());
        let before = self.model.all.len();
        let events = &batch.events;
        let got = self.log().append(stream, expected, events);
        let what = format!("append({stream:?}, {expected:?}, {} events)", events.len());
        match (predicted, got) {
            (Outcome::Write(first), Ok(r)) => {
                let n = events.len() as u64;
                assert_eq!(
                    (r.first_version, r.last_version),
                    (first, first + n - 1),
                    "{what}: versions"
                );
                let frame = r.first_position.frame_offset();
                assert_eq!(r.last_position.frame_offset(), frame, "{what}: one frame");
                assert_eq!(r.first_position.index_in_frame(), 0, "{what}");
                assert_eq!(u64::from(r.last_position.index_in_frame()), n - 1, "{what}");
                if let Some(prev) = self.model.last_frame {
                    assert!(frame > prev, "{what}: frame {frame} not after {prev}");
                }
                self.model.record(stream, expected, batch, (r, time_us));
            }
            (Outcome::Original(original), Ok(r)) => {
                assert_eq!(r, original, "{what}: a retry returns the original result");
            }
            (Outcome::WrongExpectedVersion(actual), Err(e)) => match e {
                Error::WrongExpectedVersion {
                    stream: s,
                    expected: x,
                    actual: a,
                } => {
                    assert_eq!((s.as_str(), x, a), (stream, expected, actual), "{what}");
                }
                other => panic!("{what}: expected WrongExpectedVersion({actual:?}), got {other}"),
            },
            (predicted, got) => panic!("{what}: model says {predicted:?}, log returned {got:?}"),
        }
        assert_eq!(
            self.log().stream_version(stream),
            self.model.last(stream),
            "{what}"
        );
        assert_eq!(
            self.log().stream_count(),
            self.model.streams.len(),
            "{what}"
        );
        if self.model.all.len() == before {
            // Nothing written: the newest event is still the model's.
            let newest = self
                .log()
                .read_all(Position::START)
                .expect("read_all")
                .count();
            assert_eq!(newest, before, "{what}: wrote events the model did not");
        }
    }

    fn expected(&self, stream: &str, expect: &Expect) -> ExpectedVersion {
        let last = self.model.last(stream);
        match *expect {
            Expect::Any => ExpectedVersion::Any,
            Expect::NoStream => ExpectedVersion::NoStream,
            Expect::StreamExists => ExpectedVersion::StreamExists,
            Expect::ExactNear(d) => {
                let base = last.map_or(0, |v| v as i64);
                ExpectedVersion::Exact((base + i64::from(d)).max(0) as u64)
            }
            Expect::ExactAt(v) => ExpectedVersion::Exact(u64::from(v)),
        }
    }

    fn from(&self, stream: &str, from: &FromVersion) -> u64 {
        from_version(&self.model, stream, from)
    }

    fn reopen(&mut self, index_files: &IndexFiles, interval: Option<u64>) {
        self.log.take().expect("open log").close().expect("close");
        let in_use = segments_in_use(&self.model);
        // A clean close leaves an index file for every segment with data.
        let bases: Vec<u64> = list_index_files(self.dir.path())
            .iter()
            .map(|f| f.0)
            .collect();
        let want: Vec<u64> = (0..in_use).map(|i| i * SEGMENT_BYTES).collect();
        assert_eq!(bases, want, "index files after a clean close");
        change_index_files(self.dir.path(), index_files);
        if let Some(k) = interval {
            self.interval = k;
        }
        self.log = Some(open(self.dir.path(), self.interval, &self.clock));
        // Open rebuilds the file of every sealed segment it had to scan.
        let after: BTreeSet<u64> = list_index_files(self.dir.path())
            .iter()
            .map(|f| f.0)
            .collect();
        for i in 0..in_use - 1 {
            assert!(
                after.contains(&(i * SEGMENT_BYTES)),
                "index file of sealed segment {i} not rebuilt: {after:?}"
            );
        }
        assert!(
            after.iter().all(|b| *b < in_use * SEGMENT_BYTES),
            "{after:?}"
        );
        check_everything(self.log(), &self.model, &self.names);
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append {
                stream,
                expect,
                events,
                big,
                with_ids,
            } => {
                let name = stream.name(&self.names).clone();
                let expected = self.expected(&name, expect);
                let mut batch = Batch::default();
                for (i, spec) in events.iter().enumerate() {
                    self.next_event += 1;
                    let big = if i == 0 { *big } else { None };
                    push_event(&mut batch, self.next_event, spec, big, *with_ids);
                }
                self.append(&name, expected, &batch);
            }
            Op::Retry(i) => {
                if self.model.history.is_empty() {
                    return;
                }
                let (name, expected, batch) = i.get(&self.model.history).clone();
                self.append(&name, expected, &batch);
            }
            Op::Read {
                stream,
                from,
                backward,
                interleave,
            } => {
                let name = stream.name(&self.names).clone();
                let from = self.from(&name, from);
                let want = expected_read(&self.model, &name, from, *backward);
                let what = format!("read of {name:?} from {from}, backward {backward}");
                let mut read = read_stream(self.log(), &name, from, *backward);
                let mut got = Vec::new();
                if let Some(spec) = interleave {
                    got.extend(read.next().map(|e| e.expect(&what)));
                    let mut batch = Batch::default();
                    self.next_event += 1;
                    push_event(&mut batch, self.next_event, spec, None, false);
                    self.append(&name, ExpectedVersion::Any, &batch);
                }
                got.extend(collect(read, &what));
                check_read(&got, &want, &name, &what);
            }
            Op::ReadAll => check_read_all(self.log(), &self.model),
            Op::Reopen {
                index_files,
                interval,
            } => self.reopen(index_files, *interval),
            Op::Clock(delta) => self.clock.step(*delta),
            Op::Since(pick) => history::check_since(self.log(), &self.model, pick),
            Op::AsOf { stream, point } => {
                history::check_as_of(self.log(), &self.model, &self.names, stream, point)
            }
            Op::Snapshot(pick, op) => {
                let log = self.log.as_ref().expect("open log");
                self.snapshots
                    .apply(log, &self.model, &self.names, pick, op)
            }
        }
    }
}

fn run_case(names: Vec<String>, interval: u64, ops: &[Op]) {
    let dir = common::tempdir();
    let clock = Arc::new(history::ModelClock::new());
    let log = open(dir.path(), interval, &clock);
    let mut run = Run {
        dir,
        clock,
        log: Some(log),
        interval,
        names,
        model: Model::default(),
        snapshots: snapshots::Snapshots::default(),
        next_event: 0,
    };
    for op in ops {
        run.apply(op);
    }
    // Finally: everything, after one more reopen that rebuilds every index.
    check_everything(run.log(), &run.model, &run.names);
    run.reopen(&IndexFiles::DeleteAll, None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn log_matches_model(
        names in prop::collection::hash_set(name_strategy(), 5..=20),
        interval in 1u64..=8,
        ops in prop::collection::vec(op_strategy(), 1..120),
    ) {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        run_case(names, interval, &ops);
    }
}

/// Found by the model: a retry with `NoStream` of a stream whose creating
/// append holds a multiple of the index interval (so that frame carries a
/// sparse entry) must return the original result, not WrongExpectedVersion.
#[test]
fn retry_of_a_creation_whose_frame_holds_an_index_entry() {
    for (interval, events) in [(2u64, 3u128), (32, 33)] {
        let dir = common::tempdir();
        let log = Options::new()
            .index_interval(interval)
            .durability(Durability::None)
            .open(dir.path())
            .expect("open");
        let batch: Vec<EventData> = (1..=events)
            .map(|id| EventData::new("E", id.to_le_bytes().to_vec()).with_id(id))
            .collect();
        let created = log
            .append("s", ExpectedVersion::NoStream, &batch)
            .expect("create");
        let retried = log.append("s", ExpectedVersion::NoStream, &batch);
        assert_eq!(retried.ok(), Some(created), "interval {interval}");
        assert_eq!(
            log.read_all(Position::START).expect("read").count() as u128,
            events
        );
    }
}
