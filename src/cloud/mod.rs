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
pub mod manage;
pub mod metrics;
mod recent;
pub mod server;
pub mod sync;

pub use fresh::Fresh;
pub use recent::Recent;

use serde_json::Value;

use crate::config::{Settings, WalCheckpoints};
use crate::error::Error;
use crate::hetzner::{self, Client, Priority, Token, wire};
use crate::home::Home;
use crate::store::{Checkpoints, ServerRow, SharedBudget, Store};

/// Everything a cloud command needs.
pub struct Cloud {
    pub settings: Settings,
    pub store: Store,
    pub client: Client,
    pub label: String,
    /// Servers Hetzner described to this process a moment ago.
    pub recent: Recent,
}

impl Cloud {
    pub fn open(home: &Home, settings: &Settings, priority: Priority) -> Result<Cloud, Error> {
        Cloud::open_with(
            home,
            settings,
            priority,
            hetzner::retry::MAX_RETRIES,
            Checkpoints::Automatic,
        )
    }

    /// With `max_retries` 0 the client never sleeps to retry a request:
    /// the caller (the worker) schedules retries itself and serves others.
    /// With [`Checkpoints::Deferred`] its commits never wait for a
    /// checkpoint of the WAL: the caller makes them (the worker, on a
    /// thread of its own).
    pub fn open_with(
        home: &Home,
        settings: &Settings,
        priority: Priority,
        max_retries: u32,
        checkpoints: Checkpoints,
    ) -> Result<Cloud, Error> {
        let store = Store::open(&home.db_path())?;
        let budget = Store::open(&home.db_path())?;
        // With `wal_checkpoints = external` no connection of a cloud (the
        // worker's, its syncs', hcc serve's, the CLI's) checkpoints,
        // whatever the caller asked for: the replication tool does.
        let checkpoints = match settings.wal_checkpoints {
            WalCheckpoints::External => Checkpoints::External,
            WalCheckpoints::Hcc => checkpoints,
        };
        store.set_checkpoints(checkpoints)?;
        budget.set_checkpoints(checkpoints)?;
        let budget = SharedBudget::new(budget);
        let token = Token::new(settings.token()?.expose().to_string());
        let client = Client::new(&settings.endpoint, token, Box::new(budget))
            .with_priority(priority)
            .with_command_share(settings.command_share())
            .with_max_retries(max_retries)
            .with_notice(|msg| eprintln!("hcc: {}", crate::output::one_line(msg)));
        Ok(Cloud {
            settings: settings.clone(),
            store,
            client,
            label: settings.label.clone(),
            recent: Recent::default(),
        })
    }

    /// Ends the consoles of servers that left hcc's care (released,
    /// deleted): called wherever hcc learns of it.
    pub fn end_departed_consoles(&self) -> Result<usize, Error> {
        self.end_departed(None)
    }

    /// The same for the server named `name` alone: after an action on it.
    pub fn end_departed_consoles_of(&self, name: &str) -> Result<usize, Error> {
        self.end_departed(Some(name))
    }

    fn end_departed(&self, only: Option<&str>) -> Result<usize, Error> {
        Ok(self
            .store
            .end_departed_consoles(&self.label, crate::store::now(), only)?)
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
            cloud.recent.remember(&server);
            // Its label may be gone (released behind hcc's back).
            cloud.end_departed_consoles_of(&server.name)?;
            Ok(Refetched::Stored(Box::new(server)))
        }
        None => {
            cloud.recent.forget_id(id);
            let removed = cloud.store.remove_server_id(id)?;
            cloud.end_departed_consoles()?;
            Ok(Refetched::Gone { removed })
        }
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
