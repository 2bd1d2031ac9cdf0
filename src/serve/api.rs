//! The JSON API under `/api/v1`: a route table (which `openapi.json`
//! must match, see the tests; router.rs matches it), bearer authentication, scopes, and one
//! handler per route. Reads come from the local tables, never from
//! Hetzner; actions are queued for the worker; only console requests call
//! Hetzner at once, within the shared rate budget.

use std::sync::Arc;

use serde_json::{Value, json};

use super::auth::Need;
use super::reply::{self, ApiError, Reply};
use super::request::{
    Call, authenticate, command_json, json_body, known_server, managed_server, server_json,
};
use super::shared::{Ctx, Incoming};
use crate::secret;
use crate::server::has_prefix;
use crate::store::{CommandId, Scope, Source, now};
use crate::verb::{Clearance, CommandLine, Verb, check_server_name, shown};

pub const PREFIX: &str = "/api/v1";

/// The OpenAPI document served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

type Handler = fn(&mut Ctx, &Call) -> Result<Reply, ApiError>;

pub struct Route {
    pub method: &'static str,
    /// Below [`PREFIX`]; `{x}` matches one path segment.
    pub path: &'static str,
    /// `None`: no key needed.
    pub need: Option<Need>,
    handler: Handler,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/openapi.json",
        need: None,
        handler: openapi,
    },
    Route {
        method: "GET",
        path: "/servers",
        need: Some(Need::Read),
        handler: list_servers,
    },
    Route {
        method: "GET",
        path: "/servers/{name}",
        need: Some(Need::Read),
        handler: show_server,
    },
    Route {
        method: "GET",
        path: "/servers/{name}/metrics",
        need: Some(Need::Read),
        handler: super::server_metrics::get,
    },
    Route {
        method: "POST",
        path: "/servers/{name}/actions/{verb}",
        need: Some(Need::Act),
        handler: queue_action,
    },
    Route {
        method: "POST",
        path: "/servers/{name}/console",
        need: Some(Need::Console),
        handler: console,
    },
    Route {
        method: "POST",
        path: "/servers/{name}/console-link",
        need: Some(Need::Console),
        handler: console_link,
    },
    Route {
        method: "GET",
        path: "/commands/{id}",
        need: Some(Need::Read),
        handler: show_command,
    },
    Route {
        method: "GET",
        path: "/status",
        need: Some(Need::Read),
        handler: status,
    },
    Route {
        method: "GET",
        path: "/sessions",
        need: Some(Need::Admin),
        handler: super::sessions::list,
    },
    Route {
        method: "POST",
        path: "/servers/{name}/revoke",
        need: Some(Need::Admin),
        handler: super::sessions::revoke,
    },
    Route {
        method: "POST",
        path: "/servers/{name}/suspend",
        need: Some(Need::Admin),
        handler: super::sessions::suspend,
    },
    Route {
        method: "POST",
        path: "/servers/{name}/resume",
        need: Some(Need::Admin),
        handler: super::sessions::resume,
    },
    Route {
        method: "GET",
        path: "/catalog",
        need: Some(Need::Act),
        handler: super::catalog::get,
    },
    Route {
        method: "POST",
        path: "/servers/{name}/adopt",
        need: Some(Need::Admin),
        handler: super::adopt::adopt,
    },
    Route {
        method: "POST",
        path: "/servers/{name}/release",
        need: Some(Need::Admin),
        handler: super::adopt::release,
    },
];

/// Answers a request whose path starts with [`PREFIX`]: `matching` are
/// the routes at its path (the router's match, with their `params`), none
/// when no route has it.
pub fn handle(ctx: &mut Ctx, req: &Incoming, matching: &[&Route], params: Vec<&str>) -> Reply {
    match dispatch(ctx, req, matching, params) {
        Ok(reply) => reply,
        Err(err) => err.to_json(),
    }
}

fn dispatch(
    ctx: &mut Ctx,
    req: &Incoming,
    matching: &[&Route],
    params: Vec<&str>,
) -> Result<Reply, ApiError> {
    let found = matching.iter().find(|route| {
        route.method == req.method || (req.method == "HEAD" && route.method == "GET")
    });
    // A key is checked before anything is said about the route, so the
    // API's shape is not open to callers without one.
    let public = found.is_some_and(|route| route.need.is_none());
    let key = if public {
        None
    } else {
        Some(authenticate(ctx, req)?)
    };
    let Some(route) = found else {
        if matching.is_empty() {
            return Err(ApiError::not_found(format!(
                "no such API route: {} {}",
                req.method,
                shown(&req.path)
            )));
        }
        let mut allow: Vec<&str> = matching.iter().map(|r| r.method).collect();
        if allow.contains(&"GET") {
            allow.push("HEAD");
        }
        let allow = allow.join(", ");
        return Err(ApiError::new(
            405,
            "method_not_allowed",
            format!("{} is not allowed here; use {allow}", shown(&req.method)),
        )
        .allow(allow));
    };
    if let (Some(need), Some(key)) = (route.need, &key) {
        let scope = Scope::from_stored(&key.scope).unwrap_or(Scope::Read);
        if !need.granted_by(scope) {
            return Err(ApiError::new(
                403,
                "forbidden",
                format!(
                    "the API key `{}` has scope `{}`, which may not do this (needs `{}`{})",
                    key.name,
                    key.scope,
                    match need {
                        Need::Act => "act",
                        Need::Console => "console",
                        Need::Read => "read",
                        Need::Admin => "admin",
                    },
                    if need == Need::Admin {
                        ""
                    } else {
                        " or `admin`"
                    }
                ),
            ));
        }
    }
    let call = Call {
        params,
        query: &req.query,
        body: &req.body,
        key,
    };
    (route.handler)(ctx, &call)
}

