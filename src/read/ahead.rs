//! Checksums verified ahead of a replay, on another core.
//!
//! A borrowed replay of small frames spends a large share of its time in
//! the frame checksums (docs/PERFORMANCE.md, "Borrowed replay (W4)"). A
//! second thread walks the same frames ahead of the replay and checks only
//! their checksums; the replay skips the check for frames the helper has
//! passed and does it itself for any it has not, so a slow, stopped or
//! absent helper never loses a check, it only stops saving them.
//!
//! Why this is sound: published bytes never change, so a checksum that
//! matched for the helper matches for the replay. The helper publishes a
//! run `[from, to)`: the frames it checked one after another, stepping by
//! their lengths, from `from`. `from` is a boundary the replay reached (the
//! end of a frame it accepted) or one found from such a boundary by the
//! same steps over events frames ([`FrameCursor::next_unchecked`]): both walks read
//! the same length fields, so every offset either reaches is one of the
//! other's, until the replay meets a frame that fails its check, where it
//! stops with an error and trusts nothing after. (A repaired log's
//! quarantined ranges make the replay step differently; there the helper
//! never walks ahead of it.) The replay trusts a frame only if its offset
//! lies in a run.
//!
//! Splitting the work: the replay's own walk and decode (~190 instructions
//! a frame) became cheaper than the helper's checksum (~290), so a helper
//! that restarted where the replay was only ever caught up to it and
//! re-checked frames the replay was checking itself. Now, found behind, it
//! restarts [`LEAD_BYTES`] ahead of the replay: the replay checks the frames
//! in between itself while the helper checks the ones after, and the two
//! share the checksums instead of racing for the same ones.
//!
//! Memory: none. CPU: one more core while a long read runs, only when the
//! machine has one to spare: helpers in the whole process are limited to
//! one fewer than the CPUs ([`HelperSlot`]), so many readers at once do not pile
//! threads onto cores their own callbacks need.
//!
//! Two users: `replay` runs its helper in a thread scope; the owned cursor
//! behind `read_all` and subscriptions starts a detached one that stops
//! when the cursor is dropped ([`Running`]) or reaches the published end.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_utils::CachePadded;

use crate::segment::{HEADER_BYTES, Segment};
use crate::view::LogView;
use crate::walk::{Checked, FrameCursor, Summed};

/// Shortest stretch of log (bytes from the replay's start to the published
/// end) worth a thread: spawning one costs about as much as checking a few
/// hundred kilobytes of small frames, a small part of 4 MiB's checksums.
pub(crate) const MIN_BYTES: u64 = 4 << 20;

/// Frames the helper checks between two stores of `verified`, and the
/// replay between two stores of where it is: each store takes the cache
/// line from the other core.
pub(crate) const FRAMES_PER_STORE: u32 = 16;

/// How far ahead of the replay a helper that fell behind starts again:
/// ~320 frames of 200 bytes, which the replay checks itself meanwhile.
const LEAD_BYTES: u64 = 64 << 10;

/// What the replay and its helper share. What each side writes sits on a
/// cache line of its own, so a store by one does not take the other's
/// words away from it too.
#[derive(Debug)]
pub(crate) struct Ahead {
    /// Written by the helper.
    run: CachePadded<CheckedRun>,
    /// Log offset of the replay's next frame, stored now and then: a helper
    /// that fell behind starts again from there.
    replay_at: CachePadded<AtomicU64>,
    stop: AtomicBool,
}

/// The helper's current run of checked frames.
#[derive(Debug)]
struct CheckedRun {
    /// Log offset of the run's first frame: a boundary of the replay's walk
    /// (see the module docs).
    from: AtomicU64,
    /// End of the run: every frame from `from` below it has a matching
    /// checksum. Stored after `from` (release), and a new run starts at or
    /// past the old run's end.
    to: AtomicU64,
}

impl Ahead {
    /// LogView state for a replay whose next frame is at log offset `at`.
    pub(crate) fn new(at: u64) -> Ahead {
        Ahead {
            run: CachePadded::new(CheckedRun {
                from: AtomicU64::new(at),
                to: AtomicU64::new(at),
            }),
            replay_at: CachePadded::new(AtomicU64::new(at)),
            stop: AtomicBool::new(false),
        }
    }

