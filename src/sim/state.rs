//! The simulated project: servers, their actions, and console tickets.
//!
//! Time is passed in (milliseconds since start) and actions are evaluated
//! lazily: an action's status follows from its start and end times, and
//! [`State::advance`] applies the effects of the actions that have ended
//! before each request looks at the state. No background thread, and the
//! same requests at the same times give the same answers.
//!
//! Invariants: `names` indexes exactly the servers in `servers`; action ids
//! are dense (`actions[i].id == ACTION_BASE + 1 + i`); `pending` holds the
//! ids of actions whose end effects are not applied yet.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::api_error::ApiError;
use super::catalog::{self, DATACENTERS, IMAGES, LOCATIONS, SERVER_TYPES};
use super::console::System;
use super::rng::{self, Rng};

/// Server ids start above this, so they never look like action ids.
const SERVER_BASE: u64 = 4_200_000;
const ACTION_BASE: u64 = 90_000_000;
/// Images made from servers (snapshots, backups) have ids above this.
const IMAGE_BASE: u64 = 300_000_000;
/// Console tickets kept for the console websocket to check against.
const CONSOLE_TICKETS: usize = 1000;

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Server {
    pub id: u64,
    pub name: String,
    pub status: &'static str,
    /// UNIX seconds.
    pub created: i64,
    /// Indexes into the catalogue.
    pub server_type: usize,
    pub datacenter: usize,
    /// The id of the image it was built from: a system image of the
    /// catalogue or an image of this project (which may be gone since).
    pub image: u64,
    pub labels: Labels,
    /// The disk in GB: the type's at creation, grown only by a change of
    /// type with `upgrade_disk`.
    pub disk_gb: u64,
    /// The next boot starts the rescue system.
    pub rescue_enabled: bool,
    /// What the machine booted last, as its console shows it.
    pub system: System,
    /// Index into the ISO catalogue of the attached ISO.
    pub iso: Option<usize>,
    pub backup_window: Option<&'static str>,
    pub protect_delete: bool,
    pub protect_rebuild: bool,
    /// Reverse DNS set by `change_dns_ptr`, by IP address (canonical form).
    pub rdns: BTreeMap<String, String>,
}

impl Server {
    /// A number unique per server from which its addresses derive.
    pub fn serial(&self) -> u64 {
        self.id - SERVER_BASE
    }

    /// The primary IPv4 address.
    pub fn ipv4(&self) -> std::net::Ipv4Addr {
        let serial = self.serial();
        std::net::Ipv4Addr::new(
            10,
            ((serial >> 16) & 0xff) as u8,
            ((serial >> 8) & 0xff) as u8,
            (serial & 0xff) as u8,
        )
    }

    /// The first address of the IPv6 /64 network.
    pub fn ipv6_net(&self) -> std::net::Ipv6Addr {
        let serial = self.serial();
        std::net::Ipv6Addr::new(
            0x2001,
            0xdb8,
            ((serial >> 16) & 0xffff) as u16,
            (serial & 0xffff) as u16,
            0,
            0,
            0,
            0,
        )
    }

    /// A boot: into the rescue system when it is enabled (which turns it
    /// off: "automatically disabled when you first boot into it"), else
    /// into the installed system `os`.
    fn boot(&mut self, os: String) {
        if self.rescue_enabled {
            self.system = System::Rescue;
            self.rescue_enabled = false;
        } else {
            self.system = System::Os(os);
        }
    }
}

/// An image made from a server (`create_image`).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: u64,
    /// `snapshot` or `backup`.
    pub kind: &'static str,
    pub description: String,
    /// UNIX seconds.
    pub created: i64,
    /// The server's id and name.
    pub from: (u64, String),
    /// A backup belongs to its server.
    pub bound_to: Option<u64>,
    pub labels: Labels,
    pub disk_size: u64,
    pub image_size: f64,
    /// `creating` until then, `available` after.
    pub ready_ms: u64,
    pub os_flavor: String,
    pub os_version: String,
    pub architecture: &'static str,
}

