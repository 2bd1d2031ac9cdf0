//! `POST /c/password`: the console page's "Reset root password", for a
//! customer locked out of their server. Like `/c/power` (power.rs) the
//! page holds only its console session's token, sent in the body; the
//! key whose link opened the session must be one that may act.
//!
//! - `{"session"}`: queues `reset-password NAME` for the worker, as the
//!   API's `POST /servers/{name}/actions/reset-password` does, and answers
//!   202 `{"state": "queued", "command": ID}`; 409 (`busy`) while another
//!   reset of this server is under way.
//! - `{"session", "command": ID}`: 200 `{"state", "command"}` while it
//!   runs, then `{"root_password": "..."}` once: the password is kept for
//!   this page session alone and gone from the command row when handed
//!   out; asked again, 410 (`password_shown`). A reset that failed: 502
//!   (`failed`) with the worker's reason.

use serde_json::{Value, json};

use super::gate::same_server;
use super::power::{may_act, session};
use super::reply::{self, ApiError, Reply};
use super::request::{json_body, managed_server};
use super::shared::{Ctx, Incoming};
use crate::store::{CommandId, CommandState, PageSession, Source};
use crate::verb::CommandLine;

/// The verb, as the queue spells it.
pub const VERB: &str = "reset-password";

pub fn handle(ctx: &mut Ctx, req: &Incoming) -> Reply {
    match answer(ctx, req) {
        Ok(reply) => reply,
        Err(err) => err.to_json(),
    }
}

/// Whether this page may reset its server's root password.
pub fn offered(ctx: &Ctx, session: &PageSession) -> bool {
    may_act(session.scope.as_deref()) && ctx.settings.queue_allows(VERB)
}

/// The name the command's password is kept for: this page session.
fn holder(session: &PageSession) -> String {
    format!("console session {}", session.id)
}

fn answer(ctx: &mut Ctx, req: &Incoming) -> Result<Reply, ApiError> {
    let body = json_body(&req.body)?;
    let session = session(ctx, &body)?;
    if !offered(ctx, &session) {
        return Err(ApiError::new(
            403,
            "forbidden",
            "this console was opened through a link that may not reset the root password",
        ));
    }
    match body.get("command") {
        None | Some(Value::Null) => queue(ctx, &session),
        Some(id) => {
            let id = id.as_i64().ok_or_else(|| {
                ApiError::bad_request("bad_field", "`command` must be a command id (a number)")
            })?;
            follow(ctx, &session, CommandId::new(id))
        }
    }
}

fn queue(ctx: &mut Ctx, session: &PageSession) -> Result<Reply, ApiError> {
    let name = session.server.as_str();
    managed_server(ctx, name)?;
    same_server(ctx, name, session.server_id)?;
    if ctx.store()?.unfinished_command(name, &[VERB])?.is_some() {
        return Err(ApiError::new(
            409,
            "busy",
            format!("a root password reset of `{name}` is already under way"),
        ));
    }
    let line = CommandLine::from_words(VERB, &[name])
        .map_err(|why| ApiError::bad_request("bad_request", why))?;
    let id = ctx
        .store()?
        .queue_by(&line, Source::Api, Some(&holder(session)))?;
    super::shared::log(&format!(
        "console session {} queued `{VERB} {name}` (command {id})",
        session.id
    ));
    Ok(reply::json(
        202,
        &json!({ "state": "queued", "command": id }),
    ))
}

fn follow(ctx: &mut Ctx, session: &PageSession, id: CommandId) -> Result<Reply, ApiError> {
    let not_found = || ApiError::not_found("no root password reset of this console's server");
    let command = ctx.store()?.command_view(id)?.ok_or_else(not_found)?;
    if command.cmd != VERB || command.arg != session.server {
        return Err(not_found());
    }
    match CommandState::parse(&command.state) {
        Some(CommandState::Done) => {
            match ctx.store()?.take_command_password(id, &holder(session))? {
                Some(password) => Ok(reply::json(200, &json!({ "root_password": password }))),
                None => Err(ApiError::new(
                    410,
                    "password_shown",
                    "this reset's password was shown already (reset it again for a new one)",
                )),
            }
        }
        Some(CommandState::Failed) => Err(ApiError::new(
            502,
            "failed",
            format!(
                "the reset failed: {}",
                command.error.as_deref().unwrap_or("no reason given")
            ),
        )),
        _ => Ok(reply::json(
            200,
            &json!({ "state": command.state, "command": id }),
        )),
    }
}
