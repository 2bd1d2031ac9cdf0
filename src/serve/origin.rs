//! Where a browser's console request comes from. POSTs under `/c/` (a
//! link's open, `/c/refresh`, `/c/status`, `/c/power`) and websocket
//! upgrades of `/ws/` are what a console page sends; another site's page
//! must not send them for its visitor. No secret rides in a cookie today,
//! so a foreign page gains nothing it did not hold already, but this is
//! the first layer every browser-facing service keeps.
//!
//! A browser names the page's origin in `Origin` (on websockets always;
//! on a POST, `null` when the page's referrer policy is `no-referrer`,
//! as hcc's own pages are) and says in `Sec-Fetch-Site` how it relates
//! to the target. A request passes when its `Origin` is hcc's own
//! (`public_url`'s, or the scheme and `Host` the request came with:
//! `X-Forwarded-Proto` from a trusted proxy, else `public_url`'s scheme)
//! or one of `allowed_origins` (hcc's own not when `Sec-Fetch-Site` says
//! `cross-site`); without an `Origin` (or with `null`) it passes unless
//! `Sec-Fetch-Site` says `cross-site` or `same-site`.
//! Clients that are no browser (curl, a PHP panel) send neither header
//! and keep working.

use std::net::IpAddr;

use super::reply::ApiError;
use super::shared::Settings;
use crate::config::web_origin;
use crate::http;
use crate::verb::shown;

/// Does this request need the check?
pub fn applies(method: &str, path: &str) -> bool {
    (path.starts_with("/c/") && !matches!(method, "GET" | "HEAD")) || path.starts_with("/ws/")
}

/// A console page's POST or websocket upgrade comes from hcc's own
/// pages or an allowed origin; other requests pass.
pub fn same_site(settings: &Settings, request: &http::Request) -> Result<(), ApiError> {
    if !applies(&request.method, &request.path) {
        return Ok(());
    }
    let seen = Seen::of(request, &settings.trusted_proxies);
    check(
        settings,
        &seen,
        &request.method,
        &super::redact::logged_path(&request.path),
    )
}

/// What the check reads of a request.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen<'a> {
    pub origin: Option<&'a str>,
    pub fetch_site: Option<&'a str>,
    pub host: Option<&'a str>,
    /// `X-Forwarded-Proto`, only when a trusted proxy sent the request.
    pub forwarded_proto: Option<&'a str>,
}

