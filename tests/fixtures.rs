//! The on-disk format, pinned by a log written before the engine was
//! restructured. `tests/fixtures/v1-log/` holds the files of a small log
//! (format version 1) as that code left them: two 1 MiB segments, the first
//! sealed, their index files, the spare segment, one consumer checkpoint,
//! closed cleanly. `tests/fixtures/v1-log.dump` lists every event in it as
//! that code read it back, each stream's last version, the checkpoint and
//! the fixture's files. Every test opens a copy (opening a log writes to
//! it: never the committed files) and must read exactly what the dump says,
//! through `Log` and through `Reader`, and append after it.
//!
//! `SEGLOG_WRITE_FIXTURE=1 cargo test --test fixtures -- --ignored`
//! rewrites both with the current code. Do that only to pin a new format
//! version, as a new fixture beside this one: never to make these tests
//! pass again after a change of the engine.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use seglog::{
    AppendRequest, EventData, EventRef, EventType, ExpectedVersion, Log, Options, Position, Reader,
    RecordedEvent,
};

/// The committed log, relative to the package.
const FIXTURE: &str = "tests/fixtures/v1-log";
/// The committed dump of it, beside it.
const DUMP: &str = "tests/fixtures/v1-log.dump";
/// The consumer whose checkpoint the fixture holds.
const CONSUMER: &str = "billing";
/// Payloads and metadata up to this many bytes are dumped whole (hex);
/// longer ones as their length and digest.
const INLINE_BYTES: usize = 256;
/// The index interval the fixture was written with: the default, so that
/// `Log::open` reads it with the options it was written with.
const INDEX_INTERVAL: u64 = seglog::limits::DEFAULT_INDEX_INTERVAL;
/// An event type longer than the 24 bytes an `EventType` keeps inline.
const SHIPPED: EventType = EventType::from_static("com.example.orders.OrderShipped");

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)
}

fn dump_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(DUMP)
}

/// The names of the regular files in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir:?}: {e}"))
        .map(|entry| entry.expect("entry"))
        .filter(|entry| entry.file_type().expect("file type").is_file())
        .map(|entry| entry.file_name().into_string().expect("UTF-8 name"))
        .collect();
    names.sort();
    names
}

/// Copies the files of `from` into `to` (created).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create the copy");
    for name in file_names(from) {
        fs::copy(from.join(&name), to.join(&name)).expect("copy a fixture file");
    }
}

/// A copy of the committed fixture in a new temporary directory: the
/// directory guard and the log's path in it.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join("log");
    copy_dir(&fixture_dir(), &dir);
    (tmp, dir)
}

/// FNV-1a, 64 bits: a digest whose value is fixed by its definition, for
/// long payloads and whole files in the dump. Not a CRC: the CRC-32 of a
/// file that ends with its own CRC-32 (index and checkpoint files) is the
/// same constant whatever the file holds.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` as the dump writes them: hex when short, else length and FNV-1a.
fn dumped_bytes(bytes: &[u8]) -> String {
    if bytes.len() <= INLINE_BYTES {
        hex(bytes)
    } else {
        format!("{}B,fnv1a64={:016x}", bytes.len(), fnv1a64(bytes))
    }
}

/// Every field of one event, from either read path.
struct Fields<'a> {
    stream: &'a str,
    version: u64,
    event_type: &'a str,
    schema_version: u16,
    id: Option<u128>,
    metadata: &'a [u8],
    payload: &'a [u8],
    position: Position,
    next_position: Position,
    timestamp_us: u64,
}

impl Fields<'_> {
    /// The event's line in the dump.
    fn line(&self) -> String {
        let id = self
            .id
            .map_or_else(|| "-".to_string(), |id| format!("{id:032x}"));
        format!(
            "event\tstream={}\tversion={}\ttype={}\tschema={}\tid={id}\tmetadata={}\tpayload={}\tposition={}\tnext={}\ttimestamp_us={}",
            self.stream,
            self.version,
            self.event_type,
            self.schema_version,
            dumped_bytes(self.metadata),
            dumped_bytes(self.payload),
            self.position,
            self.next_position,
            self.timestamp_us,
        )
    }
}

