//! The client-area verbs on one managed server (verb/manage.rs): each
//! one Hetzner action, started by [`begin`]; `change-type`, which needs
//! the server off, is a sequence of its own ([`change_type`]). A root
//! password Hetzner hands back is stored at once as the server's newest
//! (`servers.root_password`), before anything else can fail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::server::managed;
use super::{Cloud, refetch};
use crate::error::Error;
use crate::hetzner::wire::{self, Action};
use crate::hetzner::{ActionWait, Waiter};
use crate::verb::Manage;

/// The label a snapshot carries with the name of the server it came from
/// (besides the managed label).
pub const SNAPSHOT_SERVER_LABEL: &str = "hcc-server";

/// A client-area verb started at Hetzner.
pub struct Begun {
    pub server: wire::Server,
    pub action: Action,
    /// `rebuild`, `reset-password`, `enable-rescue`: the new root
    /// password (already stored in `servers`).
    pub root_password: Option<String>,
    /// What the command's result records (never a secret).
    pub result: Value,
}

impl std::fmt::Debug for Begun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Begun")
            .field("server", &self.server.id)
            .field("action", &self.action.id)
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

/// Starts `manage` on server `name` (every verb but `change-type`).
pub fn begin(cloud: &Cloud, name: &str, manage: &Manage) -> Result<Begun, Error> {
    let (server, _) = managed(cloud, name)?;
    let (action, body) = match manage {
        Manage::Rebuild { image } => ("rebuild", json!({ "image": id_or_name(image) })),
        Manage::ResetPassword => ("reset_password", json!({})),
        Manage::EnableRescue { kind } => ("enable_rescue", json!({ "type": kind })),
        Manage::DisableRescue => ("disable_rescue", json!({})),
        Manage::ChangeType {
            server_type,
            keep_disk,
        } => (
            "change_type",
            json!({ "server_type": id_or_name(server_type), "upgrade_disk": !keep_disk }),
        ),
        Manage::SetRdns { ip, hostname } => (
            "change_dns_ptr",
            json!({ "ip": ip.to_string(), "dns_ptr": hostname }),
        ),
        Manage::AttachIso { iso } => ("attach_iso", json!({ "iso": id_or_name(iso) })),
        Manage::DetachIso => ("detach_iso", json!({})),
        Manage::CreateImage { description } => {
            let labels = BTreeMap::from([
                (cloud.label.clone(), "1".to_string()),
                (SNAPSHOT_SERVER_LABEL.to_string(), name.to_string()),
            ]);
            let description = description
                .clone()
                .unwrap_or_else(|| format!("{name} snapshot"));
            (
                "create_image",
                json!({ "type": "snapshot", "description": description, "labels": labels }),
            )
        }
        Manage::EnableBackup => ("enable_backup", json!({})),
        Manage::DisableBackup => ("disable_backup", json!({})),
    };
    let answer = cloud.client.server_action_with(server.id, action, &body)?;
    if let Some(password) = &answer.root_password {
        cloud.store.record_new_root_password(name, password)?;
    }
    let mut result = json!({ "server_id": server.id, "action": answer.action.command });
    if let Some(image) = answer.image.as_ref().and_then(|i| i.get("id")) {
        result["image_id"] = image.clone();
    }
    match manage {
        Manage::Rebuild { image } => result["image"] = json!(image),
        Manage::ChangeType { server_type, .. } => result["server_type"] = json!(server_type),
        Manage::SetRdns { ip, hostname } => {
            result["ip"] = json!(ip.to_string());
            result["dns_ptr"] = json!(hostname);
        }
        _ => {}
    }
    if answer.root_password.is_some() {
        result["root_password_at"] = json!(crate::store::now());
    }
    Ok(Begun {
        server,
        action: answer.action,
        root_password: answer.root_password,
        result,
    })
}

/// A number is an id, anything else a name: Hetzner takes both, but a
/// snapshot has no name, only an id.
fn id_or_name(word: &str) -> Value {
    match word.parse::<u64>() {
        Ok(id) => json!(id),
        Err(_) => json!(word),
    }
}

/// Runs `manage` and waits for its action; the server's row is refreshed.
pub fn run(cloud: &mut Cloud, name: &str, manage: &Manage) -> Result<Begun, Error> {
    let mut begun = begin(cloud, name, manage)?;
    let done = Waiter::new(&cloud.client, ActionWait::default())
        .wait(std::slice::from_ref(&begun.action))?;
    if let Some(action) = done.into_iter().next() {
        begun.action = action;
    }
    if let Some(server) = refetch(cloud, begun.server.id)?.server() {
        begun.result["status"] = json!(server.status);
        begun.server = server;
    }
    Ok(begun)
}

