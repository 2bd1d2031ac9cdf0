//! A small HTTP/1.1 server for `hcc sim` and `hcc serve`: one thread per
//! connection, keep-alive, `Content-Length` and chunked request bodies,
//! and answers the handler builds in memory.
//!
//! Why not tiny_http: its connection pool (0.12) can leave a new connection
//! unserved while its threads sit in idle keep-alive connections, which
//! browsers open six at a time: a page load then hangs. The simulator also
//! needs to close a connection without any answer (the `reset` fault),
//! which tiny_http cannot do, and owning the socket gives the console
//! websocket its stream.
//!
//! Limits keep a misbehaving client from holding much: 64 KiB of request
//! head, a body limit per server, two minutes to send a request line and
//! [`REQUEST_TIME`] for the rest of the request (however slowly it
//! trickles in), [`WRITE_TIME`] for the client to take an answer, at most
//! [`MAX_CONNECTIONS`] connections at once and [`MAX_PER_PEER`] from one
//! address other than this machine's. Request framing is strict (one
//! Content-Length, digits only; no transfer coding but `chunked`), so a
//! proxy in front and hcc never disagree on where a request ends.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAX_HEAD: u64 = 64 * 1024;
/// How long a connection may wait for its next request line.
const IDLE: Duration = Duration::from_secs(120);
/// How long the rest of a request (headers, body) may take to arrive.
const REQUEST_TIME: Duration = Duration::from_secs(15);
/// How long a client may take to read an answer.
const WRITE_TIME: Duration = Duration::from_secs(30);
const MAX_CONNECTIONS: usize = 512;
/// Connections from one address; this machine's (a proxy in front) are
/// limited only by [`MAX_CONNECTIONS`].
const MAX_PER_PEER: usize = 32;
/// Hex digits of a chunk size: 16 already exceed any body limit.
const MAX_CHUNK_DIGITS: usize = 16;

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
}

impl Request {
    /// The first header of that name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
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
    pub body: Cow<'static, [u8]>,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        let mut text = body.to_string().into_bytes();
        text.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Cow::Owned(text),
        }
    }

    pub fn html(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/html",
            headers: Vec::new(),
            body: Cow::Owned(body.as_bytes().to_vec()),
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
}

/// How one server treats its clients.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Larger request bodies are refused with 413.
    pub max_body: usize,
    /// The name of connection threads (seen in `top -H`, gdb).
    pub thread_name: &'static str,
    /// The answer to a request that cannot be read (400, 413, 431, 505).
    pub error: fn(u16, &str) -> Response,
}

/// Plain-text errors.
pub fn text_error(status: u16, why: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        headers: Vec::new(),
        body: Cow::Owned(format!("{why}\n").into_bytes()),
    }
}

