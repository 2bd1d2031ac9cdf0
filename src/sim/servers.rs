//! Handlers for `/servers`: list with filters, get, create, update,
//! delete, and the power and console actions.

use serde_json::{Value, json};

use super::api_error::ApiError;
use super::catalog::{self, DATACENTERS, IMAGES, LOCATIONS, SERVER_TYPES};
use super::ctx::{Answer, Ctx, body_json};
use super::json;
use super::query::{Query, sort_by};
use super::rng;
use super::selector::Selector;
use super::state::{ConsoleTicket, NewServer, Server, Verb, check_labels, check_name, labels_from};
use super::verbs;

const STATUSES: &[&str] = &[
    "running",
    "initializing",
    "starting",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
];

pub fn render(ctx: &Ctx<'_>, server: &Server) -> Value {
    json::server(server, ctx.state, ctx.catalog, ctx.now_ms)
}

pub fn list(ctx: &mut Ctx<'_>, q: &Query) -> Answer {
    let selector = q
        .get("label_selector")
        .map(Selector::parse)
        .transpose()
        .map_err(|why| ApiError::invalid_param("label_selector", &why))?;
    let statuses = q.all("status");
    if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(s)) {
        return Err(ApiError::invalid_param(
            "status",
            &format!("unknown status `{bad}`"),
        ));
    }
    let sort = q.sort(&["id", "name", "created"])?;
    let page = q.page()?;

    let mut servers: Vec<&Server> = match q.get("name") {
        Some(name) => ctx.state.server_by_name(name).into_iter().collect(),
        None => ctx.state.servers().collect(),
    };
    servers.retain(|s| {
        selector.as_ref().is_none_or(|sel| sel.matches(&s.labels))
            && (statuses.is_empty() || statuses.contains(&s.status))
    });
    sort_by(&mut servers, &sort, |field, a, b| match field {
        "name" => a.name.cmp(&b.name),
        "created" => a.created.cmp(&b.created),
        _ => a.id.cmp(&b.id),
    });
    let total = servers.len();
    let items = servers[page.range(total)]
        .iter()
        .map(|s| render(ctx, s))
        .collect();
    Ok((200, json::page("servers", items, page, total)))
}

pub fn get(ctx: &mut Ctx<'_>, id: u64) -> Answer {
    let server = ctx.state.server(id)?;
    Ok((200, json!({ "server": render(ctx, server) })))
}

/// A catalogue reference (`server_type`, `image`, ...) by id or name.
fn lookup<T>(
    body: &Value,
    field: &str,
    list: &[T],
    id: impl Fn(&T) -> u64,
    name: impl Fn(&T) -> &str,
) -> Result<Option<usize>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(key) => catalog::find(list, key, id, name).map(Some).ok_or_else(|| {
            ApiError::invalid_input(field, &format!("{} not found", field.replace('_', " ")))
        }),
    }
}

