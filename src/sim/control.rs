//! The control endpoints under `/_sim/`, outside the API: no token, no
//! rate limit, not counted. Tests use them to read the request counters
//! and to change the world behind the client's back.
//!
//! - `GET /_sim/stats`: counters (`requests`, `rate_limited`, `faults`,
//!   `by_route`, ...).
//! - `POST /_sim/servers` `{"name", "labels", "status"}`: a server made
//!   outside hcc (status `running` or `off`).
//! - `DELETE /_sim/servers/{id}`: a server gone without an action.
//! - `POST /_sim/fail_next_action`: the next action ends in `error`.
//! - `POST /_sim/lose_next_answer` `{"route": "POST /servers"}`: the next
//!   request on that route (as `by_route` names it) takes effect, then its
//!   connection closes without an answer: a client's timeout after the fact.
//! - `POST /_sim/rate_limit_next` `{"count": N}`: the next N API requests
//!   answer 429, as `--fail 429:P` would, but on demand.
//! - `GET /_sim/consoles`: the console tickets handed out (server, token,
//!   URL, password, issue time, whether its URL has expired), to check
//!   what a client shows against them.
//! - `GET /_sim/consoles/{id}` (a server id or name): the live console of
//!   that server: clients connected and authenticated, logins and failed
//!   ones, the text typed, the last pointer, the cut text, updates sent,
//!   why the last connection ended, the power actions that ended its
//!   connections (`stops`), the system it booted (`system`: the image's
//!   description, or `rescue`), and the screen's text rows.

use serde_json::{Value, json};

use super::api_error::ApiError;
use super::ctx::body_json;
use super::json;
use super::service::Sim;
use super::state::{Labels, labels_from};
use crate::http::{Request, Response};

pub fn handle(sim: &Sim, request: &Request) -> Response {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match (request.method.as_str(), &segments[..]) {
        ("GET", ["_sim", "stats"]) => Ok((200, sim.stats_json())),
        ("POST", ["_sim", "servers"]) => create_server(sim, &request.body),
        ("DELETE", ["_sim", "servers", id]) => match id.parse::<u64>() {
            Ok(id) => sim.lock().state.remove(id).map(|()| {
                sim.consoles.forget(id);
                (200, json!({}))
            }),
            Err(_) => Err(ApiError::not_found("server")),
        },
        ("POST", ["_sim", "fail_next_action"]) => {
            sim.lock().state.fail_next_action();
            Ok((200, json!({})))
        }
        ("POST", ["_sim", "rate_limit_next"]) => rate_limit_next(sim, &request.body),
        ("GET", ["_sim", "consoles"]) => Ok((200, consoles(sim))),
        ("GET", ["_sim", "consoles", server]) => console(sim, server),
        ("POST", ["_sim", "lose_next_answer"]) => lose_next_answer(sim, &request.body),
        _ => Err(ApiError::not_found("route")),
    };
    match result {
        Ok((status, body)) => Response::json(status, &body),
        Err(error) => Response::json(error.status, &error.body()),
    }
}

fn lose_next_answer(sim: &Sim, body: &[u8]) -> Result<(u16, Value), ApiError> {
    let body = body_json(body)?;
    let route = body
        .get("route")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_input("route", "is required"))?;
    sim.lock().lose_answer = Some(route.to_string());
    Ok((200, json!({})))
}

fn rate_limit_next(sim: &Sim, body: &[u8]) -> Result<(u16, Value), ApiError> {
    let count = match body_json(body)?.get("count") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::invalid_input("count", "must be a whole number"))?,
    };
    sim.lock().rate_limit_next = count;
    Ok((200, json!({ "count": count })))
}

fn create_server(sim: &Sim, body: &[u8]) -> Result<(u16, Value), ApiError> {
    let body = body_json(body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_input("name", "is required"))?
        .to_string();
    let labels = match body.get("labels") {
        None | Some(Value::Null) => Labels::new(),
        Some(v) => labels_from(v)?,
    };
    let status = match body.get("status").and_then(Value::as_str) {
        None | Some("running") => "running",
        Some("off") => "off",
        Some(_) => return Err(ApiError::invalid_input("status", "must be running or off")),
    };
    let now_ms = sim.clock.now_ms();
    let mut inner = sim.lock();
    let id = inner
        .state
        .create_direct(name, labels, status, sim.clock.unix_secs(now_ms))?;
    let server = inner.state.server(id)?;
    Ok((
        201,
        json!({ "server": json::server(server, &inner.state, &sim.catalog, now_ms) }),
    ))
}

fn consoles(sim: &Sim) -> Value {
    let now_ms = sim.clock.now_ms();
    let inner = sim.lock();
    let tickets: Vec<Value> = inner
        .state
        .consoles()
        .iter()
        .map(|t| {
            json!({
                "server": t.server,
                "token": t.token,
                "wss_url": t.wss_url,
                "password": t.password,
                "issued": sim.clock.rfc3339(t.issued_ms),
                "expired": sim.console_expired(t.issued_ms, now_ms),
            })
        })
        .collect();
    json!({ "consoles": tickets })
}

/// One server's live console, by server id or name.
fn console(sim: &Sim, server: &str) -> Result<(u16, Value), ApiError> {
    let (id, name, system) = {
        let mut inner = sim.lock();
        // The console as it is now: a rebuild that ended shows its system.
        inner.state.advance(sim.clock.now_ms());
        let found = match server.parse::<u64>() {
            Ok(id) => inner.state.server(id).ok(),
            Err(_) => inner.state.server_by_name(server),
        };
        let found = found.ok_or_else(|| ApiError::not_found("server"))?;
        (found.id, found.name.clone(), found.system.clone())
    };
    Ok((200, sim.consoles.json(id, &name, &system)))
}
