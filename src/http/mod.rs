//! A small HTTP/1.1 server for `hcc sim` and `hcc serve`: keep-alive,
//! `Content-Length` and chunked request bodies, and answers the handler
//! builds in memory.
//!
//! One event-loop thread ([`server`]) holds every connection that waits
//! for a request or is sending it: idle and slow clients cost no thread
//! and are closed within seconds. A connection whose request (head and
//! body, [`head`], [`body`]) has arrived is handed to a worker thread
//! ([`pool`], [`exchange`]) for the handler and the answer. The worker
//! then waits a moment ([`exchange::STAY`], while no other request waits
//! for a thread) for the connection's next request and runs it itself if
//! it arrives whole without a body: a client sending request after
//! request costs no trip through the loop. Otherwise the connection goes
//! back to the loop.
//!
//! Why not tiny_http: its connection pool (0.12) can leave a new connection
//! unserved while its threads sit in idle keep-alive connections, which
//! browsers open six at a time: a page load then hangs. The simulator also
//! needs to close a connection without any answer (the `reset` fault),
//! which tiny_http cannot do.
//!
//! Limits keep a misbehaving client from holding much: 64 KiB of request
//! head, parsed by httparse ([`head`]); a body limit per server;
//! [`server::IDLE`] to begin a request, [`server::HEAD_TIME`] to finish
//! its head and 15 seconds for all of it (however slowly it trickles in),
//! 30 to take an answer; at most [`MAX_CONNECTIONS`] connections, fewer
//! with few file descriptors (the one idle longest makes way for a new
//! one), and [`MAX_PER_PEER`] from one address other than this machine's
//! or a trusted proxy's. Request framing is strict (one Content-Length, digits only; no transfer coding but
//! `chunked`; one `Authorization`; no control characters in a header), so
//! a proxy in front and hcc never disagree on where a request ends or what
//! it says.

mod body;
mod exchange;
mod head;
mod pool;
mod server;
pub mod websocket;

pub use server::Server;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

/// Connections at once; far more than any client needs. Fewer when the
/// limit of open files is low: [`SPARE_FDS`] stay for everything else.
const MAX_CONNECTIONS: usize = 16 * 1024;
/// File descriptors kept from connections: each worker thread's SQLite
/// connection takes three, the client to Hetzner some more.
const SPARE_FDS: usize = 256;
/// Connections from one address (IPv6: one /64); this machine's and
/// trusted proxies' (every client behind a proxy arrives from it) are
/// limited only by [`MAX_CONNECTIONS`].
const MAX_PER_PEER: usize = 32;

/// What answers requests; runs on worker threads.
pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// An HTTP/1.0 request (which cannot upgrade: RFC 9110 7.8).
    pub http10: bool,
}

impl Request {
    /// The first header of that name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the headers of that name, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self, http10: bool) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        match connection.as_deref() {
            Some(c) if c.contains("close") => true,
            Some(c) if c.contains("keep-alive") => false,
            _ => http10,
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

/// An answer's body: built for this answer, embedded in the binary, or
/// shared with other answers (a rendering reused while its data holds).
#[derive(Debug, Clone)]
pub enum Body {
    Owned(Vec<u8>),
    Static(&'static [u8]),
    Shared(Arc<Vec<u8>>),
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Body::Owned(bytes) => bytes,
            Body::Static(bytes) => bytes,
            Body::Shared(bytes) => bytes,
        }
    }
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        let mut text = body.to_string().into_bytes();
        text.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Body::Owned(text),
        }
    }

    pub fn html(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/html",
            headers: Vec::new(),
            body: Body::Owned(body.as_bytes().to_vec()),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

pub enum Reply {
    Answer(Response),
    /// Close the connection without a word.
    Reset,
    /// Switch protocols (a websocket): `response` (a 101) is written, then
    /// the connection leaves HTTP for good and `then` runs on a thread of
    /// its own with it ([`websocket::upgrade`] builds this).
    Upgrade {
        response: Response,
        then: Box<dyn FnOnce(Upgraded) + Send>,
    },
}

/// A connection handed over by [`Reply::Upgrade`], in blocking mode
/// without timeouts: its new owner sets what it needs.
pub struct Upgraded {
    pub stream: TcpStream,
    /// Bytes the client sent after its request, already read.
    pub rest: Vec<u8>,
    pub peer: Option<SocketAddr>,
}

/// How one server treats its clients.
#[derive(Clone)]
pub struct Limits {
    /// Larger request bodies are refused with 413.
    pub max_body: usize,
    /// The name of worker threads (seen in `top -H`, gdb).
    pub thread_name: &'static str,
    /// The answer to a request that cannot be read (400, 413, 431, 505).
    pub error: fn(u16, &str) -> Response,
    /// Addresses besides loopback whose connections are not capped per
    /// address: proxies every client comes through.
    pub uncapped: Vec<IpAddr>,
    /// Connection slots an upgraded connection holds besides its own:
    /// the descriptors its session opens (`hcc serve`'s broker: the
    /// connection to the console), so that the connection cap counts them.
    pub upgraded_extra: usize,
}

/// Plain-text errors.
pub fn text_error(status: u16, why: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        headers: Vec::new(),
        body: Body::Owned(format!("{why}\n").into_bytes()),
    }
}

