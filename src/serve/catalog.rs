//! `GET /api/v1/catalog`: the server types, system images and locations a
//! new server may have, for the dashboard's create form, and the ISOs and
//! hcc's snapshots, for a server's page (rebuild, attach an ISO). They come from
//! Hetzner (three listings, each one request or a few pages), so the
//! answer is kept in memory for [`FRESH_FOR`] and shared by every request
//! thread: opening the page does not spend the rate budget. A failure is
//! kept for [`FAILED_FOR`], so that a page reloaded in a loop against an
//! unreachable Hetzner does not try it on every load.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::reply::{self, ApiError, Reply};
use super::request::Call;
use super::shared::Ctx;
use crate::error::Error;
use crate::hetzner::wire;

/// How long a fetched catalog is served before it is fetched again.
pub const FRESH_FOR: Duration = Duration::from_secs(300);
/// How long a failed fetch is answered from memory.
const FAILED_FOR: Duration = Duration::from_secs(10);

struct Cached {
    at: Instant,
    /// When it was fetched, in Unix seconds, for the answer.
    fetched_at: i64,
    outcome: Result<Arc<Value>, ApiError>,
}

/// The catalog in memory: one per process (it does not depend on the
/// request), kept by every re-read of the settings.
#[derive(Default)]
pub struct Cache(Mutex<Option<Cached>>);

/// `GET /catalog`: `server_types`, `images`, `locations`, when they were
/// fetched, and the defaults and name prefix a new server gets.
pub fn get(ctx: &mut Ctx, _: &Call) -> Result<Reply, ApiError> {
    let (catalog, fetched_at) = cached(ctx)?;
    let mut body = (*catalog).clone();
    body["fetched_at"] = json!(fetched_at);
    body["defaults"] = json!({
        "server_type": ctx.settings.config.server_type,
        "image": ctx.settings.config.image,
        "location": ctx.settings.config.location,
    });
    body["prefix"] = json!(ctx.settings.config.prefix);
    Ok(reply::json(200, &body).with_header("Cache-Control", "no-store".to_string()))
}

/// The catalog from memory, or fetched now. The lock is held while
/// fetching: requests that come meanwhile wait for that answer instead of
/// asking Hetzner too.
fn cached(ctx: &mut Ctx) -> Result<(Arc<Value>, i64), ApiError> {
    let cache = ctx.settings.catalog.clone();
    let mut slot = cache.0.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = slot.as_ref() {
        let keep = if c.outcome.is_ok() {
            FRESH_FOR
        } else {
            FAILED_FOR
        };
        if c.at.elapsed() < keep {
            return c.outcome.clone().map(|v| (v, c.fetched_at));
        }
    }
    let outcome = fetch(ctx).map(Arc::new).map_err(|mut err| {
        err.message = format!("cannot load the catalog from Hetzner: {}", err.message);
        err
    });
    let cached = slot.insert(Cached {
        at: Instant::now(),
        fetched_at: crate::store::now(),
        outcome,
    });
    cached.outcome.clone().map(|v| (v, cached.fetched_at))
}

fn fetch(ctx: &mut Ctx) -> Result<Value, ApiError> {
    let client = &ctx.hetzner()?.client;
    let types = client.server_types().map_err(Error::Hetzner)?;
    let images = client.images().map_err(Error::Hetzner)?;
    let locations = client.locations().map_err(Error::Hetzner)?;
    let isos = client.isos().map_err(Error::Hetzner)?;
    // The snapshots hcc made (they carry the managed label), each with
    // the server it came from, so that a server's page offers its own.
    let label = ctx.settings.config.label.clone();
    let snapshots = ctx
        .hetzner()?
        .client
        .snapshots(Some(&label))
        .map_err(Error::Hetzner)?;
    Ok(json!({
        "isos": isos.iter().map(iso).collect::<Vec<_>>(),
        "snapshots": snapshots.iter().map(snapshot).collect::<Vec<_>>(),
        "server_types": types.iter().map(server_type).collect::<Vec<_>>(),
        // An image without a name (a snapshot, a backup) cannot be named
        // in a create; system images all have one.
        "images": images.iter().filter_map(image).collect::<Vec<_>>(),
        "locations": locations.iter().map(location).collect::<Vec<_>>(),
    }))
}

fn server_type(t: &wire::ServerType) -> Value {
    let prices: Vec<Value> = t
        .prices
        .iter()
        .map(|p| json!({"location": p.location, "monthly_gross": p.price_monthly.gross}))
        .collect();
    json!({
        "name": t.name, "description": t.description, "cores": t.cores,
        "memory_gb": t.memory, "disk_gb": t.disk, "cpu_type": t.cpu_type,
        "architecture": t.architecture, "deprecated": t.deprecated.unwrap_or(false),
        "prices": prices,
    })
}

fn image(i: &wire::Image) -> Option<Value> {
    let name = i.name.as_ref()?;
    Some(json!({
        "name": name, "description": i.description, "os_flavor": i.os_flavor,
        "os_version": i.os_version, "architecture": i.architecture,
    }))
}

fn iso(i: &wire::Iso) -> Value {
    json!({
        "id": i.id, "name": i.name, "description": i.description,
        "architecture": i.architecture,
    })
}

fn snapshot(i: &wire::Image) -> Value {
    json!({
        "id": i.id, "description": i.description, "created": i.created,
        "created_from": i.created_from.as_ref().and_then(|c| c.get("name")),
        "image_size_gb": i.image_size,
    })
}

fn location(l: &wire::Location) -> Value {
    json!({
        "name": l.name, "description": l.description, "city": l.city,
        "country": l.country, "network_zone": l.network_zone,
    })
}
