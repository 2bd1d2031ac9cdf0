//! The worker's checkpoints of the WAL, on a thread of their own. The
//! worker loop commits with checkpoints deferred (`Checkpoints::Deferred`):
//! otherwise the commit that grows the WAL past 1,000 pages copies it back
//! into the database, and the command behind that commit (about every
//! hundredth) waits for it. Here a `PASSIVE` checkpoint runs every
//! [`EVERY`], never waiting for readers or writers, so the WAL stays small
//! without the loop ever paying for it.
//!
//! Not started with `wal_checkpoints = external`: Litestream then owns the
//! checkpoints (see `Store::leave_checkpoints` for why).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::home::Home;
use crate::store::Store;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(100);

/// The checkpoint thread; it stops (after a last checkpoint) when dropped.
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(home: &Home) -> Result<Checkpointer, Error> {
        let store = Store::open(&home.db_path())?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("hcc-checkpoint".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    let last = stopped.load(Ordering::SeqCst);
                    match store.checkpoint() {
                        Ok(()) => failing = false,
                        // Said once, not every half second; a checkpoint
                        // that fails leaves the WAL to grow until one works.
                        Err(err) if !failing => {
                            failing = true;
                            super::warn(&format!("{err}; trying again"));
                        }
                        Err(_) => {}
                    }
                    if last {
                        return;
                    }
                    std::thread::park_timeout(EVERY);
                }
            })
            .map_err(|e| Error::Failed(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}
