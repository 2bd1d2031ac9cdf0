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
//! process; `replaced`, when its page connected again with a new ticket),
//! the session's lifetime, the idle timeout or `hcc serve` stopping end it.
//! Why it ended is an `EndReason` (store/end_reason.rs), stored in the
//! words panels read. What this process knows of its sessions (which are
//! live, ends not yet written, the stop flag) is a [`Consoles`], made
//! once per run and handed to requests with the settings.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::WebSocket;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use super::gate;
use super::reply::ApiError;
use super::shared::{Ctx, Stores, log};
use crate::console::{self, Limits};
use crate::http::{self, websocket};
use crate::secret;
use crate::store::{Claimed, EndCode, EndReason, SessionId, Store, now};

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

/// The brokered sessions of this `hcc serve`: made once by `run()` (with
/// the first settings, kept by every re-read) and shared by the request
/// threads, the session threads and the main loop.
pub struct Consoles {
    /// The connections their records are written with.
    stores: Stores,
    /// Set when `hcc serve` stops: live sessions end.
    stopping: AtomicBool,
    /// Sessions admitted and not yet ended in this process (handshakes or
    /// relay), by id: what `max_console_sessions` counts.
    live: Mutex<Vec<SessionId>>,
    /// Ends that could not be written when their session ended (every
    /// pooled connection busy, the database locked): written by the main
    /// loop.
    pending_ends: Mutex<Vec<Ended>>,
    /// Admission is one at a time: counting live sessions and claiming a
    /// ticket must not interleave, or two upgrades both take the last
    /// place.
    admission: Mutex<()>,
}

impl Consoles {
    pub fn new(stores: Stores) -> Consoles {
        Consoles {
            stores,
            stopping: AtomicBool::new(false),
            live: Mutex::default(),
            pending_ends: Mutex::default(),
            admission: Mutex::new(()),
        }
    }
}

/// A session's end, as recorded.
struct Ended {
    id: SessionId,
    at: i64,
    reason: EndReason,
    to_client: u64,
    from_client: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a session's end with a pooled connection; kept for the main
/// loop to write ([`record_pending`]) when none can be had now, so that no
/// row stays live once its clients are gone.
fn record_end(consoles: &Consoles, ended: Ended) {
    let store = consoles.stores.for_sessions().map_err(|e| e.message);
    if let Err(why) = store.and_then(|store| write_end(&store, &ended)) {
        log(&format!(
            "console session {}: its end will be recorded later: {why}",
            ended.id
        ));
        lock(&consoles.pending_ends).push(ended);
    }
}

fn write_end(store: &Store, ended: &Ended) -> Result<(), String> {
    store
        .end_session(
            ended.id,
            ended.at,
            &ended.reason,
            ended.to_client,
            ended.from_client,
        )
        .map_err(|e| e.to_string())
}

/// Writes the ends that could not be written when they happened (quietly:
/// each said so once), when a connection is free at once: the main loop
/// calls it and must not wait.
pub fn record_pending(consoles: &Consoles) {
    if lock(&consoles.pending_ends).is_empty() {
        return;
    }
    let Some(store) = consoles.stores.try_for_sessions() else {
        return;
    };
    let pending: Vec<Ended> = std::mem::take(&mut *lock(&consoles.pending_ends));
    let failed: Vec<Ended> = pending
        .into_iter()
        .filter(|ended| write_end(&store, ended).is_err())
        .collect();
    lock(&consoles.pending_ends).extend(failed);
}

/// Ends the live sessions (they record why) and waits a moment for them;
/// the end of those still in a handshake then is recorded here, as the
/// process is about to exit under them.
pub fn stop_all(consoles: &Consoles) {
    consoles.stopping.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + STOP_WAIT;
    while !lock(&consoles.live).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<SessionId> = lock(&consoles.live).clone();
    for id in left {
        record_end(
            consoles,
            Ended {
                id,
                at: now(),
                reason: EndCode::ServeStopped.into(),
                to_client: 0,
                from_client: 0,
            },
        );
    }
    record_pending(consoles);
}

/// A session not heard of this long is taken as abandoned ([`sweep`]).
const ABANDONED_AFTER: i64 = 300;
/// How often `hcc serve` looks for them.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Records the end of sessions whose `hcc serve` died under them (killed,
/// crashed), so that they do not stay live in the record for ever.
pub fn sweep(consoles: &Consoles) {
    let swept = match consoles.stores.for_sessions() {
        Ok(store) => store.end_abandoned_sessions(now(), ABANDONED_AFTER),
        Err(_) => return,
    };
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
pub fn ticket_for(ctx: &Ctx, id: SessionId) -> Result<String, ApiError> {
    let ticket = secret::random_token()?;
    let row_key = secret::random_token()?;
    let t = now();
    let issued = ctx.store()?.reissue_ticket(
        id,
        &secret::hash(&row_key),
        &secret::hash(&ticket),
        t + TICKET_TTL,
        t,
    )?;
    match issued {
        Some(_) => Ok(format!("../ws/{ticket}")),
        None => Err(super::links::ended()),
    }
}

/// What a session thread needs.
struct Session {
    id: SessionId,
    server: String,
    consoles: Arc<Consoles>,
    idle: Duration,
    url: String,
    password: String,
    /// Its place among the live sessions, until its end is recorded.
    _place: Admitted,
}

/// A place among this process's live sessions (`max_console_sessions`),
/// from admission until dropped.
struct Admitted(SessionId, Arc<Consoles>);

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.1.live).retain(|id| *id != self.0);
    }
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
        record_end(
            &session.consoles,
            Ended {
                id: session.id,
                at: now(),
                reason: EndCode::ClientClosed.into(),
                to_client: 0,
                from_client: 0,
            },
        );
    }
}

