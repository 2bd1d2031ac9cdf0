//! Settings re-read while `hcc serve` runs: on SIGHUP, and when
//! `config.json` changes (`hcc config set` renames a new file over it; an
//! editor may write it in place). Request threads take the current
//! snapshot at each request, so a request sees one version of the settings
//! from start to end and the next request sees the new one. A file that
//! does not load (a broken hand edit) leaves the old settings in place
//! with one log line.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use notify::event::EventKind;
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};

use super::shared::{Settings, log};
use crate::config::{self, RESTART_KEYS, WORKER_KEYS};
use crate::home::Home;
use crate::pickup;

/// Quiet time after the last change before the file is read: an editor's
/// save is several events, and a write in place may be seen half done.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Why settings are read once more as `hcc serve` starts: a change
/// between the first read and the start of the watch.
pub const SINCE_START: &str = "config.json changed since it was read";

/// The settings every request thread reads.
pub struct Live {
    current: RwLock<Arc<Settings>>,
}

impl Live {
    pub fn new(settings: Arc<Settings>) -> Live {
        Live {
            current: RwLock::new(settings),
        }
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<Settings> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, settings: Arc<Settings>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = settings;
    }
}

/// What asks for a re-read: SIGHUP, and changes to `config.json`.
pub struct Triggers {
    hup: Arc<AtomicBool>,
    changed: Arc<Mutex<Option<Instant>>>,
    // Dropping the watcher ends the watch; it is kept for that alone.
    _watcher: Option<RecommendedWatcher>,
}

impl Triggers {
    /// SIGHUP is always heard; a directory that cannot be watched (inotify
    /// limits) leaves SIGHUP alone, with a warning.
    pub fn start(home: &Home) -> Result<Triggers, crate::error::Error> {
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone()).map_err(|e| {
            crate::error::Error::Failed(format!("cannot install signal handlers: {e}"))
        })?;
        let changed = Arc::new(Mutex::new(None));
        let watcher = match watch(home, changed.clone()) {
            Ok(watcher) => Some(watcher),
            Err(err) => {
                log(&format!(
                    "warning: cannot watch {} for changes ({err}): settings are re-read on SIGHUP only",
                    home.root().display()
                ));
                None
            }
        };
        Ok(Triggers {
            hup,
            changed,
            _watcher: watcher,
        })
    }

    /// Why the settings should be re-read now, if they should.
    pub fn due(&self) -> Option<&'static str> {
        if self.hup.swap(false, Ordering::SeqCst) {
            // The file's own events are covered by this read.
            self.changed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            return Some("SIGHUP");
        }
        let mut changed = self.changed.lock().unwrap_or_else(|e| e.into_inner());
        match *changed {
            Some(at) if at.elapsed() >= DEBOUNCE => {
                *changed = None;
                Some("config.json changed")
            }
            _ => None,
        }
    }
}

fn watch(
    home: &Home,
    changed: Arc<Mutex<Option<Instant>>>,
) -> Result<RecommendedWatcher, notify::Error> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        let relevant = match &event {
            // Reading the file (every hcc command does) is not a change.
            Ok(event) => {
                event.need_rescan()
                    || (!matches!(event.kind, EventKind::Access(_))
                        && event
                            .paths
                            .iter()
                            .any(|p| p.file_name() == Some(OsStr::new("config.json"))))
            }
            Err(_) => true,
        };
        if relevant {
            *changed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
    })?;
    // The directory, not the file: a rename replaces the file's inode.
    watcher.watch(home.root(), RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Re-reads the settings into `live`.
pub struct Reloader {
    pub live: Arc<Live>,
    pub public_url: Option<String>,
    pub bound: SocketAddr,
    /// The worker runs in this process (`--worker`).
    pub worker: bool,
}

impl Reloader {
    pub fn reload(&self, why: &str) {
        let old = self.live.get();
        let new = match config::Settings::load(&old.home.config_path()) {
            Ok(config) => Settings::new(
                &old.home,
                config,
                self.public_url.as_deref(),
                self.bound,
                Some(&old),
            ),
            Err(err) => {
                log(&format!(
                    "settings not re-read ({why}): {err}; the settings loaded before stay in force"
                ));
                return;
            }
        };
        if new.config.digest() == old.config.digest() {
            // An event that changed nothing (a touch, the same value set
            // again): a signal still gets its answer.
            if why == "SIGHUP" {
                log("settings re-read (SIGHUP): unchanged");
            }
            return;
        }
        let changed = new.config.changed_from(&old.config);
        let new = Arc::new(new);
        self.live.set(new.clone());
        log(&format!(
            "settings re-read ({why}): {}",
            if changed.is_empty() {
                "no setting changed".to_string()
            } else {
                format!("changed {}", changed.join(", "))
            }
        ));
        let mut fixed: Vec<&str> = changed
            .iter()
            .copied()
            .filter(|k| RESTART_KEYS.contains(k) || (self.worker && WORKER_KEYS.contains(k)))
            .collect();
        if self.public_url.is_some() && changed.contains(&"public_url") {
            fixed.push("public_url (--public-url overrides it)");
        }
        if !fixed.is_empty() {
            log(&format!(
                "these changed settings apply only when hcc serve restarts: {}",
                fixed.join(", ")
            ));
        }
        pickup::publish(&new.home, new.config.digest());
    }
}
