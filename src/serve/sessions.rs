//! The console-access routes of the API: `GET /sessions` (the audit
//! trail), `POST /servers/{name}/revoke`, `/suspend` and `/resume`; and
//! the check every console route makes that its server is not suspended.

use serde_json::json;

use super::reply::{self, ApiError, Reply};
use super::request::{Call, json_body};
use super::shared::Ctx;
use crate::sessions::{self as access, Target};
use crate::store::now;
use crate::verb::shown;

/// Sessions listed when the query names no `limit`...
const DEFAULT_LIMIT: i64 = 100;
/// ...and at most.
const MAX_LIMIT: i64 = 10_000;

/// A 403 when the server's consoles are suspended.
pub fn not_suspended(ctx: &Ctx, server: &str) -> Result<(), ApiError> {
    if ctx.store()?.is_suspended(server)? {
        return Err(ApiError::new(
            403,
            "suspended",
            format!("the consoles of server `{server}` are suspended (hcc resume lifts it)"),
        ));
    }
    Ok(())
}

/// A yes-or-no query parameter.
fn flag(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "true" | "" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(ApiError::bad_request(
            "bad_query",
            format!("`{key}` must be 1 or 0, not `{}`", shown(value)),
        )),
    }
}

/// `GET /sessions[?live=1][&limit=N][&connections=1]`: page sessions,
/// newest first (each with its connections when asked), and the suspended
/// servers.
pub fn list(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let mut live = false;
    let mut connections = false;
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in form_urlencoded::parse(call.query.as_bytes()) {
        match key.as_ref() {
            "live" => live = flag("live", &value)?,
            "connections" => connections = flag("connections", &value)?,
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "bad_query",
                            format!("`limit` must be a number from 1 to {MAX_LIMIT}"),
                        )
                    })?;
            }
            _ => {
                return Err(ApiError::bad_request(
                    "bad_query",
                    format!(
                        "unknown query parameter `{}` (known: live, limit, connections)",
                        shown(&key)
                    ),
                ));
            }
        }
    }
    let sessions: Vec<_> = ctx
        .store()?
        .page_sessions(live, limit, now())?
        .iter()
        .map(|p| access::page_json(p, connections))
        .collect();
    // The dashboard shows which servers' consoles are refused beside them.
    let suspended: Vec<_> = ctx
        .store()?
        .suspensions()?
        .iter()
        .map(|s| json!({"server": s.server, "suspended_at": s.suspended_at, "suspended_by": s.suspended_by}))
        .collect();
    Ok(reply::json(
        200,
        &json!({ "sessions": sessions, "suspended": suspended }),
    ))
}

/// The server a revoke, suspend or resume names.
fn target(ctx: &Ctx, call: &Call, or_suspended: bool) -> Result<String, ApiError> {
    json_body(call.body)?;
    let name = call.params[0];
    match access::target(ctx.store()?, name, or_suspended)? {
        Ok(()) => Ok(name.to_string()),
        Err(Target::Invalid(why)) => Err(ApiError::bad_request("invalid_name", why)),
        Err(Target::Unknown(why)) => Err(ApiError::not_found(why)),
    }
}

fn key_name(call: &Call) -> String {
    call.key
        .as_ref()
        .map_or_else(|| "api".into(), |k| k.name.clone())
}

pub fn revoke(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let server = target(ctx, call, false)?;
    let revoked = ctx.store_mut()?.revoke_server(&server, now())?;
    super::shared::log(&format!(
        "revoked the consoles of `{server}` (key `{}`)",
        key_name(call)
    ));
    Ok(reply::json(
        200,
        &json!({ "server": server, "revoked": access::revoked_json(&revoked) }),
    ))
}

pub fn suspend(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let server = target(ctx, call, false)?;
    let (suspension, stopped) = ctx
        .store_mut()?
        .suspend_server(&server, &key_name(call), now())?;
    super::shared::log(&format!(
        "suspended the consoles of `{server}` (key `{}`)",
        key_name(call)
    ));
    Ok(reply::json(
        200,
        &json!({
            "server": server, "suspended": true,
            "suspended_at": suspension.suspended_at,
            "suspended_by": suspension.suspended_by,
            "stopped": stopped,
        }),
    ))
}

pub fn resume(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let server = target(ctx, call, true)?;
    let was = ctx.store()?.resume_server(&server)?;
    if was {
        super::shared::log(&format!(
            "resumed the consoles of `{server}` (key `{}`)",
            key_name(call)
        ));
    }
    Ok(reply::json(
        200,
        &json!({ "server": server, "suspended": false, "was_suspended": was }),
    ))
}
