//! `POST /c/power`: the console page's power buttons (Reboot, Reset,
//! Power on). The page holds no API key, only its console session's
//! token, sent in the JSON body (never in a URL, so never in a log). What
//! the session may do follows the key whose link opened it: a key that may
//! queue actions (`act`, `admin`) may power the server from its console,
//! a `console` or `read` key's link may not.
//!
//! The body is `{"session": TOKEN}` plus one of:
//! - nothing (or `"verb": null`): 200 `{server, status, verbs}`, the verbs
//!   this page may use (none: the page shows no button), `reset-password`
//!   among them where the page may ask `/c/password` (password.rs);
//! - `"verb": "reboot" | "reset" | "start"`: 202 `{command}`, queued as
//!   the API's `POST /servers/{name}/actions/{verb}` queues it (the same
//!   `queue_verbs` setting, managed label and queue), or 409 with the one
//!   already under way;
//! - `"command": ID`: 200 `{command}` for a power command of this
//!   session's server, so the page can follow it to done or failed.
//!
//! An unknown token answers 404 (`session_unknown`), a session that ended
//! 410 (`session_expired`), a key that may not power 403.

use serde_json::{Value, json};

use super::auth::Need;
use super::gate::same_server;
use super::reply::{self, ApiError, Reply};
use super::request::{command_json, json_body, managed_server};
use super::shared::{Ctx, Incoming};
use crate::secret;
use crate::store::{PageSession, Scope, Source, now};
use crate::verb::{CommandLine, shown};

/// The verbs the console page offers, in its order.
pub const VERBS: [&str; 3] = ["reboot", "reset", "start"];

pub fn handle(ctx: &mut Ctx, req: &Incoming) -> Reply {
    match answer(ctx, req) {
        Ok(reply) => reply,
        Err(err) => err.to_json(),
    }
}

fn answer(ctx: &mut Ctx, req: &Incoming) -> Result<Reply, ApiError> {
    let body = json_body(&req.body)?;
    let session = session(ctx, &body)?;
    if let Some(id) = body.get("command").filter(|v| !v.is_null()) {
        return show_command(ctx, &session, id);
    }
    let allowed = allowed_verbs(ctx, &session);
    match body.get("verb") {
        None | Some(Value::Null) => {
            let status = ctx
                .store()?
                .server(&session.server, &ctx.settings.config.label)?
                .map(|s| s.status)
                .unwrap_or_default();
            Ok(reply::json(
                200,
                &json!({ "server": session.server, "status": status, "verbs": allowed }),
            ))
        }
        Some(Value::String(verb)) => queue(ctx, &session, verb, &allowed),
        Some(_) => Err(ApiError::bad_request(
            "bad_field",
            "`verb` must be one of reboot, reset, start",
        )),
    }
}

/// The live session the body's token names.
pub(super) fn session(
    ctx: &Ctx,
    body: &serde_json::Map<String, Value>,
) -> Result<PageSession, ApiError> {
    let Some(token) = body.get("session").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "bad_field",
            "the body must hold {\"session\": \"...\"}",
        ));
    };
    if !secret::is_token(token) {
        return Err(super::links::unknown_session());
    }
    let session = ctx
        .store()?
        .page_session(&secret::hash(token), now())?
        .ok_or_else(super::links::unknown_session)?;
    if !session.live {
        return Err(super::links::ended());
    }
    super::sessions::not_suspended(ctx, &session.server)?;
    Ok(session)
}

/// Whether a key of this scope may power a server from its console (and
/// reset its root password: password.rs).
pub(super) fn may_act(scope: Option<&str>) -> bool {
    scope
        .and_then(Scope::from_stored)
        .is_some_and(|s| Need::Act.granted_by(s))
}

/// The verbs the session may queue: its key may act, and this hcc takes
/// the verb from its queue; `reset-password` where the page may ask
/// `/c/password` for it.
fn allowed_verbs(ctx: &Ctx, session: &PageSession) -> Vec<&'static str> {
    if !may_act(session.scope.as_deref()) {
        return Vec::new();
    }
    let mut verbs: Vec<&'static str> = VERBS
        .into_iter()
        .filter(|v| ctx.settings.queue_allows(v))
        .collect();
    if super::password::offered(ctx, session) {
        verbs.push(super::password::VERB);
    }
    verbs
}

fn queue(
    ctx: &mut Ctx,
    session: &PageSession,
    verb: &str,
    allowed: &[&str],
) -> Result<Reply, ApiError> {
    if !VERBS.contains(&verb) {
        return Err(ApiError::bad_request(
            "bad_field",
            format!(
                "unknown verb `{}`: the console page may reboot, reset or start",
                shown(verb)
            ),
        ));
    }
    if !may_act(session.scope.as_deref()) {
        return Err(ApiError::new(
            403,
            "forbidden",
            "this console was opened through a link that may not power the server",
        ));
    }
    if !allowed.contains(&verb) {
        return Err(ApiError::new(
            403,
            "verb_not_allowed",
            format!("this hcc does not take `{verb}` from its queue (setting queue_verbs)"),
        ));
    }
    let name = session.server.as_str();
    managed_server(ctx, name)?;
    same_server(ctx, name, session.server_id)?;
    // One at a time: a second click, or a second tab, gets the first.
    if let Some(id) = ctx.store()?.unfinished_command(name, &VERBS)? {
        let command = ctx.store()?.command_view(id)?.map(|c| command_json(&c));
        return Ok(reply::json(
            409,
            &json!({
                "error": {
                    "code": "busy",
                    "message": format!("a power command for `{name}` is already under way"),
                },
                "command": command,
            }),
        ));
    }
    let line = CommandLine::from_words(verb, &[name])
        .map_err(|why| ApiError::bad_request("bad_request", why))?;
    let id = ctx.store()?.queue(&line, Source::Api)?;
    super::shared::log(&format!(
        "console session {} queued `{verb} {name}` (command {id})",
        session.id
    ));
    let command = ctx
        .store()?
        .command_view(id)?
        .map(|c| command_json(&c))
        .unwrap_or(Value::Null);
    Ok(reply::json(202, &json!({ "command": command })))
}

/// A power command of the session's server, as the API shows commands.
fn show_command(ctx: &Ctx, session: &PageSession, id: &Value) -> Result<Reply, ApiError> {
    let not_found = || ApiError::not_found("no such power command of this console's server");
    let id = id.as_i64().ok_or_else(|| {
        ApiError::bad_request("bad_field", "`command` must be a command id (a number)")
    })?;
    let command = ctx.store()?.command_view(id)?.ok_or_else(not_found)?;
    // Only what this page could have queued: its server's power commands.
    if command.arg != session.server || !VERBS.contains(&command.cmd.as_str()) {
        return Err(not_found());
    }
    Ok(reply::json(
        200,
        &json!({ "command": command_json(&command) }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_may_act_may_power() {
        assert!(may_act(Some("act")));
        assert!(may_act(Some("admin")));
        assert!(!may_act(Some("console")));
        assert!(!may_act(Some("read")));
        assert!(!may_act(Some("something else")));
        assert!(!may_act(None));
    }
}
