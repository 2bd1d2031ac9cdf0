//! Running one queued command against Hetzner without waiting for it: the
//! first request goes out at once, and what it started (actions) is handed
//! back for the worker's shared poll. Commands that finish with their
//! first request (`console`, `notify`, `sync NAME`) are done at once; a
//! full `sync` is handed to the worker's sync thread.

use serde_json::{Value, json};

use super::threaded::Resize;
use crate::cloud::manage;
use crate::cloud::server::{self, Creation};
use crate::cloud::{Cloud, console, sync};
use crate::error::Error;
use crate::hetzner::wire::Action;
use crate::store::CommandId;
use crate::verb::{Command, CommandLine, Manage};

/// What starting a command led to.
pub enum Started {
    /// Finished; the result to record.
    Done(Value),
    /// These actions run at Hetzner; when all succeed, `server_id` is
    /// refreshed and the command is done with `result`.
    Waiting {
        actions: Vec<Action>,
        server_id: Option<i64>,
        result: Value,
    },
    /// A full sync: the worker runs it on its own thread, so other
    /// commands go on meanwhile.
    Sync,
    /// `change-type`: many requests in a row, on a thread of its own.
    ChangeType(Resize),
}

/// The server a command is about, for keeping one server's commands in
/// order; `None` for commands about no server (`sync`, `notify`).
pub fn target(line: &CommandLine) -> Option<String> {
    line.command.server().map(str::to_string)
}

/// What a queued `sync` records as its result.
pub fn sync_result(summary: &sync::Summary) -> Value {
    json!({"sync": summary.mode, "servers": summary.servers,
           "added": summary.added, "updated": summary.updated,
           "removed": summary.removed})
}

/// Is `line` a full sync (`sync` without a name)?
pub fn is_full_sync(line: &CommandLine) -> bool {
    line.command == Command::Sync(None)
}

/// Starts `line`, queued as `command`. `attempt` counts from 1; a later attempt may find what
/// an earlier, interrupted one already did.
pub fn start(
    cloud: &mut Cloud,
    line: &CommandLine,
    command: CommandId,
    attempt: i64,
) -> Result<Started, Error> {
    if !cloud.settings.queue_allows(&line.cmd) {
        return Err(Error::Refused(format!(
            "`{}` is not allowed from the queue (setting queue_verbs)",
            line.cmd
        )));
    }
    match &line.command {
        Command::Power(power, name) => {
            let (server, action) = server::begin_power(cloud, *power, name)?;
            Ok(Started::Waiting {
                result: json!({"server_id": server.id, "action": action.command}),
                actions: vec![action],
                server_id: Some(server.id),
            })
        }
        Command::Console(name) => {
            // A panel asking for a suspended customer's console: refused
            // here as hcc serve refuses it (`hcc resume NAME` lifts it).
            if cloud.store.is_suspended(name)? {
                return Err(Error::Refused(format!(
                    "consoles of `{name}` are suspended (hcc resume {name})"
                )));
            }
            let console = console::fetch_managed(cloud, name)?;
            // The credentials are in the row; the result says only when.
            Ok(Started::Done(
                json!({"server_id": console.server_id, "console_at": console.issued_at}),
            ))
        }
        Command::Create(new) => {
            let request = server::create_request(
                cloud,
                &new.name,
                new.server_type.as_deref(),
                new.image.as_deref(),
                new.location.as_deref(),
                Some(command.get()),
            );
            match server::begin_create(cloud, &request, attempt > 1)? {
                Creation::Started {
                    server,
                    actions,
                    root_password,
                } => {
                    // Kept for the API key that queued it, which reads it
                    // once (a billing system stores it as the service's).
                    if let Some(password) = &root_password {
                        cloud.store.keep_command_password(command, password)?;
                    }
                    Ok(Started::Waiting {
                        result: json!({"server_id": server.id, "server_type": request.server_type,
                                   "image": request.image, "location": request.location}),
                        actions,
                        server_id: Some(server.id),
                    })
                }
                Creation::Existing(server) => Ok(Started::Done(
                    json!({"server_id": server.id, "existing": true}),
                )),
            }
        }
        Command::Kill(name) => {
            // An earlier attempt may have deleted it already.
            if attempt > 1
                && let Err(err) = cloud.client.server_by_name(name)
                && err.code() == Some("not_found")
            {
                cloud.store.remove_server_name(name)?;
                cloud.end_departed_consoles_of(name)?;
                return Ok(Started::Done(json!({"deleted": name, "already": true})));
            }
            let (id, action) = server::begin_kill(cloud, name)?;
            Ok(Started::Waiting {
                result: json!({"server_id": id, "action": action.command}),
                actions: vec![action],
                server_id: None,
            })
        }
        Command::Sync(None) => Ok(Started::Sync),
        Command::Sync(Some(name)) => {
            // One server: one request, run at once, on the worker's own
            // client: a client that waits for the budget's reserve or
            // sleeps between retries would hold every other command.
            let summary = sync::run(cloud, sync::Mode::One(name), &mut sync::Silent)?;
            Ok(Started::Done(sync_result(&summary)))
        }
        Command::SetTag(_) | Command::DelTag(_) => Err(Error::Refused(format!(
            "`{}` is an operator's command; run it with the CLI",
            line.cmd
        ))),
        Command::Manage(
            name,
            Manage::ChangeType {
                server_type,
                keep_disk,
            },
        ) => Ok(Started::ChangeType(Resize {
            name: name.clone(),
            server_type: server_type.clone(),
            keep_disk: *keep_disk,
        })),
        Command::Manage(name, manage) => {
            let begun = manage::begin(cloud, name, manage)?;
            // Kept for the API key that queued it, which reads it once.
            if let Some(password) = &begun.root_password {
                cloud.store.keep_command_password(command, password)?;
            }
            Ok(Started::Waiting {
                actions: vec![begun.action],
                server_id: Some(begun.server.id),
                result: begun.result,
            })
        }
        Command::Notify(message) => {
            let ring = cloud.settings.ring_size;
            cloud.store.put_message(message, ring)?;
            Ok(Started::Done(json!({"notified": true})))
        }
    }
}
