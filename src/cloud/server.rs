//! Verbs on one server: `create`, `start`/`stop`/`force`/`reboot`/`reset`,
//! `kill`, `settag`/`deltag` (console credentials: `console.rs`). Each
//! looks the server up by name (one request; power verbs skip it for a
//! server Hetzner described a moment ago), applies the guard, calls the
//! API, waits for the action when asked to, and records the outcome in the
//! `servers` table. They return what happened; the CLI (`cloud_cli`), the
//! worker and `hcc serve` say it their own way.

use std::collections::BTreeMap;

use super::{Cloud, refetch, row};
use crate::error::Error;
use crate::hetzner::wire::Action;
use crate::hetzner::{ActionWait, CreateRequest, Waiter, wire};
use crate::verb::{Power, check_server_name};

/// Looks a managed server up by name.
pub fn managed(cloud: &Cloud, name: &str) -> Result<(wire::Server, serde_json::Value), Error> {
    check_server_name(name).map_err(Error::Input)?;
    let (server, raw) = cloud.client.server_by_name(name)?;
    cloud.recent.remember(&server);
    cloud.guard(&server)?;
    Ok((server, raw))
}

/// Sends `request` for the managed server `name`, which Hetzner described
/// to this process within the last minute when it can ([`super::Recent`]):
/// then it costs one request, not two. A 404 to that request means the
/// server is gone or was replaced under its name since: it is looked up
/// once more and asked again. Power verbs and console credentials, which
/// come in bursts, go this way; the rarer verbs look up every time.
pub fn on_managed<T>(
    cloud: &Cloud,
    name: &str,
    request: impl Fn(&wire::Server) -> Result<T, Error>,
) -> Result<(wire::Server, T), Error> {
    check_server_name(name).map_err(Error::Input)?;
    if let Some(server) = cloud.recent.get(name).filter(|s| cloud.guard(s).is_ok()) {
        match request(&server) {
            Err(Error::Hetzner(err)) if err.code() == Some("not_found") => {
                cloud.recent.forget(name);
            }
            answer => return answer.map(|answer| (server, answer)),
        }
    }
    let (server, _) = managed(cloud, name)?;
    let answer = request(&server)?;
    Ok((server, answer))
}

/// What a power verb did.
pub struct Powered {
    pub server_id: i64,
    pub action: Action,
    /// The server's status: after the action when waited for, else before.
    pub status: String,
}

/// Runs a power verb on a managed server; with `wait`, waits for the
/// action and refreshes the server's row.
pub fn power(cloud: &mut Cloud, verb: Power, name: &str, wait: bool) -> Result<Powered, Error> {
    let (server, action) = begin_power(cloud, verb, name)?;
    let mut status = server.status.clone();
    if wait {
        Waiter::new(&cloud.client, ActionWait::default()).wait(std::slice::from_ref(&action))?;
        if let Some(server) = refetch(cloud, server.id)?.server() {
            status = server.status;
        }
    }
    Ok(Powered {
        server_id: server.id,
        action,
        status,
    })
}

/// Starts a power action on a managed server; returns the server as it
/// was and the running action.
pub fn begin_power(
    cloud: &Cloud,
    verb: Power,
    name: &str,
) -> Result<(wire::Server, Action), Error> {
    on_managed(cloud, name, |server| {
        Ok(cloud.client.server_action(server.id, verb.action())?)
    })
}

/// The label a server created through the queue carries: the id of the
/// command that created it. Only a server with its own command's label is
/// ever taken for that command's earlier attempt.
pub const COMMAND_LABEL: &str = "hcc-command";

/// What `begin_create` did.
pub enum Creation {
    /// Hetzner is building it: these actions run.
    Started {
        server: wire::Server,
        actions: Vec<Action>,
        root_password: Option<String>,
    },
    /// An earlier attempt of the same command already created it (found
    /// by its `hcc-command` label): nothing to do, no second server.
    Existing(wire::Server),
}