fn line_of(e: &RecordedEvent) -> String {
    Fields {
        stream: e.stream(),
        version: e.version(),
        event_type: e.event_type(),
        schema_version: e.schema_version(),
        id: e.id(),
        metadata: e.metadata(),
        payload: e.payload(),
        position: e.position(),
        next_position: e.next_position(),
        timestamp_us: e.timestamp_micros(),
    }
    .line()
}

fn line_of_ref(e: EventRef<'_>) -> String {
    Fields {
        stream: e.stream(),
        version: e.version(),
        event_type: e.event_type(),
        schema_version: e.schema_version(),
        id: e.id(),
        metadata: e.metadata(),
        payload: e.payload(),
        position: e.position(),
        next_position: e.next_position(),
        timestamp_us: e.timestamp_micros(),
    }
    .line()
}

/// One event of the dump.
struct DumpedEvent {
    stream: String,
    version: u64,
    position: String,
    line: String,
}

/// The committed dump, parsed.
struct Dump {
    /// Every event, in log order.
    events: Vec<DumpedEvent>,
    /// Each stream's last version, by name.
    streams: BTreeMap<String, u64>,
    /// The consumer's checkpointed position (`Position`'s `Display`).
    checkpoint: String,
    /// Where the log ends: what `replay` returns (`Display`).
    end: String,
    /// The fixture's files: name, then "length,digest".
    files: BTreeMap<String, String>,
}

impl Dump {
    fn load() -> Dump {
        let text = fs::read_to_string(dump_path()).expect("read the dump");
        let mut dump = Dump {
            events: Vec::new(),
            streams: BTreeMap::new(),
            checkpoint: String::new(),
            end: String::new(),
            files: BTreeMap::new(),
        };
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (kind, rest) = line.split_once('\t').expect("a record kind");
            let fields: BTreeMap<&str, &str> = rest
                .split('\t')
                .map(|f| f.split_once('=').expect("key=value"))
                .collect();
            let field = |key: &str| fields.get(key).copied().expect("a field").to_string();
            let number = |key: &str| field(key).parse::<u64>().expect("a number");
            match kind {
                "event" => dump.events.push(DumpedEvent {
                    stream: field("stream"),
                    version: number("version"),
                    position: field("position"),
                    line: line.to_string(),
                }),
                "stream" => {
                    dump.streams.insert(field("name"), number("last_version"));
                }
                "consumer" => {
                    assert_eq!(field("name"), CONSUMER);
                    dump.checkpoint = field("checkpoint");
                }
                "end" => dump.end = field("position"),
                "file" => {
                    dump.files.insert(field("name"), field("content"));
                }
                other => panic!("unknown record {other:?} in the dump"),
            }
        }
        assert!(!dump.events.is_empty() && !dump.end.is_empty() && !dump.files.is_empty());
        dump
    }

    fn lines(&self) -> Vec<String> {
        self.events.iter().map(|e| e.line.clone()).collect()
    }

    /// The lines of `stream`'s events, in version order.
    fn stream_lines(&self, stream: &str) -> Vec<String> {
        let lines: Vec<&DumpedEvent> = self.events.iter().filter(|e| e.stream == stream).collect();
        for (v, e) in lines.iter().enumerate() {
            assert_eq!(e.version, v as u64, "the dump of {stream} skips a version");
        }
        lines.iter().map(|e| e.line.clone()).collect()
    }
}

/// Asserts two lists of lines are equal, naming the first difference (the
/// line and, since lines are long, the first field that differs).
fn assert_lines(got: &[String], want: &[String], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        let field = got[i]
            .split('\t')
            .zip(want[i].split('\t'))
            .find(|(g, w)| g != w)
            .unwrap_or_default();
        panic!(
            "{what}: line {i} differs in {:?} (dump: {:?})\n got: {}\nwant: {}",
            field.0, field.1, got[i], want[i]
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} lines, dump has {}",
        got.len(),
        want.len()
    );
}

