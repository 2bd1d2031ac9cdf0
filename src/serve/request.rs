//! What the handlers of `hcc serve` read of a request: the caller's API
//! key, the call a route matched, its JSON body, and the server it names.
//! Shared by the JSON API's route table (api.rs) and the handlers it
//! routes to (adopt.rs, catalog.rs, sessions.rs), by `/metrics` and by the
//! console pages' routes (links.rs, power.rs), none of which imports api.rs.

use serde_json::{Map, Value, json};

use super::auth;
use super::reply::ApiError;
use super::shared::{Ctx, Incoming};
use crate::secret;
use crate::server::Server;
use crate::store::{ApiKey, CommandView, now};
use crate::verb::check_server_name;

/// One authenticated call: the route's parameters, the body, the key.
pub struct Call<'a> {
    pub params: Vec<&'a str>,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub body: &'a [u8],
    pub key: Option<ApiKey>,
}

/// The caller's API key, from its `Authorization: Bearer` header.
pub fn authenticate(ctx: &mut Ctx, req: &Incoming) -> Result<ApiKey, ApiError> {
    let unauthorized = |msg: &str| ApiError::new(401, "unauthorized", msg);
    let Some(header) = req.authorization.as_deref() else {
        return Err(unauthorized(
            "this route needs an API key: send `Authorization: Bearer KEY` (create one with `hcc apikey add`)",
        ));
    };
    let Some(secret) = auth::bearer(header) else {
        return Err(unauthorized(
            "the Authorization header must be `Bearer KEY`",
        ));
    };
    let key_hash = secret::hash(secret);
    let answers = &ctx.settings.answers;
    let (version, kept) = answers.key(&ctx.settings.home, &key_hash)?;
    ctx.seen = Some(version);
    let key = match kept {
        Some(key) => key,
        None => {
            let key = ctx
                .store()?
                .api_key_by_hash(&key_hash)?
                .ok_or_else(|| unauthorized("unknown or revoked API key"))?;
            answers.keep_key(version, &key_hash, &key);
            key
        }
    };
    // Last use is recorded at most once a minute: a write per request
    // would cost more than the request.
    let t = now();
    if key.last_used_at.is_none_or(|at| t - at >= 60) {
        ctx.store()?.touch_api_key(&key.name, t)?;
    }
    Ok(key)
}

/// A valid name of a server in the local table.
pub fn known_server(ctx: &Ctx, name: &str) -> Result<Server, ApiError> {
    check_server_name(name).map_err(|why| ApiError::bad_request("invalid_name", why))?;
    ctx.store()?
        .server(name, &ctx.settings.config.label)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no server named `{name}` (hcc sync refreshes the table)"
            ))
        })
}

/// A known server that carries the managed label and exists at Hetzner.
pub fn managed_server(ctx: &Ctx, name: &str) -> Result<(Server, i64), ApiError> {
    let server = known_server(ctx, name)?;
    if !server.managed {
        return Err(ApiError::new(
            403,
            "not_managed",
            format!(
                "server `{name}` is not managed by hcc: it lacks the label `{}`",
                ctx.settings.config.label
            ),
        ));
    }
    let id = server.id.ok_or_else(|| {
        ApiError::new(
            409,
            "not_ready",
            format!("server `{name}` is still being created"),
        )
        .retry_after(5)
    })?;
    Ok((server, id))
}

pub fn server_json(s: &Server) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// The body as a JSON object; an empty body is `{}`.
pub fn json_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "bad_json",
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(
            "bad_json",
            format!("the request body is not valid JSON: {e}"),
        )),
    }
}

pub fn command_json(c: &CommandView) -> Value {
    let result = c
        .result
        .as_deref()
        .map(|r| serde_json::from_str(r).unwrap_or_else(|_| Value::String(r.into())));
    json!({
        "id": c.id, "cmd": c.cmd, "arg": c.arg, "state": c.state, "source": c.source,
        "attempts": c.attempts, "result": result, "error": c.error,
        "created_at": c.created_at, "started_at": c.started_at,
        "finished_at": c.finished_at, "not_before": c.not_before,
    })
}