#[derive(Debug, Clone)]
pub struct Action {
    pub id: u64,
    pub command: &'static str,
    pub server: u64,
    pub started_ms: u64,
    pub ends_ms: u64,
    pub failed: bool,
    /// The server status once the action succeeds or fails.
    on_success: Option<&'static str>,
    on_error: Option<&'static str>,
}

/// An action's state at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Running(u8),
    Success,
    Error,
}

impl Action {
    pub fn progress(&self, now_ms: u64) -> Progress {
        if now_ms >= self.ends_ms {
            if self.failed {
                Progress::Error
            } else {
                Progress::Success
            }
        } else {
            let span = (self.ends_ms - self.started_ms).max(1);
            let done = now_ms.saturating_sub(self.started_ms) * 100 / span;
            Progress::Running(done.min(99) as u8)
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsoleTicket {
    pub server: u64,
    pub token: String,
    /// The URL handed out: the simulator's own console or the upstream.
    pub wss_url: String,
    pub password: String,
    pub issued_ms: u64,
}

/// What `POST /servers` asks for, checked by the handler.
pub struct NewServer {
    pub name: String,
    pub server_type: usize,
    pub image: usize,
    pub datacenter: usize,
    pub labels: Labels,
    pub start_after_create: bool,
    pub with_ssh_keys: bool,
}

pub struct Created {
    pub server: u64,
    pub action: u64,
    pub next_actions: Vec<u64>,
    pub root_password: Option<String>,
}

/// The server actions a client may start with `POST .../actions/VERB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    PowerOn,
    PowerOff,
    Shutdown,
    Reboot,
    Reset,
    RequestConsole,
    Rebuild,
    ResetPassword,
    EnableRescue,
    DisableRescue,
    ChangeType,
    ChangeDnsPtr,
    AttachIso,
    DetachIso,
    CreateImage,
    EnableBackup,
    DisableBackup,
    ChangeProtection,
}

impl Verb {
    pub fn parse(word: &str) -> Option<Verb> {
        Some(match word {
            "poweron" => Verb::PowerOn,
            "poweroff" => Verb::PowerOff,
            "shutdown" => Verb::Shutdown,
            "reboot" => Verb::Reboot,
            "reset" => Verb::Reset,
            "request_console" => Verb::RequestConsole,
            "rebuild" => Verb::Rebuild,
            "reset_password" => Verb::ResetPassword,
            "enable_rescue" => Verb::EnableRescue,
            "disable_rescue" => Verb::DisableRescue,
            "change_type" => Verb::ChangeType,
            "change_dns_ptr" => Verb::ChangeDnsPtr,
            "attach_iso" => Verb::AttachIso,
            "detach_iso" => Verb::DetachIso,
            "create_image" => Verb::CreateImage,
            "enable_backup" => Verb::EnableBackup,
            "disable_backup" => Verb::DisableBackup,
            "change_protection" => Verb::ChangeProtection,
            _ => return None,
        })
    }

    /// Whether the action takes the machine away from its console: every
    /// viewer is disconnected when it starts, and no new one is let in
    /// until it is done (the server is not `running` meanwhile, or an
    /// action is still running on it).
    ///
    /// Power off and shut down end the machine. Reset and reboot are
    /// counted too, though a VNC server outside the guest might keep its
    /// viewers through a reboot: this console is the test double for one
    /// that goes away while the machine restarts (a QEMU console's
    /// websocket is cut when its VM is reset, and a client must expect
    /// it), so that a client's reconnecting is exercised, not assumed.
    pub fn stops_machine(self) -> bool {
        matches!(
            self,
            Verb::PowerOff | Verb::Shutdown | Verb::Reboot | Verb::Reset | Verb::Rebuild
        )
    }

    /// The power and console verbs [`State::act`] starts; the others
    /// take a body and have handlers of their own.
    pub fn is_power(self) -> bool {
        matches!(
            self,
            Verb::PowerOn
                | Verb::PowerOff
                | Verb::Shutdown
                | Verb::Reboot
                | Verb::Reset
                | Verb::RequestConsole
        )
    }

    /// The action's `command`, as the API names it.
    pub fn command(self) -> &'static str {
        match self {
            Verb::PowerOn => "start_server",
            Verb::PowerOff => "stop_server",
            Verb::Shutdown => "shutdown_server",
            Verb::Reboot => "reboot_server",
            Verb::Reset => "reset_server",
            Verb::RequestConsole => "request_console",
            Verb::Rebuild => "rebuild_server",
            Verb::ResetPassword => "reset_password",
            Verb::EnableRescue => "enable_rescue",
            Verb::DisableRescue => "disable_rescue",
            Verb::ChangeType => "change_server_type",
            Verb::ChangeDnsPtr => "change_dns_ptr",
            Verb::AttachIso => "attach_iso",
            Verb::DetachIso => "detach_iso",
            Verb::CreateImage => "create_image",
            Verb::EnableBackup => "enable_backup",
            Verb::DisableBackup => "disable_backup",
            Verb::ChangeProtection => "change_protection",
        }
    }
}

pub struct State {
    servers: BTreeMap<u64, Server>,
    images: BTreeMap<u64, Snapshot>,
    next_image: u64,
    names: HashMap<String, u64>,
    actions: Vec<Action>,
    pending: Vec<u64>,
    /// Rebuilds under way: the system their server boots once the action
    /// succeeds (until then its console shows the old one).
    installs: HashMap<u64, String>,
    next_serial: u64,
    fail_next: bool,
    action_ms: u64,
    consoles: Vec<ConsoleTicket>,
}

impl State {
    pub fn new(action_ms: u64) -> State {
        State {
            servers: BTreeMap::new(),
            images: BTreeMap::new(),
            next_image: 1,
            names: HashMap::new(),
            actions: Vec::new(),
            pending: Vec::new(),
            installs: HashMap::new(),
            next_serial: 1,
            fail_next: false,
            action_ms,
            consoles: Vec::new(),
        }
    }

