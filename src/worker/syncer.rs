//! The worker's sync thread. A sync (the refresh cycle, or a queued
//! `sync`) runs here with its own store connection and its own Hetzner
//! client; the rate budget is shared through the store, as it is between
//! processes (a full listing's parallel page fetchers each open their
//! own). Listing 3,000 servers takes 60 requests, seconds on a slow link
//! even `sync_parallel` at once: on the worker loop itself that would
//! hold every other command, a `console` included, until the last page.
//!
//! One sync at a time. A full sync stores each page as it comes and
//! removes rows only after the whole listing was seen (`cloud::sync`); a
//! row the worker stored or removed after the page was requested
//! ([`Fresh`]) is left as the worker wrote it.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::cloud::{Cloud, Fresh, sync};
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::output::TerminalProgress;
use crate::store::CommandId;
use crate::verb::CommandLine;

/// The queued `sync` command a sync runs for, with what the worker needs
/// to close it or retry it.
pub struct Queued {
    pub id: CommandId,
    pub line: CommandLine,
    pub attempts: i64,
    pub lease_until: i64,
}

/// A sync running on its thread.
pub struct Syncing {
    handle: JoinHandle<Result<sync::Summary, Error>>,
    /// `None` for the refresh cycle.
    pub command: Option<Queued>,
    /// The refresh cycle's number, for the log.
    pub cycle: u64,
}

/// Something that wakes the worker loop from another thread.
pub type Poke = Arc<dyn Fn() + Send + Sync>;

impl Syncing {
    /// Starts `mode` on a new thread; `poke` wakes the worker when it ends.
    pub fn spawn(
        home: &Home,
        settings: &Settings,
        mode: sync::Mode<'static>,
        command: Option<Queued>,
        cycle: u64,
        fresh: Fresh,
        poke: Poke,
    ) -> Result<Syncing, Error> {
        let home = home.clone();
        let settings = settings.clone();
        // The refresh cycle is background work and stops at the reserve
        // kept for commands; a `sync` a panel queued is one of those
        // commands (all of its queued twins and `sync NAME`s ride on it),
        // and behind the reserve it would wait as long as the queue is busy.
        let priority = if command.is_some() {
            Priority::Command
        } else {
            Priority::Background
        };
        let handle = std::thread::Builder::new()
            .name("hcc-sync".into())
            .spawn(move || {
                let result = Cloud::open(&home, &settings, priority).and_then(|mut cloud| {
                    sync::run_beside(&mut cloud, mode, &fresh, &mut TerminalProgress::new())
                });
                poke();
                result
            })
            .map_err(|e| Error::Failed(format!("cannot start the sync thread: {e}")))?;
        Ok(Syncing {
            handle,
            command,
            cycle,
        })
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the thread (at once when [`Syncing::is_finished`]); a
    /// panic on it is a failed sync, not a dead worker.
    pub fn join(self) -> (Option<Queued>, u64, Result<sync::Summary, Error>) {
        let result = self.handle.join().unwrap_or_else(|_| {
            Err(Error::Failed(
                "the sync thread stopped unexpectedly (see the log above)".into(),
            ))
        });
        (self.command, self.cycle, result)
    }
}
