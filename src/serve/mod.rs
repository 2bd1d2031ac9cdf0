//! `hcc serve`: console pages, one-time console links and the JSON API,
//! on tiny_http.
//!
//! A fixed pool of threads takes requests; each has its own SQLite
//! connection and, once a console is asked for, its own Hetzner client, so
//! nothing is shared but the settings. Routes: `/api/v1/...` (api.rs),
//! `/c/TOKEN` and `/c/refresh` (links.rs), everything else is an embedded
//! file (pages.rs). One log line per request on stderr: no query string,
//! no link token, no key.

mod api;
mod auth;
mod links;
mod pages;
mod reply;

pub use auth::{check_key_name, hash as hash_secret, new_api_key};

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::assets;
use crate::cli::ServeArgs;
use crate::cloud::Cloud;
use crate::config::Config;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::store::Store;
use crate::verb::shown;
use reply::{ApiError, Reply};

/// Request bodies larger than this are refused (413): every body hcc
/// takes is a small JSON object.
const MAX_BODY: usize = 64 * 1024;
/// Threads taking requests. A console request waits on Hetzner, so more
/// than the cores, to keep reads flowing while some wait.
const THREADS: usize = 8;
/// How often an idle thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(200);

/// What every request handler reads; fixed at start.
pub struct Settings {
    pub home: Home,
    pub public_url: String,
    pub link_ttl: i64,
    pub session_ttl: i64,
    pub frame_ancestors: String,
    pub label: String,
    pub prefix: String,
    config: Config,
}

impl Settings {
    fn load(home: &Home, public_url: String) -> Result<Settings, Error> {
        let config = Config::load(&home.config_path())?;
        let get = |key: &str| crate::cloud::setting(&config, key).unwrap_or_default();
        Ok(Settings {
            home: home.clone(),
            public_url: public_url.trim_end_matches('/').to_string(),
            link_ttl: config.count_setting("link_ttl") as i64,
            session_ttl: config.count_setting("session_ttl") as i64,
            frame_ancestors: get("frame_ancestors"),
            label: get("label"),
            prefix: get("prefix"),
            config,
        })
    }

    pub fn queue_allows(&self, word: &str) -> bool {
        self.config.queue_allows(word)
    }

    /// A setting's value (defaults included), e.g. `server_type`.
    pub fn default(&self, key: &str) -> String {
        crate::cloud::setting(&self.config, key).unwrap_or_default()
    }
}

/// One request, read and checked: what the handlers see.
pub struct Incoming {
    pub method: String,
    /// Without the query string.
    pub path: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
    /// The client's address (the proxy's `X-Forwarded-For` when the
    /// connection comes from this machine).
    pub remote: String,
}

/// A request thread's own state.
pub struct Ctx {
    pub settings: Arc<Settings>,
    pub store: Store,
    cloud: Option<Cloud>,
}

/// Console credentials just handed out by Hetzner.
pub struct Fresh {
    pub wss_url: String,
    pub password: String,
    pub issued_at: f64,
}

impl Ctx {
    fn new(settings: Arc<Settings>, store: Store) -> Ctx {
        Ctx {
            settings,
            store,
            cloud: None,
        }
    }

    /// Fresh console credentials for a managed server (id from the local
    /// table), stored in its row as `hcc console` does.
    pub fn request_console(&mut self, name: &str, id: i64) -> Result<Fresh, ApiError> {
        if self.cloud.is_none() {
            // One retry at most: a person is waiting.
            self.cloud = Some(Cloud::open_with(
                &self.settings.home,
                Priority::Interactive,
                1,
            )?);
        }
        let Some(cloud) = self.cloud.as_ref() else {
            return Err(ApiError::new(500, "internal", "no Hetzner client"));
        };
        let console = cloud.client.request_console(id).map_err(Error::Hetzner)?;
        let issued_at = self
            .store
            .record_console(name, &console.wss_url, &console.password)?;
        Ok(Fresh {
            wss_url: console.wss_url,
            password: console.password,
            issued_at,
        })
    }
}

