//! Commands that take many requests in a row run on a thread of their
//! own, with their own store connection and Hetzner client (the rate
//! budget is shared through the store): `change-type` shuts the server
//! down, waits for it to be off, changes the type and starts it again,
//! minutes on a slow shutdown, while the worker loop goes on with every
//! other server's commands. Its progress is written to the command's
//! `result` as it goes, so that a retry after a crash knows whether the
//! server was running before.

use std::thread::JoinHandle;

use serde_json::{Value, json};

use super::syncer::{Poke, Queued};
use crate::cloud::Cloud;
use crate::cloud::manage::{self, Step};
use crate::config::{Settings, WalCheckpoints};
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::store::Store;

/// `change-type`'s arguments.
pub struct Resize {
    pub name: String,
    pub server_type: String,
    pub keep_disk: bool,
}

/// A command running on its thread.
pub struct Threaded {
    handle: JoinHandle<Result<Value, Error>>,
    pub queued: Queued,
    /// Its server: busy for the server's other commands until it ends.
    pub target: String,
}

impl Threaded {
    /// Starts `change-type` for `queued`; `poke` wakes the worker when it
    /// ends.
    pub fn change_type(
        home: &Home,
        settings: &Settings,
        queued: Queued,
        resize: Resize,
        poke: Poke,
    ) -> Result<Threaded, Error> {
        let home = home.clone();
        let settings = settings.clone();
        let id = queued.id;
        let target = resize.name.clone();
        let handle = std::thread::Builder::new()
            .name("hcc-change-type".into())
            .spawn(move || {
                let result = Cloud::open(&home, &settings, Priority::Command)
                    .and_then(|mut cloud| run(&home, &mut cloud, id, &resize));
                poke();
                result
            })
            .map_err(|e| Error::Failed(format!("cannot start a command thread: {e}")))?;
        Ok(Threaded {
            handle,
            queued,
            target,
        })
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the thread (at once when [`Threaded::is_finished`]); a
    /// panic on it fails the command, not the worker.
    pub fn join(self) -> (Queued, Result<Value, Error>) {
        let result = self.handle.join().unwrap_or_else(|_| {
            Err(Error::Failed(
                "the command's thread stopped unexpectedly (see the log above)".into(),
            ))
        });
        (self.queued, result)
    }
}

fn run(
    home: &Home,
    cloud: &mut Cloud,
    id: crate::store::CommandId,
    resize: &Resize,
) -> Result<Value, Error> {
    // An earlier attempt's progress: whether the server was running
    // before it was shut down.
    let was_running = cloud
        .store
        .command_view(id)?
        .and_then(|c| c.result)
        .and_then(|r| serde_json::from_str::<Value>(&r).ok())
        .and_then(|r| r["was_running"].as_bool());
    // Progress goes through a connection of its own: `change_type` holds
    // the cloud (and its store) meanwhile.
    let progress = Store::open(&home.db_path())?;
    if cloud.settings.wal_checkpoints == WalCheckpoints::External {
        progress.leave_checkpoints()?;
    }
    let mut report = |step: Step, was_running: bool| {
        let line = json!({"step": step.words(), "was_running": was_running});
        if let Err(err) = progress.record_progress(id, &line.to_string()) {
            super::warn(&format!("command {id}: cannot record its progress: {err}"));
        }
        super::log(&format!(
            "command {id} `change-type {}`: {}",
            resize.name,
            step.words()
        ));
    };
    let resized = manage::change_type(
        cloud,
        &resize.name,
        &resize.server_type,
        resize.keep_disk,
        was_running,
        &mut report,
    )?;
    Ok(json!({
        "server_id": resized.server_id,
        "action": "change_type",
        "server_type": resized.server_type,
        "restarted": resized.restarted,
        "forced": resized.forced,
        "status": resized.status,
    }))
}
