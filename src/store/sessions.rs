//! Console access per server: the session listing (`hcc sessions`,
//! `GET /api/v1/sessions`), revocation and suspension.
//!
//! Any process may revoke or suspend: it writes here, and the process that
//! relays a live session (`hcc serve`'s broker) sees `stop_requested` and
//! ends it. A suspension is a row in `suspended`, so it survives restarts;
//! every way into a console (a link, its page's refresh, the API, the
//! broker's upgrade) asks [`Store::is_suspended`].

use rusqlite::{OptionalExtension, Row, params};

use super::{EndCode, EndReason, Error, SessionId, Store, sqlite_err};

/// One row of `console_sessions` as listed (one connection, or the page
/// session's first row): never a hash or other secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    /// The page session's first row (this row's own id on that row).
    pub page_id: SessionId,
    pub server: String,
    pub link_id: Option<i64>,
    /// The name of the API key that made the link (or opened the session).
    pub created_by: Option<String>,
    /// The page session's client address and user agent (who opened it).
    pub remote: Option<String>,
    pub user_agent: Option<String>,
    /// This connection's own (a ticket may be used from elsewhere).
    pub connection_remote: Option<String>,
    pub connection_user_agent: Option<String>,
    /// Until when this row's websocket ticket could be used.
    pub ticket_expires_at: Option<i64>,
    /// `direct` or `broker`.
    pub mode: String,
    pub started_at: i64,
    /// The end of the page's session (fresh credentials until then).
    pub expires_at: i64,
    pub refreshes: i64,
    pub connected_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<EndReason>,
    pub bytes_to_client: i64,
    pub bytes_from_client: i64,
    pub stop_requested: Option<EndReason>,
}

/// A page session as people see it: one console page (a browser tab, or
/// a panel's own page), however many websockets it opened; its first
/// row's page data, its connections summed up, and those connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRecord {
    /// The page session's first row.
    pub page: SessionRecord,
    /// Its connections, oldest first: the rows that connected (a ticket
    /// never used is no connection).
    pub connections: Vec<SessionRecord>,
    /// When its first connection was made.
    pub connected_at: Option<i64>,
    /// A connection is live (connected through hcc, not ended).
    pub live: bool,
    /// The end of the page session as far as hcc can tell, and why: its
    /// last connection's when none is live or waiting for its ticket;
    /// `expired unused` for a brokered page that never connected and
    /// whose tickets expired (the page was closed first); `expired` for a
    /// direct page past its lifetime. `None` while it is open.
    pub ended_at: Option<i64>,
    pub end_reason: Option<EndReason>,
    /// A stop request for its live connection (`revoked`, ...), or for
    /// the page before it connected.
    pub stop_requested: Option<EndReason>,
    /// Bytes relayed each way, summed over its connections.
    pub bytes_to_client: i64,
    pub bytes_from_client: i64,
}

/// The page's end reason when it never connected.
pub const EXPIRED_UNUSED: &str = "expired unused";

impl PageRecord {
    /// Sums up a page session's rows (its first row first) at `at`.
    fn of(rows: Vec<SessionRecord>, at: i64) -> Option<PageRecord> {
        let mut rows = rows.into_iter();
        let page = rows.next()?;
        let all: Vec<SessionRecord> = std::iter::once(page.clone()).chain(rows).collect();
        let open_ticket = all.iter().any(|r| {
            r.connected_at.is_none()
                && r.ended_at.is_none()
                && r.stop_requested.is_none()
                && r.ticket_expires_at.is_some_and(|t| t > at)
        }) && page.expires_at > at;
        let connections: Vec<SessionRecord> = all
            .iter()
            .filter(|r| r.connected_at.is_some())
            .cloned()
            .collect();
        // The newest: for a moment an older one may still be ending
        // (`replaced`).
        let live_one = connections.iter().rev().find(|r| r.ended_at.is_none());
        let live = live_one.is_some();
        let last = connections.last();
        let (ended_at, end_reason) = if page.mode == "direct" {
            // hcc does not see a direct page's connection: it ends with
            // its page session.
            match (page.ended_at, &page.end_reason) {
                (Some(ended), reason) => (Some(ended), reason.clone()),
                (None, _) if page.expires_at <= at => {
                    (Some(page.expires_at), Some(EndCode::Expired.into()))
                }
                (None, _) => (None, None),
            }
        } else if live || open_ticket {
            (None, None)
        } else if let Some(last) = last {
            (last.ended_at, last.end_reason.clone())
        } else {
            let until = all
                .iter()
                .filter_map(|r| r.ticket_expires_at)
                .max()
                .unwrap_or(page.expires_at)
                .min(page.expires_at)
                .max(page.started_at);
            let why = all
                .iter()
                .find_map(|r| r.stop_requested.clone())
                .unwrap_or_else(|| EndReason::parse(EXPIRED_UNUSED));
            (Some(until), Some(why))
        };
        let stop_requested = match live_one {
            Some(r) => r.stop_requested.clone(),
            None if connections.is_empty() && ended_at.is_none() => page.stop_requested.clone(),
            None => None,
        };
        Some(PageRecord {
            connected_at: connections.iter().filter_map(|r| r.connected_at).min(),
            live,
            ended_at,
            end_reason,
            stop_requested,
            bytes_to_client: all.iter().map(|r| r.bytes_to_client).sum(),
            bytes_from_client: all.iter().map(|r| r.bytes_from_client).sum(),
            connections,
            page,
        })
    }
}