/// The read side `Log` and `Reader` share, as lines of the dump.
trait ReadSide {
    fn all_lines(&self, from: Position) -> Vec<String>;
    /// `replay`'s lines and the position it returns.
    fn replay_lines(&self) -> (Vec<String>, Position);
    fn stream_lines(&self, stream: &str, from: u64, backward: bool) -> Vec<String>;
    fn replay_stream_lines(&self, stream: &str, from: u64) -> Vec<String>;
    fn last_version(&self, stream: &str) -> Option<u64>;
}

fn collect_lines(events: impl Iterator<Item = seglog::Result<RecordedEvent>>) -> Vec<String> {
    events.map(|e| line_of(&e.expect("event"))).collect()
}

impl ReadSide for Log {
    fn all_lines(&self, from: Position) -> Vec<String> {
        collect_lines(self.read_all(from).expect("read_all"))
    }

    fn replay_lines(&self) -> (Vec<String>, Position) {
        let mut lines = Vec::new();
        let end = self
            .replay(Position::START, |e| lines.push(line_of_ref(e)))
            .expect("replay");
        (lines, end)
    }

    fn stream_lines(&self, stream: &str, from: u64, backward: bool) -> Vec<String> {
        let events = if backward {
            self.read_stream_backward(stream, from)
        } else {
            self.read_stream(stream, from)
        };
        collect_lines(events.expect("read_stream"))
    }

    fn replay_stream_lines(&self, stream: &str, from: u64) -> Vec<String> {
        let mut lines = Vec::new();
        self.replay_stream(stream, from, |e| lines.push(line_of_ref(e)))
            .expect("replay_stream");
        lines
    }

    fn last_version(&self, stream: &str) -> Option<u64> {
        self.stream_version(stream)
    }
}

impl ReadSide for Reader {
    fn all_lines(&self, from: Position) -> Vec<String> {
        collect_lines(self.read_all(from).expect("read_all"))
    }

    fn replay_lines(&self) -> (Vec<String>, Position) {
        let mut lines = Vec::new();
        let end = self
            .replay(Position::START, |e| lines.push(line_of_ref(e)))
            .expect("replay");
        (lines, end)
    }

    fn stream_lines(&self, stream: &str, from: u64, backward: bool) -> Vec<String> {
        let events = if backward {
            self.read_stream_backward(stream, from)
        } else {
            self.read_stream(stream, from)
        };
        collect_lines(events.expect("read_stream"))
    }

    fn replay_stream_lines(&self, stream: &str, from: u64) -> Vec<String> {
        let mut lines = Vec::new();
        self.replay_stream(stream, from, |e| lines.push(line_of_ref(e)))
            .expect("replay_stream");
        lines
    }

    fn last_version(&self, stream: &str) -> Option<u64> {
        self.stream_version(stream).expect("stream_version")
    }
}

/// Every read of `log` matches the dump: `read_all`, `replay` (and where
/// it ends), each stream both ways from its ends and from versions around
/// the sparse index's entries, `replay_stream`, `stream_version`.
fn assert_reads_match(log: &impl ReadSide, dump: &Dump) {
    assert_lines(&log.all_lines(Position::START), &dump.lines(), "read_all");
    let (replayed, end) = log.replay_lines();
    assert_lines(&replayed, &dump.lines(), "replay");
    assert_eq!(end.to_string(), dump.end, "replay's end");
    for (stream, &last) in &dump.streams {
        let want = dump.stream_lines(stream);
        assert_eq!(
            want.len() as u64,
            last + 1,
            "{stream}: the dump's last version"
        );
        let k = INDEX_INTERVAL;
        let mut froms = vec![0, 1, k - 1, k, k + 1, last / 2, last, last + 1, u64::MAX];
        froms.dedup();
        for from in froms {
            let forward: Vec<String> = want.iter().skip(from as usize).cloned().collect();
            let what = format!("read_stream({stream}, {from})");
            assert_lines(&log.stream_lines(stream, from, false), &forward, &what);
            let keep = from.saturating_add(1).min(last + 1) as usize;
            let backward: Vec<String> = want[..keep].iter().rev().cloned().collect();
            let what = format!("read_stream_backward({stream}, {from})");
            assert_lines(&log.stream_lines(stream, from, true), &backward, &what);
        }
        let what = format!("replay_stream({stream}, 0)");
        assert_lines(&log.replay_stream_lines(stream, 0), &want, &what);
        assert_eq!(
            log.last_version(stream),
            Some(last),
            "stream_version({stream})"
        );
    }
    assert_eq!(log.last_version("no-such-stream"), None);
}