/// How many live sessions may be had: in this process, on one server,
/// through one API key's links and requests.
struct Caps {
    total: usize,
    per_server: i64,
    per_key: i64,
}

impl Caps {
    fn of(config: &crate::config::Settings) -> Caps {
        // Each holds its client's connection and one to the console, both
        // counted against the connection limit: a quarter of it by
        // default (half the connections stay for pages), never more than
        // half, whatever the setting says.
        let connections = http::connection_cap();
        let total = match config.max_console_sessions {
            0 => (connections / 4).max(1),
            n => (n as usize).min((connections / 2).max(1)),
        };
        let per_key = match config.max_console_sessions_per_key {
            0 => (total / 2).max(1) as i64,
            n => n as i64,
        };
        Caps {
            total,
            per_server: config.max_console_sessions_per_server as i64,
            per_key,
        }
    }
}

/// How long a refused page waits before trying again.
const LIMIT_RETRY: u64 = 10;

/// Admits the session of a ticket, or refuses it: a cap is reached (the
/// refusal is recorded on its row as `limit`, so that the page can say
/// why), or the ticket is used, expired or unknown. The one admitted
/// counts as live from here on.
fn admit(
    ctx: &Ctx,
    ticket_hash: &str,
    remote: &str,
    user_agent: &str,
) -> Result<(Claimed, Admitted), ApiError> {
    let consoles = &ctx.settings.consoles;
    let _one_at_a_time = lock(&consoles.admission);
    let at = now();
    let gone = || {
        ApiError::new(
            410,
            "session_gone",
            "This console connection was already used or has expired; reload the console page.",
        )
    };
    let Some(owner) = ctx.store()?.ticket_owner(ticket_hash, at)? else {
        return Err(gone());
    };
    let caps = Caps::of(&ctx.settings.config);
    let here = lock(&consoles.live).len();
    let live = ctx.store()?.live_console_counts(&owner)?;
    let name = crate::verb::shown(&owner.server);
    let refusal = if here >= caps.total {
        Some((
            503,
            format!(
                "hcc serve holds {here} consoles, the most it may ({} at most)",
                caps.total
            ),
        ))
    } else if live.on_server >= caps.per_server {
        Some((
            429,
            format!(
                "{} consoles of {name} are open, the most one server may have",
                live.on_server
            ),
        ))
    } else if live.for_key >= caps.per_key {
        Some((
            429,
            format!(
                "{} consoles opened through this key are open, the most one key may have",
                live.for_key
            ),
        ))
    } else {
        None
    };
    if let Some((status, why)) = refusal {
        ctx.store()?
            .refuse_ticket(ticket_hash, at, &EndCode::Limit.into())?;
        log(&format!("console session {} refused: {why}", owner.id));
        return Err(ApiError::new(
            status,
            "console_limit",
            format!("Too many consoles are open: {why}. Close one and try again."),
        )
        .retry_after(LIMIT_RETRY));
    }
    let claimed = ctx
        .store()?
        .claim_ticket(ticket_hash, at, remote, user_agent)?
        .ok_or_else(gone)?;
    lock(&consoles.live).push(claimed.id);
    let place = Admitted(claimed.id, consoles.clone());
    Ok((claimed, place))
}