/// What a revocation ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Links nobody had opened yet that are void now.
    pub links: usize,
    /// Page sessions that can no longer fetch fresh credentials.
    pub sessions: usize,
    /// Brokered sessions asked to stop.
    pub stopped: usize,
}

/// A suspended server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub server: String,
    pub suspended_at: i64,
    pub suspended_by: Option<String>,
}

/// What a link's token finds, without using it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Unused and unexpired: it opens the console of this server.
    Usable { server: String },
    /// Opened already (by this browser tab, which may resume its session
    /// with the session token it holds, or by another).
    Opened { server: String },
    /// Never opened, and past its lifetime (or revoked).
    Expired,
    /// No link has this token (or it was forgotten long after it ended).
    Unknown,
    /// Its server is suspended.
    Suspended { server: String },
}

const SESSION_COLUMNS: &str = "id, server, link_id, created_by, remote, user_agent, mode,
     started_at, expires_at, refreshes, connected_at, ended_at, end_reason,
     bytes_to_client, bytes_from_client, stop_requested, coalesce(page_id, id),
     connection_remote, connection_user_agent, ticket_expires_at";

fn session_record(r: &Row) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        server: r.get(1)?,
        link_id: r.get(2)?,
        created_by: r.get(3)?,
        remote: r.get(4)?,
        user_agent: r.get(5)?,
        mode: r.get(6)?,
        started_at: r.get(7)?,
        expires_at: r.get(8)?,
        refreshes: r.get(9)?,
        connected_at: r.get(10)?,
        ended_at: r.get(11)?,
        end_reason: r.get(12)?,
        bytes_to_client: r.get(13)?,
        bytes_from_client: r.get(14)?,
        stop_requested: r.get(15)?,
        page_id: r.get(16)?,
        connection_remote: r.get(17)?,
        connection_user_agent: r.get(18)?,
        ticket_expires_at: r.get(19)?,
    })
}

