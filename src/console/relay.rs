//! Relays a console session: websocket binary messages from the client to
//! the console server and back, on one thread that waits on both sockets
//! with poll(2).
//!
//! The frames are not reassembled into messages: each direction has one
//! buffer that bytes are read into (64 KiB or more at a time) and written
//! from, and a small incremental frame parser walks them in place. Frames
//! from the console server arrive unmasked and leave unmasked to the
//! browser, so their headers and payloads pass as they came; the client's
//! masked frames get hcc's own mask key in their header and their payload
//! is XORed in place, a word at a time, with both keys at once. Control
//! frames are handled here and cut out (a ping is answered, a pong
//! ignored, a close ends the session); everything else the websocket
//! rules forbid is the peer's violation, as tungstenite would have called
//! it. tungstenite does the opening handshakes only.
//!
//! Memory stays bounded whatever a side does: what waits for a side is at
//! most [`MAX_WRITE_BUFFER`] bytes (its direction's buffer), and while
//! that buffer has no room for another read the other side is not read
//! (TCP's window then slows the sender). The session ends when a side
//! closes or fails, when nothing passed either way for the idle time, or
//! when `stop` names a reason (asked at least every
//! [`Limits::stop_every`], with the RFB bytes relayed so far to the client
//! and from it).

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::{CloseCode, Data};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::store::{EndCode, EndReason};

/// The read buffer of a websocket during its handshakes.
pub const READ_BUFFER: usize = 64 * 1024;
/// Outgoing messages of the handshakes are gathered up to this size.
pub const WRITE_BUFFER: usize = 64 * 1024;
/// What may wait for a slow reader, per side: the size of each
/// direction's buffer. While it has no room for a read of [`MIN_READ`],
/// the other side is not read.
pub const MAX_WRITE_BUFFER: usize = 256 * 1024;
/// The smallest read: fewer, larger reads cost less per byte.
const MIN_READ: usize = 64 * 1024;
/// A plain TCP side's bytes go out in frames of at most this many bytes,
/// so their header has room in front of them (4 bytes of length).
const TCP_FRAME: usize = 65535;
/// A websocket header's largest size.
const MAX_HEADER: usize = 14;
/// Reads from one side before the other gets its turn.
const BATCH: usize = 64;
/// The closing handshake may take this long.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A frame cut short by the end is completed with zeros up to this size
/// before the close frame; past it the connection is just shut.
const MAX_PAD: u64 = 4 << 20;

/// A websocket whose TCP socket poll(2) can wait on.
pub trait Socket: Read + Write {
    fn tcp(&self) -> Option<&TcpStream>;

    /// Stops (or resumes) reads from the socket itself, for taking what a
    /// websocket library already holds without reading more; false when
    /// it cannot.
    fn hold(&mut self, _held: bool) -> bool {
        false
    }
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

    fn hold(&mut self, held: bool) -> bool {
        self.held = held;
        true
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
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
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

/// How a side's bytes are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Framing {
    side: Side,
    /// A websocket's limits on what it sends; `None` for plain TCP.
    ws: Option<WsLimits>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WsLimits {
    max_frame: u64,
    max_message: u64,
}

impl Framing {
    fn closed(&self) -> End {
        if self.side == Side::Client {
            End::ClientClosed
        } else {
            End::UpstreamClosed
        }
    }

    /// A websocket error of this side as the session's end: only the
    /// client hears the code of its breach; the console server's faults
    /// are hcc's problem as far as the browser can tell (1011).
    fn failed(&self, err: WsError) -> End {
        match err {
            WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => self.closed(),
            WsError::Io(e) => self.io_failed(e),
            other => match violation(&other) {
                Some(code) if self.side == Side::Client => {
                    End::Violation(code, format!("{}: {other}", self.side))
                }
                _ => End::Error(format!("{}: {other}", self.side)),
            },
        }
    }

    fn broke(&self, err: ProtocolError) -> End {
        self.failed(WsError::Protocol(err))
    }

    fn io_failed(&self, e: io::Error) -> End {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => self.closed(),
            _ => End::Error(format!("{}: {e}", self.side)),
        }
    }

    /// A text message: RFB needs binary ones (1003), or 1007 when it is
    /// not even UTF-8.
    fn text(&self, payload: Option<&[u8]>) -> End {
        if let Some(Err(e)) = payload.map(std::str::from_utf8) {
            return self.failed(WsError::from(e));
        }
        let why = format!(
            "the {} sent a text message where RFB needs binary ones",
            self.side
        );
        // 1003: data of a type this end does not take.
        if self.side == Side::Client {
            End::Violation(CloseCode::Unsupported, why)
        } else {
            End::Error(why)
        }
    }
}

/// One side of the relay: a websocket (browser, console server) or a
/// plain TCP connection (a native viewer, `hcc vnc`), taken out of what
/// did its handshake.
pub struct Conn<S> {
    stream: S,
    framing: Framing,
    /// A control frame for this side (a pong) that waits for a frame
    /// boundary in what goes to it.
    control: [u8; MAX_HEADER + 125],
    control_len: usize,
    control_at: usize,
    /// Written bytes wait in the stream itself (TLS records rustls could
    /// not send yet): it is flushed when the socket takes more.
    unflushed: bool,
}

/// A websocket side: RFB travels in binary messages.
pub struct WsEnd;

impl WsEnd {
    /// Takes the socket out of `ws`, with the data of the whole frames
    /// tungstenite had read already and nobody asked for yet, where the
    /// stream can keep it from reading more (the client's: a frame cut in
    /// two by the edge of its buffer would be a client racing ahead of
    /// RFB, which waits for SecurityResult before ClientInit). Reads past
    /// those could leave half a frame behind. A console server sends
    /// nothing between SecurityResult and the ClientInit only the relay
    /// passes on, so tungstenite holds none of its bytes here.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<S: Socket>(mut ws: WebSocket<S>, side: Side) -> (Conn<S>, Result<Vec<u8>, End>) {
        let config = ws.get_config();
        let framing = Framing {
            side,
            ws: Some(WsLimits {
                max_frame: config.max_frame_size.unwrap_or(usize::MAX) as u64,
                max_message: config.max_message_size.unwrap_or(usize::MAX) as u64,
            }),
        };
        let mut held = Vec::new();
        let blocking = ws.get_ref().tcp().map(|t| t.set_nonblocking(true));
        let drained = match blocking {
            Some(Ok(())) if !ws.get_mut().hold(true) => Ok(held),
            Some(Ok(())) => {
                let drained = loop {
                    match ws.read() {
                        Ok(Message::Binary(bytes)) => held.extend_from_slice(&bytes),
                        Ok(Message::Text(text)) => break Err(framing.text(Some(text.as_bytes()))),
                        Ok(Message::Close(_)) => break Err(framing.closed()),
                        Ok(_) => {}
                        Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                            break Ok(held);
                        }
                        Err(e) => break Err(framing.failed(e)),
                    }
                };
                // A pong tungstenite queued goes out now.
                let _ = ws.flush();
                ws.get_mut().hold(false);
                drained
            }
            Some(Err(e)) => Err(End::Error(format!("cannot relay: {e}"))),
            None => Err(End::Error(format!(
                "the {side} connection cannot be waited on"
            ))),
        };
        (Conn::new(ws.into_inner(), framing), drained)
    }
}

