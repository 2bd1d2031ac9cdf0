//! What the request handlers share: the settings snapshot (`Settings`,
//! which also carries what lives as long as the process and a re-read
//! keeps: the pools, the counts of requests under way, the rationing, the
//! brokered sessions of broker.rs, the catalog and metrics caches), a request as they
//! see it (`Incoming`), what a request runs with (`Ctx`: the settings, and
//! a SQLite connection and a Hetzner client borrowed from the pools on
//! first use), the pools of connections (`Stores`), and the log.

use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::reply::ApiError;
use super::{answers, broker, catalog, client, listing, pool, ration, server_metrics};
use crate::cloud::Cloud;
use crate::cloud::console::Credentials;
use crate::config;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::http;
use crate::log_format::{Level, Line};
use crate::store::{Checkpoints, SessionId, Store};

/// Request bodies larger than this are refused (413): every body hcc
/// takes is a small JSON object.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest a console request waits for the rate budget or a retry.
const MAX_HETZNER_WAIT: Duration = Duration::from_secs(5);
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
pub const MAX_IN_FLIGHT: usize = 64;

/// What every request handler reads: one snapshot of the settings (a
/// re-read makes a new one, reload.rs), and what the request threads share.
pub struct Settings {
    pub home: Home,
    /// Console links begin with this (no `/` at the end).
    pub public_url: String,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpAddr>,
    pub in_flight: Arc<client::InFlight>,
    /// Console credential fetches per server (ration.rs).
    pub ration: Arc<ration::Ration>,
    /// The SQLite connections and Hetzner clients requests and console
    /// sessions borrow (pool.rs).
    pub stores: Stores,
    /// The brokered console sessions of this process (broker.rs).
    pub consoles: Arc<broker::Consoles>,
    /// The catalog of server types, images and locations (catalog.rs).
    pub catalog: Arc<catalog::Cache>,
    /// Servers' metrics, one fetch per window (server_metrics.rs).
    pub server_metrics: Arc<server_metrics::Cache>,
    clouds: Arc<pool::Pool<Cloud>>,
    /// The server list, shared by the request threads.
    pub listing: listing::Listing,
    /// API keys and rendered servers, kept while the database is unchanged.
    pub answers: answers::Answers,
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
    pub fn new(
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
        let stores = previous.map_or_else(|| Stores::new(home), |p| p.stores.clone());
        Settings {
            home: home.clone(),
            public_url: public_url.trim_end_matches('/').to_string(),
            trusted_proxies: match previous {
                Some(previous) => previous.trusted_proxies.clone(),
                None => config.trusted_proxies.clone(),
            },
            in_flight: previous.map_or_else(Arc::default, |p| p.in_flight.clone()),
            ration: previous.map_or_else(Arc::default, |p| p.ration.clone()),
            stores: stores.clone(),
            catalog: previous.map_or_else(Arc::default, |p| p.catalog.clone()),
            server_metrics: previous.map_or_else(Arc::default, |p| p.server_metrics.clone()),
            consoles: previous.map_or_else(
                || Arc::new(broker::Consoles::new(stores)),
                |p| p.consoles.clone(),
            ),
            clouds: previous.map_or_else(
                || Arc::new(pool::Pool::new(MAX_CLOUDS, CLOUD_WAIT)),
                |p| p.clouds.clone(),
            ),
            // The list shows the `label` setting, which may have changed.
            listing: listing::Listing::default(),
            answers: answers::Answers::default(),
            config,
            generation: previous.map_or(0, |p| p.generation + 1),
        }
    }

    pub fn queue_allows(&self, word: &str) -> bool {
        self.config.queue_allows(word)
    }

    /// `console_mode` is `broker`: console pages connect to `/ws/`.
    pub fn console_broker(&self) -> bool {
        self.config.console_mode == config::ConsoleMode::Broker
    }

    /// How long a link stays valid, in seconds.
    pub fn link_ttl(&self) -> i64 {
        self.config.link_ttl.as_secs() as i64
    }

