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

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Error as WsError, Message, WebSocket};

/// Each websocket's read buffer: consoles send small updates.
pub const READ_BUFFER: usize = 16 * 1024;
/// Outgoing messages are gathered up to this size, then written.
pub const WRITE_BUFFER: usize = 16 * 1024;
/// What may wait for a slow reader, per side; past it the other side is
/// no longer read.
pub const MAX_WRITE_BUFFER: usize = 256 * 1024;
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
    Stopped(String),
    Error(String),
}

impl End {
    /// The end reason as recorded: `client closed`, `upstream closed`,
    /// `idle`, the stop reason, or `error: ...`.
    pub fn reason(&self) -> String {
        match self {
            End::ClientClosed => "client closed".into(),
            End::UpstreamClosed => "upstream closed".into(),
            End::Idle => "idle".into(),
            End::Stopped(why) => why.clone(),
            End::Error(why) => format!("error: {why}"),
        }
    }

    /// What the client's close frame says: never an upstream detail
    /// (an error may name Hetzner's host).
    fn to_client(&self) -> CloseFrame {
        let (code, reason) = match self {
            End::ClientClosed | End::UpstreamClosed => (CloseCode::Normal, "the console closed"),
            End::Idle => (CloseCode::Normal, "idle"),
            End::Stopped(why) => (CloseCode::Normal, why.as_str()),
            End::Error(_) => (CloseCode::Error, "console error"),
        };
        let mut reason = reason.to_string();
        reason.truncate(120);
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }
}

/// How a session went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub end: End,
    pub to_client: u64,
    pub from_client: u64,
}

/// One side of the relay.
struct Side<S> {
    ws: WebSocket<S>,
    /// `client` or `upstream`, for end reasons.
    name: &'static str,
    /// A message for this side that did not fit its buffer yet.
    held: Option<Message>,
    /// Its buffer waits for the socket to take more.
    want_write: bool,
}

impl<S: Socket> Side<S> {
    fn new(mut ws: WebSocket<S>, name: &'static str) -> Side<S> {
        ws.set_config(|c| {
            c.read_buffer_size = READ_BUFFER;
            c.write_buffer_size = WRITE_BUFFER;
            c.max_write_buffer_size = MAX_WRITE_BUFFER;
        });
        Side {
            ws,
            name,
            held: None,
            want_write: false,
        }
    }

    fn tcp(&self) -> Result<&TcpStream, End> {
        self.ws
            .get_ref()
            .tcp()
            .ok_or_else(|| End::Error(format!("the {} connection cannot be waited on", self.name)))
    }

    fn closed(&self) -> End {
        if self.name == "client" {
            End::ClientClosed
        } else {
            End::UpstreamClosed
        }
    }

