//! The routing table of `/v1`: (method, path segments) to a [`Route`],
//! with the label `/_sim/stats` counts it under, and the dispatch of a
//! route to its handler.

use super::api_error::ApiError;
use super::ctx::{Answer, Ctx};
use super::query::Query;
use super::state::Verb;
use super::{actions, catalog_routes, metrics, servers};
use crate::http::Request;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ListServers,
    CreateServer,
    GetServer(u64),
    UpdateServer(u64),
    DeleteServer(u64),
    ServerAction(u64, Verb),
    ListServerActions(u64),
    GetServerAction(u64, u64),
    ListAllServerActions,
    GetAnyServerAction(u64),
    ListActions,
    GetAction(u64),
    ListServerTypes,
    GetServerType(u64),
    ServerMetrics(u64),
    ListImages,
    GetImage(u64),
    DeleteImage(u64),
    ListIsos,
    GetIso(u64),
    ListLocations,
    GetLocation(u64),
    ListDatacenters,
    GetDatacenter(u64),
}

/// The route and its stats label; `Err` carries the label `unknown`.
pub fn resolve(method: &str, segments: &[&str]) -> Result<(&'static str, Route), ApiError> {
    use Route::*;
    let id = |s: &str| s.parse::<u64>().ok();
    let found = match (method, segments) {
        ("GET", ["servers"]) => Some(("GET /servers", ListServers)),
        ("POST", ["servers"]) => Some(("POST /servers", CreateServer)),
        ("GET", ["servers", "actions"]) => Some(("GET /servers/actions", ListAllServerActions)),
        ("GET", ["servers", "actions", a]) => {
            id(a).map(|a| ("GET /servers/actions/{id}", GetAnyServerAction(a)))
        }
        ("GET", ["servers", s]) => id(s).map(|s| ("GET /servers/{id}", GetServer(s))),
        ("PUT", ["servers", s]) => id(s).map(|s| ("PUT /servers/{id}", UpdateServer(s))),
        ("DELETE", ["servers", s]) => id(s).map(|s| ("DELETE /servers/{id}", DeleteServer(s))),
        ("GET", ["servers", s, "metrics"]) => {
            id(s).map(|s| ("GET /servers/{id}/metrics", ServerMetrics(s)))
        }
        ("GET", ["servers", s, "actions"]) => {
            id(s).map(|s| ("GET /servers/{id}/actions", ListServerActions(s)))
        }
        ("GET", ["servers", s, "actions", a]) => id(s)
            .zip(id(a))
            .map(|(s, a)| ("GET /servers/{id}/actions/{id}", GetServerAction(s, a))),
        ("POST", ["servers", s, "actions", verb]) => id(s)
            .zip(Verb::parse(verb))
            .map(|(s, v)| (verb_label(v), ServerAction(s, v))),
        ("GET", ["actions"]) => Some(("GET /actions", ListActions)),
        ("GET", ["actions", a]) => id(a).map(|a| ("GET /actions/{id}", GetAction(a))),
        ("GET", ["server_types"]) => Some(("GET /server_types", ListServerTypes)),
        ("GET", ["server_types", t]) => id(t).map(|t| ("GET /server_types/{id}", GetServerType(t))),
        ("GET", ["images"]) => Some(("GET /images", ListImages)),
        ("GET", ["images", i]) => id(i).map(|i| ("GET /images/{id}", GetImage(i))),
        ("DELETE", ["images", i]) => id(i).map(|i| ("DELETE /images/{id}", DeleteImage(i))),
        ("GET", ["isos"]) => Some(("GET /isos", ListIsos)),
        ("GET", ["isos", i]) => id(i).map(|i| ("GET /isos/{id}", GetIso(i))),
        ("GET", ["locations"]) => Some(("GET /locations", ListLocations)),
        ("GET", ["locations", l]) => id(l).map(|l| ("GET /locations/{id}", GetLocation(l))),
        ("GET", ["datacenters"]) => Some(("GET /datacenters", ListDatacenters)),
        ("GET", ["datacenters", d]) => id(d).map(|d| ("GET /datacenters/{id}", GetDatacenter(d))),
        _ => None,
    };
    found.ok_or_else(|| ApiError::not_found("route"))
}

