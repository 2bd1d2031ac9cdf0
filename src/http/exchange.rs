//! One request on a worker thread: the head and, as a rule, the body have
//! arrived (the event loop read them); here the body is parsed, the handler
//! runs and the answer is written, with blocking I/O under deadlines. A connection that stays
//! open goes back to the loop to wait for its next request there.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::body::{self, Framing};
use super::head::{Head, Refusal};
use super::{Handler, Limits, Reply, Request, Response, Slot, Upgraded};

/// How long the body of a request may take after its head began, however
/// slowly it trickles in.
pub const REQUEST_TIME: Duration = Duration::from_secs(15);
/// How long a client may take to read an answer.
const WRITE_TIME: Duration = Duration::from_secs(30);
/// The stack of an upgraded connection's thread: a relay needs little,
/// and thousands of sessions should not reserve megabytes each.
const UPGRADED_STACK: usize = 256 * 1024;
/// How long a refused request's remaining bytes are read and dropped.
const LINGER: Duration = Duration::from_secs(2);
/// Hex digits of a chunk size: 16 already exceed any body limit.
const MAX_CHUNK_DIGITS: usize = 16;
/// Chunk-size and trailer lines of a chunked body, in all.
const MAX_CHUNK_LINES: u64 = 64 * 1024;
/// How long a worker waits on a kept-alive connection for its next
/// request before giving it back to the event loop: a client that sends
/// request after request (a panel, a load balancer's pool) is then served
/// as by a thread of its own, without two epoll changes and two thread
/// wake-ups per request (issue 22). Short, so that a client that goes
/// quiet holds a thread for no longer than this.
pub const STAY: Duration = Duration::from_millis(10);
/// What a worker reads at once of a next request it waits for.
const NEXT_READ: usize = 8 * 1024;

/// A connection whose request head has arrived, or could not be read.
pub struct Job {
    pub stream: TcpStream,
    pub peer: Option<SocketAddr>,
    pub head: Result<Head, Refusal>,
    /// What was read after the head: the body's start, or more.
    pub rest: Vec<u8>,
    /// When the head's first byte arrived.
    pub began: Instant,
    /// `100 Continue` has been sent.
    pub continued: bool,
    pub slot: Slot,
    /// The stream is in blocking mode with its options set: it comes
    /// from the worker that answered its last request ([`next`]).
    pub prepared: bool,
}

/// A kept-alive connection for the event loop, with the bytes already read
/// past its last request (a pipelined next request).
pub struct Handback {
    pub stream: TcpStream,
    pub peer: Option<SocketAddr>,
    pub rest: Vec<u8>,
    pub slot: Slot,
}

/// Runs one request; the connection if it stays open.
pub fn run(job: Job, limits: &Limits, handler: &Handler) -> Option<Handback> {
    let Job {
        stream,
        peer,
        head,
        rest,
        began,
        continued,
        slot,
        prepared,
    } = job;
    if !prepared {
        stream.set_nonblocking(false).ok()?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(WRITE_TIME));
    }
    // Both halves use the one socket (`Read` and `Write` for `&TcpStream`).
    let mut writer = &stream;
    let mut reader = BufReader::new(Timed {
        pending: rest,
        at: 0,
        stream: &stream,
        deadline: began + REQUEST_TIME,
    });
    let head = match head {
        Ok(head) => head,
        Err((status, why)) => {
            refuse(&mut reader, &mut writer, limits, status, why);
            return None;
        }
    };
    let body = match read_body(&head, &mut reader, &mut writer, limits.max_body, continued) {
        Ok(body) => body,
        Err(ReadError::Io) => return None,
        Err(ReadError::Bad(status, why)) => {
            refuse(&mut reader, &mut writer, limits, status, why);
            return None;
        }
    };
    let request = Request {
        method: head.method,
        path: head.path,
        query: head.query,
        headers: head.headers,
        body,
        peer,
        http10: head.http10,
    };
    let head_only = request.method == "HEAD";
    let close = request.wants_close(head.http10);
    match handler(&request) {
        Reply::Reset => {
            let _ = writer.shutdown(Shutdown::Both);
            None
        }
        Reply::Upgrade { response, then } => {
            if write_switch(&mut writer, &response).is_err() {
                return None;
            }
            let mut rest = reader.buffer().to_vec();
            let timed = reader.into_inner();
            rest.extend_from_slice(&timed.pending[timed.at..]);
            drop(timed);
            let _ = stream.set_read_timeout(None);
            let _ = stream.set_write_timeout(None);
            let upgraded = Upgraded { stream, rest, peer };
            // A thread of its own, not a pool worker: an upgraded
            // connection lives for as long as its session. It keeps its
            // connection slot meanwhile.
            // The session's own descriptors are counted too, where there
            // is room (the session's owner admitted it within its caps).
            let extra: Vec<_> = (0..limits.upgraded_extra)
                .map_while(|_| slot.another())
                .collect();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-ws", limits.thread_name))
                .stack_size(UPGRADED_STACK)
                .spawn(move || {
                    let _slots = (slot, extra);
                    then(upgraded);
                });
            if let Err(err) = spawned {
                eprintln!("hcc: cannot start a thread for an upgraded connection: {err}");
            }
            None
        }
        Reply::Answer(response) => {
            if write_response(&mut writer, &response, close, head_only).is_err() || close {
                return None;
            }
            let mut rest = reader.buffer().to_vec();
            let timed = reader.into_inner();
            rest.extend_from_slice(&timed.pending[timed.at..]);
            drop(timed);
            Some(Handback {
                stream,
                peer,
                rest,
                slot,
            })
        }
    }
}