/// A step of `change-type`, as its progress reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    ShuttingDown,
    PoweringOff,
    ChangingType,
    Starting,
}

impl Step {
    pub fn words(self) -> &'static str {
        match self {
            Step::ShuttingDown => "shutting down",
            Step::PoweringOff => "powering off",
            Step::ChangingType => "changing type",
            Step::Starting => "starting",
        }
    }
}

/// What `change-type` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Resized {
    pub server_id: i64,
    pub server_type: String,
    /// It was running before, and was started again.
    pub restarted: bool,
    /// The ACPI shutdown did not end in time: it was powered off hard.
    pub forced: bool,
    pub status: String,
}

/// `change-type NAME TYPE [keep-disk]`: Hetzner changes the type of a
/// server that is off only. A running server is shut down (ACPI), powered
/// off hard when it is still running after `shutdown_timeout`, changed,
/// and started again. `was_running` comes from an earlier attempt that
/// stopped the server and did not finish (its progress said so); `report`
/// hears each step and whether the server was running.
pub fn change_type(
    cloud: &mut Cloud,
    name: &str,
    server_type: &str,
    keep_disk: bool,
    was_running: Option<bool>,
    report: &mut dyn FnMut(Step, bool),
) -> Result<Resized, Error> {
    let (server, _) = managed(cloud, name)?;
    let id = server.id;
    let running = server.status != "off";
    let was_running = was_running.unwrap_or(running);
    let waiter = |cloud: &Cloud, action: &Action| {
        Waiter::new(&cloud.client, ActionWait::default()).wait(std::slice::from_ref(action))
    };
    let mut forced = false;
    if running {
        report(Step::ShuttingDown, was_running);
        let action = cloud.client.server_action(id, "shutdown")?;
        waiter(cloud, &action)?;
        if !wait_until_off(cloud, id, cloud.settings.shutdown_timeout)? {
            report(Step::PoweringOff, was_running);
            let action = cloud.client.server_action(id, "poweroff")?;
            waiter(cloud, &action)?;
            forced = true;
        }
    }
    // A retry may find the type changed already.
    let current = cloud.client.server(id)?.map(|(s, _)| s);
    let changed = current
        .as_ref()
        .and_then(|s| s.server_type.as_ref())
        .is_some_and(|t| t.name == server_type || t.id.to_string() == server_type);
    if !changed {
        report(Step::ChangingType, was_running);
        let body = json!({ "server_type": id_or_name(server_type), "upgrade_disk": !keep_disk });
        let resized = cloud
            .client
            .server_action_with(id, "change_type", &body)
            .map_err(Error::from)
            .and_then(|answer| waiter(cloud, &answer.action).map_err(Error::from));
        // Refused for good (an unknown type, another architecture, a
        // smaller disk): a server that ran runs again; a retry would not.
        if let Err(err) = resized {
            if was_running && !err.is_transient() {
                report(Step::Starting, was_running);
                let action = cloud.client.server_action(id, "poweron")?;
                waiter(cloud, &action)?;
            }
            return Err(err);
        }
    }
    if was_running {
        report(Step::Starting, was_running);
        let action = cloud.client.server_action(id, "poweron")?;
        waiter(cloud, &action)?;
    }
    let status = refetch(cloud, id)?
        .server()
        .map(|s| s.status)
        .unwrap_or_default();
    Ok(Resized {
        server_id: id,
        server_type: server_type.to_string(),
        restarted: was_running,
        forced,
        status,
    })
}

/// Polls the server until it is off; `false` when `timeout` passed first.
fn wait_until_off(cloud: &Cloud, id: i64, timeout: Duration) -> Result<bool, Error> {
    let began = Instant::now();
    let mut n = 0;
    loop {
        match cloud.client.server(id)? {
            Some((server, _)) if server.status == "off" => return Ok(true),
            Some(_) => {}
            None => {
                return Err(Error::Failed(format!(
                    "server {id} disappeared while it shut down"
                )));
            }
        }
        if began.elapsed() >= timeout {
            return Ok(false);
        }
        let pause = crate::hetzner::poll_interval(n).min(timeout.saturating_sub(began.elapsed()));
        std::thread::sleep(pause);
        n += 1;
    }
}