    /// `count` running servers `srv-00001`.. labelled `managed=1`, spread
    /// over server types, datacenters and images, created one every ten
    /// minutes up to `now_unix`.
    pub fn seed(&mut self, count: u32, now_unix: i64) {
        let images: Vec<usize> = (0..IMAGES.len())
            .filter(|&i| IMAGES[i].deprecated.is_none())
            .collect();
        // Where each server type is offered (every type is offered somewhere).
        let offered: Vec<Vec<usize>> = SERVER_TYPES
            .iter()
            .map(|t| {
                (0..DATACENTERS.len())
                    .filter(|&d| t.offered_in(&LOCATIONS[DATACENTERS[d].location]))
                    .collect()
            })
            .collect();
        for i in 0..count as usize {
            let server_type = i % SERVER_TYPES.len();
            let datacenters = &offered[server_type];
            let datacenter = datacenters[(i / SERVER_TYPES.len()) % datacenters.len()];
            let labels = Labels::from([("managed".to_string(), "1".to_string())]);
            self.insert(
                format!("srv-{:05}", i + 1),
                "running",
                now_unix - 600 * (count as i64 - i as i64),
                server_type,
                images[i % images.len()],
                datacenter,
                labels,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        name: String,
        status: &'static str,
        created: i64,
        server_type: usize,
        image: usize,
        datacenter: usize,
        labels: Labels,
    ) -> u64 {
        let id = SERVER_BASE + self.next_serial;
        self.next_serial += 1;
        self.names.insert(name.clone(), id);
        self.servers.insert(
            id,
            Server {
                id,
                name,
                status,
                created,
                server_type,
                image: IMAGES[image].id,
                datacenter,
                labels,
                disk_gb: SERVER_TYPES[server_type].disk_gb,
                rescue_enabled: false,
                system: System::Os(IMAGES[image].description.to_string()),
                iso: None,
                backup_window: None,
                protect_delete: false,
                protect_rebuild: false,
                rdns: BTreeMap::new(),
            },
        );
        id
    }

    #[cfg(test)]
    pub fn server_mut(&mut self, id: u64) -> Result<&mut Server, ApiError> {
        self.servers
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found("server"))
    }

    /// Starts an action of `command` on server `id` that takes
    /// `--action-ms`: `locked` while another runs; the server shows
    /// status `during` meanwhile (if given), then its status before.
    pub fn begin(
        &mut self,
        id: u64,
        command: &'static str,
        during: Option<&'static str>,
        now_ms: u64,
    ) -> Result<u64, ApiError> {
        let before = self.server(id)?.status;
        if self.is_locked(id, now_ms) {
            return Err(ApiError::locked());
        }
        let action = self.start_action(
            command,
            id,
            now_ms,
            self.action_ms,
            Some(before),
            Some(before),
        );
        if let (Some(status), Some(server)) = (during, self.servers.get_mut(&id)) {
            server.status = status;
        }
        Ok(action)
    }

    /// The server that action `action` changes, unless the action is to
    /// end in `error`: a failed action has no effect.
    pub fn effect(&mut self, action: u64, id: u64) -> Option<&mut Server> {
        if self.action(action).is_none_or(|a| a.failed) {
            return None;
        }
        self.servers.get_mut(&id)
    }

    /// An image by id (system or of this project) or by name (system
    /// images only, as the API takes them).
    pub fn find_image(&self, key: &Value) -> Option<u64> {
        if let Some(i) = catalog::find(IMAGES, key, |i| i.id, |i| i.name) {
            return Some(IMAGES[i].id);
        }
        let id = match key {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse::<u64>().ok(),
            _ => None,
        }?;
        self.images.contains_key(&id).then_some(id)
    }

    /// The description of image `id` (what a console shows it booted).
    pub fn image_description(&self, id: u64) -> String {
        match IMAGES.iter().find(|i| i.id == id) {
            Some(image) => image.description.to_string(),
            None => self
                .images
                .get(&id)
                .map(|s| s.description.clone())
                .unwrap_or_default(),
        }
    }

    /// (os_flavor, os_version) of image `id`.
    pub fn image_os(&self, id: u64) -> (String, String) {
        match IMAGES.iter().find(|i| i.id == id) {
            Some(image) => (image.os_flavor.to_string(), image.os_version.to_string()),
            None => self
                .images
                .get(&id)
                .map(|s| (s.os_flavor.clone(), s.os_version.clone()))
                .unwrap_or_else(|| ("unknown".into(), String::new())),
        }
    }

    /// Adds an image made from a server; its id.
    pub fn add_image(&mut self, mut image: Snapshot) -> u64 {
        let id = IMAGE_BASE + self.next_image;
        self.next_image += 1;
        image.id = id;
        self.images.insert(id, image);
        id
    }

    pub fn images(&self) -> impl Iterator<Item = &Snapshot> {
        self.images.values()
    }

    pub fn image(&self, id: u64) -> Option<&Snapshot> {
        self.images.get(&id)
    }

    pub fn delete_image(&mut self, id: u64) -> Option<Snapshot> {
        self.images.remove(&id)
    }

    /// Boots server `id`'s machine (a power-on, reboot, reset or rebuild).
    fn boot(&mut self, id: u64) {
        let Some(image) = self.servers.get(&id).map(|s| s.image) else {
            return;
        };
        let os = self.image_description(image);
        if let Some(server) = self.servers.get_mut(&id) {
            server.boot(os);
        }
    }

    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.values()
    }

    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    pub fn server(&self, id: u64) -> Result<&Server, ApiError> {
        self.servers
            .get(&id)
            .ok_or_else(|| ApiError::not_found("server"))
    }

