//! `hcc sessions`, `hcc revoke`, `hcc suspend`, `hcc resume`: the console
//! access of `hcc serve` seen and cut from the command line. They write to
//! the database only, so they work while `hcc serve` runs as another
//! process: a server that serves a live session sees the stop request
//! there and ends it.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::error::Error;
use crate::home::Home;
use crate::store::{self, PageRecord, Revoked, SessionRecord, Store, now};
use crate::table::Table;
use crate::verb::{check_server_name, shown};

/// Why a name cannot be revoked, suspended or resumed.
pub enum Target {
    /// Not a valid server name.
    Invalid(String),
    /// hcc knows no server by that name.
    Unknown(String),
}

/// Checks the name a revoke, suspend or resume is for: a valid server name
/// that hcc knows, from the servers table or from a console link or
/// session made for it (a server deleted since still has those to cut);
/// for a resume, a suspended name is known too.
pub fn target(
    store: &Store,
    name: &str,
    or_suspended: bool,
) -> Result<Result<(), Target>, store::Error> {
    if let Err(why) = check_server_name(name) {
        return Ok(Err(Target::Invalid(why)));
    }
    if store.server_is_known(name)? || (or_suspended && store.is_suspended(name)?) {
        return Ok(Ok(()));
    }
    Ok(Err(Target::Unknown(format!(
        "no server named `{name}`, and no console link or session for one (hcc sync refreshes the table)"
    ))))
}

fn checked(store: &Store, name: &str, or_suspended: bool) -> Result<(), Error> {
    match target(store, name, or_suspended)? {
        Ok(()) => Ok(()),
        Err(Target::Invalid(why)) => Err(Error::Input(why)),
        Err(Target::Unknown(why)) => Err(Error::Failed(why)),
    }
}

/// A connection as the API and `--json` show it: never a hash. `remote`
/// and `user_agent` are its page session's, `connection_remote` and
/// `connection_user_agent` its own.
pub fn session_json(s: &SessionRecord) -> Value {
    json!({
        "id": s.id, "page_id": s.page_id, "server": s.server, "link_id": s.link_id,
        "created_by": s.created_by, "remote": s.remote, "user_agent": s.user_agent,
        "connection_remote": s.connection_remote,
        "connection_user_agent": s.connection_user_agent, "mode": s.mode,
        "started_at": s.started_at, "expires_at": s.expires_at, "refreshes": s.refreshes,
        "connected_at": s.connected_at, "ended_at": s.ended_at, "end_reason": s.end_reason,
        "bytes_to_client": s.bytes_to_client, "bytes_from_client": s.bytes_from_client,
        "stop_requested": s.stop_requested,
        "live": s.connected_at.is_some() && s.ended_at.is_none(),
    })
}

/// A page session as the API and `--json` show it: the fields of a
/// connection for the page as a whole (its first row's id, client and
/// times; its first connection; its end; bytes summed), how many
/// connections it made, and with `connections` those connections.
pub fn page_json(p: &PageRecord, connections: bool) -> Value {
    let s = &p.page;
    let mut page = json!({
        "id": s.id, "page_id": s.page_id, "server": s.server, "link_id": s.link_id,
        "created_by": s.created_by, "remote": s.remote, "user_agent": s.user_agent,
        "mode": s.mode, "started_at": s.started_at, "expires_at": s.expires_at,
        "refreshes": s.refreshes, "connected_at": p.connected_at, "ended_at": p.ended_at,
        "end_reason": p.end_reason, "bytes_to_client": p.bytes_to_client,
        "bytes_from_client": p.bytes_from_client, "stop_requested": p.stop_requested,
        "live": p.live, "connection_count": p.connections.len(),
    });
    if connections {
        page["connections"] = p.connections.iter().map(session_json).collect();
    }
    page
}

pub fn revoked_json(r: &Revoked) -> Value {
    json!({ "links": r.links, "sessions": r.sessions, "stopped": r.stopped })
}