    /// The helper's run of checked frames. `to` is read first, with
    /// acquire: a `to` of the current run brings its `from` (stored before
    /// it); a `from` newer than the `to` read starts at or past that `to`,
    /// so the pair makes an empty range, never one joining two runs.
    pub(crate) fn verified(&self) -> Range<u64> {
        let to = self.run.to.load(Ordering::Acquire);
        let from = self.run.from.load(Ordering::Relaxed);
        from..to
    }

    /// A new run from log offset `at`, past the current run's end.
    fn start_run(&self, at: u64) {
        debug_assert!(at >= self.run.to.load(Ordering::Relaxed));
        self.run.from.store(at, Ordering::Relaxed);
        self.run.to.store(at, Ordering::Release);
    }

    /// The replay's next frame is at log offset `at`.
    pub(crate) fn replay_at(&self, at: u64) {
        self.replay_at.store(at, Ordering::Relaxed);
    }
}

impl Checked for Ahead {
    fn verified(&self) -> Range<u64> {
        Ahead::verified(self)
    }
}

/// Tells the helper to return when dropped: at the end of the replay, and
/// also when it unwinds (a panicking callback), where the scope would
/// otherwise wait for the helper to reach the end of the log.
pub(crate) struct StopOnDrop<'a>(pub(crate) &'a Ahead);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
    }
}

/// Helpers running now, in the whole process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// One of the helpers allowed to run at once; given back when dropped (by
/// the helper's thread, when it returns).
#[derive(Debug)]
pub(crate) struct HelperSlot(());

impl HelperSlot {
    /// A slot for a read from log offset `from`, if that read is long
    /// enough to be worth a thread and a CPU is free for one.
    pub(crate) fn take(shared: &LogView, from: u64) -> Option<HelperSlot> {
        static MAX: OnceLock<usize> = OnceLock::new();
        let max = *MAX.get_or_init(|| {
            std::thread::available_parallelism().map_or(0, |n| n.get().saturating_sub(1))
        });
        if shared.watch.end().saturating_sub(from) < MIN_BYTES {
            return None;
        }
        RUNNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| HelperSlot(()))
    }
}

impl Drop for HelperSlot {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A detached helper, stopped when dropped.
#[derive(Debug)]
pub(crate) struct Running(Arc<Ahead>);

impl Running {
    /// Starts a helper thread for a read whose next frame is at log offset
    /// `at` (a frame boundary the read reached), if [`HelperSlot::take`] allows.
    pub(crate) fn start(shared: &Arc<LogView>, at: u64) -> Option<Running> {
        let slot = HelperSlot::take(shared, at)?;
        let ahead = Arc::new(Ahead::new(at));
        let (shared, theirs) = (Arc::clone(shared), Arc::clone(&ahead));
        std::thread::Builder::new()
            .name("seglog-verify".into())
            .spawn(move || {
                verify(&shared, &theirs);
                drop(slot);
            })
            .ok()?;
        Some(Running(ahead))
    }