/// The index in the dump of the event at the consumer's checkpoint.
fn checkpointed_index(dump: &Dump) -> usize {
    dump.events
        .iter()
        .position(|e| e.position == dump.checkpoint)
        .expect("the checkpoint names an event of the dump")
}

#[test]
fn the_committed_fixture_is_what_the_dump_lists() {
    // Guards the fixture itself: a checkout that changed a byte (line-ending
    // conversion, LFS, a tool that opened it in place) fails here, before
    // the reads below disagree for a reason that is not the engine's.
    let dump = Dump::load();
    let dir = fixture_dir();
    let names = file_names(&dir);
    assert_eq!(names, dump.files.keys().cloned().collect::<Vec<_>>());
    for name in names {
        let bytes = fs::read(dir.join(&name)).expect("read a fixture file");
        let content = format!("{},{:016x}", bytes.len(), fnv1a64(&bytes));
        assert_eq!(content, dump.files[&name], "{name}");
    }
    // Two segments, the first sealed, so the index files of a sealed and
    // of an active segment are both read.
    assert!(dump.files.keys().filter(|n| n.ends_with(".idx")).count() >= 2);
}

#[test]
fn log_open_reads_the_v1_fixture_as_dumped() {
    let dump = Dump::load();
    let (_tmp, dir) = fixture_copy();
    let log = Log::open(&dir).expect("Log::open of the fixture");
    assert_reads_match(&log, &dump);
    assert_eq!(log.stream_count(), dump.streams.len());
    log.close().expect("close");
}

#[test]
fn reader_open_reads_the_v1_fixture_as_dumped() {
    let dump = Dump::load();
    let (_tmp, dir) = fixture_copy();
    let reader = Reader::open(&dir).expect("Reader::open of the fixture");
    assert_reads_match(&reader, &dump);
    let billing = reader.consumer(CONSUMER).expect("consumer");
    assert_eq!(
        billing.checkpointed().map(|p| p.to_string()),
        Some(dump.checkpoint.clone())
    );
}

#[test]
fn the_v1_consumer_resumes_after_its_checkpoint() {
    let dump = Dump::load();
    let (_tmp, dir) = fixture_copy();
    let log = Log::open(&dir).expect("open");
    let billing = log.consumer(CONSUMER).expect("consumer");
    assert_eq!(
        billing.checkpointed().map(|p| p.to_string()),
        Some(dump.checkpoint.clone())
    );
    let mut subscription = billing.subscribe().expect("subscribe");
    let mut delivered = Vec::new();
    while let Some(e) = subscription
        .next_timeout(Duration::ZERO)
        .expect("subscription")
    {
        delivered.push(line_of(&e));
    }
    let after = dump.lines()[checkpointed_index(&dump) + 1..].to_vec();
    assert!(!after.is_empty(), "the checkpoint is not the last event");
    assert_lines(&delivered, &after, "the consumer's subscription");
}

