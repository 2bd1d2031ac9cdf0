//! `GET /ws/TICKET`: a brokered console session. The page behind a
//! console link connects here with the one-time ticket it was given; hcc
//! claims the ticket, asks Hetzner for the console's URL and password,
//! connects and authenticates there itself (crate::console), offers the
//! browser an RFB handshake without a password and relays bytes both ways.
//! The browser never learns where the console is or its password.
//!
//! Each session is a row of `console_sessions` (store/broker.rs): its user
//! agent, when it connected and ended, the bytes each way and why it
//! ended. A stop request in that row (`hcc revoke`, `hcc suspend`, from any
//! process), the session's lifetime, the idle timeout or `hcc serve`
//! stopping end it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::WebSocket;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use super::gate;
use super::reply::ApiError;
use super::{Ctx, log, logged_method, logged_path};
use crate::console::{self, Limits};
use crate::http::{self, websocket};
use crate::secret;
use crate::store::{Store, now};

/// A ticket is valid this long after the page (or its refresh) got it.
const TICKET_TTL: i64 = 30;
/// How often a live session looks for a stop request.
const STOP_EVERY: Duration = Duration::from_millis(400);
/// Its byte counts are written this often (in stop checks).
const BYTES_EVERY: u32 = 25;
/// The largest websocket message taken from a browser: RFB client
/// messages are small; ClientCutText is the largest.
const MAX_CLIENT_MESSAGE: usize = 256 * 1024;
/// The longest user agent recorded.
const MAX_USER_AGENT: usize = 256;
/// How long a stopping `hcc serve` waits for sessions to record their end.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// Set when `hcc serve` stops: live sessions end.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// Sessions whose thread runs (handshakes or relay), by id, with the
/// database to record their end in.
static LIVE: Mutex<Vec<(i64, PathBuf)>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<(i64, PathBuf)>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Is `path` this route's?
pub fn is_ws(path: &str) -> bool {
    path.starts_with("/ws/")
}

/// Ends the live sessions (they record why) and waits a moment for them;
/// the end of those still in a handshake then is recorded here, as the
/// process is about to exit under them.
pub fn stop_all() {
    STOPPING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + STOP_WAIT;
    while !live().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (id, db) in live().iter() {
        let ended = Store::open(db)
            .and_then(|store| store.end_session(*id, now(), "error: hcc serve stopped", 0, 0));
        if let Err(err) = ended {
            log(&format!("console session {id}: {err}"));
        }
    }
}

/// A session not heard of this long is taken as abandoned ([`sweep`]).
const ABANDONED_AFTER: i64 = 300;
/// How often `hcc serve` looks for them.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Records the end of sessions whose `hcc serve` died under them (killed,
/// crashed), so that they do not stay live in the record for ever.
pub fn sweep(db: &std::path::Path) {
    let swept =
        Store::open(db).and_then(|store| store.end_abandoned_sessions(now(), ABANDONED_AFTER));
    match swept {
        Ok(0) => {}
        Ok(n) => log(&format!(
            "{n} console sessions of a stopped hcc serve recorded as ended"
        )),
        Err(err) => log(&format!("cannot end abandoned console sessions: {err}")),
    }
}

/// A fresh ticket for session `id`'s next connection (on a new row
/// like it when that one already connected): the path the page connects
/// to, relative to the page (`/c/TOKEN`), so that hcc may sit below a
/// path of its proxy.
pub fn ticket_for(ctx: &Ctx, id: i64) -> Result<String, ApiError> {
    let ticket = secret::random_token()?;
    let row_key = secret::random_token()?;
    let t = now();
    let issued = ctx.store.reissue_ticket(
        id,
        &secret::hash(&row_key),
        &secret::hash(&ticket),
        t + TICKET_TTL,
        t,
    )?;
    match issued {
        Some(_) => Ok(format!("../ws/{ticket}")),
        None => Err(ApiError::new(
            410,
            "session_expired",
            "This console session has ended; open a new console from your control panel.",
        )),
    }
}

