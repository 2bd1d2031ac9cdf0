//! Relays a console session: websocket binary messages from the client to
//! the console server and back, unchanged, on one thread that waits on
//! both sockets with poll(2).
//!
//! Memory stays bounded whatever a side does: each websocket buffers at
//! most [`MAX_WRITE_BUFFER`] bytes for its peer, and while a side's buffer
//! is full the other side is not read (TCP's window then slows the
//! sender). The session ends when a side closes or fails, when nothing
//! passed either way for the idle time, or when `stop` names a reason
//! (asked at least every [`Limits::stop_every`], with the bytes relayed so
//! far to the client and from it).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Bytes, Error as WsError, Message, WebSocket};

use crate::store::{EndCode, EndReason};

/// Each websocket's read buffer: consoles send small updates.
pub const READ_BUFFER: usize = 64 * 1024;
/// Outgoing messages are gathered up to this size, then written.
pub const WRITE_BUFFER: usize = 64 * 1024;
/// What may wait for a slow reader, per side; past it the other side is
/// no longer read.
pub const MAX_WRITE_BUFFER: usize = 256 * 1024;
/// The largest message written to a websocket side: one larger than
/// [`MAX_WRITE_BUFFER`] would never fit in its buffer, and RFB over
/// websockets does not care where messages break.
const WRITE_PIECE: usize = 64 * 1024;
/// A plain TCP side's reads (on the thread's stack).
const TCP_READ: usize = 16 * 1024;
/// Messages read from one side before the other gets its turn.
const BATCH: usize = 64;
/// The closing handshake may take this long.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A websocket whose TCP socket poll(2) can wait on.
pub trait Socket: Read + Write {
    fn tcp(&self) -> Option<&TcpStream>;
}

impl Socket for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Socket for MaybeTlsStream<TcpStream> {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            MaybeTlsStream::Plain(s) => Some(s),
            MaybeTlsStream::Rustls(s) => Some(&s.sock),
            _ => None,
        }
    }
}

impl Socket for crate::http::websocket::Stream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(&self.socket)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nothing relayed either way for this long ends the session.
    pub idle: Duration,
    /// How often `stop` is asked.
    pub stop_every: Duration,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    ClientClosed,
    UpstreamClosed,
    Idle,
    /// `stop` named this reason (`revoked`, `suspended`, `expired`).
    Stopped(EndReason),
    Error(String),
    /// The client broke the websocket or RFB protocol: recorded as an
    /// error, and its close frame carries the code that says which way
    /// (RFC 6455 7.4.1) instead of 1011, which would blame hcc.
    Violation(CloseCode, String),
}

impl End {
    /// The end reason as recorded: `client closed`, `upstream closed`,
    /// `idle`, the stop reason, or `error: ...`.
    pub fn reason(&self) -> EndReason {
        match self {
            End::ClientClosed => EndCode::ClientClosed.into(),
            End::UpstreamClosed => EndCode::UpstreamClosed.into(),
            End::Idle => EndCode::Idle.into(),
            End::Stopped(why) => why.clone(),
            End::Error(why) | End::Violation(_, why) => EndReason::error(why),
        }
    }

    /// What the client's close frame says: never an upstream detail
    /// (an error may name Hetzner's host).
    fn to_client(&self) -> CloseFrame {
        let (code, mut reason) = match self {
            End::ClientClosed | End::UpstreamClosed => {
                (CloseCode::Normal, "the console closed".to_string())
            }
            End::Idle => (CloseCode::Normal, "idle".to_string()),
            End::Stopped(why) => (CloseCode::Normal, why.words()),
            End::Error(_) => (CloseCode::Error, "console error".to_string()),
            End::Violation(code, _) => (*code, violation_words(*code).to_string()),
        };
        reason.truncate(120);
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }
}

/// The close code for a websocket error that is the peer's breach of the
/// protocol: 1002 for framing (an unmasked client frame, reserved bits, a
/// bad opcode), 1007 for a text message that is no UTF-8, 1009 for a
/// message over the limit. `None` for the rest (I/O, a closed connection).
pub fn violation(err: &WsError) -> Option<CloseCode> {
    match err {
        WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(_) | WsError::AttackAttempt => Some(CloseCode::Protocol),
        WsError::Utf8(_) => Some(CloseCode::Invalid),
        WsError::Capacity(_) => Some(CloseCode::Size),
        _ => None,
    }
}