pub fn run(home: &Home, args: ServeArgs) -> Result<ExitCode, Error> {
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
    let worker_lock = if args.worker {
        Some(crate::worker::lock(home)?)
    } else {
        None
    };
    let server = tiny_http::Server::http(addr)
        .map_err(|e| Error::Failed(format!("cannot listen on {addr}: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Failed("the listening socket has no IP address".into()))?;
    let config = Config::load(&home.config_path())?;
    let public_url = args
        .public_url
        .clone()
        .or_else(|| crate::cloud::setting(&config, "public_url").filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("http://{bound}"));
    let settings = Arc::new(Settings::load(home, public_url)?);
    log(&format!(
        "listening on http://{bound} (pid {}, console links {}/c/...)",
        std::process::id(),
        settings.public_url
    ));
    if exposed {
        log(
            "warning: this address is reachable from other machines and hcc speaks plain HTTP: put a TLS proxy in front (scripts/nginx/hcc.conf)",
        );
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
    let server = Arc::new(server);
    let mut threads = Vec::new();
    for _ in 0..THREADS {
        let store = Store::open(&home.db_path())?;
        let (server, stop, settings) = (server.clone(), stop.clone(), settings.clone());
        threads.push(std::thread::spawn(move || {
            // The Hetzner client stays on its thread: it is not Send.
            let mut ctx = Ctx::new(settings, store);
            while !stop.load(Ordering::SeqCst) {
                match server.recv_timeout(TICK) {
                    Ok(Some(request)) => serve_one(&mut ctx, request),
                    Ok(None) => {}
                    Err(e) => {
                        log(&format!("cannot accept a request: {e}"));
                        std::thread::sleep(TICK);
                    }
                }
            }
        }));
    }
    let worker = worker_lock.map(|lock| {
        let (home, stop) = (home.clone(), stop.clone());
        let cycle = Duration::from_secs(args.cycle);
        std::thread::spawn(move || {
            let outcome = crate::worker::run_locked(&home, cycle, lock);
            // The worker ends on the same signal; if it ends on its own,
            // serving goes down with it so that systemd restarts both.
            stop.store(true, Ordering::SeqCst);
            outcome
        })
    });
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(TICK);
    }
    log("stopping");
    for thread in threads {
        let _ = thread.join();
    }
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

fn serve_one(ctx: &mut Ctx, mut request: tiny_http::Request) {
    let started = Instant::now();
    let (incoming, early) = read_request(&mut request);
    let reply = match early {
        Some(reply) => reply,
        None => route(ctx, &incoming),
    };
    log(&format!(
        "{} {} {} {} {:.1} ms",
        incoming.remote,
        shown(&incoming.method),
        logged_path(&incoming.path),
        reply.status,
        started.elapsed().as_secs_f64() * 1000.0
    ));
    respond(request, reply);
}

/// The request's parts; a reply at once when the body is too large.
fn read_request(request: &mut tiny_http::Request) -> (Incoming, Option<Reply>) {
    let authorization = header(request, "Authorization");
    let forwarded = header(request, "X-Forwarded-For");
    let peer = request.remote_addr().copied();
    let remote = match (peer, forwarded) {
        (Some(peer), Some(list)) if peer.ip().is_loopback() => list
            .split(',')
            .next()
            .map(str::trim)
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_string)
            .unwrap_or_else(|| peer.ip().to_string()),
        (Some(peer), _) => peer.ip().to_string(),
        (None, _) => "-".into(),
    };
    let url = request.url();
    let path = url.split(['?', '#']).next().unwrap_or("/").to_string();
    let mut incoming = Incoming {
        method: request.method().as_str().to_ascii_uppercase(),
        path,
        authorization,
        body: Vec::new(),
        remote,
    };
    let too_large = || {
        Some(
            ApiError::new(
                413,
                "too_large",
                format!("request bodies are limited to {} KiB", MAX_BODY / 1024),
            )
            .to_json(),
        )
    };
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return (incoming, too_large());
    }
    let mut body = Vec::new();
    if let Err(e) = request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
    {
        let err = ApiError::bad_request("bad_body", format!("cannot read the request body: {e}"));
        return (incoming, Some(err.to_json()));
    }
    if body.len() > MAX_BODY {
        return (incoming, too_large());
    }
    incoming.body = body;
    (incoming, None)
}

fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

fn route(ctx: &mut Ctx, req: &Incoming) -> Reply {
    let path = req.path.as_str();
    if path == api::PREFIX || path.starts_with("/api/v1/") {
        return api::handle(ctx, req);
    }
    if path == "/c/refresh" {
        return match req.method.as_str() {
            "POST" => links::refresh(ctx, req),
            _ => method_not_allowed("POST"),
        };
    }
    if let Some(token) = path.strip_prefix("/c/") {
        // Only GET opens a link: a HEAD from a link preview must not use it up.
        return match req.method.as_str() {
            "GET" => links::open(ctx, req, token),
            _ => method_not_allowed("GET"),
        };
    }
    match req.method.as_str() {
        "GET" | "HEAD" => pages::file(req, &ctx.settings.frame_ancestors),
        _ => method_not_allowed("GET, HEAD"),
    }
}

fn method_not_allowed(allow: &'static str) -> Reply {
    ApiError::new(405, "method_not_allowed", format!("use {allow}"))
        .to_json()
        .with_header("Allow", allow)
}

/// The path as logged: a link's token never reaches the log.
fn logged_path(path: &str) -> String {
    match path.strip_prefix("/c/") {
        Some("refresh") => path.to_string(),
        Some(_) => "/c/<token>".into(),
        None => shown(path),
    }
}

fn respond(request: tiny_http::Request, reply: Reply) {
    let mut headers = Vec::with_capacity(reply.headers.len() + 1);
    let mut push = |name: &str, value: &str| {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            headers.push(header);
        }
    };
    push("Content-Type", reply.content_type);
    for (name, value) in &reply.headers {
        push(name, value);
    }
    let length = reply.body.len();
    let response = tiny_http::Response::new(
        tiny_http::StatusCode(reply.status),
        headers,
        std::io::Cursor::new(reply.body),
        Some(length),
        None,
    );
    // The client may be gone already; nothing to do about it.
    let _ = request.respond(response);
}

fn log(message: &str) {
    eprintln!("hcc serve: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_never_reach_the_log() {
        assert_eq!(logged_path("/c/0123abcd"), "/c/<token>");
        assert_eq!(logged_path("/c/refresh"), "/c/refresh");
        assert_eq!(logged_path("/api/v1/servers"), "/api/v1/servers");
    }
}
