//! The embedded web pages and files (`www/`, noVNC's core) and the headers
//! every page carries: a CSP that allows only what the page needs, no
//! referrer, no caching, framing only where configured.
//!
//! Files come only from the table built into the binary: a path is looked
//! up as a whole, so `..` and encoded forms find nothing, and the disk is
//! never read.
//!
//! Caching: the pages are never stored. The files they load are served
//! twice: below `/v/<build hash>/`, where a URL's content never changes
//! (`immutable`, kept a year), which is what the pages reference; and at
//! their plain path, revalidated on every use (`no-cache`). Both carry a
//! strong ETag and answer a matching `If-None-Match` with 304.

use crate::http::Body;

use super::reply::{ApiError, Reply};
use super::shared::Incoming;
use crate::assets;

/// The cache policy of a file below the build hash.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET` of anything outside `/api/v1` and `/c/`. `console_hosts` are
/// the websocket origins `l.html` may reach (empty: any).
pub fn file(req: &Incoming, frame_ancestors: &str, console_hosts: &[String]) -> Reply {
    let not_found = || {
        let err = ApiError::not_found("There is no page at this address.");
        secure(err.to_page(), "'self'", frame_ancestors)
    };
    let (path, versioned) = match req.path.strip_prefix("/v/") {
        // Another build's files are not here: an old page reloads to get
        // this build's references.
        Some(rest) => match rest.split_once('/') {
            Some((hash, _)) if hash == assets::build_hash() => (&rest[hash.len()..], true),
            _ => return not_found(),
        },
        None if req.path == "/" => ("/index.html", false),
        None => (req.path.as_str(), false),
    };
    if path.starts_with("/novnc/") && !assets::novnc_embedded() {
        let err = ApiError::new(503, "novnc_missing", assets::NOVNC_MISSING);
        return secure(err.to_page(), "'self'", frame_ancestors);
    }
    // The console page is only ever served with its data, through a link;
    // pages are never cached, so none lives below the build hash.
    let is_page = |a: &&assets::Asset| a.content_type.starts_with("text/html");
    let asset = assets::get(path)
        .filter(|_| path != "/console.html")
        .filter(|a| !(versioned && is_page(a)));
    let Some(asset) = asset else {
        return not_found();
    };
    let reply = Reply {
        status: 200,
        content_type: asset.content_type,
        body: Body::Static(asset.body),
        headers: Vec::new(),
    };
    if is_page(&asset) {
        // The old `l.html?wss://HOST/...#PASSWORD` form connects wherever
        // its URL says, unless the setting `console_hosts` names where.
        let connect = match (path, console_hosts) {
            ("/l.html", []) => "'self' ws: wss:".to_string(),
            ("/l.html", hosts) => format!("'self' {}", hosts.join(" ")),
            _ => "'self'".to_string(),
        };
        return secure(reply, &connect, frame_ancestors);
    }
    let reply = if matches(req.if_none_match.as_deref(), asset.etag) {
        Reply {
            status: 304,
            body: Body::Static(b""),
            ..reply
        }
    } else {
        reply
    };
    reply
        .with_header("ETag", asset.etag)
        .with_header(
            "Cache-Control",
            if versioned { IMMUTABLE } else { "no-cache" },
        )
        .with_header("X-Content-Type-Options", "nosniff")
}

/// Whether an `If-None-Match` value names `etag` (RFC 9110 13.1.2: `*`,
/// or a list compared weakly, so `W/"x"` matches `"x"`).
fn matches(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(value) = if_none_match else {
        return false;
    };
    value.trim() == "*"
        || value
            .split(',')
            .map(|tag| tag.trim())
            .any(|tag| tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Adds the page headers; `connect` is the CSP's `connect-src`.
pub fn secure(reply: Reply, connect: &str, frame_ancestors: &str) -> Reply {
    with_headers(reply, connect, "'none'", frame_ancestors)
}

/// The page headers for a page whose form posts to hcc itself (the page
/// that opens a one-time link).
pub fn secure_form(reply: Reply, frame_ancestors: &str) -> Reply {
    with_headers(reply, "'self'", "'self'", frame_ancestors)
}

fn with_headers(reply: Reply, connect: &str, form_action: &str, frame_ancestors: &str) -> Reply {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; frame-ancestors {frame_ancestors}; base-uri 'none'; form-action {form_action}"
    );
    let mut reply = reply
        .with_header("Content-Security-Policy", csp)
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("X-Content-Type-Options", "nosniff");
    if !reply.headers.iter().any(|(n, _)| *n == "Cache-Control") {
        reply = reply.with_header("Cache-Control", "no-store");
    }
    // X-Frame-Options for browsers without frame-ancestors; it cannot name
    // other origins, so it is left out when the setting allows some.
    match frame_ancestors {
        "'none'" => reply.with_header("X-Frame-Options", "DENY"),
        "'self'" => reply.with_header("X-Frame-Options", "SAMEORIGIN"),
        _ => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn if_none_match_forms() {
        let etag = "\"abc\"";
        assert!(matches(Some("\"abc\""), etag));
        assert!(matches(Some("*"), etag));
        assert!(matches(Some(" \"x\", \"abc\" "), etag));
        assert!(matches(Some("W/\"abc\""), etag));
        assert!(!matches(None, etag));
        assert!(!matches(Some(""), etag));
        assert!(!matches(Some("abc"), etag));
        assert!(!matches(Some("\"abcd\""), etag));
        assert!(!matches(Some("\"x\", *"), etag));
    }
}
