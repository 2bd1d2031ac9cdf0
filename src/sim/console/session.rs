//! One console connection, on the thread the websocket upgrade gave it:
//! the RFB handshake with VNC authentication, then client messages in and
//! framebuffer updates out.
//!
//! One thread, no queue: the socket is read with a short timeout, so the
//! loop also notices changes made through other connections and answers
//! a held incremental request. Updates go out only when asked for and are
//! written synchronously in 64 KiB messages; a client that stops reading
//! blocks the write, and after [`WRITE_STALL`] without progress the
//! connection ends. Memory per connection stays at one message in
//! progress either way.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

use super::board::{Console, Seat, Shared};
use super::rfb::{
    self, ClientMsg, Parser, PixelFormat, Rect, SECURITY_VNC_AUTH, VERSION_3_8, Version,
};
use super::screen::{CELL_H, CELL_W, COLS, Cell, Grid, HEIGHT, PALETTE, ROWS, System, WIDTH};
use crate::http::websocket::Stream;
use crate::vnc_auth;

/// Time to get from the upgrade to ClientInit; a person may be typing
/// the password meanwhile.
const HANDSHAKE_TIME: Duration = Duration::from_secs(60);
/// How often the loop looks for changes when the client is quiet.
const POLL: Duration = Duration::from_millis(100);
/// A write that makes no progress for this long ends the connection
/// (twice this at most: a message's write may stall once after a partial
/// write and once more on its rest).
const WRITE_STALL: Duration = Duration::from_secs(5);
/// Bytes per websocket message of an update.
const CHUNK: usize = 64 * 1024;
/// How long a closing connection waits for the client's close frame.
const LINGER: Duration = Duration::from_secs(1);

const SCREEN: Rect = Rect {
    x: 0,
    y: 0,
    w: WIDTH,
    h: HEIGHT,
};

const WRITE_FAILED: &str = "write failed or stalled";
/// The end of every connection when its server is powered off, shut
/// down, rebooted or reset.
const MACHINE_STOPPED: &str = "the server stopped or restarted";

/// Why a connection ended, for the console's state.
#[derive(Debug)]
struct End(&'static str);

pub fn run(ws: WebSocket<Stream>, seat: &Seat, password: &str) {
    let console = &*seat.console;
    let _ = ws.get_ref().socket.set_read_timeout(Some(POLL));
    let _ = ws.get_ref().socket.set_write_timeout(Some(WRITE_STALL));
    let _ = ws.get_ref().socket.set_nodelay(true);
    let mut conn = Conn {
        ws,
        input: Vec::new(),
    };
    let mut presence = Presence::new(console);
    let ended = conn.serve(&mut presence, password, seat.stops);
    let End(why) = ended.err().unwrap_or(End("closed"));
    presence.lock().last_end = Some(why);
    // Counted out before the goodbye: the linger below is the socket's.
    drop(presence);
    if why == WRITE_FAILED {
        // A close frame would stall the same way: just hang up.
        let _ = conn.ws.get_ref().socket.shutdown(std::net::Shutdown::Both);
    } else {
        conn.close();
    }
}

/// Counts the connection in the console's state while it lives, and
/// uncounts it however it ends.
struct Presence<'a> {
    console: &'a Console,
    authenticated: bool,
}

impl<'a> Presence<'a> {
    fn new(console: &'a Console) -> Presence<'a> {
        console.lock().clients += 1;
        Presence {
            console,
            authenticated: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.console.lock()
    }
}

impl Drop for Presence<'_> {
    fn drop(&mut self) {
        let mut shared = self.console.lock();
        shared.clients = shared.clients.saturating_sub(1);
        if self.authenticated {
            shared.authenticated = shared.authenticated.saturating_sub(1);
        }
    }
}

struct Conn {
    ws: WebSocket<Stream>,
    /// Bytes received and not yet taken by the handshake.
    input: Vec<u8>,
}

impl Conn {
    fn send(&mut self, bytes: Vec<u8>) -> Result<(), End> {
        self.ws
            .send(Message::binary(bytes))
            .map_err(|_| End(WRITE_FAILED))
    }

