//! `hcc serve`: console pages, one-time console links and the JSON API.
//!
//! Requests run on crate::http's worker threads; each borrows a SQLite
//! connection and, once it asks Hetzner, a Hetzner client from bounded
//! pools (pool.rs), so a burst holds no more descriptors than the pools
//! allow. The threads share the settings (re-read on SIGHUP and when
//! config.json changes: reload.rs), the rendered server list (listing.rs),
//! the count of requests under way per client (client.rs) and what console
//! requests each page and server may still make (ration.rs).
//! Routes: `/api/v1/...` (api.rs; what its handlers share of a request:
//! request.rs), `/c/TOKEN` (GET: a page that opens it
//! with a POST) and `/c/refresh` (links.rs), `/c/power` (power.rs: the
//! console page's power buttons),
//! `/ws/TICKET` (broker.rs: brokered console sessions, websockets),
//! everything else is an embedded file (pages.rs). One log line per request
//! on stderr: no query string, no link token, no key.

mod adopt;
mod api;
mod auth;
mod broker;
mod catalog;
mod client;
mod gate;
mod links;
mod listing;
mod metrics;
mod origin;
mod pages;
mod pool;
mod power;
mod ration;
mod redact;
mod reload;
mod reply;
mod request;
mod sessions;

use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::assets;
use crate::cloud::Cloud;
use crate::cloud::console::Credentials;
use crate::config;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::http;
use crate::pickup;
use crate::store::Store;
use crate::verb::shown;
use redact::{logged_method, logged_path};
use reply::{ApiError, Reply};

/// Request bodies larger than this are refused (413): every body hcc
/// takes is a small JSON object.
const MAX_BODY: usize = 64 * 1024;
/// The longest a console request waits for the rate budget or a retry.
const MAX_HETZNER_WAIT: Duration = Duration::from_secs(5);
/// How often the main thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(200);
/// SQLite connections requests and console sessions share...
const MAX_STORES: usize = 32;
/// ...and Hetzner clients (each with its own two connections)...
const MAX_CLOUDS: usize = 8;
/// ...and the console sessions' own (a look at a row takes microseconds).
const SESSION_STORES: usize = 4;
/// How long a request waits for a connection to be given back...
const POOL_WAIT: Duration = Duration::from_secs(10);
/// ...and for a Hetzner client: less, so that a request waiting on
/// Hetzner gives its connection back first.
const CLOUD_WAIT: Duration = Duration::from_secs(5);
/// Requests under way from one client (behind a trusted proxy: the address
/// it names); more are answered 429 at once.
const MAX_IN_FLIGHT: usize = 64;

/// How `hcc serve` runs: its flags, checked (cli.rs converts them).
#[derive(Debug, Clone)]
pub struct Options {
    /// The address to listen on, as given.
    pub listen: String,
    /// Run the worker in this process, with this refresh cycle.
    pub worker: Option<Duration>,
    /// Overrides the `public_url` setting.
    pub public_url: Option<String>,
}

/// What every request handler reads: one snapshot of the settings (a
/// re-read makes a new one, reload.rs), and what the request threads share.
pub struct Settings {
    pub home: Home,
    pub public_url: String,
    pub link_ttl: i64,
    pub session_ttl: i64,
    pub frame_ancestors: String,
    pub console_hosts: String,
    /// `console_mode` is `broker`: console pages connect to `/ws/`.
    pub console_broker: bool,
    pub console_idle_timeout: u64,
    pub label: String,
    pub prefix: String,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
    in_flight: Arc<client::InFlight>,
    /// Console credential fetches per server (ration.rs).
    ration: Arc<ration::Ration>,
    /// The SQLite connections and Hetzner clients requests and console
    /// sessions borrow (pool.rs).
    stores: Stores,
    clouds: Arc<pool::Pool<Cloud>>,
    /// The server list, shared by the request threads.
    listing: listing::Listing,
    /// The settings in effect, as config.json was when read.
    pub config: config::Settings,
    /// Counts the snapshots: a request thread that sees a new one drops
    /// what it built from the old (its Hetzner client).
    generation: u64,
}

