//! `seglog tail DIR`: the last events of a log, and with `-f` each new one
//! as the writer appends it, beside the running service.
//!
//! The last N events are found without reading the log from its start.
//! Positions only grow, and a segment's file is named by its first
//! offset, so the newest segments are read (from their start, up to the
//! end published when the command began), newest first, until N events
//! are kept. Cost: the newest segments that hold N matching events, so
//! for the usual N one segment at most (64 MiB by default) however long
//! the log is. A `--type` that
//! matches rarely may walk further back, up to the whole log. `--stream`
//! reads that stream backward through its index instead: its last N
//! events cost N events and one index interval of back-links.
//!
//! `-f` then subscribes from just after the last event read, so no event
//! is shown twice or missed, and writes each event out as it comes (a
//! pipe sees it at once). It stops cleanly at SIGINT or SIGTERM, and when
//! the reader of its output leaves (`| head -3`): at the next event, or
//! within [`WAIT`] when the log is quiet.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use seglog::{Error, Position, Reader, RecordedEvent, Subscription};

use super::LogArgs;
use super::event::{PayloadArg, Printer};
use super::filter::Select;
use crate::failure::Failure;
use crate::out::Out;

/// The most events `-n` may ask for: tail holds them in memory (use
/// `dump --from` for more).
const MAX_EVENTS: u64 = 1_000_000;

/// Longest a follower waits for an event before it looks whether it was
/// told to stop.
const WAIT: Duration = Duration::from_millis(100);

// The flags of `seglog tail` (its help is the variant's doc comment in
// main.rs).
#[derive(Args)]
pub(crate) struct TailCommand {
    #[command(flatten)]
    log: LogArgs,
    /// Show the last N events (at most 1,000,000).
    #[arg(
        short = 'n',
        long = "events",
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(0..=MAX_EVENTS)
    )]
    events: u64,
    /// Then follow: show each new event as it is appended, until Ctrl-C,
    /// SIGTERM or the reader of the output leaves.
    #[arg(short = 'f', long)]
    follow: bool,
    #[command(flatten)]
    select: Select,
    /// How payloads are shown.
    #[arg(long, value_enum, default_value_t)]
    payload: PayloadArg,
}

impl TailCommand {
    pub(crate) fn run(&self, out: &mut Out) -> Result<(), Failure> {
        // Before the log opens: a signal while it opens stops cleanly too.
        let stop = if self.follow {
            Some(Stop::on_signals()?)
        } else {
            None
        };
        let reader = self.log.open()?;
        let (last, subscription) = match &self.select.stream {
            Some(name) => self.stream_tail(&reader, name)?,
            None => self.log_tail(&reader)?,
        };
        let mut printer = Printer::new(out, self.payload);
        for e in &last {
            printer.event(out, e)?;
        }
        match (stop, subscription) {
            (Some(stop), Some(subscription)) => {
                printer.flush(out)?;
                out.flush()?;
                let subscription = subscription.filter(self.select.type_filter());
                self.follow(out, &mut printer, subscription, &stop)
            }
            _ => printer.finish(out),
        }
    }

    /// The last events of the whole log, and with `-f` a subscription
    /// from just after the last event read.
    fn log_tail(
        &self,
        reader: &Reader,
    ) -> Result<(VecDeque<RecordedEvent>, Option<Subscription>), Failure> {
        let dir = &self.log.dir;
        let log_error = |e| Failure::from_log(dir, e);
        if self.events == 0 && !self.follow {
            return Ok((VecDeque::new(), None));
        }
        let end = reader.refresh().map_err(log_error)?;
        let (last, resume) = last_events(reader, dir, end, self.events, &self.select)?;
        let subscription = match self.follow {
            true => Some(reader.subscribe_all(resume).map_err(log_error)?),
            false => None,
        };
        Ok((last, subscription))
    }

    /// The last events of stream `name`, newest found first by a backward
    /// read, and with `-f` a subscription to the versions after them.
    fn stream_tail(
        &self,
        reader: &Reader,
        name: &str,
    ) -> Result<(VecDeque<RecordedEvent>, Option<Subscription>), Failure> {
        let dir = &self.log.dir;
        let log_error = |e| Failure::from_log(dir, e);
        let mut last = VecDeque::new();
        let version = reader.stream_version(name).map_err(log_error)?;
        match version {
            // A stream not there yet may come: a follower waits for it.
            None if !self.follow => {
                return Err(Failure::failed(format!(
                    "no stream {name} in {}",
                    dir.display()
                )));
            }
            None => {}
            Some(_) if self.events == 0 => {}
            Some(v) => {
                for e in reader.read_stream_backward(name, v).map_err(log_error)? {
                    let e = e.map_err(log_error)?;
                    if self.select.keeps_type(&e) {
                        last.push_front(e);
                        if last.len() as u64 >= self.events {
                            break;
                        }
                    }
                }
            }
        }
        let subscription = match self.follow {
            true => {
                let next = version.map_or(0, |v| v + 1);
                Some(reader.subscribe_stream(name, next).map_err(log_error)?)
            }
            false => None,
        };
        Ok((last, subscription))
    }

