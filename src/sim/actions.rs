//! Handlers for actions: `/actions?id=..` (the batched poll), `/actions/ID`,
//! `/servers/actions` and `/servers/ID/actions`, with status filters,
//! sorting and pagination.

use std::collections::HashSet;

use serde_json::json;

use super::api_error::ApiError;
use super::ctx::{Answer, Ctx};
use super::json;
use super::query::{Query, sort_by};
use super::state::{Action, Progress};

const SORT_FIELDS: &[&str] = &["id", "command", "status", "started", "finished"];

fn status_word(action: &Action, now_ms: u64) -> &'static str {
    match action.progress(now_ms) {
        Progress::Running(_) => "running",
        Progress::Success => "success",
        Progress::Error => "error",
    }
}

/// Filters by `status`, sorts and pages a list of actions.
fn page_of(ctx: &Ctx<'_>, q: &Query, mut actions: Vec<&Action>) -> Answer {
    let statuses = q.all("status");
    if let Some(bad) = statuses
        .iter()
        .find(|s| !["running", "success", "error"].contains(s))
    {
        return Err(ApiError::invalid_param(
            "status",
            &format!("unknown status `{bad}`"),
        ));
    }
    let sort = q.sort(SORT_FIELDS)?;
    let page = q.page()?;
    let now = ctx.now_ms;
    actions.retain(|a| statuses.is_empty() || statuses.contains(&status_word(a, now)));
    // A running action has no `finished` yet: it sorts after every
    // finished one.
    let finished = |a: &Action| (a.ends_ms > now, a.ends_ms);
    sort_by(&mut actions, &sort, |field, a, b| match field {
        "command" => a.command.cmp(b.command),
        "status" => status_word(a, now).cmp(status_word(b, now)),
        "started" => a.started_ms.cmp(&b.started_ms),
        "finished" => finished(a).cmp(&finished(b)),
        _ => a.id.cmp(&b.id),
    });
    let total = actions.len();
    let items = actions[page.range(total)]
        .iter()
        .map(|a| json::action(a, ctx.clock, now))
        .collect();
    Ok((200, json::page("actions", items, page, total)))
}

/// `GET /actions?id=..`: listing every action is gone from the API
/// (removed 30 January 2025), so at least one `id` is required.
pub fn list_by_ids(ctx: &mut Ctx<'_>, q: &Query) -> Answer {
    let ids: HashSet<u64> = q.ids("id")?.into_iter().collect();
    if ids.is_empty() {
        return Err(ApiError::invalid_param("id", "is required"));
    }
    let actions = ctx
        .state
        .actions()
        .iter()
        .filter(|a| ids.contains(&a.id))
        .collect();
    page_of(ctx, q, actions)
}

pub fn list_all(ctx: &mut Ctx<'_>, q: &Query) -> Answer {
    let ids: HashSet<u64> = q.ids("id")?.into_iter().collect();
    let actions = ctx
        .state
        .actions()
        .iter()
        .filter(|a| ids.is_empty() || ids.contains(&a.id))
        .collect();
    page_of(ctx, q, actions)
}

pub fn list_for_server(ctx: &mut Ctx<'_>, server: u64, q: &Query) -> Answer {
    ctx.state.server(server)?;
    let actions = ctx
        .state
        .actions()
        .iter()
        .filter(|a| a.server == server)
        .collect();
    page_of(ctx, q, actions)
}

pub fn get(ctx: &mut Ctx<'_>, id: u64) -> Answer {
    let action = ctx
        .state
        .action(id)
        .ok_or_else(|| ApiError::not_found("action"))?;
    Ok((
        200,
        json!({ "action": json::action(action, ctx.clock, ctx.now_ms) }),
    ))
}

pub fn get_for_server(ctx: &mut Ctx<'_>, server: u64, id: u64) -> Answer {
    match ctx.state.action(id) {
        Some(a) if a.server == server => get(ctx, id),
        _ => Err(ApiError::not_found("action")),
    }
}
