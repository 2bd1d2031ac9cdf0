//! The console broker (`console_mode` broker, the default): a console
//! page gets a one-time `/ws/TICKET` instead of Hetzner's URL and
//! password; hcc connects to the console itself (here a real Xvnc behind
//! websockify, handed out by `hcc sim --console-upstream`), offers the
//! websocket client RFB 3.8 with security None, relays, and records each
//! session in `console_sessions`.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::Message;

use crate::support::serve::{Serve, Ws, connect, keyed, open_link, page_data, serving, setup};
use crate::support::vnc::{Bridge, VncServer, hcc_vnc};
use crate::test::{Env, Sim, eventually};

const PASSWORD: &str = "brok3r!x";

/// A VNC console, a simulator handing it out, and `hcc serve`; `None`
/// (after a SKIP line; a failure under CI) without Xvnc.
struct Setup {
    vnc: VncServer,
    sim: Sim,
    env: Env,
    keys: crate::support::serve::Keys,
}

fn start(upstream_password: &str) -> Option<Setup> {
    let vnc = VncServer::start(PASSWORD)?;
    let sim = Sim::start(&[
        "--servers",
        "1",
        "--console-upstream",
        vnc.ws_url(),
        "--console-password",
        upstream_password,
    ]);
    let (env, keys) = keyed(&sim);
    Some(Setup {
        vnc,
        sim,
        env,
        keys,
    })
}

/// Opens a fresh console link; the page and its `/ws/TICKET` path.
fn open_page(serve: &Serve, key: &str) -> (crate::test::Http, String) {
    let (page, data) = open_link(serve, key, "srv-00001");
    let ws = data["ws"].as_str().expect("a ws path in broker mode");
    let ws = ws.strip_prefix("..").expect("relative to /c/").to_string();
    assert!(ws.starts_with("/ws/") && ws.len() == 4 + 64, "{ws}");
    (page, ws)
}

/// Reads RFB bytes from binary messages until `n` have come.
struct Rfb {
    ws: Ws,
    pending: Vec<u8>,
}

impl Rfb {
    fn read(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.pending.len() < n {
            match self.ws.read() {
                Ok(Message::Binary(b)) => self.pending.extend_from_slice(&b),
                Ok(Message::Close(frame)) => return Err(format!("closed: {frame:?}")),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        Ok(self.pending.drain(..n).collect())
    }

    fn send(&mut self, bytes: &[u8]) {
        self.ws.send(Message::binary(bytes.to_vec())).unwrap();
    }

    /// The client's handshake with security None, ClientInit, and the
    /// ServerInit's width and height.
    fn handshake(ws: Ws) -> (Rfb, u16, u16) {
        let mut rfb = Rfb {
            ws,
            pending: Vec::new(),
        };
        assert_eq!(rfb.read(12).unwrap(), b"RFB 003.008\n");
        rfb.send(b"RFB 003.008\n");
        assert_eq!(rfb.read(2).unwrap(), [1, 1], "only security None");
        rfb.send(&[1]);
        assert_eq!(rfb.read(4).unwrap(), [0, 0, 0, 0], "SecurityResult OK");
        rfb.send(&[1]);
        let init = rfb.read(24).unwrap();
        let width = u16::from_be_bytes([init[0], init[1]]);
        let height = u16::from_be_bytes([init[2], init[3]]);
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
        rfb.read(name_len as usize).unwrap();
        (rfb, width, height)
    }

    /// Waits for the end of the connection (a close frame or EOF).
    fn wait_closed(&mut self) -> Option<String> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(frame)) => return Some(format!("{frame:?}")),
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => return Some("closed".into()),
                Err(e) => return Some(format!("{e}")),
            }
        }
    }
}

