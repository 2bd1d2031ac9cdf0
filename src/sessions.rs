//! `hcc sessions`, `hcc revoke`, `hcc suspend`, `hcc resume`: the console
//! access of `hcc serve` seen and cut from the command line. They write to
//! the database only, so they work while `hcc serve` runs as another
//! process: a server that serves a live session sees the stop request
//! there and ends it.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::error::Error;
use crate::home::Home;
use crate::store::{self, Revoked, SessionRecord, Store, now};
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

/// A session as the API and `--json` show it: never a hash.
pub fn session_json(s: &SessionRecord) -> Value {
    json!({
        "id": s.id, "server": s.server, "link_id": s.link_id, "created_by": s.created_by,
        "remote": s.remote, "user_agent": s.user_agent, "mode": s.mode,
        "started_at": s.started_at, "expires_at": s.expires_at, "refreshes": s.refreshes,
        "connected_at": s.connected_at, "ended_at": s.ended_at, "end_reason": s.end_reason,
        "bytes_to_client": s.bytes_to_client, "bytes_from_client": s.bytes_from_client,
        "stop_requested": s.stop_requested,
        "live": s.connected_at.is_some() && s.ended_at.is_none(),
    })
}

pub fn revoked_json(r: &Revoked) -> Value {
    json!({ "links": r.links, "sessions": r.sessions, "stopped": r.stopped })
}

/// `hcc sessions [--live] [--json] [--limit N]`.
pub fn list(home: &Home, live: bool, json_out: bool, limit: i64) -> Result<ExitCode, Error> {
    let store = Store::open(&home.db_path())?;
    let sessions = store.console_sessions(live, limit)?;
    if json_out {
        let rows: Vec<Value> = sessions.iter().map(session_json).collect();
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
        "TO CLIENT",
        "FROM CLIENT",
        "END REASON",
    ]);
    let t = now();
    for s in &sessions {
        table.row(row(s, t));
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

/// One table row. hcc sees neither the connection nor the bytes of a
/// direct session (the browser reaches the console itself): those columns
/// say `direct`, and such a session ends when its page session does.
fn row(s: &SessionRecord, t: i64) -> Vec<String> {
    let dash = || "-".to_string();
    let opened_by = match (s.link_id, s.created_by.as_deref()) {
        (Some(link), Some(key)) if !key.is_empty() => format!("link {link} ({})", shown(key)),
        (Some(link), _) => format!("link {link}"),
        (None, Some(key)) if !key.is_empty() => shown(key),
        (None, _) => dash(),
    };
    let direct = s.mode == "direct";
    let (ended, reason) = match (s.ended_at, &s.end_reason) {
        (Some(at), reason) => (when(at), reason.as_deref().map_or_else(dash, shown)),
        (None, _) if direct && s.expires_at <= t => (when(s.expires_at), "expired".into()),
        (None, _) if s.stop_requested.is_some() => (
            dash(),
            format!("stopping: {}", s.stop_requested.as_deref().unwrap_or("")),
        ),
        (None, _) => (dash(), dash()),
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
        s.server.clone(),
        opened_by,
        s.remote.clone().unwrap_or_else(dash),
        s.user_agent.as_deref().map_or_else(dash, shown),
        s.mode.clone(),
        when(s.started_at),
        match s.connected_at {
            Some(at) => when(at),
            None if direct => "direct".into(),
            None => dash(),
        },
        ended,
        bytes(s.bytes_to_client),
        bytes(s.bytes_from_client),
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