pub fn create(ctx: &mut Ctx<'_>, body: &[u8]) -> Answer {
    let body = body_json(body)?;
    let name = match body.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err(ApiError::invalid_input("name", "is required")),
    };
    check_name(&name)?;
    let server_type = lookup(&body, "server_type", SERVER_TYPES, |t| t.id, |t| t.name)?
        .ok_or_else(|| ApiError::invalid_input("server_type", "is required"))?;
    let image = lookup(&body, "image", IMAGES, |i| i.id, |i| i.name)?
        .ok_or_else(|| ApiError::invalid_input("image", "is required"))?;
    let location = lookup(&body, "location", LOCATIONS, |l| l.id, |l| l.name)?;
    let datacenter = lookup(&body, "datacenter", DATACENTERS, |d| d.id, |d| d.name)?;
    let datacenter = match (location, datacenter) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_input(
                "datacenter",
                "must not be used together with location",
            ));
        }
        (Some(l), None) => DATACENTERS
            .iter()
            .position(|d| d.location == l)
            .unwrap_or(catalog::RECOMMENDED_DATACENTER),
        (None, Some(d)) => d,
        (None, None) => catalog::RECOMMENDED_DATACENTER,
    };
    let location = &LOCATIONS[DATACENTERS[datacenter].location];
    if !SERVER_TYPES[server_type].offered_in(location) {
        return Err(ApiError::resource_unavailable(&format!(
            "server type {} is not available in {}",
            SERVER_TYPES[server_type].name, location.name
        )));
    }
    let labels = match body.get("labels") {
        None | Some(Value::Null) => Default::default(),
        Some(v) => labels_from(v)?,
    };
    check_labels(&labels)?;
    let start_after_create = match body.get("start_after_create") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid_input(
                "start_after_create",
                "must be a boolean",
            ));
        }
    };
    let with_ssh_keys = body
        .get("ssh_keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| !keys.is_empty());

    let now_unix = ctx.clock.unix_secs(ctx.now_ms);
    let created = ctx.state.create(
        NewServer {
            name,
            server_type,
            image,
            datacenter,
            labels,
            start_after_create,
            with_ssh_keys,
        },
        ctx.now_ms,
        now_unix,
        ctx.rng,
    )?;
    let action = |id: u64| {
        ctx.state
            .action(id)
            .map(|a| json::action(a, ctx.clock, ctx.now_ms))
            .unwrap_or(Value::Null)
    };
    let next_actions: Vec<Value> = created.next_actions.iter().map(|&id| action(id)).collect();
    let server = render(ctx, ctx.state.server(created.server)?);
    Ok((
        201,
        json!({
            "server": server,
            "action": action(created.action),
            "next_actions": next_actions,
            "root_password": created.root_password,
        }),
    ))
}

pub fn update(ctx: &mut Ctx<'_>, id: u64, body: &[u8]) -> Answer {
    ctx.state.server(id)?;
    let body = body_json(body)?;
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::invalid_input("name", "must be a string")),
    };
    let labels = match body.get("labels") {
        None | Some(Value::Null) => None,
        Some(v) => Some(labels_from(v)?),
    };
    ctx.state.update(id, name, labels)?;
    get(ctx, id)
}

pub fn delete(ctx: &mut Ctx<'_>, id: u64) -> Answer {
    let action = ctx.state.delete(id, ctx.now_ms)?;
    // Its console's viewers are cut off with it.
    ctx.consoles.forget(id);
    action_answer(ctx, 200, action, json!({}))
}

pub fn act(ctx: &mut Ctx<'_>, id: u64, verb: Verb, body: &[u8]) -> Answer {
    if !verb.is_power() {
        return verbs::act(ctx, id, verb, body);
    }
    let action = ctx.state.act(id, verb, ctx.now_ms)?;
    if verb.stops_machine() {
        ctx.consoles.stop(id);
    }
    let mut extra = json!({});
    if verb == Verb::RequestConsole {
        let token = rng::alphanumeric(ctx.rng, 36);
        let password = rng::alphanumeric(ctx.rng, 32);
        let (wss_url, password) = match ctx.console_upstream {
            Some(upstream) => (
                upstream.url.clone(),
                upstream.password.clone().unwrap_or(password),
            ),
            None => (
                format!("{}/console/{id}?token={token}", ctx.console_base),
                password,
            ),
        };
        let ticket = ConsoleTicket {
            server: id,
            token,
            wss_url,
            password,
            issued_ms: ctx.now_ms,
        };
        extra = json!({
            "wss_url": ticket.wss_url,
            "password": ticket.password,
        });
        ctx.state.add_console(ticket);
    }
    action_answer(ctx, 201, action, extra)
}

/// `{"action": ...}` plus the fields of `extra`.
fn action_answer(ctx: &Ctx<'_>, status: u16, action: u64, mut extra: Value) -> Answer {
    let action = ctx
        .state
        .action(action)
        .map(|a| json::action(a, ctx.clock, ctx.now_ms))
        .unwrap_or(Value::Null);
    extra["action"] = action;
    Ok((status, extra))
}