/// What becomes of a kept-alive connection once its answer is written.
pub enum Next {
    /// Its next request arrived whole: the same worker runs it.
    Job(Job),
    /// To the event loop, to wait there (with what has arrived).
    Back(Handback),
    /// The client has closed it.
    Closed,
}

/// Waits up to `stay` (none when other requests wait for a thread) for
/// the next request on a kept-alive connection. The worker takes it only
/// when its head is complete and it has no body; anything else (a head
/// or body still coming, a head to refuse, silence) goes back to the
/// event loop, which holds slow clients without a thread and applies
/// their deadlines.
pub fn next(mut kept: Handback, stay: Option<Duration>) -> Next {
    let Some(stay) = stay else {
        return Next::Back(kept);
    };
    if kept.rest.is_empty() {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let Ok(timeout) = Timespec::try_from(stay) else {
            return Next::Back(kept);
        };
        let mut fds = [PollFd::new(&kept.stream, PollFlags::IN)];
        if !matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0) {
            return Next::Back(kept);
        }
        kept.rest.resize(NEXT_READ, 0);
        let flags = rustix::net::RecvFlags::DONTWAIT;
        match rustix::net::recv(&kept.stream, &mut kept.rest[..], flags) {
            Ok((0, _)) => return Next::Closed,
            Ok((n, _)) => kept.rest.truncate(n),
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                kept.rest.clear();
                return Next::Back(kept);
            }
            Err(_) => return Next::Closed,
        }
    }
    // Empty lines before a request line are ignored (RFC 9112 2.2).
    let blank = kept
        .rest
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    kept.rest.drain(..blank);
    let head = match super::head::parse(&kept.rest) {
        Ok(Some((head, len)))
            if matches!(body::framing(&head), Ok(Framing::Length(0)))
                && !body::expects_continue(&head) =>
        {
            kept.rest.drain(..len);
            head
        }
        _ => return Next::Back(kept),
    };
    let Handback {
        stream,
        peer,
        rest,
        slot,
    } = kept;
    Next::Job(Job {
        stream,
        peer,
        head: Ok(head),
        rest,
        began: Instant::now(),
        continued: false,
        slot,
        prepared: true,
    })
}

/// Answers a request that cannot be read, then closes.
fn refuse(
    reader: &mut BufReader<Timed<'_>>,
    writer: &mut &TcpStream,
    limits: &Limits,
    status: u16,
    why: &str,
) {
    let response = (limits.error)(status, why.trim_end());
    let _ = write_response(writer, &response, true, false);
    linger(reader, writer);
}