    pub fn server_by_name(&self, name: &str) -> Option<&Server> {
        self.names.get(name).and_then(|id| self.servers.get(id))
    }

    pub fn action(&self, id: u64) -> Option<&Action> {
        let index = id.checked_sub(ACTION_BASE + 1)?;
        self.actions.get(usize::try_from(index).ok()?)
    }

    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    pub fn action_count(&self) -> usize {
        self.actions.len()
    }

    /// True while an action on the server is still running.
    pub fn is_locked(&self, server: u64, now_ms: u64) -> bool {
        self.pending.iter().any(|&id| {
            self.action(id)
                .is_some_and(|a| a.server == server && a.ends_ms > now_ms)
        })
    }

    /// Applies the effects of every action that has ended by `now_ms`, in
    /// the order the actions were started.
    pub fn advance(&mut self, now_ms: u64) {
        let mut still = Vec::with_capacity(self.pending.len());
        for id in std::mem::take(&mut self.pending) {
            let Some(action) = self.action(id).cloned() else {
                continue;
            };
            if action.ends_ms > now_ms {
                still.push(id);
                continue;
            }
            let status = if action.failed {
                action.on_error
            } else {
                action.on_success
            };
            if let (Some(status), Some(server)) = (status, self.servers.get_mut(&action.server)) {
                server.status = status;
            }
            if let Some(os) = self.installs.remove(&id)
                && !action.failed
                && let Some(server) = self.servers.get_mut(&action.server)
            {
                server.system = System::Os(os);
            }
        }
        self.pending = still;
    }

