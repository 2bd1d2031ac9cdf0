//! The event loop: one thread owns the listening socket and every
//! connection that is waiting for, or sending, a request. Such a
//! connection costs a few hundred bytes (and what it has sent) and no
//! thread, so thousands of idle or slow clients hold nothing a normal
//! request needs; each is closed when its deadline passes ([`IDLE`] for the
//! first byte, [`HEAD_TIME`] from the first byte to the end of the head,
//! [`REQUEST_TIME`] to the end of the body). A connection whose request is
//! complete (or refused) is handed to a worker thread
//! ([`super::exchange`]); a kept-alive one comes back here for its next
//! request, unless that arrives whole within the worker's short stay
//! ([`super::exchange::STAY`]) and the worker runs it.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::body::{self, Framing, Progress, Scan};
use super::exchange::{self, Handback, Job, Next, REQUEST_TIME};
use super::head::{self, Head, MAX_HEAD, Refusal};
use super::pool::Pool;
use super::{Handler, Limits, Slot, Slots};

/// How long a connection may wait for the first byte of a request, when
/// new or between requests.
pub const IDLE: Duration = Duration::from_secs(10);
/// How long a request head may take from its first byte to its end,
/// however slowly it trickles in.
pub const HEAD_TIME: Duration = Duration::from_secs(10);
/// How often deadlines are checked.
const SWEEP: Duration = Duration::from_millis(250);
/// Connections the kernel completes before the loop accepts them (the
/// system caps it at `net.core.somaxconn`, 4096 by default).
const BACKLOG: i32 = 4096;
/// How long accepting pauses when the process is out of file descriptors.
const FULL_PAUSE: Duration = Duration::from_millis(100);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// A connection between requests.
struct Waiting {
    stream: TcpStream,
    peer: Option<SocketAddr>,
    /// What has arrived of the next request (of its body, once the head is
    /// complete).
    buf: Vec<u8>,
    /// Since when it waits (for its first byte) or reads (its request).
    since: Instant,
    began: bool,
    /// A complete head whose body is still coming.
    pending: Option<Pending>,
    /// `100 Continue` has been sent.
    continued: bool,
    slot: Slot,
}

struct Pending {
    head: Head,
    scan: Scan,
}

impl Waiting {
    fn new(stream: TcpStream, peer: Option<SocketAddr>, slot: Slot) -> Waiting {
        Waiting {
            stream,
            peer,
            buf: Vec::new(),
            since: Instant::now(),
            began: false,
            pending: None,
            continued: false,
            slot,
        }
    }

    fn deadline(&self) -> Instant {
        self.since
            + match (self.began, &self.pending) {
                (false, _) => IDLE,
                (true, None) => HEAD_TIME,
                (true, Some(_)) => REQUEST_TIME,
            }
    }
}

/// A server ready to run: the socket is bound, the loop set up.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    waiting: HashMap<Token, Waiting>,
    /// Connections that began to wait for a request, oldest first; entries
    /// of connections that have since sent a byte or gone are skipped.
    idle_order: VecDeque<(Instant, Token)>,
    next_token: usize,
    slots: Arc<Slots>,
    pool: Pool<Job>,
    back: Receiver<Handback>,
    /// Accepting resumes then, after running out of file descriptors.
    paused_until: Option<Instant>,
    scratch: Box<[u8]>,
    max_body: usize,
}

