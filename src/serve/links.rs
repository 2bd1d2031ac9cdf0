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
//! aged, without a second login, and asks why a connection failed
//! (`POST /c/status`). A suspended server's links answer 403 and stay as
//! they are.
//!
//! A reload of the console page is a GET of the opened link (the page
//! replaces its history entry, so the browser does not post again): it
//! answers 410 with a console page that holds no secret. The tab that
//! opened the link keeps the session token in its own `sessionStorage`
//! and resumes the session with it; any other browser or tab learns that
//! the link was already opened. Unopened links past their lifetime say
//! they expired.
//!
//! In broker mode (`console_mode`, the default) the page gets no
//! credentials at all: instead of Hetzner's URL and password it gets the
//! path of a one-time websocket ticket to hcc itself (`/ws/TICKET`,
//! serve/broker.rs), and a refresh hands out a new ticket.

use serde_json::json;

use super::gate::{connect_to, console_host, same_server};
use super::pages;
use super::reply::{self, ApiError, Reply};
use super::request::json_body;
use super::shared::{Ctx, Incoming};
use crate::assets;
use crate::secret;
use crate::store::{EndCode, LinkState, OpenedLink, PageStatus, Refused, SessionId, now};

/// The marker in `console.html` that the page's data replaces.
const DATA_MARKER: &str = "<!--hcc-console-data-->";
/// A page may ask for fresh credentials at most this often (the page
/// learns this number and never asks sooner; beyond a reload or two, hcc
/// rations them to one per `console_refresh_every`: serve/ration.rs)...
const REFRESH_EVERY_SECS: i64 = 3;
/// ...and at most [`MIN_REFRESHES`] plus one per [`RETRY_CAP_SECS`] of the
/// session's lifetime: each is a Hetzner request, taken from the budget
/// every customer's console shares, yet a page whose server is off or
/// rebooting retries at most every [`RETRY_CAP_SECS`] for as long as its
/// session lives, and must not run out.
const MIN_REFRESHES: i64 = 100;
/// The longest wait of the page between reconnect attempts (console.js).
const RETRY_CAP_SECS: i64 = 30;
/// Longer User-Agent headers are cut to this many characters in the
/// session's record.
const MAX_USER_AGENT: usize = 512;

/// How many fresh credentials a session of `ttl` seconds may fetch.
fn refresh_limit(ttl: i64) -> i64 {
    MIN_REFRESHES + ttl / RETRY_CAP_SECS
}