    /// One read: the payload of a binary message, or `None` when nothing
    /// came within [`POLL`].
    fn recv(&mut self) -> Result<Option<Vec<u8>>, End> {
        match self.ws.read() {
            Ok(Message::Binary(bytes)) => Ok(Some(bytes.to_vec())),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(None),
            Ok(Message::Text(_)) => Err(End("a text message (RFB is binary)")),
            Ok(Message::Close(_)) => Err(End("closed by the client")),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                Ok(None)
            }
            Err(_) => Err(End("read failed")),
        }
    }

    /// Exactly `n` bytes of the stream, before `deadline`.
    fn read_exact(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, End> {
        while self.input.len() < n {
            if Instant::now() >= deadline {
                return Err(End("handshake timed out"));
            }
            if let Some(bytes) = self.recv()? {
                self.input.extend_from_slice(&bytes);
            }
        }
        Ok(self.input.drain(..n).collect())
    }

    /// Sends a close frame and waits briefly for the client's, so that
    /// what was sent last (a failure's reason) is not lost to a reset.
    fn close(mut self) {
        if self.ws.close(None).is_err() {
            return;
        }
        let until = Instant::now() + LINGER;
        while Instant::now() < until {
            match self.ws.read() {
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn serve(
        &mut self,
        presence: &mut Presence<'_>,
        password: &str,
        stops: u64,
    ) -> Result<(), End> {
        let deadline = Instant::now() + HANDSHAKE_TIME;
        self.send(VERSION_3_8.to_vec())?;
        let version = rfb::parse_version(&self.read_exact(12, deadline)?)
            .map_err(|_| End("no RFB version"))?;
        if version == Version::V3_3 {
            // 3.3: the server picks the type.
            self.send(u32::from(SECURITY_VNC_AUTH).to_be_bytes().to_vec())?;
        } else {
            self.send(vec![1, SECURITY_VNC_AUTH])?;
            let chosen = self.read_exact(1, deadline)?[0];
            if chosen != SECURITY_VNC_AUTH {
                self.send(rfb::security_result(
                    false,
                    "security type not offered",
                    version,
                ))?;
                return Err(End("security type not offered"));
            }
        }
        let mut challenge = [0u8; vnc_auth::CHALLENGE_LEN];
        getrandom::fill(&mut challenge).map_err(|_| End("no random challenge"))?;
        self.send(challenge.to_vec())?;
        let answer = self.read_exact(vnc_auth::CHALLENGE_LEN, deadline)?;
        let expected = vnc_auth::response(password, &challenge);
        let same = answer
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if !same {
            presence.lock().auth_failures += 1;
            self.send(rfb::security_result(
                false,
                "Authentication failure",
                version,
            ))?;
            return Err(End("authentication failed"));
        }
        self.send(rfb::security_result(true, "", version))?;
        {
            let mut shared = presence.lock();
            shared.authenticated += 1;
            shared.logins += 1;
        }
        presence.authenticated = true;

        let shared_flag = self.read_exact(1, deadline)?[0];
        let (name, epoch) = {
            let mut shared = presence.lock();
            if shared_flag == 0 {
                shared.exclusive += 1;
            }
            (shared.name.clone(), shared.exclusive)
        };
        self.send(rfb::server_init(WIDTH, HEIGHT, &name))?;
        self.messages(presence.console, epoch, stops)
    }

    /// After ServerInit: client messages, and updates when they are due;
    /// until another client takes the console alone (`epoch` changes) or
    /// the machine stops or restarts (`stops` does).
    fn messages(&mut self, console: &Console, epoch: u64, stops: u64) -> Result<(), End> {
        let mut parser = Parser::default();
        parser.feed(&std::mem::take(&mut self.input));
        let mut view = View::new();
        loop {
            while let Some(msg) = parser.next().map_err(|_| End("a malformed message"))? {
                if let Some(colour_map) = view.apply(msg, console) {
                    self.send(colour_map)?;
                }
            }
            let (exclusive, stopped) = {
                let shared = console.lock();
                view.refresh(&shared);
                (shared.exclusive, shared.stops)
            };
            if stopped != stops {
                return Err(End(MACHINE_STOPPED));
            }
            if exclusive != epoch {
                return Err(End("another client took the console alone"));
            }
            if let Some(rects) = view.due() {
                self.update(&view, &rects)?;
                view.mark_sent(&rects);
                console.lock().updates_sent += 1;
            }
            if let Some(bytes) = self.recv()? {
                parser.feed(&bytes);
            }
        }
    }

    /// One FramebufferUpdate of `rects`, Raw, in the client's format.
    fn update(&mut self, view: &View, rects: &[Rect]) -> Result<(), End> {
        let pixels: Vec<Vec<u8>> = PALETTE
            .iter()
            .enumerate()
            .map(|(i, rgb)| view.format.pixel(*rgb, i as u8))
            .collect();
        let mut buf = Vec::with_capacity(CHUNK + 4 * usize::from(WIDTH));
        buf.extend_from_slice(&rfb::update_header(rects.len() as u16));
        for rect in rects {
            buf.extend_from_slice(&rect.raw_header());
            for y in rect.y..rect.y + rect.h {
                for x in rect.x..rect.x + rect.w {
                    let index = view.grid.pixel(usize::from(x), usize::from(y));
                    buf.extend_from_slice(&pixels[usize::from(index)]);
                }
                if buf.len() >= CHUNK {
                    self.send(std::mem::take(&mut buf))?;
                }
            }
        }
        if !buf.is_empty() {
            self.send(buf)?;
        }
        Ok(())
    }
}

/// What one connection has asked for and been sent.
struct View {
    format: PixelFormat,
    grid: Grid,
    version: Option<u64>,
    /// The cells as this client last got them; `None`: never sent (or
    /// sent in a pixel format no longer in use).
    sent: Vec<Option<Cell>>,
    /// Areas of pending requests, merged: a non-incremental one is
    /// answered at once, an incremental one when something in it changed.
    full: Option<Rect>,
    incremental: Option<Rect>,
}

impl View {
    fn new() -> View {
        View {
            format: PixelFormat::SERVER,
            grid: Grid::new("", &System::default(), ""),
            version: None,
            sent: vec![None; COLS * ROWS],
            full: None,
            incremental: None,
        }
    }

    /// Takes in one client message; a colour map to send back when the
    /// client asked for a format without true colour.
    fn apply(&mut self, msg: ClientMsg, console: &Console) -> Option<Vec<u8>> {
        match msg {
            ClientMsg::SetPixelFormat(format) => {
                self.format = format;
                self.sent.fill(None);
                if !format.true_colour {
                    return Some(rfb::colour_map(&PALETTE));
                }
            }
            // Raw is all this server sends, and every client takes it;
            // the pseudo-encodings listed ask for nothing it must do.
            ClientMsg::SetEncodings(_) => {}
            ClientMsg::UpdateRequest { incremental, rect } => {
                let slot = if incremental {
                    &mut self.incremental
                } else {
                    &mut self.full
                };
                *slot = Some(slot.map_or(rect, |r| r.union(&rect)));
            }
            ClientMsg::Key { down, keysym } => {
                if down {
                    console.lock().key(keysym);
                }
            }
            ClientMsg::Pointer { buttons, x, y } => {
                let mut shared = console.lock();
                shared.pointer_events += 1;
                shared.pointer = Some((x, y, buttons));
            }
            ClientMsg::CutText(text) => console.lock().cut_text = Some(text),
        }
        None
    }

    /// Redraws the grid when the console's text changed.
    fn refresh(&mut self, shared: &Shared) {
        if self.version != Some(shared.version) {
            self.grid = Grid::new(&shared.name, &shared.system, &shared.typed);
            self.version = Some(shared.version);
        }
    }

    /// The rectangles to send now, if a request is due: the whole area
    /// of a non-incremental request, or the changed rows of an
    /// incremental one (`None` while nothing in it changed: the request
    /// is held).
    fn due(&mut self) -> Option<Vec<Rect>> {
        if let Some(full) = self.full.take() {
            let area = full.intersect(&SCREEN);
            if let Some(incremental) = self.incremental
                && area.union(&incremental) == area
            {
                self.incremental = None;
            }
            return Some(if area.is_empty() { vec![] } else { vec![area] });
        }
        let area = self.incremental?.intersect(&SCREEN);
        let rects: Vec<Rect> = (0..ROWS)
            .filter_map(|row| {
                let changed: Vec<usize> = (0..COLS)
                    .filter(|&col| {
                        let i = row * COLS + col;
                        self.sent[i] != Some(self.grid.cells[i])
                    })
                    .collect();
                let (first, last) = (*changed.first()?, *changed.last()?);
                let rect = Rect {
                    x: (first * CELL_W) as u16,
                    y: (row * CELL_H) as u16,
                    w: ((last - first + 1) * CELL_W) as u16,
                    h: CELL_H as u16,
                };
                Some(rect.intersect(&area)).filter(|r| !r.is_empty())
            })
            .collect();
        if rects.is_empty() {
            return None;
        }
        self.incremental = None;
        Some(rects)
    }

    /// Records the cells that `rects` touched as sent.
    fn mark_sent(&mut self, rects: &[Rect]) {
        for rect in rects {
            let cols = usize::from(rect.x) / CELL_W
                ..(usize::from(rect.x) + usize::from(rect.w)).div_ceil(CELL_W);
            let rows = usize::from(rect.y) / CELL_H
                ..(usize::from(rect.y) + usize::from(rect.h)).div_ceil(CELL_H);
            for row in rows.clone() {
                for col in cols.clone() {
                    let i = row * COLS + col;
                    self.sent[i] = Some(self.grid.cells[i]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(name: &str) -> Console {
        Console::new(Shared {
            name: name.into(),
            ..Shared::default()
        })
    }

    #[test]
    fn incremental_requests_wait_for_a_change() {
        let console = console("web1");
        let mut view = View::new();
        view.refresh(&console.lock());
        assert!(view.due().is_none(), "nothing asked");
        view.apply(
            ClientMsg::UpdateRequest {
                incremental: false,
                rect: SCREEN,
            },
            &console,
        );
        view.apply(
            ClientMsg::UpdateRequest {
                incremental: true,
                rect: SCREEN,
            },
            &console,
        );
        let rects = view.due().expect("a full update at once");
        assert_eq!(rects, [SCREEN]);
        view.mark_sent(&rects);
        // The incremental request was covered by the full one.
        assert!(view.due().is_none());
        view.apply(
            ClientMsg::UpdateRequest {
                incremental: true,
                rect: SCREEN,
            },
            &console,
        );
        assert!(view.due().is_none(), "held: nothing changed");
        view.apply(
            ClientMsg::Key {
                down: true,
                keysym: u32::from(b'r'),
            },
            &console,
        );
        view.refresh(&console.lock());
        let rects = view.due().expect("the change is sent");
        // Only the prompt's row: the `r` and the cursor after it.
        assert_eq!(rects.len(), 1);
        assert_eq!(rects[0].y, 4 * CELL_H as u16);
        assert_eq!(rects[0].w, 2 * CELL_W as u16);
        view.mark_sent(&rects);
        assert!(view.due().is_none());
    }

    #[test]
    fn a_request_off_the_screen_gets_an_empty_update() {
        let console = console("a");
        let mut view = View::new();
        view.refresh(&console.lock());
        view.apply(
            ClientMsg::UpdateRequest {
                incremental: false,
                rect: Rect {
                    x: 60000,
                    y: 60000,
                    w: 10,
                    h: 10,
                },
            },
            &console,
        );
        assert_eq!(view.due(), Some(vec![]));
    }
}