/// `hcc sessions [--live] [--json] [--limit N] [--connections]`: one row
/// per page session, its connections below it with `--connections`.
pub fn list(
    home: &Home,
    live: bool,
    json_out: bool,
    limit: i64,
    connections: bool,
) -> Result<ExitCode, Error> {
    let store = Store::open(&home.db_path())?;
    let t = now();
    let pages = store.page_sessions(live, limit, t)?;
    if json_out {
        let rows: Vec<Value> = pages.iter().map(|p| page_json(p, connections)).collect();
        crate::output::print(&format!("{}\n", json!({ "sessions": rows })))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        "ID",
        "SERVER",
        "OPENED BY",
        "CLIENT",
        "USER AGENT",
        "MODE",
        "STARTED",
        "CONNECTED",
        "ENDED",
        "CONNECTIONS",
        "TO CLIENT",
        "FROM CLIENT",
        "END REASON",
    ]);
    for p in &pages {
        table.row(page_row(p));
        if connections {
            for c in &p.connections {
                table.row(connection_row(c));
            }
        }
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

fn dash() -> String {
    "-".to_string()
}

/// One page session's row. hcc sees neither the connection nor the bytes
/// of a direct session (the browser reaches the console itself): those
/// columns say `direct`, and such a session ends when its page session
/// does.
fn page_row(p: &PageRecord) -> Vec<String> {
    let s = &p.page;
    let opened_by = match (s.link_id, s.created_by.as_deref()) {
        (Some(link), Some(key)) if !key.is_empty() => format!("link {link} ({})", shown(key)),
        (Some(link), _) => format!("link {link}"),
        (None, Some(key)) if !key.is_empty() => shown(key),
        (None, _) => dash(),
    };
    let direct = s.mode == "direct";
    let reason = match (&p.end_reason, &p.stop_requested) {
        (Some(reason), _) => shown(&reason.words()),
        (None, Some(stop)) => format!("stopping: {}", shown(&stop.words())),
        (None, None) => dash(),
    };
    let bytes = |n: i64| {
        if direct {
            "direct".into()
        } else {
            n.to_string()
        }
    };
    vec![
        s.id.to_string(),
        shown(&s.server),
        opened_by,
        s.remote.as_deref().map_or_else(dash, shown),
        s.user_agent.as_deref().map_or_else(dash, shown),
        shown(&s.mode),
        when(s.started_at),
        match p.connected_at {
            Some(at) => when(at),
            None if direct => "direct".into(),
            None => dash(),
        },
        p.ended_at.map_or_else(dash, when),
        if direct {
            "direct".into()
        } else {
            p.connections.len().to_string()
        },
        bytes(p.bytes_to_client),
        bytes(p.bytes_from_client),
        reason,
    ]
}

/// A connection's row below its page's: its own client and user agent,
/// when it connected and ended, its bytes and end.
fn connection_row(c: &SessionRecord) -> Vec<String> {
    let reason = match (&c.end_reason, &c.stop_requested, c.ended_at) {
        (Some(reason), _, _) => shown(&reason.words()),
        (None, Some(stop), None) => format!("stopping: {}", shown(&stop.words())),
        (None, _, None) => "live".into(),
        (None, _, Some(_)) => dash(),
    };
    vec![
        format!(" \\_ {}", c.id),
        String::new(),
        String::new(),
        c.connection_remote.as_deref().map_or_else(dash, shown),
        c.connection_user_agent.as_deref().map_or_else(dash, shown),
        String::new(),
        String::new(),
        c.connected_at.map_or_else(dash, when),
        c.ended_at.map_or_else(dash, when),
        String::new(),
        c.bytes_to_client.to_string(),
        c.bytes_from_client.to_string(),
        reason,
    ]
}

/// `2026-11-23 11:40:05` (UTC).
fn when(unix_secs: i64) -> String {
    let stamp = crate::timestamp::rfc3339(unix_secs);
    stamp.get(..19).unwrap_or(&stamp).replace('T', " ")
}

/// `hcc revoke NAME`.
pub fn revoke(home: &Home, name: &str) -> Result<ExitCode, Error> {
    let mut store = Store::open(&home.db_path())?;
    checked(&store, name, false)?;
    let r = store.revoke_server(name, now())?;
    eprintln!(
        "hcc: revoked the consoles of `{name}`: {} unopened link(s) void, {} page session(s) ended, {} live session(s) asked to stop",
        r.links, r.sessions, r.stopped
    );
    Ok(ExitCode::SUCCESS)
}

/// `hcc suspend NAME`.
pub fn suspend(home: &Home, name: &str) -> Result<ExitCode, Error> {
    let mut store = Store::open(&home.db_path())?;
    checked(&store, name, false)?;
    let (suspension, stopped) = store.suspend_server(name, "cli", now())?;
    eprintln!(
        "hcc: the consoles of `{name}` are suspended (since {} UTC); {stopped} live session(s) asked to stop; `hcc resume {name}` lifts it",
        when(suspension.suspended_at)
    );
    Ok(ExitCode::SUCCESS)
}

/// `hcc resume NAME`.
pub fn resume(home: &Home, name: &str) -> Result<ExitCode, Error> {
    let store = Store::open(&home.db_path())?;
    checked(&store, name, true)?;
    if store.resume_server(name)? {
        eprintln!("hcc: the consoles of `{name}` are no longer suspended");
    } else {
        eprintln!("hcc: `{name}` was not suspended");
    }
    Ok(ExitCode::SUCCESS)
}
