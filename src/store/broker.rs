//! Brokered console sessions: their one-time websocket tickets, what each
//! carried and how it ended, and the stop requests another process may
//! leave for them (`console_sessions.stop_requested`).
//!
//! A ticket is stored only as its SHA-256 and is claimed by one
//! conditional UPDATE, so that of two upgrades with the same ticket
//! exactly one gets the session. A row is one websocket session: a page
//! that reconnects gets a new row (same server, link and key), so every
//! connection has its own bytes, times and end reason.

use rusqlite::{OptionalExtension, params};

use super::{Error, Store};

/// A claimed ticket: the session it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub server: String,
    pub server_id: i64,
    /// The server is suspended: the session is ended at once.
    pub suspended: bool,
}

/// What a page's session knows of its latest connection: what a page
/// that could not connect tells its user (`POST /c/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageStatus {
    pub server: String,
    /// The page may still fetch fresh credentials.
    pub live: bool,
    /// The server's console access is suspended.
    pub suspended: bool,
    /// The server's status as hcc last saw it (`off`, `running`, ...).
    pub server_status: Option<String>,
    /// Why the page's newest connection ended, when it did.
    pub last_end: Option<String>,
}

/// The session a ticket would open, before it is claimed: what the caps
/// on live sessions are counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketOwner {
    pub id: i64,
    pub server: String,
    pub created_by: Option<String>,
    pub link_id: Option<i64>,
}

/// Live brokered sessions that count against a new one's caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCounts {
    /// On the same server.
    pub on_server: i64,
    /// Opened through the same API key.
    pub for_key: i64,
}