fn openapi(_: &mut Ctx, _: &Call) -> Result<Reply, ApiError> {
    Ok(Reply {
        status: 200,
        content_type: super::reply::JSON,
        body: crate::http::Body::Static(OPENAPI.as_bytes()),
        headers: Vec::new(),
    })
}

fn list_servers(ctx: &mut Ctx, _: &Call) -> Result<Reply, ApiError> {
    let (body, _) = ctx
        .settings
        .listing
        .get(&ctx.settings.home, &ctx.settings.config.label)?;
    Ok(Reply {
        status: 200,
        content_type: super::reply::JSON,
        body: crate::http::Body::Shared(body),
        headers: vec![("Cache-Control", "no-store".into())],
    })
}

fn show_server(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let name = call.params[0];
    // Rendered once while the database is unchanged (answers.rs): parsing
    // the stored Hetzner object is most of what this answer costs.
    let answers = &ctx.settings.answers;
    let body = match answers.server(&ctx.settings.home, name, ctx.seen)? {
        (_, Some(body)) => body,
        (version, None) => {
            let server = known_server(ctx, name)?;
            let detail = ctx
                .store()?
                .server_api(&server.name)?
                .map(|api| crate::server::detail(&api));
            let body = Arc::new(reply::rendered(
                &json!({ "server": server_json(&server), "detail": detail }),
            ));
            answers.keep_server(version, name, &body);
            body
        }
    };
    Ok(reply::json_body(200, crate::http::Body::Shared(body)))
}

/// Verbs the API does not take as actions on a server: `notify` is about
/// none, adopting and releasing are an operator's.
fn is_server_action(verb: Verb) -> bool {
    !matches!(verb, Verb::Notify | Verb::SetTag | Verb::DelTag)
}

/// `POST /servers/{name}/actions/{verb}`: queues the command for the
/// worker; the body is `{}` or the verb's options (`create`: the optional
/// `server_type`, `image`, `location`; the client-area verbs: see
/// `serve/manage.rs`).
fn queue_action(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let (name, word) = (call.params[0], call.params[1]);
    let Some(verb) = Verb::from_word(word).filter(|v| is_server_action(*v)) else {
        let known: Vec<&str> = Verb::words()
            .into_iter()
            .filter(|w| Verb::from_word(w).is_some_and(is_server_action))
            .collect();
        return Err(ApiError::not_found(format!(
            "unknown action `{}` (known: {})",
            shown(word),
            known.join(", ")
        )));
    };
    if !ctx.settings.queue_allows(word) {
        return Err(ApiError::new(
            403,
            "verb_not_allowed",
            format!("this hcc does not take `{word}` from its queue (setting queue_verbs)"),
        ));
    }
    // Creating and deleting servers costs money and loses data: more than
    // a key that may only press buttons.
    if matches!(verb, Verb::Create | Verb::Kill)
        && call.key.as_ref().is_none_or(|k| k.scope != "admin")
    {
        return Err(ApiError::new(
            403,
            "forbidden",
            format!("`{word}` needs an API key with scope `admin`"),
        ));
    }
    if let Verb::Manage(manage) = verb {
        let scope = call.key.as_ref().and_then(|k| Scope::from_stored(&k.scope));
        if !scope.is_some_and(|scope| super::manage::allowed(manage, scope)) {
            let needed = match manage.clearance() {
                Clearance::Admin => "`admin`",
                Clearance::Act => "`act` or `admin`",
            };
            return Err(ApiError::new(
                403,
                "forbidden",
                format!("`{word}` needs an API key with scope {needed}"),
            ));
        }
    }
    let body = json_body(call.body)?;
    let mut words = vec![name.to_string()];
    if let Verb::Manage(manage) = verb {
        managed_server(ctx, name)?;
        words.extend(super::manage::words(manage, &body)?);
    } else if verb == Verb::Create {
        check_server_name(name).map_err(|why| ApiError::bad_request("invalid_name", why))?;
        if ctx
            .store()?
            .server(name, &ctx.settings.config.label)?
            .is_some()
        {
            return Err(ApiError::new(
                409,
                "exists",
                format!("a server named `{name}` exists already"),
            ));
        }
        if !has_prefix(name, &ctx.settings.config.prefix) {
            return Err(ApiError::new(
                403,
                "bad_prefix",
                format!(
                    "new server names must begin with `{}`",
                    ctx.settings.config.prefix
                ),
            ));
        }
        let defaults = &ctx.settings.config;
        let options = [
            ("server_type", &defaults.server_type),
            ("image", &defaults.image),
            ("location", &defaults.location),
        ];
        if options.iter().any(|(k, _)| body.get(*k).is_some()) {
            for (key, default) in options {
                let value = match body.get(key) {
                    None | Some(Value::Null) => default.clone(),
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => {
                        return Err(ApiError::bad_request(
                            "bad_field",
                            format!("`{key}` must be a string"),
                        ));
                    }
                };
                words.push(value);
            }
        }
    } else {
        managed_server(ctx, name)?;
        if verb == Verb::Console {
            super::sessions::not_suspended(ctx, name)?;
        }
    }
    let line = CommandLine::from_words(word, &words)
        .map_err(|why| ApiError::bad_request("bad_request", why))?;
    let key = call.key.as_ref().map(|k| k.name.as_str());
    let id = ctx.store()?.queue_by(&line, Source::Api, key)?;
    let command = ctx
        .store()?
        .command_view(id)?
        .map(|c| command_json(&c))
        .unwrap_or(Value::Null);
    Ok(reply::json(202, &json!({ "command": command }))
        .with_header("Location", format!("{PREFIX}/commands/{id}")))
}