enum ReadError {
    Io,
    Bad(u16, &'static str),
}

/// The read side of a connection: first what the event loop read past the
/// head, then the socket, under one deadline for the whole body.
struct Timed<'a> {
    pending: Vec<u8>,
    at: usize,
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.pending.len() {
            let n = buf.len().min(self.pending.len() - self.at);
            buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Closes after an error answer without losing it: a client still sending
/// its (refused) body would get a reset that can swallow the answer, so
/// what it sends is read and dropped for a moment first.
fn linger(reader: &mut BufReader<Timed<'_>>, writer: &TcpStream) {
    let _ = writer.shutdown(Shutdown::Write);
    reader.get_mut().deadline = Instant::now() + LINGER;
    let _ = io::copy(&mut reader.by_ref().take(16 * 1024 * 1024), &mut io::sink());
}

/// The body, from what the loop read (all of it, as a rule) and the
/// socket; `continued`: the loop has sent `100 Continue` already.
fn read_body(
    head: &Head,
    reader: &mut BufReader<Timed<'_>>,
    writer: &mut &TcpStream,
    max_body: usize,
    continued: bool,
) -> Result<Vec<u8>, ReadError> {
    let (chunked, length) = match body::framing(head) {
        Ok(Framing::Chunked) => (true, 0),
        Ok(Framing::Length(n)) => (false, n),
        Err((status, why)) => return Err(ReadError::Bad(status, why)),
    };
    if length > max_body {
        return Err(ReadError::Bad(413, "request body too large\n"));
    }
    if (chunked || length > 0) && !continued && body::expects_continue(head) {
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadError::Io)?;
    }
    if chunked {
        return read_chunked(reader, max_body);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|_| ReadError::Io)?;
    Ok(body)
}

/// One line of a chunked body's framing, without its line end.
fn read_line(reader: &mut BufReader<Timed<'_>>, budget: &mut u64) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget)
        .read_until(b'\n', &mut line)
        .map_err(|_| ReadError::Io)?;
    *budget -= n as u64;
    if n == 0 {
        return Err(ReadError::Io);
    }
    if !line.ends_with(b"\n") {
        return Err(ReadError::Bad(431, "request head too large\n"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ReadError::Bad(400, "bad chunk size\n"))
}

fn read_chunked(reader: &mut BufReader<Timed<'_>>, max_body: usize) -> Result<Vec<u8>, ReadError> {
    let mut budget = MAX_CHUNK_LINES;
    let mut body = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        let size = line.split(';').next().unwrap_or("").trim();
        if size.is_empty() || size.len() > MAX_CHUNK_DIGITS {
            return Err(ReadError::Bad(400, "bad chunk size\n"));
        }
        let size =
            usize::from_str_radix(size, 16).map_err(|_| ReadError::Bad(400, "bad chunk size\n"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader, &mut budget)?.is_empty() {}
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
        read_line(reader, &mut budget)?;
    }
}

/// Writes the answer in one piece; for HEAD without the body.
fn write_response(
    writer: &mut &TcpStream,
    response: &Response,
    close: bool,
    head_only: bool,
) -> io::Result<()> {
    // A small answer goes out in one write (one packet with TCP_NODELAY);
    // a large one is not copied for that.
    let inline = !head_only && response.body.len() <= 16 * 1024;
    let mut out = Vec::with_capacity(256 + if inline { response.body.len() } else { 0 });
    write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        response.status,
        super::reason(response.status),
    )?;
    // A 304 has no body, and a Content-Length there would describe the
    // cached one (RFC 9110 8.6): both headers are left out.
    if response.status != 304 {
        write!(
            out,
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            response.content_type,
            response.body.len()
        )?;
    }
    for (name, value) in &response.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if inline {
        out.extend_from_slice(&response.body);
    }
    writer.write_all(&out)?;
    if !inline && !head_only {
        writer.write_all(&response.body)?;
    }
    writer.flush()
}

/// The head of a `101 Switching Protocols`: no body and, as for every 1xx
/// answer, no Content-Length (RFC 9110 8.6).
fn write_switch(writer: &mut &TcpStream, response: &Response) -> io::Result<()> {
    let mut out = Vec::with_capacity(256);
    write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        response.status,
        super::reason(response.status)
    )?;
    for (name, value) in &response.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    out.extend_from_slice(b"\r\n");
    writer.write_all(&out)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    //! One exchange over a loopback socket pair: the test plays both the
    //! event loop (it parses the head and hands over what followed) and
    //! the client (it sends the rest and reads the answer).

    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::http::{Body, Slots, head, text_error};

    /// What one exchange did.
    struct Done {
        /// Everything the client read until the server closed or handed
        /// the connection back.
        answer: String,
        /// The bytes handed back to the loop, when the connection stays.
        kept: Option<Vec<u8>>,
        /// The bodies the handler saw.
        bodies: Vec<Vec<u8>>,
    }

    /// `read`: what the loop had read (a whole head, and maybe more);
    /// `then`: what the client sends once the exchange runs.
    fn exchange(read: &[u8], then: &[u8], max_body: usize) -> Done {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        let (head, len) = match head::parse(read) {
            Ok(Some((head, len))) => (Ok(head), len),
            Ok(None) => panic!("the test's head is incomplete"),
            Err(refusal) => (Err(refusal), read.len()),
        };
        let slot = Arc::new(Slots::new(4, Vec::new())).take(peer.ip()).unwrap();
        let job = Job {
            stream,
            peer: Some(peer),
            head,
            rest: read[len..].to_vec(),
            began: Instant::now(),
            continued: false,
            slot,
            prepared: false,
        };
        let limits = Limits {
            max_body,
            thread_name: "test",
            error: text_error,
            uncapped: Vec::new(),
            upgraded_extra: 0,
        };
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bodies);
        let handler: Handler = Arc::new(move |request: &Request| {
            seen.lock().unwrap().push(request.body.clone());
            let text = format!("{} {} {}", request.method, request.path, request.body.len());
            Reply::Answer(Response {
                status: if request.path == "/cached" { 304 } else { 200 },
                content_type: "text/plain",
                headers: vec![("X-Seen", "yes".into())],
                body: Body::Owned(text.into_bytes()),
            })
        });
        client.write_all(then).unwrap();
        // All is sent: a refused request's linger ends at once.
        client.shutdown(Shutdown::Write).unwrap();
        let worker = std::thread::spawn(move || run(job, &limits, &handler));
        let kept = worker.join().unwrap().map(|back| {
            // Closing the server's side ends the client's read below.
            back.stream.shutdown(Shutdown::Both).unwrap();
            back.rest
        });
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer);
        let bodies = bodies.lock().unwrap().clone();
        Done {
            answer: String::from_utf8_lossy(&answer).into_owned(),
            kept,
            bodies,
        }
    }

    #[test]
    fn a_content_length_body_is_read_from_the_loop_and_the_socket() {
        let done = exchange(
            b"POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabcd",
            b"efghij",
            100,
        );
        assert_eq!(done.bodies, vec![b"abcdefghij".to_vec()]);
        assert_eq!(
            done.answer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\
             X-Seen: yes\r\n\r\nPOST /p 10"
        );
        assert_eq!(done.kept, Some(Vec::new()), "keep-alive by default");
    }

    #[test]
    fn a_pipelined_request_is_handed_back_untouched() {
        let next = b"GET /next HTTP/1.1\r\n\r\n";
        let mut read = b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".to_vec();
        read.extend_from_slice(next);
        let done = exchange(&read, b"", 100);
        assert_eq!(done.bodies, vec![b"abc".to_vec()]);
        assert_eq!(done.kept.as_deref(), Some(&next[..]));
    }

    #[test]
    fn a_chunked_body_is_decoded_with_extensions_and_trailers() {
        let done = exchange(
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            b"2;ext=1\r\nde\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT",
            100,
        );
        assert_eq!(done.bodies, vec![b"abcde0123456789".to_vec()]);
        assert!(done.answer.ends_with("POST /c 15"), "{}", done.answer);
        // What follows the chunked body was read by the exchange's buffer
        // and goes back to the loop.
        assert_eq!(done.kept.as_deref(), Some(&b"NEXT"[..]));
    }

    /// Runs an exchange that must be refused: the handler never runs, the
    /// connection closes; the whole answer.
    fn refused(read: &[u8], then: &[u8], max_body: usize) -> String {
        let done = exchange(read, then, max_body);
        assert!(done.bodies.is_empty(), "the handler ran: {}", done.answer);
        assert!(done.kept.is_none(), "the connection stayed open");
        done.answer
    }

    /// The answer `text_error` gives, on a closing connection.
    fn refusal(status: &str, why: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{why}\n",
            why.len() + 1
        )
    }

    #[test]
    fn bodies_over_the_limit_are_refused_with_413() {
        let too_large = refusal("413 Content Too Large", "request body too large");
        let head = b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(refused(head, b"", 10), too_large);
        // Chunked: the sum of the chunks counts, not one chunk.
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunks = b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n";
        assert_eq!(refused(head, chunks, 10), too_large);
    }

    #[test]
    fn bad_chunk_sizes_are_refused_with_400() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for chunks in [
            &b"zz\r\nab\r\n0\r\n\r\n"[..],
            b"\r\n",
            b"00000000000000001\r\na\r\n0\r\n\r\n",
            b"-1\r\n",
        ] {
            assert_eq!(
                refused(head, chunks, 100),
                refusal("400 Bad Request", "bad chunk size"),
                "{:?}",
                String::from_utf8_lossy(chunks)
            );
        }
    }

    #[test]
    fn a_refused_head_is_answered_then_closed() {
        assert_eq!(
            refused(b"GET / HTTP/2.0\r\n\r\n", b"", 100),
            refusal(
                "505 HTTP Version Not Supported",
                "HTTP/1.0 and HTTP/1.1 only"
            )
        );
    }

    #[test]
    fn expect_100_continue_is_answered_before_the_body_is_read() {
        let done = exchange(
            b"PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            b"ok",
            100,
        );
        assert!(
            done.answer
                .starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
            "{}",
            done.answer
        );
        assert_eq!(done.bodies, vec![b"ok".to_vec()]);
    }

    #[test]
    fn head_answers_keep_the_length_but_not_the_body() {
        let done = exchange(b"HEAD /h HTTP/1.1\r\n\r\n", b"", 100);
        assert_eq!(
            done.answer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\
             X-Seen: yes\r\n\r\n"
        );
    }

    #[test]
    fn a_304_has_neither_content_type_nor_length() {
        let done = exchange(b"GET /cached HTTP/1.1\r\n\r\n", b"", 100);
        assert!(
            done.answer
                .starts_with("HTTP/1.1 304 Not Modified\r\nX-Seen: yes\r\n\r\n"),
            "{}",
            done.answer
        );
    }

    #[test]
    fn http10_and_connection_close_end_the_connection() {
        for read in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        ] {
            let done = exchange(read, b"", 100);
            assert!(
                done.answer.contains("\r\nConnection: close\r\n"),
                "{}",
                done.answer
            );
            assert!(done.kept.is_none());
        }
        // HTTP/1.0 that asks to stay open does.
        let done = exchange(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"",
            100,
        );
        assert!(!done.answer.contains("Connection: close"));
        assert!(done.kept.is_some());
    }

    /// A kept-alive connection after its answer, as a worker holds it,
    /// and the client's end.
    fn kept_alive() -> (Handback, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_nodelay(true).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        let slot = Arc::new(Slots::new(4, Vec::new())).take(peer.ip()).unwrap();
        let kept = Handback {
            stream,
            peer: Some(peer),
            rest: Vec::new(),
            slot,
        };
        (kept, client)
    }

    /// What `next` made of it: "job PATH REST", "back REST" or "closed".
    fn outcome(next: Next) -> String {
        match next {
            Next::Job(job) => {
                let head = job.head.expect("a head");
                assert!(job.prepared);
                format!("job {} {:?}", head.path, String::from_utf8_lossy(&job.rest))
            }
            Next::Back(kept) => format!("back {:?}", String::from_utf8_lossy(&kept.rest)),
            Next::Closed => "closed".into(),
        }
    }

    #[test]
    fn a_worker_takes_a_next_request_only_whole_and_without_a_body() {
        let stay = Some(Duration::from_secs(5));
        let cases: [(&[u8], &str); 5] = [
            (b"\r\nGET /a HTTP/1.1\r\n\r\nGET /b", r#"job /a "GET /b""#),
            (b"GET /a HT", r#"back "GET /a HT""#),
            (
                b"POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
                r#"back "POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi""#,
            ),
            // Refusals are the loop's, as for any request it reads.
            (
                b"GET / HTTP/2.0\r\n\r\n",
                r#"back "GET / HTTP/2.0\r\n\r\n""#,
            ),
            (b"", "closed"),
        ];
        for (sent, want) in cases {
            let (kept, mut client) = kept_alive();
            if sent.is_empty() {
                client.shutdown(Shutdown::Write).unwrap();
            } else {
                client.write_all(sent).unwrap();
            }
            assert_eq!(outcome(next(kept, stay)), want, "{sent:?}");
        }
        // Pipelined bytes already read are looked at without waiting.
        let (mut kept, _client) = kept_alive();
        kept.rest = b"GET /c HTTP/1.1\r\n\r\n".to_vec();
        assert_eq!(outcome(next(kept, stay)), r#"job /c """#);
    }

    #[test]
    fn a_quiet_or_crowded_worker_gives_the_connection_back() {
        let (kept, _client) = kept_alive();
        let start = Instant::now();
        assert_eq!(
            outcome(next(kept, Some(Duration::from_millis(20)))),
            r#"back """#
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        // Others wait for a thread: back at once, even with a request
        // there.
        let (kept, mut client) = kept_alive();
        client.write_all(b"GET /a HTTP/1.1\r\n\r\n").unwrap();
        let start = Instant::now();
        assert_eq!(outcome(next(kept, None)), r#"back """#);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
