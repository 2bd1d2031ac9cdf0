//! The simulator's front door: which part answers a request. The API
//! under `/v1` goes through the pipeline (`service`), `/_sim/` to the
//! control endpoints, `/console/{id}?token=T` to the live console once
//! its ticket checks out.

use super::api_error::ApiError;
use super::console;
use super::control;
use super::query::Query;
use super::service::Sim;
use crate::http::{Reply, Request, Response};

pub fn handle(sim: &Sim, request: &Request) -> Reply {
    let path = request.path.as_str();
    if path == "/v1" || path.starts_with("/v1/") {
        sim.api(request)
    } else if path.starts_with("/_sim/") {
        Reply::Answer(control::handle(sim, request))
    } else if let Some(id) = path.strip_prefix("/console/") {
        open_console(sim, id, request)
    } else {
        let error = ApiError::not_found("route");
        Reply::Answer(Response::json(error.status, &error.body()))
    }
}

/// An upgrade on a console URL: the ticket must exist, be the
/// simulator's own (not a `--console-upstream` one) and be younger than
/// [`console::URL_LIFETIME_MS`], and its server `running` with no power
/// action under way; otherwise an HTTP refusal, as a console proxy
/// answers an unknown or stale token.
fn open_console(sim: &Sim, id: &str, request: &Request) -> Reply {
    let refuse = |status, why| Reply::Answer(console::refusal(status, why));
    let Ok(id) = id.parse::<u64>() else {
        return refuse(404, "no such console");
    };
    let query = Query::parse(&request.query);
    let Some(token) = query.get("token") else {
        return refuse(403, "console token missing");
    };
    let now_ms = sim.clock.now_ms();
    let (seat, password) = {
        let mut inner = sim.lock();
        // The status as the API would show it now.
        inner.state.advance(now_ms);
        let own_url = format!("{}/console/{id}?token={token}", sim.console_base());
        let ticket = inner
            .state
            .consoles()
            .iter()
            .rev()
            .find(|t| t.server == id && same(&t.token, token) && t.wss_url == own_url);
        let Some(ticket) = ticket else {
            return refuse(403, "invalid console token");
        };
        if sim.console_expired(ticket.issued_ms, now_ms) {
            return refuse(403, "console token expired");
        }
        let Ok(server) = inner.state.server(id) else {
            return refuse(404, "no such server");
        };
        // A machine that is off, starting or stopping has no screen to
        // show (as at Hetzner, whose console proxy then finds nothing to
        // connect to); nor has one being rebooted or reset, until the
        // action is done (`--action-ms`).
        if server.status != "running" {
            return refuse(409, &format!("the server is {}", server.status));
        }
        if inner.state.is_locked(id, now_ms) {
            return refuse(409, "the server is restarting");
        }
        // Taken under the lock that power actions start under: see Seat.
        let seat = sim.consoles.seat(id, &server.name, &server.system);
        (seat, ticket.password.clone())
    };
    console::open(seat, request, &password)
}

/// Compares two secrets without an early exit.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
