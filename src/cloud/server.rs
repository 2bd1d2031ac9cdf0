//! Verbs on one server: `create`, `start`/`stop`/`force`/`reboot`/`reset`,
//! `kill`, `settag`/`deltag`, `console`. Each looks the server up by name
//! (one request), applies the guard, calls the API, waits for the action
//! unless told not to, and records the outcome in the `servers` table.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use serde_json::json;

use super::{Cloud, print_json, refetch, row};
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::wire::Action;
use crate::hetzner::{ActionWait, CreateRequest, Priority, Waiter, wire};
use crate::home::Home;
use crate::verb::check_server_name;

/// The power verbs and the Hetzner action each runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Force,
    Reboot,
    Reset,
}

impl Verb {
    fn action(self) -> &'static str {
        match self {
            Verb::Start => "poweron",
            Verb::Stop => "shutdown",
            Verb::Force => "poweroff",
            Verb::Reboot => "reboot",
            Verb::Reset => "reset",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Verb::Start => "started",
            Verb::Stop => "shut down (ACPI)",
            Verb::Force => "powered off",
            Verb::Reboot => "rebooted (ACPI)",
            Verb::Reset => "reset",
        }
    }
}

/// Looks a managed server up by name.
fn managed(cloud: &Cloud, name: &str) -> Result<(wire::Server, serde_json::Value), Error> {
    check_server_name(name).map_err(Error::Input)?;
    let (server, raw) = cloud.client.server_by_name(name)?;
    cloud.guard(&server)?;
    Ok((server, raw))
}

/// Starts a power action on a managed server; returns the server as it
/// was and the running action.
pub fn begin_power(cloud: &Cloud, verb: Verb, name: &str) -> Result<(wire::Server, Action), Error> {
    let (server, _) = managed(cloud, name)?;
    let action = cloud.client.server_action(server.id, verb.action())?;
    Ok((server, action))
}