/// Who holds connection slots; a slot is given back when its guard drops,
/// wherever the connection is then (loop, worker, or a panic unwinding).
struct Slots {
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
    max: usize,
    uncapped: Vec<IpAddr>,
}

pub struct Slot {
    slots: Arc<Slots>,
    peer: Option<IpAddr>,
}

impl Slots {
    /// Slots for at most `max` connections.
    fn new(max: usize, uncapped: Vec<IpAddr>) -> Slots {
        Slots {
            counts: Mutex::default(),
            max,
            uncapped,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn full(&self) -> bool {
        self.lock().0 >= self.max
    }

    fn take(self: &Arc<Slots>, ip: IpAddr) -> Option<Slot> {
        let mut counts = self.lock();
        let (total, per_peer) = &mut *counts;
        if *total >= self.max {
            return None;
        }
        let limited = !ip.is_loopback() && !self.uncapped.contains(&ip);
        let ip = per_peer_key(ip);
        if limited {
            let n = per_peer.entry(ip).or_insert(0);
            if *n >= MAX_PER_PEER {
                return None;
            }
            *n += 1;
        }
        *total += 1;
        Some(Slot {
            slots: Arc::clone(self),
            peer: limited.then_some(ip),
        })
    }
}

impl Slot {
    /// Another slot counted with this one's connection (not against its
    /// address): for descriptors the connection's session opens. None at
    /// the cap.
    fn another(&self) -> Option<Slot> {
        let mut counts = self.slots.lock();
        if counts.0 >= self.slots.max {
            return None;
        }
        counts.0 += 1;
        Some(Slot {
            slots: Arc::clone(&self.slots),
            peer: None,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.lock();
        let (total, per_peer) = &mut *counts;
        *total = total.saturating_sub(1);
        if let Some(ip) = self.peer
            && let Some(n) = per_peer.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                per_peer.remove(&ip);
            }
        }
    }
}

/// What the per-address cap counts: an IPv4 address, or an IPv6 /64 (one
/// customer's network; its addresses cost nothing to switch between).
fn per_peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// The connections this process may hold, from its limit of open files
/// (raised to the hard limit when the server started): what other limits
/// that cost descriptors are derived from.
pub fn connection_cap() -> usize {
    use rustix::process::{Resource, getrlimit};
    let files = getrlimit(Resource::Nofile)
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    files.saturating_sub(SPARE_FDS).clamp(16, MAX_CONNECTIONS)
}

/// Raises this process's soft limit of open files to its hard limit, so
/// that thousands of connections fit (the soft limit is often 1024), and
/// says how many connections may be held then.
fn connection_limit() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        // Left as it is when that fails: fewer connections are held.
        let _ = setrlimit(Resource::Nofile, raised);
    }
    connection_cap()
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        423 => "Locked",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cap_each_remote_address_but_not_loopback_or_proxies() {
        let ip = |text: &str| -> IpAddr { text.parse().unwrap() };
        let slots = Arc::new(Slots::new(MAX_PER_PEER + 8, vec![ip("10.0.0.5")]));
        let remote: Vec<Slot> = (0..MAX_PER_PEER)
            .map(|_| slots.take(ip("203.0.113.9")).expect("a slot"))
            .collect();
        assert!(slots.take(ip("203.0.113.9")).is_none());
        // Beyond the per-address cap: this machine and the trusted proxy.
        let local: Vec<Slot> = (0..4)
            .filter_map(|_| slots.take(ip("127.0.0.1")))
            .chain((0..4).filter_map(|_| slots.take(ip("10.0.0.5"))))
            .collect();
        assert_eq!(local.len(), 8);
        assert!(slots.full());
        assert!(slots.take(ip("::1")).is_none());
        drop(local);
        assert!(!slots.full());
        drop(remote);
        assert!(slots.take(ip("203.0.113.9")).is_some());
        // One IPv6 /64 counts as one address.
        let slots = Arc::new(Slots::new(100, Vec::new()));
        let net: Vec<Slot> = (0..MAX_PER_PEER)
            .filter_map(|i| slots.take(ip(&format!("2001:db8::{:x}", i + 1))))
            .collect();
        assert_eq!(net.len(), MAX_PER_PEER);
        assert!(slots.take(ip("2001:db8::ffff:1")).is_none());
        assert!(slots.take(ip("2001:db8:0:1::1")).is_some());
    }
}
