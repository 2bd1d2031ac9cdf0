//! `bench HCC funnel`: hcc as the one funnel between customers' console
//! pages and one Hetzner project. What a page reconnecting every 3 s makes
//! hcc spend at Hetzner, and what pages hammering a nearly empty bucket
//! leave a queued command, rationed (the defaults) and unrationed (the
//! settings set so that nothing holds a page back, as before rationing),
//! in one run against the same simulator; and `hcc serve`'s descriptors,
//! threads and memory with 300 live brokered sessions and after they
//! close.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use super::{Serve, Sim, hcc_cmd, home, http, proc_kb, rss_kb};

/// Settings under which nothing rations a console page.
const UNRATIONED: &[(&str, &str)] = &[
    ("console_refresh_every", "1"),
    ("console_requests_per_server", "3600"),
    ("command_reserve", "0"),
];

/// A state directory synced from `sim`, with a console key; its `Bearer`
/// header.
fn prepared(hcc: &str, home: &std::path::Path, sim: &Sim, settings: &[(&str, &str)]) -> String {
    let synced = hcc_cmd(hcc, home, &["sync"])
        .envs(sim.env())
        .stdout(Stdio::null())
        .status()
        .expect("hcc sync");
    assert!(synced.success(), "hcc sync failed");
    for (key, value) in settings {
        let set = hcc_cmd(hcc, home, &["config", "set", key, value])
            .stderr(Stdio::null())
            .status()
            .expect("hcc config set");
        assert!(set.success(), "hcc config set {key} {value}");
    }
    let key = hcc_cmd(hcc, home, &["apikey", "add", "b", "--scope", "console"])
        .output()
        .expect("hcc apikey add");
    format!("Bearer {}", String::from_utf8_lossy(&key.stdout).trim())
}

/// A console page opened from a fresh link: its session and ticket path.
pub struct Page {
    session: String,
    pub ws: String,
}

/// Opens a fresh console link of `server` as the page does (a POST).
pub fn open(serve: &Serve, auth: &str, server: &str) -> Page {
    let (status, body) = http(
        &serve.addr,
        "POST",
        &format!("/api/v1/servers/{server}/console-link"),
        Some("{}"),
        Some(auth),
    );
    assert_eq!(status, 201, "console-link: {body}");
    let link: serde_json::Value = serde_json::from_str(&body).expect("link JSON");
    let url = link["url"].as_str().expect("url");
    let path = url
        .split_once("/c/")
        .map(|(_, t)| format!("/c/{t}"))
        .expect("a /c/ link");
    let (status, page) = http(&serve.addr, "POST", &path, None, None);
    assert_eq!(status, 200, "link open");
    let field = |name: &str| {
        page.split(&format!("\"{name}\":\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in the page"))
            .to_string()
    };
    Page {
        session: field("session"),
        ws: field("ws").trim_start_matches("..").to_string(),
    }
}

