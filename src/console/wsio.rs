//! A websocket read and written as a byte stream, for the RFB handshakes:
//! frame boundaries mean nothing in RFB over websockets, so one message
//! may hold part of a step or several steps. Whatever was read past the
//! handshake is handed on to the relay ([`WsIo::into_rest`]).

use std::io::{self, Read, Write};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

pub struct WsIo<'a, S> {
    ws: &'a mut WebSocket<S>,
    pending: Vec<u8>,
    at: usize,
    /// The peer broke the websocket protocol this way (a read failed).
    violation: Option<CloseCode>,
    /// A read or write failed (closed, timed out, broken framing).
    failed: bool,
}

impl<'a, S: Read + Write> WsIo<'a, S> {
    pub fn new(ws: &'a mut WebSocket<S>) -> WsIo<'a, S> {
        WsIo {
            ws,
            pending: Vec::new(),
            at: 0,
            violation: None,
            failed: false,
        }
    }

    /// The bytes read from the websocket that nobody consumed yet.
    pub fn into_rest(mut self) -> Vec<u8> {
        self.pending.split_off(self.at)
    }

    /// After a failed handshake: the close code of the peer's breach of
    /// the protocol, if it was one. A handshake that failed while every
    /// read and write went through failed on what the peer said, which
    /// breaks RFB (1002); a websocket-level breach has its own code; a
    /// connection that closed or timed out broke nothing.
    pub fn breach(&self) -> Option<CloseCode> {
        match (self.violation, self.failed) {
            (Some(code), _) => Some(code),
            (None, false) => Some(CloseCode::Protocol),
            (None, true) => None,
        }
    }
}

/// A websocket failure as an I/O error: a close is an end of file, the
/// rest keep their kind where they have one.
pub fn io_error(err: tungstenite::Error) -> io::Error {
    use tungstenite::Error as E;
    match err {
        E::ConnectionClosed | E::AlreadyClosed => io::ErrorKind::UnexpectedEof.into(),
        E::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            io::ErrorKind::UnexpectedEof.into()
        }
        E::Io(err) => err,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl<S: Read + Write> Read for WsIo<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.pending.len() {
            let message = self.ws.read().map_err(|err| {
                self.failed = true;
                self.violation = super::relay::violation(&err);
                io_error(err)
            })?;
            match message {
                Message::Binary(bytes) => {
                    self.pending = bytes.to_vec();
                    self.at = 0;
                }
                Message::Close(_) => {
                    self.failed = true;
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Message::Text(_) => {
                    self.failed = true;
                    self.violation = Some(CloseCode::Unsupported);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a text message where RFB needs binary ones",
                    ));
                }
                // Pings are answered by tungstenite itself.
                _ => {}
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl<S: Read + Write> Write for WsIo<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.ws.send(Message::binary(buf.to_vec())).map_err(|err| {
            self.failed = true;
            io_error(err)
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.ws.flush().map_err(|err| {
            self.failed = true;
            io_error(err)
        })
    }
}
