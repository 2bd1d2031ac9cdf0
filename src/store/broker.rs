//! Brokered console sessions: their one-time websocket tickets, what each
//! carried and how it ended, and the stop requests another process may
//! leave for them (`console_sessions.stop_requested`).
//!
//! A ticket is stored only as its SHA-256 and is claimed by one
//! conditional UPDATE, so that of two upgrades with the same ticket
//! exactly one gets the session. A row is one websocket connection: a
//! page that reconnects gets a new row (same server, link, key and page
//! session, `page_id`), so every connection has its own bytes, times, end
//! reason, client address and user agent. A page session holds one relay:
//! a connection made with a new ticket asks the page's previous one to
//! stop (`replaced`).

use rusqlite::{OptionalExtension, params};

use super::{EndCode, EndReason, Error, SessionId, Store};

/// A claimed ticket: the session it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: SessionId,
    pub server: String,
    pub server_id: i64,
    /// The server is suspended: the session is ended at once.
    pub suspended: bool,
    /// Earlier connections of the same page session asked to stop
    /// (`replaced`).
    pub replaced: usize,
}

/// A row's page session: its `page_id`, or the row itself for a row
/// written without one (by hand, or by an older hcc).
const PAGE_OF: &str = "coalesce(page_id, id)";

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
    pub last_end: Option<EndReason>,
    /// The connection of the ticket the page asked about was replaced by
    /// a newer one of the same page session (another tab of it).
    pub replaced: bool,
}