/// Answers an upgrade to `/ws/TICKET` (logged like every request; the
/// ticket never is).
pub fn serve(ctx: &mut Ctx, request: &http::Request) -> http::Reply {
    let started = Instant::now();
    let (incoming, _) = super::incoming(request, &ctx.settings.trusted_proxies);
    let (status, reply) = match upgrade(ctx, request, &incoming.remote) {
        Ok(reply) => (101, reply),
        Err(err) => (err.status, http::Reply::Answer(err.to_json())),
    };
    log(&format!(
        "{} {} {} {} {:.1} ms",
        incoming.remote,
        logged_method(&incoming.method),
        logged_path(&incoming.path),
        status,
        started.elapsed().as_secs_f64() * 1000.0
    ));
    crate::metrics::http_request(status);
    reply
}

/// What a session thread needs.
struct Session {
    id: i64,
    server: String,
    db: PathBuf,
    idle: Duration,
    url: String,
    password: String,
}

/// A claimed session until its thread takes it: should the 101 never
/// reach the client (it went away) or no thread start, the session's end
/// is still recorded when this is dropped.
#[derive(Default)]
struct Unstarted(Option<Session>);

impl Drop for Unstarted {
    fn drop(&mut self) {
        let Some(session) = self.0.take() else {
            return;
        };
        let ended = Store::open(&session.db)
            .and_then(|store| store.end_session(session.id, now(), "client closed", 0, 0));
        if let Err(err) = ended {
            log(&format!("console session {}: {err}", session.id));
        }
    }
}

fn upgrade(ctx: &mut Ctx, request: &http::Request, remote: &str) -> Result<http::Reply, ApiError> {
    // Before anything is looked up: another site's page learns nothing.
    super::same_site(ctx, request)?;
    let ticket = request.path.strip_prefix("/ws/").unwrap_or("");
    if !secret::is_token(ticket) {
        return Err(ApiError::not_found(
            "There is no console session at this address.",
        ));
    }
    if request.method != "GET" || !websocket::is_upgrade(request) {
        return Err(ApiError::bad_request(
            "not_websocket",
            "this address takes only websocket upgrades",
        ));
    }
    // The upgrade is checked before the ticket is spent; the session's
    // thread gets its data once the ticket is claimed (and runs only if
    // this answer is the 101).
    let slot: Arc<Mutex<Unstarted>> = Arc::default();
    let filled = slot.clone();
    let reply = websocket::upgrade(request, MAX_CLIENT_MESSAGE, move |ws, peer| {
        let session = filled.lock().ok().and_then(|mut s| s.0.take());
        if let Some(session) = session {
            run(session, ws, peer);
        }
    })
    .map_err(|why| ApiError::bad_request("bad_upgrade", why))?;
    let user_agent: String = request
        .header("user-agent")
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT)
        .collect();
    let claimed = ctx
        .store
        .claim_ticket(&secret::hash(ticket), now(), &user_agent)?
        .ok_or_else(|| {
            ApiError::new(
                410,
                "session_gone",
                "This console connection was already used or has expired; reload the console page.",
            )
        })?;
    let end = |ctx: &Ctx, reason: &str| ctx.store.end_session(claimed.id, now(), reason, 0, 0);
    if claimed.suspended {
        end(ctx, "suspended")?;
        return Err(ApiError::new(
            403,
            "suspended",
            "Console access to this server is suspended.",
        ));
    }
    let fresh = gate::same_server(ctx, &claimed.server, claimed.server_id)
        .and_then(|id| ctx.request_console(&claimed.server, id));
    let fresh = match fresh {
        Ok(fresh) => fresh,
        Err(err) => {
            end(
                ctx,
                &format!("{}: {}", gate::NO_CONSOLE_FROM_HETZNER, err.message),
            )?;
            return Err(err);
        }
    };
    if !gate::console_host_allowed(&ctx.settings.console_hosts, &fresh.wss_url) {
        end(
            ctx,
            &format!(
                "error: the console host {} is not in console_hosts",
                console::upstream::origin(&fresh.wss_url)
            ),
        )?;
        return Err(gate::host_not_allowed(&fresh.wss_url));
    }
    let session = Session {
        id: claimed.id,
        server: claimed.server,
        db: ctx.settings.home.db_path(),
        idle: Duration::from_secs(ctx.settings.console_idle_timeout),
        url: fresh.wss_url,
        password: fresh.password,
    };
    log(&format!(
        "console session {} for {} from {remote}: connecting",
        session.id,
        crate::verb::shown(&session.server)
    ));
    match slot.lock() {
        Ok(mut s) => s.0 = Some(session),
        Err(_) => {
            end(ctx, "error: internal: a poisoned lock")?;
            return Err(ApiError::new(500, "internal", "a poisoned lock"));
        }
    }
    Ok(reply)
}

