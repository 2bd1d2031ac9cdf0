//! Console credentials: asked of Hetzner (`request_console`) and kept in
//! the server's row, for `hcc console`, the queued `console`, `hcc serve`'s
//! pages and API, and `hcc vnc`. The one place they are fetched.

use std::fmt;

use super::{Cloud, server};
use crate::error::Error;
use crate::hetzner::Client;
use crate::store::Store;

/// Console credentials just handed out by Hetzner. Its `Debug` hides them.
pub struct Credentials {
    pub server_id: i64,
    pub wss_url: String,
    pub password: String,
    /// When they were stored (Unix seconds, as `servers.console_at`).
    pub issued_at: i64,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("server_id", &self.server_id)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

/// Fresh credentials for server `id`, named `name`, stored in its row.
/// The caller has checked that the server is managed.
pub fn fetch(client: &Client, store: &Store, name: &str, id: i64) -> Result<Credentials, Error> {
    let console = client.request_console(id)?;
    let issued_at = store.record_console(name, &console.wss_url, &console.password)?;
    Ok(Credentials {
        server_id: id,
        wss_url: console.wss_url,
        password: console.password,
        issued_at,
    })
}

/// Fresh credentials for the managed server `name`, guarded first (looked
/// up at Hetzner unless it described the server a moment ago).
pub fn fetch_managed(cloud: &Cloud, name: &str) -> Result<Credentials, Error> {
    let (_, credentials) = server::on_managed(cloud, name, |server| {
        fetch(&cloud.client, &cloud.store, name, server.id)
    })?;
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_credentials() {
        let credentials = Credentials {
            server_id: 7,
            wss_url: "wss://console.example/?token=SECRET-URL".into(),
            password: "SECRET-PASSWORD".into(),
            issued_at: 1,
        };
        let shown = format!("{credentials:?}");
        assert!(shown.contains("server_id: 7"), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