    /// The next action created ends in `error` (`POST /_sim/fail_next_action`).
    pub fn fail_next_action(&mut self) {
        self.fail_next = true;
    }

    fn start_action(
        &mut self,
        command: &'static str,
        server: u64,
        now_ms: u64,
        duration_ms: u64,
        on_success: Option<&'static str>,
        on_error: Option<&'static str>,
    ) -> u64 {
        let id = ACTION_BASE + 1 + self.actions.len() as u64;
        let failed = std::mem::take(&mut self.fail_next);
        self.actions.push(Action {
            id,
            command,
            server,
            started_ms: now_ms,
            ends_ms: now_ms + duration_ms,
            failed,
            on_success,
            on_error,
        });
        self.pending.push(id);
        id
    }

    pub fn create(
        &mut self,
        new: NewServer,
        now_ms: u64,
        now_unix: i64,
        rng: &mut Rng,
    ) -> Result<Created, ApiError> {
        if self.names.contains_key(&new.name) {
            return Err(ApiError::uniqueness("name", "server name"));
        }
        let id = self.insert(
            new.name,
            "initializing",
            now_unix,
            new.server_type,
            new.image,
            new.datacenter,
            new.labels,
        );
        let after = if new.start_after_create {
            "starting"
        } else {
            "off"
        };
        let action = self.start_action(
            "create_server",
            id,
            now_ms,
            self.action_ms,
            Some(after),
            Some("off"),
        );
        let mut next_actions = Vec::new();
        if new.start_after_create {
            // A failed create takes its start with it.
            let failed = self.action(action).is_some_and(|a| a.failed);
            self.fail_next = failed;
            next_actions.push(self.start_action(
                "start_server",
                id,
                now_ms,
                2 * self.action_ms,
                Some("running"),
                Some("off"),
            ));
        }
        Ok(Created {
            server: id,
            action,
            next_actions,
            root_password: (!new.with_ssh_keys).then(|| rng::alphanumeric(rng, 20)),
        })
    }

    /// A server made behind the API's back (`POST /_sim/servers`).
    pub fn create_direct(
        &mut self,
        name: String,
        labels: Labels,
        status: &'static str,
        now_unix: i64,
    ) -> Result<u64, ApiError> {
        check_name(&name)?;
        check_labels(&labels)?;
        if self.names.contains_key(&name) {
            return Err(ApiError::uniqueness("name", "server name"));
        }
        let image = IMAGES
            .iter()
            .position(|i| i.name == "debian-12")
            .unwrap_or(0);
        Ok(self.insert(
            name,
            status,
            now_unix,
            0,
            image,
            catalog::RECOMMENDED_DATACENTER,
            labels,
        ))
    }

