//! The `ops_model` target: operations on a log under faults and power cuts,
//! each read checked against an in-memory model.
// A test oracle: its job is to panic when the log and the model disagree.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::storage::Storage;
use crate::storage::fault::{FaultStorage, Op};
use crate::{
    Durability, Error, EventData, ExpectedVersion, Log, Options, Position, RecordedEvent,
    Subscription, limits,
};

/// Streams of [`ops_model`].
const MODEL_STREAMS: [&str; 4] = ["a", "bb", "order-3", "invoice-44"];

/// At most this many operations run from one input.
const MAX_OPS: usize = 200;

/// What the model knows of one append whose outcome is open: its sync
/// failed, so it may or may not be on disk.
#[derive(Debug, Clone)]
struct Pending {
    stream: usize,
    payloads: Vec<Vec<u8>>,
}

/// Runs the operations encoded in `data` against a log in `dir` (which
/// must be empty or absent) under `Durability::Sync`, through the
/// fault-injecting storage, and checks every read against an in-memory
/// model. Panics when the log and the model disagree; returns how many
/// operations ran.
///
/// Each 4 bytes are one operation `[kind, a, b, c]`: 0-2 append a batch of
/// `1 + c % 3` events to stream `a % 4` (expected version `Any`, the
/// model's `Exact`, or `NoStream`, by `b % 3`; a wrong expectation must be
/// refused); 3 reads a stream forward from version `b % 8`; 4 reads it
/// backward; 5 reads everything (`read_all`, or with an odd `b` through a
/// `$all` and a stream subscription); 6 closes and reopens; 7 cuts the power
/// (the next open sees only what was synced); 8 makes the next flush fail
/// with EIO (the log is poisoned until reopened); 9 fills the disk for
/// segment creation, 10 frees it.
pub fn ops_model(data: &[u8], dir: &Path) -> usize {
    let mut run = Model::start(dir);
    let mut ran = 0;
    for op in data.chunks_exact(4).take(MAX_OPS) {
        ran += 1;
        let (kind, a, b, c) = (op[0] % 11, op[1], op[2], op[3]);
        let s = a as usize % MODEL_STREAMS.len();
        match kind {
            0..=2 => run.append(s, b, c),
            3 | 4 => run.read_stream(s, u64::from(b % 8), kind == 4),
            5 if b % 2 == 1 => run.subscriptions(s, usize::from(c % 8)),
            5 => run.read_all(),
            6 | 7 => run.reopen(kind == 7),
            8 => {
                run.storage.fail(Op::Flush, 0, 5, false);
                run.flush_fault = true;
            }
            9 => run.storage.fail(Op::Reserve, 0, 28, true),
            _ => run.storage.heal(),
        }
    }
    if let Some(l) = run.log {
        let _ = l.close();
    }
    ran
}

/// One run of [`ops_model`]: the log, the storage under it, and the model.
struct Model {
    storage: Arc<FaultStorage>,
    dir: PathBuf,
    log: Option<Log>,
    /// Each stream's payloads, in version order.
    streams: Vec<Vec<Vec<u8>>>,
    pending: Option<Pending>,
    poisoned: bool,
    /// A flush failure was injected since the last open: the sync thread's
    /// own flushes (dropping the clean flag after a reopen) may meet it, so
    /// the log may be poisoned without an append having failed.
    flush_fault: bool,
    generation: u32,
}

impl Model {
    fn start(dir: &Path) -> Model {
        let mut run = Model {
            storage: Arc::new(FaultStorage::journal_only()),
            dir: dir.to_path_buf(),
            log: None,
            streams: vec![Vec::new(); MODEL_STREAMS.len()],
            pending: None,
            poisoned: false,
            flush_fault: false,
            generation: 0,
        };
        run.log = run.open().ok();
        run
    }

