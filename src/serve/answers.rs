//! What the busiest reads find out, kept while the database is unchanged:
//! the API key a presented secret's hash belongs to, and the rendered
//! answer of `GET /api/v1/servers/{name}`.
//!
//! Without it every such request runs two or three queries and parses
//! the server's full Hetzner object (kilobytes of JSON) into a tree, which
//! cost more than everything else a request does (issue 22). `PRAGMA
//! data_version` on a connection of this cache's own says when anything
//! (a revoked key, the worker, a panel, `hcc sync` in another process) has
//! committed since: then everything kept is dropped, so a revoked key is
//! refused by the next request, as without the cache.
//!
//! Invariant: an entry is kept only under the version read *before* the
//! rows it came from, and used only while that is still the version; a
//! commit in between can make an entry newer than its version, never
//! older than the database. Only keys that exist are kept (an unknown
//! secret is looked up each time), by the SHA-256 of the secret, which is
//! what the table keeps too: the secret itself is never held. Both maps
//! are bounded; when one is full it is emptied.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::reply::ApiError;
use crate::error::Error;
use crate::home::Home;
use crate::store::{ApiKey, Store};

/// Keys kept at most (a deployment has a handful).
const MAX_KEYS: usize = 256;
/// Rendered servers kept at most (about a kilobyte each).
const MAX_SERVERS: usize = 2048;

/// A rendered answer, shared by the requests that send it.
pub type Body = Arc<Vec<u8>>;

/// The database's version an entry was read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version(i64);

#[derive(Default)]
pub struct Answers {
    state: Mutex<Option<State>>,
}

struct State {
    /// Only asked for its data version, never writes: its own commits
    /// would not change its version.
    store: Store,
    version: i64,
    /// By the hash of the secret, as `api_keys.key_hash`.
    keys: HashMap<String, ApiKey>,
    /// By server name: the whole JSON body.
    servers: HashMap<String, Body>,
}

impl Answers {
    /// The key whose secret has the hash `key_hash`, if it is known
    /// unchanged, and the version to [`Answers::keep_key`] it under.
    pub fn key(&self, home: &Home, key_hash: &str) -> Result<(Version, Option<ApiKey>), ApiError> {
        self.look(home, None, |state| state.keys.get(key_hash).cloned())
    }

    /// The rendered answer for server `name`, if it is known unchanged;
    /// `seen`: the version this request has already looked at (its key),
    /// which saves asking the database again.
    pub fn server(
        &self,
        home: &Home,
        name: &str,
        seen: Option<Version>,
    ) -> Result<(Version, Option<Body>), ApiError> {
        self.look(home, seen, |state| state.servers.get(name).cloned())
    }

    /// Keeps `key`, read after [`Answers::key`] said `version`.
    pub fn keep_key(&self, version: Version, key_hash: &str, key: &ApiKey) {
        self.keep(version, |state| {
            if state.keys.len() >= MAX_KEYS {
                state.keys.clear();
            }
            state.keys.insert(key_hash.to_string(), key.clone());
        });
    }

    /// Keeps the answer for `name`, read after [`Answers::server`] said
    /// `version`.
    pub fn keep_server(&self, version: Version, name: &str, body: &Body) {
        self.keep(version, |state| {
            if state.servers.len() >= MAX_SERVERS {
                state.servers.clear();
            }
            state.servers.insert(name.to_string(), Arc::clone(body));
        });
    }

    /// Checks the version (dropping everything on a change) unless the
    /// request has `seen` it already, then looks (only at what is kept
    /// under that version).
    fn look<T>(
        &self,
        home: &Home,
        seen: Option<Version>,
        find: impl FnOnce(&State) -> Option<T>,
    ) -> Result<(Version, Option<T>), ApiError> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = match &mut *guard {
            Some(state) => state,
            empty => {
                let store = Store::open(&home.db_path()).map_err(Error::Store)?;
                let version = store.data_version()?;
                empty.insert(State {
                    store,
                    version,
                    keys: HashMap::new(),
                    servers: HashMap::new(),
                })
            }
        };
        let version = match seen {
            Some(Version(seen)) => seen,
            None => {
                let version = state.store.data_version()?;
                if version != state.version {
                    state.version = version;
                    state.keys.clear();
                    state.servers.clear();
                }
                version
            }
        };
        let found = if version == state.version {
            find(state)
        } else {
            None
        };
        Ok((Version(version), found))
    }

    fn keep(&self, version: Version, put: impl FnOnce(&mut State)) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = &mut *guard
            && state.version == version.0
        {
            put(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ApiKey {
        ApiKey {
            name: name.into(),
            scope: "read".into(),
            created_at: 1,
            last_used_at: None,
        }
    }

    #[test]
    fn a_commit_anywhere_drops_what_was_kept() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path().to_path_buf()).unwrap();
        let writer = Store::open(&home.db_path()).unwrap();
        let answers = Answers::default();
        let (version, none) = answers.key(&home, "h1").unwrap();
        assert_eq!(none, None);
        answers.keep_key(version, "h1", &key("a"));
        let body = Arc::new(b"{}\n".to_vec());
        answers.keep_server(version, "web1", &body);
        assert_eq!(answers.key(&home, "h1").unwrap().1, Some(key("a")));
        assert_eq!(
            answers.server(&home, "web1", None).unwrap().1,
            Some(body.clone())
        );
        // Another connection commits (a revocation, say): all is dropped,
        // and what was read before it is not kept under the new version.
        writer.add_api_key("b", "read", "h2", 5).unwrap();
        assert_eq!(answers.key(&home, "h1").unwrap().1, None);
        answers.keep_key(version, "h1", &key("a"));
        assert_eq!(answers.key(&home, "h1").unwrap().1, None);
        assert_eq!(answers.server(&home, "web1", None).unwrap().1, None);
        // A request that saw the old version finds nothing kept under the
        // new one, and keeps nothing.
        let (now, _) = answers.key(&home, "h1").unwrap();
        answers.keep_server(now, "web1", &body);
        let seen = |name, version| answers.server(&home, name, Some(version)).unwrap().1;
        assert_eq!(seen("web1", now), Some(body.clone()));
        assert_eq!(seen("web1", version), None);
        answers.keep_server(version, "web2", &body);
        assert_eq!(seen("web2", now), None);
    }

    #[test]
    fn the_maps_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path().to_path_buf()).unwrap();
        let answers = Answers::default();
        let (version, _) = answers.key(&home, "x").unwrap();
        for i in 0..MAX_KEYS * 3 {
            answers.keep_key(version, &format!("h{i}"), &key("k"));
            answers.keep_server(version, &format!("s{i}"), &Arc::default());
        }
        let guard = answers.state.lock().unwrap();
        let state = guard.as_ref().unwrap();
        assert!(state.keys.len() <= MAX_KEYS);
        assert!(state.servers.len() <= MAX_SERVERS);
    }
}