    /// What the read shares with its helper.
    pub(crate) fn ahead(&self) -> Arc<Ahead> {
        Arc::clone(&self.0)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
    }
}

/// How much of the log the helper maps into the page tables at a time,
/// ahead of where it checks: for the replay behind it as well.
const POPULATE_BYTES: u64 = 4 << 20;

/// The helper: checks frames from log offset `ahead.replay_at` on, until
/// told to stop, the published end, or a frame that does not check (the
/// replay finds and reports that one itself).
pub(crate) fn verify(shared: &LogView, ahead: &Ahead) {
    let mut at = ahead.replay_at.load(Ordering::Relaxed);
    let Some((mut index, mut seg)) = shared.segment_for(at) else {
        return;
    };
    let mut offset = at - seg.base();
    let mut frames = 0u32;
    let may_lead = shared.quarantine.is_empty();
    let mut mapped = (index, offset);
    while !ahead.stop.load(Ordering::Relaxed) {
        frames += 1;
        if mapped.0 != index || offset >= mapped.1 {
            let to = (offset + POPULATE_BYTES).min(seg.published());
            let _ = seg.populate_read(offset, to);
            mapped = (index, to);
        }
        if frames.is_multiple_of(FRAMES_PER_STORE) {
            ahead.run.to.store(at, Ordering::Release);
            let replay = ahead.replay_at.load(Ordering::Relaxed);
            if replay > at {
                // Behind: checking frames the replay has passed saves
                // nothing. Its next frame is a boundary: start a new run a
                // lead past it.
                let Some((i, s)) = shared.segment_for(replay) else {
                    return;
                };
                offset = replay - s.base();
                if may_lead {
                    offset = lead(shared, &s, offset, LEAD_BYTES);
                }
                (index, seg, at) = (i, s.clone(), s.base() + offset);
                ahead.start_run(at);
                continue;
            }
        }
        let bytes = seg.bytes(offset, seg.published());
        let mut next = FrameCursor::over(&seg, bytes, offset, &shared.checksum);
        match next.next_summed() {
            Summed::Events(_) => offset = next.offset(),
            Summed::End => {
                index += 1;
                let Some(following) = shared.segment_at(index) else {
                    break;
                };
                seg = following;
                offset = HEADER_BYTES;
            }
            Summed::Stop => break,
        }
        at = seg.base() + offset;
    }
    ahead.run.to.store(at, Ordering::Release);
}

/// The boundary at least `bytes` past segment offset `offset` of `seg` (a
/// boundary), stepping over events frames by their lengths only; it stops
/// early at anything else (an end marker, the published end).
fn lead(view: &LogView, seg: &Segment, offset: u64, bytes: u64) -> u64 {
    let published = seg.bytes(offset, seg.published());
    let mut frames = FrameCursor::over(seg, published, offset, &view.checksum);
    while frames.offset() - offset < bytes && frames.next_unchecked().is_some() {}
    frames.offset()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Events, all_events};
    use crate::walk::TRUSTED;
    use crate::{Durability, Error, EventData, ExpectedVersion, Log, Options, Position};

    const SEGMENT: u64 = crate::limits::MIN_SEGMENT_SIZE_BYTES;

