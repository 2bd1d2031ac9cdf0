//! The simulator's live consoles: what `request_console`'s `wss_url`
//! leads to. A websocket (subprotocol `binary`, like Hetzner's) carrying
//! RFB 3.8 with VNC authentication, showing a text console per server:
//! its name, a login prompt and the keys typed so far.
//!
//! Every connection to one server's console sees the same screen, as
//! viewers of one machine do; [`Consoles`] (board.rs) keeps that
//! per-server state (what was typed, the last pointer, the cut text,
//! counters) for `GET /_sim/consoles/{id}`; rfb.rs is the protocol,
//! screen.rs the picture, session.rs one connection. This module knows
//! nothing of the API: the caller checks the ticket and hands over the
//! server's name and the password.

mod board;
mod rfb;
mod screen;
mod session;

pub use board::{Consoles, Seat};
pub use screen::System;

use crate::http::{Reply, Request, Response, websocket};

/// How long a console URL can be opened after it was issued, in the
/// simulator's time: a minute, like Hetzner's. A connection made in time
/// stays open.
pub const URL_LIFETIME_MS: u64 = 60_000;

/// The longest websocket message a console client may send: noVNC's are
/// a few bytes, a pasted clipboard at most [`rfb::MAX_CUT_TEXT`].
const MAX_MESSAGE: usize = 1024 * 1024;

/// Answers an upgrade on a checked console URL: 101 and an RFB server
/// at `seat` (from [`Consoles::seat`]) with VNC password `password`, or a
/// 400 when the request is no websocket upgrade.
pub fn open(seat: Seat, request: &Request, password: &str) -> Reply {
    let password = password.to_string();
    let upgraded = websocket::upgrade(request, MAX_MESSAGE, move |ws, _peer| {
        session::run(ws, &seat, &password);
    });
    upgraded.unwrap_or_else(|why| Reply::Answer(refusal(400, why)))
}

/// An HTTP refusal of a console URL, as text.
pub fn refusal(status: u16, why: &str) -> Response {
    crate::http::text_error(status, why)
}