impl<'a> Seen<'a> {
    pub fn of(request: &'a http::Request, trusted: &[IpAddr]) -> Seen<'a> {
        let from_proxy = request
            .peer
            .is_some_and(|p| trusted.contains(&p.ip().to_canonical()));
        Seen {
            origin: request.header("origin"),
            fetch_site: request.header("sec-fetch-site"),
            host: request.header("host"),
            forwarded_proto: request.header("x-forwarded-proto").filter(|_| from_proxy),
        }
    }
}

/// `Ok` when the request may pass; else a 403 `cross_origin` (and a log
/// line naming the route and the origin).
pub fn check(
    settings: &Settings,
    seen: &Seen,
    method: &str,
    logged_path: &str,
) -> Result<(), ApiError> {
    let Err(why) = verdict(seen, &settings.public_url, &settings.config.allowed_origins) else {
        return Ok(());
    };
    super::shared::log(&format!(
        "refused {} {logged_path} from another site: {why}",
        shown(method)
    ));
    Err(ApiError::new(
        403,
        "cross_origin",
        format!(
            "This request comes from another site ({why}); hcc takes console requests only from its own pages and from allowed_origins."
        ),
    ))
}

/// The decision alone: `Err` says why, in words fit for a log line.
pub fn verdict(seen: &Seen, public_url: &str, allowed: &[String]) -> Result<(), String> {
    let site = seen.fetch_site.map(str::to_ascii_lowercase);
    let foreign_site = matches!(site.as_deref(), Some("cross-site" | "same-site"));
    let origin = match seen.origin.map(str::trim) {
        None | Some("null") => {
            return match (foreign_site, site) {
                (true, Some(site)) => Err(format!("Sec-Fetch-Site: {site}")),
                _ => Ok(()),
            };
        }
        Some(origin) => origin,
    };
    let named = || format!("Origin {}", shown(&super::redact::redacted(origin)));
    let Some(origin) = web_origin(origin) else {
        return Err(named());
    };
    // An allowed origin is another site by nature; hcc's own is not, and
    // a browser that says `cross-site` of it is believed.
    if allowed.contains(&origin) {
        return Ok(());
    }
    if own(seen, public_url).contains(&origin) {
        return match site.as_deref() {
            Some("cross-site") => Err("Sec-Fetch-Site: cross-site".into()),
            _ => Ok(()),
        };
    }
    Err(named())
}

/// hcc's own origins for this request: `public_url`'s, and the `Host`
/// it was sent to with the scheme a trusted proxy names (else
/// `public_url`'s).
fn own(seen: &Seen, public_url: &str) -> Vec<String> {
    let mut own: Vec<String> = web_origin(public_url).into_iter().collect();
    let scheme = match seen.forwarded_proto.map(str::trim) {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ if public_url.starts_with("https://") => "https",
        _ => "http",
    };
    if let Some(host) = seen.host
        && let Some(origin) = web_origin(&format!("{scheme}://{}", host.trim()))
    {
        own.push(origin);
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "http://127.0.0.1:8479";

    fn seen<'a>(origin: Option<&'a str>, site: Option<&'a str>) -> Seen<'a> {
        Seen {
            origin,
            fetch_site: site,
            host: Some("127.0.0.1:8479"),
            forwarded_proto: None,
        }
    }

    #[test]
    fn the_own_origin_and_allowed_ones_pass_others_do_not() {
        let allowed = vec!["https://billing.example.com".to_string()];
        let pass = |s: Seen| verdict(&s, PUBLIC, &allowed).is_ok();
        // No browser, or a same-origin POST under no-referrer.
        assert!(pass(seen(None, None)));
        assert!(pass(seen(Some("null"), Some("same-origin"))));
        assert!(pass(seen(Some("null"), None)));
        assert!(pass(seen(
            Some("http://127.0.0.1:8479"),
            Some("same-origin")
        )));
        assert!(pass(seen(
            Some("https://billing.example.com"),
            Some("cross-site")
        )));
        assert!(!pass(seen(Some("https://evil.example"), None)));
        assert!(!pass(seen(
            Some("https://evil.example"),
            Some("same-origin")
        )));
        assert!(!pass(seen(None, Some("cross-site"))));
        assert!(!pass(seen(
            Some("http://127.0.0.1:8479"),
            Some("cross-site")
        )));
        assert!(!pass(seen(Some("null"), Some("same-site"))));
        assert!(!pass(seen(Some("garbage"), None)));
        // The scheme counts: the page was not loaded from https.
        assert!(!pass(seen(Some("https://127.0.0.1:8479"), None)));
        let err = verdict(&seen(Some("https://evil.example"), None), PUBLIC, &allowed);
        assert_eq!(err, Err("Origin https://evil.example".into()));
    }

    #[test]
    fn behind_a_proxy_the_host_and_its_scheme_or_public_url_name_the_site() {
        let proxied = |origin, proto| Seen {
            origin: Some(origin),
            fetch_site: Some("same-origin"),
            host: Some("console.example.com"),
            forwarded_proto: proto,
        };
        let pass = |s: Seen, public: &str| verdict(&s, public, &[]).is_ok();
        let https = "https://console.example.com";
        assert!(pass(proxied(https, Some("https")), PUBLIC));
        assert!(!pass(proxied(https, None), PUBLIC));
        assert!(pass(proxied(https, None), "https://console.example.com/"));
        // public_url's origin passes whatever Host the proxy sent.
        let elsewhere = Seen {
            host: Some("127.0.0.1:8479"),
            ..proxied(https, None)
        };
        assert!(pass(elsewhere, "https://console.example.com"));
        assert!(!pass(proxied("https://evil.example", Some("https")), https));
    }

    #[test]
    fn only_console_posts_and_upgrades_are_checked() {
        assert!(applies("POST", "/c/refresh"));
        assert!(applies("POST", &format!("/c/{}", "ab".repeat(32))));
        assert!(applies("GET", "/ws/x"));
        assert!(!applies("GET", "/c/x"));
        assert!(!applies("HEAD", "/c/x"));
        assert!(!applies("POST", "/api/v1/servers/x/console-link"));
    }
}
