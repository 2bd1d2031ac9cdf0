//! Handlers for the catalogue: `/server_types`, `/images` (with the
//! project's snapshots and backups, and `DELETE /images/{id}` for those),
//! `/isos`, `/locations`, `/datacenters` and their `/{id}` forms. They
//! filter, sort and page the prebuilt JSON entries directly.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::api_error::ApiError;
use super::catalog::{Catalog, DATACENTERS, RECOMMENDED_DATACENTER};
use super::ctx::{Answer, Ctx};
use super::json;
use super::query::{Query, sort_by};
use super::selector::Selector;

/// Compares two entries on a field: numbers as numbers, else as strings
/// (RFC 3339 timestamps sort as text).
fn compare(field: &str, a: &Value, b: &Value) -> Ordering {
    let (a, b) = (&a[field], &b[field]);
    match (a.as_u64(), b.as_u64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.as_str().unwrap_or("").cmp(b.as_str().unwrap_or("")),
    }
}

fn listing(key: &str, mut entries: Vec<&Value>, q: &Query, fields: &[&str]) -> Answer {
    let sort = q.sort(fields)?;
    let page = q.page()?;
    if let Some(name) = q.get("name") {
        entries.retain(|e| e["name"] == name);
    }
    entries.sort_by(|a, b| compare("id", a, b));
    sort_by(&mut entries, &sort, |field, a, b| compare(field, a, b));
    let total = entries.len();
    let items = entries[page.range(total)]
        .iter()
        .map(|e| (*e).clone())
        .collect();
    Ok((200, json::page(key, items, page, total)))
}

pub fn server_types(catalog: &Catalog, q: &Query) -> Answer {
    listing(
        "server_types",
        catalog.server_types.iter().collect(),
        q,
        &["id", "name"],
    )
}

pub fn locations(catalog: &Catalog, q: &Query) -> Answer {
    listing(
        "locations",
        catalog.locations.iter().collect(),
        q,
        &["id", "name"],
    )
}

pub fn datacenters(catalog: &Catalog, q: &Query) -> Answer {
    let (status, mut body) = listing(
        "datacenters",
        catalog.datacenters.iter().collect(),
        q,
        &["id", "name"],
    )?;
    body["recommendation"] = json!(DATACENTERS[RECOMMENDED_DATACENTER].id);
    Ok((status, body))
}

/// `GET /images`: the system images and the project's own (snapshots
/// and backups).
pub fn images(ctx: &mut Ctx<'_>, q: &Query) -> Answer {
    let types = q.all("type");
    let statuses = q.all("status");
    let architecture = q.get("architecture");
    let include_deprecated = q.flag("include_deprecated", false)?;
    let selector = q
        .get("label_selector")
        .map(Selector::parse)
        .transpose()
        .map_err(|why| ApiError::invalid_param("label_selector", &why))?;
    let own: Vec<Value> = ctx
        .state
        .images()
        .map(|i| json::snapshot(i, ctx.now_ms))
        .collect();
    let entries = ctx
        .catalog
        .images
        .iter()
        .chain(own.iter())
        .filter(|i| types.is_empty() || types.iter().any(|t| i["type"] == *t))
        .filter(|i| statuses.is_empty() || statuses.iter().any(|s| i["status"] == *s))
        .filter(|i| architecture.is_none_or(|a| i["architecture"] == a))
        .filter(|i| include_deprecated || i["deprecated"].is_null())
        .filter(|i| {
            selector.as_ref().is_none_or(|sel| {
                let labels = serde_json::from_value(i["labels"].clone()).unwrap_or_default();
                sel.matches(&labels)
            })
        })
        .collect();
    listing("images", entries, q, &["id", "name", "created"])
}

/// `GET /images/{id}`: a system image or one of the project's.
pub fn image(ctx: &mut Ctx<'_>, id: u64) -> Answer {
    match ctx.state.image(id) {
        Some(own) => Ok((200, json!({ "image": json::snapshot(own, ctx.now_ms) }))),
        None => one(&ctx.catalog.images, "image", id),
    }
}

/// `DELETE /images/{id}`: the project's images only; 204.
pub fn delete_image(ctx: &mut Ctx<'_>, id: u64) -> Answer {
    if ctx.state.delete_image(id).is_some() {
        return Ok((204, Value::Null));
    }
    if ctx.catalog.images.iter().any(|i| i["id"] == id) {
        return Err(ApiError::forbidden("system images cannot be deleted"));
    }
    Err(ApiError::not_found("image"))
}

/// `GET /isos` with `name` and `architecture` filters.
pub fn isos(catalog: &Catalog, q: &Query) -> Answer {
    let architecture = q.get("architecture");
    if architecture.is_some_and(|a| a != "x86" && a != "arm") {
        return Err(ApiError::invalid_param(
            "architecture",
            "must be x86 or arm",
        ));
    }
    let wildcard = q.flag("include_architecture_wildcard", false)?;
    let entries = catalog
        .isos
        .iter()
        .filter(|i| {
            architecture
                .is_none_or(|a| i["architecture"] == a || (wildcard && i["architecture"].is_null()))
        })
        .collect();
    listing("isos", entries, q, &["id", "name"])
}

/// `GET /KIND/{id}`: `{"<key>": entry}`.
pub fn one(entries: &[Value], key: &str, id: u64) -> Answer {
    let entry = entries
        .iter()
        .find(|e| e["id"].as_u64() == Some(id))
        .ok_or_else(|| ApiError::not_found(&key.replace('_', " ")))?;
    let mut body = json!({});
    body[key] = entry.clone();
    Ok((200, body))
}