/// Answers an upgrade to `/ws/TICKET` (the router logs it like every
/// request; the ticket never is).
pub fn upgrade(
    ctx: &mut Ctx,
    request: &http::Request,
    remote: &str,
) -> Result<http::Reply, ApiError> {
    // Before anything is looked up: another site's page learns nothing.
    super::origin::same_site(&ctx.settings, request)?;
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
    let (claimed, place) = admit(ctx, &secret::hash(ticket), remote, &user_agent)?;
    if claimed.replaced > 0 {
        log(&format!(
            "console session {}: replaces the earlier connection of its page",
            claimed.id
        ));
    }
    // Recorded however busy the database is (queued for the main loop
    // otherwise): a session refused here must not stay live.
    let end = |ctx: &Ctx, reason: EndReason| -> Result<(), ApiError> {
        record_end(
            &ctx.settings.consoles,
            Ended {
                id: claimed.id,
                at: now(),
                reason,
                to_client: 0,
                from_client: 0,
            },
        );
        Ok(())
    };
    if claimed.suspended {
        end(ctx, EndCode::Suspended.into())?;
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
            // The page asks why (`POST /c/status`) and, rationed, says
            // so and counts down.
            let why = if err.code == "rationed" {
                EndCode::Rationed.into()
            } else {
                EndReason::no_console(&err.message)
            };
            end(ctx, why)?;
            return Err(err);
        }
    };
    if !ctx.settings.config.console_host_allowed(&fresh.wss_url) {
        end(
            ctx,
            EndReason::console_host(&console::upstream::origin(&fresh.wss_url)),
        )?;
        return Err(gate::host_not_allowed(&fresh.wss_url));
    }
    let session = Session {
        id: claimed.id,
        server: claimed.server,
        consoles: ctx.settings.consoles.clone(),
        idle: ctx.settings.config.console_idle_timeout,
        url: fresh.wss_url,
        password: fresh.password,
        _place: place,
    };
    log(&format!(
        "console session {} for {} from {remote}: connecting",
        session.id,
        crate::verb::shown(&session.server)
    ));
    match slot.lock() {
        Ok(mut s) => s.0 = Some(session),
        Err(_) => {
            end(ctx, EndReason::error("internal: a poisoned lock"))?;
            return Err(ApiError::new(500, "internal", "a poisoned lock"));
        }
    }
    Ok(reply)
}

/// A session's thread: both handshakes, the relay, the record of its end.
/// It holds no database connection of its own: it borrows one from the
/// sessions' pool for each look at its row.
fn run(session: Session, client: WebSocket<websocket::Stream>, _peer: Option<SocketAddr>) {
    let outcome = connect_and_relay(&session, client);
    let mut reason = outcome.end.reason();
    // The console went away just after hcc was asked to end the session
    // (a server deleted: the stop comes first, the machine goes after):
    // the stop is why it ended.
    if matches!(
        outcome.end,
        console::End::UpstreamClosed | console::End::Error(_)
    ) && let Ok(store) = session.consoles.stores.for_sessions()
        && let Ok(Some(stop)) = store.stop_reason(session.id, now())
        && stop.code != EndCode::Expired
    {
        reason = stop;
    }
    record_end(
        &session.consoles,
        Ended {
            id: session.id,
            at: now(),
            reason: reason.clone(),
            to_client: outcome.to_client,
            from_client: outcome.from_client,
        },
    );
    log(&format!(
        "console session {} for {} ended: {reason} ({} bytes to the client, {} from it)",
        session.id,
        crate::verb::shown(&session.server),
        outcome.to_client,
        outcome.from_client
    ));
}

/// Upstream first (the browser waits for the version meanwhile), then the
/// browser's handshake, then the relay.
fn connect_and_relay(
    session: &Session,
    mut client: WebSocket<websocket::Stream>,
) -> console::Outcome {
    // The end is recorded before the client learns of it: a page asks
    // why its connection failed (`POST /c/status`) as soon as it closes.
    let failed = |why: String| {
        let end = console::End::Error(why);
        record_end(
            &session.consoles,
            Ended {
                id: session.id,
                at: now(),
                reason: end.reason(),
                to_client: 0,
                from_client: 0,
            },
        );
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
            if session.consoles.stopping.load(Ordering::SeqCst) {
                return Some(EndCode::ServeStopped.into());
            }
            checks += 1;
            // A database busy or locked for a moment is no reason to end,
            // nor to hold the relay up: the next look is 400 ms away.
            let store = session.consoles.stores.try_for_sessions()?;
            if checks.is_multiple_of(BYTES_EVERY) {
                let _ = store.session_bytes(session.id, to_client, from_client, now());
            }
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