/// The words of a close frame with a violation's code.
pub fn violation_words(code: CloseCode) -> &'static str {
    match code {
        CloseCode::Unsupported => "binary messages only",
        CloseCode::Invalid => "invalid message data",
        CloseCode::Size => "message too big",
        _ => "protocol error",
    }
}

/// How a session went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub end: End,
    pub to_client: u64,
    pub from_client: u64,
}

/// Which side of the relay an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The browser or the native viewer.
    Client,
    /// The console server.
    Upstream,
}

impl fmt::Display for Side {
    /// `client` or `upstream`, as end reasons name them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
        })
    }
}

/// One side of the relay: a websocket (browser, console server) or a
/// plain TCP connection (a native viewer, `hcc vnc`).
pub trait Endpoint {
    /// Which side it is, for end reasons.
    fn side(&self) -> Side;
    fn tcp(&self) -> Option<&TcpStream>;
    /// The next bytes it sent; `None` when nothing is there now.
    fn receive(&mut self) -> Result<Option<Bytes>, End>;
    /// Queues bytes for it (what does not fit yet is held).
    fn push(&mut self, data: Bytes) -> Result<(), End>;
    /// May more be queued for it, or must its peer wait?
    fn has_room(&self) -> bool;
    /// Does it wait for its socket to take queued bytes?
    fn wants_write(&self) -> bool;
    /// Writes what is queued, as far as the socket takes it.
    fn flush(&mut self) -> Result<(), End>;
    /// Ends the connection (a close frame for a websocket client).
    fn close(&mut self, end: &End);

    fn closed(&self) -> End {
        if self.side() == Side::Client {
            End::ClientClosed
        } else {
            End::UpstreamClosed
        }
    }

    fn io_failed(&self, e: io::Error) -> End {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => self.closed(),
            _ => End::Error(format!("{}: {e}", self.side())),
        }
    }
}

/// Makes a socket wait at most `CLOSE_TIMEOUT` for the closing steps.
fn closing(tcp: Option<&TcpStream>) {
    if let Some(tcp) = tcp {
        let _ = tcp.set_nonblocking(false);
        let _ = tcp.set_write_timeout(Some(CLOSE_TIMEOUT));
        let _ = tcp.set_read_timeout(Some(CLOSE_TIMEOUT));
    }
}

/// A websocket side: RFB travels in binary messages.
pub struct WsEnd<S> {
    ws: WebSocket<S>,
    side: Side,
    /// Messages for this side that did not fit its buffer yet (the pieces
    /// of one message from the other side at most).
    held: VecDeque<Message>,
    want_write: bool,
}

impl<S: Socket> WsEnd<S> {
    pub fn new(mut ws: WebSocket<S>, side: Side) -> WsEnd<S> {
        ws.set_config(|c| {
            c.read_buffer_size = READ_BUFFER;
            c.write_buffer_size = WRITE_BUFFER;
            c.max_write_buffer_size = MAX_WRITE_BUFFER;
        });
        WsEnd {
            ws,
            side,
            held: VecDeque::new(),
            want_write: false,
        }
    }

