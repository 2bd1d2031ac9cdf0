//! The simulator's live console: `request_console`'s URL leads to an RFB
//! 3.8 server with VNC authentication that draws a text console and
//! echoes keys; its state shows at `/_sim/consoles/{id}`. A wrong password,
//! a stale URL, garbage and a client that never reads all end cleanly.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use crate::support::vnc::WsClient;
use crate::test::{Env, Sim, eventually};

const WIDTH: usize = 640;
const HEIGHT: usize = 400;
/// The console's banner colour: its top-left pixel.
const BANNER: [u8; 3] = [0x3c, 0x8d, 0x5a];

/// noVNC's pixel format: 32 bpp, depth 24, little-endian, RGB at 0/8/16.
const NOVNC_FORMAT: [u8; 16] = [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0];
/// RGB565, little-endian.
const RGB565: [u8; 16] = [16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0];

/// A fresh console of server `id` from the API: (URL, password).
fn request_console(sim: &Sim, id: u64) -> (String, String) {
    let answer = sim.request_console(id);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let json = answer.json();
    (
        json["wss_url"].as_str().unwrap().to_string(),
        json["password"].as_str().unwrap().to_string(),
    )
}

fn first_server(sim: &Sim) -> u64 {
    sim.get("/servers").json()["servers"][0]["id"]
        .as_u64()
        .unwrap()
}