impl Settings {
    /// The snapshot of `config`; console links begin with `public_url`
    /// (`--public-url`), else the setting of that name, else `http://` and
    /// the bound address. A re-read (`previous`) keeps what lives as long
    /// as the process: the counts of requests under way and the trusted
    /// proxies (the connection limits took them at start).
    fn new(
        home: &Home,
        config: config::Settings,
        public_url: Option<&str>,
        bound: SocketAddr,
        previous: Option<&Settings>,
    ) -> Settings {
        let public_url = public_url
            .map(str::to_string)
            .or_else(|| config.public_url.clone())
            .unwrap_or_else(|| format!("http://{bound}"));
        Settings {
            home: home.clone(),
            public_url: public_url.trim_end_matches('/').to_string(),
            link_ttl: config.link_ttl.as_secs() as i64,
            session_ttl: config.session_ttl.as_secs() as i64,
            frame_ancestors: config.frame_ancestors.clone(),
            console_hosts: config.console_hosts.clone(),
            console_broker: config.console_mode == config::ConsoleMode::Broker,
            console_idle_timeout: config.console_idle_timeout.as_secs(),
            label: config.label.clone(),
            prefix: config.prefix.clone(),
            trusted_proxies: match previous {
                Some(previous) => previous.trusted_proxies.clone(),
                None => config.trusted_proxies.clone(),
            },
            in_flight: previous.map_or_else(Arc::default, |p| p.in_flight.clone()),
            ration: previous.map_or_else(Arc::default, |p| p.ration.clone()),
            stores: previous.map_or_else(|| Stores::new(home), |p| p.stores.clone()),
            clouds: previous.map_or_else(
                || Arc::new(pool::Pool::new(MAX_CLOUDS, CLOUD_WAIT)),
                |p| p.clouds.clone(),
            ),
            // The list shows the `label` setting, which may have changed.
            listing: listing::Listing::default(),
            config,
            generation: previous.map_or(0, |p| p.generation + 1),
        }
    }

    pub fn queue_allows(&self, word: &str) -> bool {
        self.config.queue_allows(word)
    }
}

/// One request, read and checked: what the handlers see.
pub struct Incoming {
    pub method: String,
    /// Without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub user_agent: Option<String>,
    pub authorization: Option<String>,
    /// The `If-None-Match` header, for the embedded files' ETags.
    pub if_none_match: Option<String>,
    pub body: Vec<u8>,
    /// The client's address (what a trusted proxy's `X-Forwarded-For`
    /// names when the connection comes from one), `-` when unknown.
    pub remote: String,
    /// The connection comes from this machine and no proxy relays it
    /// (serve/metrics.rs).
    pub local: bool,
}

/// What a request runs with: the settings in effect when it arrived, a
/// SQLite connection and, once it asks Hetzner, a Hetzner client, both
/// borrowed from the pools for as long as the request runs.
pub struct Ctx {
    pub settings: Arc<Settings>,
    pub store: pool::Pooled<Store>,
    cloud: Option<pool::Pooled<Cloud>>,
}

impl Ctx {
    fn new(settings: Arc<Settings>) -> Result<Ctx, ApiError> {
        let store = borrow_store(&settings)?;
        Ok(Ctx {
            settings,
            store,
            cloud: None,
        })
    }

    /// Fresh console credentials for a managed server (id from the local
    /// table), stored in its row as `hcc console` does; rationed per
    /// server (ration.rs), and answered 429 `rationed` rather than waiting
    /// long for the budget's console share.
    pub fn request_console(&mut self, name: &str, id: i64) -> Result<Credentials, ApiError> {
        self.settings
            .ration
            .take(
                ration::Holder::Server(name.to_string()),
                self.server_rate(),
                Instant::now(),
            )
            .map_err(ration::rationed)?;
        let cloud = self.hetzner()?;
        Ok(crate::cloud::console::fetch(
            &cloud.client,
            &cloud.store,
            name,
            id,
        )?)
    }