    /// How long a console page session lasts, in seconds.
    pub fn session_ttl(&self) -> i64 {
        self.config.session_ttl.as_secs() as i64
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
/// borrowed from the pools on first use. The connection is given back
/// before the request waits on Hetzner (and borrowed again if it is
/// needed after), so that requests waiting on Hetzner never hold every
/// connection; a request for an embedded file borrows none.
pub struct Ctx {
    pub settings: Arc<Settings>,
    /// The database's version this request's key was checked at
    /// (answers.rs): what else it reads of the kept answers is read at it.
    pub seen: Option<answers::Version>,
    store: OnceCell<pool::Pooled<Store>>,
    cloud: Option<pool::Pooled<Cloud>>,
}

impl Ctx {
    pub fn new(settings: Arc<Settings>) -> Ctx {
        Ctx {
            settings,
            seen: None,
            store: OnceCell::new(),
            cloud: None,
        }
    }

    /// The request's SQLite connection, borrowed from the pool on first
    /// use (503 `busy` when none is given back in time).
    pub fn store(&self) -> Result<&Store, ApiError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let borrowed = self.settings.stores.borrow()?;
        Ok(self.store.get_or_init(|| borrowed))
    }

    /// The request's SQLite connection, for a write in a transaction.
    pub fn store_mut(&mut self) -> Result<&mut Store, ApiError> {
        self.store()?;
        self.store
            .get_mut()
            .map(|store| &mut **store)
            .ok_or_else(|| ApiError::new(500, "internal", "no database connection"))
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
    pub fn take_page_fetch(&self, page: SessionId) -> Result<(), ApiError> {
        self.settings
            .ration
            .take(ration::Holder::Page(page), self.page_rate(), Instant::now())
            .map_err(ration::rationed)
    }

    /// Whether page session `page` may fetch now, taking nothing.
    pub fn page_fetch_allowed(&self, page: SessionId) -> Result<(), ApiError> {
        self.settings
            .ration
            .check(ration::Holder::Page(page), self.page_rate(), Instant::now())
            .map_err(ration::rationed)
    }

    fn page_rate(&self) -> ration::Rate {
        ration::Rate::per_page(self.settings.config.console_refresh_every)
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
        if let Some(state) = self.store()?.rate_state()? {
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
        // Not held while Hetzner (or the rate budget) is waited on.
        self.store.take();
        if self.cloud.is_none() {
            let settings = &self.settings;
            let borrowed = settings.clouds.get(settings.generation, || {
                // A person is waiting: one retry at most, and no long waits
                // for the budget (the answer says when to try again instead).
                Cloud::open_with(
                    &settings.home,
                    &settings.config,
                    Priority::Console,
                    1,
                    Checkpoints::Automatic,
                )
                .map(|mut cloud| {
                    cloud.client = cloud.client.with_max_wait(MAX_HETZNER_WAIT);
                    cloud
                })
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
    pub fn new(home: &Home) -> Stores {
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

/// Every pooled connection is in use for longer than a request waits.
pub fn busy() -> ApiError {
    ApiError::new(503, "busy", "hcc serve is busy; try again in a moment").retry_after(1)
}

/// The request as the handlers see it, and the client's address.
pub fn incoming(request: &http::Request, trusted: &[IpAddr]) -> (Incoming, Option<IpAddr>) {
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

pub(crate) fn log(message: &str) {
    // Names and values in a message may come from anywhere: one line,
    // no escape sequences for whoever tails the log (log_format.rs).
    Line::new("serve", Level::of(message), message).emit();
}

/// The access line of one request, in the `log_format` chosen: `method`
/// and `path` as redact.rs leaves them.
pub(crate) fn log_request(remote: &str, method: &str, path: &str, status: u16, ms: f64) {
    let line = Line::new(
        "serve",
        Level::Info,
        format!("{remote} {method} {path} {status} {ms:.1} ms"),
    );
    // A text line is its message: the fields would be built for nothing,
    // on every request.
    if crate::log_format::current() == crate::log_format::LogFormat::Text {
        line.emit();
        return;
    }
    line.event("request")
        .field("remote", remote)
        .field("method", method)
        .field("path", path)
        .field("status", status)
        .field("ms", (ms * 10.0).round() / 10.0)
        .emit();
}