    pub fn update(
        &mut self,
        id: u64,
        name: Option<String>,
        labels: Option<Labels>,
    ) -> Result<(), ApiError> {
        self.server(id)?;
        if let Some(name) = &name {
            check_name(name)?;
            if self.names.get(name).is_some_and(|&other| other != id) {
                return Err(ApiError::uniqueness("name", "server name"));
            }
        }
        if let Some(labels) = &labels {
            check_labels(labels)?;
        }
        let Some(server) = self.servers.get_mut(&id) else {
            return Err(ApiError::not_found("server"));
        };
        if let Some(name) = name {
            self.names.remove(&server.name);
            self.names.insert(name.clone(), id);
            server.name = name;
        }
        if let Some(labels) = labels {
            server.labels = labels;
        }
        Ok(())
    }

    /// Deletes a server: it is gone at once ("This immediately removes the
    /// Server from your account"); the returned action runs as usual.
    pub fn delete(&mut self, id: u64, now_ms: u64) -> Result<u64, ApiError> {
        if self.server(id)?.protect_delete {
            return Err(ApiError::protected("server"));
        }
        self.remove(id)?;
        // Its backups go with it; snapshots stay.
        self.images.retain(|_, i| i.bound_to != Some(id));
        Ok(self.start_action("delete_server", id, now_ms, self.action_ms, None, None))
    }

    /// Removes a server without an action (`DELETE /_sim/servers/ID`).
    pub fn remove(&mut self, id: u64) -> Result<(), ApiError> {
        let server = self
            .servers
            .remove(&id)
            .ok_or_else(|| ApiError::not_found("server"))?;
        self.names.remove(&server.name);
        Ok(())
    }

    /// Starts a power or console action; `locked` while another runs.
    pub fn act(&mut self, id: u64, verb: Verb, now_ms: u64) -> Result<u64, ApiError> {
        let before = self.server(id)?.status;
        if verb == Verb::RequestConsole {
            // The console is handed out at once and locks nothing.
            return Ok(self.start_action(verb.command(), id, now_ms, 0, None, None));
        }
        if self.is_locked(id, now_ms) {
            return Err(ApiError::locked());
        }
        let (during, after) = match verb {
            Verb::PowerOn => (Some("starting"), "running"),
            Verb::PowerOff | Verb::Shutdown => (Some("stopping"), "off"),
            Verb::Reboot | Verb::Reset | Verb::RequestConsole => (None, "running"),
            other => {
                return Err(ApiError::invalid_input(
                    "action",
                    &format!("{} is not a power action", other.command()),
                ));
            }
        };
        let action = self.start_action(
            verb.command(),
            id,
            now_ms,
            self.action_ms,
            Some(after),
            Some(before),
        );
        if let (Some(status), Some(server)) = (during, self.servers.get_mut(&id)) {
            server.status = status;
        }
        let boots = match verb {
            Verb::Reboot | Verb::Reset => true,
            Verb::PowerOn => before != "running",
            _ => false,
        };
        if boots && self.action(action).is_some_and(|a| !a.failed) {
            self.boot(id);
        }
        Ok(action)
    }

    /// A rebuild: the disk overwritten with `image`, then the machine
    /// booted from it; `rebuilding` meanwhile, then the status before.
    pub fn rebuild(&mut self, id: u64, image: u64, now_ms: u64) -> Result<u64, ApiError> {
        if self.server(id)?.protect_rebuild {
            return Err(ApiError::protected("server"));
        }
        let action = self.begin(id, Verb::Rebuild.command(), Some("rebuilding"), now_ms)?;
        let os = self.image_description(image);
        if let Some(server) = self.effect(action, id) {
            server.image = image;
        }
        // The new system shows on the console when the rebuild is over.
        self.installs.insert(action, os);
        if self.action_ms == 0 {
            self.advance(now_ms);
        }
        Ok(action)
    }

