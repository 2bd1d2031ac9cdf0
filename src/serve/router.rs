//! The routing table: every route `hcc serve` answers, matched by
//! `matchit`, and what every request goes through once: its translation
//! into an [`Incoming`], the count of requests under way per client, the
//! same-site check, one log line (no query string, no link token, no key)
//! and the request metrics.
//!
//! Routes: `/api/v1/...` (api.rs, its own table of methods and scopes),
//! `/metrics` (metrics.rs), `/c/power` (power.rs), `/c/password`
//! (password.rs), `/c/refresh` and
//! `/c/status` and `/c/TOKEN` (links.rs: GET a page that opens the link
//! with a POST), `/ws/TICKET` (broker.rs: websocket upgrades); any other
//! path is an embedded file (pages.rs).

use std::sync::Arc;
use std::time::Instant;

use super::api;
use super::redact::{logged_method, logged_path};
use super::reply::{ApiError, Reply};
use super::shared::{Ctx, MAX_BODY, MAX_IN_FLIGHT, Settings, incoming, log, log_request};
use super::{broker, links, metrics, origin, pages, password, power};
use crate::http;

/// A POST-only handler of a console page.
type PagePost = fn(&mut Ctx, &super::shared::Incoming) -> Reply;

/// What a path leads to.
#[derive(Clone)]
enum Room {
    /// An API route: the routes of `api::ROUTES` at this path (one per
    /// method).
    Api(Vec<&'static api::Route>),
    /// Below the API's prefix, no route.
    NoApiRoute,
    Metrics,
    /// A console page's POST (`/c/power`, `/c/password`, `/c/refresh`,
    /// `/c/status`).
    PagePost(PagePost),
    /// `/c/TOKEN`: GET or HEAD its page, POST to open it.
    Link,
    /// `/ws/TICKET`: a websocket upgrade.
    Socket,
}

/// The table, built once by `run()` and shared by the request threads.
pub struct Router {
    table: matchit::Router<Room>,
}

impl Router {
    pub fn new() -> Router {
        let mut table = matchit::Router::new();
        let mut add = |path: &str, room: Room| {
            // The paths below are fixed: a conflict is a programming error
            // the tests catch at once.
            table
                .insert(path, room)
                .unwrap_or_else(|e| panic!("route {path}: {e}"));
        };
        let mut api_paths: Vec<&str> = api::ROUTES.iter().map(|r| r.path).collect();
        api_paths.sort_unstable();
        api_paths.dedup();
        for path in api_paths {
            let routes = api::ROUTES.iter().filter(|r| r.path == path).collect();
            add(&format!("{}{path}", api::PREFIX), Room::Api(routes));
        }
        for path in [api::PREFIX, "/api/v1/", "/api/v1/{*rest}"] {
            add(path, Room::NoApiRoute);
        }
        add(metrics::PATH, Room::Metrics);
        add("/c/power", Room::PagePost(power::handle));
        add("/c/password", Room::PagePost(password::handle));
        add("/c/refresh", Room::PagePost(links::refresh));
        add("/c/status", Room::PagePost(links::status));
        add("/c/", Room::Link);
        add("/c/{*token}", Room::Link);
        add("/ws/", Room::Socket);
        add("/ws/{*ticket}", Room::Socket);
        Router { table }
    }