pub fn power(
    home: &Home,
    settings: &Settings,
    verb: Verb,
    name: &str,
    no_wait: bool,
    json_out: bool,
) -> Result<ExitCode, Error> {
    let mut cloud = Cloud::open(home, settings, Priority::Interactive)?;
    let (server, action) = begin_power(&cloud, verb, name)?;
    let mut status = server.status.clone();
    if !no_wait {
        Waiter::new(&cloud.client, ActionWait::default()).wait(std::slice::from_ref(&action))?;
        if let Some(server) = refetch(&mut cloud, server.id)?.server() {
            status = server.status;
        }
    }
    if json_out {
        print_json(
            &json!({"name": name, "id": server.id, "action": action.command,
                           "action_id": action.id, "waited": !no_wait, "status": status}),
        )?;
    } else if no_wait {
        crate::print(&format!(
            "{name}: {} requested (action {})\n",
            verb.action(),
            action.id
        ))?;
    } else {
        crate::print(&format!("{name}: {}, now {status}\n", verb.done()))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub struct CreateArgs<'a> {
    pub name: &'a str,
    pub server_type: Option<&'a str>,
    pub image: Option<&'a str>,
    pub location: Option<&'a str>,
    pub no_wait: bool,
    pub json: bool,
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
    if !name.starts_with(&prefix) {
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

pub fn create(home: &Home, settings: &Settings, args: CreateArgs) -> Result<ExitCode, Error> {
    let mut cloud = Cloud::open(home, settings, Priority::Interactive)?;
    let name = args.name;
    let request = create_request(
        &cloud,
        name,
        args.server_type,
        args.image,
        args.location,
        None,
    );
    if let Some((Some(id), _)) = cloud.store.server_id(name)? {
        return Err(Error::Failed(format!(
            "server `{name}` already exists (id {id}); if it was deleted elsewhere, run `hcc sync {name}`"
        )));
    }
    let (server, actions, root_password) = match begin_create(&mut cloud, &request, false)? {
        Creation::Started {
            server,
            actions,
            root_password,
        } => (server, actions, root_password),
        Creation::Existing(server) => (server, Vec::new(), None),
    };
    let mut status = server.status.clone();
    if !args.no_wait {
        Waiter::new(&cloud.client, ActionWait::default()).wait(&actions)?;
        if let Some(server) = refetch(&mut cloud, server.id)?.server() {
            status = server.status;
        }
    }
    if args.json {
        print_json(&json!({"name": name, "id": server.id, "status": status,
                           "server_type": request.server_type, "image": request.image,
                           "location": request.location,
                           "root_password": root_password}))?;
    } else {
        let mut text = format!(
            "created {name} (id {}, {} {} in {}), {status}\n",
            server.id, request.server_type, request.image, request.location
        );
        if let Some(password) = &root_password {
            text.push_str(&format!("root password: {password}\n"));
        }
        crate::print(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Deletes a managed server and its row; returns its id and the action.
pub fn begin_kill(cloud: &Cloud, name: &str) -> Result<(i64, Action), Error> {
    let (server, _) = managed(cloud, name)?;
    let action = cloud.client.delete_server(server.id)?;
    cloud.store.remove_server_id(server.id)?;
    Ok((server.id, action))
}

pub fn kill(
    home: &Home,
    settings: &Settings,
    name: &str,
    yes: bool,
    no_wait: bool,
) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Interactive)?;
    if !yes {
        let (server, _) = managed(&cloud, name)?;
        confirm_delete(name, server.id)?;
    }
    let (id, action) = begin_kill(&cloud, name)?;
    if !no_wait {
        Waiter::new(&cloud.client, ActionWait::default()).wait(std::slice::from_ref(&action))?;
    }
    crate::print(&format!("deleted {name} (id {id})\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// On a terminal, asks for the name; elsewhere, `--yes` is required.
fn confirm_delete(name: &str, id: i64) -> Result<(), Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Error::Input(format!(
            "refusing to delete `{name}` without --yes (standard input is not a terminal)"
        )));
    }
    eprint!("delete server `{name}` (id {id}) and all its data? type its name to confirm: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Input(format!("cannot read the confirmation: {e}")))?;
    if answer.trim() == name {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "not confirmed; `{name}` was not deleted"
        )))
    }
}

/// `settag`: adopt a server (add the managed label).
pub fn settag(home: &Home, settings: &Settings, name: &str) -> Result<ExitCode, Error> {
    label(home, settings, name, true)
}

/// `deltag`: release a server (remove the managed label).
pub fn deltag(home: &Home, settings: &Settings, name: &str) -> Result<ExitCode, Error> {
    label(home, settings, name, false)
}

fn label(home: &Home, settings: &Settings, name: &str, add: bool) -> Result<ExitCode, Error> {
    let mut cloud = Cloud::open(home, settings, Priority::Interactive)?;
    check_server_name(name).map_err(Error::Input)?;
    let changed = set_managed(&mut cloud, name, add)?;
    let said = match (add, changed) {
        (true, true) => "now managed",
        (false, true) => "released",
        (true, false) => "is already managed",
        (false, false) => "is not managed",
    };
    let sep = if changed { ":" } else { "" };
    crate::print(&format!("{name}{sep} {said} (label `{}`)\n", cloud.label))?;
    Ok(ExitCode::SUCCESS)
}

/// Adds (`add`) or removes the managed label of the server named `name`
/// at Hetzner and refreshes its row; false when it had it (or lacked it)
/// already, which costs one request and changes nothing. `hcc settag`,
/// `hcc deltag` and the API's adopt and release share it.
pub fn set_managed(cloud: &mut Cloud, name: &str, add: bool) -> Result<bool, Error> {
    let (server, raw) = cloud.client.server_by_name(name)?;
    let mut labels = server.labels.clone();
    if labels.contains_key(&cloud.label) == add {
        // The local row may be older than what Hetzner said.
        cloud.store.refresh_server(&row(&server, &raw))?;
        return Ok(false);
    }
    if add {
        labels.insert(cloud.label.clone(), "1".into());
    } else {
        labels.remove(&cloud.label);
    }
    let (server, raw) = cloud.client.set_labels(server.id, &labels)?;
    cloud.store.refresh_server(&row(&server, &raw))?;
    Ok(true)
}

/// `console`: fresh credentials, stored and printed as the original did:
/// `<console base URL><wss_url>#<password>`.
/// Fresh console credentials for a managed server, stored in its row.
/// Returns the server id, the credentials and when they were stored.
pub fn console_now(cloud: &Cloud, name: &str) -> Result<(i64, wire::Console, f64), Error> {
    let (server, _) = managed(cloud, name)?;
    let console = cloud.client.request_console(server.id)?;
    let at = cloud
        .store
        .record_console(name, &console.wss_url, &console.password)?;
    Ok((server.id, console, at))
}

pub fn console(
    home: &Home,
    settings: &Settings,
    name: &str,
    json_out: bool,
) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Interactive)?;
    let (id, console, at) = console_now(&cloud, name)?;
    let base = &cloud.settings.console_url;
    let url = format!("{base}{}#{}", console.wss_url, console.password);
    if json_out {
        print_json(&json!({"name": name, "id": id, "url": url,
                           "wss_url": console.wss_url, "password": console.password,
                           "console_at": at}))?;
    } else {
        crate::print(&format!("{url}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}