#[test]
fn appends_after_the_v1_fixture_continue_it() {
    let dump = Dump::load();
    let (_tmp, dir) = fixture_copy();
    let log = Log::open(&dir).expect("open");
    // The stream that spans both segments.
    let stream = "order-1";
    let last = dump.streams[stream];
    let stale = log.append(
        stream,
        ExpectedVersion::Exact(last - 1),
        &[EventData::new("Late", "")],
    );
    assert!(
        matches!(stale, Err(seglog::Error::WrongExpectedVersion { actual: Some(v), .. }) if v == last)
    );
    let next = EventData::new("AfterFixture", "{}").with_id(7);
    let r = log
        .append(stream, ExpectedVersion::Exact(last), &[next])
        .expect("append to a fixture stream");
    assert_eq!(r.first_version, last + 1);
    assert_eq!(
        r.first_position.to_string(),
        dump.end,
        "the new event starts where the log ended"
    );
    let fresh = log
        .append(
            "after-fixture",
            ExpectedVersion::NoStream,
            &[EventData::new("Created", "x")],
        )
        .expect("append to a new stream");
    assert_eq!(fresh.first_version, 0);
    assert_eq!(log.stream_count(), dump.streams.len() + 1);
    let new_lines = log.all_lines(r.first_position);
    assert_eq!(new_lines.len(), 2);
    log.close().expect("close");

    // Reopened, the fixture's events are untouched and the new ones follow.
    let log = Log::open(&dir).expect("reopen");
    let mut want = dump.lines();
    want.extend(new_lines);
    assert_lines(
        &log.all_lines(Position::START),
        &want,
        "read_all after appends",
    );
    assert_eq!(log.stream_version(stream), Some(last + 1));
    log.close().expect("close");
}

/// An event the generator appends, every field readable again (an
/// `EventData` does not give back its schema version or id), so what is
/// read back can be checked against it field by field.
#[derive(Clone)]
struct Spec {
    event_type: EventType,
    payload: Vec<u8>,
    metadata: Vec<u8>,
    schema_version: u16,
    id: Option<u128>,
}

impl Spec {
    /// No metadata, no id, schema version 1 (`EventData`'s defaults).
    fn new(event_type: impl Into<EventType>, payload: impl Into<Vec<u8>>) -> Spec {
        Spec {
            event_type: event_type.into(),
            payload: payload.into(),
            metadata: Vec::new(),
            schema_version: 1,
            id: None,
        }
    }

    fn metadata(self, metadata: impl Into<Vec<u8>>) -> Spec {
        Spec {
            metadata: metadata.into(),
            ..self
        }
    }

    fn schema_version(self, schema_version: u16) -> Spec {
        Spec {
            schema_version,
            ..self
        }
    }

    fn id(self, id: u128) -> Spec {
        Spec {
            id: Some(id),
            ..self
        }
    }

    fn data(&self) -> EventData {
        let data = EventData::new(self.event_type.clone(), self.payload.clone());
        let data = if self.schema_version == 1 {
            data
        } else {
            data.with_schema_version(self.schema_version)
        };
        let data = if self.metadata.is_empty() {
            data
        } else {
            data.with_metadata(self.metadata.clone())
        };
        match self.id {
            Some(id) => data.with_id(id),
            None => data,
        }
    }
}

/// One event the generator appended: its stream, version and fields.
struct Written {
    stream: String,
    version: u64,
    spec: Spec,
}

