//! Who may reach the servers through `hcc serve`: API keys, one-time
//! console links and the console sessions they open.
//!
//! Only SHA-256 hashes of keys, link tokens and session tokens are stored,
//! so a copy of the database opens nothing. A link is consumed by one
//! conditional UPDATE: of two concurrent opens exactly one wins.
//! `console_sessions` is also the audit trail: which server, opened by
//! which key's link, from where, when, how often refreshed; never a secret.

use rusqlite::{OptionalExtension, params};

use super::{Error, SessionId, Store, sqlite_err};

/// What an API key may do: stored as [`Scope::as_str`] in `api_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read servers, commands, status.
    Read,
    /// Read, and queue actions but `create` and `kill`.
    Act,
    /// Read, console credentials and one-time console links.
    Console,
    /// Everything.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Act => "act",
            Scope::Console => "console",
            Scope::Admin => "admin",
        }
    }

    pub fn from_stored(text: &str) -> Option<Scope> {
        Some(match text {
            "read" => Scope::Read,
            "act" => Scope::Act,
            "console" => Scope::Console,
            "admin" => Scope::Admin,
            _ => return None,
        })
    }
}

/// An API key as listed (its hash stays inside the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A consumed link: which server it opens and whose key made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedLink {
    pub id: i64,
    pub server: String,
    /// The Hetzner id the link was made for: a server deleted and made
    /// again under the same name is another server.
    pub server_id: i64,
    pub created_by: String,
}

/// A console session that may fetch fresh credentials now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub server: String,
    pub server_id: i64,
}

/// Why a session may not fetch fresh credentials now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Unknown, expired or ended.
    Ended,
    /// The last refresh was less than the minimum gap ago.
    TooSoon,
    /// It used up its refreshes.
    Exhausted,
}

/// Links this long past their expiry are deleted when a new one is made.
const LINK_KEEP_SECS: i64 = 7 * 24 * 3600;
/// Sessions (the audit trail) are kept this long after they ended.
const SESSION_KEEP_SECS: i64 = 180 * 24 * 3600;

impl Store {
    /// Adds a key; false when the name is taken.
    pub fn add_api_key(
        &self,
        name: &str,
        scope: &str,
        key_hash: &str,
        at: i64,
    ) -> Result<bool, Error> {
        self.conn
            .execute(
                "INSERT INTO api_keys (name, scope, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO NOTHING",
                params![name, scope, key_hash, at],
            )
            .map(|n| n == 1)
            .map_err(self.err("add an API key"))
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKey>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, scope, created_at, last_used_at FROM api_keys ORDER BY name")
            .map_err(self.err("read API keys"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ApiKey {
                    name: r.get(0)?,
                    scope: r.get(1)?,
                    created_at: r.get(2)?,
                    last_used_at: r.get(3)?,
                })
            })
            .map_err(self.err("read API keys"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("read API keys"))
    }