/// A plain TCP side: a native VNC viewer speaks RFB on the socket.
pub struct TcpEnd;

impl TcpEnd {
    #[allow(clippy::new_ret_no_self)]
    pub fn new(stream: TcpStream, side: Side) -> Conn<TcpStream> {
        Conn::new(stream, Framing { side, ws: None })
    }
}

impl<S: Socket> Conn<S> {
    fn new(stream: S, framing: Framing) -> Conn<S> {
        Conn {
            stream,
            framing,
            control: [0; MAX_HEADER + 125],
            control_len: 0,
            control_at: 0,
            unflushed: false,
        }
    }

    fn tcp(&self) -> Option<&TcpStream> {
        self.stream.tcp()
    }

    /// Queues a control frame for this side (an earlier one not yet
    /// begun is replaced: a pong answers the latest ping).
    fn queue_control(&mut self, opcode: u8, payload: &[u8], key: [u8; 4]) {
        if self.control_at > 0 && self.control_at < self.control_len {
            return;
        }
        let masked = self.framing.side == Side::Upstream;
        let payload = &payload[..payload.len().min(125)];
        let h = header(
            &mut self.control,
            true,
            opcode,
            payload.len() as u64,
            masked.then_some(key),
        );
        self.control[h..h + payload.len()].copy_from_slice(payload);
        if masked {
            mask(&mut self.control[h..h + payload.len()], key, 0);
        }
        self.control_len = h + payload.len();
        self.control_at = 0;
    }

    fn has_control(&self) -> bool {
        self.control_at < self.control_len
    }

    /// Does it wait for its socket to take bytes?
    fn wants_write(&self, pipe: &Pipe) -> bool {
        pipe.waiting() || self.has_control() || self.unflushed
    }

    /// Ends the connection: what waits for it in `pipe`, then a close
    /// frame for a websocket (only the client hears why; the console
    /// server just hears goodbye).
    fn close(&mut self, end: &End, pipe: &mut Pipe, key: [u8; 4]) {
        if let Some(tcp) = self.tcp() {
            let _ = tcp.set_nonblocking(false);
            let _ = tcp.set_write_timeout(Some(CLOSE_TIMEOUT));
            let _ = tcp.set_read_timeout(Some(CLOSE_TIMEOUT));
        }
        let mut ok = self
            .stream
            .write_all(&pipe.prefix[pipe.prefix_at..])
            .is_ok()
            && self
                .stream
                .write_all(&pipe.buf[pipe.sent..pipe.ready])
                .is_ok();
        if ok && self.framing.ws.is_some() {
            // A frame cut short is completed, or the close frame would be
            // read as its payload.
            let left = pipe.left_to_send();
            ok = left <= MAX_PAD;
            let zeros = [0u8; 4096];
            let mut pad = left;
            while ok && pad > 0 {
                let n = pad.min(zeros.len() as u64) as usize;
                ok = self.stream.write_all(&zeros[..n]).is_ok();
                pad -= n as u64;
            }
            if ok {
                let mut frame = [0u8; MAX_HEADER + 125];
                let n = if self.framing.side == Side::Client {
                    let close = end.to_client();
                    let mut payload = u16::from(close.code).to_be_bytes().to_vec();
                    payload.extend_from_slice(close.reason.as_bytes());
                    let h = header(&mut frame, true, OP_CLOSE, payload.len() as u64, None);
                    frame[h..h + payload.len()].copy_from_slice(&payload);
                    h + payload.len()
                } else {
                    header(&mut frame, true, OP_CLOSE, 0, Some(key))
                };
                let _ = self.stream.write_all(&frame[..n]);
            }
        }
        let _ = self.stream.flush();
        if let Some(tcp) = self.tcp() {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    }
}

const OP_CONTINUE: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;

/// Writes a frame header into `out`; its length. `mask`: the key, for a
/// frame to the console server.
fn header(out: &mut [u8], fin: bool, opcode: u8, len: u64, mask: Option<[u8; 4]>) -> usize {
    out[0] = if fin { 0x80 } else { 0 } | opcode;
    let bit = if mask.is_some() { 0x80 } else { 0 };
    let mut h = if len < 126 {
        out[1] = bit | len as u8;
        2
    } else if len <= 0xffff {
        out[1] = bit | 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = bit | 127;
        out[2..10].copy_from_slice(&len.to_be_bytes());
        10
    };
    if let Some(key) = mask {
        out[h..h + 4].copy_from_slice(&key);
        h += 4;
    }
    h
}

/// The length of the header a frame of `len` bytes gets.
fn header_len(len: u64, masked: bool) -> usize {
    let base = if len < 126 {
        2
    } else if len <= 0xffff {
        4
    } else {
        10
    };
    base + if masked { 4 } else { 0 }
}

/// XORs `data` with the mask `key`, the first byte being the payload's
/// byte number `phase` (RFC 6455 5.3), eight bytes at a time (the
/// compiler makes each chunk one load, XOR and store).
fn mask(data: &mut [u8], key: [u8; 4], phase: usize) {
    let mut key = key;
    key.rotate_left(phase % 4);
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ word).to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *b ^= k;
    }
}