impl Store {
    /// Whether the server's consoles are refused (`hcc suspend`).
    pub fn is_suspended(&self, server: &str) -> Result<bool, Error> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM suspended WHERE server = ?1)")
            .and_then(|mut stmt| stmt.query_row([server], |r| r.get(0)))
            .map_err(self.err("read the suspended servers"))
    }

    pub fn suspension(&self, server: &str) -> Result<Option<Suspension>, Error> {
        self.conn
            .query_row(
                "SELECT server, suspended_at, suspended_by FROM suspended WHERE server = ?1",
                [server],
                suspension_row,
            )
            .optional()
            .map_err(self.err("read the suspended servers"))
    }

    /// Every suspended server, by name.
    pub fn suspensions(&self) -> Result<Vec<Suspension>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT server, suspended_at, suspended_by FROM suspended ORDER BY server")
            .map_err(self.err("read the suspended servers"))?;
        let rows = stmt
            .query_map([], suspension_row)
            .map_err(self.err("read the suspended servers"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("read the suspended servers"))
    }

    /// Whether hcc knows a server by this name: in the servers table, or
    /// named by a console link or session (a server deleted since).
    pub fn server_is_known(&self, server: &str) -> Result<bool, Error> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM servers WHERE name = ?1)
                     OR EXISTS (SELECT 1 FROM console_links WHERE server = ?1)
                     OR EXISTS (SELECT 1 FROM console_sessions WHERE server = ?1)",
                [server],
                |r| r.get(0),
            )
            .map_err(self.err("look a server up"))
    }

    /// What a link's token finds at `at`, leaving the link as it is.
    pub fn peek_console_link(&self, token_hash: &str, at: i64) -> Result<LinkState, Error> {
        let found: Option<(String, bool, bool, bool)> = self
            .conn
            .query_row(
                "SELECT server, opened_at IS NOT NULL, expires_at > ?2,
                        EXISTS (SELECT 1 FROM suspended s WHERE s.server = l.server)
                 FROM console_links l WHERE token_hash = ?1",
                params![token_hash, at],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.err("read a console link"))?;
        Ok(match found {
            None => LinkState::Unknown,
            Some((server, _, _, true)) => LinkState::Suspended { server },
            Some((server, true, _, false)) => LinkState::Opened { server },
            Some((server, false, true, false)) => LinkState::Usable { server },
            Some((_, false, false, false)) => LinkState::Expired,
        })
    }

    /// Console sessions, newest first, at most `limit`; with `live`, only
    /// brokered sessions that are connected now.
    pub fn console_sessions(&self, live: bool, limit: i64) -> Result<Vec<SessionRecord>, Error> {
        let filter = if live {
            "WHERE connected_at IS NOT NULL AND ended_at IS NULL"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM console_sessions {filter} ORDER BY id DESC LIMIT ?1"
        );
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(self.err("read console sessions"))?;
        let rows = stmt
            .query_map([limit], session_record)
            .map_err(self.err("read console sessions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("read console sessions"))
    }

    /// Page sessions, newest first, at most `limit`, each with its
    /// connections, as of `at`; with `live`, only those with a live
    /// connection.
    pub fn page_sessions(&self, live: bool, limit: i64, at: i64) -> Result<Vec<PageRecord>, Error> {
        let filter = if live {
            "AND EXISTS (SELECT 1 FROM console_sessions c
                          WHERE (c.page_id = p.id OR c.id = p.id)
                            AND c.connected_at IS NOT NULL AND c.ended_at IS NULL)"
        } else {
            ""
        };
        // A page's first row is its own page (or names none: written by
        // hand or by an older hcc).
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM console_sessions p
             WHERE (p.page_id IS NULL OR p.page_id = p.id) {filter}
             ORDER BY p.id DESC LIMIT ?1"
        );
        let err = || self.err("read console sessions");
        let mut pages = self.conn.prepare(&sql).map_err(err())?;
        let firsts: Vec<SessionRecord> = pages
            .query_map([limit], session_record)
            .map_err(err())?
            .collect::<Result<_, _>>()
            .map_err(err())?;
        let mut rows = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM console_sessions
                 WHERE page_id = ?1 AND id <> ?1 ORDER BY id"
            ))
            .map_err(err())?;
        let mut listed = Vec::with_capacity(firsts.len());
        for first in firsts {
            let mut all = vec![first.clone()];
            let more = rows.query_map([first.id], session_record).map_err(err())?;
            for row in more {
                all.push(row.map_err(err())?);
            }
            listed.extend(PageRecord::of(all, at));
        }
        Ok(listed)
    }

    /// Revokes a server's console access as of `at`: its unopened links
    /// expire, its page sessions end (no more fresh credentials), unused
    /// websocket tickets expire, and every brokered session not yet ended
    /// is asked to stop (`revoked`). One transaction.
    pub fn revoke_server(&mut self, server: &str, at: i64) -> Result<Revoked, Error> {
        let path = self.path.clone();
        let err = sqlite_err(&path, "revoke a server's console access");
        let tx = self.immediate("revoke a server's console access")?;
        let links = tx
            .execute(
                "UPDATE console_links SET expires_at = ?2
                 WHERE server = ?1 AND opened_at IS NULL AND expires_at > ?2",
                params![server, at],
            )
            .map_err(&err)?;
        tx.execute(
            "UPDATE console_sessions SET ticket_expires_at = ?2
             WHERE server = ?1 AND connected_at IS NULL AND ticket_expires_at > ?2",
            params![server, at],
        )
        .map_err(&err)?;
        let (stopped, sessions) =
            revoke_sessions(&tx, Opened::ForServer, server, at, &EndCode::Revoked.into())
                .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Revoked {
            links,
            sessions,
            stopped,
        })
    }

    /// Suspends a server (kept if it already was) and asks its connected
    /// brokered sessions to stop (`suspended`); the suspension and how
    /// many sessions were asked to stop. A ticket not yet used stays as it
    /// is: its upgrade is refused as suspended (403, and recorded so) and
    /// works again after a resume.
    pub fn suspend_server(
        &mut self,
        server: &str,
        by: &str,
        at: i64,
    ) -> Result<(Suspension, usize), Error> {
        let path = self.path.clone();
        let err = sqlite_err(&path, "suspend a server");
        let tx = self.immediate("suspend a server")?;
        tx.execute(
            "INSERT INTO suspended (server, suspended_at, suspended_by) VALUES (?1, ?2, ?3)
             ON CONFLICT (server) DO NOTHING",
            params![server, at, by],
        )
        .map_err(&err)?;
        let stopped = tx
            .execute(
                "UPDATE console_sessions SET stop_requested = 'suspended'
                 WHERE server = ?1 AND mode <> 'direct' AND ended_at IS NULL
                   AND connected_at IS NOT NULL AND stop_requested IS NULL",
                [server],
            )
            .map_err(&err)?;
        let suspension = tx
            .query_row(
                "SELECT server, suspended_at, suspended_by FROM suspended WHERE server = ?1",
                [server],
                suspension_row,
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok((suspension, stopped))
    }

    /// Whether the server of the page session with this hash is suspended
    /// (false for an unknown session).
    pub fn session_suspended(&self, session_hash: &str) -> Result<bool, Error> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM console_sessions c JOIN suspended s
                                 ON s.server = c.server WHERE c.session_hash = ?1)",
            )
            .and_then(|mut stmt| stmt.query_row([session_hash], |r| r.get(0)))
            .map_err(self.err("read a console session"))
    }

    /// Records the User-Agent the session was opened with.
    pub fn set_session_user_agent(&self, id: SessionId, agent: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE console_sessions SET user_agent = ?2 WHERE id = ?1",
                params![id, agent],
            )
            .map(drop)
            .map_err(self.err("record a console session"))
    }

    /// Ends a suspension; false when the server was not suspended.
    pub fn resume_server(&self, server: &str) -> Result<bool, Error> {
        self.conn
            .execute("DELETE FROM suspended WHERE server = ?1", [server])
            .map(|n| n == 1)
            .map_err(self.err("resume a server"))
    }
}