/// `GET` or `HEAD /c/TOKEN`: the page that opens the link; the link stays
/// as it is, however often this is asked. An opened link's page resumes
/// the session of the tab that opened it (a reload), or says that it was
/// opened.
pub fn landing(ctx: &mut Ctx, token: &str) -> Reply {
    let page = (|| {
        check_link_request(token)?;
        match ctx
            .store()?
            .peek_console_link(&secret::hash(token), now())?
        {
            LinkState::Usable { .. } => Ok(None),
            LinkState::Opened { server } => Ok(Some(opened_page(ctx, &server)?)),
            LinkState::Expired => Err(expired()),
            LinkState::Unknown => Err(unknown()),
            LinkState::Suspended { .. } => Err(suspended()),
        }
    })();
    match page {
        Ok(None) => pages::secure_form(landing_page(), &ctx.settings.config.frame_ancestors),
        Ok(Some(page)) => page,
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

/// The page of an opened link (410): the console page without a secret.
/// Its script resumes the session when this tab holds its token
/// (`sessionStorage`, set when the link was opened here), and otherwise
/// says that the link was already opened.
fn opened_page(ctx: &mut Ctx, server: &str) -> Result<Reply, ApiError> {
    let template = template()?;
    // A resumed direct session connects to Hetzner's console host, the
    // one its credentials were last handed out at.
    let connect = if ctx.settings.console_broker() {
        "'self'".to_string()
    } else {
        match ctx.store()?.console_url(server)? {
            Some(url) => connect_to(&url),
            None => "'self'".to_string(),
        }
    };
    let data = json!({ "opened": true });
    Ok(page(ctx, 410, template, server, data, &connect))
}

/// `console.html`, which only a binary with noVNC serves.
fn template() -> Result<&'static [u8], ApiError> {
    match assets::get("/console.html").filter(|_| assets::novnc_embedded()) {
        Some(template) => Ok(template.body),
        None => Err(ApiError::new(503, "novnc_missing", assets::NOVNC_MISSING)),
    }
}

/// A console page: `template` with [`page_data`], under a CSP that lets
/// it connect to `connect` (`connect-src`).
fn page(
    ctx: &Ctx,
    status: u16,
    template: &[u8],
    server: &str,
    kind: serde_json::Value,
    connect: &str,
) -> Reply {
    pages::secure(
        reply::html(status, with_data(template, &page_data(server, kind))),
        connect,
        &ctx.settings.config.frame_ancestors,
    )
}

fn error_page(ctx: &Ctx, err: ApiError) -> Reply {
    pages::secure(
        for_customer(err).to_page(),
        "'self'",
        &ctx.settings.config.frame_ancestors,
    )
}

/// A well-formed token, and a binary that can show a console (checked
/// before the link is spent, so a binary without noVNC keeps it).
fn check_link_request(token: &str) -> Result<(), ApiError> {
    if !secret::is_token(token) {
        return Err(ApiError::not_found("This is not a console link."));
    }
    if !assets::novnc_embedded() {
        return Err(ApiError::new(503, "novnc_missing", assets::NOVNC_MISSING));
    }
    Ok(())
}

fn expired() -> ApiError {
    ApiError::new(
        410,
        "link_expired",
        "This console link has expired before it was opened. Open a new console from your control panel.",
    )
}

fn unknown() -> ApiError {
    ApiError::new(
        410,
        "link_unknown",
        "This console link is not valid (mistyped, or it ended long ago). Open a new console from your control panel.",
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
    explained(
        err,
        " Please try again in a moment; this link stays valid until it expires.",
    )
}

/// The same for a console page's own requests (refresh, status): the page
/// tries again by itself, and says when.
fn for_page(err: ApiError) -> ApiError {
    explained(err, "")
}

fn explained(err: ApiError, then: &str) -> ApiError {
    if err.status < 500 || matches!(err.code, "novnc_missing" | "console_host_not_allowed") {
        return err;
    }
    super::shared::log(&format!("console: {} ({})", err.message, err.code));
    let cause = if is_hetzner_trouble(err.code) {
        "hcc cannot reach Hetzner (the cloud's API) right now, so it cannot open the console."
    } else {
        "The console is not available right now."
    };
    ApiError {
        message: format!("{cause}{then}"),
        ..err
    }
}

/// Error codes of a Hetzner API that did not answer or refused hcc.
fn is_hetzner_trouble(code: &str) -> bool {
    matches!(
        code,
        "hetzner_unavailable" | "hetzner_error" | "rate_limited" | "not_configured"
    )
}

fn open_page(ctx: &mut Ctx, req: &Incoming, token: &str) -> Result<Reply, ApiError> {
    check_link_request(token)?;
    let hash = secret::hash(token);
    let Some(link) = ctx
        .store()?
        .consume_console_link(&hash, now(), &req.remote)?
    else {
        return match ctx.store()?.peek_console_link(&hash, now())? {
            LinkState::Suspended { .. } => Err(suspended()),
            // Another tab won the race, or the form was sent again.
            LinkState::Opened { server } => opened_page(ctx, &server),
            LinkState::Expired => Err(expired()),
            LinkState::Unknown | LinkState::Usable { .. } => Err(unknown()),
        };
    };
    console_page(ctx, req, &link).inspect_err(|err| {
        if err.status >= 500 || err.code == "rationed" {
            // Hetzner is busy or away, or hcc holds its requests back: the
            // customer may reload.
            let released = match ctx.store() {
                Ok(store) => store
                    .release_console_link(link.id)
                    .map_err(|e| e.to_string()),
                Err(err) => Err(err.message.clone()),
            };
            if let Err(release) = released {
                super::shared::log(&format!("console: {release}"));
            }
        }
    })
}

/// The console page of an opened link and a session for the page's later
/// requests. Direct (`console_mode`), the page gets fresh credentials from
/// Hetzner; in broker mode no credentials at all, only the path of a
/// one-time websocket ticket to hcc itself (serve/broker.rs), which asks
/// Hetzner for the console when the page connects.
fn console_page(ctx: &mut Ctx, req: &Incoming, link: &OpenedLink) -> Result<Reply, ApiError> {
    let template = template()?;
    let id = same_server(ctx, &link.server, link.server_id)?;
    let (data, connect) = if ctx.settings.console_broker() {
        let (id, session) = add_session(ctx, req, link)?;
        let ws = super::broker::ticket_for(ctx, id)?;
        (
            json!({ "ws": ws, "session": session }),
            "'self'".to_string(),
        )
    } else {
        let fresh = ctx.request_console(&link.server, id)?;
        console_host(ctx, &fresh.wss_url)?;
        let (_, session) = add_session(ctx, req, link)?;
        let data = json!({
            "wss_url": fresh.wss_url,
            "password": fresh.password,
            "issued_at": fresh.issued_at,
            "session": session,
        });
        (data, connect_to(&fresh.wss_url))
    };
    Ok(page(ctx, 200, template, &link.server, data, &connect))
}

/// The console page's data (the JSON `console.html` reads): what every
/// console page has, and what its kind adds in `kind` (an object): the
/// credentials and session of a direct page, the ticket and session of a
/// brokered one, `opened` for an opened link's.
fn page_data(server: &str, kind: serde_json::Value) -> serde_json::Value {
    let mut data = json!({
        "server": server,
        // Relative, so that hcc may sit below a path of the proxy.
        "refresh": "refresh",
        "status": "status",
        "refresh_every": REFRESH_EVERY_SECS,
    });
    if let (Some(data), serde_json::Value::Object(kind)) = (data.as_object_mut(), kind) {
        data.extend(kind);
    }
    data
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
) -> Result<(SessionId, String), ApiError> {
    let session = secret::random_token()?;
    let t = now();
    let id = ctx.store()?.add_console_session(
        &secret::hash(&session),
        link,
        &req.remote,
        t,
        t + ctx.settings.session_ttl(),
    )?;
    if let Some(agent) = &req.user_agent {
        let agent: String = agent.chars().take(MAX_USER_AGENT).collect();
        ctx.store()?.set_session_user_agent(id, &agent)?;
    }
    Ok((id, session))
}

/// `POST /c/refresh` with `{"session": ...}`: fresh credentials for the
/// session's server.
pub fn refresh(ctx: &mut Ctx, req: &Incoming) -> Reply {
    match refresh_json(ctx, req) {
        Ok(reply) => reply,
        Err(err) => for_page(err).to_json(),
    }
}

/// The session token of a `{"session": ...}` body.
fn session_of(req: &Incoming) -> Result<String, ApiError> {
    let body = json_body(&req.body)?;
    match body.get("session").and_then(|s| s.as_str()) {
        Some(session) => Ok(session.to_string()),
        None => Err(ApiError::bad_request(
            "bad_field",
            "the body must be {\"session\": \"...\"}",
        )),
    }
}

/// The one answer to a page whose session ended (a refresh, a ticket).
pub(super) fn ended() -> ApiError {
    ApiError::new(
        410,
        "session_expired",
        "This console session has ended; open a new console from your control panel.",
    )
}

/// A session token hcc never handed out (forged, mistyped, or from
/// another hcc): 404, unlike a session that ended (410), so that a
/// page's own session and a guess are told apart in the log and by
/// whoever watches the answers.
pub(super) fn unknown_session() -> ApiError {
    ApiError::new(
        404,
        "session_unknown",
        "There is no such console session; open a new console from your control panel.",
    )
}

fn refresh_json(ctx: &mut Ctx, req: &Incoming) -> Result<Reply, ApiError> {
    let session = session_of(req)?;
    let session = session.as_str();
    if !secret::is_token(session) {
        return Err(unknown_session());
    }
    // Before the claim, so that a suspension spends none of its refreshes.
    if ctx.store()?.session_suspended(&secret::hash(session))? {
        return Err(suspended());
    }
    // So is rationing: a page held back for long must not run out.
    if let Some(page) = ctx.store()?.page_session(&secret::hash(session), now())?
        && page.live
    {
        ctx.console_allowed(&page.server)?;
        ctx.page_fetch_allowed(page.id)?;
    }
    let claimed = ctx.store()?.claim_refresh(
        &secret::hash(session),
        now(),
        REFRESH_EVERY_SECS,
        refresh_limit(ctx.settings.session_ttl()),
    )?;
    let session = match claimed {
        Ok(session) => session,
        Err(Refused::Ended) => {
            // The claim does not say which: one more read, on this
            // failure's path only.
            let known = ctx
                .store()?
                .page_session(&secret::hash(session), now())?
                .is_some();
            return Err(if known { ended() } else { unknown_session() });
        }
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
    ctx.take_page_fetch(session.id)?;
    if ctx.settings.console_broker() {
        // A new ticket, no credentials: hcc fetches those on the upgrade.
        let ws = super::broker::ticket_for(ctx, session.id)?;
        return Ok(reply::json(
            200,
            &json!({ "server": session.server, "ws": ws }),
        ));
    }
    let fresh = ctx.request_console(&session.server, id)?;
    console_host(ctx, &fresh.wss_url)?;
    Ok(reply::json(
        200,
        &json!({
            "server": session.server, "wss_url": fresh.wss_url,
            "password": fresh.password, "issued_at": fresh.issued_at,
        }),
    ))
}

/// `POST /c/status` with `{"session": ..., "ws": ...}` (`ws`, the page's
/// last ticket path, optional): why the page's last connection failed, in
/// words, from what hcc knows (no Hetzner request): `{"server", "state":
/// "live" | "ended" | "replaced", "reason", "message"}`. A page asks after
/// a connection that failed, since a browser learns nothing of why a
/// websocket closed.
pub fn status(ctx: &mut Ctx, req: &Incoming) -> Reply {
    match status_json(ctx, req) {
        Ok(reply) => reply,
        Err(err) => for_page(err).to_json(),
    }
}

fn status_json(ctx: &mut Ctx, req: &Incoming) -> Result<Reply, ApiError> {
    let session = session_of(req)?;
    // The page's last ticket (`../ws/TICKET`), spent already: whether that
    // connection was replaced by another tab of the same page session.
    let ticket = json_body(&req.body)?
        .get("ws")
        .and_then(|w| w.as_str())
        .and_then(|w| w.rsplit('/').next())
        .filter(|t| secret::is_token(t))
        .map(secret::hash);
    let found = if secret::is_token(&session) {
        ctx.store()?
            .page_status(&secret::hash(&session), now(), ticket.as_deref())?
    } else {
        None
    };
    let Some(status) = found else {
        return Err(unknown_session());
    };
    let (state, reason, message) = explain(&status);
    // Rationed: when the next request would be let through.
    let retry_after = match reason {
        "rationed" => ctx
            .console_allowed(&status.server)
            .err()
            .and_then(|e| e.retry_after)
            .or(Some(1)),
        _ => None,
    };
    Ok(reply::json(
        200,
        &json!({
            "server": status.server, "state": state, "reason": reason, "message": message,
            "retry_after": retry_after,
        }),
    ))
}

/// The words for a page session's state: `(state, reason, message)`.
/// `ended` tells the page to stop trying; `live` that it may try again.
fn explain(s: &PageStatus) -> (&'static str, &'static str, String) {
    let name = crate::verb::shown(&s.server);
    // The newest connection's end, alone or with detail after it.
    let last = s.last_end.as_ref().map(|end| end.code);
    if s.replaced || last == Some(EndCode::Replaced) {
        // Another tab of this page session took the console (a page
        // session holds one): this page leaves it there rather than take
        // it back in turn, until its user asks.
        return (
            "replaced",
            "replaced",
            format!(
                "The console of {name} was opened again in another tab or window, so this one let go of it."
            ),
        );
    }
    // Ends that are final whatever the session's own state says.
    match last {
        Some(EndCode::Released) => {
            return (
                "ended",
                "released",
                "The server is no longer managed here; open a new console from your control panel."
                    .into(),
            );
        }
        Some(EndCode::Deleted) => {
            return (
                "ended",
                "deleted",
                format!("The server {name} was deleted."),
            );
        }
        _ => {}
    }
    if !s.live || last == Some(EndCode::Revoked) {
        return ("ended", "session_expired", ended().message);
    }
    if s.suspended || last == Some(EndCode::Suspended) {
        return ("ended", "suspended", suspended().message);
    }
    let plain = s.last_end.as_ref().is_some_and(|end| end.detail.is_none());
    let said = match last {
        Some(EndCode::Limit) => Some((
            "limit",
            "Too many consoles are open; close one and try again.".to_string(),
        )),
        Some(EndCode::ConsoleHosts) => Some((
            "console_host_not_allowed",
            format!(
                "The console of {name} is at a host the setting console_hosts does not allow. Please tell your provider."
            ),
        )),
        Some(EndCode::Rationed) if plain => Some((
            "rationed",
            format!(
                "hcc is rationing requests to Hetzner; the console of {name} connects in a moment."
            ),
        )),
        Some(EndCode::NoConsoleFromHetzner) => Some((
            "hetzner_unreachable",
            format!(
                "hcc cannot reach Hetzner (the cloud's API) right now, so it cannot open the console of {name}."
            ),
        )),
        _ => None,
    };
    if let Some((reason, message)) = said {
        return ("live", reason, message);
    }
    if s.server_status.as_deref() == Some("off") {
        return (
            "live",
            "server_off",
            format!(
                "{name} is off. Start it (Power on, or from your control panel); the console connects once it runs."
            ),
        );
    }
    // The browser's side: it closed (a reload, a closed tab, a network
    // that dropped), or it broke the protocol, in its handshake or in the
    // relay.
    let (reason, message) = match last {
        Some(EndCode::ClientClosed) if plain => (
            "browser_closed",
            format!("This browser closed its connection to the console of {name}."),
        ),
        Some(EndCode::ClientGone) => (
            "browser_closed",
            format!("This browser closed its connection to the console of {name}."),
        ),
        Some(EndCode::ClientHandshake | EndCode::ClientProtocol) => (
            "browser_error",
            format!(
                "The connection from this browser to the console of {name} broke off (the browser did not follow the console's protocol). Reload the page to connect again."
            ),
        ),
        Some(
            EndCode::ServeStopped | EndCode::Abandoned | EndCode::UpstreamError | EndCode::Error,
        ) => (
            "console_refused",
            format!(
                "The console of {name} did not accept the connection (the server may be restarting)."
            ),
        ),
        _ => (
            "unknown",
            format!("Could not connect to the console of {name}."),
        ),
    };
    ("live", reason, message)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_page_learns_why_in_words() {
        let status = |last: Option<&str>, server: Option<&str>| PageStatus {
            server: "web1".into(),
            live: true,
            suspended: false,
            server_status: server.map(str::to_string),
            last_end: last.map(crate::store::EndReason::parse),
            replaced: false,
        };
        let reason = |s: PageStatus| explain(&s).1;
        assert_eq!(reason(status(None, Some("off"))), "server_off");
        assert_eq!(
            reason(status(Some("error: no console from Hetzner: 503"), None)),
            "hetzner_unreachable"
        );
        assert_eq!(
            reason(status(
                Some("error: the console host wss://x is not in console_hosts"),
                Some("running")
            )),
            "console_host_not_allowed"
        );
        assert_eq!(
            reason(status(Some("error: connection refused"), Some("running"))),
            "console_refused"
        );
        assert_eq!(reason(status(Some("revoked"), None)), "session_expired");
        assert_eq!(
            explain(&PageStatus {
                live: false,
                ..status(None, None)
            })
            .0,
            "ended"
        );
        assert_eq!(reason(status(None, Some("running"))), "unknown");
        let replaced = PageStatus {
            replaced: true,
            ..status(None, Some("running"))
        };
        assert_eq!(explain(&replaced).0, "replaced");
        // The browser's own doing is not the console's refusal.
        for browser in [
            "client closed",
            "error: the client closed the connection during the version exchange",
        ] {
            let (state, reason, words) = explain(&status(Some(browser), Some("running")));
            assert_eq!((state, reason), ("live", "browser_closed"), "{browser}");
            assert!(words.contains("This browser closed"), "{words}");
            assert!(!words.contains("did not accept"), "{words}");
        }
        for broken in [
            "error: client: WebSocket protocol error: Received an unmasked frame from client",
            "error: the client sent a text message where RFB needs binary ones",
            "error: the client did not complete its handshake in time",
        ] {
            let (_, reason, words) = explain(&status(Some(broken), Some("running")));
            assert_eq!(reason, "browser_error", "{broken}");
            assert!(!words.contains("did not accept"), "{words}");
        }
        // The ends other parts of hcc record, also on an ended session.
        let cases = [
            (
                "replaced",
                "replaced",
                "opened again in another tab or window",
            ),
            ("released", "ended", "no longer managed here"),
            ("deleted", "ended", "was deleted"),
            ("limit", "live", "too many consoles are open; close one"),
            ("limit: 50 sessions", "live", "too many consoles"),
        ];
        for (end, state, words) in cases {
            let (got_state, got_reason, message) = explain(&status(Some(end), Some("running")));
            assert_eq!(got_state, state, "{end}");
            assert_eq!(got_reason, end.split(':').next().unwrap(), "{end}");
            assert!(message.to_lowercase().contains(words), "{end}: {message}");
            if state == "ended" {
                let s = PageStatus {
                    live: false,
                    ..status(Some(end), None)
                };
                assert_eq!(explain(&s).1, end, "an ended session keeps its reason");
            }
        }
        // A word that merely begins like one is none of them.
        assert_eq!(reason(status(Some("limited"), Some("running"))), "unknown");
        // Never where the console is.
        let (_, _, words) = explain(&status(
            Some("error: the console host wss://x is not in console_hosts"),
            None,
        ));
        assert!(!words.contains("wss://x"), "{words}");
        assert!(refresh_limit(28_800) >= 28_800 / RETRY_CAP_SECS);
    }

    #[test]
    fn page_data_cannot_close_its_script_element() {
        let safe = script_safe(r#"{"password":"</script><script>alert(1)//"}"#);
        assert!(!safe.contains('<') && !safe.contains('>'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["password"], "</script><script>alert(1)//");
    }
}