/// hcc's mask keys for the frames it sends the console server: masking
/// keeps a client from choosing the bytes on the console's wire (RFC
/// 6455 10.3), so the keys must not be the client's, nor guessable by
/// it; the client never sees them, and a generator seeded from the
/// system's randomness per session keeps them so at a few cycles each.
struct Keys(fastrand::Rng);

impl Keys {
    fn new() -> Keys {
        let seed = getrandom::u64().unwrap_or_else(|_| {
            // No system randomness: the time and the address of a stack
            // variable still differ between sessions.
            let here = 0u8;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            nanos ^ (&here as *const u8 as u64).rotate_left(32)
        });
        Keys(fastrand::Rng::with_seed(seed))
    }

    fn next(&mut self) -> [u8; 4] {
        self.0.u32(..).to_ne_bytes()
    }
}

/// Where the parser of a direction is in its source's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    /// At a frame's start (its header may be partly read).
    Header,
    /// In a data frame's payload: bytes left, the key XORed into them
    /// (source's mask with the destination's), and where in the key.
    Payload {
        left: u64,
        key: Option<[u8; 4]>,
        phase: usize,
    },
}

/// One direction: bytes read from its source wait in `buf`, reframed in
/// place for the destination, until the destination takes them.
/// `buf[sent..ready]` goes out next; `buf[ready..parsed]` was cut (control
/// frames, headers the destination does not want); `buf[parsed..filled]`
/// is not parsed yet (part of a header or of a control frame).
struct Pipe {
    buf: Box<[u8]>,
    sent: usize,
    ready: usize,
    parsed: usize,
    filled: usize,
    state: Parse,
    /// A fragmented message is open: its bytes so far.
    message: Option<u64>,
    /// Sent before `buf`: what the source's handshake left, framed.
    prefix: Vec<u8>,
    prefix_at: usize,
    /// RFB bytes that went through.
    count: u64,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            buf: vec![0u8; MAX_WRITE_BUFFER].into_boxed_slice(),
            sent: 0,
            ready: 0,
            parsed: 0,
            filled: 0,
            state: Parse::Header,
            message: None,
            prefix: Vec::new(),
            prefix_at: 0,
            count: 0,
        }
    }

    /// Makes `buf[from..to]` the next bytes to go out.
    fn emit(&mut self, from: usize, to: usize) {
        if self.sent == self.ready {
            // Nothing waits: the cut bytes need not be closed up.
            self.sent = from;
            self.ready = from;
        } else if from != self.ready {
            self.buf.copy_within(from..to, self.ready);
        }
        self.ready += to - from;
    }

    /// Frees the space of what went out; true when a read of at least
    /// [`MIN_READ`] fits.
    fn room(&mut self) -> bool {
        if self.sent == self.ready {
            // Only an unparsed header or control frame is left (a few
            // bytes): it moves to the front.
            self.buf.copy_within(self.parsed..self.filled, 0);
            self.filled -= self.parsed;
            self.sent = 0;
            self.ready = 0;
            self.parsed = 0;
        } else if self.buf.len() - self.filled < MIN_READ && self.sent > 0 {
            // The destination is slow: what waits moves to the front.
            let waiting = self.ready - self.sent;
            self.buf.copy_within(self.sent..self.ready, 0);
            self.buf.copy_within(self.parsed..self.filled, waiting);
            self.filled = waiting + self.filled - self.parsed;
            self.parsed = waiting;
            self.ready = waiting;
            self.sent = 0;
        }
        self.buf.len() - self.filled >= MIN_READ
    }

    /// Bytes waiting for the destination (in `buf` or before it).
    fn waiting(&self) -> bool {
        self.sent < self.ready || self.prefix_at < self.prefix.len()
    }

    /// Is what went out so far whole frames (a control frame may follow)?
    fn between_frames(&self) -> bool {
        self.state == Parse::Header && !self.waiting()
    }

    /// Payload bytes of the frame being relayed that the destination
    /// was promised and did not get yet (a websocket source).
    fn left_to_send(&self) -> u64 {
        match self.state {
            Parse::Payload { left, .. } => left,
            Parse::Header => 0,
        }
    }

    /// Frames `data` (from a handshake) to go out before anything else.
    fn prefix(&mut self, data: &[u8], dst: Framing, keys: &mut Keys) {
        self.count += data.len() as u64;
        if dst.ws.is_none() {
            self.prefix.extend_from_slice(data);
            return;
        }
        for piece in data.chunks(TCP_FRAME) {
            let key = (dst.side == Side::Upstream).then(|| keys.next());
            let mut head = [0u8; MAX_HEADER];
            let h = header(&mut head, true, OP_BINARY, piece.len() as u64, key);
            self.prefix.extend_from_slice(&head[..h]);
            let at = self.prefix.len();
            self.prefix.extend_from_slice(piece);
            if let Some(key) = key {
                mask(&mut self.prefix[at..], key, 0);
            }
        }
    }

    /// Where a plain TCP source's next read goes: behind room for the
    /// header its frame gets.
    fn tcp_read_at(&self, dst: Framing) -> usize {
        if dst.ws.is_some() {
            self.filled + header_len(TCP_FRAME as u64, dst.side == Side::Upstream)
        } else {
            self.filled
        }
    }

    /// Takes `n` bytes a plain TCP source put at `at` (see
    /// [`Pipe::tcp_read_at`]): one binary frame for a websocket.
    fn took_raw(&mut self, at: usize, n: usize, dst: Framing, keys: &mut Keys) {
        self.count += n as u64;
        let mut start = at;
        if dst.ws.is_some() {
            let key = (dst.side == Side::Upstream).then(|| keys.next());
            let h = header_len(n as u64, key.is_some());
            start = at - h;
            let mut head = [0u8; MAX_HEADER];
            header(&mut head, true, OP_BINARY, n as u64, key);
            self.buf[start..at].copy_from_slice(&head[..h]);
            if let Some(key) = key {
                mask(&mut self.buf[at..at + n], key, 0);
            }
        }
        self.parsed = start;
        self.filled = at + n;
        self.emit(start, at + n);
        self.parsed = self.filled;
    }

    /// Parses what a websocket source sent (`buf[parsed..filled]`) into
    /// what goes to `dst`, as far as it is complete. A ping asks for a
    /// pong to the source (`pong`: its payload's length and bytes).
    fn parse(
        &mut self,
        src: Framing,
        dst: Framing,
        keys: &mut Keys,
        pong: &mut Option<(usize, [u8; 125])>,
    ) -> Result<(), End> {
        let Some(limits) = src.ws else {
            return Ok(());
        };
        loop {
            if let Parse::Payload { left, key, phase } = self.state {
                let n = left.min((self.filled - self.parsed) as u64) as usize;
                if n == 0 && left > 0 {
                    return Ok(());
                }
                let (from, to) = (self.parsed, self.parsed + n);
                if let Some(key) = key {
                    mask(&mut self.buf[from..to], key, phase);
                }
                self.emit(from, to);
                self.parsed = to;
                self.count += n as u64;
                let left = left - n as u64;
                self.state = if left == 0 {
                    Parse::Header
                } else {
                    Parse::Payload {
                        left,
                        key,
                        phase: (phase + n) % 4,
                    }
                };
                continue;
            }
            let at = self.parsed;
            let bytes = &self.buf[at..self.filled];
            if bytes.len() < 2 {
                return Ok(());
            }
            let (b0, b1) = (bytes[0], bytes[1]);
            let fin = b0 & 0x80 != 0;
            let opcode = b0 & 0x0f;
            let masked = b1 & 0x80 != 0;
            let (len_bytes, short) = match b1 & 0x7f {
                126 => (2, None),
                127 => (8, None),
                n => (0, Some(u64::from(n))),
            };
            let h = 2 + len_bytes + if masked { 4 } else { 0 };
            if bytes.len() < h {
                return Ok(());
            }
            let len = match short {
                Some(n) => n,
                None if len_bytes == 2 => u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
                None => {
                    let mut l = [0u8; 8];
                    l.copy_from_slice(&bytes[2..10]);
                    u64::from_be_bytes(l)
                }
            };
            let src_key = masked.then(|| {
                let mut k = [0u8; 4];
                k.copy_from_slice(&bytes[h - 4..h]);
                k
            });
            if b0 & 0x70 != 0 {
                return Err(src.broke(ProtocolError::NonZeroReservedBits));
            }
            if len > limits.max_frame {
                return Err(src.failed(WsError::Capacity(CapacityError::MessageTooLong {
                    size: usize::try_from(len).unwrap_or(usize::MAX),
                    max_size: limits.max_frame as usize,
                })));
            }
            match (masked, src.side) {
                (false, Side::Client) => {
                    return Err(src.broke(ProtocolError::UnmaskedFrameFromClient));
                }
                (true, Side::Upstream) => {
                    return Err(src.broke(ProtocolError::MaskedFrameFromServer));
                }
                _ => {}
            }
            match opcode {
                OP_CLOSE | OP_PING | OP_PONG => {
                    if !fin {
                        return Err(src.broke(ProtocolError::FragmentedControlFrame));
                    }
                    if len > 125 {
                        return Err(src.broke(ProtocolError::ControlFrameTooBig));
                    }
                    let len = len as usize;
                    if bytes.len() < h + len {
                        return Ok(());
                    }
                    let mut payload = [0u8; 125];
                    payload[..len].copy_from_slice(&bytes[h..h + len]);
                    if let Some(k) = src_key {
                        mask(&mut payload[..len], k, 0);
                    }
                    match opcode {
                        OP_CLOSE if len == 1 => {
                            return Err(src.broke(ProtocolError::InvalidCloseSequence));
                        }
                        OP_CLOSE => return Err(src.closed()),
                        OP_PING => *pong = Some((len, payload)),
                        _ => {}
                    }
                    self.parsed = at + h + len;
                }
                OP_TEXT if self.message.is_some() => {
                    return Err(src.broke(ProtocolError::ExpectedFragment(Data::Text)));
                }
                OP_TEXT => {
                    // Told why only in full: a short one is awaited whole
                    // to say whether it was UTF-8 at all.
                    let len = len as usize;
                    if fin && len <= 4096 && bytes.len() < h + len {
                        return Ok(());
                    }
                    if fin && len <= 4096 {
                        let mut payload = bytes[h..h + len].to_vec();
                        if let Some(k) = src_key {
                            mask(&mut payload, k, 0);
                        }
                        return Err(src.text(Some(&payload)));
                    }
                    return Err(src.text(None));
                }
                OP_BINARY | OP_CONTINUE => {
                    let so_far = match (opcode, self.message) {
                        (OP_BINARY, None) => 0,
                        (OP_CONTINUE, Some(so_far)) => so_far,
                        (OP_BINARY, Some(_)) => {
                            return Err(src.broke(ProtocolError::ExpectedFragment(Data::Binary)));
                        }
                        _ => return Err(src.broke(ProtocolError::UnexpectedContinueFrame)),
                    };
                    let total = so_far.saturating_add(len);
                    if total > limits.max_message {
                        return Err(src.failed(WsError::Capacity(CapacityError::MessageTooLong {
                            size: usize::try_from(total).unwrap_or(usize::MAX),
                            max_size: limits.max_message as usize,
                        })));
                    }
                    self.message = (!fin).then_some(total);
                    let dst_key = match dst.ws {
                        Some(_) if dst.side == Side::Upstream => Some(keys.next()),
                        _ => None,
                    };
                    let key = match (src_key, dst_key) {
                        (None, None) => None,
                        (Some(k), None) | (None, Some(k)) => Some(k),
                        (Some(a), Some(b)) => Some(std::array::from_fn(|i| a[i] ^ b[i])),
                    };
                    if dst.ws.is_some() {
                        if src_key.is_some() || dst_key.is_some() {
                            // The header again, with hcc's key or none, in
                            // the place of the old one (never longer: hcc
                            // writes lengths in the fewest bytes).
                            let mut head = [0u8; MAX_HEADER];
                            let n = header(&mut head, fin, opcode, len, dst_key);
                            if n > h {
                                return Err(End::Error(format!(
                                    "cannot reframe the {}'s frames",
                                    src.side
                                )));
                            }
                            self.buf[at + h - n..at + h].copy_from_slice(&head[..n]);
                            self.emit(at + h - n, at + h);
                        } else {
                            // Unmasked both ways: the header passes as it is.
                            self.emit(at, at + h);
                        }
                    }
                    self.parsed = at + h;
                    self.state = Parse::Payload {
                        left: len,
                        key,
                        phase: 0,
                    };
                }
                op => return Err(src.broke(ProtocolError::InvalidOpcode(op))),
            }
        }
    }
}