impl Store {
    /// Ends the consoles of servers that left hcc's care: deleted at
    /// Hetzner (no row, or a row of another server under the name:
    /// `deleted`) or released (the row lacks the managed label `label`:
    /// `released`). Their unopened links are void, their page sessions
    /// expire and their live brokered sessions are asked to stop, for
    /// good: adopting the server again revives none of them. Called
    /// wherever hcc learns of it (sync, `deltag`, `kill`, the API's
    /// release). Returns how many servers' consoles ended.
    pub fn end_departed_consoles(
        &self,
        label: &str,
        at: i64,
        only: Option<&str>,
    ) -> Result<usize, Error> {
        let err = sqlite_err(
            &self.path,
            "end the consoles of released or deleted servers",
        );
        // Read first, outside a write transaction: on almost every call
        // (after each action, each sync) nothing has left, and taking the
        // write lock for nothing would hold up every other writer.
        let departed = departed_servers(&self.conn, label, at, only).map_err(&err)?;
        if departed.is_empty() {
            return Ok(0);
        }
        // Through `&self` (the cloud operations hold the store shared);
        // nothing else opens a transaction on this connection meanwhile.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(&err)?;
        for (server, server_id, deleted) in &departed {
            let reason = if *deleted {
                EndCode::Deleted
            } else {
                EndCode::Released
            };
            end_server_consoles(&tx, server, *server_id, at, &reason.into()).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(departed.len())
    }

    /// Ends the consoles of server `id`, named `server`, with `reason`
    /// (`deleted`): before it is deleted, so that its consoles end before
    /// its machine does.
    pub fn end_consoles_of(
        &self,
        server: &str,
        id: i64,
        at: i64,
        reason: &EndReason,
    ) -> Result<(), Error> {
        let err = sqlite_err(&self.path, "end a server's consoles");
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(&err)?;
        end_server_consoles(&tx, server, id, at, reason).map_err(&err)?;
        tx.commit().map_err(&err)
    }
}

/// The servers with consoles (live or to come) that left hcc's care:
/// `(name, id, deleted)`, deleted meaning gone or another server under the
/// name, else released (its row lacks the managed label `label`). With
/// `only`, that server's alone (an action's refetch: the index on `server`
/// spares a scan of every session ever recorded).
fn departed_servers(
    conn: &rusqlite::Connection,
    label: &str,
    at: i64,
    only: Option<&str>,
) -> rusqlite::Result<Vec<(String, i64, bool)>> {
    let one = if only.is_some() {
        "server = ?3 AND"
    } else {
        ""
    };
    let sql = format!(
        "SELECT c.server, c.server_id, s.name IS NULL OR s.id IS NOT c.server_id
         FROM (SELECT server, server_id FROM console_sessions
                 WHERE {one} (expires_at > ?1
                    OR (ended_at IS NULL AND stop_requested IS NULL AND mode <> 'direct'))
               UNION
               SELECT server, server_id FROM console_links
                 WHERE {one} opened_at IS NULL AND expires_at > ?1) c
         LEFT JOIN servers s ON s.name = c.server
         WHERE s.name IS NULL OR s.id IS NOT c.server_id
            OR json_extract(s.labels, ?2) IS NULL"
    );
    let path = format!("$.\"{label}\"");
    let mut stmt = conn.prepare_cached(&sql)?;
    let row = |r: &Row| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
    match only {
        Some(server) => stmt.query_map(params![at, path, server], row)?.collect(),
        None => stmt.query_map(params![at, path], row)?.collect(),
    }
}

/// Voids server `id`'s unopened links and ends its sessions with `reason`.
fn end_server_consoles(
    tx: &rusqlite::Transaction<'_>,
    server: &str,
    id: i64,
    at: i64,
    reason: &EndReason,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE console_links SET expires_at = ?3
         WHERE server = ?1 AND server_id = ?2 AND opened_at IS NULL AND expires_at > ?3",
        params![server, id, at],
    )?;
    revoke_sessions(tx, Opened::ForServerId(id), server, at, reason).map(drop)
}