/// The one session row with this state: (end_reason, to, from,
/// connected_at, ended_at, the connection's user agent).
type Row = (
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn last_session(env: &Env) -> Row {
    env.db()
        .query_row(
            "SELECT end_reason, bytes_to_client, bytes_from_client, connected_at, ended_at,
                    connection_user_agent
             FROM console_sessions WHERE connected_at IS NOT NULL ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap()
}

fn ended(env: &Env) -> Row {
    let mut row = last_session(env);
    assert!(
        eventually(Duration::from_secs(10), || {
            row = last_session(env);
            row.4.is_some()
        }),
        "the session did not end: {row:?}"
    );
    row
}

#[test]
fn a_ticket_opens_one_brokered_session_and_the_page_holds_no_console_secret() {
    let Some(s) = start(PASSWORD) else {
        return;
    };
    let serve = Serve::start(&s.env, &s.sim, &[]);
    let (page, ws) = open_page(&serve, &s.keys.console);
    // The page names neither the console's URL nor its password, and may
    // connect only to hcc itself.
    assert!(!page.body.contains(s.vnc.ws_url()), "{}", page.body);
    assert!(!page.body.contains(PASSWORD), "{}", page.body);
    assert!(!page.body.contains("wss_url"), "{}", page.body);
    let csp = page.header("Content-Security-Policy").unwrap().to_string();
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    // Nothing asked of Hetzner until the websocket comes.
    let consoles = |sim: &Sim| {
        sim.control("GET", "/_sim/consoles", None).json()["consoles"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(consoles(&s.sim), 0);

    let (mut rfb, width, height) = Rfb::handshake(connect(&serve, &ws).unwrap());
    assert_eq!((width, height), (1024, 768));
    assert_eq!(consoles(&s.sim), 1);
    // A framebuffer update for a corner comes back through the relay.
    rfb.send(&[3, 0, 0, 0, 0, 0, 0, 16, 0, 16]);
    assert_eq!(rfb.read(1).unwrap(), [0], "a FramebufferUpdate");
    // The ticket is spent, whoever tries it next.
    assert_eq!(connect(&serve, &ws).err(), Some(410));
    rfb.ws.close(None).unwrap();
    let _ = rfb.wait_closed();
    let (reason, to, from, connected, ended_at, agent) = ended(&s.env);
    assert_eq!(reason.as_deref(), Some("client closed"));
    assert!(to > 24 && from >= 10, "bytes to {to}, from {from}");
    assert!(connected.is_some() && ended_at >= connected);
    assert_eq!(agent.as_deref(), Some("broker-test/1"));
    let mode: String = s
        .env
        .value("SELECT mode FROM console_sessions ORDER BY id DESC LIMIT 1");
    assert_eq!(mode, "broker");

    // An unused ticket past its seconds is refused.
    let (_, stale) = open_page(&serve, &s.keys.console);
    s.env
        .db()
        .execute(
            "UPDATE console_sessions SET ticket_expires_at = 1 WHERE connected_at IS NULL",
            [],
        )
        .unwrap();
    assert_eq!(connect(&serve, &stale).err(), Some(410));
    // A page's refresh brings a new ticket (not credentials) that works.
    let (page, _) = open_page(&serve, &s.keys.console);
    let session = page_data(&page.body)["session"]
        .as_str()
        .unwrap()
        .to_string();
    let refreshed = serve.refresh(&session);
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let fresh = refreshed.json();
    assert!(
        fresh.get("password").is_none() && fresh.get("wss_url").is_none(),
        "{fresh}"
    );
    let ws = fresh["ws"]
        .as_str()
        .unwrap()
        .trim_start_matches("..")
        .to_string();
    let (rfb, _, _) = Rfb::handshake(connect(&serve, &ws).unwrap());
    drop(rfb);
    let (reason, ..) = ended(&s.env);
    assert_eq!(reason.as_deref(), Some("client closed"));
    // Malformed tickets and plain GETs.
    assert_eq!(serve.request("GET", "/ws/short", None, None).status, 404);
    let plain = format!("/ws/{}", "ab".repeat(32));
    assert_eq!(serve.request("GET", &plain, None, None).status, 400);
    // A broken upgrade is refused before its ticket is spent.
    let (_, kept) = open_page(&serve, &s.keys.console);
    let broken = crate::support::serve::raw(
        &serve.addr,
        format!(
            "GET {kept} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(crate::support::serve::status_of(&broken), 400, "{broken}");
    let (rfb, _, _) = Rfb::handshake(connect(&serve, &kept).unwrap());
    drop(rfb);

    // Neither the ticket nor a console secret reaches the log.
    let log = serve.log();
    assert!(log.contains("GET /ws/<ticket> 101"), "{log}");
    assert!(!log.contains(ws.trim_start_matches("/ws/")), "{log}");
    assert!(!log.contains(PASSWORD), "{log}");
    for ticket in s.sim.control("GET", "/_sim/consoles", None).json()["consoles"]
        .as_array()
        .unwrap()
    {
        let token = ticket["token"].as_str().unwrap_or("-");
        assert!(!log.contains(token), "{log}");
    }
}

#[test]
fn a_wrong_console_password_ends_the_session_with_the_servers_reason() {
    let Some(s) = start("wrong-pw") else {
        return;
    };
    let serve = Serve::start(&s.env, &s.sim, &[]);
    let (_, ws) = open_page(&serve, &s.keys.console);
    let mut ws = connect(&serve, &ws).unwrap();
    // The browser's side is closed with a close frame, not dropped.
    match ws.read() {
        Ok(Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 1011, "{frame:?}");
            assert!(!frame.reason.contains("127.0.0.1"), "{frame:?}");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    let (reason, ..) = ended(&s.env);
    let reason = reason.unwrap();
    assert!(
        reason.starts_with("error: the console server refused the console password"),
        "{reason}"
    );
    assert!(
        eventually(Duration::from_secs(10), || session_threads(serve.pid())
            == 0),
        "a session thread stays"
    );
}

#[test]
fn a_stop_request_from_another_process_ends_a_live_session() {
    let Some(s) = start(PASSWORD) else {
        return;
    };
    let serve = Serve::start(&s.env, &s.sim, &[]);
    let (page, ws) = open_page(&serve, &s.keys.console);
    let (mut rfb, _, _) = Rfb::handshake(connect(&serve, &ws).unwrap());
    // As `hcc revoke` would, from its own process: the store, not memory.
    let asked = Instant::now();
    let status = std::process::Command::new("sqlite3")
        .arg(s.env.path("hcc.db"))
        .arg(
            "PRAGMA busy_timeout = 5000; UPDATE console_sessions SET stop_requested = 'revoked' \
             WHERE connected_at IS NOT NULL AND ended_at IS NULL;",
        )
        .stdout(std::process::Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        s.env
            .db()
            .execute(
                "UPDATE console_sessions SET stop_requested = 'revoked'
                 WHERE connected_at IS NOT NULL AND ended_at IS NULL",
                [],
            )
            .unwrap();
    }
    let closed = rfb.wait_closed();
    let took = asked.elapsed();
    // Within a second as a rule; generous here for a loaded machine.
    assert!(took < Duration::from_secs(5), "took {took:?}: {closed:?}");
    let (reason, ..) = ended(&s.env);
    assert_eq!(reason.as_deref(), Some("revoked"));
    assert!(serve.log().contains("ended: revoked"), "{}", serve.log());
    // The revoked page gets no new ticket to come back with.
    let session = page_data(&page.body)["session"]
        .as_str()
        .unwrap()
        .to_string();
    let refreshed = serve.refresh(&session);
    assert_eq!(refreshed.status, 410, "{}", refreshed.body);

    // A suspended server: its live session ends, its upgrades are refused.
    let (_, ws) = open_page(&serve, &s.keys.console);
    let (_, waiting) = open_page(&serve, &s.keys.console);
    let (mut rfb, _, _) = Rfb::handshake(connect(&serve, &ws).unwrap());
    s.env
        .db()
        .execute(
            "INSERT INTO suspended (server, suspended_at, suspended_by) VALUES ('srv-00001', 1, 'cli')",
            [],
        )
        .unwrap();
    rfb.wait_closed();
    let (reason, ..) = ended(&s.env);
    assert_eq!(reason.as_deref(), Some("suspended"));
    assert_eq!(connect(&serve, &waiting).err(), Some(403));
    let (reason, ..) = ended(&s.env);
    assert_eq!(reason.as_deref(), Some("suspended"));
}

#[test]
fn an_idle_session_ends_after_the_idle_timeout() {
    let Some(s) = start(PASSWORD) else {
        return;
    };
    s.env.ok(&["config", "set", "console_idle_timeout", "1"]);
    let serve = Serve::start(&s.env, &s.sim, &[]);
    let (_, ws) = open_page(&serve, &s.keys.console);
    // No update requests: nothing passes either way after ServerInit.
    let (mut rfb, _, _) = Rfb::handshake(connect(&serve, &ws).unwrap());
    let closed = rfb.wait_closed();
    let (reason, ..) = ended(&s.env);
    assert_eq!(reason.as_deref(), Some("idle"), "{closed:?}");
}

/// `hcc vnc` running; its printed port and text.
fn bridge(s: &Setup, extra: &[&str]) -> Bridge {
    hcc_vnc(&s.env, &s.sim, extra)
}

/// An RFB client over TCP: the handshake (None, or VNC authentication
/// with `password`), ServerInit, one full update of a corner; the colour
/// of its top left pixel as #rrggbb.
fn viewer_corner_colour(port: u16, password: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let read = |s: &mut TcpStream, n: usize| {
        let mut b = vec![0u8; n];
        s.read_exact(&mut b).unwrap();
        b
    };
    assert_eq!(read(&mut s, 12), b"RFB 003.008\n");
    s.write_all(b"RFB 003.008\n").unwrap();
    match password {
        None => {
            assert_eq!(read(&mut s, 2), [1, 1]);
            s.write_all(&[1]).unwrap();
        }
        Some(pw) => {
            assert_eq!(read(&mut s, 2), [1, 2]);
            s.write_all(&[2]).unwrap();
            let challenge: [u8; 16] = read(&mut s, 16).try_into().unwrap();
            s.write_all(&hcc::vnc_auth::response(pw, &challenge))
                .unwrap();
        }
    }
    assert_eq!(read(&mut s, 4), [0, 0, 0, 0], "SecurityResult");
    s.write_all(&[1]).unwrap();
    let init = read(&mut s, 24);
    assert_eq!(&init[..4], [4, 0, 3, 0], "1024x768");
    let (bpp, big_endian) = (init[4], init[6] != 0);
    let max = |i: usize| u32::from(u16::from_be_bytes([init[i], init[i + 1]]));
    let (rmax, gmax, bmax) = (max(8), max(10), max(12));
    let (rs, gs, bs) = (init[14], init[15], init[16]);
    let name_len = u32::from_be_bytes(init[20..24].try_into().unwrap());
    read(&mut s, name_len as usize);
    assert_eq!(bpp, 32, "the server's pixel format");
    // Raw (no SetEncodings), the whole 4x4 corner.
    s.write_all(&[3, 0, 0, 0, 0, 0, 0, 4, 0, 4]).unwrap();
    let header = read(&mut s, 4);
    assert_eq!(header[0], 0, "FramebufferUpdate");
    let rect = read(&mut s, 12);
    let (w, h) = (
        u16::from_be_bytes([rect[4], rect[5]]),
        u16::from_be_bytes([rect[6], rect[7]]),
    );
    let pixels = read(&mut s, usize::from(w) * usize::from(h) * 4);
    let p: [u8; 4] = pixels[..4].try_into().unwrap();
    let v = if big_endian {
        u32::from_be_bytes(p)
    } else {
        u32::from_le_bytes(p)
    };
    let scale = |c: u32, m: u32| (c * 255 / m.max(1)) as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        scale((v >> rs) & rmax, rmax),
        scale((v >> gs) & gmax, gmax),
        scale((v >> bs) & bmax, bmax)
    )
}

fn sim_consoles(sim: &Sim) -> usize {
    sim.control("GET", "/_sim/consoles", None).json()["consoles"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn hcc_vnc_gives_a_native_viewer_the_console_with_fresh_credentials_each() {
    let Some(s) = start(PASSWORD) else {
        return;
    };
    let b = bridge(&s, &[]);
    assert!(
        b.printed
            .contains(&format!("vncviewer 127.0.0.1::{}", b.port)),
        "{}",
        b.printed
    );
    assert!(!b.printed.contains(PASSWORD), "{}", b.printed);
    // The console asked for at start serves the first viewer; the second
    // gets its own.
    assert_eq!(sim_consoles(&s.sim), 1);
    assert_eq!(
        viewer_corner_colour(b.port, None),
        crate::support::vnc::ROOT_COLOUR
    );
    assert_eq!(
        viewer_corner_colour(b.port, None),
        crate::support::vnc::ROOT_COLOUR
    );
    assert_eq!(sim_consoles(&s.sim), 2);

    // A third-party client (vncsnapshot speaks RFB 3.3) takes a
    // screenshot through the bridge.
    // Its default encodings stall on TigerVNC's cursor updates, with or
    // without hcc in between: raw.
    let raw = ["-encodings", "raw", "-rect", "64x64+0+0"];
    if let Some((width, height, rgb)) = vncsnapshot(b.port, &raw) {
        assert_eq!((width, height), (64, 64));
        let want = [0x2e, 0x6f, 0x9e];
        assert!(
            rgb[..3].iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 8),
            "the screenshot's corner is {:?}, not the root colour",
            &rgb[..3]
        );
    }
}

#[test]
fn hcc_vnc_refuses_other_machines_unless_allowed_and_then_asks_a_password() {
    let Some(s) = start(PASSWORD) else {
        return;
    };
    let run = s.env.run(&["vnc", "srv-00001", "--listen", "0.0.0.0:0"]);
    run.fails(
        2,
        "hcc: refusing to listen on 0.0.0.0:0, beyond this machine: pass --allow-remote \
         (viewers then need a one-off password), or listen on 127.0.0.1",
    );
    let b = bridge(&s, &["--listen", "0.0.0.0:0", "--allow-remote"]);
    let password = b
        .printed
        .lines()
        .find_map(|l| l.rsplit_once("(shown only now): ").map(|(_, p)| p.trim()))
        .unwrap_or_else(|| panic!("no password printed: {}", b.printed))
        .to_string();
    assert_eq!(password.len(), 8);
    assert_eq!(
        viewer_corner_colour(b.port, Some(&password)),
        crate::support::vnc::ROOT_COLOUR
    );
    // A wrong one is refused before any console is asked for.
    let before = sim_consoles(&s.sim);
    let mut stream = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    use std::io::{Read, Write};
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).unwrap();
    stream.write_all(b"RFB 003.008\n\x02").unwrap();
    let mut head = [0u8; 2 + 16];
    stream.read_exact(&mut head).unwrap();
    stream.write_all(&[0u8; 16]).unwrap();
    let mut result = [0u8; 4];
    stream.read_exact(&mut result).unwrap();
    assert_eq!(result, [0, 0, 0, 1]);
    assert_eq!(sim_consoles(&s.sim), before);
}

/// A screenshot by vncsnapshot (a third-party RFB 3.3 client) through
/// `hcc vnc` on `port`, as binary PPM (width, height, RGB); `None` after
/// a failure under CI or a SKIP line when vncsnapshot or djpeg is missing.
fn vncsnapshot(port: u16, extra: &[&str]) -> Option<(usize, usize, Vec<u8>)> {
    if !(crate::test::require_program("vncsnapshot") && crate::test::require_program("djpeg")) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.jpg");
    let out = std::process::Command::new("timeout")
        .args(["30", "vncsnapshot", "-quiet"])
        .args(extra)
        .arg(format!("127.0.0.1::{port}"))
        .arg(&shot)
        .output()
        .unwrap();
    assert!(out.status.success(), "vncsnapshot: {out:?}");
    let ppm = std::process::Command::new("djpeg")
        .args(["-pnm"])
        .arg(&shot)
        .output()
        .unwrap()
        .stdout;
    // P6\nWIDTH HEIGHT\n255\n then RGB.
    let text = String::from_utf8_lossy(&ppm[..32.min(ppm.len())]).into_owned();
    let mut fields = text.split_ascii_whitespace();
    assert_eq!(fields.next(), Some("P6"), "{text:?}");
    let width: usize = fields.next().unwrap().parse().unwrap();
    let height: usize = fields.next().unwrap().parse().unwrap();
    let rgb = ppm[ppm.len() - width * height * 3..].to_vec();
    Some((width, height, rgb))
}

/// A third-party viewer through `hcc vnc` to the simulator's own console:
/// vncsnapshot (RFB 3.3, its default encodings) gets the whole 640x400
/// screen with the banner's colour at the top left, and a second one gets
/// a console of its own (fresh credentials).
#[test]
fn hcc_vnc_gives_vncsnapshot_the_sim_console() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    setup(&env, &sim);
    let b = hcc_vnc(&env, &sim, &[]);
    let Some((width, height, rgb)) = vncsnapshot(b.port, &[]) else {
        return;
    };
    assert_eq!((width, height), (640, 400));
    let banner = [0x3c, 0x8d, 0x5a];
    assert!(
        rgb[..3].iter().zip(banner).all(|(a, b)| a.abs_diff(b) <= 8),
        "the screenshot's corner is {:?}, not the banner's colour",
        &rgb[..3]
    );
    // More than the banner: the console's text and background too.
    let below = &rgb[width * 3 * 200..width * 3 * 200 + 3];
    assert!(
        below.iter().zip(banner).any(|(a, b)| a.abs_diff(b) > 24),
        "{below:?}"
    );
    vncsnapshot(b.port, &["-rect", "8x8+0+0"]).unwrap();
    let logins = sim.control("GET", "/_sim/consoles/srv-00001", None).json()["logins"].clone();
    assert_eq!(logins, 2);
    assert_eq!(sim_consoles(&sim), 2);
}

/// `hcc serve`'s threads that carry websocket sessions.
fn session_threads(pid: u32) -> usize {
    crate::test::threads_named(pid, "hcc-serve-ws")
}

#[test]
fn two_hundred_sessions_dropped_at_once_each_end_with_a_reason_and_no_thread_stays() {
    let Some(s) = start(PASSWORD) else {
        return;
    };
    two_hundred_dropped(&s.env, &s.sim, &s.keys);
}

/// The same on the simulator's own console, which lets its viewers go too.
#[test]
fn two_hundred_sessions_on_the_sim_console_dropped_at_once() {
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    two_hundred_dropped(&env, &sim, &keys);
    let console = || sim.control("GET", "/_sim/consoles/srv-00001", None).json();
    assert!(
        eventually(Duration::from_secs(10), || console()["clients"] == 0),
        "{}",
        console()
    );
}

/// 200 brokered sessions opened at once, half dropped right after the
/// upgrade, half after garbage: each ends with a reason, no thread stays.
fn two_hundred_dropped(env: &Env, sim: &Sim, keys: &crate::support::serve::Keys) {
    // All on one server, from one key: beyond the default caps.
    env.ok(&["config", "set", "max_console_sessions_per_server", "1000"]);
    env.ok(&["config", "set", "max_console_sessions_per_key", "1000"]);
    env.ok(&["config", "set", "console_requests_per_server", "3600"]);
    let serve = Serve::start(env, sim, &[]);
    let tickets: Vec<String> = (0..200)
        .map(|_| open_page(&serve, &keys.console).1)
        .collect();
    // Half hang up right after the upgrade, half after a few bytes of
    // garbage instead of a version.
    std::thread::scope(|scope| {
        for (i, ticket) in tickets.iter().enumerate() {
            let serve = &serve;
            scope.spawn(move || {
                if let Ok(mut ws) = connect(serve, ticket) {
                    if i % 2 == 1 {
                        let _ = ws.send(Message::binary(b"GARBAGE!GARBAGE!".to_vec()));
                    }
                    drop(ws);
                }
            });
        }
    });
    let pid = serve.pid();
    let settled = eventually(Duration::from_secs(60), || {
        let open: i64 = env.value(
            "SELECT count(*) FROM console_sessions WHERE connected_at IS NOT NULL AND ended_at IS NULL",
        );
        open == 0 && session_threads(pid) == 0
    });
    let open: i64 = env.value(
        "SELECT count(*) FROM console_sessions WHERE connected_at IS NOT NULL AND ended_at IS NULL",
    );
    assert!(
        settled,
        "{open} sessions still open, {} session threads",
        session_threads(pid)
    );
    let connected: i64 =
        env.value("SELECT count(*) FROM console_sessions WHERE connected_at IS NOT NULL");
    assert_eq!(connected, 200);
    let reasons: Vec<String> =
        env.column("SELECT DISTINCT end_reason FROM console_sessions WHERE ended_at IS NOT NULL");
    assert!(
        reasons
            .iter()
            .all(|r| r == "client closed" || r.starts_with("error: ")),
        "{reasons:?}"
    );
    assert!(!serve.log().contains("panicked"), "{}", serve.log());
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_client_that_asks_for_frames_and_never_reads_holds_no_growing_memory() {
    let Some(s) = start(PASSWORD) else {
        return;
    };
    let serve = Serve::start(&s.env, &s.sim, &[]);
    let (_, ws) = open_page(&serve, &s.keys.console);
    let (mut rfb, _, _) = Rfb::handshake(connect(&serve, &ws).unwrap());
    let before = rss_kb(serve.pid());
    // 300 whole frames of 3 MiB each are asked for, and none is read.
    let mut full = vec![3u8, 0, 0, 0, 0, 0];
    full.extend_from_slice(&1024u16.to_be_bytes());
    full.extend_from_slice(&768u16.to_be_bytes());
    let mut asked = Vec::new();
    for _ in 0..300 {
        asked.extend_from_slice(&full);
    }
    rfb.send(&asked);
    // Time for the frames to pile up if hcc buffered them (the point).
    std::thread::sleep(Duration::from_secs(3));
    let during = rss_kb(serve.pid());
    assert!(
        during < before + 32 * 1024,
        "hcc serve grew from {before} KiB to {during} KiB"
    );
    // Blocked as it is, the session still ends when asked to.
    s.env
        .db()
        .execute(
            "UPDATE console_sessions SET stop_requested = 'revoked' WHERE ended_at IS NULL",
            [],
        )
        .unwrap();
    let (reason, to, ..) = ended(&s.env);
    assert_eq!(reason.as_deref(), Some("revoked"));
    assert!(to < 300 * 3 * 1024 * 1024, "{to} bytes went out");
    assert!(
        eventually(Duration::from_secs(10), || session_threads(serve.pid())
            == 0),
        "a session thread stays"
    );
}

/// Answers a websocket upgrade with the `binary` subprotocol, as
/// websockify and Hetzner do (hcc asks for it).
// The callback's type is tungstenite's, its large error included.
#[allow(clippy::result_large_err)]
fn answer_binary(
    _: &tungstenite::handshake::server::Request,
    mut response: tungstenite::handshake::server::Response,
) -> Result<tungstenite::handshake::server::Response, tungstenite::handshake::server::ErrorResponse>
{
    response
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    Ok(response)
}

/// A console server that speaks websocket, sends the RFB version and
/// hangs up: upstream closing mid-handshake. Serves connections until
/// the test ends; counts them.
fn hang_up_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            seen.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut ws) = tungstenite::accept_hdr(stream, answer_binary) {
                let _ = ws.send(Message::binary(b"RFB 003.008\n".to_vec()));
                // The client's version, then gone without a word.
                let _ = ws.read();
            }
        }
    });
    (url, count)
}

/// Sessions whose upstream fails (hangs up mid-handshake, or its URL
/// expired before hcc dialled it) and clients that send garbage each end
/// with their reason recorded: the browser's side gets a close frame, no
/// session thread stays, nothing panics, no console secret is recorded.
#[test]
fn failing_upstreams_and_garbage_clients_end_with_a_recorded_reason() {
    let no_threads = |serve: &Serve| {
        assert!(
            eventually(Duration::from_secs(10), || session_threads(serve.pid())
                == 0),
            "{} session threads stay",
            session_threads(serve.pid())
        );
        assert!(!serve.log().contains("panicked"), "{}", serve.log());
    };
    let refused = |serve: &Serve, key: &str| {
        let (_, ws) = open_page(serve, key);
        let mut ws = connect(serve, &ws).unwrap();
        match ws.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), 1011, "{frame:?}"),
            other => panic!("expected a close frame, got {other:?}"),
        }
    };

    // The console server hangs up right after the versions.
    let (upstream, dialled) = hang_up_upstream();
    let sim = Sim::start(&[
        "--servers",
        "1",
        "--console-upstream",
        &upstream,
        "--console-password",
        PASSWORD,
    ]);
    let (env, keys) = keyed(&sim);
    let serve = Serve::start(&env, &sim, &[]);
    refused(&serve, &keys.console);
    let (reason, to, ..) = ended(&env);
    let reason = reason.unwrap();
    assert!(
        reason.starts_with("error: ") && reason.contains("console server"),
        "{reason}"
    );
    assert!(!reason.contains(PASSWORD), "{reason}");
    assert_eq!(to, 0);
    assert_eq!(dialled.load(std::sync::atomic::Ordering::SeqCst), 1);
    no_threads(&serve);
    drop(serve);

    // The simulator's own console, its URL dead a minute after it was
    // handed out: a minute passes in a few microseconds here.
    let (sim, env, keys, serve) = serving(&["--servers", "1", "--time-scale", "10000000"]);
    refused(&serve, &keys.console);
    let (reason, ..) = ended(&env);
    let reason = reason.unwrap();
    assert!(
        reason.starts_with("error: ") && reason.contains("HTTP 403"),
        "{reason}"
    );
    let tickets = sim.control("GET", "/_sim/consoles", None).json();
    let ticket = &tickets["consoles"][0];
    assert_eq!(ticket["expired"], true, "{tickets}");
    for secret in ["token", "password"] {
        let secret = ticket[secret].as_str().unwrap();
        assert!(!reason.contains(secret), "{reason}");
        assert!(!serve.log().contains(secret), "{}", serve.log());
    }
    no_threads(&serve);
    drop(serve);

    // Clients that send garbage, on the simulator's live console: instead
    // of a version (hcc ends it), and after the handshake (relayed: the
    // console server ends it).
    let (sim, env, keys, serve) = serving(&["--servers", "1"]);
    let (_, ws) = open_page(&serve, &keys.console);
    let mut rfb = Rfb {
        ws: connect(&serve, &ws).unwrap(),
        pending: Vec::new(),
    };
    assert_eq!(rfb.read(12).unwrap(), b"RFB 003.008\n");
    rfb.send(b"GET / HTTP/1.1\r\n");
    rfb.wait_closed();
    let (reason, ..) = ended(&env);
    let reason = reason.unwrap();
    assert!(
        reason.starts_with("error: the client does not speak RFB"),
        "{reason}"
    );
    no_threads(&serve);

    let (_, ws) = open_page(&serve, &keys.console);
    let (mut rfb, width, height) = Rfb::handshake(connect(&serve, &ws).unwrap());
    assert_eq!((width, height), (640, 400));
    rfb.send(&[99, 1, 2, 3]);
    rfb.wait_closed();
    let (reason, _, from, ..) = ended(&env);
    assert_eq!(reason.as_deref(), Some("upstream closed"));
    assert!(from >= 4, "{from}");
    let console = sim.control("GET", "/_sim/consoles/srv-00001", None).json();
    assert_eq!(console["last_end"], "a malformed message", "{console}");
    no_threads(&serve);
}
