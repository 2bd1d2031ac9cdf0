//! What the console page's power buttons need of the store: the session
//! behind a page and the scope of the key whose link opened it, and the
//! power command of a server still under way.
//!
//! A page keeps its first session row for good (a reconnect gets a row
//! of its own, serve/broker.rs), so that row's `ended_at` says nothing of
//! the page: the page's session is live until `expires_at`, which a
//! revocation sets to its own time.

use rusqlite::{OptionalExtension, params};

use super::command_state::{QUEUED, RUNNING};
use super::{CommandId, Error, SessionId, Store};

/// The console session a page holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSession {
    pub id: SessionId,
    pub server: String,
    pub server_id: i64,
    /// The scope of the key that made the link; `None` when that key is
    /// gone (revoked) or the session was opened without one.
    pub scope: Option<String>,
    /// Its lifetime is not over and nobody asked it to stop.
    pub live: bool,
}

impl Store {
    /// The session with this token hash, live or not; `None` when there
    /// is none.
    pub fn page_session(&self, session_hash: &str, at: i64) -> Result<Option<PageSession>, Error> {
        self.conn
            .prepare_cached(
                "SELECT c.id, c.server, c.server_id, k.scope,
                        c.expires_at > ?2 AND c.stop_requested IS NULL
                 FROM console_sessions c LEFT JOIN api_keys k ON k.name = c.created_by
                 WHERE c.session_hash = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![session_hash, at], |r| {
                    Ok(PageSession {
                        id: r.get(0)?,
                        server: r.get(1)?,
                        server_id: r.get(2)?,
                        scope: r.get(3)?,
                        live: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(self.err("read a console session"))
    }

    /// The newest command among `verbs` for server `name` that is queued
    /// or running, if any.
    pub fn unfinished_command(
        &self,
        name: &str,
        verbs: &[&str],
    ) -> Result<Option<CommandId>, Error> {
        let list = serde_json::to_string(verbs).unwrap_or_else(|_| "[]".into());
        self.conn
            .prepare_cached(&format!(
                "SELECT id FROM commands
                 WHERE arg = ?1 AND state IN ({QUEUED}, {RUNNING})
                   AND cmd IN (SELECT value FROM json_each(?2))
                 ORDER BY id DESC LIMIT 1"
            ))
            .and_then(|mut stmt| stmt.query_row(params![name, list], |r| r.get(0)).optional())
            .map_err(self.err("read the queue"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OpenedLink, Source};
    use crate::verb::CommandLine;

    #[test]
    fn a_page_session_carries_its_keys_scope_until_it_expires() {
        let (_dir, store) = Store::scratch();
        store.add_api_key("ops", "act", "kh", 1).unwrap();
        let link = OpenedLink {
            id: 1,
            server: "srv-1".into(),
            server_id: 7,
            created_by: "ops".into(),
        };
        store
            .add_console_session("sh", &link, "-", 10, 100)
            .unwrap();
        let session = store.page_session("sh", 50).unwrap().unwrap();
        assert_eq!(session.scope.as_deref(), Some("act"));
        assert!(session.live);
        assert_eq!((session.server.as_str(), session.server_id), ("srv-1", 7));
        assert!(!store.page_session("sh", 100).unwrap().unwrap().live);
        assert!(store.page_session("other", 50).unwrap().is_none());

        let line = CommandLine::from_words("reboot", &["srv-1"]).unwrap();
        let id = store.queue(&line, Source::Api).unwrap();
        assert_eq!(
            store
                .unfinished_command("srv-1", &["reboot", "reset"])
                .unwrap(),
            Some(id)
        );
        assert_eq!(store.unfinished_command("srv-1", &["start"]).unwrap(), None);
        assert_eq!(
            store.unfinished_command("srv-2", &["reboot"]).unwrap(),
            None
        );
    }
}