    fn server_rate(&self) -> ration::Rate {
        ration::Rate::per_server(self.settings.config.console_requests_per_server)
    }

    /// Takes one of page session `page`'s fetches (ration.rs), or answers
    /// 429 `rationed`.
    pub fn take_page_fetch(&self, page: i64) -> Result<(), ApiError> {
        let rate = ration::Rate::per_page(self.settings.config.console_refresh_every);
        self.settings
            .ration
            .take(ration::Holder::Page(page), rate, Instant::now())
            .map_err(ration::rationed)
    }

    /// Whether page session `page` may fetch now, taking nothing.
    pub fn page_fetch_allowed(&self, page: i64) -> Result<(), ApiError> {
        let rate = ration::Rate::per_page(self.settings.config.console_refresh_every);
        self.settings
            .ration
            .check(ration::Holder::Page(page), rate, Instant::now())
            .map_err(ration::rationed)
    }

    /// Refuses at once (429 `rationed`) when a console request for
    /// `server` would now be held back: the server's fetches are spent,
    /// or the budget is down to what consoles must leave for commands.
    /// Asked before a page is given a ticket, so that it is told and
    /// counts down instead of failing to connect.
    pub fn console_allowed(&self, server: &str) -> Result<(), ApiError> {
        self.settings
            .ration
            .check(
                ration::Holder::Server(server.to_string()),
                self.server_rate(),
                Instant::now(),
            )
            .map_err(ration::rationed)?;
        if let Some(state) = self.store.rate_state()? {
            let wait = state.wait(
                Priority::Console,
                self.settings.config.command_share(),
                crate::hetzner::now(),
            );
            if wait > MAX_HETZNER_WAIT {
                return Err(ration::rationed(wait));
            }
        }
        Ok(())
    }

    /// A Hetzner client for this request, for requests a person waits on
    /// (made with the settings the request arrived with).
    pub fn hetzner(&mut self) -> Result<&mut Cloud, ApiError> {
        if self.cloud.is_none() {
            let settings = &self.settings;
            let borrowed = settings.clouds.get(settings.generation, || {
                // A person is waiting: one retry at most, and no long waits
                // for the budget (the answer says when to try again instead).
                Cloud::open_with(&settings.home, &settings.config, Priority::Console, 1).map(
                    |mut cloud| {
                        cloud.client = cloud.client.with_max_wait(MAX_HETZNER_WAIT);
                        cloud
                    },
                )
            });
            self.cloud = Some(match borrowed {
                Ok(cloud) => cloud,
                Err(pool::Shortage::Busy) => return Err(busy()),
                Err(pool::Shortage::Failed(err)) => return Err(err.into()),
            });
        }
        self.cloud
            .as_deref_mut()
            .ok_or_else(|| ApiError::new(500, "internal", "no Hetzner client"))
    }
}

