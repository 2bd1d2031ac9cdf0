//! The browser's side of a brokered console: the RFB server handshake
//! with security None (the browser proved itself to hcc with its one-time
//! ticket), with a deadline for each step so that a client that stops
//! half way does not hold a thread.

use std::time::Duration;

use tungstenite::WebSocket;

use super::relay::Socket;
use super::rfb;
use super::wsio::WsIo;

/// Each step of the browser's handshake may take this long.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole handshake may take this long (pings do not prolong it).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the handshake; what the client sent past its security choice
/// (usually nothing: ClientInit comes on its own) belongs to the relay.
pub fn handshake<S: Socket>(ws: &mut WebSocket<S>) -> Result<Vec<u8>, String> {
    let Some(socket) = ws.get_ref().tcp() else {
        return Err("the client's connection cannot be waited on".into());
    };
    socket
        .set_read_timeout(Some(STEP_TIMEOUT))
        .and_then(|()| socket.set_write_timeout(Some(STEP_TIMEOUT)))
        .and_then(|()| socket.set_nodelay(true))
        .map_err(|e| format!("cannot set up the client's connection: {e}"))?;
    let watch = super::deadline::watch(socket, HANDSHAKE_TIMEOUT)
        .map_err(|e| format!("cannot set up the client's connection: {e}"))?;
    let mut io = WsIo::new(ws);
    match rfb::server_handshake(&mut io, None) {
        Ok(_) => Ok(io.into_rest()),
        Err(_) if watch.fired() => Err("the client did not complete its handshake in time".into()),
        Err(why) => Err(why),
    }
}