    pub fn add_console(&mut self, ticket: ConsoleTicket) {
        if self.consoles.len() >= CONSOLE_TICKETS {
            self.consoles.remove(0);
        }
        self.consoles.push(ticket);
    }

    pub fn consoles(&self) -> &[ConsoleTicket] {
        &self.consoles
    }
}

/// A hostname as RFC 1123 has it: dot-separated labels of letters,
/// digits and dashes.
pub fn is_hostname(name: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)
}

/// Server names: valid hostnames (RFC 1123), as the API requires.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if is_hostname(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_input("name", "invalid hostname"))
    }
}

/// Labels as the API documents them: keys `[prefix/]name`, names and
/// values at most 63 characters of `[a-zA-Z0-9._-]`, beginning and ending
/// alphanumeric (values may be empty); `hetzner.cloud/` is reserved.
pub fn check_labels(labels: &Labels) -> Result<(), ApiError> {
    let part_ok = |s: &str, may_be_empty: bool| {
        (may_be_empty && s.is_empty())
            || (!s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
    };
    for (key, value) in labels {
        let (prefix, name) = match key.rsplit_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, key.as_str()),
        };
        let prefix_ok = prefix.is_none_or(|p| {
            p.len() <= 253 && p != "hetzner.cloud" && p.split('.').all(|l| part_ok(l, false))
        });
        if !prefix_ok || !part_ok(name, false) {
            return Err(ApiError::invalid_input(
                "labels",
                &format!("invalid label key `{key}`"),
            ));
        }
        if !part_ok(value, true) {
            return Err(ApiError::invalid_input(
                "labels",
                &format!("invalid label value `{value}`"),
            ));
        }
    }
    Ok(())
}