/// `POST /c/refresh`: a new ticket, or not (rationed, refused).
fn refresh(serve: &Serve, page: &mut Page) -> bool {
    let body = format!(r#"{{"session":"{}"}}"#, page.session);
    let (status, answer) = http(&serve.addr, "POST", "/c/refresh", Some(&body), None);
    if status != 200 {
        return false;
    }
    match answer
        .split("\"ws\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
    {
        Some(ws) => {
            page.ws = ws.trim_start_matches("..").to_string();
            true
        }
        None => false,
    }
}

type Ws = WebSocket<TcpStream>;

fn connect(serve: &Serve, path: &str) -> Option<Ws> {
    let mut request = format!("ws://{}{path}", serve.addr)
        .into_client_request()
        .ok()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().ok()?);
    let stream = TcpStream::connect(&serve.addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    tungstenite::client(request, stream).ok().map(|(ws, _)| ws)
}

/// The client's side of the handshake hcc offers (RFB 3.8, security
/// None) through ServerInit: the session relays from here on.
fn handshake(ws: &mut Ws) -> bool {
    let mut got = Vec::new();
    let mut read = |ws: &mut Ws, n: usize| -> Option<Vec<u8>> {
        while got.len() < n {
            match ws.read() {
                Ok(Message::Binary(b)) => got.extend_from_slice(&b),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        Some(got.drain(..n).collect())
    };
    let send = |ws: &mut Ws, bytes: &[u8]| ws.send(Message::binary(bytes.to_vec())).is_ok();
    if read(ws, 12).is_none() || !send(ws, b"RFB 003.008\n") || read(ws, 2).is_none() {
        return false;
    }
    if !send(ws, &[1]) || read(ws, 4).is_none() || !send(ws, &[1]) {
        return false;
    }
    let Some(init) = read(ws, 24) else {
        return false;
    };
    let name = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
    read(ws, name as usize).is_some()
}

/// Pages on `servers` reconnecting every 3 s for `span`: each connect
/// waits for the console's first bytes and hangs up; a refused refresh
/// is tried again 3 s later, as the page does at its fastest.
fn hammer(serve: &Serve, auth: &str, servers: &[String], span: Duration) {
    let pages: Vec<Page> = servers.iter().map(|s| open(serve, auth, s)).collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for mut page in pages {
            scope.spawn(move || {
                while started.elapsed() < span {
                    if let Some(mut ws) = connect(serve, &page.ws) {
                        let _ = ws.read();
                    }
                    std::thread::sleep(Duration::from_secs(3));
                    while !refresh(serve, &mut page) && started.elapsed() < span {
                        std::thread::sleep(Duration::from_secs(3));
                    }
                }
            });
        }
    });
}

/// Hetzner requests a console page costs a minute, reconnecting every
/// 3 s (two pages on two servers for a minute, a bucket that never runs
/// low; the first minute, so a page's first reconnects count too).
fn per_page_minute(hcc: &str, settings: &[(&str, &str)]) -> f64 {
    let sim = Sim::start(hcc, &["--servers", "2"]);
    let home = home();
    let auth = prepared(hcc, home.path(), &sim, settings);
    let serve = Serve::start(hcc, home.path(), &sim);
    let servers = ["srv-00001".to_string(), "srv-00002".to_string()];
    // Opening the pages is not reconnecting: counted from the first
    // connect on.
    let before = sim.requests();
    let span = Duration::from_secs(60);
    hammer(&serve, &auth, &servers, span);
    let spent = sim.requests() - before;
    spent as f64 / servers.len() as f64 * (60.0 / span.as_secs_f64())
}

/// A reboot queued 30 s into six pages reconnecting every 3 s on a
/// 60-an-hour bucket: how long from queued to done (at most 90 s).
fn reboot_while_hammered(hcc: &str, settings: &[(&str, &str)]) -> Option<Duration> {
    let sim = Sim::start(
        hcc,
        &[
            "--servers",
            "7",
            "--rate-limit",
            "60/h",
            "--action-ms",
            "200",
        ],
    );
    let home = home();
    let auth = prepared(hcc, home.path(), &sim, settings);
    let serve = Serve::start(hcc, home.path(), &sim);
    let mut worker = hcc_cmd(hcc, home.path(), &["worker", "--cycle", "600"])
        .envs(sim.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hcc worker");
    let servers: Vec<String> = (1..=6).map(|n| format!("srv-0000{n}")).collect();
    let db = rusqlite::Connection::open(home.path().join("hcc.db")).expect("open hcc.db");
    let waited = std::thread::scope(|scope| {
        scope.spawn(|| hammer(&serve, &auth, &servers, Duration::from_secs(40)));
        std::thread::sleep(Duration::from_secs(30));
        let pushed = Command::new(hcc)
            .args(["push", "reboot", "srv-00007"])
            .env("HCC_HOME", home.path())
            .stdout(Stdio::null())
            .status()
            .expect("hcc push");
        assert!(pushed.success());
        let queued = Instant::now();
        let id: i64 = db
            .query_row("SELECT max(id) FROM commands", [], |r| r.get(0))
            .expect("the pushed command");
        let done = super::wait_state(&db, id, "done", Duration::from_secs(90));
        (done < Duration::from_secs(90)).then(|| queued.elapsed())
    });
    let _ = worker.kill();
    let _ = worker.wait();
    waited
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `hcc serve`'s descriptors, threads and resident memory: at rest, with
/// 300 live brokered sessions (on the simulator's console), and 5 s after
/// they closed.
fn three_hundred(hcc: &str) -> [(usize, u64, u64); 3] {
    let sim = Sim::start(hcc, &["--servers", "1"]);
    let home = home();
    let auth = prepared(
        hcc,
        home.path(),
        &sim,
        &[
            ("max_console_sessions_per_server", "1000"),
            ("max_console_sessions_per_key", "1000"),
            ("console_requests_per_server", "3600"),
        ],
    );
    let serve = Serve::start(hcc, home.path(), &sim);
    let pid = serve.pid();
    let state = || (fds(pid), proc_kb(pid, "Threads"), rss_kb(pid));
    let rest = state();
    let mut live = Vec::new();
    // In batches: the simulator, like Hetzner, keeps only so many unused
    // console URLs.
    for _ in 0..15 {
        let pages: Vec<Page> = (0..20).map(|_| open(&serve, &auth, "srv-00001")).collect();
        let batch: Vec<Ws> = std::thread::scope(|scope| {
            let runs: Vec<_> = pages
                .iter()
                .map(|page| {
                    let serve = &serve;
                    scope.spawn(move || {
                        let mut ws = connect(serve, &page.ws)?;
                        handshake(&mut ws).then_some(ws)
                    })
                })
                .collect();
            runs.into_iter().filter_map(|h| h.join().ok()?).collect()
        });
        live.extend(batch);
    }
    assert!(live.len() >= 290, "only {} sessions relayed", live.len());
    let during = state();
    drop(live);
    std::thread::sleep(Duration::from_secs(5));
    [rest, during, state()]
}

pub fn run(hcc: &str) {
    println!("| console pages and the Hetzner budget | unrationed | rationed (defaults) |");
    println!("|---|---|---|");
    let per_page = [per_page_minute(hcc, UNRATIONED), per_page_minute(hcc, &[])];
    println!(
        "| Hetzner requests per console page per minute, reconnecting every 3 s | {:.1} | {:.1} |",
        per_page[0], per_page[1]
    );
    let shown = |d: Option<Duration>| match d {
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
        None => "over 90 s".into(),
    };
    let reboot = [
        reboot_while_hammered(hcc, UNRATIONED),
        reboot_while_hammered(hcc, &[]),
    ];
    println!(
        "| a reboot queued while 6 pages reconnect on a 60/h bucket: queued -> done | {} | {} |",
        shown(reboot[0]),
        shown(reboot[1])
    );
    println!();
    println!("| `hcc serve` | at rest | 300 live brokered sessions | 5 s after they closed |");
    println!("|---|---|---|---|");
    let [rest, during, after] = three_hundred(hcc);
    println!(
        "| open descriptors | {} | {} | {} |",
        rest.0, during.0, after.0
    );
    println!("| threads | {} | {} | {} |", rest.1, during.1, after.1);
    println!(
        "| resident memory | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
        rest.2 as f64 / 1024.0,
        during.2 as f64 / 1024.0,
        after.2 as f64 / 1024.0
    );
}
