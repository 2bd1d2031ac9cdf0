//! A small HTTP/1.1 server: one thread per connection, keep-alive,
//! `Content-Length` and chunked request bodies, and answers the handler
//! builds in memory.
//!
//! The simulator has its own instead of tiny_http's for one reason: the
//! `reset` fault must close a connection without any answer, so the client
//! sees the connection drop. tiny_http owns the socket and always answers
//! (a dropped request becomes a 500; `into_writer` leaves the connection
//! open and the client waiting). Owning the socket also gives the console
//! websocket its stream later.
//!
//! Limits keep a misbehaving client from holding much: 64 KiB of request
//! head, 1 MiB of body, connections idle for two minutes are closed, and
//! at most [`MAX_CONNECTIONS`] are served at once.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const MAX_HEAD: u64 = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;
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
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        let mut text = body.to_string().into_bytes();
        text.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: text,
        }
    }

    pub fn html(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/html",
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }
}

pub enum Reply {
    Answer(Response),
    /// Close the connection without a word.
    Reset,
}

/// Serves connections forever, each on its own thread.
pub fn serve(listener: TcpListener, handler: Arc<dyn Fn(&Request) -> Reply + Send + Sync>) {
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
            .name("sim-conn".into())
            .spawn(move || {
                connection(stream, handler.as_ref());
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

fn connection(stream: TcpStream, handler: &(dyn Fn(&Request) -> Reply + Send + Sync)) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let (request, http10) = match read_request(&mut reader, &mut writer) {
            Ok(r) => r,
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(ReadError::Bad(status, why)) => {
                let response = Response::html(status, why);
                let _ = write_response(&mut writer, &response, true);
                return;
            }
        };
        let close = request.wants_close(http10);
        match handler(&request) {
            Reply::Reset => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Reply::Answer(response) => {
                if write_response(&mut writer, &response, close).is_err() || close {
                    return;
                }
            }
        }
    }
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
    if length > MAX_BODY {
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
        read_chunked(reader, &mut budget)?
    } else {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).map_err(|_| ReadError::Io)?;
        body
    };
    Ok((request, http10))
}

fn read_chunked(reader: &mut BufReader<TcpStream>, budget: &mut u64) -> Result<Vec<u8>, ReadError> {
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
        if body.len() + size > MAX_BODY {
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

fn write_response(writer: &mut TcpStream, response: &Response, close: bool) -> io::Result<()> {
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
    out.extend_from_slice(&response.body);
    writer.write_all(&out)?;
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
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
