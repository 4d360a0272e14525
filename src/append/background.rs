//! The append side's three threads, the sync thread (`commit.rs`), the
//! preparer (`spare.rs`) and the hasher (`hasher.rs`): started by the
//! first append rather than by `open`, so an open that only reads spawns
//! none and its close writes nothing; stopped by the close.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;

use crate::commit::{Msg, lock};
use crate::error::{Error, Result};
use crate::segment::Segment;

use super::AppendSide;
use super::spare::{Preparer, run_preparer};

/// The threads' state.
pub(crate) enum Background {
    /// Not started yet: what they start from.
    Idle(Start),
    Running(Threads),
    /// The handle closed.
    Stopped,
}

/// What the threads start from, as open left it.
pub(crate) struct Start {
    pub(crate) rx: Receiver<Msg>,
    /// The active segment's slot still says `CLEAN` (see
    /// `recovery::Recovered::clean_tail`).
    pub(crate) clean_tail: bool,
    /// The active segment's index file on disk describes all of it.
    pub(crate) index_current: bool,
    pub(crate) active: Arc<Segment>,
}

pub(crate) struct Threads {
    sync: JoinHandle<Result<()>>,
    preparer: Option<JoinHandle<()>>,
    hasher: Option<JoinHandle<()>>,
}

impl AppendSide {
    /// Starts the sync and preparer threads if they are not running yet
    /// (the first append of this handle, under the append side's lock). A
    /// thread that cannot be spawned poisons the log: nothing was written
    /// yet, and nothing can be made durable without it.
    pub(crate) fn start_background(self: &Arc<Self>) -> Result<()> {
        let mut background = lock(&self.background);
        let start = match std::mem::replace(&mut *background, Background::Stopped) {
            Background::Idle(start) => start,
            Background::Stopped => return Err(Error::Closed),
            running => {
                *background = running;
                return Ok(());
            }
        };
        let spawn_err = |e| Error::io(&self.view.dir, e);
        let synced = self.commit.lock_sync_cursor().synced;
        let Start {
            rx,
            clean_tail,
            active,
            ..
        } = start;
        let sync = {
            let side = Arc::clone(self);
            std::thread::Builder::new()
                .name("seglog-sync".into())
                .spawn(move || side.commit.run(&rx, clean_tail))
                .map_err(spawn_err)
        };
        let sync = match sync {
            Ok(sync) => sync,
            Err(e) => {
                self.commit.poison(&e);
                return Err(e);
            }
        };
        let preparer = {
            let side = Arc::clone(self);
            std::thread::Builder::new()
                .name("seglog-prepare".into())
                .spawn(move || side.prepare_ahead(active, synced))
                .map_err(spawn_err)
        };
        let hasher = {
            let side = Arc::clone(self);
            std::thread::Builder::new()
                .name("seglog-chain".into())
                .spawn(move || side.run_hasher(&side.chain))
                .map_err(spawn_err)
        };
        let mut failed = None;
        let mut keep = |spawned: Result<JoinHandle<()>>| match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                self.commit.poison(&e);
                failed.get_or_insert(e);
                None
            }
        };
        let (preparer, hasher) = (keep(preparer), keep(hasher));
        *background = Background::Running(Threads {
            sync,
            preparer,
            hasher,
        });
        failed.map_or(Ok(()), Err)
    }

    fn prepare_ahead(&self, active: Arc<Segment>, cursor: u64) {
        let preparer = Preparer {
            view: &self.view,
            options: &self.options,
            spares: &self.spares,
            commit: &self.commit,
        };
        run_preparer(&preparer, active, cursor);
    }

    /// Syncs everything, marks the tail clean, writes its index file and
    /// stops the threads; nothing to do twice.
    pub(crate) fn shutdown(&self) -> Result<()> {
        let background = std::mem::replace(&mut *lock(&self.background), Background::Stopped);
        let threads = match background {
            Background::Stopped => return Ok(()),
            Background::Idle(start) => return self.close_idle(&start),
            Background::Running(threads) => threads,
        };
        let sent = self.commit.shut_down();
        let synced = threads.sync.join().unwrap_or_else(|_| {
            Err(Error::Poisoned {
                reason: "the sync thread panicked".into(),
            })
        });
        // Nothing is published through this handle from here on.
        self.view.watch.close();
        self.spares.stop();
        if let Some(preparer) = threads.preparer {
            let _ = preparer.join();
        }
        // The watch is closed: its last pass links and records what the
        // close left.
        if let Some(hasher) = threads.hasher {
            let _ = hasher.join();
        }
        if !sent {
            return Err(self.commit.poison_error());
        }
        synced?;
        if self.commit.is_poisoned() {
            return Err(self.commit.poison_error());
        }
        self.write_tail_index()
    }

    /// The close of a handle that appended nothing. After a clean close
    /// the files say so already; after recovery (or for a new log) the
    /// tail is marked clean here, no thread needed.
    fn close_idle(&self, start: &Start) -> Result<()> {
        self.view.watch.close();
        if start.clean_tail && start.index_current {
            return Ok(());
        }
        if !start.clean_tail {
            self.commit.mark_clean()?;
        }
        self.write_tail_index()
    }
}