impl Store {
    /// The session an unexpired, unused ticket opens; `None` otherwise.
    pub fn ticket_owner(&self, ticket_hash: &str, at: i64) -> Result<Option<TicketOwner>, Error> {
        self.conn
            .query_row(
                "SELECT id, server, created_by, link_id FROM console_sessions
                 WHERE ticket_hash = ?1 AND ticket_expires_at > ?2 AND connected_at IS NULL
                   AND ended_at IS NULL AND stop_requested IS NULL AND expires_at > ?2",
                params![ticket_hash, at],
                |r| {
                    Ok(TicketOwner {
                        id: r.get(0)?,
                        server: r.get(1)?,
                        created_by: r.get(2)?,
                        link_id: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("read a console ticket"))
    }

    /// The live brokered sessions (any process's) a new session of
    /// `owner` counts with: its server's and its key's, not those of its
    /// own page, which the new one replaces, nor those already asked to
    /// stop.
    pub fn live_console_counts(&self, owner: &TicketOwner) -> Result<LiveCounts, Error> {
        self.conn
            .query_row(
                "SELECT
                   count(*) FILTER (WHERE server = ?1),
                   count(*) FILTER (WHERE ?2 IS NOT NULL AND created_by = ?2)
                 FROM console_sessions
                 WHERE mode = 'broker' AND connected_at IS NOT NULL AND ended_at IS NULL
                   AND stop_requested IS NULL AND NOT (?3 IS NOT NULL AND link_id IS ?3)",
                params![owner.server, owner.created_by, owner.link_id],
                |r| {
                    Ok(LiveCounts {
                        on_server: r.get(0)?,
                        for_key: r.get(1)?,
                    })
                },
            )
            .map_err(self.err("count live console sessions"))
    }

    /// Spends a ticket without connecting: its row ends with `reason` (a
    /// cap was reached), which is what the page is told.
    pub fn refuse_ticket(&self, ticket_hash: &str, at: i64, reason: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE console_sessions SET ended_at = ?2, end_reason = ?3, ticket_expires_at = ?2,
                     last_seen_at = ?2
                 WHERE ticket_hash = ?1 AND connected_at IS NULL AND ended_at IS NULL",
                params![ticket_hash, at, reason],
            )
            .map(drop)
            .map_err(self.err("refuse a console ticket"))
    }

    /// The status of the page session with this hash at `at`; `None` for
    /// an unknown session. The page's newest connection is the newest row
    /// of its link (a brokered reconnect gets a row of its own).
    pub fn page_status(&self, session_hash: &str, at: i64) -> Result<Option<PageStatus>, Error> {
        self.conn
            .query_row(
                "SELECT p.server, p.expires_at > ?2,
                   EXISTS (SELECT 1 FROM suspended s WHERE s.server = p.server),
                   (SELECT status FROM servers v WHERE v.name = p.server),
                   (SELECT coalesce(n.end_reason, n.stop_requested) FROM console_sessions n
                     WHERE n.id = p.id OR (n.link_id = p.link_id AND n.id > p.id)
                     ORDER BY n.id DESC LIMIT 1)
                 FROM console_sessions p WHERE p.session_hash = ?1",
                params![session_hash, at],
                |r| {
                    Ok(PageStatus {
                        server: r.get(0)?,
                        live: r.get(1)?,
                        suspended: r.get(2)?,
                        server_status: r.get(3)?,
                        last_end: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("read a console session"))
    }

    /// Makes session `id` a brokered one, waiting for the websocket with
    /// this ticket until `ticket_expires_at`.
    pub fn issue_ticket(
        &self,
        id: i64,
        ticket_hash: &str,
        ticket_expires_at: i64,
    ) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE console_sessions SET mode = 'broker', ticket_hash = ?2, ticket_expires_at = ?3
                 WHERE id = ?1",
                params![id, ticket_hash, ticket_expires_at],
            )
            .map(drop)
            .map_err(self.err("issue a console ticket"))
    }

    /// A ticket for a page's next connection: on its own row when that row
    /// never connected, else on a new row like it (`session_hash` is a
    /// fresh random value's hash: the page keeps refreshing through the
    /// first row). Returns the row's id; `None` when a session of the same
    /// link was asked to stop (revoked, suspended): that page is done.
    pub fn reissue_ticket(
        &self,
        from: i64,
        session_hash: &str,
        ticket_hash: &str,
        ticket_expires_at: i64,
        at: i64,
    ) -> Result<Option<i64>, Error> {
        let stopped: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM console_sessions o, console_sessions c
                   WHERE c.id = ?1 AND o.stop_requested IS NOT NULL
                     AND (o.id = c.id OR o.link_id = c.link_id))",
                [from],
                |r| r.get(0),
            )
            .map_err(self.err("read a console session"))?;
        if stopped {
            return Ok(None);
        }
        let reused = self
            .conn
            .execute(
                "UPDATE console_sessions SET mode = 'broker', ticket_hash = ?2, ticket_expires_at = ?3
                 WHERE id = ?1 AND connected_at IS NULL AND ended_at IS NULL",
                params![from, ticket_hash, ticket_expires_at],
            )
            .map_err(self.err("issue a console ticket"))?;
        if reused == 1 {
            return Ok(Some(from));
        }
        let added = self
            .conn
            .execute(
                "INSERT INTO console_sessions
                     (session_hash, server, server_id, link_id, created_by, remote,
                      started_at, last_seen_at, expires_at, mode, ticket_hash, ticket_expires_at)
                 SELECT ?2, server, server_id, link_id, created_by, remote,
                        ?5, ?5, expires_at, 'broker', ?3, ?4
                 FROM console_sessions WHERE id = ?1",
                params![from, session_hash, ticket_hash, ticket_expires_at, at],
            )
            .map_err(self.err("issue a console ticket"))?;
        Ok((added == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// Claims a ticket: unexpired, its session never connected, not ended,
    /// nobody asked it to stop. Exactly one caller gets it.
    pub fn claim_ticket(
        &self,
        ticket_hash: &str,
        at: i64,
        user_agent: &str,
    ) -> Result<Option<Claimed>, Error> {
        self.conn
            .query_row(
                "UPDATE console_sessions SET connected_at = ?2, user_agent = ?3, last_seen_at = ?2
                 WHERE ticket_hash = ?1 AND ticket_expires_at > ?2 AND connected_at IS NULL
                   AND ended_at IS NULL AND stop_requested IS NULL AND expires_at > ?2
                 RETURNING id, server, server_id,
                   EXISTS (SELECT 1 FROM suspended s WHERE s.server = console_sessions.server)",
                params![ticket_hash, at, user_agent],
                |r| {
                    Ok(Claimed {
                        id: r.get(0)?,
                        server: r.get(1)?,
                        server_id: r.get(2)?,
                        suspended: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("claim a console ticket"))
    }

    /// Why a live session must end now, if it must: a stop request
    /// (`revoked`, `suspended`), its server suspended, or its lifetime
    /// over (`expired`).
    pub fn stop_reason(&self, id: i64, at: i64) -> Result<Option<String>, Error> {
        let row: Option<(Option<String>, i64, bool)> = self
            .conn
            .prepare_cached(
                "SELECT stop_requested, expires_at,
                   EXISTS (SELECT 1 FROM suspended s WHERE s.server = console_sessions.server)
                 FROM console_sessions WHERE id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(self.err("read a console session"))?;
        Ok(match row {
            None => Some("revoked".into()),
            Some((Some(why), _, _)) => Some(why),
            Some((None, _, true)) => Some("suspended".into()),
            Some((None, expires_at, _)) if expires_at <= at => Some("expired".into()),
            Some(_) => None,
        })
    }

    /// Records the bytes a live session carried so far.
    pub fn session_bytes(
        &self,
        id: i64,
        to_client: u64,
        from_client: u64,
        at: i64,
    ) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE console_sessions SET bytes_to_client = ?2, bytes_from_client = ?3,
                     last_seen_at = ?4
                 WHERE id = ?1",
                params![id, to_client as i64, from_client as i64, at],
            )
            .map(drop)
            .map_err(self.err("record a console session's bytes"))
    }

    /// Ends the brokered sessions that connected and were not heard of for
    /// `stale_after` seconds: the process relaying them died without
    /// recording their end (a relay writes its bytes every 10 seconds, a
    /// handshake takes under a minute). Returns how many.
    pub fn end_abandoned_sessions(&self, at: i64, stale_after: i64) -> Result<usize, Error> {
        self.conn
            .execute(
                "UPDATE console_sessions SET ended_at = ?1,
                     end_reason = 'error: the hcc serve relaying it stopped without ending it'
                 WHERE mode = 'broker' AND connected_at IS NOT NULL AND ended_at IS NULL
                   AND last_seen_at < ?1 - ?2",
                params![at, stale_after],
            )
            .map_err(self.err("end abandoned console sessions"))
    }

    /// Records a session's end (once: a later call changes nothing).
    pub fn end_session(
        &self,
        id: i64,
        at: i64,
        reason: &str,
        to_client: u64,
        from_client: u64,
    ) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE console_sessions SET ended_at = ?2, end_reason = ?3,
                     bytes_to_client = ?4, bytes_from_client = ?5, last_seen_at = ?2
                 WHERE id = ?1 AND ended_at IS NULL",
                params![id, at, reason, to_client as i64, from_client as i64],
            )
            .map(drop)
            .map_err(self.err("record a console session's end"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pages_status_is_its_newest_connection_and_its_servers_state() {
        let (_dir, store) = Store::scratch();
        store
            .add_console_link("l1", ("web1", 7), "billing", 100, 400)
            .unwrap();
        let link = store.consume_console_link("l1", 100, "x").unwrap().unwrap();
        let id = store
            .add_console_session("s1", &link, "127.0.0.1", 100, 1000)
            .unwrap();
        assert_eq!(store.page_status("nope", 110).unwrap(), None);
        let status = store.page_status("s1", 110).unwrap().unwrap();
        assert!(status.live && !status.suspended);
        assert_eq!((status.last_end, status.server_status), (None, None));
        // Connected and ended; a reconnect's row of its own failed later.
        store.reissue_ticket(id, "r0", "t1", 130, 110).unwrap();
        store.claim_ticket("t1", 111, "ua").unwrap().unwrap();
        store.end_session(id, 120, "client closed", 1, 1).unwrap();
        let next = store
            .reissue_ticket(id, "r1", "t2", 150, 121)
            .unwrap()
            .unwrap();
        assert_ne!(next, id);
        store.claim_ticket("t2", 122, "ua").unwrap().unwrap();
        store
            .end_session(next, 123, "error: refused", 0, 0)
            .unwrap();
        let status = store.page_status("s1", 124).unwrap().unwrap();
        assert_eq!(status.last_end.as_deref(), Some("error: refused"));
        assert!(!store.page_status("s1", 1000).unwrap().unwrap().live);
    }
}
