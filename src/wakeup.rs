//! Wake-ups without polling: inotify (through notify) on `spool/new` and on
//! the state directory's `hcc.db-wal`.
//!
//! Every commit by any process (hcc, PHP's PDO, the sqlite3 CLI) writes to
//! the WAL file, and every spool file arrives by a rename into `spool/new`.
//! The folder is watched, not the WAL file itself, because SQLite removes
//! and recreates that file. An event only says "look again": callers re-read
//! the tables and the spool after each wake-up, since backends may drop or
//! merge events. To wait without a race, create the `Wakeup` first, then
//! look, then wait: anything that changes after creation is queued. After
//! each wake-up, look once more [`FOLLOW_UP`] later; without any event,
//! look again every [`RESCAN`].
//!
//! [`Wakeup::until`] is the one wake-up loop; `next`, `wait`, the worker and
//! the demo each give it their look and how long they may sleep.

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

    /// The wake-up loop: runs `look` now, then again after each event, a
    /// follow-up after each event, and whenever the timeout the last look
    /// asked for passes, until it returns [`Look::Ready`] or an error.
    pub fn until<T, E>(&self, mut look: impl FnMut(Wake) -> Result<Look<T>, E>) -> Result<T, E> {
        let mut wake = Wake::First;
        loop {
            let timeout = match look(wake)? {
                Look::Ready(value) => return Ok(value),
                Look::Again(timeout) => timeout.min(RESCAN),
                Look::Idle => RESCAN,
            };
            let following_up = wake == Wake::Event;
            let sleep = if following_up {
                timeout.min(FOLLOW_UP)
            } else {
                timeout
            };
            wake = match (self.wait(sleep), following_up) {
                (true, _) => Wake::Event,
                (false, true) => Wake::FollowUp,
                (false, false) => Wake::Timeout,
            };
        }
    }

    /// Blocks until something may have changed or `timeout` passes.
    /// Returns false on timeout.
    fn wait(&self, timeout: Duration) -> bool {
        let woken = self.events.recv_timeout(timeout).is_ok();
        // Coalesce whatever else arrived meanwhile: one re-read covers it.
        while self.events.try_recv().is_ok() {}
        woken
    }
}

/// What started a look: what ended the wait before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// The first look, before any wait.
    First,
    /// An event: something may have changed.
    Event,
    /// The look [`FOLLOW_UP`] after an event, when no other event came.
    FollowUp,
    /// The timeout the last look asked for passed without an event.
    Timeout,
}

/// What a look decided.
pub enum Look<T> {
    /// Done: [`Wakeup::until`] returns the value.
    Ready(T),
    /// Look again after the next event, or after this long at the latest
    /// (and [`RESCAN`] at the latest).
    Again(Duration),
    /// Nothing is due: look again after the next event, or after [`RESCAN`].
    Idle,
}

/// The longest sleep without any event: a safety net for dropped events,
/// not the way work is found.
const RESCAN: Duration = Duration::from_secs(30);

/// How soon to look again after a wake-up. A commit writes the WAL (the
/// event) and only then publishes it in the shared memory index, which
/// inotify cannot see; a look right after the event may be a moment early,
/// and the events of commits that land meanwhile are coalesced with it. One
/// more look shortly after closes that gap, without polling while nothing
/// happens.
const FOLLOW_UP: Duration = Duration::from_millis(25);

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop's schedule, driven by pokes instead of file events: an
    /// event wakes the next look, a follow-up comes after it although the
    /// look asked for a long sleep, and a timeout ends a quiet wait.
    #[test]
    fn an_event_wakes_a_look_and_a_follow_up_comes_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path().join("home")).unwrap();
        let wakeup = Wakeup::new(&home).unwrap();
        let poke = wakeup.poker();
        let long = Duration::from_secs(20);
        let mut seen = Vec::new();
        let done = wakeup.until(|wake| -> Result<Look<&str>, Error> {
            seen.push(wake);
            Ok(match seen.len() {
                1 => {
                    poke();
                    Look::Again(long)
                }
                2 => Look::Again(long),
                3 => Look::Again(Duration::ZERO),
                _ => Look::Ready("done"),
            })
        });
        assert_eq!(done.unwrap(), "done");
        assert_eq!(
            seen,
            [Wake::First, Wake::Event, Wake::FollowUp, Wake::Timeout]
        );
    }

    #[test]
    fn an_error_ends_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path().join("home")).unwrap();
        let wakeup = Wakeup::new(&home).unwrap();
        let ended: Result<(), &str> = wakeup.until(|_| Err("stop"));
        assert_eq!(ended, Err("stop"));
    }
}