impl Server {
    /// Sets up the loop for `listener`; [`Server::run`] serves.
    pub fn new(
        listener: std::net::TcpListener,
        limits: Limits,
        handler: Handler,
    ) -> io::Result<Server> {
        let max = super::connection_limit();
        // A longer queue of connections not yet accepted than std's 128: a
        // burst beyond it has its handshakes dropped, and each such client
        // waits a second or more for its retry.
        rustix::net::listen(&listener, BACKLOG)?;
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (to_loop, back): (Sender<Handback>, _) = mpsc::channel();
        let slots = Arc::new(Slots::new(max, limits.uncapped.clone()));
        let name = limits.thread_name;
        let max_body = limits.max_body;
        let pool = Pool::new(name, move |mut job: Job, crowded: &dyn Fn() -> bool| {
            loop {
                let Some(kept) = exchange::run(job, &limits, &handler) else {
                    return;
                };
                // A worker stays with its connection only while no other
                // request waits for a thread.
                let stay = (!crowded()).then_some(exchange::STAY);
                match exchange::next(kept, stay) {
                    Next::Job(next) => job = next,
                    Next::Back(kept) => {
                        if to_loop.send(kept).is_ok() {
                            let _ = waker.wake();
                        }
                        return;
                    }
                    Next::Closed => return,
                }
            }
        });
        Ok(Server {
            poll,
            listener,
            waiting: HashMap::new(),
            idle_order: VecDeque::new(),
            next_token: 2,
            slots,
            pool,
            back,
            paused_until: None,
            scratch: vec![0; 16 * 1024].into_boxed_slice(),
            max_body,
        })
    }