fn show_command(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let id: i64 = call.params[0].parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("`{}` is not a command id", shown(call.params[0])),
        )
    })?;
    let command = ctx
        .store()?
        .command_view(id)?
        .ok_or_else(|| ApiError::not_found(format!("no command {id}")))?;
    let mut shown = command_json(&command);
    // A root password goes to the key that queued the command, once.
    if let Some(key) = &call.key
        && let Some(password) = ctx
            .store()?
            .take_command_password(CommandId::new(id), &key.name)?
    {
        if !shown["result"].is_object() {
            shown["result"] = json!({});
        }
        shown["result"]["root_password"] = json!(password);
    }
    Ok(reply::json(200, &json!({ "command": shown })))
}

/// `POST /servers/{name}/console`: fresh credentials now, for a panel
/// that runs its own console page.
fn console(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    json_body(call.body)?;
    let (server, id) = managed_server(ctx, call.params[0])?;
    super::sessions::not_suspended(ctx, &server.name)?;
    let fresh = ctx.request_console(&server.name, id)?;
    Ok(reply::json(
        200,
        &json!({
            "server": server.name, "wss_url": fresh.wss_url, "password": fresh.password,
            "issued_at": fresh.issued_at, "expires_at": fresh.issued_at + 60,
        }),
    ))
}

/// `POST /servers/{name}/console-link`: a one-time link for a customer.
fn console_link(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    json_body(call.body)?;
    let (server, id) = managed_server(ctx, call.params[0])?;
    super::sessions::not_suspended(ctx, &server.name)?;
    let token = secret::random_token()?;
    let t = now();
    let expires_at = t + ctx.settings.link_ttl();
    let by = call.key.as_ref().map(|k| k.name.as_str()).unwrap_or("");
    ctx.store()?
        .add_console_link(&secret::hash(&token), (&server.name, id), by, t, expires_at)?;
    Ok(reply::json(
        201,
        &json!({
            "url": format!("{}/c/{token}", ctx.settings.public_url),
            "server": server.name,
            "expires_at": expires_at,
        }),
    ))
}

fn status(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let mut report =
        crate::worker::status::report(&ctx.settings.home, ctx.settings.config.command_share())?;
    let (_, servers) = ctx
        .settings
        .listing
        .get(&ctx.settings.home, &ctx.settings.config.label)?;
    report["servers"] = json!(servers);
    // The dashboard shows only the buttons the calling key may press.
    report["key"] = call
        .key
        .as_ref()
        .map_or(Value::Null, |k| json!({"name": k.name, "scope": k.scope}));
    Ok(reply::json(200, &report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route is in the OpenAPI document, and the document names no
    /// route the server lacks.
    #[test]
    fn the_openapi_document_matches_the_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, ops) in paths {
            for method in ops.as_object().unwrap().keys() {
                if !matches!(method.as_str(), "parameters" | "servers") {
                    documented.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        // `/metrics` lies outside the prefix: its path item names `/` as
        // its server, and it is open to some callers without a key.
        let metrics = super::super::metrics::PATH;
        served.push(("GET".into(), metrics.into()));
        assert_eq!(paths[metrics]["servers"][0]["url"], "/");
        assert_eq!(paths[metrics]["get"]["security"][0], json!({}));
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
        for route in ROUTES {
            let op = &paths[route.path][route.method.to_lowercase()];
            let secured = op
                .get("security")
                .is_none_or(|s| s.as_array().is_some_and(|a| !a.is_empty()));
            assert_eq!(
                secured,
                route.need.is_some(),
                "security of {} {}",
                route.method,
                route.path
            );
        }
    }
}