    fn failed(&self, err: WsError) -> End {
        match err {
            WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                self.closed()
            }
            WsError::Io(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                self.closed()
            }
            other => End::Error(format!("{}: {other}", self.name)),
        }
    }

    /// Queues `message`; when the buffer is full it is held (and this
    /// side's peer is not read until it is written).
    fn push(&mut self, message: Message) -> Result<(), End> {
        match self.ws.write(message) {
            Ok(()) => Ok(()),
            Err(WsError::WriteBufferFull(message)) => {
                self.held = Some(*message);
                Ok(())
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.want_write = true;
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Writes what the buffer holds, as far as the socket takes it.
    fn flush(&mut self) -> Result<(), End> {
        if let Some(message) = self.held.take() {
            self.push(message)?;
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

    /// Ends the websocket: a close frame, written within a second at most.
    fn close(mut self, frame: Option<CloseFrame>) {
        if let Some(tcp) = self.ws.get_ref().tcp() {
            let _ = tcp.set_nonblocking(false);
            let _ = tcp.set_write_timeout(Some(CLOSE_TIMEOUT));
            let _ = tcp.set_read_timeout(Some(CLOSE_TIMEOUT));
        }
        let _ = self.ws.close(frame);
        let _ = self.ws.flush();
        if let Some(tcp) = self.ws.get_ref().tcp() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Moves what `src` has ready to `dst`; true when `src` may have more
/// (its turn ended before it ran dry).
fn pump<A: Socket, B: Socket>(
    src: &mut Side<A>,
    dst: &mut Side<B>,
    count: &mut u64,
    activity: &mut Instant,
) -> Result<bool, End> {
    let mut more = false;
    for turn in 0.. {
        if dst.held.is_some() {
            break;
        }
        if turn == BATCH {
            more = true;
            break;
        }
        match src.ws.read() {
            Ok(Message::Binary(bytes)) => {
                *count += bytes.len() as u64;
                *activity = Instant::now();
                dst.push(Message::Binary(bytes))?;
            }
            Ok(Message::Text(_)) => {
                return Err(End::Error(format!(
                    "the {} sent a text message where RFB needs binary ones",
                    src.name
                )));
            }
            Ok(Message::Close(_)) => return Err(src.closed()),
            Ok(_) => {}
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(src.failed(e)),
        }
    }
    // A pong or close reply tungstenite queued on `src` goes out too.
    src.flush()?;
    dst.flush()?;
    Ok(more)
}

/// Relays until the session ends; closes both websockets.
/// `client_rest`/`upstream_rest`: bytes each side sent during its
/// handshake that belong to the other.
pub fn relay<C: Socket, U: Socket>(
    client: (WebSocket<C>, Vec<u8>),
    upstream: (WebSocket<U>, Vec<u8>),
    limits: Limits,
    mut stop: impl FnMut(u64, u64) -> Option<String>,
) -> Outcome {
    let mut c = Side::new(client.0, "client");
    let mut u = Side::new(upstream.0, "upstream");
    let mut outcome = Outcome {
        end: End::ClientClosed,
        to_client: 0,
        from_client: 0,
    };
    let run = (|| -> Result<(), End> {
        for side in [c.tcp()?, u.tcp()?] {
            side.set_nonblocking(true)
                .map_err(|e| End::Error(format!("cannot relay: {e}")))?;
        }
        if !client.1.is_empty() {
            outcome.from_client += client.1.len() as u64;
            u.push(Message::binary(client.1))?;
        }
        if !upstream.1.is_empty() {
            outcome.to_client += upstream.1.len() as u64;
            c.push(Message::binary(upstream.1))?;
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
            // its buffer waits. Hang-ups and errors are reported anyway.
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
            let (cf, uf) = (
                flags(u.held.is_none(), c.want_write || c.held.is_some()),
                flags(c.held.is_none(), u.want_write || u.held.is_some()),
            );
            let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            });
            let mut fds = [PollFd::new(c.tcp()?, cf), PollFd::new(u.tcp()?, uf)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(End::Error(format!("cannot wait on the connections: {e}"))),
            }
        }
    })();
    if let Err(end) = run {
        outcome.end = end;
    }
    let to_client = outcome.end.to_client();
    c.close(Some(to_client));
    u.close(None);
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
                |_, _| flag.load(Ordering::SeqCst).then(|| "revoked".to_string()),
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
        assert_eq!(outcome.end, End::Stopped("revoked".into()));
        assert!(outcome.to_client as usize <= sent);
    }

    #[test]
    fn garbage_and_idleness_end_the_session_with_a_reason() {
        let mut r = running(LIMITS);
        r.browser.send(Message::text("hello")).unwrap();
        let outcome = r.relay.join().unwrap();
        assert_eq!(
            outcome.end.reason(),
            "error: the client sent a text message where RFB needs binary ones"
        );
        // Not even websocket framing.
        let r = running(LIMITS);
        let mut raw = r.browser.into_inner();
        raw.write_all(b"GET / HTTP/1.1\r\n\r\n\xff\xff\xff\xff")
            .unwrap();
        let outcome = r.relay.join().unwrap();
        assert!(
            outcome.end.reason().starts_with("error: client: "),
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