pub fn run(home: &Home, config: &config::Settings, args: Options) -> Result<ExitCode, Error> {
    let addrs: Vec<SocketAddr> = args
        .listen
        .to_socket_addrs()
        .map_err(|e| Error::Input(format!("invalid --listen `{}`: {e}", shown(&args.listen))))?
        .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err(Error::Input(format!(
            "--listen `{}` names no address",
            shown(&args.listen)
        )));
    };
    let store = Store::open(&home.db_path())?;
    let exposed = addrs.iter().any(|a| !a.ip().is_loopback());
    if exposed && store.api_key_count()? == 0 {
        return Err(Error::Input(format!(
            "refusing to listen on {addr}, beyond this machine, while no API key exists: \
             create one first (`hcc apikey add NAME --scope admin`) or listen on 127.0.0.1"
        )));
    }
    if let Some(url) = &args.public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(Error::Input(format!(
            "invalid --public-url `{}`: want an http:// or https:// URL",
            shown(url)
        )));
    }
    let worker_lock = if args.worker.is_some() {
        Some(crate::worker::lock(home)?)
    } else {
        None
    };
    let listener = TcpListener::bind(addr)
        .map_err(|e| Error::Failed(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Failed(format!("cannot listen on {addr}: {e}")))?;
    // Watching before the first read: a change in between is not missed.
    let triggers = reload::Triggers::start(home)?;
    let settings = Arc::new(Settings::new(
        home,
        config.clone(),
        args.public_url.as_deref(),
        bound,
        None,
    ));
    // Before the first request: `hcc config set` may ask from now on.
    pickup::publish(home, settings.config.digest());
    let live = Arc::new(reload::Live::new(settings.clone()));
    let reloader = reload::Reloader {
        live: live.clone(),
        public_url: args.public_url.clone(),
        bound,
        worker: args.worker.is_some(),
    };
    // A change between run()'s read and the watch is caught up on now,
    // quietly when there was none.
    reloader.reload(reload::SINCE_START);
    log(&format!(
        "listening on http://{bound} (pid {}, console links {}/c/...)",
        std::process::id(),
        settings.public_url
    ));
    if exposed {
        log(
            "warning: this address is reachable from other machines and hcc speaks plain HTTP: put a TLS proxy in front (scripts/nginx/hcc.conf)",
        );
        if bound.ip().is_unspecified()
            && settings.public_url.starts_with(&format!("http://{bound}"))
        {
            log(
                "warning: console links name the wildcard address; set --public-url (or `hcc config set public_url`) to the address customers reach",
            );
        }
    }
    if !assets::novnc_embedded() {
        log(&format!(
            "warning: {}; console pages answer 503 until then",
            assets::NOVNC_MISSING
        ));
    }

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| Error::Failed(format!("cannot install signal handlers: {e}")))?;
    }
    let busy = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (live, busy) = (live.clone(), busy.clone());
        Arc::new(move |request: &http::Request| {
            busy.fetch_add(1, Ordering::SeqCst);
            let settings = live.get();
            let reply = match Ctx::new(settings) {
                Ok(mut ctx) if broker::is_ws(&request.path) => broker::serve(&mut ctx, request),
                Ok(mut ctx) => http::Reply::Answer(serve_one(&mut ctx, request)),
                Err(err) => http::Reply::Answer(err.to_json()),
            };
            busy.fetch_sub(1, Ordering::SeqCst);
            reply
        })
    };
    let limits = http::Limits {
        max_body: MAX_BODY,
        thread_name: "hcc-serve",
        error: request_error,
        uncapped: settings.trusted_proxies.clone(),
        upgraded_extra: 1,
    };
    let server = http::Server::new(listener, limits, handler)
        .map_err(|e| Error::Failed(format!("cannot serve on {bound}: {e}")))?;
    spawn("hcc-accept", move || server.run())?;
    let worker = match worker_lock {
        Some(lock) => {
            let (home, stop) = (home.clone(), stop.clone());
            let config = settings.config.clone();
            let cycle = args.worker.unwrap_or_default();
            Some(spawn("hcc-worker", move || {
                let outcome = crate::worker::run_locked(&home, &config, cycle, lock, stop.clone());
                // The worker ends on the same signal; if it ends on its own,
                // serving goes down with it so that systemd restarts both.
                stop.store(true, Ordering::SeqCst);
                outcome
            })?)
        }
        None => None,
    };
    let mut next_sweep = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if let Some(why) = triggers.due() {
            reloader.reload(why);
        }
        // Session ends that could not be written when they happened.
        broker::record_pending(&settings.stores);
        if Instant::now() >= next_sweep {
            broker::sweep(&settings.stores);
            next_sweep = Instant::now() + broker::SWEEP_EVERY;
        }
        std::thread::sleep(TICK);
    }
    log("stopping");
    pickup::withdraw(home);
    // Requests under way may finish (a console request waits on Hetzner).
    let deadline = Instant::now() + Duration::from_secs(10);
    while busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    broker::stop_all(&settings.stores);
    let outcome = match worker {
        Some(worker) => match worker.join() {
            Ok(Ok(_)) => Ok(ExitCode::SUCCESS),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(Error::Failed(
                "the worker thread stopped unexpectedly".into(),
            )),
        },
        None => Ok(ExitCode::SUCCESS),
    };
    log("stopped");
    outcome
}

