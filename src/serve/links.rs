//! One-time console links (`/c/TOKEN`) and the console sessions they open.
//!
//! A GET (or HEAD) of a link never uses it up: mail scanners and chat
//! link previews fetch links before the customer clicks. It answers a
//! small page that sends a POST to the same URL, at once by script, or
//! with its button where script is off. The POST consumes the link (one
//! conditional UPDATE: of two concurrent opens exactly one wins), and only
//! then asks Hetzner for a console, so the credentials in the page are
//! seconds old. If Hetzner cannot be reached the link is released again
//! and the customer may reload. The page carries a session token in its
//! body (never in a URL); with it the page fetches fresh credentials
//! (`POST /c/refresh`) when the connection drops or its credentials have
//! aged, without a second login. A suspended server's links answer 403
//! and stay as they are.
//!
//! In broker mode (`console_mode`, the default) the page gets no
//! credentials at all: instead of Hetzner's URL and password it gets the
//! path of a one-time websocket ticket to hcc itself (`/ws/TICKET`,
//! serve/broker.rs), and a refresh hands out a new ticket.

use serde_json::json;

use super::api::{json_body, managed_server};
use super::auth;
use super::pages;
use super::reply::{self, ApiError, Reply};
use super::{Ctx, Incoming};
use crate::assets;
use crate::store::{LinkState, OpenedLink, Refused, now};

/// The marker in `console.html` that the page's data replaces.
const DATA_MARKER: &str = "<!--hcc-console-data-->";
/// A page may ask for fresh credentials at most this often...
const REFRESH_EVERY_SECS: i64 = 3;
/// ...and at most this many times: each is a Hetzner request, taken from
/// the budget every customer's console shares.
const MAX_REFRESHES: i64 = 100;
/// Longer User-Agent headers are cut to this many characters in the
/// session's record.
const MAX_USER_AGENT: usize = 512;

/// `GET` or `HEAD /c/TOKEN`: the page that opens the link; the link stays
/// as it is, however often this is asked.
pub fn landing(ctx: &mut Ctx, token: &str) -> Reply {
    let page = (|| {
        check_link_request(token)?;
        match ctx.store.peek_console_link(&auth::hash(token), now())? {
            LinkState::Usable { .. } => Ok(landing_page()),
            LinkState::Gone => Err(gone()),
            LinkState::Suspended { .. } => Err(suspended()),
        }
    })();
    match page {
        Ok(page) => pages::secure_form(page, &ctx.settings.frame_ancestors),
        Err(err) => error_page(ctx, err),
    }
}

/// `POST /c/TOKEN`: uses the link up and answers the console page.
pub fn open(ctx: &mut Ctx, req: &Incoming, token: &str) -> Reply {
    match open_page(ctx, req, token) {
        Ok(reply) => reply,
        Err(err) => error_page(ctx, err),
    }
}

fn error_page(ctx: &Ctx, err: ApiError) -> Reply {
    pages::secure(
        for_customer(err).to_page(),
        "'self'",
        &ctx.settings.frame_ancestors,
    )
}

/// A well-formed token, and a binary that can show a console (checked
/// before the link is spent, so a binary without noVNC keeps it).
fn check_link_request(token: &str) -> Result<(), ApiError> {
    if !auth::is_token(token) {
        return Err(ApiError::not_found("This is not a console link."));
    }
    if !assets::novnc_embedded() {
        return Err(ApiError::new(503, "novnc_missing", assets::NOVNC_MISSING));
    }
    Ok(())
}

fn gone() -> ApiError {
    ApiError::new(
        410,
        "link_gone",
        "This console link was already used or has expired. Open a new console from your control panel.",
    )
}

fn suspended() -> ApiError {
    ApiError::new(
        403,
        "suspended",
        "The console of this server is suspended. Please contact your provider.",
    )
}

/// The page a GET answers: no secret, no token (the form posts to the
/// page's own URL); `open.js` sends the form at once.
fn landing_page() -> Reply {
    // The files below the build hash, which browsers keep (serve/pages.rs).
    let v = assets::build_hash();
    reply::html(
        200,
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"../v/{v}/style.css\">\
             <script type=\"module\" src=\"../v/{v}/open.js\"></script>\
             <title>Console</title></head>\n<body class=\"message\"><main><h1>Console</h1>\
             <form id=\"open\" method=\"post\"><p id=\"status\">This link opens the console once.</p>\
             <button type=\"submit\">Open the console</button></form></main></body></html>\n"
        ),
    )
}

