//! The websocket opening handshake on hcc's HTTP server (RFC 6455 4.2):
//! checks the upgrade request, answers 101 with the accept key, and hands
//! the connection to a [`tungstenite::WebSocket`] on a thread of its own.
//! tungstenite frames the RFB handshake; the relay then frames on its own
//! (crate::console::relay).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use tungstenite::WebSocket;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocketConfig};

use super::{Reply, Request, Response, Upgraded};

/// The subprotocol of VNC over websockets that noVNC and Hetzner's
/// consoles speak (`binary`); an upgrade that offers it is answered with it.
pub const BINARY: &str = "binary";

/// A connection after the handshake: what the client sent before the 101
/// reached it is read first, then the socket.
pub struct Stream {
    pub socket: TcpStream,
    rest: Vec<u8>,
    at: usize,
    /// Reads stop at `rest`: the relay takes the frames tungstenite holds
    /// without letting it read more.
    pub(crate) held: bool,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.rest.len() {
            let n = buf.len().min(self.rest.len() - self.at);
            buf[..n].copy_from_slice(&self.rest[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        if self.held {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.socket.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

/// Is this a websocket upgrade request (whatever its other faults)?
pub fn is_upgrade(request: &Request) -> bool {
    request
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// Answers a websocket upgrade: 101 and `session` on the socket, or why
/// the request is not a valid one (for a 400 in the caller's own format).
/// `session` gets the websocket, frames limited to `max_message` bytes, and
/// the client's address.
pub fn upgrade(
    request: &Request,
    max_message: usize,
    session: impl FnOnce(WebSocket<Stream>, Option<SocketAddr>) + Send + 'static,
) -> Result<Reply, &'static str> {
    if request.method != "GET" {
        return Err("a websocket upgrade must be a GET");
    }
    if !is_upgrade(request) {
        return Err("not a websocket upgrade (Upgrade: websocket is missing)");
    }
    if request.http10 {
        return Err("an HTTP/1.0 request cannot upgrade");
    }
    let connection_upgrade = request.header("connection").is_some_and(|c| {
        c.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_upgrade {
        return Err("Connection: upgrade is missing");
    }
    if request.header("sec-websocket-version") != Some("13") {
        return Err("only websocket version 13 is supported");
    }
    let Some(key) = request.header("sec-websocket-key") else {
        return Err("Sec-WebSocket-Key is missing");
    };
    // RFC 6455 4.1: one key; of two, which one to answer is a guess.
    if request.headers_named("sec-websocket-key").count() > 1 {
        return Err("Sec-WebSocket-Key is given more than once");
    }
    let mut response = Response {
        status: 101,
        content_type: "",
        headers: vec![
            ("Upgrade", "websocket".into()),
            ("Connection", "Upgrade".into()),
            ("Sec-WebSocket-Accept", derive_accept_key(key.as_bytes())),
        ],
        body: super::Body::Static(b""),
    };
    let offered = request
        .header("sec-websocket-protocol")
        .is_some_and(|p| p.split(',').any(|t| t.trim() == BINARY));
    if offered {
        response
            .headers
            .push(("Sec-WebSocket-Protocol", BINARY.into()));
    }
    let then = move |upgraded: Upgraded| {
        let stream = Stream {
            socket: upgraded.stream,
            rest: upgraded.rest,
            at: 0,
            held: false,
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let ws = WebSocket::from_raw_socket(stream, Role::Server, Some(config));
        session(ws, upgraded.peer);
    };
    Ok(Reply::Upgrade {
        response,
        then: Box::new(then),
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Arc;

    use tungstenite::Message;
    use tungstenite::client::IntoClientRequest;

    use super::*;
    use crate::http::{Limits, Server, text_error};

    /// An echo server on a free loopback port: every upgrade to `/echo`
    /// sends back what it gets, in upper case; anything else is a 400.
    fn echo_server() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            max_body: 1024,
            thread_name: "test-ws",
            error: text_error,
            uncapped: Vec::new(),
            upgraded_extra: 0,
        };
        let handler = Arc::new(|request: &Request| {
            upgrade(request, 1 << 16, |mut ws, peer| {
                assert!(peer.is_some_and(|p| p.ip().is_loopback()));
                while let Ok(message) = ws.read() {
                    let answer = match message {
                        Message::Text(text) => Message::text(text.to_uppercase()),
                        Message::Binary(bytes) => Message::binary(bytes),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if ws.send(answer).is_err() {
                        break;
                    }
                }
            })
            .unwrap_or_else(|why| Reply::Answer(text_error(400, why)))
        });
        let server = Server::new(listener, limits, handler).unwrap();
        std::thread::spawn(move || server.run());
        addr
    }

    #[test]
    fn a_client_upgrades_with_the_binary_subprotocol_and_talks() {
        let addr = echo_server();
        let mut request = format!("ws://{addr}/echo").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
        let stream = TcpStream::connect(addr).unwrap();
        let (mut ws, response) = tungstenite::client(request, stream).unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(
            response.headers()["sec-websocket-protocol"]
                .to_str()
                .unwrap(),
            BINARY
        );
        assert!(response.headers().get("content-length").is_none());
        ws.send(Message::text("hello")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("HELLO"));
        ws.send(Message::binary(vec![0u8, 1, 2])).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(vec![0u8, 1, 2]));
        ws.close(None).unwrap();
    }

    #[test]
    fn a_plain_get_or_a_bad_version_is_refused() {
        let addr = echo_server();
        for extra in [
            "",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ] {
            let mut stream = TcpStream::connect(addr).unwrap();
            write!(
                stream,
                "GET /echo HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
            )
            .unwrap();
            let mut answer = vec![0u8; 1024];
            let n = stream.read(&mut answer).unwrap();
            let answer = String::from_utf8_lossy(&answer[..n]);
            assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        }
    }
}