/// Writes what waits for `dst` in `pipe`, and a control frame of its own
/// where a frame ends, as far as its socket takes them.
fn flush<S: Socket>(pipe: &mut Pipe, dst: &mut Conn<S>) -> Result<(), End> {
    loop {
        let control = dst.has_control() && pipe.between_frames();
        let result = if control {
            dst.stream
                .write(&dst.control[dst.control_at..dst.control_len])
        } else if pipe.waiting() {
            dst.stream.write_vectored(&[
                IoSlice::new(&pipe.prefix[pipe.prefix_at..]),
                IoSlice::new(&pipe.buf[pipe.sent..pipe.ready]),
            ])
        } else if dst.unflushed {
            // Plain TCP keeps nothing back; rustls may, when the socket
            // took only part of its records.
            dst.unflushed = false;
            return match dst.stream.flush() {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    dst.unflushed = true;
                    Ok(())
                }
                Err(e) => Err(dst.framing.io_failed(e)),
            };
        } else {
            return Ok(());
        };
        dst.unflushed = true;
        match result {
            Ok(0) => return Err(dst.framing.closed()),
            Ok(n) if control => {
                dst.control_at += n;
                if dst.control_at >= dst.control_len {
                    dst.control_at = 0;
                    dst.control_len = 0;
                }
            }
            Ok(mut n) => {
                let p = n.min(pipe.prefix.len() - pipe.prefix_at);
                pipe.prefix_at += p;
                n -= p;
                if pipe.prefix_at == pipe.prefix.len() && !pipe.prefix.is_empty() {
                    pipe.prefix = Vec::new();
                    pipe.prefix_at = 0;
                }
                pipe.sent += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(dst.framing.io_failed(e)),
        }
    }
}