    fn failed(&self, err: WsError) -> End {
        match err {
            WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                self.closed()
            }
            WsError::Io(e) => self.io_failed(e),
            // Only the client hears the code; the console server's faults
            // are hcc's problem as far as the browser can tell (1011).
            other => match violation(&other) {
                Some(code) if self.side == Side::Client => {
                    End::Violation(code, format!("{}: {other}", self.side))
                }
                _ => End::Error(format!("{}: {other}", self.side)),
            },
        }
    }

    fn write(&mut self, message: Message) -> Result<(), End> {
        match self.ws.write(message) {
            Ok(()) => Ok(()),
            Err(WsError::WriteBufferFull(message)) => {
                self.held.push_front(*message);
                Ok(())
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }
}

impl<S: Socket> Endpoint for WsEnd<S> {
    fn side(&self) -> Side {
        self.side
    }

    fn tcp(&self) -> Option<&TcpStream> {
        self.ws.get_ref().tcp()
    }

    fn receive(&mut self) -> Result<Option<Bytes>, End> {
        loop {
            match self.ws.read() {
                Ok(Message::Binary(bytes)) => return Ok(Some(bytes)),
                Ok(Message::Text(_)) => {
                    let why = format!(
                        "the {} sent a text message where RFB needs binary ones",
                        self.side
                    );
                    // 1003: data of a type this end does not take.
                    return Err(if self.side == Side::Client {
                        End::Violation(CloseCode::Unsupported, why)
                    } else {
                        End::Error(why)
                    });
                }
                Ok(Message::Close(_)) => return Err(self.closed()),
                // Pings are answered by tungstenite (the pong goes out
                // with the next flush).
                Ok(_) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(self.failed(e)),
            }
        }
    }

    fn push(&mut self, data: Bytes) -> Result<(), End> {
        let mut at = 0;
        while at < data.len() {
            let piece = data.slice(at..data.len().min(at + WRITE_PIECE));
            at += piece.len();
            if self.held.is_empty() {
                self.write(Message::Binary(piece))?;
            } else {
                self.held.push_back(Message::Binary(piece));
            }
        }
        Ok(())
    }

    fn has_room(&self) -> bool {
        self.held.is_empty()
    }

    fn wants_write(&self) -> bool {
        self.want_write || !self.held.is_empty()
    }

    fn flush(&mut self) -> Result<(), End> {
        while let Some(message) = self.held.pop_front() {
            let waiting = self.held.len();
            self.write(message)?;
            if self.held.len() > waiting {
                // It did not fit: the buffer must drain first.
                break;
            }
        }
        match self.ws.flush() {
            Ok(()) => {
                self.want_write = false;
                Ok(())
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn close(&mut self, end: &End) {
        closing(self.tcp());
        // Only the client hears why; the console server just hears goodbye.
        let frame = (self.side == Side::Client).then(|| end.to_client());
        let _ = self.ws.close(frame);
        let _ = self.ws.flush();
        if let Some(tcp) = self.tcp() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A plain TCP side: a native VNC viewer speaks RFB on the socket.
pub struct TcpEnd {
    stream: TcpStream,
    side: Side,
    out: Vec<u8>,
    at: usize,
}

impl TcpEnd {
    pub fn new(stream: TcpStream, side: Side) -> TcpEnd {
        TcpEnd {
            stream,
            side,
            out: Vec::new(),
            at: 0,
        }
    }
}

impl Endpoint for TcpEnd {
    fn side(&self) -> Side {
        self.side
    }

    fn tcp(&self) -> Option<&TcpStream> {
        Some(&self.stream)
    }

    fn receive(&mut self) -> Result<Option<Bytes>, End> {
        let mut buf = [0u8; TCP_READ];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(self.closed()),
            Ok(n) => Ok(Some(Bytes::copy_from_slice(&buf[..n]))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(self.io_failed(e)),
        }
    }

    fn push(&mut self, data: Bytes) -> Result<(), End> {
        self.out.extend_from_slice(&data);
        Ok(())
    }

    fn has_room(&self) -> bool {
        self.out.len() - self.at < MAX_WRITE_BUFFER
    }

    fn wants_write(&self) -> bool {
        self.at < self.out.len()
    }

    fn flush(&mut self) -> Result<(), End> {
        while self.at < self.out.len() {
            match self.stream.write(&self.out[self.at..]) {
                Ok(0) => return Err(self.closed()),
                Ok(n) => self.at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_failed(e)),
            }
        }
        if self.at == self.out.len() {
            self.out.clear();
            self.at = 0;
        } else if self.at > MAX_WRITE_BUFFER {
            self.out.drain(..self.at);
            self.at = 0;
        }
        Ok(())
    }

    fn close(&mut self, _end: &End) {
        closing(self.tcp());
        let _ = self.flush();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Moves what `src` has ready to `dst`; true when `src` may have more
/// (its turn ended before it ran dry).
fn pump(
    src: &mut impl Endpoint,
    dst: &mut impl Endpoint,
    count: &mut u64,
    activity: &mut Instant,
) -> Result<bool, End> {
    let mut more = false;
    for turn in 0.. {
        if !dst.has_room() {
            break;
        }
        if turn == BATCH {
            more = true;
            break;
        }
        match src.receive()? {
            Some(bytes) => {
                *count += bytes.len() as u64;
                *activity = Instant::now();
                dst.push(bytes)?;
            }
            None => break,
        }
    }
    // A pong or close reply queued on `src` goes out too.
    src.flush()?;
    dst.flush()?;
    Ok(more)
}

/// Relays between two websockets until the session ends; closes both.
/// `client_rest`/`upstream_rest`: bytes each side sent during its
/// handshake that belong to the other.
pub fn relay<C: Socket, U: Socket>(
    client: (WebSocket<C>, Vec<u8>),
    upstream: (WebSocket<U>, Vec<u8>),
    limits: Limits,
    stop: impl FnMut(u64, u64) -> Option<EndReason>,
) -> Outcome {
    relay_ends(
        (WsEnd::new(client.0, Side::Client), client.1),
        (WsEnd::new(upstream.0, Side::Upstream), upstream.1),
        limits,
        stop,
    )
}

/// Relays between any two sides (a viewer's TCP connection and a
/// console's websocket for `hcc vnc`); closes both.
pub fn relay_ends(
    client: (impl Endpoint, Vec<u8>),
    upstream: (impl Endpoint, Vec<u8>),
    limits: Limits,
    mut stop: impl FnMut(u64, u64) -> Option<EndReason>,
) -> Outcome {
    let (mut c, c_rest) = client;
    let (mut u, u_rest) = upstream;
    let mut outcome = Outcome {
        end: End::ClientClosed,
        to_client: 0,
        from_client: 0,
    };
    let waitable = |side: &dyn Endpoint| -> Result<(), End> {
        side.tcp()
            .ok_or_else(|| {
                End::Error(format!(
                    "the {} connection cannot be waited on",
                    side.side()
                ))
            })?
            .set_nonblocking(true)
            .map_err(|e| End::Error(format!("cannot relay: {e}")))
    };
    let run = (|| -> Result<(), End> {
        waitable(&c)?;
        waitable(&u)?;
        if !c_rest.is_empty() {
            outcome.from_client += c_rest.len() as u64;
            u.push(Bytes::from(c_rest))?;
        }
        if !u_rest.is_empty() {
            outcome.to_client += u_rest.len() as u64;
            c.push(Bytes::from(u_rest))?;
        }
        let mut activity = Instant::now();
        let mut next_stop = Instant::now() + limits.stop_every;
        loop {
            c.flush()?;
            u.flush()?;
            let more_up = pump(&mut c, &mut u, &mut outcome.from_client, &mut activity)?;
            let more_down = pump(&mut u, &mut c, &mut outcome.to_client, &mut activity)?;
            let now = Instant::now();
            if now >= next_stop {
                if let Some(why) = stop(outcome.to_client, outcome.from_client) {
                    return Err(End::Stopped(why));
                }
                next_stop = now + limits.stop_every;
            }
            let idle_at = activity + limits.idle;
            if now >= idle_at {
                return Err(End::Idle);
            }
            let wait = if more_up || more_down {
                Duration::ZERO
            } else {
                next_stop.min(idle_at).saturating_duration_since(now)
            };
            // A side is read only while its peer has room; written while
            // bytes wait for it. Hang-ups and errors are reported anyway.
            let flags = |reading: bool, writing: bool| {
                let mut f = PollFlags::empty();
                if reading {
                    f |= PollFlags::IN;
                }
                if writing {
                    f |= PollFlags::OUT;
                }
                f
            };
            let cf = flags(u.has_room(), c.wants_write());
            let uf = flags(c.has_room(), u.wants_write());
            let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            });
            let (Some(ct), Some(ut)) = (c.tcp(), u.tcp()) else {
                return Err(End::Error("a connection cannot be waited on".into()));
            };
            let mut fds = [PollFd::new(ct, cf), PollFd::new(ut, uf)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(End::Error(format!("cannot wait on the connections: {e}"))),
            }
            // A side that failed or hung up while it is not being read
            // would wake every poll: it is gone, and so is the session.
            let gone = PollFlags::ERR | PollFlags::HUP;
            if fds[0].revents().intersects(gone) && !cf.contains(PollFlags::IN) {
                return Err(c.closed());
            }
            if fds[1].revents().intersects(gone) && !uf.contains(PollFlags::IN) {
                return Err(u.closed());
            }
        }
    })();
    if let Err(end) = run {
        outcome.end = end;
    }
    c.close(&outcome.end);
    u.close(&outcome.end);
    outcome
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;

    use tungstenite::protocol::Role;

    use super::*;

    /// Two ends of a websocket over loopback TCP: (server role, client role).
    fn pair() -> (WebSocket<TcpStream>, WebSocket<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        (
            WebSocket::from_raw_socket(far, Role::Server, None),
            WebSocket::from_raw_socket(near, Role::Client, None),
        )
    }

    const LIMITS: Limits = Limits {
        idle: Duration::from_secs(30),
        stop_every: Duration::from_millis(50),
    };

    /// A relay between a client and an upstream, on a thread; the
    /// browser's and the console server's ends, and a stop switch.
    struct Running {
        browser: WebSocket<TcpStream>,
        console: WebSocket<TcpStream>,
        stop: Arc<AtomicBool>,
        relay: thread::JoinHandle<Outcome>,
    }

    fn running(limits: Limits) -> Running {
        let (client_side, browser) = pair();
        let (console, upstream_side) = pair();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let relay = thread::spawn(move || {
            relay(
                (client_side, Vec::new()),
                (upstream_side, Vec::new()),
                limits,
                |_, _| flag.load(Ordering::SeqCst).then(|| EndCode::Revoked.into()),
            )
        });
        Running {
            browser,
            console,
            stop,
            relay,
        }
    }

    fn binary(ws: &mut WebSocket<TcpStream>) -> Vec<u8> {
        loop {
            match ws.read().unwrap() {
                Message::Binary(b) => return b.to_vec(),
                Message::Close(_) => panic!("closed"),
                _ => {}
            }
        }
    }

    #[test]
    fn bytes_pass_both_ways_and_are_counted_until_the_client_closes() {
        let mut r = running(LIMITS);
        for chunk in [&b"RFB "[..], b"003.008\n", b"\x01"] {
            r.browser.send(Message::binary(chunk.to_vec())).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 13 {
            got.extend(binary(&mut r.console));
        }
        assert_eq!(got, b"RFB 003.008\n\x01");
        r.console.send(Message::binary(vec![7u8; 5000])).unwrap();
        assert_eq!(binary(&mut r.browser), vec![7u8; 5000]);
        r.browser.close(None).unwrap();
        let outcome = r.relay.join().unwrap();
        assert_eq!(
            outcome,
            Outcome {
                end: End::ClientClosed,
                to_client: 5000,
                from_client: 13
            }
        );
        // The console server's side was closed too.
        loop {
            match r.console.read() {
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    #[test]
    fn a_message_larger_than_the_write_buffer_arrives_in_pieces() {
        let mut r = running(LIMITS);
        let big: Vec<u8> = (0..MAX_WRITE_BUFFER * 3).map(|i| i as u8).collect();
        r.console.send(Message::binary(big.clone())).unwrap();
        let mut got = Vec::new();
        while got.len() < big.len() {
            got.extend(binary(&mut r.browser));
        }
        assert!(got == big);
        r.browser.close(None).unwrap();
        assert_eq!(r.relay.join().unwrap().to_client, big.len() as u64);
    }

    #[test]
    fn a_client_that_never_reads_stops_the_reading_of_the_console() {
        let mut r = running(LIMITS);
        // The console sends as fast as it can; the browser reads nothing.
        r.console
            .get_ref()
            .set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let chunk = vec![1u8; 64 * 1024];
        let mut sent = 0usize;
        let blocked = loop {
            match r.console.send(Message::binary(chunk.clone())) {
                Ok(()) => sent += chunk.len(),
                Err(_) => break true,
            }
            if sent > 256 << 20 {
                break false;
            }
        };
        // The socket buffers on the way hold a few MiB; the relay holds at
        // most its write buffer and one message.
        assert!(blocked, "the console could send {sent} bytes");
        assert!(sent < 64 << 20, "{sent}");
        r.stop.store(true, Ordering::SeqCst);
        let outcome = r.relay.join().unwrap();
        assert_eq!(outcome.end, End::Stopped(EndCode::Revoked.into()));
        assert!(outcome.to_client as usize <= sent);
    }

    #[test]
    fn garbage_and_idleness_end_the_session_with_a_reason() {
        let mut r = running(LIMITS);
        r.browser.send(Message::text("hello")).unwrap();
        let outcome = r.relay.join().unwrap();
        assert_eq!(
            outcome.end.reason().words(),
            "error: the client sent a text message where RFB needs binary ones"
        );
        // Not even websocket framing.
        let r = running(LIMITS);
        let mut raw = r.browser.into_inner();
        raw.write_all(b"GET / HTTP/1.1\r\n\r\n\xff\xff\xff\xff")
            .unwrap();
        let outcome = r.relay.join().unwrap();
        assert!(
            outcome.end.reason().words().starts_with("error: client: "),
            "{outcome:?}"
        );
        // Nothing either way.
        let r = running(Limits {
            idle: Duration::from_millis(200),
            ..LIMITS
        });
        assert_eq!(r.relay.join().unwrap().end, End::Idle);
        drop((r.browser, r.console));
    }

    /// The code of the close frame that comes on a raw client socket
    /// (frames from the relay are unmasked and short).
    fn close_code(raw: &mut TcpStream) -> u16 {
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = [0u8; 2];
        raw.read_exact(&mut head).unwrap();
        assert_eq!(head[0], 0x88, "not a close frame: {head:?}");
        let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
        raw.read_exact(&mut payload).unwrap();
        u16::from_be_bytes([payload[0], payload[1]])
    }

    /// A relay whose client side takes messages of at most `max` bytes;
    /// the raw socket of its browser.
    fn relay_with_limit(
        max: usize,
    ) -> (TcpStream, WebSocket<TcpStream>, thread::JoinHandle<Outcome>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let raw = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let client_side = WebSocket::from_raw_socket(far, Role::Server, Some(config));
        let (console, upstream_side) = pair();
        let relay = thread::spawn(move || {
            relay(
                (client_side, Vec::new()),
                (upstream_side, Vec::new()),
                LIMITS,
                |_, _| None,
            )
        });
        (raw, console, relay)
    }

    #[test]
    fn a_client_breaking_the_protocol_hears_which_rule_it_broke() {
        // A masked frame header (mask 0: the payload is sent as it is).
        let masked = |opcode: u8, payload: &[u8]| -> Vec<u8> {
            let mut frame = vec![0x80 | opcode];
            if payload.len() < 126 {
                frame.push(0x80 | payload.len() as u8);
            } else {
                frame.push(0x80 | 126);
                frame.extend((payload.len() as u16).to_be_bytes());
            }
            frame.extend([0, 0, 0, 0]);
            frame.extend(payload);
            frame
        };
        let cases: [(Vec<u8>, u16, &str); 4] = [
            // A client's frame must be masked.
            (
                vec![0x82, 0x01, 0x00],
                1002,
                "error: client: WebSocket protocol error",
            ),
            (
                masked(0x1, b"hello"),
                1003,
                "error: the client sent a text message",
            ),
            (masked(0x1, b"\xff\xfe"), 1007, "error: client: UTF-8"),
            (
                masked(0x2, &[0u8; 2000]),
                1009,
                "error: client: Space limit exceeded",
            ),
        ];
        for (bytes, code, reason) in cases {
            let (mut raw, console, relay) = relay_with_limit(1000);
            raw.write_all(&bytes).unwrap();
            assert_eq!(close_code(&mut raw), code, "{reason}");
            let outcome = relay.join().unwrap();
            assert!(
                outcome.end.reason().words().starts_with(reason),
                "{outcome:?}"
            );
            drop(console);
        }
    }

    #[test]
    fn the_console_breaking_the_protocol_is_an_error_to_the_client() {
        let mut r = running(LIMITS);
        r.console.send(Message::text("hello")).unwrap();
        match r.browser.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Error),
            other => panic!("{other:?}"),
        }
        let outcome = r.relay.join().unwrap();
        assert_eq!(
            outcome.end.reason().words(),
            "error: the upstream sent a text message where RFB needs binary ones"
        );
    }

    #[test]
    fn the_console_closing_closes_the_client_with_a_frame() {
        let mut r = running(LIMITS);
        r.console.close(None).unwrap();
        let outcome = r.relay.join().unwrap();
        assert_eq!(outcome.end, End::UpstreamClosed);
        match r.browser.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("{other:?}"),
        }
    }
}