/// A named thread; the system refusing one is an error, not a panic.
fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, Error> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map_err(|e| Error::Failed(format!("cannot start a thread: {e}")))
}

/// The pooled SQLite connections to the state directory's database: one
/// pool for requests, a small one of its own for live console sessions
/// and the main loop, so that requests holding every connection of theirs
/// (waiting on Hetzner) never keep a session from seeing that it must
/// stop, nor from recording its end.
#[derive(Clone)]
pub struct Stores {
    requests: Arc<pool::Pool<Store>>,
    sessions: Arc<pool::Pool<Store>>,
    db: std::path::PathBuf,
}

impl Stores {
    fn new(home: &Home) -> Stores {
        Stores {
            requests: Arc::new(pool::Pool::new(MAX_STORES, POOL_WAIT)),
            sessions: Arc::new(pool::Pool::new(SESSION_STORES, POOL_WAIT)),
            db: home.db_path(),
        }
    }

    /// A connection for a request.
    pub fn borrow(&self) -> Result<pool::Pooled<Store>, ApiError> {
        self.from(&self.requests, POOL_WAIT)
    }

    /// A connection for a console session's record (its end, the sweep).
    pub fn for_sessions(&self) -> Result<pool::Pooled<Store>, ApiError> {
        self.from(&self.sessions, POOL_WAIT)
    }

    /// A connection for a session if one can be had at once: for a live
    /// session's look at its row, which must never hold its relay up.
    pub fn try_for_sessions(&self) -> Option<pool::Pooled<Store>> {
        self.from(&self.sessions, Duration::ZERO).ok()
    }

    fn from(
        &self,
        pool: &Arc<pool::Pool<Store>>,
        wait: Duration,
    ) -> Result<pool::Pooled<Store>, ApiError> {
        let borrowed = pool.get_within(0, wait, || {
            Store::open(&self.db).and_then(|store| store.map_for_reading().map(|()| store))
        });
        match borrowed {
            Ok(store) => Ok(store),
            Err(pool::Shortage::Busy) => Err(busy()),
            Err(pool::Shortage::Failed(err)) => Err(ApiError::from(Error::Store(err))),
        }
    }
}

/// A SQLite connection from the pool, ready for requests.
fn borrow_store(settings: &Settings) -> Result<pool::Pooled<Store>, ApiError> {
    settings.stores.borrow()
}

/// Every pooled connection is in use for longer than a request waits.
fn busy() -> ApiError {
    ApiError::new(503, "busy", "hcc serve is busy; try again in a moment").retry_after(1)
}