fn state(sim: &Sim, server: &str) -> Value {
    let answer = sim.control("GET", &format!("/_sim/consoles/{server}"), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// Waits up to `limit` until the console state of srv-00001 satisfies
/// `cond`; fails with `context` and that state when it never does.
fn wait_for_state(sim: &Sim, limit: Duration, context: &str, cond: impl Fn(&Value) -> bool) {
    assert!(
        eventually(limit, || cond(&state(sim, "srv-00001"))),
        "{context} {}",
        state(sim, "srv-00001")
    );
}

fn u32_at(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Up to the challenge: the banner, our 3.8, VNC authentication chosen.
fn to_challenge(url: &str) -> (WsClient, [u8; 16]) {
    let mut ws = WsClient::connect(url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ws.read(12).unwrap(), b"RFB 003.008\n");
    ws.write(b"RFB 003.008\n").unwrap();
    let n = ws.read(1).unwrap()[0];
    assert_eq!(
        ws.read(usize::from(n)).unwrap(),
        [2],
        "VNC authentication only"
    );
    ws.write(&[2]).unwrap();
    let mut challenge = [0u8; 16];
    challenge.copy_from_slice(&ws.read(16).unwrap());
    (ws, challenge)
}

/// A client past ServerInit; returns it and the desktop name.
fn login(url: &str, password: &str) -> (WsClient, String) {
    let (mut ws, challenge) = to_challenge(url);
    ws.write(&hcc::vnc_auth::response(password, &challenge))
        .unwrap();
    assert_eq!(ws.read(4).unwrap(), [0, 0, 0, 0], "SecurityResult OK");
    ws.write(&[1]).unwrap(); // ClientInit: shared
    let init = ws.read(24).unwrap();
    assert_eq!(u16::from_be_bytes([init[0], init[1]]) as usize, WIDTH);
    assert_eq!(u16::from_be_bytes([init[2], init[3]]) as usize, HEIGHT);
    assert_eq!(&init[4..8], [32, 24, 0, 1], "32 bpp true colour");
    let name = ws.read(u32_at(&init[20..24]) as usize).unwrap();
    (ws, String::from_utf8(name).unwrap())
}

fn update_request(ws: &mut WsClient, incremental: bool) {
    let mut msg = vec![3, u8::from(incremental), 0, 0, 0, 0];
    msg.extend_from_slice(&(WIDTH as u16).to_be_bytes());
    msg.extend_from_slice(&(HEIGHT as u16).to_be_bytes());
    ws.write(&msg).unwrap();
}

fn key(ws: &mut WsClient, keysym: u32) {
    for down in [1u8, 0] {
        let mut msg = vec![4, down, 0, 0];
        msg.extend_from_slice(&keysym.to_be_bytes());
        ws.write(&msg).unwrap();
    }
}

/// Reads one FramebufferUpdate (Raw) into `fb` (`bpp` bytes a pixel);
/// returns its rectangles as (x, y, w, h).
fn read_update(ws: &mut WsClient, fb: &mut [u8], bpp: usize) -> Vec<[usize; 4]> {
    let head = ws.read(4).unwrap();
    assert_eq!(head[0], 0, "a FramebufferUpdate");
    let n = u16::from_be_bytes([head[2], head[3]]);
    let mut rects = Vec::new();
    for _ in 0..n {
        let r = ws.read(12).unwrap();
        let at = |i: usize| u16::from_be_bytes([r[i], r[i + 1]]) as usize;
        let (x, y, w, h) = (at(0), at(2), at(4), at(6));
        assert_eq!(&r[8..12], [0, 0, 0, 0], "Raw");
        assert!(x + w <= WIDTH && y + h <= HEIGHT);
        let data = ws.read(w * h * bpp).unwrap();
        for row in 0..h {
            let from = row * w * bpp;
            let to = ((y + row) * WIDTH + x) * bpp;
            fb[to..to + w * bpp].copy_from_slice(&data[from..from + w * bpp]);
        }
        rects.push([x, y, w, h]);
    }
    rects
}

#[test]
fn the_sim_console_speaks_rfb_echoes_keys_and_shows_its_state() {
    let sim = Sim::start(&["--servers", "1"]);
    // The console as `hcc console --json` hands it out.
    let env = Env::new();
    let run = env
        .cmd(&["console", "srv-00001", "--json"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let console: Value = serde_json::from_slice(&run.stdout).unwrap();
    let url = console["wss_url"].as_str().unwrap();
    let password = console["password"].as_str().unwrap();
    let id = first_server(&sim);
    assert!(
        url.starts_with(&format!("ws://{}/console/{id}?token=", sim.addr)),
        "{url}"
    );

    let (mut ws, name) = login(url, password);
    assert_eq!(name, "srv-00001");
    let s = state(&sim, "srv-00001");
    assert_eq!(
        (s["clients"].as_u64(), s["authenticated"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["screen"][4], "srv-00001 login:");

    // noVNC's opening: its format, its encodings (pseudo ones included),
    // a full update.
    let mut msg = vec![0, 0, 0, 0];
    msg.extend_from_slice(&NOVNC_FORMAT);
    ws.write(&msg).unwrap();
    let encodings: [i32; 5] = [0, -223, -224, -239, -308];
    let mut msg = vec![2, 0, 0, encodings.len() as u8];
    for e in encodings {
        msg.extend_from_slice(&e.to_be_bytes());
    }
    ws.write(&msg).unwrap();
    update_request(&mut ws, false);
    let mut fb = vec![0u8; WIDTH * HEIGHT * 4];
    let rects = read_update(&mut ws, &mut fb, 4);
    assert_eq!(rects, [[0, 0, WIDTH, HEIGHT]]);
    assert_eq!(&fb[..3], BANNER, "the banner's colour at the top left");
    let colours: std::collections::HashSet<&[u8]> = fb.chunks(4).collect();
    assert!(colours.len() > 2, "{} colours", colours.len());
    let before = fb.clone();

    // An incremental request is held until something changes: the first
    // update after it carries the key typed half a second later.
    update_request(&mut ws, true);
    std::thread::sleep(Duration::from_millis(500));
    key(&mut ws, u32::from(b'r'));
    let rects = read_update(&mut ws, &mut fb, 4);
    assert!(
        !rects.is_empty(),
        "an empty update: the request was not held"
    );
    assert!(
        rects.iter().all(|r| r[1] == 64 && r[3] == 16),
        "only the prompt's row changed: {rects:?}"
    );

    for k in [
        b'o' as u32,
        b'o' as u32,
        b't' as u32,
        0xff0d,
        b'l' as u32,
        b's' as u32,
        0xff08,
    ] {
        key(&mut ws, k);
    }
    wait_for_state(&sim, Duration::from_secs(5), "", |s| {
        s["typed"] == "root\nl"
    });
    update_request(&mut ws, true);
    read_update(&mut ws, &mut fb, 4);
    let changed = fb
        .chunks(4)
        .zip(before.chunks(4))
        .filter(|(a, b)| a != b)
        .count();
    assert!(changed > 50, "{changed} pixels changed");

    // Pointer and clipboard are recorded.
    ws.write(&[5, 1, 0, 10, 0, 20]).unwrap();
    let mut cut = vec![6, 0, 0, 0, 0, 0, 0, 5];
    cut.extend_from_slice(b"hello");
    ws.write(&cut).unwrap();
    wait_for_state(&sim, Duration::from_secs(5), "", |s| {
        s["cut_text"] == "hello"
    });
    let s = state(&sim, &id.to_string());
    assert_eq!(
        s["pointer"],
        serde_json::json!({"x": 10, "y": 20, "buttons": 1})
    );
    assert_eq!(s["screen"][4], "srv-00001 login: root");
    assert_eq!(s["screen"][5], "l");
    assert!(s["updates_sent"].as_u64().unwrap() >= 3, "{s}");
    // Presses only: r o o t Return l s BackSpace.
    assert_eq!(s["key_events"], 8);

    // A second viewer sees the same screen, in RGB565.
    let (url, password) = request_console(&sim, id);
    let (mut second, _) = login(&url, &password);
    let mut msg = vec![0, 0, 0, 0];
    msg.extend_from_slice(&RGB565);
    second.write(&msg).unwrap();
    update_request(&mut second, false);
    let mut fb16 = vec![0u8; WIDTH * HEIGHT * 2];
    read_update(&mut second, &mut fb16, 2);
    let banner = (u16::from(BANNER[0] >> 3) << 11)
        | (u16::from(BANNER[1] >> 2) << 5)
        | u16::from(BANNER[2] >> 3);
    let top_left = u16::from_le_bytes([fb16[0], fb16[1]]);
    // Rounding may differ by one step per component.
    assert!(
        top_left.abs_diff(banner) <= 0x0821,
        "{top_left:#06x} vs {banner:#06x}"
    );
    assert_eq!(state(&sim, "srv-00001")["clients"], 2);
    // Keys typed by one show on the other's screen.
    update_request(&mut second, true);
    key(&mut ws, u32::from(b'x'));
    let rects = read_update(&mut second, &mut fb16, 2);
    assert!(!rects.is_empty());

    drop(ws);
    drop(second);
    wait_for_state(&sim, Duration::from_secs(5), "", |s| s["clients"] == 0);
    // The ticket list shows the URLs, not yet expired.
    let tickets = sim.control("GET", "/_sim/consoles", None).json();
    assert_eq!(tickets["consoles"][0]["expired"], false);
}

#[test]
fn a_wrong_password_is_refused_with_the_reason() {
    let sim = Sim::start(&["--servers", "1"]);
    let (url, _) = request_console(&sim, first_server(&sim));
    let (mut ws, challenge) = to_challenge(&url);
    ws.write(&hcc::vnc_auth::response("wrong", &challenge))
        .unwrap();
    let result = ws.read(8).unwrap();
    assert_eq!(u32_at(&result[..4]), 1, "SecurityResult failed");
    let reason = ws.read(u32_at(&result[4..]) as usize).unwrap();
    assert_eq!(reason, b"Authentication failure");
    assert!(ws.read(1).is_err(), "the connection must close");
    let s = state(&sim, "srv-00001");
    assert_eq!(s["auth_failures"], 1);
    assert_eq!(s["logins"], 0);
    assert_eq!(s["last_end"], "authentication failed");
}

/// An HTTP upgrade request by hand: the status line and body of the answer.
fn raw_upgrade(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[test]
fn a_stale_or_unknown_console_url_is_refused() {
    // A minute of simulated time passes in half a second.
    let sim = Sim::start(&["--servers", "1", "--time-scale", "120"]);
    let id = first_server(&sim);
    let (url, _) = request_console(&sim, id);
    let path = url
        .trim_start_matches(&format!("ws://{}", sim.addr))
        .to_string();
    let expired =
        || sim.control("GET", "/_sim/consoles", None).json()["consoles"][0]["expired"] == true;
    assert!(eventually(Duration::from_secs(10), expired));
    let answer = raw_upgrade(&sim.addr, &path);
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(answer.contains("expired"), "{answer}");
    let tickets = sim.control("GET", "/_sim/consoles", None).json();
    assert_eq!(tickets["consoles"][0]["expired"], true);

    let sim = Sim::start(&["--servers", "1"]);
    let id = first_server(&sim);
    let (url, _) = request_console(&sim, id);
    let path = url
        .trim_start_matches(&format!("ws://{}", sim.addr))
        .to_string();
    let token = path.split("token=").nth(1).unwrap().to_string();
    for bad in [
        format!("/console/{id}?token=x{token}"),
        format!("/console/{id}"),
        format!("/console/{}?token={token}", id + 1),
    ] {
        let answer = raw_upgrade(&sim.addr, &bad);
        assert!(answer.starts_with("HTTP/1.1 403 "), "{bad}: {answer}");
    }
    // A plain GET of a good URL is no upgrade.
    let plain = crate::test::http(&sim.addr, "GET", &path, None, None).unwrap();
    assert_eq!(plain.status, 400, "{}", plain.body);
    // The good URL still works, twice (a page that reconnects).
    for _ in 0..2 {
        assert!(raw_upgrade(&sim.addr, &path).starts_with("HTTP/1.1 101 "));
    }
}

/// The sim's console threads (one per upgraded connection).
fn console_threads(pid: u32) -> usize {
    crate::test::threads_named(pid, "sim-conn-ws")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn garbage_and_a_client_that_never_reads_end_cleanly() {
    let sim = Sim::start(&["--servers", "1"]);
    let id = first_server(&sim);

    // Not RFB at all: the connection closes.
    let (url, password) = request_console(&sim, id);
    let mut ws = WsClient::connect(&url).unwrap();
    ws.read(12).unwrap();
    ws.write(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(ws.read(1).is_err());

    // An unknown message after the handshake: closed, reason recorded.
    let (mut ws, _) = login(&url, &password);
    ws.write(&[99, 1, 2, 3]).unwrap();
    assert!(ws.read(1).is_err());
    assert_eq!(state(&sim, "srv-00001")["last_end"], "a malformed message");

    // A bad pixel format (24 bpp) is garbage too.
    let (mut ws, _) = login(&url, &password);
    let mut msg = vec![0, 0, 0, 0];
    msg.extend_from_slice(&[24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
    ws.write(&msg).unwrap();
    assert!(ws.read(1).is_err());

    // A client that asks for full updates and never reads: the server's
    // memory stays bounded, and after some stalled seconds it lets go.
    let before = rss_kib(sim.pid());
    let (mut ws, _) = login(&url, &password);
    for _ in 0..60 {
        update_request(&mut ws, false);
        // A viewer's pace of requests (the point).
        std::thread::sleep(Duration::from_millis(40));
    }
    let during = rss_kib(sim.pid());
    assert!(
        during < before + 20 * 1024,
        "RSS grew from {before} to {during} KiB"
    );
    // Others are served meanwhile.
    let (mut other, _) = login(&url, &password);
    update_request(&mut other, false);
    let mut fb = vec![0u8; WIDTH * HEIGHT * 4];
    read_update(&mut other, &mut fb, 4);
    drop(other);
    wait_for_state(&sim, Duration::from_secs(30), "", |s| s["clients"] == 0);
    drop(ws);
    // No thread is left behind.
    assert!(
        eventually(Duration::from_secs(10), || console_threads(sim.pid()) == 0),
        "{} console threads left",
        console_threads(sim.pid())
    );
    // And the console still works.
    let (mut ws, _) = login(&url, &password);
    update_request(&mut ws, false);
    read_update(&mut ws, &mut fb, 4);
    // The server's own format: little-endian, red at bit 16.
    assert_eq!([fb[2], fb[1], fb[0]], BANNER);
}

/// The console pages in headless Chromium on the simulator's console: the
/// old `l.html?ws://...#PASSWORD` form and a one-time link. noVNC connects,
/// draws the console (the banner's colour at the top left, the text in
/// more colours) and its Ctrl-Alt-Del reaches the console as key events.
#[test]
fn a_browser_opens_the_sim_console() {
    if !crate::support::browser::browser_ready() {
        return;
    }
    let (sim, env, keys, serve) = crate::support::serve::serving(&["--servers", "1"]);
    let id = first_server(&sim);
    let banner = format!("#{:02x}{:02x}{:02x}", BANNER[0], BANNER[1], BANNER[2]);
    let drive = |url: &str, shot: &str, extra: &[&str]| {
        let shot = crate::support::browser::shots().join(shot);
        let mut args = vec![
            "--url",
            url,
            "--expect-colour",
            &banner,
            "--size",
            "640x400",
            "--screenshot",
            shot.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let report = crate::support::browser::node("console.mjs", &args, || {
            format!("the sim console (serve log: {})", serve.log())
        });
        assert!(
            report["pixels"]["distinctColours"].as_u64().unwrap() > 2,
            "{report}"
        );
        let events = report["events"].as_array().unwrap();
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "desktopname" && e["name"] == "srv-00001"),
            "{report}"
        );
        report
    };

    let (url, password) = request_console(&sim, id);
    drive(
        &format!("http://{}/l.html?{url}#{password}", serve.addr),
        "sim-l-html.png",
        &[],
    );
    let s = state(&sim, "srv-00001");
    assert_eq!(s["logins"], 1, "{s}");
    // Control_L, Alt_L and Delete pressed.
    assert!(s["key_events"].as_u64().unwrap() >= 3, "{s}");
    assert!(s["updates_sent"].as_u64().unwrap() >= 1, "{s}");

    // A wrong password: the page shows the server's reason.
    let (url, _) = request_console(&sim, id);
    crate::support::browser::node(
        "console.mjs",
        &[
            "--url",
            &format!("http://{}/l.html?{url}#wrong-pw", serve.addr),
            "--expect-state",
            "failed",
            "--expect-text",
            "Authentication failed: Authentication failure",
        ],
        || "a wrong password on the sim console".to_string(),
    );
    assert_eq!(state(&sim, "srv-00001")["auth_failures"], 1);

    // A one-time link, brokered (the default): the browser sees hcc
    // only. The console's URL, token and password hcc fetched while the
    // page connected appear nowhere in its network log or page sources.
    let made = serve.post("/api/v1/servers/srv-00001/console-link", &keys.console);
    assert_eq!(made.status, 201, "{}", made.body);
    let link = made.json()["url"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("network.json");
    let before = consoles(&sim).len();
    let report = drive(
        &link,
        "sim-console-link.png",
        &[
            "--log",
            log.to_str().unwrap(),
            "--forbid",
            &sim.addr,
            "--forbid",
            "/console/",
        ],
    );
    assert_eq!(state(&sim, "srv-00001")["logins"], 2);
    crate::support::browser::assert_websockets_below(&report, &format!("ws://{}/ws/", serve.addr));
    let seen: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    let fetched = consoles(&sim);
    assert_eq!(
        fetched.len(),
        before + 1,
        "the broker asked for one console"
    );
    let secrets = fetched.last().unwrap();
    let mut checked = 0;
    for entry in &seen {
        let text = entry["text"].as_str().unwrap();
        for field in ["wss_url", "token", "password"] {
            let secret = secrets[field].as_str().unwrap();
            assert!(
                !text.contains(secret),
                "the console's {field} is in {}",
                entry["what"]
            );
        }
        checked += 1;
    }
    // The network log holds both pages as served, and the websocket.
    assert!(checked >= 4, "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| e["what"] == "the page as served (POST)"),
        "{seen:?}"
    );
    let mode: String =
        env.value("SELECT mode FROM console_sessions WHERE connected_at IS NOT NULL");
    assert_eq!(mode, "broker");
    assert!(!serve.log().contains(&password), "{}", serve.log());
    assert!(
        !serve.log().contains(secrets["password"].as_str().unwrap()),
        "{}",
        serve.log()
    );
}

/// The console tickets the simulator handed out, oldest first.
fn consoles(sim: &Sim) -> Vec<Value> {
    sim.control("GET", "/_sim/consoles", None).json()["consoles"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Older clients: 3.3 gets the security type picked for it, 3.7 a
/// failure without a reason; a client that asks for the console alone
/// ends the other viewers.
#[test]
fn older_clients_and_an_exclusive_viewer() {
    let sim = Sim::start(&["--servers", "1"]);
    let (url, password) = request_console(&sim, first_server(&sim));

    let mut ws = WsClient::connect(&url).unwrap();
    assert_eq!(ws.read(12).unwrap(), b"RFB 003.008\n");
    ws.write(b"RFB 003.003\n").unwrap();
    assert_eq!(
        ws.read(4).unwrap(),
        [0, 0, 0, 2],
        "3.3: VNC authentication, picked"
    );
    let mut challenge = [0u8; 16];
    challenge.copy_from_slice(&ws.read(16).unwrap());
    ws.write(&hcc::vnc_auth::response(&password, &challenge))
        .unwrap();
    assert_eq!(ws.read(4).unwrap(), [0, 0, 0, 0]);
    ws.write(&[1]).unwrap();
    assert_eq!(ws.read(4).unwrap(), [2, 0x80, 1, 0x90], "640x400");

    let mut old = WsClient::connect(&url).unwrap();
    old.read(12).unwrap();
    old.write(b"RFB 003.007\n").unwrap();
    assert_eq!(old.read(2).unwrap(), [1, 2]);
    old.write(&[2]).unwrap();
    old.read(16).unwrap();
    old.write(&[0u8; 16]).unwrap();
    assert_eq!(old.read(4).unwrap(), [0, 0, 0, 1], "3.7: failed, no reason");
    assert!(old.read(1).is_err());

    // A viewer that does not share: the 3.3 one above is let go.
    let (mut alone, challenge) = to_challenge(&url);
    alone
        .write(&hcc::vnc_auth::response(&password, &challenge))
        .unwrap();
    assert_eq!(alone.read(4).unwrap(), [0, 0, 0, 0]);
    alone.write(&[0]).unwrap();
    alone.read(24).unwrap();
    while ws.read(1).is_ok() {}
    let s = state(&sim, "srv-00001");
    assert_eq!(s["clients"], 1, "{s}");
    assert_eq!(s["last_end"], "another client took the console alone");
}

/// A person types into the sim console in Chromium: the keys reach the
/// simulator (its state shows them) and the canvas changes.
#[test]
fn keys_typed_in_the_browser_reach_the_sim_console() {
    if !crate::support::browser::browser_ready() {
        return;
    }
    let (sim, env, keys, serve) = crate::support::serve::serving(&["--servers", "1"]);
    let (url, password) = request_console(&sim, first_server(&sim));
    let shot = crate::support::browser::shots().join("sim-typed.png");
    let report = crate::support::browser::node(
        "type.mjs",
        &[
            "--url",
            &format!("http://{}/l.html?{url}#{password}", serve.addr),
            "--text",
            "root\\nuptime",
            "--screenshot",
            shot.to_str().unwrap(),
        ],
        || format!("typing into the sim console (serve log: {})", serve.log()),
    );
    wait_for_state(&sim, Duration::from_secs(5), &report.to_string(), |s| {
        s["typed"] == "root\nuptime"
    });
    let s = state(&sim, "srv-00001");
    assert_eq!(s["screen"][4], "srv-00001 login: root");
    assert_eq!(s["screen"][5], "uptime");

    // Through a one-time link, brokered: hcc relays the keys.
    let link = crate::support::serve::link(&serve, &keys.console, "srv-00001");
    let report = crate::support::browser::node(
        "type.mjs",
        &[
            "--url",
            &format!("http://{}{link}", serve.addr),
            "--text",
            "\\nwho",
        ],
        || format!("typing through a link (serve log: {})", serve.log()),
    );
    wait_for_state(&sim, Duration::from_secs(5), &report.to_string(), |s| {
        s["typed"] == "root\nuptime\nwho"
    });
    let (mode, from): (String, i64) = env.pair(
        "SELECT mode, bytes_from_client FROM console_sessions WHERE connected_at IS NOT NULL",
    );
    assert_eq!(mode, "broker");
    assert!(from > 0, "{from}");
}

/// Reads until the server ends the connection; the error it ended with
/// (a read timeout, after 10 s, means it never did).
fn until_hung_up(ws: &mut WsClient) -> std::io::Error {
    loop {
        if let Err(e) = ws.read(1) {
            return e;
        }
    }
}

/// A reset disconnects the server's viewers (the console is the test
/// double of one whose machine restarts), and while it runs
/// (`--action-ms`) the console URL is refused with 409; once it is done
/// the same URL lets a viewer in again. A viewer of another server stays.
/// A power off disconnects too, and the URL stays refused.
#[test]
fn a_reset_or_power_off_disconnects_the_viewers_until_the_server_runs() {
    let sim = Sim::start(&["--servers", "2", "--action-ms", "3000"]);
    let ids: Vec<u64> = sim.get("/servers?sort=name").json()["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    let (id, other) = (ids[0], ids[1]);
    let (url, password) = request_console(&sim, id);
    let mut fb = vec![0u8; WIDTH * HEIGHT * 4];
    let (mut viewer, _) = login(&url, &password);
    update_request(&mut viewer, false);
    read_update(&mut viewer, &mut fb, 4);
    let (other_url, other_password) = request_console(&sim, other);
    let (mut bystander, _) = login(&other_url, &other_password);

    let reset = sim.api("POST", &format!("/servers/{id}/actions/reset"), None);
    assert_eq!(reset.status, 201, "{}", reset.body);
    let ended = until_hung_up(&mut viewer);
    assert_eq!(ended.kind(), std::io::ErrorKind::UnexpectedEof, "{ended}");
    wait_for_state(&sim, Duration::from_secs(5), "", |s| s["clients"] == 0);
    let s = state(&sim, "srv-00001");
    assert_eq!(s["last_end"], "the server stopped or restarted", "{s}");
    assert_eq!(s["stops"], 1, "{s}");
    // While the reset runs: refused, with the reason.
    let path = url.trim_start_matches(&format!("ws://{}", sim.addr));
    let answer = raw_upgrade(&sim.addr, path);
    assert!(answer.starts_with("HTTP/1.1 409 "), "{answer}");
    assert!(answer.contains("the server is restarting"), "{answer}");
    // The other server's viewer was not touched.
    update_request(&mut bystander, false);
    read_update(&mut bystander, &mut fb, 4);
    assert_eq!(state(&sim, "srv-00002")["clients"], 1);

    // The reset done, the same URL connects again, to the same screen.
    let mut back = None;
    assert!(
        eventually(Duration::from_secs(10), || {
            back = WsClient::connect(&url).ok();
            back.is_some()
        }),
        "no console after the reset"
    );
    drop(back);
    let (mut viewer, name) = login(&url, &password);
    assert!(name.contains("srv-00001"), "{name}");
    update_request(&mut viewer, false);
    read_update(&mut viewer, &mut fb, 4);

    // A power off: hung up on, and refused while stopping and off.
    let off = sim.api("POST", &format!("/servers/{id}/actions/poweroff"), None);
    assert_eq!(off.status, 201, "{}", off.body);
    let ended = until_hung_up(&mut viewer);
    assert_eq!(ended.kind(), std::io::ErrorKind::UnexpectedEof, "{ended}");
    let answer = raw_upgrade(&sim.addr, path);
    assert!(answer.starts_with("HTTP/1.1 409 "), "{answer}");
    assert!(answer.contains("the server is stopping"), "{answer}");
    assert!(eventually(Duration::from_secs(10), || {
        raw_upgrade(&sim.addr, path).contains("the server is off")
    }));
    assert_eq!(state(&sim, "srv-00001")["stops"], 2);
    assert_eq!(state(&sim, "srv-00002")["stops"], 0);
}
