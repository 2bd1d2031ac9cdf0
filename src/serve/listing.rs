//! The server list (`GET /api/v1/servers`) rendered once and shared by
//! every request while the database is unchanged.
//!
//! Rendering reads the whole `servers` table; done on each request thread's
//! own connection, every such connection would map the whole file into
//! memory and build its own copy of the answer (61 MB under 16 concurrent
//! clients with 500 servers). Here one connection renders, guarded by a
//! lock, and concurrent requests wait for that rendering and share it.
//! `PRAGMA data_version` tells when anything (the worker, a panel, `hcc
//! sync` in another process) has committed since, and only then is the
//! list read again.

use std::sync::{Arc, Mutex};

use super::reply::ApiError;
use crate::error::Error;
use crate::home::Home;
use crate::server::Server;
use crate::store::Store;

/// The list as last rendered.
#[derive(Default)]
pub struct Listing {
    state: Mutex<Option<Rendered>>,
}

struct Rendered {
    store: Store,
    /// The data version the body was read at; None before the first read.
    version: Option<i64>,
    body: Arc<Vec<u8>>,
    count: usize,
}

impl Listing {
    /// The JSON answer `{"servers": [...]}` and the number of servers.
    pub fn get(&self, home: &Home, label: &str) -> Result<(Arc<Vec<u8>>, usize), ApiError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let rendered = match &mut *state {
            Some(rendered) => rendered,
            empty => empty.insert(Rendered {
                store: Store::open(&home.db_path()).map_err(Error::Store)?,
                version: None,
                body: Arc::default(),
                count: 0,
            }),
        };
        // Read before the rows: a commit in between makes the next request
        // render again, never keeps an old list.
        let version = rendered.store.data_version()?;
        if rendered.version != Some(version) {
            let servers = rendered.store.servers(label)?;
            let count = servers.len();
            let mut body = serde_json::to_vec(&ServersOut { servers })
                .map_err(|e| ApiError::new(500, "internal", format!("cannot write JSON: {e}")))?;
            body.push(b'\n');
            body.shrink_to_fit();
            rendered.body = Arc::new(body);
            rendered.count = count;
            rendered.version = Some(version);
        }
        Ok((Arc::clone(&rendered.body), rendered.count))
    }
}

#[derive(serde::Serialize)]
struct ServersOut {
    servers: Vec<Server>,
}