/// The events of the fixture's log, appended in order to `log` (written
/// with 1 MiB segments, so they fill the first segment and roll into a
/// second); returns them.
fn write_events(log: &Log) -> seglog::Result<Vec<Written>> {
    let mut written = Vec::new();
    let mut heads: BTreeMap<String, u64> = BTreeMap::new();
    let mut append = |stream: &str, specs: Vec<Spec>| -> seglog::Result<()> {
        let expected = match heads.get(stream) {
            Some(&next) => ExpectedVersion::Exact(next - 1),
            None => ExpectedVersion::NoStream,
        };
        let events: Vec<EventData> = specs.iter().map(Spec::data).collect();
        let r = log.append(stream, expected, &events)?;
        heads.insert(stream.to_string(), r.last_version + 1);
        for (k, spec) in specs.into_iter().enumerate() {
            written.push(Written {
                stream: stream.to_string(),
                version: r.first_version + k as u64,
                spec,
            });
        }
        Ok(())
    };
    for i in 0..40u64 {
        append("order-1", vec![order_event(i)])?;
        if i % 4 == 1 {
            let batch = (0..3).map(|k| invoice_event(i, k)).collect();
            append("invoice-7", batch)?;
        }
        if i.is_multiple_of(2) && i < 36 {
            append("snapshots-1", vec![snapshot_event(i)])?;
        }
        if i == 25 {
            append("order-2", vec![Spec::new("OrderPlaced", "")])?;
            let binary: Vec<u8> = (0..=255u8).collect();
            let binary = Spec::new("Binary", binary).schema_version(u16::MAX);
            append("Zürich-3", vec![binary])?;
        }
    }
    // Two streams in one call: `append_many` writes one frame per request.
    let paid = Spec::new("OrderPaid", "{\"total\":42}").id(u128::MAX);
    let cancelled = Spec::new("OrderCancelled", "{}").metadata("{\"by\":\"ops\"}");
    let requests = [("order-2", paid), ("Zürich-3", cancelled)];
    let events: Vec<[EventData; 1]> = requests.iter().map(|(_, s)| [s.data()]).collect();
    let results = log.append_many(&[
        AppendRequest {
            stream: requests[0].0,
            expected: ExpectedVersion::Exact(0),
            events: &events[0],
        },
        AppendRequest {
            stream: requests[1].0,
            expected: ExpectedVersion::Exact(0),
            events: &events[1],
        },
    ])?;
    for (result, (stream, spec)) in results.into_iter().zip(requests) {
        written.push(Written {
            stream: stream.to_string(),
            version: result?.first_version,
            spec,
        });
    }
    Ok(written)
}

/// Event `i` of `order-1`: three types (one longer than the 24 bytes an
/// `EventType` keeps inline), schema versions 1 to 3, an id on every
/// other, metadata on most.
fn order_event(i: u64) -> Spec {
    let body = format!("{{\"order\":1,\"line\":{i},\"qty\":{}}}", i % 7 + 1);
    let spec = match i % 3 {
        0 => Spec::new("OrderPlaced", body),
        1 => Spec::new("OrderPaid", body).schema_version(2),
        _ => Spec::new(SHIPPED.clone(), body).schema_version(3),
    };
    let spec = if i.is_multiple_of(2) {
        spec.id(0x0123_4567_89ab_cdef_0000_0000_0000_0000 | u128::from(i))
    } else {
        spec
    };
    if i % 5 == 4 {
        spec
    } else {
        spec.metadata(format!("{{\"correlation\":\"c-{i}\"}}"))
    }
}

/// Event `k` of the batch of three appended to `invoice-7` at step `i`.
fn invoice_event(i: u64, k: u64) -> Spec {
    Spec::new("InvoiceLine", format!("{{\"step\":{i},\"line\":{k}}}"))
        .metadata("{}")
        .id(u128::from(i * 3 + k + 1))
}

/// A 60,000-byte snapshot: 18 of them fill the first 1 MiB segment and
/// roll into the second. Text, so git stores the segments compressed.
fn snapshot_event(i: u64) -> Spec {
    let mut payload = String::with_capacity(60_000);
    let mut k = 0u64;
    while payload.len() < 60_000 {
        payload.push_str(&format!("snapshot {i:02} block {k:05};"));
        k += 1;
    }
    payload.truncate(60_000);
    Spec::new("OrderSnapshot", payload).schema_version(5)
}