/// A JSON object of strings as labels.
pub fn labels_from(value: &Value) -> Result<Labels, ApiError> {
    let object = value
        .as_object()
        .ok_or_else(|| ApiError::invalid_input("labels", "must be an object"))?;
    object
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(ApiError::invalid_input("labels", "values must be strings")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_server(name: &str, start: bool) -> NewServer {
        NewServer {
            name: name.to_string(),
            server_type: 0,
            image: 0,
            datacenter: 0,
            labels: Labels::new(),
            start_after_create: start,
            with_ssh_keys: false,
        }
    }

    #[test]
    fn create_runs_then_starts() {
        let mut state = State::new(100);
        let mut rng = Rng::with_seed(1);
        let created = state.create(new_server("a", true), 0, 0, &mut rng).unwrap();
        assert_eq!(created.next_actions.len(), 1);
        assert_eq!(created.root_password.as_ref().map(String::len), Some(20));
        assert_eq!(state.server(created.server).unwrap().status, "initializing");
        assert!(state.is_locked(created.server, 50));
        assert_eq!(
            state.action(created.action).unwrap().progress(50),
            Progress::Running(50)
        );
        state.advance(100);
        assert_eq!(state.server(created.server).unwrap().status, "starting");
        state.advance(200);
        assert_eq!(state.server(created.server).unwrap().status, "running");
        assert!(!state.is_locked(created.server, 200));
        assert!(matches!(
            state.create(new_server("a", true), 300, 0, &mut rng),
            Err(e) if e.code == "uniqueness_error"
        ));
    }

    #[test]
    fn actions_lock_and_fail_on_request() {
        let mut state = State::new(100);
        state.seed(2, 1000);
        let id = state.server_by_name("srv-00002").unwrap().id;
        let off = state.act(id, Verb::PowerOff, 0).unwrap();
        assert_eq!(state.server(id).unwrap().status, "stopping");
        assert_eq!(state.act(id, Verb::PowerOn, 10).unwrap_err().code, "locked");
        // The console does not wait for the lock.
        assert!(state.act(id, Verb::RequestConsole, 10).is_ok());
        // Only the verbs that take the machine away end its console.
        let stopping: Vec<&str> = [
            "poweron",
            "poweroff",
            "shutdown",
            "reboot",
            "reset",
            "request_console",
        ]
        .into_iter()
        .filter(|w| Verb::parse(w).unwrap().stops_machine())
        .collect();
        assert_eq!(stopping, ["poweroff", "shutdown", "reboot", "reset"]);
        state.advance(100);
        assert_eq!(state.action(off).unwrap().progress(100), Progress::Success);
        assert_eq!(state.server(id).unwrap().status, "off");

        state.fail_next_action();
        let on = state.act(id, Verb::PowerOn, 200).unwrap();
        state.advance(300);
        assert_eq!(state.action(on).unwrap().progress(300), Progress::Error);
        assert_eq!(state.server(id).unwrap().status, "off");
    }

    #[test]
    fn delete_and_rename_keep_the_name_index() {
        let mut state = State::new(10);
        state.seed(3, 0);
        let id = state.server_by_name("srv-00001").unwrap().id;
        assert_eq!(
            state
                .update(id, Some("srv-00002".into()), None)
                .unwrap_err()
                .code,
            "uniqueness_error"
        );
        state.update(id, Some("web1".into()), None).unwrap();
        assert!(state.server_by_name("srv-00001").is_none());
        assert_eq!(state.server_by_name("web1").unwrap().id, id);
        state.delete(id, 0).unwrap();
        assert!(state.server_by_name("web1").is_none());
        assert_eq!(state.server_count(), 2);
        assert_eq!(state.delete(id, 0).unwrap_err().code, "not_found");
    }

    #[test]
    fn names_and_labels_are_checked() {
        for ok in ["a", "web-1", "a.b.c", "x1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a..b", "ä", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let labels = |k: &str, v: &str| Labels::from([(k.to_string(), v.to_string())]);
        assert!(check_labels(&labels("managed", "1")).is_ok());
        assert!(check_labels(&labels("example.com/my", "")).is_ok());
        assert!(check_labels(&labels("hetzner.cloud/x", "1")).is_err());
        assert!(check_labels(&labels("-a", "1")).is_err());
        assert!(check_labels(&labels("a", "b c")).is_err());
    }

    #[test]
    fn rescue_is_for_the_next_boot_and_a_rebuild_boots_the_new_image() {
        let mut state = State::new(100);
        state.seed(1, 0);
        let id = state.server_by_name("srv-00001").unwrap().id;
        state.server_mut(id).unwrap().rescue_enabled = true;
        assert_ne!(state.server(id).unwrap().system, System::Rescue);
        state.act(id, Verb::Reboot, 0).unwrap();
        let server = state.server(id).unwrap();
        assert_eq!(server.system, System::Rescue);
        // Disabled by the boot into it.
        assert!(!server.rescue_enabled);
        state.advance(100);
        state.act(id, Verb::Reset, 100).unwrap();
        assert!(matches!(&state.server(id).unwrap().system, System::Os(_)));
        state.advance(200);

        let ubuntu = state
            .find_image(&serde_json::json!("ubuntu-24.04"))
            .unwrap();
        state.rebuild(id, ubuntu, 200).unwrap();
        let server = state.server(id).unwrap();
        assert_eq!(server.status, "rebuilding");
        assert_ne!(server.system, System::Os("Ubuntu 24.04".into()), "not yet");
        assert_eq!(state.rebuild(id, ubuntu, 250).unwrap_err().code, "locked");
        state.advance(300);
        assert_eq!(state.server(id).unwrap().status, "running");
        assert_eq!(
            state.server(id).unwrap().system,
            System::Os("Ubuntu 24.04".into())
        );

        state.server_mut(id).unwrap().protect_rebuild = true;
        state.server_mut(id).unwrap().protect_delete = true;
        assert_eq!(
            state.rebuild(id, ubuntu, 400).unwrap_err().code,
            "protected"
        );
        assert_eq!(state.delete(id, 400).unwrap_err().code, "protected");
        assert!(
            state
                .find_image(&serde_json::json!("no-such-image"))
                .is_none()
        );
    }
}