/// Which console sessions a revocation ends: a server's, one Hetzner
/// server's under its name (not a later server of the same name), or
/// those opened through the links of one API key.
#[derive(Clone, Copy)]
pub(super) enum Opened {
    ForServer,
    ForServerId(i64),
    ByKey,
}

/// Ends the console sessions `whose` names, inside the caller's
/// transaction: live brokered ones are asked to stop (`reason`: `revoked`,
/// `released`, `deleted`), direct ones end with their page session (hcc
/// does not see their connection), and every page session expires, so it
/// gets no fresh credentials or tickets. Returns how many brokered
/// sessions were asked to stop and how many page sessions expired.
pub(super) fn revoke_sessions(
    tx: &rusqlite::Transaction<'_>,
    whose: Opened,
    value: &str,
    at: i64,
    reason: &EndReason,
) -> rusqlite::Result<(usize, usize)> {
    let filter = match whose {
        Opened::ForServer => "server = ?1".to_string(),
        Opened::ForServerId(id) => format!("server = ?1 AND server_id = {id}"),
        Opened::ByKey => "created_by = ?1".to_string(),
    };
    // A ticket not yet used ends here: no relay will record it.
    tx.execute(
        &format!(
            "UPDATE console_sessions SET ended_at = ?2, end_reason = ?3, stop_requested = ?3
             WHERE {filter} AND mode <> 'direct' AND ended_at IS NULL AND connected_at IS NULL
               AND stop_requested IS NULL"
        ),
        params![value, at, reason],
    )?;
    let stopped = tx.execute(
        &format!(
            "UPDATE console_sessions SET stop_requested = ?2
             WHERE {filter} AND mode <> 'direct' AND ended_at IS NULL
               AND stop_requested IS NULL"
        ),
        params![value, reason],
    )?;
    tx.execute(
        &format!(
            "UPDATE console_sessions SET ended_at = ?2, end_reason = ?3
             WHERE {filter} AND mode = 'direct' AND ended_at IS NULL AND expires_at > ?2"
        ),
        params![value, at, reason],
    )?;
    let expired = tx.execute(
        &format!("UPDATE console_sessions SET expires_at = ?2 WHERE {filter} AND expires_at > ?2"),
        params![value, at],
    )?;
    Ok((stopped, expired))
}