/// The dump of the log in `dir` (a copy: opening writes), checked against
/// what was written.
fn dump_text(dir: &Path, written: &[Written], files: &[(String, Vec<u8>)]) -> String {
    let log = Log::open(dir).expect("open a copy of the new fixture");
    let events: Vec<RecordedEvent> = log
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| e.expect("event"))
        .collect();
    assert_eq!(events.len(), written.len(), "events read back");
    for (e, w) in events.iter().zip(written) {
        assert_eq!((e.stream(), e.version()), (w.stream.as_str(), w.version));
        assert_eq!(e.event_type(), w.spec.event_type.as_str());
        assert_eq!(e.schema_version(), w.spec.schema_version);
        assert_eq!(e.id(), w.spec.id);
        assert_eq!(e.metadata().as_ref(), w.spec.metadata.as_slice());
        assert_eq!(e.payload().as_ref(), w.spec.payload.as_slice());
        let line = line_of(e);
        assert_eq!(line.lines().count(), 1, "names and types hold no newline");
        assert_eq!(
            line.matches('\t').count(),
            10,
            "names and types hold no tab"
        );
    }
    let mut text = String::from(
        "# seglog fixture tests/fixtures/v1-log (format version 1), written by\n\
         # tests/fixtures.rs (write_v1_fixture) and read back by the same code.\n\
         # event: every event in log order; metadata and payload in hex, or\n\
         #   LENGTHB,fnv1a64=DIGEST (FNV-1a, 64 bits) when longer than 256 bytes; id in hex or -;\n\
         #   position and next as FRAME_OFFSET:INDEX_IN_FRAME.\n\
         # stream: each stream's last version. consumer: a durable checkpoint.\n\
         # end: the position replay returns (where the next append goes).\n\
         # file: each file of the fixture, LENGTH,FNV-1a 64.\n",
    );
    for e in &events {
        text.push_str(&line_of(e));
        text.push('\n');
    }
    let mut streams: Vec<&str> = events.iter().map(RecordedEvent::stream).collect();
    streams.sort_unstable();
    streams.dedup();
    for stream in streams {
        let last = log.stream_version(stream).expect("a stream of the log");
        text.push_str(&format!("stream\tname={stream}\tlast_version={last}\n"));
    }
    let billing = log.consumer(CONSUMER).expect("consumer");
    let checkpoint = billing.checkpointed().expect("a checkpoint");
    text.push_str(&format!(
        "consumer\tname={CONSUMER}\tcheckpoint={checkpoint}\n"
    ));
    drop(billing);
    let end = log.replay(Position::START, |_| {}).expect("replay");
    text.push_str(&format!("end\tposition={end}\n"));
    for (name, bytes) in files {
        let content = format!("{},{:016x}", bytes.len(), fnv1a64(bytes));
        text.push_str(&format!("file\tname={name}\tcontent={content}\n"));
    }
    log.close().expect("close");
    text
}

#[test]
#[ignore = "rewrites the committed fixture; run with SEGLOG_WRITE_FIXTURE=1"]
fn write_v1_fixture() {
    if std::env::var_os("SEGLOG_WRITE_FIXTURE").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join("log");
    let log = Options::new()
        .segment_size(seglog::limits::MIN_SEGMENT_SIZE_BYTES)
        .index_interval(INDEX_INTERVAL)
        .open(&dir)
        .expect("create the log");
    let written = write_events(&log).expect("append the fixture's events");
    // A durable checkpoint at the middle event of the log.
    let middle = log
        .read_all(Position::START)
        .expect("read_all")
        .nth(written.len() / 2)
        .expect("an event")
        .expect("event");
    let mut billing = log.consumer(CONSUMER).expect("consumer");
    billing.ack(middle.position()).expect("ack");
    billing.checkpoint().expect("checkpoint");
    drop(billing);
    log.close().expect("a clean close");

    let files: Vec<(String, Vec<u8>)> = file_names(&dir)
        .into_iter()
        .map(|name| {
            let bytes = fs::read(dir.join(&name)).expect("read");
            (name, bytes)
        })
        .collect();
    assert!(
        files.iter().filter(|(n, _)| n.ends_with(".seg")).count() >= 2,
        "the log rolled"
    );
    let fixture = fixture_dir();
    let _ = fs::remove_dir_all(&fixture);
    copy_dir(&dir, &fixture);
    let copy = tmp.path().join("copy");
    copy_dir(&dir, &copy);
    fs::write(dump_path(), dump_text(&copy, &written, &files)).expect("write the dump");
}

/// A clock stuck at the epoch: every commit time after it is the log's
/// newest one so far.
#[derive(Debug)]
struct Epoch;

