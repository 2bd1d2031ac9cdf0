//! The cloud operations: what `hcc sync`, `create`, `start`, ...,
//! `console` do, on top of the Hetzner client and the store. One file per
//! group: `sync`, `server` (actions on one server), `console` (console
//! credentials). The CLI (`cloud_cli`), the worker and `hcc serve` call
//! them; they return what happened and print nothing.
//!
//! The guard (DESIGN.md): every verb that touches a server requires the
//! managed label (`console` and `sync NAME` included); new names must carry
//! the configured prefix; `settag` and `deltag` are how an operator adopts
//! or releases a server.

pub mod console;
mod fresh;
pub mod server;
pub mod sync;

pub use fresh::Fresh;

use std::path::Path;

use serde_json::Value;

use crate::config::{self, Config};
use crate::error::Error;
use crate::hetzner::{self, Client, Priority, Token, wire};
use crate::home::Home;
use crate::store::{ServerRow, SharedBudget, Store};

/// Everything a cloud command needs.
pub struct Cloud {
    pub config: Config,
    pub store: Store,
    pub client: Client,
    pub label: String,
}

impl Cloud {
    pub fn open(home: &Home, priority: Priority) -> Result<Cloud, Error> {
        Cloud::open_with(home, priority, hetzner::retry::MAX_RETRIES)
    }

    /// With `max_retries` 0 the client never sleeps to retry a request:
    /// the caller (the worker) schedules retries itself and serves others.
    pub fn open_with(home: &Home, priority: Priority, max_retries: u32) -> Result<Cloud, Error> {
        let config = Config::load(&home.config_path())?;
        let store = Store::open(&home.db_path())?;
        let budget = SharedBudget::new(Store::open(&home.db_path())?);
        let endpoint = setting(&config, "endpoint").unwrap_or_default();
        let client = Client::new(&endpoint, token(&config)?, Box::new(budget))
            .with_priority(priority)
            .with_max_retries(max_retries)
            .with_notice(|msg| eprintln!("hcc: {msg}"));
        let label = managed_label(&config);
        Ok(Cloud {
            config,
            store,
            client,
            label,
        })
    }

    pub fn setting(&self, name: &str) -> Option<String> {
        setting(&self.config, name)
    }

    /// Refuses a server that lacks the managed label.
    pub fn guard(&self, server: &wire::Server) -> Result<(), Error> {
        if crate::server::is_managed(&server.labels, &self.label) {
            Ok(())
        } else {
            Err(Error::Refused(format!(
                "server `{}` is not managed by hcc: it lacks the label `{}` (adopt it with `hcc settag {}`)",
                server.name, self.label, server.name
            )))
        }
    }
}

/// The token: `HCLOUD_TOKEN`, else the `token` setting, else the file
/// named by `token_file`.
pub fn token(config: &Config) -> Result<Token, Error> {
    if let Some(token) = setting(config, "token") {
        return Ok(Token::new(token));
    }
    if let Some(path) = setting(config, "token_file") {
        // A token is some 64 bytes; a FIFO or /dev/zero planted at the
        // name must not hang hcc or fill its memory.
        let text = crate::safe_fs::read_small(Path::new(&path), 4096).map_err(|e| {
            Error::Hetzner(hetzner::Error::NoToken(format!(
                "cannot read the token file `{path}`: {e}"
            )))
        })?;
        let token = text.trim();
        if !token.is_empty() {
            return Ok(Token::new(token.to_string()));
        }
    }
    Err(Error::Hetzner(hetzner::Error::NoToken(
        "no API token: set HCLOUD_TOKEN, run `hcc config set token -`, or run `hcc setup`".into(),
    )))
}

/// The managed label (the setting `label`). An empty one in the file
/// means the default, which the settings table states.
pub fn managed_label(config: &Config) -> String {
    setting(config, "label")
        .or_else(|| config::key("label").ok()?.default.map(str::to_string))
        .unwrap_or_default()
}

/// A setting's effective value; `None` when it is empty.
pub fn setting(config: &Config, name: &str) -> Option<String> {
    config::key(name)
        .ok()
        .and_then(|key| config.lookup(key).0)
        .filter(|v| !v.is_empty())
}

/// What [`refetch`] found.
pub enum Refetched {
    /// The server as it is now; its row is updated.
    Stored(Box<wire::Server>),
    /// Gone at Hetzner; `removed` says whether a row went with it.
    Gone { removed: bool },
}

impl Refetched {
    pub fn server(self) -> Option<wire::Server> {
        match self {
            Refetched::Stored(server) => Some(*server),
            Refetched::Gone { .. } => None,
        }
    }
}

/// Fetches server `id` again (after an action, or because the action feed
/// says it changed) and stores it, or removes its row when it is gone.
pub fn refetch(cloud: &mut Cloud, id: i64) -> Result<Refetched, Error> {
    match cloud.client.server(id)? {
        Some((server, raw)) => {
            cloud.store.refresh_server(&row(&server, &raw))?;
            Ok(Refetched::Stored(Box::new(server)))
        }
        None => Ok(Refetched::Gone {
            removed: cloud.store.remove_server_id(id)?,
        }),
    }
}

/// A server as the `servers` table stores it.
pub fn row(server: &wire::Server, raw: &Value) -> ServerRow {
    let net = server.public_net.clone().unwrap_or_default();
    ServerRow {
        name: server.name.clone(),
        id: server.id,
        status: server.status.clone(),
        ipv4: net.ipv4.map(|a| a.ip),
        ipv6: net.ipv6.map(|a| a.ip),
        server_type: server.server_type.as_ref().map(|t| t.name.clone()),
        image: server
            .image
            .as_ref()
            .map(|i| i.name.clone().unwrap_or_else(|| i.id.to_string())),
        datacenter: server.datacenter.as_ref().map(|d| d.name.clone()),
        location: server.datacenter.as_ref().map(|d| d.location.name.clone()),
        labels: serde_json::to_string(&server.labels).unwrap_or_else(|_| "{}".into()),
        protection: server.protection.as_ref().map(Value::to_string),
        traffic_in: server.ingoing_traffic,
        traffic_out: server.outgoing_traffic,
        traffic_included: server.included_traffic,
        created: server.created.clone(),
        api: raw.to_string(),
    }
}