    fn open(&self) -> crate::Result<Log> {
        Options::new()
            .segment_size(limits::MIN_SEGMENT_SIZE_BYTES)
            .index_interval(4)
            .durability(Durability::Sync)
            .storage(Arc::clone(&self.storage) as Arc<dyn Storage>)
            .open(&self.dir)
    }

    /// The log when it is open and no append's outcome is open: only then
    /// do its reads have one right answer.
    fn settled(&self) -> Option<&Log> {
        self.log.as_ref().filter(|_| self.pending.is_none())
    }

    /// Appends `1 + c % 3` events to stream `s` with the expectation `b`
    /// picks, and checks the outcome against the model.
    fn append(&mut self, s: usize, b: u8, c: u8) {
        let Some(l) = self.log.as_ref() else { return };
        let count = 1 + usize::from(c % 3);
        let payloads: Vec<Vec<u8>> = (0..count)
            .map(|k| vec![b ^ k as u8; 1 + usize::from(b) * 256 + k])
            .collect();
        let events: Vec<EventData> = payloads
            .iter()
            .map(|p| EventData::new("M", p.clone()))
            .collect();
        let len = self.streams[s].len() as u64;
        let expected = match b % 3 {
            0 => ExpectedVersion::Any,
            1 => ExpectedVersion::Exact(len.wrapping_sub(u64::from(c % 2))),
            _ => ExpectedVersion::NoStream,
        };
        let fits = expected.matches(len.checked_sub(1));
        match l.append(MODEL_STREAMS[s], expected, &events) {
            Ok(r) => {
                assert!(fits, "{expected:?} accepted at {len} events");
                assert!(!self.poisoned, "a poisoned log acknowledged an append");
                assert_eq!(r.first_version, len);
                self.streams[s].extend(payloads);
            }
            Err(Error::WrongExpectedVersion { actual, .. }) => {
                assert!(!fits, "{expected:?} refused at {len} events");
                assert_eq!(actual, len.checked_sub(1));
            }
            Err(Error::Poisoned { .. }) if !self.poisoned && fits => {
                self.poisoned = true;
                self.pending = Some(Pending {
                    stream: s,
                    payloads,
                });
            }
            Err(Error::Poisoned { .. } | Error::Io { .. }) => {}
            Err(e) => panic!("append: unexpected {e}"),
        }
    }

    /// Reads stream `s` from version `from`, forward or backward.
    fn read_stream(&self, s: usize, from: u64, backward: bool) {
        let Some(l) = self.settled() else { return };
        let name = MODEL_STREAMS[s];
        let (got, want): (Vec<RecordedEvent>, Vec<Vec<u8>>) = if backward {
            let got = l.read_stream_backward(name, from).expect("backward");
            let keep = (from as usize + 1).min(self.streams[s].len());
            let want = self.streams[s][..keep].iter().rev().cloned().collect();
            (got.map(|e| e.expect("event")).collect(), want)
        } else {
            let got = l.read_stream(name, from).expect("read_stream");
            let want = self.streams[s]
                .iter()
                .skip(from as usize)
                .cloned()
                .collect();
            (got.map(|e| e.expect("event")).collect(), want)
        };
        let got: Vec<Vec<u8>> = got.iter().map(|e| e.payload().to_vec()).collect();
        assert!(
            got == want,
            "{name} from {from} (backward {backward}): {} events, model {}",
            got.len(),
            want.len()
        );
    }

    /// Subscriptions: `$all` from the start and stream `s` from version
    /// `from` hand out the model's events, then find the head.
    fn subscriptions(&self, s: usize, from: usize) {
        let Some(l) = self.settled() else { return };
        let all = self.drain(l.subscribe_all(Position::START).expect("subscribe_all"));
        self.check_in_log_order(all, "subscribe_all");
        let name = MODEL_STREAMS[s];
        let got: Vec<Vec<u8>> = self
            .drain(l.subscribe_stream(name, from as u64).expect("subscribe"))
            .iter()
            .map(|e| e.payload().to_vec())
            .collect();
        let want: Vec<Vec<u8>> = self.streams[s].iter().skip(from).cloned().collect();
        assert!(got == want, "subscribe_stream {name} from {from}");
    }