/// The session a ticket would open, before it is claimed: what the caps
/// on live sessions are counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketOwner {
    pub id: SessionId,
    pub server: String,
    pub created_by: Option<String>,
    /// Its page session (the id of the page's first row).
    pub page: SessionId,
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
                "SELECT id, server, created_by, coalesce(page_id, id) FROM console_sessions
                 WHERE ticket_hash = ?1 AND ticket_expires_at > ?2 AND connected_at IS NULL
                   AND ended_at IS NULL AND stop_requested IS NULL AND expires_at > ?2",
                params![ticket_hash, at],
                |r| {
                    Ok(TicketOwner {
                        id: r.get(0)?,
                        server: r.get(1)?,
                        created_by: r.get(2)?,
                        page: r.get(3)?,
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
                   AND stop_requested IS NULL AND coalesce(page_id, id) <> ?3",
                params![owner.server, owner.created_by, owner.page],
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
    pub fn refuse_ticket(
        &self,
        ticket_hash: &str,
        at: i64,
        reason: &EndReason,
    ) -> Result<(), Error> {
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
    /// of its page session (a brokered reconnect gets a row of its own).
    /// `ticket_hash` names the connection the asking page made last: was
    /// it replaced?
    pub fn page_status(
        &self,
        session_hash: &str,
        at: i64,
        ticket_hash: Option<&str>,
    ) -> Result<Option<PageStatus>, Error> {
        self.conn
            .query_row(
                "SELECT p.server, p.expires_at > ?2,
                   EXISTS (SELECT 1 FROM suspended s WHERE s.server = p.server),
                   (SELECT status FROM servers v WHERE v.name = p.server),
                   (SELECT coalesce(n.end_reason, n.stop_requested) FROM console_sessions n
                     WHERE n.page_id = coalesce(p.page_id, p.id) OR n.id = p.id
                     ORDER BY n.id DESC LIMIT 1),
                   EXISTS (SELECT 1 FROM console_sessions t
                     WHERE t.ticket_hash = ?3
                       AND (t.page_id = coalesce(p.page_id, p.id) OR t.id = p.id)
                       AND coalesce(t.end_reason, t.stop_requested) = 'replaced')
                 FROM console_sessions p WHERE p.session_hash = ?1",
                params![session_hash, at, ticket_hash],
                |r| {
                    Ok(PageStatus {
                        server: r.get(0)?,
                        live: r.get(1)?,
                        suspended: r.get(2)?,
                        server_status: r.get(3)?,
                        last_end: r.get(4)?,
                        replaced: r.get(5)?,
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
        id: SessionId,
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
    /// first row). Returns the row's id; `None` when a connection of the
    /// same page session was asked to stop (revoked, suspended; not one
    /// that a newer connection replaced): that page is done.
    pub fn reissue_ticket(
        &self,
        from: SessionId,
        session_hash: &str,
        ticket_hash: &str,
        ticket_expires_at: i64,
        at: i64,
    ) -> Result<Option<SessionId>, Error> {
        let stopped: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM console_sessions o, console_sessions c
                   WHERE c.id = ?1 AND o.stop_requested IS NOT NULL
                     AND o.stop_requested <> 'replaced'
                     AND (o.page_id = coalesce(c.page_id, c.id)
                          OR o.id = coalesce(c.page_id, c.id)))",
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
                     (session_hash, server, server_id, link_id, created_by, remote, user_agent,
                      started_at, last_seen_at, expires_at, mode, ticket_hash, ticket_expires_at,
                      page_id)
                 SELECT ?2, server, server_id, link_id, created_by, remote, user_agent,
                        ?5, ?5, expires_at, 'broker', ?3, ?4, coalesce(page_id, id)
                 FROM console_sessions WHERE id = ?1",
                params![from, session_hash, ticket_hash, ticket_expires_at, at],
            )
            .map_err(self.err("issue a console ticket"))?;
        Ok((added == 1).then(|| SessionId::new(self.conn.last_insert_rowid())))
    }

    /// Claims a ticket: unexpired, its session never connected, not ended,
    /// nobody asked it to stop. Exactly one caller gets it. The connection
    /// records its own client address and user agent (the page's stay
    /// beside them), and every other live connection of its page session
    /// is asked to stop (`replaced`): one page session holds one relay,
    /// however often it reloads. One transaction, so that of two tickets
    /// of one page claimed at once, the later one is the one that stays.
    pub fn claim_ticket(
        &self,
        ticket_hash: &str,
        at: i64,
        remote: &str,
        user_agent: &str,
    ) -> Result<Option<Claimed>, Error> {
        self.immediately("claim a console ticket", || {
            let claimed = self
                .conn
                .query_row(
                    &format!(
                        "UPDATE console_sessions SET connected_at = ?2, connection_remote = ?3,
                             connection_user_agent = ?4, last_seen_at = ?2
                         WHERE ticket_hash = ?1 AND ticket_expires_at > ?2 AND connected_at IS NULL
                           AND ended_at IS NULL AND stop_requested IS NULL AND expires_at > ?2
                         RETURNING id, server, server_id,
                           EXISTS (SELECT 1 FROM suspended s
                                    WHERE s.server = console_sessions.server),
                           {PAGE_OF}"
                    ),
                    params![ticket_hash, at, remote, user_agent],
                    |r| {
                        Ok((
                            Claimed {
                                id: r.get(0)?,
                                server: r.get(1)?,
                                server_id: r.get(2)?,
                                suspended: r.get(3)?,
                                replaced: 0,
                            },
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(self.err("claim a console ticket"))?;
            let Some((mut claimed, page)) = claimed else {
                return Ok(None);
            };
            claimed.replaced = self
                .conn
                .execute(
                    "UPDATE console_sessions SET stop_requested = 'replaced'
                     WHERE (page_id = ?1 OR id = ?1) AND id <> ?2 AND connected_at IS NOT NULL
                       AND ended_at IS NULL AND stop_requested IS NULL",
                    params![page, claimed.id],
                )
                .map_err(self.err("claim a console ticket"))?;
            Ok(Some(claimed))
        })
    }

    /// Why a live session must end now, if it must: a stop request
    /// (`revoked`, `suspended`, `replaced`), its server suspended, or its lifetime
    /// over (`expired`).
    pub fn stop_reason(&self, id: SessionId, at: i64) -> Result<Option<EndReason>, Error> {
        let row: Option<(Option<EndReason>, i64, bool)> = self
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
            None => Some(EndCode::Revoked.into()),
            Some((Some(why), _, _)) => Some(why),
            Some((None, _, true)) => Some(EndCode::Suspended.into()),
            Some((None, expires_at, _)) if expires_at <= at => Some(EndCode::Expired.into()),
            Some(_) => None,
        })
    }

    /// Records the bytes a live session carried so far.
    pub fn session_bytes(
        &self,
        id: SessionId,
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
                "UPDATE console_sessions SET ended_at = ?1, end_reason = ?3
                 WHERE mode = 'broker' AND connected_at IS NOT NULL AND ended_at IS NULL
                   AND last_seen_at < ?1 - ?2",
                params![at, stale_after, EndReason::of(EndCode::Abandoned)],
            )
            .map_err(self.err("end abandoned console sessions"))
    }

    /// Records a session's end (once: a later call changes nothing).
    pub fn end_session(
        &self,
        id: SessionId,
        at: i64,
        reason: &EndReason,
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
        assert_eq!(store.page_status("nope", 110, None).unwrap(), None);
        let status = store.page_status("s1", 110, None).unwrap().unwrap();
        assert!(status.live && !status.suspended);
        assert_eq!((status.last_end, status.server_status), (None, None));
        // Connected and ended; a reconnect's row of its own failed later.
        store.reissue_ticket(id, "r0", "t1", 130, 110).unwrap();
        store
            .claim_ticket("t1", 111, "10.0.0.1", "ua")
            .unwrap()
            .unwrap();
        store
            .end_session(id, 120, &EndReason::parse("client closed"), 1, 1)
            .unwrap();
        let next = store
            .reissue_ticket(id, "r1", "t2", 150, 121)
            .unwrap()
            .unwrap();
        assert_ne!(next, id);
        store
            .claim_ticket("t2", 122, "10.0.0.1", "ua")
            .unwrap()
            .unwrap();
        store
            .end_session(next, 123, &EndReason::parse("error: refused"), 0, 0)
            .unwrap();
        let status = store.page_status("s1", 124, None).unwrap().unwrap();
        assert_eq!(
            status.last_end.map(|r| r.words()).as_deref(),
            Some("error: refused")
        );
        assert!(!store.page_status("s1", 1000, None).unwrap().unwrap().live);
    }

    #[test]
    fn a_new_connection_replaces_its_pages_live_one_and_records_its_own_client() {
        let (_dir, store) = Store::scratch();
        let page = |token: &str| {
            store
                .add_console_link(token, ("web1", 7), "billing", 100, 400)
                .unwrap();
            let link = store
                .consume_console_link(token, 100, "x")
                .unwrap()
                .unwrap();
            let id = store
                .add_console_session(&format!("s-{token}"), &link, "192.0.2.1", 100, 1000)
                .unwrap();
            store.set_session_user_agent(id, "page-ua").unwrap();
            id
        };
        let first = page("l1");
        let other = page("l2");
        store.reissue_ticket(first, "r0", "t1", 130, 110).unwrap();
        let one = store
            .claim_ticket("t1", 111, "198.51.100.9", "conn-ua-1")
            .unwrap()
            .unwrap();
        assert_eq!((one.id, one.replaced), (first, 0));
        store.reissue_ticket(other, "r9", "t9", 130, 110).unwrap();
        store
            .claim_ticket("t9", 111, "192.0.2.1", "ua")
            .unwrap()
            .unwrap();
        // The page reloads: a new row of the same page, whose claim asks
        // the first connection (and only it) to stop.
        let next = store
            .reissue_ticket(first, "r1", "t2", 150, 120)
            .unwrap()
            .unwrap();
        assert_ne!(next, first);
        let two = store
            .claim_ticket("t2", 121, "203.0.113.5", "conn-ua-2")
            .unwrap()
            .unwrap();
        assert_eq!((two.id, two.replaced), (next, 1));
        assert_eq!(
            store.stop_reason(first, 122).unwrap(),
            Some(EndCode::Replaced.into())
        );
        assert_eq!(store.stop_reason(next, 122).unwrap(), None);
        assert_eq!(store.stop_reason(other, 122).unwrap(), None);
        // A replaced connection is no reason to refuse the page a ticket.
        store
            .end_session(first, 122, &EndReason::parse("replaced"), 5, 5)
            .unwrap();
        assert!(
            store
                .reissue_ticket(first, "r2", "t3", 160, 123)
                .unwrap()
                .is_some()
        );
        let row = |id: SessionId| -> (SessionId, String, String, String, String) {
            store
                .conn
                .query_row(
                    "SELECT page_id, remote, user_agent, connection_remote, connection_user_agent
                     FROM console_sessions WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .unwrap()
        };
        assert_eq!(
            row(first),
            (
                first,
                "192.0.2.1".into(),
                "page-ua".into(),
                "198.51.100.9".into(),
                "conn-ua-1".into()
            )
        );
        assert_eq!(
            row(next),
            (
                first,
                "192.0.2.1".into(),
                "page-ua".into(),
                "203.0.113.5".into(),
                "conn-ua-2".into()
            )
        );
    }

    #[test]
    fn a_page_without_a_link_holds_one_relay_too() {
        let (_dir, store) = Store::scratch();
        // A page session that no link opened (as a panel's own page, or a
        // row an older hcc wrote without a page).
        store
            .conn
            .execute(
                "INSERT INTO console_sessions
                     (session_hash, server, server_id, created_by, started_at, last_seen_at,
                      expires_at)
                 VALUES ('p', 'web1', 7, 'panel', 100, 100, 1000)",
                [],
            )
            .unwrap();
        let page = SessionId::new(store.conn.last_insert_rowid());
        store.reissue_ticket(page, "r0", "t1", 130, 110).unwrap();
        store.claim_ticket("t1", 111, "a", "ua").unwrap().unwrap();
        let next = store
            .reissue_ticket(page, "r1", "t2", 150, 120)
            .unwrap()
            .unwrap();
        let claimed = store.claim_ticket("t2", 121, "a", "ua").unwrap().unwrap();
        assert_eq!((claimed.id, claimed.replaced), (next, 1));
        assert_eq!(
            store.stop_reason(page, 122).unwrap(),
            Some(EndCode::Replaced.into())
        );
    }
}