    /// Shows each event the subscription hands out, written out at once,
    /// until `stop` says so or the output's reader leaves (a closed pipe
    /// is a [`Failure`] of status 0, as for every command).
    fn follow(
        &self,
        out: &mut Out,
        printer: &mut Printer,
        mut subscription: Subscription,
        stop: &Stop,
    ) -> Result<(), Failure> {
        while !stop.signalled() {
            let next = subscription
                .next_timeout(WAIT)
                .map_err(|e| Failure::from_log(&self.log.dir, e))?;
            match next {
                Some(e) if self.select.keeps(&e) => {
                    printer.event(out, &e)?;
                    printer.flush(out)?;
                    out.flush()?;
                }
                Some(_) => {}
                None if output_closed() => return Ok(()),
                None => {}
            }
        }
        Ok(())
    }
}

/// The last `n` events below `end` that `select` keeps, oldest first, and
/// the position just after the last event below `end` (kept or not): where
/// a follower goes on.
fn last_events(
    reader: &Reader,
    dir: &Path,
    end: Position,
    n: u64,
    select: &Select,
) -> Result<(VecDeque<RecordedEvent>, Position), Failure> {
    let log_error = |e| Failure::from_log(dir, e);
    let mut kept: VecDeque<RecordedEvent> = VecDeque::new();
    let mut resume = None;
    let mut upper = end;
    for base in segment_bases(dir, end)?.into_iter().rev() {
        if kept.len() as u64 >= n && resume.is_some() {
            break;
        }
        // A segment's base names no event: a read from it starts at the
        // segment's first frame.
        let from: Position = base
            .to_string()
            .parse()
            .map_err(|e: Error| Failure::failed(e.to_string()))?;
        let read = match reader.read_all(from) {
            // Retention removed it (and those before it) meanwhile.
            Err(Error::BeforeLogStart { .. }) => break,
            other => other.map_err(log_error)?,
        };
        let need = n - kept.len() as u64;
        let mut window = VecDeque::new();
        let mut last_here = None;
        for e in read {
            let e = e.map_err(log_error)?;
            if e.position() >= upper {
                break;
            }
            last_here = Some(e.next_position());
            if select.keeps(&e) {
                window.push_back(e);
                if window.len() as u64 > need {
                    window.pop_front();
                }
            }
        }
        while let Some(e) = window.pop_back() {
            kept.push_front(e);
        }
        // The newest segment holding an event says where a follower goes on.
        resume = resume.or(last_here);
        upper = from;
    }
    Ok((kept, resume.unwrap_or_else(|| reader.log_start())))
}

/// The bases of the log's segment files below `end`, oldest first.
fn segment_bases(dir: &Path, end: Position) -> Result<Vec<u64>, Failure> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    let mut bases: Vec<u64> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let digits = name.to_str()?.strip_suffix(".seg")?;
            (digits.len() == 20).then(|| digits.parse::<u64>().ok())?
        })
        .filter(|&base| base < end.frame_offset())
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Why a follower stops: SIGINT or SIGTERM.
struct Stop {
    signalled: Arc<AtomicBool>,
}

impl Stop {
    /// Installs handlers for SIGINT and SIGTERM (the bridge's) on a
    /// thread of its own, which sets a flag the follower looks at.
    fn on_signals() -> Result<Stop, Failure> {
        let failed = |e: std::io::Error| Failure::failed(format!("cannot watch for signals: {e}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(failed)?;
        let signal = {
            let _in_runtime = runtime.enter();
            crate::bridge::stop::stop_signal().map_err(Failure::failed)?
        };
        let signalled = Arc::new(AtomicBool::new(false));
        let set = Arc::clone(&signalled);
        std::thread::Builder::new()
            .name("seglog-signals".into())
            .spawn(move || {
                runtime.block_on(signal);
                set.store(true, Ordering::SeqCst);
            })
            .map_err(failed)?;
        Ok(Stop { signalled })
    }

    fn signalled(&self) -> bool {
        self.signalled.load(Ordering::SeqCst)
    }
}

/// Whether stdout is a pipe whose reader has left: a quiet log would
/// otherwise keep a follower running until its next event.
fn output_closed() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(ready) if ready > 0 => fds
            .first()
            .is_some_and(|fd| fd.revents().intersects(PollFlags::ERR | PollFlags::HUP)),
        _ => false,
    }
}