/// What the customer's page says of a failure on hcc's side: the operator
/// reads the detail in the log; the customer learns that trying again later
/// may help (the link is kept for that).
fn for_customer(err: ApiError) -> ApiError {
    if err.status < 500 || err.code == "novnc_missing" {
        return err;
    }
    super::log(&format!("console: {} ({})", err.message, err.code));
    ApiError {
        message: "The console is not available right now. Please try again in a moment; this link stays valid until it expires.".into(),
        ..err
    }
}

fn open_page(ctx: &mut Ctx, req: &Incoming, token: &str) -> Result<Reply, ApiError> {
    check_link_request(token)?;
    let hash = auth::hash(token);
    let Some(link) = ctx.store.consume_console_link(&hash, now(), &req.remote)? else {
        return Err(match ctx.store.peek_console_link(&hash, now())? {
            LinkState::Suspended { .. } => suspended(),
            _ => gone(),
        });
    };
    console_page(ctx, req, &link).inspect_err(|err| {
        if err.status >= 500 {
            // Hetzner is busy or away: the customer may reload.
            if let Err(release) = ctx.store.release_console_link(link.id) {
                super::log(&format!("console: {release}"));
            }
        }
    })
}

/// The console page of an opened link: fresh credentials from Hetzner, a
/// session for later ones, the page with both in its body.
fn console_page(ctx: &mut Ctx, req: &Incoming, link: &OpenedLink) -> Result<Reply, ApiError> {
    let Some(template) = assets::get("/console.html").filter(|_| assets::novnc_embedded()) else {
        return Err(ApiError::new(503, "novnc_missing", assets::NOVNC_MISSING));
    };
    let id = same_server(ctx, &link.server, link.server_id)?;
    if ctx.settings.console_broker {
        return broker_page(ctx, req, link, template.body);
    }
    let fresh = ctx.request_console(&link.server, id)?;
    let (_, session) = add_session(ctx, req, link)?;
    let data = json!({
        "server": link.server,
        "wss_url": fresh.wss_url,
        "password": fresh.password,
        "issued_at": fresh.issued_at,
        // Relative, so that hcc may sit below a path of the proxy.
        "refresh": "refresh",
        "session": session,
    });
    let page = with_data(template.body, &data);
    let connect = format!("'self' {}", websocket_origin(&fresh.wss_url));
    Ok(pages::secure(
        reply::html(200, page),
        &connect,
        &ctx.settings.frame_ancestors,
    ))
}

/// The console page with its data.
fn with_data(template: &[u8], data: &serde_json::Value) -> String {
    String::from_utf8_lossy(template).replacen(
        DATA_MARKER,
        &format!(
            "<script type=\"application/json\" id=\"hcc-console\">{}</script>",
            script_safe(&data.to_string())
        ),
        1,
    )
}

/// A page session for an opened link (its token goes into the page): the
/// row's id and the token.
fn add_session(
    ctx: &mut Ctx,
    req: &Incoming,
    link: &OpenedLink,
) -> Result<(i64, String), ApiError> {
    let session = auth::random_token()?;
    let t = now();
    let id = ctx.store.add_console_session(
        &auth::hash(&session),
        link,
        &req.remote,
        t,
        t + ctx.settings.session_ttl,
    )?;
    if let Some(agent) = &req.user_agent {
        let agent: String = agent.chars().take(MAX_USER_AGENT).collect();
        ctx.store.set_session_user_agent(id, &agent)?;
    }
    Ok((id, session))
}

/// The console page in broker mode: no credentials, only the path of a
/// one-time websocket ticket to hcc itself (serve/broker.rs), which asks
/// Hetzner for the console when the page connects.
fn broker_page(
    ctx: &mut Ctx,
    req: &Incoming,
    link: &OpenedLink,
    template: &[u8],
) -> Result<Reply, ApiError> {
    let (id, session) = add_session(ctx, req, link)?;
    let ws = super::broker::ticket_for(ctx, id)?;
    let data = json!({
        "server": link.server,
        "ws": ws,
        "refresh": "refresh",
        "session": session,
    });
    Ok(pages::secure(
        reply::html(200, with_data(template, &data)),
        "'self'",
        &ctx.settings.frame_ancestors,
    ))
}

