//! The event loop: one thread owns the listening socket and every
//! connection that is waiting for, or reading, a request head. Such a
//! connection costs a few hundred bytes and no thread, so thousands of idle
//! or slow clients hold nothing a normal request needs; each is closed when
//! its deadline passes ([`IDLE`] for the first byte, [`HEAD_TIME`] from the
//! first byte to the end of the head). A connection whose head is complete
//! (or refused) is handed to a worker thread ([`super::exchange`]); a
//! kept-alive one comes back here for its next request.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::exchange::{self, Handback, Job};
use super::head::{self, MAX_HEAD};
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
    /// What has arrived of the next request.
    buf: Vec<u8>,
    /// Since when it waits (for its first byte) or reads (its head).
    since: Instant,
    began: bool,
    slot: Slot,
}

impl Waiting {
    fn deadline(&self) -> Instant {
        self.since + if self.began { HEAD_TIME } else { IDLE }
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
        let pool = Pool::new(name, move |job: Job| {
            if let Some(kept) = exchange::run(job, &limits, &handler)
                && to_loop.send(kept).is_ok()
            {
                let _ = waker.wake();
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
                Err(_) => {
                    // Out of file descriptors (or memory): the connection
                    // idle longest makes room for the next; with none idle,
                    // accepting waits a moment rather than spin.
                    if !self.evict_idlest() {
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
        let token = Token(self.next_token);
        self.next_token = self.next_token.wrapping_add(1).max(2);
        if self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
            .is_err()
        {
            return;
        }
        let since = Instant::now();
        self.waiting.insert(
            token,
            Waiting {
                stream,
                peer: Some(addr),
                buf: Vec::new(),
                since,
                began: false,
                slot,
            },
        );
        self.idle_order.push_back((since, token));
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
        match drain(conn, &mut self.scratch) {
            Outcome::Wait => {}
            Outcome::Gone => self.close(token),
            Outcome::Head(head, len) => self.hand_on(token, Ok(head), len),
            Outcome::Refused(refusal) => self.hand_on(token, Err(refusal), 0),
        }
    }

    /// Gives a connection with a complete (or refused) head to a worker;
    /// `len` bytes of its buffer are the head.
    fn hand_on(&mut self, token: Token, head: Result<head::Head, head::Refusal>, len: usize) {
        let Some(mut conn) = self.waiting.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let rest = if len == 0 {
            Vec::new()
        } else {
            conn.buf.split_off(len)
        };
        self.pool.submit(Job {
            stream: conn.stream.into(),
            peer: conn.peer,
            head,
            rest,
            began: conn.since,
            slot: conn.slot,
        });
    }

    /// Kept-alive connections back from the workers.
    fn take_back(&mut self) {
        while let Ok(kept) = self.back.try_recv() {
            if kept.stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut stream = TcpStream::from_std(kept.stream);
            let token = Token(self.next_token);
            self.next_token = self.next_token.wrapping_add(1).max(2);
            // Readiness already there (a pipelined request) is reported at
            // once after registering.
            if self
                .poll
                .registry()
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue;
            }
            let began = !kept.rest.is_empty();
            let since = Instant::now();
            self.waiting.insert(
                token,
                Waiting {
                    stream,
                    peer: kept.peer,
                    buf: Vec::new(),
                    since,
                    began,
                    slot: kept.slot,
                },
            );
            if began {
                self.take_bytes(token, kept.rest);
            } else {
                self.idle_order.push_back((since, token));
            }
        }
    }

    /// Bytes read by a worker past its request: maybe a complete head.
    fn take_bytes(&mut self, token: Token, bytes: Vec<u8>) {
        let Some(conn) = self.waiting.get_mut(&token) else {
            return;
        };
        let skip = bytes
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        conn.buf.extend_from_slice(&bytes[skip..]);
        match head::parse(&conn.buf) {
            Ok(None) => {}
            Ok(Some((head, len))) => self.hand_on(token, Ok(head), len),
            Err(refusal) => self.hand_on(token, Err(refusal), 0),
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
    /// More of the head is to come.
    Wait,
    Gone,
    /// A complete head and its length.
    Head(head::Head, usize),
    Refused(head::Refusal),
}

/// Reads until the socket has nothing more (the loop is edge-triggered)
/// or the head is complete.
fn drain(conn: &mut Waiting, scratch: &mut [u8]) -> Outcome {
    loop {
        let room = (MAX_HEAD + 1)
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
                if conn.buf.is_empty() {
                    let skip = got
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .count();
                    got = &got[skip..];
                }
                let from = conn.buf.len();
                conn.buf.extend_from_slice(got);
                if conn.buf.len() > MAX_HEAD || head::may_be_complete(&conn.buf, from) {
                    match head::parse(&conn.buf) {
                        Ok(None) => {}
                        Ok(Some((head, len))) => return Outcome::Head(head, len),
                        Err(refusal) => return Outcome::Refused(refusal),
                    }
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Outcome::Wait,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Outcome::Gone,
        }
    }
}