/// A session's thread: both handshakes, the relay, the record of its end.
fn run(session: Session, client: WebSocket<websocket::Stream>, _peer: Option<SocketAddr>) {
    live().push((session.id, session.db.clone()));
    let gone = || live().retain(|(id, _)| *id != session.id);
    let store = match Store::open(&session.db) {
        Ok(store) => store,
        Err(err) => {
            log(&format!("console session {}: {err}", session.id));
            close(client, CloseCode::Error, "console error");
            gone();
            return;
        }
    };
    let outcome = connect_and_relay(&session, &store, client);
    let reason = outcome.end.reason();
    if let Err(err) = store.end_session(
        session.id,
        now(),
        &reason,
        outcome.to_client,
        outcome.from_client,
    ) {
        log(&format!("console session {}: {err}", session.id));
    }
    log(&format!(
        "console session {} for {} ended: {reason} ({} bytes to the client, {} from it)",
        session.id,
        crate::verb::shown(&session.server),
        outcome.to_client,
        outcome.from_client
    ));
    gone();
}

/// Upstream first (the browser waits for the version meanwhile), then the
/// browser's handshake, then the relay.
fn connect_and_relay(
    session: &Session,
    store: &Store,
    mut client: WebSocket<websocket::Stream>,
) -> console::Outcome {
    // The end is recorded before the client learns of it: a page asks
    // why its connection failed (`POST /c/status`) as soon as it closes.
    let failed = |why: String| {
        let end = console::End::Error(why);
        if let Err(err) = store.end_session(session.id, now(), &end.reason(), 0, 0) {
            log(&format!("console session {}: {err}", session.id));
        }
        console::Outcome {
            end,
            to_client: 0,
            from_client: 0,
        }
    };
    let upstream = match console::upstream::connect(&session.url, &session.password) {
        Ok(upstream) => upstream,
        Err(why) => {
            let outcome = failed(why);
            close(client, CloseCode::Error, "console error");
            return outcome;
        }
    };
    let client_rest = match console::browser::handshake(&mut client) {
        Ok(rest) => rest,
        Err(handshake) => {
            let words = match handshake.code {
                CloseCode::Error => "console error",
                code => console::relay::violation_words(code),
            };
            let outcome = failed(handshake.why);
            close(client, handshake.code, words);
            return outcome;
        }
    };
    let mut checks = 0u32;
    let limits = Limits {
        idle: session.idle,
        stop_every: STOP_EVERY,
    };
    console::relay(
        (client, client_rest),
        (upstream.ws, upstream.rest),
        limits,
        |to_client, from_client| {
            if STOPPING.load(Ordering::SeqCst) {
                return Some("error: hcc serve stopped".into());
            }
            checks += 1;
            if checks.is_multiple_of(BYTES_EVERY) {
                let _ = store.session_bytes(session.id, to_client, from_client, now());
            }
            // A database locked for a moment is no reason to end.
            store.stop_reason(session.id, now()).unwrap_or(None)
        },
    )
}

/// Ends the client's websocket with a close frame (within a second).
fn close(mut client: WebSocket<websocket::Stream>, code: CloseCode, reason: &str) {
    let socket = &client.get_ref().socket;
    let _ = socket.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = client.close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }));
    let _ = client.flush();
}