/// A request the server could not read (too large, malformed).
fn request_error(status: u16, why: &str) -> http::Response {
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

fn serve_one(ctx: &mut Ctx, request: &http::Request) -> Reply {
    let started = Instant::now();
    let (incoming, client) = incoming(request, &ctx.settings.trusted_proxies);
    let ticket = client.map(|ip| ctx.settings.in_flight.enter(ip, MAX_IN_FLIGHT));
    let reply = match ticket {
        Some(None) => ApiError::new(
            429,
            "too_many_requests",
            format!("more than {MAX_IN_FLIGHT} requests under way from this address"),
        )
        .retry_after(1)
        .to_json(),
        _ => match same_site(ctx, request) {
            Ok(()) => route(ctx, &incoming),
            Err(err) => err.to_json(),
        },
    };
    drop(ticket);
    // The request log: one line per request.
    log(&format!(
        "{} {} {} {} {:.1} ms",
        incoming.remote,
        logged_method(&incoming.method),
        logged_path(&incoming.path),
        reply.status,
        started.elapsed().as_secs_f64() * 1000.0
    ));
    crate::metrics::http_request(reply.status);
    reply
}

/// A console page's POST or websocket upgrade comes from hcc's own
/// pages or an allowed origin (origin.rs); other requests pass.
fn same_site(ctx: &Ctx, request: &http::Request) -> Result<(), ApiError> {
    if !origin::applies(&request.method, &request.path) {
        return Ok(());
    }
    let seen = origin::Seen::of(request, &ctx.settings.trusted_proxies);
    origin::check(
        &ctx.settings,
        &seen,
        &request.method,
        &logged_path(&request.path),
    )
}

/// The request as the handlers see it, and the client's address.
fn incoming(request: &http::Request, trusted: &[IpAddr]) -> (Incoming, Option<IpAddr>) {
    let client = client::address(
        request.peer.map(|p| p.ip()),
        request.headers_named("x-forwarded-for"),
        trusted,
    );
    let incoming = Incoming {
        // Methods are case-sensitive (RFC 9110 9.1): `get` is not GET.
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        user_agent: request.header("user-agent").map(str::to_string),
        authorization: request.header("authorization").map(str::to_string),
        if_none_match: request.header("if-none-match").map(str::to_string),
        body: request.body.clone(),
        remote: client.map_or_else(|| "-".into(), |ip| ip.to_string()),
        // This machine, with no proxy relaying for someone else: a proxy's
        // headers make a request non-local, even from a trusted proxy.
        local: request
            .peer
            .is_some_and(|p| p.ip().to_canonical().is_loopback())
            && ["x-forwarded-for", "forwarded", "x-real-ip"]
                .iter()
                .all(|h| request.header(h).is_none()),
    };
    (incoming, client)
}

fn route(ctx: &mut Ctx, req: &Incoming) -> Reply {
    let path = req.path.as_str();
    if path == api::PREFIX || path.starts_with("/api/v1/") {
        return api::handle(ctx, req);
    }
    if path == metrics::PATH {
        return metrics::handle(ctx, req);
    }
    if path == "/c/power" {
        return match req.method.as_str() {
            "POST" => power::handle(ctx, req),
            _ => method_not_allowed("POST"),
        };
    }
    if path == "/c/refresh" {
        return match req.method.as_str() {
            "POST" => links::refresh(ctx, req),
            _ => method_not_allowed("POST"),
        };
    }
    if path == "/c/status" {
        return match req.method.as_str() {
            "POST" => links::status(ctx, req),
            _ => method_not_allowed("POST"),
        };
    }
    if let Some(token) = path.strip_prefix("/c/") {
        // Only a POST opens a link: mail scanners and link previews GET
        // or HEAD it first.
        return match req.method.as_str() {
            "GET" | "HEAD" => links::landing(ctx, token),
            "POST" => links::open(ctx, req, token),
            _ => method_not_allowed("GET, HEAD, POST"),
        };
    }
    match req.method.as_str() {
        "GET" | "HEAD" => pages::file(
            req,
            &ctx.settings.frame_ancestors,
            &ctx.settings.console_hosts,
        ),
        _ => method_not_allowed("GET, HEAD"),
    }
}

fn method_not_allowed(allow: &'static str) -> Reply {
    ApiError::new(405, "method_not_allowed", format!("use {allow}"))
        .to_json()
        .with_header("Allow", allow)
}

pub(crate) fn log(message: &str) {
    // Names and values in a message may come from anywhere: one line,
    // no escape sequences for whoever tails the log.
    eprintln!("hcc serve: {}", crate::output::one_line(message));
}