fn verb_label(verb: Verb) -> &'static str {
    match verb {
        Verb::PowerOn => "POST /servers/{id}/actions/poweron",
        Verb::PowerOff => "POST /servers/{id}/actions/poweroff",
        Verb::Shutdown => "POST /servers/{id}/actions/shutdown",
        Verb::Reboot => "POST /servers/{id}/actions/reboot",
        Verb::Reset => "POST /servers/{id}/actions/reset",
        Verb::RequestConsole => "POST /servers/{id}/actions/request_console",
        Verb::Rebuild => "POST /servers/{id}/actions/rebuild",
        Verb::ResetPassword => "POST /servers/{id}/actions/reset_password",
        Verb::EnableRescue => "POST /servers/{id}/actions/enable_rescue",
        Verb::DisableRescue => "POST /servers/{id}/actions/disable_rescue",
        Verb::ChangeType => "POST /servers/{id}/actions/change_type",
        Verb::ChangeDnsPtr => "POST /servers/{id}/actions/change_dns_ptr",
        Verb::AttachIso => "POST /servers/{id}/actions/attach_iso",
        Verb::DetachIso => "POST /servers/{id}/actions/detach_iso",
        Verb::CreateImage => "POST /servers/{id}/actions/create_image",
        Verb::EnableBackup => "POST /servers/{id}/actions/enable_backup",
        Verb::DisableBackup => "POST /servers/{id}/actions/disable_backup",
        Verb::ChangeProtection => "POST /servers/{id}/actions/change_protection",
    }
}

pub fn dispatch(route: Route, ctx: &mut Ctx<'_>, request: &Request) -> Answer {
    let query = Query::parse(&request.query);
    let q = &query;
    match route {
        Route::ListServers => servers::list(ctx, q),
        Route::CreateServer => servers::create(ctx, &request.body),
        Route::GetServer(id) => servers::get(ctx, id),
        Route::UpdateServer(id) => servers::update(ctx, id, &request.body),
        Route::DeleteServer(id) => servers::delete(ctx, id),
        Route::ServerAction(id, verb) => servers::act(ctx, id, verb, &request.body),
        Route::ServerMetrics(id) => metrics::get(ctx, id, q),
        Route::ListServerActions(id) => actions::list_for_server(ctx, id, q),
        Route::GetServerAction(server, id) => actions::get_for_server(ctx, server, id),
        Route::ListAllServerActions => actions::list_all(ctx, q),
        Route::GetAnyServerAction(id) | Route::GetAction(id) => actions::get(ctx, id),
        Route::ListActions => actions::list_by_ids(ctx, q),
        Route::ListServerTypes => catalog_routes::server_types(ctx.catalog, q),
        Route::GetServerType(id) => {
            catalog_routes::one(&ctx.catalog.server_types, "server_type", id)
        }
        Route::ListImages => catalog_routes::images(ctx, q),
        Route::GetImage(id) => catalog_routes::image(ctx, id),
        Route::DeleteImage(id) => catalog_routes::delete_image(ctx, id),
        Route::ListIsos => catalog_routes::isos(ctx.catalog, q),
        Route::GetIso(id) => catalog_routes::one(&ctx.catalog.isos, "iso", id),
        Route::ListLocations => catalog_routes::locations(ctx.catalog, q),
        Route::GetLocation(id) => catalog_routes::one(&ctx.catalog.locations, "location", id),
        Route::ListDatacenters => catalog_routes::datacenters(ctx.catalog, q),
        Route::GetDatacenter(id) => catalog_routes::one(&ctx.catalog.datacenters, "datacenter", id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_routes_clients_use() {
        assert_eq!(resolve("GET", &["servers"]).unwrap().1, Route::ListServers);
        assert_eq!(
            resolve("GET", &["servers", "actions"]).unwrap().1,
            Route::ListAllServerActions
        );
        assert_eq!(
            resolve("GET", &["servers", "42"]).unwrap().1,
            Route::GetServer(42)
        );
        assert_eq!(
            resolve("POST", &["servers", "42", "actions", "poweroff"]).unwrap(),
            (
                "POST /servers/{id}/actions/poweroff",
                Route::ServerAction(42, Verb::PowerOff)
            )
        );
        assert_eq!(
            resolve("POST", &["servers", "42", "actions", "change_type"]).unwrap(),
            (
                "POST /servers/{id}/actions/change_type",
                Route::ServerAction(42, Verb::ChangeType)
            )
        );
        assert_eq!(
            resolve("GET", &["servers", "42", "metrics"]).unwrap(),
            ("GET /servers/{id}/metrics", Route::ServerMetrics(42))
        );
        assert_eq!(resolve("GET", &["isos", "7"]).unwrap().1, Route::GetIso(7));
        assert!(resolve("POST", &["servers", "42", "actions", "explode"]).is_err());
        assert!(resolve("GET", &["servers", "abc"]).is_err());
        assert!(resolve("PATCH", &["servers", "1"]).is_err());
        assert!(resolve("GET", &[]).is_err());
        assert_eq!(resolve("GET", &["nope"]).unwrap_err().code, "not_found");
    }
}