/// `POST /c/refresh` with `{"session": ...}`: fresh credentials for the
/// session's server.
pub fn refresh(ctx: &mut Ctx, req: &Incoming) -> Reply {
    match refresh_json(ctx, req) {
        Ok(reply) => reply,
        Err(err) => for_customer(err).to_json(),
    }
}

fn refresh_json(ctx: &mut Ctx, req: &Incoming) -> Result<Reply, ApiError> {
    let body = json_body(&req.body)?;
    let Some(session) = body.get("session").and_then(|s| s.as_str()) else {
        return Err(ApiError::bad_request(
            "bad_field",
            "the body must be {\"session\": \"...\"}",
        ));
    };
    let ended = || {
        ApiError::new(
            410,
            "session_expired",
            "This console session has ended; open a new console from your control panel.",
        )
    };
    if !auth::is_token(session) {
        return Err(ended());
    }
    // Before the claim, so that a suspension spends none of its refreshes.
    if ctx.store.session_suspended(&auth::hash(session))? {
        return Err(suspended());
    }
    let claimed = ctx.store.claim_refresh(
        &auth::hash(session),
        now(),
        REFRESH_EVERY_SECS,
        MAX_REFRESHES,
    )?;
    let session = match claimed {
        Ok(session) => session,
        Err(Refused::Ended) => return Err(ended()),
        Err(Refused::Exhausted) => {
            return Err(ApiError::new(
                410,
                "session_exhausted",
                "This console session has fetched fresh credentials too often; open a new console from your control panel.",
            ));
        }
        Err(Refused::TooSoon) => {
            return Err(ApiError::new(
                429,
                "too_many_requests",
                "fresh console credentials were handed out a moment ago",
            )
            .retry_after(REFRESH_EVERY_SECS as u64));
        }
    };
    let id = same_server(ctx, &session.server, session.server_id)?;
    if ctx.settings.console_broker {
        // A new ticket, no credentials: hcc fetches those on the upgrade.
        let ws = super::broker::ticket_for(ctx, session.id)?;
        return Ok(reply::json(
            200,
            &json!({ "server": session.server, "ws": ws }),
        ));
    }
    let fresh = ctx.request_console(&session.server, id)?;
    Ok(reply::json(
        200,
        &json!({
            "server": session.server, "wss_url": fresh.wss_url,
            "password": fresh.password, "issued_at": fresh.issued_at,
        }),
    ))
}

/// The server's id when it is still the managed server the link was made
/// for; a server deleted and made again under its name is not.
pub(super) fn same_server(ctx: &Ctx, name: &str, made_for: i64) -> Result<i64, ApiError> {
    let (_, id) = managed_server(ctx, name)?;
    if id == made_for {
        Ok(id)
    } else {
        Err(ApiError::new(
            410,
            "server_replaced",
            format!("The server `{name}` this console was opened for no longer exists."),
        ))
    }
}

/// JSON inside a `<script>` element: nothing in it may close the element
/// or open a comment.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// `scheme://host[:port]` of a websocket URL, for the page's CSP; `wss:`
/// when the URL is not one this can state safely.
fn websocket_origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "wss:".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let safe = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if matches!(scheme, "ws" | "wss") && safe {
        format!("{scheme}://{authority}")
    } else {
        "wss:".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_names_only_the_consoles_origin() {
        assert_eq!(
            websocket_origin("wss://web-console.hetzner.cloud/?server_id=1&token=x"),
            "wss://web-console.hetzner.cloud"
        );
        assert_eq!(
            websocket_origin("ws://127.0.0.1:5901"),
            "ws://127.0.0.1:5901"
        );
        assert_eq!(websocket_origin("wss://a b;script-src *"), "wss:");
        assert_eq!(websocket_origin("javascript:alert(1)"), "wss:");
        assert_eq!(websocket_origin("https://x"), "wss:");
    }

    #[test]
    fn page_data_cannot_close_its_script_element() {
        let safe = script_safe(r#"{"password":"</script><script>alert(1)//"}"#);
        assert!(!safe.contains('<') && !safe.contains('>'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["password"], "</script><script>alert(1)//");
    }
}
