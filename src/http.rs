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
//! head, a body limit per server, connections idle for two minutes are
//! closed, and at most [`MAX_CONNECTIONS`] are served at once.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const MAX_HEAD: u64 = 64 * 1024;
const IDLE: Duration = Duration::from_secs(120);
const MAX_CONNECTIONS: usize = 512;

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

/// Serves connections forever, each on its own thread.
pub fn serve(
    listener: TcpListener,
    limits: Limits,
    handler: Arc<dyn Fn(&Request) -> Reply + Send + Sync>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of file descriptors and the like: let some close.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let handler = Arc::clone(&handler);
        let open_here = Arc::clone(&open);
        let spawned = std::thread::Builder::new()
            .name(limits.thread_name.into())
            .spawn(move || {
                connection(stream, &limits, handler.as_ref());
                open_here.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

enum ReadError {
    /// The client closed the connection between requests.
    Closed,
    Io,
    Bad(u16, &'static str),
}

fn connection(
    stream: TcpStream,
    limits: &Limits,
    handler: &(dyn Fn(&Request) -> Reply + Send + Sync),
) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
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
fn linger(reader: &mut BufReader<TcpStream>, writer: &TcpStream) {
    let _ = writer.shutdown(Shutdown::Write);
    let _ = writer.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = io::copy(&mut reader.by_ref().take(16 * 1024 * 1024), &mut io::sink());
}

/// One line of the head, without its line end.
fn read_line(reader: &mut BufReader<TcpStream>, budget: &mut u64) -> Result<String, ReadError> {
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
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    max_body: usize,
) -> Result<(Request, bool), ReadError> {
    let mut budget = MAX_HEAD;
    let mut line = read_line(reader, &mut budget)?;
    // RFC 9112 2.2: ignore empty lines before the request line.
    while line.is_empty() {
        line = read_line(reader, &mut budget)?;
    }
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
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
        peer: None,
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = match request.header("content-length") {
        None => 0,
        Some(n) => n
            .parse::<usize>()
            .map_err(|_| ReadError::Bad(400, "bad Content-Length\n"))?,
    };
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

fn read_chunked(
    reader: &mut BufReader<TcpStream>,
    budget: &mut u64,
    max_body: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader, budget)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "bad chunk size\n"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader, budget)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > max_body {
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
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        423 => "Locked",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