/// A row of `SELECT server, suspended_at, suspended_by FROM suspended`.
fn suspension_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Suspension> {
    Ok(Suspension {
        server: r.get(0)?,
        suspended_at: r.get(1)?,
        suspended_by: r.get(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(reason: &Option<EndReason>) -> Option<String> {
        reason.as_ref().map(EndReason::words)
    }
    use crate::store::OpenedLink;

    fn opened(store: &Store, token: &str, server: &str) -> OpenedLink {
        store
            .add_console_link(token, (server, 7), "billing", 100, 400)
            .unwrap();
        store
            .consume_console_link(token, 100, "127.0.0.1")
            .unwrap()
            .unwrap()
    }

    /// A brokered session connected at 110, as the broker records one.
    fn live(store: &Store, hash: &str, server: &str) {
        let link = opened(store, &format!("l-{hash}"), server);
        store
            .add_console_session(hash, &link, "127.0.0.1", 100, 1000)
            .unwrap();
        store
            .conn
            .execute(
                "UPDATE console_sessions SET mode = 'broker', connected_at = 110,
                     ticket_expires_at = 130 WHERE session_hash = ?1",
                [hash],
            )
            .unwrap();
    }

    #[test]
    fn peeking_leaves_the_link_and_tells_why_it_will_not_open() {
        let (_dir, mut store) = Store::scratch();
        store
            .add_console_link("t1", ("web1", 7), "billing", 100, 400)
            .unwrap();
        for _ in 0..3 {
            assert_eq!(
                store.peek_console_link("t1", 200).unwrap(),
                LinkState::Usable {
                    server: "web1".into()
                }
            );
        }
        assert_eq!(
            store.peek_console_link("t1", 400).unwrap(),
            LinkState::Expired
        );
        assert_eq!(
            store.peek_console_link("no", 200).unwrap(),
            LinkState::Unknown
        );
        store.suspend_server("web1", "cli", 150).unwrap();
        assert!(store.is_suspended("web1").unwrap());
        assert_eq!(
            store.peek_console_link("t1", 200).unwrap(),
            LinkState::Suspended {
                server: "web1".into()
            }
        );
        assert!(store.resume_server("web1").unwrap());
        assert!(!store.resume_server("web1").unwrap());
        assert!(!store.is_suspended("web1").unwrap());
        store.consume_console_link("t1", 200, "x").unwrap().unwrap();
        let opened = LinkState::Opened {
            server: "web1".into(),
        };
        assert_eq!(store.peek_console_link("t1", 200).unwrap(), opened);
        // Opened stays opened past the link's lifetime: the page's session
        // outlives it.
        assert_eq!(store.peek_console_link("t1", 500).unwrap(), opened);
    }

    #[test]
    fn revoking_ends_links_sessions_and_asks_live_ones_to_stop() {
        let (_dir, mut store) = Store::scratch();
        live(&store, "s1", "web1");
        live(&store, "s2", "web2");
        let link = opened(&store, "direct", "web1");
        store
            .add_console_session("s3", &link, "127.0.0.1", 100, 1000)
            .unwrap();
        store
            .add_console_link("unopened", ("web1", 7), "billing", 100, 400)
            .unwrap();
        let revoked = store.revoke_server("web1", 150).unwrap();
        assert_eq!(
            revoked,
            Revoked {
                links: 1,
                sessions: 2,
                stopped: 1
            }
        );
        assert_eq!(
            store.peek_console_link("unopened", 150).unwrap(),
            LinkState::Expired
        );
        assert!(store.claim_refresh("s1", 151, 3, 9).unwrap().is_err());
        assert!(store.claim_refresh("s2", 151, 3, 9).unwrap().is_ok());
        let sessions = store.console_sessions(false, 10).unwrap();
        let by_hash = |server: &str, mode: &str| {
            sessions
                .iter()
                .find(|s| s.server == server && s.mode == mode)
                .unwrap()
                .clone()
        };
        assert_eq!(
            words(&by_hash("web1", "broker").stop_requested).as_deref(),
            Some("revoked")
        );
        assert_eq!(by_hash("web2", "broker").stop_requested, None);
        let direct = by_hash("web1", "direct");
        assert_eq!(
            (direct.ended_at, words(&direct.end_reason).as_deref()),
            (Some(150), Some("revoked"))
        );
        // Live: connected and not ended.
        let live_ones = store.console_sessions(true, 10).unwrap();
        assert_eq!(live_ones.len(), 2);
        assert!(live_ones[0].id > live_ones[1].id);
    }

    #[test]
    fn a_suspension_is_kept_and_asks_live_sessions_to_stop() {
        let (_dir, mut store) = Store::scratch();
        live(&store, "s1", "web1");
        let (first, stopped) = store.suspend_server("web1", "ops", 150).unwrap();
        assert_eq!(stopped, 1);
        let (again, stopped) = store.suspend_server("web1", "cli", 160).unwrap();
        assert_eq!((again, stopped), (first.clone(), 0));
        assert_eq!(first.suspended_by.as_deref(), Some("ops"));
        assert_eq!(store.suspensions().unwrap(), vec![first]);
        let s = &store.console_sessions(true, 10).unwrap()[0];
        assert_eq!(words(&s.stop_requested).as_deref(), Some("suspended"));
        assert!(store.server_is_known("web1").unwrap());
        assert!(!store.server_is_known("web9").unwrap());
    }

    #[test]
    fn the_listing_has_one_row_per_page_session_with_its_connections() {
        let (_dir, store) = Store::scratch();
        // A page that connected, reloaded (a second connection that
        // replaced the first) and closed.
        let link = opened(&store, "l1", "web1");
        let page = store
            .add_console_session("p1", &link, "192.0.2.1", 100, 1000)
            .unwrap();
        store.reissue_ticket(page, "r0", "t1", 130, 100).unwrap();
        store
            .claim_ticket("t1", 101, "192.0.2.1", "ua")
            .unwrap()
            .unwrap();
        store.session_bytes(page, 100, 10, 105).unwrap();
        let next = store
            .reissue_ticket(page, "r1", "t2", 140, 110)
            .unwrap()
            .unwrap();
        store
            .claim_ticket("t2", 111, "192.0.2.1", "ua")
            .unwrap()
            .unwrap();
        // The replaced connection still ending is not the page's state.
        let both = &store.page_sessions(false, 10, 111).unwrap()[0];
        assert!(both.live && both.stop_requested.is_none(), "{both:?}");
        store
            .end_session(page, 112, &EndReason::parse("replaced"), 100, 10)
            .unwrap();
        store
            .end_session(next, 150, &EndReason::parse("client closed"), 50, 5)
            .unwrap();
        // A page whose tickets expired before it ever connected.
        let link = opened(&store, "l2", "web2");
        let unused = store
            .add_console_session("p2", &link, "192.0.2.2", 200, 1000)
            .unwrap();
        store.reissue_ticket(unused, "r2", "t3", 230, 200).unwrap();
        // A page live now.
        live(&store, "p3", "web3");

        let pages = store.page_sessions(false, 10, 300).unwrap();
        let servers: Vec<&str> = pages.iter().map(|p| p.page.server.as_str()).collect();
        assert_eq!(servers, ["web3", "web2", "web1"]);
        let reloaded = &pages[2];
        assert_eq!(reloaded.page.id, page);
        assert_eq!(
            reloaded
                .connections
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            [page, next]
        );
        assert_eq!(
            (reloaded.bytes_to_client, reloaded.bytes_from_client),
            (150, 15)
        );
        assert_eq!(reloaded.connected_at, Some(101));
        assert_eq!(
            (reloaded.ended_at, words(&reloaded.end_reason).as_deref()),
            (Some(150), Some("client closed"))
        );
        assert!(!reloaded.live);
        assert_eq!(
            words(&reloaded.connections[0].end_reason).as_deref(),
            Some("replaced")
        );
        // Waiting for its ticket, then expired unused.
        let waiting = &store.page_sessions(false, 10, 210).unwrap()[1];
        assert_eq!((waiting.ended_at, waiting.live), (None, false));
        let unused = &pages[1];
        assert!(unused.connections.is_empty());
        assert_eq!(
            (unused.ended_at, words(&unused.end_reason).as_deref()),
            (Some(230), Some(EXPIRED_UNUSED))
        );
        assert!(pages[0].live && pages[0].ended_at.is_none());
        // Live only, and the limit counts page sessions.
        let live_ones = store.page_sessions(true, 10, 300).unwrap();
        assert_eq!(live_ones.len(), 1);
        assert_eq!(live_ones[0].page.server, "web3");
        assert_eq!(store.page_sessions(false, 2, 300).unwrap().len(), 2);
    }
}