    /// Deletes a key, the links it made that nobody opened yet, and ends
    /// the console sessions opened through its links; false when there was
    /// no key by that name.
    pub fn revoke_api_key(&mut self, name: &str, at: i64) -> Result<bool, Error> {
        let path = self.path.clone();
        let err = sqlite_err(&path, "revoke an API key");
        let tx = self.immediate("revoke an API key")?;
        let revoked = tx
            .execute("DELETE FROM api_keys WHERE name = ?1", [name])
            .map_err(&err)?
            == 1;
        if revoked {
            tx.execute(
                "DELETE FROM console_links WHERE created_by = ?1 AND opened_at IS NULL",
                [name],
            )
            .map_err(&err)?;
            // Its live brokered sessions end as revoked (not as expired:
            // the record says why), its direct ones with their page.
            super::sessions::revoke_sessions(
                &tx,
                super::sessions::Opened::ByKey,
                name,
                at,
                &super::EndCode::Revoked.into(),
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(revoked)
    }

    pub fn api_key_count(&self) -> Result<i64, Error> {
        self.conn
            .query_row("SELECT count(*) FROM api_keys", [], |r| r.get(0))
            .map_err(self.err("count API keys"))
    }

    /// The key with this hash: name, scope, last use.
    pub fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, Error> {
        self.conn
            .prepare_cached(
                "SELECT name, scope, created_at, last_used_at FROM api_keys WHERE key_hash = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([key_hash], |r| {
                    Ok(ApiKey {
                        name: r.get(0)?,
                        scope: r.get(1)?,
                        created_at: r.get(2)?,
                        last_used_at: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(self.err("read an API key"))
    }

    pub fn touch_api_key(&self, name: &str, at: i64) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE api_keys SET last_used_at = ?2 WHERE name = ?1",
                params![name, at],
            )
            .map(drop)
            .map_err(self.err("record an API key's use"))
    }

    /// Records a new link and forgets links long expired.
    pub fn add_console_link(
        &self,
        token_hash: &str,
        (server, server_id): (&str, i64),
        created_by: &str,
        at: i64,
        expires_at: i64,
    ) -> Result<i64, Error> {
        self.conn
            .execute(
                "DELETE FROM console_links WHERE expires_at < ?1",
                [at - LINK_KEEP_SECS],
            )
            .map_err(self.err("forget old console links"))?;
        self.conn
            .execute(
                "INSERT INTO console_links
                     (token_hash, server, server_id, created_by, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![token_hash, server, server_id, created_by, at, expires_at],
            )
            .map_err(self.err("add a console link"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Consumes an unused, unexpired link of a server that is not
    /// suspended: exactly one caller gets it.
    pub fn consume_console_link(
        &self,
        token_hash: &str,
        at: i64,
        from: &str,
    ) -> Result<Option<OpenedLink>, Error> {
        self.conn
            .query_row(
                "UPDATE console_links SET opened_at = ?2, opened_from = ?3
                 WHERE token_hash = ?1 AND opened_at IS NULL AND expires_at > ?2
                   AND NOT EXISTS (SELECT 1 FROM suspended s WHERE s.server = console_links.server)
                 RETURNING id, server, server_id, created_by",
                params![token_hash, at, from],
                |r| {
                    Ok(OpenedLink {
                        id: r.get(0)?,
                        server: r.get(1)?,
                        server_id: r.get(2)?,
                        created_by: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("open a console link"))
    }

    /// Makes a consumed link usable again (the console could not be
    /// requested, so the customer may reload); it keeps its expiry.
    pub fn release_console_link(&self, id: i64) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE console_links SET opened_at = NULL, opened_from = NULL WHERE id = ?1",
                [id],
            )
            .map(drop)
            .map_err(self.err("release a console link"))
    }

    /// Records the session a link opened (and forgets sessions that ended
    /// long ago).
    pub fn add_console_session(
        &self,
        session_hash: &str,
        link: &OpenedLink,
        remote: &str,
        at: i64,
        expires_at: i64,
    ) -> Result<SessionId, Error> {
        self.conn
            .execute(
                "DELETE FROM console_sessions WHERE expires_at < ?1",
                [at - SESSION_KEEP_SECS],
            )
            .map_err(self.err("forget old console sessions"))?;
        self.conn
            .execute(
                "INSERT INTO console_sessions
                     (session_hash, server, server_id, link_id, created_by, remote,
                      started_at, last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
                params![
                    session_hash,
                    link.server,
                    link.server_id,
                    link.id,
                    link.created_by,
                    remote,
                    at,
                    expires_at
                ],
            )
            .map_err(self.err("record a console session"))?;
        // The first row of a page session names itself as the page; its
        // reconnects' rows copy this (store/broker.rs).
        let id = SessionId::new(self.conn.last_insert_rowid());
        self.conn
            .execute(
                "UPDATE console_sessions SET page_id = id WHERE id = ?1",
                [id],
            )
            .map_err(self.err("record a console session"))?;
        Ok(id)
    }

    /// Claims one refresh of a session's credentials, in one statement so
    /// that concurrent requests cannot both pass the checks: the session is
    /// live, its last refresh at least `gap` seconds ago (the first may come
    /// at once), fewer than `most` so far.
    pub fn claim_refresh(
        &self,
        session_hash: &str,
        at: i64,
        gap: i64,
        most: i64,
    ) -> Result<Result<Session, Refused>, Error> {
        let claimed = self
            .conn
            .query_row(
                "UPDATE console_sessions SET last_seen_at = ?2, refreshes = refreshes + 1
                 WHERE session_hash = ?1 AND expires_at > ?2 AND refreshes < ?4
                   AND (refreshes = 0 OR last_seen_at <= ?2 - ?3)
                 RETURNING id, server, server_id",
                params![session_hash, at, gap, most],
                |r| {
                    Ok(Session {
                        id: r.get(0)?,
                        server: r.get(1)?,
                        server_id: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("record a console refresh"))?;
        if let Some(session) = claimed {
            return Ok(Ok(session));
        }
        let refreshes: Option<i64> = self
            .conn
            .query_row(
                "SELECT refreshes FROM console_sessions WHERE session_hash = ?1 AND expires_at > ?2",
                params![session_hash, at],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("read a console session"))?;
        Ok(Err(match refreshes {
            None => Refused::Ended,
            Some(n) if n >= most => Refused::Exhausted,
            Some(_) => Refused::TooSoon,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_hash_and_names_are_unique() {
        let (_dir, mut store) = Store::scratch();
        assert!(store.add_api_key("billing", "console", "h1", 10).unwrap());
        assert!(!store.add_api_key("billing", "admin", "h2", 11).unwrap());
        let key = store.api_key_by_hash("h1").unwrap().unwrap();
        assert_eq!(
            (key.name.as_str(), key.scope.as_str()),
            ("billing", "console")
        );
        assert!(store.api_key_by_hash("h2").unwrap().is_none());
        store.touch_api_key("billing", 20).unwrap();
        assert_eq!(store.api_keys().unwrap()[0].last_used_at, Some(20));
        assert!(store.revoke_api_key("billing", 30).unwrap());
        assert!(!store.revoke_api_key("billing", 30).unwrap());
        assert!(store.api_key_by_hash("h1").unwrap().is_none());
        assert_eq!(store.api_key_count().unwrap(), 0);
    }

    #[test]
    fn a_link_opens_once_before_it_expires_and_can_be_released() {
        let (_dir, store) = Store::scratch();
        store
            .add_console_link("t1", ("web1", 7), "billing", 100, 400)
            .unwrap();
        store
            .add_console_link("t2", ("web1", 7), "billing", 100, 400)
            .unwrap();
        let opened = store
            .consume_console_link("t1", 200, "10.0.0.1")
            .unwrap()
            .unwrap();
        assert_eq!((opened.server.as_str(), opened.server_id), ("web1", 7));
        assert!(
            store
                .consume_console_link("t1", 201, "10.0.0.1")
                .unwrap()
                .is_none()
        );
        store.release_console_link(opened.id).unwrap();
        assert!(
            store
                .consume_console_link("t1", 202, "x")
                .unwrap()
                .is_some()
        );
        // Expired: at 400 the link is over.
        assert!(
            store
                .consume_console_link("t2", 400, "x")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .consume_console_link("nope", 200, "x")
                .unwrap()
                .is_none()
        );
    }

    fn session(store: &Store, hash: &str, by: &str) {
        store
            .add_console_link(&format!("l-{hash}"), ("web1", 7), by, 100, 400)
            .unwrap();
        let link = store
            .consume_console_link(&format!("l-{hash}"), 100, "127.0.0.1")
            .unwrap()
            .unwrap();
        store
            .add_console_session(hash, &link, "127.0.0.1", 100, 1000)
            .unwrap();
    }

    #[test]
    fn refreshes_are_claimed_one_at_a_time_and_run_out() {
        let (_dir, store) = Store::scratch();
        session(&store, "s1", "billing");
        // The first at once, then one per gap, at most `most`.
        let claim = |at| store.claim_refresh("s1", at, 3, 3).unwrap();
        assert_eq!(claim(100).unwrap().server_id, 7);
        assert_eq!(claim(101), Err(Refused::TooSoon));
        assert!(claim(103).is_ok());
        assert!(claim(106).is_ok());
        assert_eq!(claim(200), Err(Refused::Exhausted));
        assert_eq!(claim(1000), Err(Refused::Ended));
        assert_eq!(
            store.claim_refresh("nope", 100, 3, 3).unwrap(),
            Err(Refused::Ended)
        );
    }

    #[test]
    fn revoking_a_key_ends_what_it_opened() {
        let (_dir, mut store) = Store::scratch();
        store.add_api_key("billing", "console", "h1", 10).unwrap();
        store.add_api_key("other", "console", "h2", 10).unwrap();
        session(&store, "s1", "billing");
        session(&store, "s2", "other");
        store
            .add_console_link("unopened", ("web1", 7), "billing", 100, 400)
            .unwrap();
        assert!(store.revoke_api_key("billing", 150).unwrap());
        assert_eq!(
            store.claim_refresh("s1", 150, 3, 9).unwrap(),
            Err(Refused::Ended)
        );
        assert!(store.claim_refresh("s2", 150, 3, 9).unwrap().is_ok());
        assert!(
            store
                .consume_console_link("unopened", 150, "x")
                .unwrap()
                .is_none()
        );
    }
}