    /// Answers one request with the settings in effect when it arrived.
    pub fn serve(&self, settings: Arc<Settings>, request: &http::Request) -> http::Reply {
        let started = Instant::now();
        let (incoming, client) = incoming(request, &settings.trusted_proxies);
        let found = self.table.at(&request.path).ok();
        let (status, reply) = match found {
            // Upgrades are counted by max_console_sessions, not here.
            Some(m) if matches!(m.value, Room::Socket) => {
                match broker::upgrade(&mut Ctx::new(settings), request, &incoming.remote) {
                    Ok(reply) => (101, reply),
                    Err(err) => (err.status, http::Reply::Answer(err.to_json())),
                }
            }
            _ => {
                let ticket = client.map(|ip| settings.in_flight.enter(ip, MAX_IN_FLIGHT));
                let reply = match ticket {
                    Some(None) => ApiError::new(
                        429,
                        "too_many_requests",
                        format!("more than {MAX_IN_FLIGHT} requests under way from this address"),
                    )
                    .retry_after(1)
                    .to_json(),
                    _ => match origin::same_site(&settings, request) {
                        Ok(()) => {
                            let params = found
                                .as_ref()
                                .map(|m| m.params.iter().map(|(_, v)| v).collect())
                                .unwrap_or_default();
                            let room = found.map(|m| m.value);
                            route(&mut Ctx::new(settings), &incoming, room, params)
                        }
                        Err(err) => err.to_json(),
                    },
                };
                drop(ticket);
                (reply.status, http::Reply::Answer(reply))
            }
        };
        // The request log: one line per request.
        log_request(
            &incoming.remote,
            &logged_method(&incoming.method),
            &logged_path(&incoming.path),
            status,
            started.elapsed().as_secs_f64() * 1000.0,
        );
        crate::metrics::http_request(status);
        reply
    }
}

fn route(
    ctx: &mut Ctx,
    req: &super::shared::Incoming,
    room: Option<&Room>,
    params: Vec<&str>,
) -> Reply {
    let method = req.method.as_str();
    match room {
        Some(Room::Api(routes)) => api::handle(ctx, req, routes, params),
        Some(Room::NoApiRoute) => api::handle(ctx, req, &[], params),
        Some(Room::Metrics) => metrics::handle(ctx, req),
        Some(Room::PagePost(handler)) => match method {
            "POST" => handler(ctx, req),
            _ => method_not_allowed("POST"),
        },
        // Only a POST opens a link: mail scanners and link previews GET
        // or HEAD it first.
        Some(Room::Link) => {
            let token = req.path.strip_prefix("/c/").unwrap_or_default();
            match method {
                "GET" | "HEAD" => links::landing(ctx, token),
                "POST" => links::open(ctx, req, token),
                _ => method_not_allowed("GET, HEAD, POST"),
            }
        }
        // Taken by `Router::serve` before a route is looked for.
        Some(Room::Socket) => ApiError::new(500, "internal", "misrouted upgrade").to_json(),
        None => match method {
            "GET" | "HEAD" => pages::file(
                req,
                &ctx.settings.config.frame_ancestors,
                &ctx.settings.config.console_hosts,
            ),
            _ => method_not_allowed("GET, HEAD"),
        },
    }
}

fn method_not_allowed(allow: &'static str) -> Reply {
    ApiError::new(405, "method_not_allowed", format!("use {allow}"))
        .to_json()
        .with_header("Allow", allow)
}

/// A request the server could not read (too large, malformed).
pub fn request_error(status: u16, why: &str) -> http::Response {
    let code = match status {
        413 => "too_large",
        431 => "head_too_large",
        _ => "bad_request",
    };
    let why = if status == 413 {
        format!("request bodies are limited to {} KiB", MAX_BODY / 1024)
    } else {
        why.to_string()
    };
    log(&format!("- - - {status} (unreadable request: {why})"));
    crate::metrics::http_request(status);
    ApiError::new(status, code, why).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(router: &Router, path: &str) -> Option<(&'static str, Vec<String>)> {
        let m = router.table.at(path).ok()?;
        let name = match m.value {
            Room::Api(_) => "api",
            Room::NoApiRoute => "no_api_route",
            Room::Metrics => "metrics",
            Room::PagePost(_) => "page_post",
            Room::Link => "link",
            Room::Socket => "socket",
        };
        Some((name, m.params.iter().map(|(_, v)| v.to_string()).collect()))
    }

    #[test]
    fn every_path_finds_its_room() {
        let router = Router::new();
        let api = |p: &[&str]| Some(("api", p.iter().map(|s| s.to_string()).collect()));
        let none = |name| Some((name, vec![]));
        assert_eq!(room(&router, "/api/v1/servers/web1"), api(&["web1"]));
        assert_eq!(
            room(&router, "/api/v1/servers/a/actions/start"),
            api(&["a", "start"])
        );
        assert_eq!(room(&router, "/api/v1/status"), api(&[]));
        for path in [
            "/api/v1",
            "/api/v1/",
            "/api/v1/statuses",
            "/api/v1/servers/",
            "/api/v1/servers/a/b",
            "/api/v1/servers/a/",
        ] {
            assert_eq!(
                room(&router, path).map(|r| r.0),
                Some("no_api_route"),
                "{path}"
            );
        }
        assert_eq!(room(&router, "/metrics"), none("metrics"));
        assert_eq!(room(&router, "/c/refresh"), none("page_post"));
        assert_eq!(room(&router, "/c/").map(|r| r.0), Some("link"));
        assert_eq!(room(&router, "/c/abc/d").map(|r| r.0), Some("link"));
        assert_eq!(room(&router, "/ws/").map(|r| r.0), Some("socket"));
        assert_eq!(room(&router, "/ws/x/y").map(|r| r.0), Some("socket"));
        for path in [
            "/",
            "/index.html",
            "/v/abc/app.js",
            "/ws",
            "/c",
            "/metrics/x",
        ] {
            assert_eq!(room(&router, path), None, "{path}");
        }
    }
}