    /// Helpers are limited per process and these tests run in parallel:
    /// each takes this lock.
    fn alone() -> std::sync::MutexGuard<'static, ()> {
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for every helper to return (a detached one stops soon after
    /// its read is dropped).
    fn no_helper_running() {
        let started = std::time::Instant::now();
        while RUNNING.load(Ordering::Acquire) > 0 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "a helper never returned"
            );
            std::thread::yield_now();
        }
    }

    /// Runs `read` until a helper got ahead of it at least once (a helper
    /// thread may not be scheduled in time on a busy machine): returns what
    /// that run returned.
    fn with_helper<T>(mut read: impl FnMut() -> T) -> T {
        for _ in 0..50 {
            no_helper_running();
            let before = TRUSTED.with(|n| n.get());
            let out = read();
            if TRUSTED.with(|n| n.get()) > before {
                return out;
            }
        }
        panic!("a helper never got ahead of 50 reads");
    }

    /// A closed log in `dir` long enough for a helper, reopened; with each
    /// append's frame offset.
    fn long_log(dir: &std::path::Path) -> (Log, Vec<u64>) {
        let frames = log_of(dir, 3 * MIN_BYTES / 2);
        let log = Options::new().segment_size(SEGMENT).open(dir).unwrap();
        (log, frames)
    }

    /// A long log in `dir` with a bit flipped in the frame four fifths in,
    /// reopened: the log, the number of events before that frame, and its
    /// segment file and offset there.
    fn damaged_log(dir: &std::path::Path) -> (Log, usize, std::path::PathBuf, u64) {
        let (log, bad, path, offset, _) = damaged_log_and_frames(dir);
        (log, bad, path, offset)
    }

    /// [`damaged_log`] and each append's frame offset.
    fn damaged_log_and_frames(
        dir: &std::path::Path,
    ) -> (Log, usize, std::path::PathBuf, u64, Vec<u64>) {
        let frames = log_of(dir, 3 * MIN_BYTES / 2);
        let bad = frames.len() * 4 / 5;
        let at = frames[bad];
        let base = at / SEGMENT * SEGMENT;
        let path = dir.join(crate::layout::segment_file(base));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(at - base) as usize + 150] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let log = Options::new().segment_size(SEGMENT).open(dir).unwrap();
        (log, bad, path, at - base, frames)
    }

    /// `error` reports damage in segment file `path` at `offset`.
    fn assert_corrupt_at(error: Option<Error>, path: &std::path::Path, offset: u64) {
        match error {
            Some(Error::Corrupt {
                segment, offset: o, ..
            }) => {
                assert_eq!(segment, path);
                assert_eq!(o, offset);
            }
            other => panic!("expected the damage to be reported, got {other:?}"),
        }
    }

    /// A closed log of 1 MiB segments holding about `bytes` of 200-byte
    /// frames over 7 streams; returns each append's frame offset.
    fn log_of(dir: &std::path::Path, bytes: u64) -> Vec<u64> {
        let log = Options::new()
            .segment_size(SEGMENT)
            .durability(Durability::None)
            .open(dir)
            .unwrap();
        let mut frames = Vec::new();
        for i in 0..bytes / 208 {
            let payload = vec![(i % 251) as u8; 128];
            let r = log
                .append(
                    &format!("s-{}", i % 7),
                    ExpectedVersion::Any,
                    &[EventData::new("E", payload)],
                )
                .unwrap();
            frames.push(r.first_position.frame_offset());
        }
        log.close().unwrap();
        frames
    }

    fn replayed(log: &Log, from: Position) -> (Events, Result<Position, Error>) {
        let mut seen = Vec::new();
        let result = log.replay(from, |e| {
            seen.push((e.stream().to_string(), e.version(), e.payload().to_vec()));
        });
        (seen, result)
    }

    #[test]
    fn a_long_replay_skips_only_checksums_its_helper_matched() {
        let _alone = alone();
        let dir = tempfile::tempdir().unwrap();
        let (log, frames) = long_log(dir.path());
        let owned = all_events(&log);
        let (seen, result) = with_helper(|| replayed(&log, Position::START));
        assert_eq!(seen, owned);
        assert_eq!(seen.len(), frames.len());
        assert!(result.is_ok());
        // From the middle of the log: the helper starts after the first frame.
        let mid = frames.len() / 3;
        let (seen, _) = replayed(&log, Position::new(frames[mid], 0));
        assert_eq!(seen, owned[mid..]);
        // A short replay gets no helper.
        no_helper_running();
        let before = TRUSTED.with(|n| n.get());
        let tail = frames.len() - 100;
        let (seen, _) = replayed(&log, Position::new(frames[tail], 0));
        assert_eq!(seen, owned[tail..]);
        assert_eq!(TRUSTED.with(|n| n.get()), before);
    }

    /// `lead` steps over whole frames: from any frame it lands on another
    /// one at least the lead further on (or on the published end, or just
    /// before an end marker), never inside a frame.
    #[test]
    fn a_lead_lands_on_a_frame_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let (log, frames) = long_log(dir.path());
        let shared = &log.view;
        let boundaries: std::collections::HashSet<u64> = frames.iter().copied().collect();
        for &start in frames.iter().step_by(97) {
            let (_, seg) = shared.segment_for(start).unwrap();
            let landed = seg.base() + lead(shared, &seg, start - seg.base(), 4096);
            let at_end = landed == seg.base() + seg.published()
                || seg
                    .bytes(landed - seg.base(), seg.published())
                    .is_some_and(|b| {
                        crate::frame::verify(b, landed, &shared.checksum)
                            == Some(crate::frame::Verified::End)
                    });
            assert!(
                boundaries.contains(&landed) || at_end,
                "lead from {start} landed at {landed}, inside a frame"
            );
            assert!(
                landed >= start + 4096 || at_end,
                "lead from {start} stopped at {landed}"
            );
        }
    }

    /// The replay trusts only the helper's run: with a run published past a
    /// damaged frame (as after a lead), the replay checks the damaged frame
    /// itself and reports it, and it trusts frames of the run only.
    #[test]
    fn frames_before_a_run_are_checked_by_the_replay() {
        let _alone = alone();
        let dir = tempfile::tempdir().unwrap();
        let (log, bad, path, offset, frames) = damaged_log_and_frames(dir.path());
        let from = frames[bad + 10];
        let helper = Arc::new(Ahead::new(frames[0]));
        helper.start_run(from);
        helper.run.to.store(frames[bad + 200], Ordering::Release);
        let mut walker = crate::read::Walker::new(Arc::clone(&log.view), Position::START);
        walker.set_ahead_for_tests(Arc::clone(&helper));
        let before = TRUSTED.with(|n| n.get());
        let mut seen = 0;
        let result = crate::read::replay_with(&log.view, &mut walker, |_| seen += 1);
        assert_eq!(
            seen, bad,
            "every event before the damaged frame, none after"
        );
        assert_corrupt_at(result.err(), &path, offset);
        assert_eq!(
            TRUSTED.with(|n| n.get()),
            before,
            "no frame before the run trusted"
        );

        // From inside the run on, the run's frames are trusted.
        let mut walker =
            crate::read::Walker::new(Arc::clone(&log.view), Position::new(frames[bad + 5], 0));
        walker.set_ahead_for_tests(helper);
        let before = TRUSTED.with(|n| n.get());
        let result = crate::read::replay_with(&log.view, &mut walker, |_| ());
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            TRUSTED.with(|n| n.get()) - before,
            190,
            "the run's frames, no more"
        );
    }

    /// A damaged frame far into a long replay: the helper stops at it, the
    /// replay checks it itself and reports it, exactly there, after every
    /// event before it.
    #[test]
    fn a_damaged_frame_past_the_helper_is_still_caught() {
        let _alone = alone();
        let dir = tempfile::tempdir().unwrap();
        let (log, bad, path, offset) = damaged_log(dir.path());
        let (seen, result) = with_helper(|| replayed(&log, Position::START));
        assert_eq!(seen.len(), bad);
        assert_corrupt_at(result.err(), &path, offset);
    }

    /// `read_all` starts a detached helper after its first event; damage
    /// far into the log is still reported where it is, after every event
    /// before it.
    #[test]
    fn read_all_gets_a_helper_and_still_reports_damage() {
        let _alone = alone();
        let dir = tempfile::tempdir().unwrap();
        let (log, bad, path, offset) = damaged_log(dir.path());
        let (seen, failure) = with_helper(|| {
            let mut seen = Vec::new();
            let mut failure = None;
            for event in log.read_all(Position::START).unwrap() {
                match event {
                    Ok(e) => seen.push((e.stream().to_string(), e.version(), e.payload().to_vec())),
                    Err(e) => failure = Some(e),
                }
            }
            (seen, failure)
        });
        // Every event before the damaged frame, as a plain replay hands out.
        let (before, _) = replayed(&log, Position::START);
        assert_eq!(seen.len(), bad);
        assert_eq!(seen, before);
        assert_corrupt_at(failure, &path, offset);
    }

    /// A filtered subscription catching up passes over most frames whole,
    /// where the checksum is nearly all the work: it gets a helper too, and
    /// hands out exactly the matching events.
    #[test]
    fn a_subscription_catching_up_gets_a_helper() {
        let _alone = alone();
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = long_log(dir.path());
        let want: Events = all_events(&log)
            .into_iter()
            .filter(|(stream, _, _)| stream == "s-3")
            .collect();
        let got = with_helper(|| {
            let mut sub = log
                .subscribe_all(Position::START)
                .unwrap()
                .filter(crate::Filter::stream_prefix("s-3"));
            let mut got = Vec::new();
            while let Some(e) = sub
                .next_timeout(std::time::Duration::from_millis(100))
                .unwrap()
            {
                got.push((e.stream().to_string(), e.version(), e.payload().to_vec()));
            }
            got
        });
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }

    /// Helpers never outnumber the spare CPUs, whoever asks; a short read
    /// gets none.
    #[test]
    fn no_more_helpers_than_spare_cpus() {
        let _alone = alone();
        no_helper_running();
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = long_log(dir.path());
        let spare = std::thread::available_parallelism().map_or(0, |n| n.get() - 1);
        let held: Vec<HelperSlot> = (0..=spare)
            .filter_map(|_| HelperSlot::take(&log.view, 0))
            .collect();
        assert!(
            held.len() <= spare,
            "{} helpers for {spare} spare CPUs",
            held.len()
        );
        drop(held);
        let end = log.view.watch.end();
        assert!(HelperSlot::take(&log.view, end - MIN_BYTES / 2).is_none());
    }
}
