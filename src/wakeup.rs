//! Wake-ups without polling: inotify (through notify) on `spool/new` and on
//! the state directory's `hcc.db-wal`.
//!
//! Every commit by any process (hcc, PHP's PDO, the sqlite3 CLI) writes to
//! the WAL file, and every spool file arrives by a rename into `spool/new`.
//! The folder is watched, not the WAL file itself, because SQLite removes
//! and recreates that file. An event only says "look again": callers re-read
//! the tables and the spool after each wake-up, since backends may drop or
//! merge events. To wait without a race, create the `Wakeup` first, then
//! check, then wait: anything that changes after creation is queued. After
//! a wake-up that found nothing, look once more [`FOLLOW_UP`] later.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::Error;
use crate::home::Home;

pub struct Wakeup {
    // Dropping the watcher ends the watch; it is kept for that alone.
    _watcher: RecommendedWatcher,
    events: Receiver<()>,
    poke: SyncSender<()>,
}

impl Wakeup {
    pub fn new(home: &Home) -> Result<Wakeup, Error> {
        let (tx, events) = sync_channel(1);
        let poke = tx.clone();
        let wal_name = home.wal_file_name();
        let spool_new = home.spool_new();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let relevant = match &event {
                Ok(event) => is_relevant(event, wal_name, &spool_new),
                // A failed or overflowed watch: rescan to be safe.
                Err(_) => true,
            };
            if relevant {
                signal(&tx);
            }
        })
        .map_err(|e| watch_error(home.root(), e))?;
        watcher
            .watch(home.root(), RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(home.root(), e))?;
        watcher
            .watch(&home.spool_new(), RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&home.spool_new(), e))?;
        Ok(Wakeup {
            _watcher: watcher,
            events,
            poke,
        })
    }

    /// Something that wakes a waiter from another thread (a signal
    /// handler asking the worker to stop).
    pub fn poker(&self) -> impl Fn() + Send + Sync + 'static {
        let tx = self.poke.clone();
        move || signal(&tx)
    }

    /// Blocks until something may have changed or `timeout` passes.
    /// Returns false on timeout.
    pub fn wait(&self, timeout: Duration) -> bool {
        let woken = self.events.recv_timeout(timeout).is_ok();
        // Coalesce whatever else arrived meanwhile: one re-read covers it.
        while self.events.try_recv().is_ok() {}
        woken
    }
}

/// How soon to look again after a wake-up that found nothing new. A commit
/// writes the WAL (the event) and only then publishes it in the shared
/// memory index, which inotify cannot see; a look right after the event may
/// be a moment early, and no further event follows. One more look shortly
/// after closes that gap, without polling while nothing happens.
pub const FOLLOW_UP: Duration = Duration::from_millis(25);

/// One pending signal is enough; more would only repeat the same re-read.
fn signal(tx: &SyncSender<()>) {
    match tx.try_send(()) {
        Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
    }
}

fn is_relevant(event: &Event, wal_name: &str, spool_new: &Path) -> bool {
    if event.need_rescan() {
        return true;
    }
    event.paths.iter().any(|path| {
        if path.parent() == Some(spool_new) {
            // A rename or write into spool/new; reading a file is not news.
            !matches!(event.kind, EventKind::Access(_))
        } else if path.file_name().is_some_and(|name| name == wal_name) {
            // A commit writes to the WAL (IN_MODIFY). A reader also opens it
            // read-write and closes it (IN_CLOSE_WRITE) without writing:
            // that must not wake anyone.
            matches!(
                event.kind,
                EventKind::Modify(ModifyKind::Data(_)) | EventKind::Create(_)
            )
        } else {
            false
        }
    })
}

fn watch_error(path: &Path, err: notify::Error) -> Error {
    let hint = if matches!(err.kind, notify::ErrorKind::MaxFilesWatch) {
        " (raise fs.inotify.max_user_watches or max_user_instances)"
    } else {
        ""
    };
    Error::Watch(format!(
        "cannot watch `{}` for changes: {err}{hint}",
        path.display()
    ))
}