/// Moves what `src` has ready to `dst`; true when `src` may have more
/// (its turn ended before it ran dry).
fn pump<A: Socket, B: Socket>(
    pipe: &mut Pipe,
    src: &mut Conn<A>,
    dst: &mut Conn<B>,
    keys: &mut Keys,
    activity: &mut Instant,
) -> Result<bool, End> {
    flush(pipe, dst)?;
    for _ in 0..BATCH {
        if !pipe.room() {
            flush(pipe, dst)?;
            return Ok(false);
        }
        let raw = src.framing.ws.is_none();
        let at = if raw {
            pipe.tcp_read_at(dst.framing)
        } else {
            pipe.filled
        };
        let end = if raw && dst.framing.ws.is_some() {
            pipe.buf.len().min(at + TCP_FRAME)
        } else {
            pipe.buf.len()
        };
        match src.stream.read(&mut pipe.buf[at..end]) {
            Ok(0) => return Err(src.framing.closed()),
            Ok(n) => {
                *activity = Instant::now();
                if raw {
                    pipe.took_raw(at, n, dst.framing, keys);
                } else {
                    pipe.filled += n;
                    let mut pong = None;
                    let parsed = pipe.parse(src.framing, dst.framing, keys, &mut pong);
                    if let Some((len, payload)) = pong {
                        src.queue_control(OP_PONG, &payload[..len], keys.next());
                    }
                    parsed?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                flush(pipe, dst)?;
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(src.framing.io_failed(e)),
        }
        // What came is written when the source has nothing more or the
        // buffer no room: fewer, larger writes wake the reader less often.
        if pipe.buf.len() - pipe.filled < MIN_READ {
            flush(pipe, dst)?;
        }
    }
    flush(pipe, dst)?;
    Ok(true)
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
/// console's websocket for `hcc vnc`); closes both. Each side comes with
/// the bytes it sent during its handshake that belong to the other.
pub fn relay_ends<C: Socket, U: Socket>(
    client: (impl Into<Taken<C>>, Vec<u8>),
    upstream: (impl Into<Taken<U>>, Vec<u8>),
    limits: Limits,
    mut stop: impl FnMut(u64, u64) -> Option<EndReason>,
) -> Outcome {
    let Taken(mut c, c_held) = client.0.into();
    let Taken(mut u, u_held) = upstream.0.into();
    let mut keys = Keys::new();
    // To the console server, and to the client.
    let mut up = Pipe::new();
    let mut down = Pipe::new();
    let mut outcome = Outcome {
        end: End::ClientClosed,
        to_client: 0,
        from_client: 0,
    };
    let run = (|| -> Result<(), End> {
        let c_held = c_held?;
        let u_held = u_held?;
        for side in [c.tcp(), u.tcp()] {
            side.ok_or_else(|| End::Error("a connection cannot be waited on".into()))?
                .set_nonblocking(true)
                .map_err(|e| End::Error(format!("cannot relay: {e}")))?;
        }
        let mut rest = client.1;
        rest.extend_from_slice(&c_held);
        up.prefix(&rest, u.framing, &mut keys);
        let mut rest = upstream.1;
        rest.extend_from_slice(&u_held);
        down.prefix(&rest, c.framing, &mut keys);
        let mut activity = Instant::now();
        let mut next_stop = Instant::now() + limits.stop_every;
        loop {
            let more_up = pump(&mut up, &mut c, &mut u, &mut keys, &mut activity);
            outcome.from_client = up.count;
            let more_down = pump(&mut down, &mut u, &mut c, &mut keys, &mut activity);
            outcome.to_client = down.count;
            let (more_up, more_down) = (more_up?, more_down?);
            // Pongs queued by the other direction's pump.
            flush(&mut up, &mut u)?;
            flush(&mut down, &mut c)?;
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
            // A side is read only while its direction has room; written
            // while bytes wait for it. Hang-ups and errors are reported
            // anyway.
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
            let cf = flags(up.room(), c.wants_write(&down));
            let uf = flags(down.room(), u.wants_write(&up));
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
                return Err(c.framing.closed());
            }
            if fds[1].revents().intersects(gone) && !uf.contains(PollFlags::IN) {
                return Err(u.framing.closed());
            }
        }
    })();
    if let Err(end) = run {
        outcome.end = end;
    }
    outcome.from_client = up.count;
    outcome.to_client = down.count;
    c.close(&outcome.end, &mut down, keys.next());
    u.close(&outcome.end, &mut up, keys.next());
    outcome
}

/// A side taken out of what did its handshake, with the data it had
/// already read for the other side (or why the session cannot start).
pub struct Taken<S>(Conn<S>, Result<Vec<u8>, End>);

impl<S> From<(Conn<S>, Result<Vec<u8>, End>)> for Taken<S> {
    fn from((conn, held): (Conn<S>, Result<Vec<u8>, End>)) -> Taken<S> {
        Taken(conn, held)
    }
}

impl<S> From<Conn<S>> for Taken<S> {
    fn from(conn: Conn<S>) -> Taken<S> {
        Taken(conn, Ok(Vec::new()))
    }
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

#[cfg(test)]
mod frames {
    use super::*;

    const CLIENT: Framing = Framing {
        side: Side::Client,
        ws: Some(WsLimits {
            max_frame: 1 << 20,
            max_message: 1 << 20,
        }),
    };
    const UPSTREAM: Framing = Framing {
        side: Side::Upstream,
        ..CLIENT
    };
    const TCP: Framing = Framing {
        side: Side::Client,
        ws: None,
    };

    /// A frame as a peer sends it.
    fn frame(fin: bool, opcode: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![0u8; MAX_HEADER];
        let h = header(&mut out, fin, opcode, payload.len() as u64, key);
        out.truncate(h);
        let at = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = key {
            mask(&mut out[at..], key, 0);
        }
        out
    }

    /// Parses `bytes` fed in pieces of `step` bytes; what goes out (all
    /// of it, as if written at once), and the pong asked for.
    fn feed(
        pipe: &mut Pipe,
        src: Framing,
        dst: Framing,
        bytes: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), End> {
        let mut keys = Keys::new();
        let mut out = Vec::new();
        let mut pong = None;
        for piece in bytes.chunks(step) {
            assert!(pipe.room());
            pipe.buf[pipe.filled..pipe.filled + piece.len()].copy_from_slice(piece);
            pipe.filled += piece.len();
            let mut asked = None;
            let parsed = pipe.parse(src, dst, &mut keys, &mut asked);
            if let Some((len, payload)) = asked {
                pong = Some(payload[..len].to_vec());
            }
            out.extend_from_slice(&pipe.buf[pipe.sent..pipe.ready]);
            pipe.sent = pipe.ready;
            parsed?;
        }
        Ok((out, pong))
    }

    /// The payloads of the frames in `bytes` (unmasked), their opcodes.
    fn frames_in(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (len, mut h) = match bytes[1] & 0x7f {
                126 => (u64::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                127 => (u64::from_be_bytes(bytes[2..10].try_into().unwrap()), 10),
                n => (u64::from(n), 2),
            };
            let key = (bytes[1] & 0x80 != 0).then(|| {
                h += 4;
                <[u8; 4]>::try_from(&bytes[h - 4..h]).unwrap()
            });
            let mut payload = bytes[h..h + len as usize].to_vec();
            if let Some(key) = key {
                mask(&mut payload, key, 0);
            }
            out.push((bytes[0], payload));
            bytes = &bytes[h + len as usize..];
        }
        out
    }

    #[test]
    fn masking_matches_bytewise_xor_at_every_alignment_and_length() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..100u8).collect();
        for start in 0..9 {
            for len in 0..40 {
                for phase in 0..4 {
                    let mut got = data.clone();
                    mask(&mut got[start..start + len], key, phase);
                    let mut want = data.clone();
                    for (i, b) in want[start..start + len].iter_mut().enumerate() {
                        *b ^= key[(phase + i) % 4];
                    }
                    assert_eq!(got, want, "start {start} len {len} phase {phase}");
                }
            }
        }
    }

    #[test]
    fn upstream_frames_pass_unchanged_whatever_the_reads() {
        let mut bytes = frame(true, OP_BINARY, b"hello", None);
        bytes.extend(frame(true, OP_BINARY, &[7u8; 300], None));
        bytes.extend(frame(true, OP_BINARY, &vec![9u8; 70_000], None));
        for step in [1, 2, 3, 7, 100, 200_000] {
            let mut pipe = Pipe::new();
            let (out, pong) = feed(&mut pipe, UPSTREAM, CLIENT, &bytes, step).unwrap();
            assert!(out == bytes, "step {step}");
            assert_eq!(pong, None);
            assert_eq!(pipe.count, 5 + 300 + 70_000);
            assert_eq!(pipe.state, Parse::Header);
        }
    }

    #[test]
    fn client_frames_are_masked_again_with_another_key() {
        let key = Some([1, 2, 3, 4]);
        let mut bytes = frame(true, OP_BINARY, b"RFB 003.008\n", key);
        bytes.extend(frame(false, OP_BINARY, &[5u8; 200], key));
        bytes.extend(frame(true, OP_CONTINUE, &vec![6u8; 66_000], key));
        bytes.extend(frame(true, OP_BINARY, b"\x01", key));
        for step in [1, 5, 13, 100_000] {
            let mut pipe = Pipe::new();
            let (out, _) = feed(&mut pipe, CLIENT, UPSTREAM, &bytes, step).unwrap();
            assert_eq!(out.len(), bytes.len());
            assert!(out[2..6] != bytes[2..6], "the client's key stayed");
            let frames = frames_in(&out);
            assert_eq!(frames.len(), 4);
            assert_eq!(frames[0], (0x82, b"RFB 003.008\n".to_vec()));
            assert_eq!(frames[1], (0x02, vec![5u8; 200]));
            assert!(frames[2] == (0x80, vec![6u8; 66_000]));
            assert_eq!(frames[3], (0x82, vec![1u8]));
            assert_eq!(pipe.count, 12 + 200 + 66_000 + 1);
        }
    }

    #[test]
    fn a_ping_inside_a_fragmented_message_is_answered_and_cut_out() {
        let mut bytes = frame(false, OP_BINARY, b"abc", None);
        bytes.extend(frame(true, OP_PING, b"are you there", None));
        bytes.extend(frame(true, OP_PONG, b"", None));
        bytes.extend(frame(true, OP_CONTINUE, b"def", None));
        for step in [1, 4, 1000] {
            let mut pipe = Pipe::new();
            let (out, pong) = feed(&mut pipe, UPSTREAM, CLIENT, &bytes, step).unwrap();
            assert_eq!(
                frames_in(&out),
                vec![(0x02, b"abc".to_vec()), (0x80, b"def".to_vec())]
            );
            assert_eq!(pong.as_deref(), Some(&b"are you there"[..]));
            assert_eq!(pipe.count, 6);
        }
        // To a plain TCP viewer only the payload goes.
        let mut pipe = Pipe::new();
        let (out, _) = feed(&mut pipe, UPSTREAM, TCP, &bytes, 3).unwrap();
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn lengths_of_16_and_64_bits_and_split_headers() {
        for len in [125usize, 126, 65_535, 65_536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = frame(true, OP_BINARY, &payload, Some([9, 8, 7, 6]));
            for step in [1, 3, 9, 65_536] {
                let mut pipe = Pipe::new();
                let (out, _) = feed(&mut pipe, CLIENT, TCP, &bytes, step).unwrap();
                assert!(out == payload, "len {len} step {step}");
                assert_eq!(pipe.count, len as u64);
            }
        }
    }

    #[test]
    fn close_text_and_broken_frames_end_the_session() {
        let key = Some([1, 1, 1, 1]);
        let end = |src: Framing, bytes: Vec<u8>| {
            let dst = if src.side == Side::Client {
                UPSTREAM
            } else {
                CLIENT
            };
            feed(&mut Pipe::new(), src, dst, &bytes, 1).unwrap_err()
        };
        assert_eq!(
            end(CLIENT, frame(true, OP_CLOSE, b"\x03\xe8", key)),
            End::ClientClosed
        );
        assert_eq!(
            end(UPSTREAM, frame(true, OP_CLOSE, b"", None)),
            End::UpstreamClosed
        );
        let text = end(CLIENT, frame(true, OP_TEXT, b"hi", key));
        assert!(
            matches!(text, End::Violation(CloseCode::Unsupported, _)),
            "{text:?}"
        );
        let text = end(CLIENT, frame(true, OP_TEXT, b"\xff", key));
        assert!(
            matches!(text, End::Violation(CloseCode::Invalid, _)),
            "{text:?}"
        );
        assert_eq!(
            end(UPSTREAM, frame(true, OP_TEXT, b"hi", None)),
            End::Error("the upstream sent a text message where RFB needs binary ones".into())
        );
        let unmasked = end(CLIENT, frame(true, OP_BINARY, b"x", None));
        assert_eq!(
            unmasked,
            End::Violation(
                CloseCode::Protocol,
                "client: WebSocket protocol error: Received an unmasked frame from client".into()
            )
        );
        let masked = end(UPSTREAM, frame(true, OP_BINARY, b"x", key));
        assert_eq!(
            masked,
            End::Error(
                "upstream: WebSocket protocol error: Received a masked frame from server".into()
            )
        );
        let mut rsv = frame(true, OP_BINARY, b"x", key);
        rsv[0] |= 0x40;
        assert!(matches!(
            end(CLIENT, rsv),
            End::Violation(CloseCode::Protocol, _)
        ));
        let big_ping = end(CLIENT, frame(true, OP_PING, &[0u8; 126], key));
        assert!(
            matches!(big_ping, End::Violation(CloseCode::Protocol, _)),
            "{big_ping:?}"
        );
        let split_ping = end(CLIENT, frame(false, OP_PING, b"", key));
        assert!(matches!(split_ping, End::Violation(CloseCode::Protocol, _)));
        let stray = end(CLIENT, frame(true, OP_CONTINUE, b"x", key));
        assert!(matches!(stray, End::Violation(CloseCode::Protocol, _)));
        let mut nested = frame(false, OP_BINARY, b"x", key);
        nested.extend(frame(true, OP_BINARY, b"y", key));
        assert!(matches!(
            end(CLIENT, nested),
            End::Violation(CloseCode::Protocol, _)
        ));
        let huge = end(
            CLIENT,
            frame(true, OP_BINARY, &vec![0u8; (1 << 20) + 1], key),
        );
        assert!(
            matches!(huge, End::Violation(CloseCode::Size, _)),
            "{huge:?}"
        );
        // A 64-bit length no one could send is refused from its header.
        let mut forged = vec![0x82, 0xff];
        forged.extend(u64::MAX.to_be_bytes());
        forged.extend([0u8; 4]);
        assert!(matches!(
            end(CLIENT, forged),
            End::Violation(CloseCode::Size, _)
        ));
        // Nothing in front of the end went to the other side half-done.
        let mut pipe = Pipe::new();
        let mut bytes = frame(true, OP_BINARY, b"ok", key);
        bytes.extend(frame(true, OP_CLOSE, b"", key));
        let mut keys = Keys::new();
        pipe.buf[..bytes.len()].copy_from_slice(&bytes);
        pipe.filled = bytes.len();
        let ended = pipe.parse(CLIENT, UPSTREAM, &mut keys, &mut None);
        assert_eq!(ended, Err(End::ClientClosed));
        assert_eq!(pipe.count, 2);
        assert_eq!(
            frames_in(&pipe.buf[pipe.sent..pipe.ready]),
            vec![(0x82, b"ok".to_vec())]
        );
    }
}

#[cfg(test)]
mod slow {
    use super::*;

    /// A destination that takes a few bytes at a time: the buffer
    /// compacts under it, and nothing is lost or reordered.
    #[test]
    fn a_slow_destination_gets_every_byte_in_order() {
        let src = Framing {
            side: Side::Upstream,
            ws: Some(WsLimits {
                max_frame: 1 << 30,
                max_message: 1 << 30,
            }),
        };
        let dst = Framing {
            side: Side::Client,
            ..src
        };
        let mut rng = fastrand::Rng::with_seed(7);
        let mut bytes = Vec::new();
        while bytes.len() < 8 << 20 {
            let len = match rng.u8(..3) {
                0 => rng.usize(..126),
                1 => rng.usize(126..70_000),
                _ => rng.usize(70_000..300_000),
            };
            let mut head = [0u8; MAX_HEADER];
            let h = header(&mut head, true, OP_BINARY, len as u64, None);
            bytes.extend_from_slice(&head[..h]);
            bytes.extend((0..len).map(|_| rng.u8(..)));
            if rng.u8(..4) == 0 {
                bytes.extend_from_slice(&[0x89, 0x01, 0x55]);
            }
        }
        let mut pipe = Pipe::new();
        let mut keys = Keys::new();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() || pipe.sent < pipe.ready {
            if at < bytes.len() && pipe.room() {
                let n = rng
                    .usize(1..200_000)
                    .min(pipe.buf.len() - pipe.filled)
                    .min(bytes.len() - at);
                pipe.buf[pipe.filled..pipe.filled + n].copy_from_slice(&bytes[at..at + n]);
                pipe.filled += n;
                at += n;
                pipe.parse(src, dst, &mut keys, &mut None).unwrap();
            }
            let n = rng.usize(..100_000).min(pipe.ready - pipe.sent);
            out.extend_from_slice(&pipe.buf[pipe.sent..pipe.sent + n]);
            pipe.sent += n;
        }
        let want: Vec<u8> = {
            // The pings are cut out.
            let mut want = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                if rest[0] == 0x89 {
                    rest = &rest[3..];
                    continue;
                }
                let (len, h) = match rest[1] & 0x7f {
                    126 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
                    127 => (
                        u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    n => (usize::from(n), 2),
                };
                want.extend_from_slice(&rest[..h + len]);
                rest = &rest[h + len..];
            }
            want
        };
        assert_eq!(out.len(), want.len());
        assert!(out == want);
    }
}