    /// Serves until the process ends.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut swept = Instant::now();
        loop {
            if let Err(err) = self.poll.poll(&mut events, Some(SWEEP)) {
                if err.kind() != io::ErrorKind::Interrupted {
                    std::thread::sleep(SWEEP);
                }
                continue;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => {
                        if self.paused_until.is_none() {
                            self.accept();
                        }
                    }
                    WAKER => {}
                    token => self.read(token),
                }
            }
            self.take_back();
            let now = Instant::now();
            if self.paused_until.is_some_and(|t| now >= t) {
                self.paused_until = None;
                self.accept();
            }
            if now.duration_since(swept) >= SWEEP {
                swept = now;
                self.sweep(now);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(err) => {
                    // Out of file descriptors: the connection idle longest
                    // makes room for the next. Otherwise, or with none
                    // idle, accepting waits a moment rather than spin.
                    let out_of_files =
                        matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    if !(out_of_files && self.evict_idlest()) {
                        self.paused_until = Some(Instant::now() + FULL_PAUSE);
                        return;
                    }
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        let ip = addr.ip().to_canonical();
        let slot = match self.slots.take(ip) {
            Some(slot) => slot,
            // All slots taken: an idle connection makes way for a new one.
            None if self.slots.full() && self.evict_idlest() => match self.slots.take(ip) {
                Some(slot) => slot,
                None => return,
            },
            None => return,
        };
        let Some(token) = self.register(&mut stream) else {
            return;
        };
        let conn = Waiting::new(stream, Some(addr), slot);
        self.idle_order.push_back((conn.since, token));
        self.waiting.insert(token, conn);
        // A request sent before the connection was accepted is read now:
        // it no longer counts as idle when connections must make room.
        self.read(token);
    }

    /// Reads what a waiting connection has; hands it on once its head is
    /// complete or refused, closes it when the client has gone.
    fn read(&mut self, token: Token) {
        let Some(conn) = self.waiting.get_mut(&token) else {
            return;
        };
        let outcome = drain(conn, &mut self.scratch, self.max_body);
        self.act(token, outcome);
    }

    fn act(&mut self, token: Token, outcome: Outcome) {
        match outcome {
            Outcome::Wait => {}
            Outcome::Gone => self.close(token),
            Outcome::Head(head, len) => self.hand_on(token, Ok(head), Some(len)),
            Outcome::Ready => {
                let pending = self
                    .waiting
                    .get_mut(&token)
                    .and_then(|conn| conn.pending.take());
                match pending {
                    Some(pending) => self.hand_on(token, Ok(pending.head), Some(0)),
                    None => self.close(token),
                }
            }
            Outcome::Refused(refusal) => self.hand_on(token, Err(refusal), None),
        }
    }

    /// Gives a connection with a complete (or refused) request to a
    /// worker, with what its buffer holds after the first `skip` bytes
    /// (None: nothing).
    fn hand_on(&mut self, token: Token, head: Result<Head, Refusal>, skip: Option<usize>) {
        let Some(mut conn) = self.waiting.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let rest = match skip {
            Some(len) => conn.buf.split_off(len),
            None => Vec::new(),
        };
        self.pool.submit(Job {
            stream: conn.stream.into(),
            peer: conn.peer,
            head,
            rest,
            began: conn.since,
            continued: conn.continued,
            slot: conn.slot,
            prepared: false,
        });
    }

    /// Kept-alive connections back from the workers.
    /// Watches `stream` for reading under a new token (0 and 1 are the
    /// listener's and the waker's).
    fn register(&mut self, stream: &mut TcpStream) -> Option<Token> {
        let token = Token(self.next_token);
        self.next_token = self.next_token.wrapping_add(1).max(2);
        self.poll
            .registry()
            .register(stream, token, Interest::READABLE)
            .ok()
            .map(|()| token)
    }

    fn take_back(&mut self) {
        while let Ok(kept) = self.back.try_recv() {
            if kept.stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut stream = TcpStream::from_std(kept.stream);
            // Readiness already there (a pipelined request) is reported at
            // once after registering.
            let Some(token) = self.register(&mut stream) else {
                continue;
            };
            let mut conn = Waiting::new(stream, kept.peer, kept.slot);
            if kept.rest.is_empty() {
                self.idle_order.push_back((conn.since, token));
                self.waiting.insert(token, conn);
                continue;
            }
            conn.began = true;
            let skip = kept
                .rest
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            conn.buf.extend_from_slice(&kept.rest[skip..]);
            let outcome = absorb(&mut conn, 0, self.max_body);
            self.waiting.insert(token, conn);
            if let Some(outcome) = outcome {
                self.act(token, outcome);
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        let late: Vec<Token> = self
            .waiting
            .iter()
            .filter(|(_, conn)| conn.deadline() <= now)
            .map(|(token, _)| *token)
            .collect();
        for token in late {
            self.close(token);
        }
        let waiting = &self.waiting;
        self.idle_order
            .retain(|(since, token)| still_idle(waiting, *since, *token));
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.waiting.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// Closes the connection that has waited longest without sending a
    /// byte; whether there was one.
    fn evict_idlest(&mut self) -> bool {
        while let Some((since, token)) = self.idle_order.pop_front() {
            if still_idle(&self.waiting, since, token) {
                self.close(token);
                return true;
            }
        }
        false
    }
}

/// Whether an entry of `idle_order` is a connection still waiting for its
/// first byte since then.
fn still_idle(waiting: &HashMap<Token, Waiting>, since: Instant, token: Token) -> bool {
    waiting
        .get(&token)
        .is_some_and(|conn| !conn.began && conn.since == since)
}

enum Outcome {
    /// More of the request is to come.
    Wait,
    Gone,
    /// A complete head (of a request without a body, or one the worker
    /// reads itself) and its length.
    Head(Head, usize),
    /// The pending head's body is complete.
    Ready,
    Refused(Refusal),
}

/// Reads until the socket has nothing more (the loop is edge-triggered)
/// or the request is complete.
fn drain(conn: &mut Waiting, scratch: &mut [u8], max_body: usize) -> Outcome {
    loop {
        let room = buffer_limit(conn, max_body)
            .saturating_sub(conn.buf.len())
            .clamp(1, scratch.len());
        match conn.stream.read(&mut scratch[..room]) {
            Ok(0) => return Outcome::Gone,
            Ok(n) => {
                let mut got = &scratch[..n];
                if !conn.began {
                    conn.began = true;
                    conn.since = Instant::now();
                }
                // Empty lines before a request line are ignored (RFC 9112
                // 2.2); dropping them here keeps them from piling up or
                // being parsed over and over.
                if conn.buf.is_empty() && conn.pending.is_none() {
                    let skip = got
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .count();
                    got = &got[skip..];
                }
                let from = conn.buf.len();
                conn.buf.extend_from_slice(got);
                if let Some(outcome) = absorb(conn, from, max_body) {
                    return outcome;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Outcome::Wait,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Outcome::Gone,
        }
    }
}

/// The most a connection's buffer holds: a head, or a body with its
/// framing (and the start of a pipelined next request).
fn buffer_limit(conn: &Waiting, max_body: usize) -> usize {
    match conn.pending {
        None => MAX_HEAD + 1,
        Some(_) => max_body + MAX_HEAD,
    }
}

/// What the bytes of `conn.buf` from `from` on complete, if anything.
fn absorb(conn: &mut Waiting, from: usize, max_body: usize) -> Option<Outcome> {
    let limit = buffer_limit(conn, max_body);
    if let Some(pending) = &mut conn.pending {
        let done = pending.scan.feed(&conn.buf[from..]) != Progress::More;
        // A body larger than allowed goes to the worker, which refuses it.
        return (done || conn.buf.len() >= limit).then_some(Outcome::Ready);
    }
    if conn.buf.len() < limit && !head::may_be_complete(&conn.buf, from) {
        return None;
    }
    match head::parse(&conn.buf) {
        Ok(None) => None,
        Ok(Some((head, len))) => start_body(conn, head, len, max_body),
        Err(refusal) => Some(Outcome::Refused(refusal)),
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A head is complete: its body, if any, is read here too, so a client
/// sending slowly holds no worker thread.
fn start_body(conn: &mut Waiting, head: Head, len: usize, max_body: usize) -> Option<Outcome> {
    let framing = match body::framing(&head) {
        // Bad framing and oversized bodies are the worker's to refuse.
        Ok(Framing::Length(n)) if n == 0 || n > max_body => return Some(Outcome::Head(head, len)),
        Err(_) => return Some(Outcome::Head(head, len)),
        Ok(framing) => framing,
    };
    if body::expects_continue(&head) {
        use std::io::Write;
        match conn.stream.write(CONTINUE) {
            Ok(n) if n == CONTINUE.len() => conn.continued = true,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Some(Outcome::Head(head, len));
            }
            _ => return Some(Outcome::Gone),
        }
    }
    conn.buf.drain(..len);
    let mut scan = Scan::new(framing, max_body);
    let done = scan.feed(&conn.buf) != Progress::More;
    conn.pending = Some(Pending { head, scan });
    done.then_some(Outcome::Ready)
}

#[cfg(test)]
mod tests {
    //! The event loop with real sockets on 127.0.0.1: requests that arrive
    //! in pieces, several in one write, and one connection used for many.
    //! Each test's server runs on a thread of its own until the test
    //! process ends.

    use std::io::{BufRead, BufReader, Write};
    use std::net::SocketAddr;

    use super::*;
    use crate::http::{Body, Reply, Request, Response, text_error};

    /// A server whose handler answers `METHOD PATH BODY`.
    fn start(max_body: usize) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            max_body,
            thread_name: "test-conn",
            error: text_error,
            uncapped: Vec::new(),
            upgraded_extra: 0,
        };
        let handler: Handler = Arc::new(|request: &Request| {
            let text = format!(
                "{} {} {}",
                request.method,
                request.path,
                String::from_utf8_lossy(&request.body)
            );
            Reply::Answer(Response {
                status: 200,
                content_type: "text/plain",
                headers: Vec::new(),
                body: Body::Owned(text.into_bytes()),
            })
        });
        let server = Server::new(listener, limits, handler).unwrap();
        std::thread::spawn(move || server.run());
        addr
    }

    fn connect(addr: SocketAddr) -> std::net::TcpStream {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// Reads one answer: its status line and its body (by Content-Length).
    fn answer(reader: &mut BufReader<std::net::TcpStream>) -> (String, String) {
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        std::io::Read::read_exact(reader, &mut body).unwrap();
        (
            status.trim_end().to_string(),
            String::from_utf8(body).unwrap(),
        )
    }

    #[test]
    fn pipelined_requests_in_one_write_are_answered_in_order() {
        let addr = start(100);
        let mut stream = connect(addr);
        stream
            .write_all(
                b"GET /one HTTP/1.1\r\n\r\n\
                  POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
                  POST /three HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n\
                  GET /four HTTP/1.1\r\n\r\n",
            )
            .unwrap();
        let mut reader = BufReader::new(stream);
        for want in ["GET /one ", "POST /two abc", "POST /three xy", "GET /four "] {
            assert_eq!(
                answer(&mut reader),
                ("HTTP/1.1 200 OK".to_string(), want.to_string())
            );
        }
    }

    #[test]
    fn a_request_trickling_in_byte_by_byte_is_put_together() {
        let addr = start(100);
        let mut stream = connect(addr);
        stream.set_nodelay(true).unwrap();
        let request = b"POST /slow HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        for byte in request {
            stream.write_all(&[*byte]).unwrap();
        }
        let mut reader = BufReader::new(stream);
        assert_eq!(
            answer(&mut reader),
            (
                "HTTP/1.1 200 OK".to_string(),
                "POST /slow hello".to_string()
            )
        );
    }

    #[test]
    fn one_connection_serves_request_after_request() {
        let addr = start(100);
        let stream = connect(addr);
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        for i in 0..20 {
            write!(writer, "GET /n{i} HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(answer(&mut reader).1, format!("GET /n{i} "));
        }
    }

    /// Sends `bytes` on a new connection; the status line of the answer
    /// and its body. The server may close before it has read everything:
    /// a failed write is fine, the answer is what counts.
    fn status_of(addr: SocketAddr, bytes: &[u8]) -> (String, String) {
        let mut stream = connect(addr);
        let _ = stream.write_all(bytes);
        answer(&mut BufReader::new(stream))
    }

    #[test]
    fn limits_are_enforced_at_the_loop() {
        let addr = start(10);
        // A declared body over the limit: refused before it is sent.
        assert_eq!(
            status_of(addr, b"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"),
            (
                "HTTP/1.1 413 Content Too Large".to_string(),
                "request body too large\n".to_string()
            )
        );
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(
            status_of(addr, &big).0,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        let lengths = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(status_of(addr, lengths).0, "HTTP/1.1 400 Bad Request");
    }

    #[test]
    fn a_kept_alive_connection_is_served_however_its_next_request_comes() {
        let addr = start(100);
        let stream = connect(addr);
        stream.set_nodelay(true).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let pause = || std::thread::sleep(exchange::STAY * 5);
        // Whole, at once: the worker that answered takes it.
        for path in ["/a", "/b"] {
            write!(writer, "GET {path} HTTP/1.1\r\n\r\n").unwrap();
            assert_eq!(answer(&mut reader).1, format!("GET {path} "));
        }
        // A head in two pieces, the second well after the worker gave up:
        // the loop puts it together.
        writer.write_all(b"GET /c HT").unwrap();
        pause();
        writer.write_all(b"TP/1.1\r\n\r\n").unwrap();
        assert_eq!(answer(&mut reader).1, "GET /c ");
        // A body: the loop reads it.
        writer
            .write_all(b"POST /d HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        assert_eq!(answer(&mut reader).1, "POST /d hi");
        // After a pause: from the loop.
        pause();
        writer.write_all(b"GET /e HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(answer(&mut reader).1, "GET /e ");
        // A head to refuse right after an answer: refused as by the loop.
        writer.write_all(b"GET / HTTP/2.0\r\n\r\n").unwrap();
        assert_eq!(
            answer(&mut reader).0,
            "HTTP/1.1 505 HTTP Version Not Supported"
        );
    }
}