    /// Everything `sub` hands out until it would wait.
    fn drain(&self, mut sub: Subscription) -> Vec<RecordedEvent> {
        let mut got = Vec::new();
        loop {
            match sub.next_timeout(std::time::Duration::ZERO) {
                Ok(Some(e)) => got.push(e),
                Ok(None) => return got,
                Err(Error::Poisoned { .. }) if self.poisoned || self.flush_fault => return got,
                Err(e) => panic!("subscription: unexpected {e}"),
            }
        }
    }

    /// `read_all` hands out the model's events.
    fn read_all(&self) {
        let Some(l) = self.settled() else { return };
        let events = l
            .read_all(Position::START)
            .expect("read_all")
            .map(|e| e.expect("event"));
        self.check_in_log_order(events, "read_all");
    }

    /// `events`, all of the log in log order, are each stream's model
    /// events in version order.
    fn check_in_log_order(&self, events: impl IntoIterator<Item = RecordedEvent>, what: &str) {
        let mut counts = vec![0usize; MODEL_STREAMS.len()];
        for e in events {
            let s = MODEL_STREAMS
                .iter()
                .position(|n| *n == e.stream())
                .expect("known");
            assert_eq!(e.version(), counts[s] as u64, "{what} order");
            assert!(
                e.payload() == &self.streams[s][counts[s]][..],
                "{what} payload"
            );
            counts[s] += 1;
        }
        let lens: Vec<usize> = self.streams.iter().map(Vec::len).collect();
        assert_eq!(counts, lens, "{what}");
    }

    /// Closes the log, or cuts the power (the next open sees only what was
    /// synced), then opens it again and reconciles the model.
    fn reopen(&mut self, cut: bool) {
        if let Some(l) = self.log.take() {
            if cut {
                self.cut_power(l);
            } else {
                let _ = l.close();
            }
        }
        self.storage.heal();
        self.poisoned = false;
        self.flush_fault = false;
        match self.open() {
            Ok(l) => {
                self.reconcile(&l);
                self.log = Some(l);
            }
            Err(e) => panic!("reopen: {e}"),
        }
    }

    /// Keeps only what was synced by now, in a new directory the next open
    /// uses (the log is dropped first, so its threads stop).
    fn cut_power(&mut self, log: Log) {
        let points = self.storage.durability_points();
        drop(log);
        let image = self.storage.image_at(points);
        self.generation += 1;
        let next = self.dir.with_extension(format!("cut{}", self.generation));
        if let Some(image) = image {
            image
                .write_to(&self.dir, &next, None, |_| false)
                .expect("image");
            self.storage.adopt(&next).expect("adopt the image");
        }
        self.dir = next;
    }

    /// After a reopen: the pending append is either whole in the log or
    /// absent; then log and model must agree exactly.
    fn reconcile(&mut self, log: &Log) {
        if let Some(p) = self.pending.take() {
            let have = log
                .stream_version(MODEL_STREAMS[p.stream])
                .map_or(0, |v| v + 1);
            let before = self.streams[p.stream].len() as u64;
            assert!(
                have == before || have == before + p.payloads.len() as u64,
                "a failed append is half there: {have} events, model {before} + {}",
                p.payloads.len()
            );
            if have > before {
                self.streams[p.stream].extend(p.payloads);
            }
        }
        for (s, name) in MODEL_STREAMS.iter().enumerate() {
            let got: Vec<Vec<u8>> = log
                .read_stream(name, 0)
                .expect("read_stream after reopen")
                .map(|e| e.expect("event").payload().to_vec())
                .collect();
            assert!(
                got == self.streams[s],
                "stream {name} after reopen: {} events, model {}",
                got.len(),
                self.streams[s].len()
            );
        }
    }
}