/// Who holds connection slots; a slot is given back when its guard drops,
/// also when a connection thread panics.
#[derive(Default)]
struct Slots {
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

struct Slot {
    slots: Arc<Slots>,
    peer: Option<IpAddr>,
}

impl Slots {
    fn take(self: &Arc<Slots>, peer: Option<IpAddr>) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_peer) = &mut *counts;
        if *total >= MAX_CONNECTIONS {
            return None;
        }
        let limited = peer.filter(|ip| !ip.is_loopback());
        if let Some(ip) = limited {
            let n = per_peer.entry(ip).or_insert(0);
            if *n >= MAX_PER_PEER {
                return None;
            }
            *n += 1;
        }
        *total += 1;
        Some(Slot {
            slots: Arc::clone(self),
            peer: limited,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
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

/// Serves connections forever, each on its own thread.
pub fn serve(
    listener: TcpListener,
    limits: Limits,
    handler: Arc<dyn Fn(&Request) -> Reply + Send + Sync>,
) {
    let slots = Arc::new(Slots::default());
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of file descriptors and the like: let some close.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let peer = stream.peer_addr().ok().map(|a| a.ip());
        let Some(slot) = slots.take(peer) else {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        };
        let handler = Arc::clone(&handler);
        let _ = std::thread::Builder::new()
            .name(limits.thread_name.into())
            .spawn(move || {
                let _slot = slot;
                connection(stream, &limits, handler.as_ref());
            });
    }
}

enum ReadError {
    /// The client closed the connection between requests.
    Closed,
    Io,
    Bad(u16, &'static str),
}

/// The read side of a connection, with a deadline for what is being read
/// now: a client that trickles a byte now and then cannot hold it longer.
struct Timed {
    stream: TcpStream,
    deadline: Instant,
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

type Reader = BufReader<Timed>;

fn connection(
    stream: TcpStream,
    limits: &Limits,
    handler: &(dyn Fn(&Request) -> Reply + Send + Sync),
) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIME));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(Timed {
        stream: read_half,
        deadline: Instant::now() + IDLE,
    });
    let mut writer = stream;
    loop {
        reader.get_mut().deadline = Instant::now() + IDLE;
        let (mut request, http10) = match read_request(&mut reader, &mut writer, limits.max_body) {
            Ok(r) => r,
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(ReadError::Bad(status, why)) => {
                let response = (limits.error)(status, why.trim_end());
                let _ = write_response(&mut writer, &response, true, false);
                linger(&mut reader, &writer);
                return;
            }
        };
        request.peer = peer;
        let head_only = request.method == "HEAD";
        let close = request.wants_close(http10);
        match handler(&request) {
            Reply::Reset => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Reply::Answer(response) => {
                if write_response(&mut writer, &response, close, head_only).is_err() || close {
                    return;
                }
            }
        }
    }
}

/// Closes after an error answer without losing it: a client still sending
/// its (refused) body would get a reset that can swallow the answer, so
/// what it sends is read and dropped for a moment first.
fn linger(reader: &mut Reader, writer: &TcpStream) {
    let _ = writer.shutdown(Shutdown::Write);
    reader.get_mut().deadline = Instant::now() + Duration::from_secs(2);
    let _ = io::copy(&mut reader.by_ref().take(16 * 1024 * 1024), &mut io::sink());
}

/// One line of the head, without its line end.
fn read_line(reader: &mut Reader, budget: &mut u64) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget)
        .read_until(b'\n', &mut line)
        .map_err(|_| ReadError::Io)?;
    *budget -= n as u64;
    if n == 0 {
        return Err(ReadError::Closed);
    }
    if !line.ends_with(b"\n") {
        return Err(ReadError::Bad(431, "request head too large\n"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Bad(400, "request head is not UTF-8\n"))
}

fn read_request(
    reader: &mut Reader,
    writer: &mut TcpStream,
    max_body: usize,
) -> Result<(Request, bool), ReadError> {
    let mut budget = MAX_HEAD;
    let mut line = read_line(reader, &mut budget)?;
    // RFC 9112 2.2: ignore empty lines before the request line.
    while line.is_empty() {
        line = read_line(reader, &mut budget)?;
    }
    // The request has begun: the rest must follow soon.
    let soon = Instant::now() + REQUEST_TIME;
    let timed = reader.get_mut();
    timed.deadline = timed.deadline.min(soon);
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(ReadError::Bad(400, "bad request line\n"));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Bad(505, "HTTP/1.0 and HTTP/1.1 only\n")),
    };
    let mut headers = Vec::new();
    loop {
        let line = match read_line(reader, &mut budget) {
            Err(ReadError::Closed) => return Err(ReadError::Io),
            other => other?,
        };
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(ReadError::Bad(400, "bad header line\n"))?;
        // RFC 9112 5.1: no whitespace between a field name and its colon.
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(ReadError::Bad(400, "bad header line\n"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    // The absolute form (`GET http://host/path`) names the path after the
    // authority.
    let target = match target.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest.find('/').map_or("/", |at| &rest[at..])
        }
        _ => target,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
        peer: None,
    };
    let (chunked, length) = framing(&request)?;
    if length > max_body {
        return Err(ReadError::Bad(413, "request body too large\n"));
    }
    if (chunked || length > 0)
        && request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadError::Io)?;
    }
    request.body = if chunked {
        read_chunked(reader, &mut budget, max_body)?
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).map_err(|_| ReadError::Io)?;
        body
    };
    Ok((request, http10))
}

/// Where the body ends: chunked, or a length (0 without one). Anything a
/// proxy might read differently is refused.
fn framing(request: &Request) -> Result<(bool, usize), ReadError> {
    let named = |name: &str| -> Vec<&str> {
        request
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let codings = named("transfer-encoding");
    let lengths = named("content-length");
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err(ReadError::Bad(
                400,
                "both Transfer-Encoding and Content-Length\n",
            ));
        }
        if codings.len() > 1 || !codings[0].trim().eq_ignore_ascii_case("chunked") {
            return Err(ReadError::Bad(
                501,
                "only the chunked transfer coding is supported\n",
            ));
        }
        return Ok((true, 0));
    }
    let Some(first) = lengths.first() else {
        return Ok((false, 0));
    };
    let digits = |v: &str| !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit());
    if !lengths.iter().all(|v| digits(v) && v == first) {
        return Err(ReadError::Bad(400, "bad Content-Length\n"));
    }
    let length = first
        .parse::<usize>()
        .map_err(|_| ReadError::Bad(400, "bad Content-Length\n"))?;
    Ok((false, length))
}

fn read_chunked(
    reader: &mut Reader,
    budget: &mut u64,
    max_body: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader, budget)?;
        let size = line.split(';').next().unwrap_or("").trim();
        if size.is_empty() || size.len() > MAX_CHUNK_DIGITS {
            return Err(ReadError::Bad(400, "bad chunk size\n"));
        }
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "bad chunk size\n"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader, budget)?.is_empty() {}
            return Ok(body);
        }
        if size > max_body.saturating_sub(body.len()) {
            return Err(ReadError::Bad(413, "request body too large\n"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|_| ReadError::Io)?;
        read_line(reader, budget)?;
    }
}

/// Writes the answer in one piece; for HEAD without the body.
fn write_response(
    writer: &mut TcpStream,
    response: &Response,
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    )?;
    for (name, value) in &response.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    writer.write_all(&out)?;
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
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
