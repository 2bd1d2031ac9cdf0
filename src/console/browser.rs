//! The browser's side of a brokered console: the RFB server handshake
//! with security None (the browser proved itself to hcc with its one-time
//! ticket), with a deadline for each step so that a client that stops
//! half way does not hold a thread.

use std::time::Duration;

use tungstenite::WebSocket;
use tungstenite::protocol::frame::coding::CloseCode;

use super::relay::Socket;
use super::rfb;
use super::wsio::WsIo;

/// Each step of the browser's handshake may take this long.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole handshake may take this long (pings do not prolong it).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the handshake failed, and the code of the close frame that tells
/// the client: 1002, 1003, 1007 or 1009 when it broke the protocol
/// ([`WsIo::breach`]), 1011 otherwise.
#[derive(Debug)]
pub struct Failed {
    pub why: String,
    pub code: CloseCode,
}

impl Failed {
    fn ours(why: impl Into<String>) -> Failed {
        Failed {
            why: why.into(),
            code: CloseCode::Error,
        }
    }
}

/// Runs the handshake; what the client sent past its security choice
/// (usually nothing: ClientInit comes on its own) belongs to the relay.
pub fn handshake<S: Socket>(ws: &mut WebSocket<S>) -> Result<Vec<u8>, Failed> {
    let Some(socket) = ws.get_ref().tcp() else {
        return Err(Failed::ours("the client's connection cannot be waited on"));
    };
    socket
        .set_read_timeout(Some(STEP_TIMEOUT))
        .and_then(|()| socket.set_write_timeout(Some(STEP_TIMEOUT)))
        .and_then(|()| socket.set_nodelay(true))
        .map_err(|e| Failed::ours(format!("cannot set up the client's connection: {e}")))?;
    let watch = super::deadline::watch(socket, HANDSHAKE_TIMEOUT)
        .map_err(|e| Failed::ours(format!("cannot set up the client's connection: {e}")))?;
    let mut io = WsIo::new(ws);
    match rfb::server_handshake(&mut io, None) {
        Ok(_) => Ok(io.into_rest()),
        Err(_) if watch.fired() => Err(Failed::ours(
            "the client did not complete its handshake in time",
        )),
        Err(why) => Err(Failed {
            why,
            code: io.breach().unwrap_or(CloseCode::Error),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    use tungstenite::Message;
    use tungstenite::protocol::Role;

    use super::*;

    /// The handshake's outcome when the browser sends `messages` after
    /// reading hcc's version.
    fn with_browser(messages: Vec<Message>) -> Result<Vec<u8>, Failed> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        let browser = thread::spawn(move || {
            let mut ws = WebSocket::from_raw_socket(near, Role::Client, None);
            let _ = ws.read();
            for message in messages {
                let _ = ws.send(message);
            }
            // Held until the server has failed and closed.
            while ws.read().is_ok() {}
        });
        let mut ws = WebSocket::from_raw_socket(far, Role::Server, None);
        let outcome = handshake(&mut ws);
        drop(ws);
        browser.join().unwrap();
        outcome
    }

    #[test]
    fn a_browser_breaking_rfb_or_websockets_is_told_so() {
        let code = |messages| with_browser(messages).unwrap_err().code;
        assert_eq!(
            code(vec![Message::binary(b"RFB 009.000\n".to_vec())]),
            CloseCode::Protocol
        );
        assert_eq!(
            code(vec![Message::text("RFB 003.008\n")]),
            CloseCode::Unsupported
        );
        // A browser that goes away broke nothing: hcc's own close code.
        let closed = with_browser(vec![Message::Close(None)]).unwrap_err();
        assert_eq!(closed.code, CloseCode::Error);
        assert!(closed.why.contains("closed the connection"), "{closed:?}");
        assert!(
            with_browser(vec![
                Message::binary(b"RFB 003.008\n".to_vec()),
                Message::binary(vec![1])
            ])
            .is_ok()
        );
    }
}