/// Checks and creates a server; records it in the table.
///
/// A request from the queue carries the `hcc-command=<id>` label. `retry`:
/// that command ran before (its answer was lost, a worker died meanwhile),
/// so the server may exist already: one with this name and that label is
/// the earlier attempt's result. A server of that name without the label
/// was made by someone else: the name is taken. The CLI's requests carry
/// no such label and never adopt anything.
pub fn begin_create(
    cloud: &mut Cloud,
    request: &CreateRequest,
    retry: bool,
) -> Result<Creation, Error> {
    let name = request.name.as_str();
    check_server_name(name).map_err(Error::Input)?;
    let prefix = cloud.settings.prefix.clone();
    if !crate::server::has_prefix(name, &prefix) {
        return Err(Error::Refused(format!(
            "server name `{name}` must begin with the prefix `{prefix}` (`hcc config get prefix`)"
        )));
    }
    if retry && let Some(existing) = created_earlier(cloud, request)? {
        return Ok(Creation::Existing(existing));
    }
    let known = cloud.store.server_id(name)?;
    match cloud.client.server_by_name(name) {
        Ok((server, _)) => return Err(name_taken(name, server.id)),
        Err(err) if err.code() == Some("not_found") => {}
        Err(err) => return Err(err.into()),
    }
    if let Some((Some(id), _)) = known {
        // Gone at Hetzner but still in the table: the row is stale.
        cloud.store.remove_server_id(id)?;
    }
    cloud.store.mark_creating(name)?;
    let created = match cloud.client.create_server(request) {
        Ok(created) => created,
        Err(err) => {
            // Taken since the look above: by an earlier attempt of this
            // very command whose answer is still on its way, or by
            // someone else.
            if err.code() == Some("uniqueness_error") {
                if let Some(existing) = created_earlier(cloud, request)? {
                    return Ok(Creation::Existing(existing));
                }
                forget_creating(cloud, name)?;
                let id = cloud.client.server_by_name(name).ok().map(|(s, _)| s.id);
                return Err(name_taken(name, id.unwrap_or(0)));
            }
            // A definite refusal (4xx) created nothing: leave no `new` row
            // behind. After a lost answer or a 5xx the server may exist:
            // the row stays, and a retry finds it by its label.
            let refused = matches!(&err, crate::hetzner::Error::Api { status, .. } if (400..500).contains(status));
            if refused {
                forget_creating(cloud, name)?;
            }
            return Err(err.into());
        }
    };
    let server: wire::Server = serde_json::from_value(created.server.clone()).map_err(|e| {
        Error::Hetzner(crate::hetzner::Error::Decode {
            what: "POST /servers".into(),
            detail: e.to_string(),
        })
    })?;
    cloud.store.refresh_server(&row(&server, &created.server))?;
    if let Some(password) = &created.root_password {
        cloud.store.record_root_password(name, password)?;
    }
    let mut actions = vec![created.action.clone()];
    actions.extend(created.next_actions.iter().cloned());
    Ok(Creation::Started {
        server,
        actions,
        root_password: created.root_password,
    })
}

