//! The embedded web pages and files (`www/`, noVNC's core) and the headers
//! every page carries: a CSP that allows only what the page needs, no
//! referrer, no caching, framing only where configured.
//!
//! Files come only from the table built into the binary: a path is looked
//! up as a whole, so `..` and encoded forms find nothing, and the disk is
//! never read.

use crate::http::Body;

use super::Incoming;
use super::reply::{ApiError, Reply};
use crate::assets;

/// `GET` of anything outside `/api/v1` and `/c/`. `console_hosts` are
/// the websocket origins `l.html` may reach (empty: any).
pub fn file(req: &Incoming, frame_ancestors: &str, console_hosts: &str) -> Reply {
    let path = if req.path == "/" {
        "/index.html"
    } else {
        req.path.as_str()
    };
    if path.starts_with("/novnc/") && !assets::novnc_embedded() {
        let err = ApiError::new(503, "novnc_missing", assets::NOVNC_MISSING);
        return secure(err.to_page(), "'self'", frame_ancestors);
    }
    // The console page is only ever served with its data, through a link.
    let asset = assets::get(path).filter(|_| path != "/console.html");
    let Some(asset) = asset else {
        let err = ApiError::not_found("There is no page at this address.");
        return secure(err.to_page(), "'self'", frame_ancestors);
    };
    let reply = Reply {
        status: 200,
        content_type: asset.content_type,
        body: Body::Static(asset.body),
        headers: Vec::new(),
    };
    if asset.content_type.starts_with("text/html") {
        // The old `l.html?wss://HOST/...#PASSWORD` form connects wherever
        // its URL says, unless the setting `console_hosts` names where.
        let connect = match (path, console_hosts) {
            ("/l.html", "") => "'self' ws: wss:".to_string(),
            ("/l.html", hosts) => format!("'self' {hosts}"),
            _ => "'self'".to_string(),
        };
        secure(reply, &connect, frame_ancestors)
    } else {
        reply
            .with_header("Cache-Control", "no-cache")
            .with_header("X-Content-Type-Options", "nosniff")
    }
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