impl seglog::Clock for Epoch {
    fn now(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH
    }
}

#[test]
fn time_travel_works_on_the_v1_fixture_and_its_index_files_are_rewritten() {
    let (_tmp, dir) = fixture_copy();
    let log = seglog::Options::new()
        .clock(std::sync::Arc::new(Epoch))
        .open(&dir)
        .expect("open");
    let all: Vec<RecordedEvent> = log
        .read_all(Position::START)
        .expect("read_all")
        .map(|e| e.expect("event"))
        .collect();
    for (i, e) in all.iter().enumerate() {
        // The first event committed at or after this one's time.
        let first = all
            .iter()
            .position(|o| o.timestamp_micros() >= e.timestamp_micros())
            .expect("itself");
        let want = if first == 0 {
            Position::START
        } else {
            all[first].position()
        };
        assert_eq!(
            log.position_at(e.timestamp()).expect("position_at"),
            want,
            "event {i}"
        );
        let as_of: Vec<u64> = log
            .read_stream_as_of(e.stream(), seglog::AsOf::Time(e.timestamp()))
            .expect("as of")
            .map(|x| x.expect("event").version())
            .collect();
        assert!(as_of.contains(&e.version()), "event {i} as of its own time");
    }
    // Commit times go on from the fixture's newest, not from the clock.
    let newest = all
        .iter()
        .map(|e| e.timestamp_micros())
        .max()
        .expect("events");
    let r = log
        .append(
            "after-fixture",
            ExpectedVersion::NoStream,
            &[EventData::new("E", "x")],
        )
        .expect("append");
    let appended = log
        .read_all(r.first_position)
        .expect("read")
        .next()
        .expect("one");
    assert_eq!(appended.expect("event").timestamp_micros(), newest);
    log.close().expect("close");
    // The fixture's index files (version 2) were written again in the
    // current version, with a time index.
    for name in file_names(&dir).iter().filter(|n| n.ends_with(".idx")) {
        let bytes = fs::read(dir.join(name)).expect("read an index file");
        assert_eq!(&bytes[8..12], &3u32.to_le_bytes(), "{name}");
    }
}

/// The hash chain over the v1 fixture's bytes, as issue 28 defined it
/// (docs/FORMAT.md, "Hash chain"). Pinned: a change to the chain's
/// definition would make every published digest unverifiable, so this
/// value may never change.
const V1_DIGEST: &str = "seglog-digest 1 c05fe8e669764d6fc42e6d292eb23024 9125036032 72 d486019500a4ed6cf91cdf541c1ff98de5e0f1ac8faccf81117e2bd2e88fcac2";

#[test]
fn the_v1_fixture_has_a_fixed_chain_verifies_and_gains_records_from_a_writer() {
    let (_tmp, dir) = fixture_copy();
    let reader = Reader::open(&dir).expect("reader");
    let digest = reader.digest().expect("digest");
    assert_eq!(digest.to_string(), V1_DIGEST);
    let report = seglog::verify(&dir, Some(&digest)).expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.chain_records, 0, "version 1 segments have none");
    // Index files of an older version do not read (an open rebuilds them):
    // counted, not failed.
    assert_eq!(
        (report.index_files, report.index_files_unreadable),
        (0, 2),
        "{report}"
    );

    // A writer links them and, at its close, records the chain: in the
    // sealed version 1 segment (whose header bytes were zeros) and in the
    // active one; the next verify checks both, against the same digest.
    let log = Log::open(&dir).expect("open");
    log.append(
        "after-fixture",
        ExpectedVersion::NoStream,
        &[EventData::new("Created", "x")],
    )
    .expect("append");
    log.close().expect("close");
    let report = seglog::verify(&dir, Some(&digest)).expect("verify");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.chain_records, 2, "{report}");
    assert_eq!(
        (report.index_files, report.index_files_unreadable),
        (2, 0),
        "{report}"
    );
    assert_eq!(report.head.links, digest.links + 1);
}