/// The server an earlier attempt of `request`'s command created: the one
/// of its name, carrying its `hcc-command` label. Stored when found.
///
/// Looked up by name (unique in a project), not by the label: command ids
/// are per state directory, so another hcc on the same project, or an
/// earlier database, may have labelled other servers with the same id.
fn created_earlier(
    cloud: &mut Cloud,
    request: &CreateRequest,
) -> Result<Option<wire::Server>, Error> {
    let Some(command) = request.labels.get(COMMAND_LABEL) else {
        return Ok(None);
    };
    match cloud.client.server_by_name(&request.name) {
        Ok((server, raw)) if server.labels.get(COMMAND_LABEL) == Some(command) => {
            cloud.store.refresh_server(&row(&server, &raw))?;
            Ok(Some(server))
        }
        Ok(_) => Ok(None),
        Err(err) if err.code() == Some("not_found") => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// A `new` row without a Hetzner id: nothing was created.
fn forget_creating(cloud: &Cloud, name: &str) -> Result<(), Error> {
    if let Some((None, _)) = cloud.store.server_id(name)? {
        cloud.store.remove_server_name(name)?;
    }
    Ok(())
}

fn name_taken(name: &str, id: i64) -> Error {
    let which = if id > 0 {
        format!(" (id {id})")
    } else {
        String::new()
    };
    Error::Failed(format!(
        "server name `{name}` is taken: a server of that name already exists at Hetzner{which}, not created by this command; `hcc sync {name}` records it"
    ))
}

/// The create request for `name`, with defaults from the settings. A
/// queued command's `id` becomes the `hcc-command` label.
pub fn create_request(
    cloud: &Cloud,
    name: &str,
    server_type: Option<&str>,
    image: Option<&str>,
    location: Option<&str>,
    command: Option<i64>,
) -> CreateRequest {
    let pick = |given: Option<&str>, default: &String| {
        given.map_or_else(|| default.clone(), str::to_string)
    };
    let mut labels = BTreeMap::from([(cloud.label.clone(), "1".to_string())]);
    if let Some(id) = command {
        labels.insert(COMMAND_LABEL.to_string(), id.to_string());
    }
    CreateRequest {
        name: name.to_string(),
        server_type: pick(server_type, &cloud.settings.server_type),
        image: pick(image, &cloud.settings.image),
        location: pick(location, &cloud.settings.location),
        labels,
    }
}

/// What `create` did.
pub struct Created {
    pub server_id: i64,
    /// The server's status: after its actions when waited for.
    pub status: String,
    /// Shown once, never again: Hetzner keeps no copy.
    pub root_password: Option<String>,
}

/// Creates a server as the CLI asks: refused when the table knows one of
/// that name; with `wait`, waits for its actions and refreshes its row.
pub fn create(cloud: &mut Cloud, request: &CreateRequest, wait: bool) -> Result<Created, Error> {
    let name = request.name.as_str();
    if let Some((Some(id), _)) = cloud.store.server_id(name)? {
        return Err(Error::Failed(format!(
            "server `{name}` already exists (id {id}); if it was deleted elsewhere, run `hcc sync {name}`"
        )));
    }
    let (server, actions, root_password) = match begin_create(cloud, request, false)? {
        Creation::Started {
            server,
            actions,
            root_password,
        } => (server, actions, root_password),
        Creation::Existing(server) => (server, Vec::new(), None),
    };
    let mut status = server.status.clone();
    if wait {
        Waiter::new(&cloud.client, ActionWait::default()).wait(&actions)?;
        if let Some(server) = refetch(cloud, server.id)?.server() {
            status = server.status;
        }
    }
    Ok(Created {
        server_id: server.id,
        status,
        root_password,
    })
}

/// Deletes a managed server and its row; returns its id and the action.
pub fn begin_kill(cloud: &Cloud, name: &str) -> Result<(i64, Action), Error> {
    let (server, _) = managed(cloud, name)?;
    // Its consoles end first: a relay must not outlive the machine and
    // be recorded as cut off.
    cloud.store.end_consoles_of(
        &server.name,
        server.id,
        crate::store::now(),
        &crate::store::EndCode::Deleted.into(),
    )?;
    let action = cloud.client.delete_server(server.id)?;
    cloud.recent.forget(&server.name);
    cloud.store.remove_server_id(server.id)?;
    cloud.end_departed_consoles_of(&server.name)?;
    Ok((server.id, action))
}

/// Deletes a managed server and its row; with `wait`, waits for the
/// action. Returns the server's id.
pub fn kill(cloud: &Cloud, name: &str, wait: bool) -> Result<i64, Error> {
    let (id, action) = begin_kill(cloud, name)?;
    if wait {
        Waiter::new(&cloud.client, ActionWait::default()).wait(std::slice::from_ref(&action))?;
    }
    Ok(id)
}

/// Adds (`add`) or removes the managed label of the server named `name`
/// at Hetzner and refreshes its row; false when it had it (or lacked it)
/// already, which costs one request and changes nothing. `hcc settag`,
/// `hcc deltag` and the API's adopt and release share it.
pub fn set_managed(cloud: &mut Cloud, name: &str, add: bool) -> Result<bool, Error> {
    let (server, raw) = cloud.client.server_by_name(name)?;
    let mut labels = server.labels.clone();
    if crate::server::is_managed(&labels, &cloud.label) == add {
        // The local row may be older than what Hetzner said.
        cloud.store.refresh_server(&row(&server, &raw))?;
        cloud.recent.remember(&server);
        cloud.end_departed_consoles_of(name)?;
        return Ok(false);
    }
    if add {
        labels.insert(cloud.label.clone(), "1".into());
    } else {
        labels.remove(&cloud.label);
    }
    let (server, raw) = cloud.client.set_labels(server.id, &labels)?;
    cloud.store.refresh_server(&row(&server, &raw))?;
    cloud.recent.remember(&server);
    // Released: its consoles end for good, before anyone adopts it again.
    cloud.end_departed_consoles_of(name)?;
    Ok(true)
}
