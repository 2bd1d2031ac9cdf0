//! `bench HCC broker`: the console broker against a local Xvnc (VNC
//! password) behind websockify, handed out by `hcc sim
//! --console-upstream`. The same RFB client reads framebuffer updates
//! through `hcc serve`'s `/ws/TICKET` (broker) and straight from
//! websockify (direct), in one run: throughput of full raw frames, the
//! round trip of a small update, and the memory and threads of 50 live
//! brokered sessions.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::{Serve, Sim, hcc_cmd, home, http, ms, proc_kb, row};

const PASSWORD: &str = "bench-pw";
const WIDTH: u16 = 1024;
const HEIGHT: u16 = 768;

/// Xvnc and websockify, killed when dropped.
struct Vnc {
    children: Vec<Child>,
    _dir: tempfile::TempDir,
    ws_url: String,
}

impl Drop for Vnc {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_vnc() -> Option<Vnc> {
    if !["Xvnc", "vncpasswd", "websockify"].iter().all(|p| have(p)) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let passwd = dir.path().join("passwd");
    let out = Command::new("vncpasswd")
        .arg("-f")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(PASSWORD.as_bytes())?;
            c.wait_with_output()
        })
        .expect("vncpasswd");
    std::fs::write(&passwd, out.stdout).expect("write the password file");
    let (rfb, ws) = (free_port(), free_port());
    let display = 60 + (std::process::id() % 200);
    let xvnc = Command::new("Xvnc")
        .arg(format!(":{display}"))
        .args([
            "-rfbport",
            &rfb.to_string(),
            "-localhost",
            "-nolisten",
            "tcp",
        ])
        .args([
            "-SecurityTypes",
            "VncAuth",
            "-UseBlacklist=0",
            "-AlwaysShared",
        ])
        .arg("-PasswordFile")
        .arg(&passwd)
        .args(["-geometry", &format!("{WIDTH}x{HEIGHT}"), "-depth", "24"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvnc");
    let mut vnc = Vnc {
        children: vec![xvnc],
        _dir: dir,
        ws_url: format!("ws://127.0.0.1:{ws}"),
    };
    wait_port(rfb);
    let _ = Command::new("xsetroot")
        .args(["-solid", "#2e6f9e"])
        .env("DISPLAY", format!(":{display}"))
        .status();
    let websockify = Command::new("websockify")
        .arg(format!("127.0.0.1:{ws}"))
        .arg(format!("127.0.0.1:{rfb}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start websockify");
    vnc.children.push(websockify);
    wait_port(ws);
    Some(vnc)
}

/// An RFB client over a websocket.
struct Rfb {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    buf: Vec<u8>,
    at: usize,
}

impl Rfb {
    fn connect(url: &str) -> Rfb {
        let mut request = url.into_client_request().expect("a websocket URL");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "binary".parse().expect("header"));
        let (ws, _) = tungstenite::connect(request).expect("websocket");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            let _ = s.set_nodelay(true);
        }
        Rfb {
            ws,
            buf: Vec::new(),
            at: 0,
        }
    }

    fn read(&mut self, n: usize) -> &[u8] {
        while self.buf.len() - self.at < n {
            if self.at > 0 {
                self.buf.drain(..self.at);
                self.at = 0;
            }
            match self.ws.read().expect("read") {
                Message::Binary(b) => self.buf.extend_from_slice(&b),
                Message::Close(f) => panic!("closed: {f:?}"),
                _ => {}
            }
        }
        self.at += n;
        &self.buf[self.at - n..self.at]
    }

    fn skip(&mut self, mut n: usize) {
        while n > 0 {
            let step = n.min(64 * 1024);
            self.read(step);
            n -= step;
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.ws.send(Message::binary(bytes.to_vec())).expect("send");
    }

    /// Up to ServerInit; VNC authentication when offered (direct), None
    /// otherwise (the broker).
    fn handshake(url: &str) -> Rfb {
        let mut rfb = Rfb::connect(url);
        rfb.read(12);
        rfb.send(b"RFB 003.008\n");
        let n = rfb.read(1)[0] as usize;
        let types = rfb.read(n).to_vec();
        if types.contains(&2) {
            rfb.send(&[2]);
            let challenge: [u8; 16] = rfb.read(16).try_into().expect("16 bytes");
            rfb.send(&hcc::vnc_auth::response(PASSWORD, &challenge));
        } else {
            rfb.send(&[1]);
        }
        assert_eq!(rfb.read(4), [0, 0, 0, 0], "SecurityResult");
        rfb.send(&[1]);
        let init = rfb.read(24).to_vec();
        let name = u32::from_be_bytes(init[20..24].try_into().expect("4 bytes"));
        rfb.skip(name as usize);
        // Raw only, so that a frame is the same bytes on both paths.
        rfb.send(&[2, 0, 0, 1, 0, 0, 0, 0]);
        rfb
    }

    /// A non-incremental update of `w` x `h` at the corner; its bytes.
    fn update(&mut self, w: u16, h: u16) -> usize {
        let mut req = vec![3, 0, 0, 0, 0, 0];
        req.extend_from_slice(&w.to_be_bytes());
        req.extend_from_slice(&h.to_be_bytes());
        self.send(&req);
        let head = self.read(4).to_vec();
        assert_eq!(head[0], 0, "FramebufferUpdate");
        let rects = u16::from_be_bytes([head[2], head[3]]);
        let mut bytes = 4;
        for _ in 0..rects {
            let r = self.read(12).to_vec();
            let (rw, rh) = (
                u16::from_be_bytes([r[4], r[5]]) as usize,
                u16::from_be_bytes([r[6], r[7]]) as usize,
            );
            let encoding = i32::from_be_bytes(r[8..12].try_into().expect("4 bytes"));
            assert_eq!(encoding, 0, "raw");
            self.skip(rw * rh * 4);
            bytes += 12 + rw * rh * 4;
        }
        bytes
    }
}

/// CPU time (user + system) of a process and of its children, live and
/// reaped, in ms: websockify serves each connection in a child of its own.
fn cpu_ms(pid: u32) -> f64 {
    let fields = |pid: &str| -> Vec<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The fields after the command name, which may hold spaces: state
        // is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return Vec::new();
        };
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect()
    };
    // Field n is at n - 3 after the name (the state is not a number: 0).
    let at = |f: &[u64], n: usize| f.get(n - 3).copied().unwrap_or(0);
    let own = fields(&pid.to_string());
    let mut ticks = at(&own, 14) + at(&own, 15) + at(&own, 16) + at(&own, 17);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(child) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let f = fields(child);
        if at(&f, 4) == u64::from(pid) {
            ticks += at(&f, 14) + at(&f, 15);
        }
    }
    let hz: u64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
        .max(1);
    ticks as f64 * 1000.0 / hz as f64
}

/// A fresh `/ws/TICKET` URL: a link made and opened.
fn ticket(serve: &Serve, auth: &str) -> String {
    let page = super::funnel::open(serve, auth, "srv-00001");
    format!("ws://{}{}", serve.addr, page.ws)
}

fn threads(pid: u32) -> u64 {
    proc_kb(pid, "Threads")
}

pub fn run(hcc: &str) {
    println!(
        "| console broker (local Xvnc, raw encoding) | broker | direct (websockify) | broker / direct |"
    );
    println!("|---|---|---|---|");
    let Some(vnc) = start_vnc() else {
        println!("| Xvnc, vncpasswd or websockify not installed | | | |");
        return;
    };
    let sim = Sim::start(
        hcc,
        &[
            "--servers",
            "1",
            "--console-upstream",
            &vnc.ws_url,
            "--console-password",
            PASSWORD,
        ],
    );
    let home = home();
    super::measured(hcc_cmd(hcc, home.path(), &["sync"]).envs(sim.env()));
    // Some sixty connects to one server within a minute, fifty of them
    // open at once: more than a server's console limits allow by default.
    super::measured(&mut hcc_cmd(
        hcc,
        home.path(),
        &["config", "set", "console_requests_per_server", "3600"],
    ));
    // And 50 live sessions on it.
    super::measured(&mut hcc_cmd(
        hcc,
        home.path(),
        &["config", "set", "max_console_sessions_per_server", "100"],
    ));
    let key = hcc_cmd(
        hcc,
        home.path(),
        &["apikey", "add", "b", "--scope", "console"],
    )
    .output()
    .expect("hcc apikey add");
    let auth = format!("Bearer {}", String::from_utf8_lossy(&key.stdout).trim());
    let serve = Serve::start(hcc, home.path(), &sim);

    // Throughput: full frames, 3 MiB each; broker and direct take turns,
    // five rounds each, the median round counts (the machine is shared).
    const FRAMES: usize = 40;
    const TURNS: usize = 5;
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..TURNS {
        for (i, broker) in [true, false].into_iter().enumerate() {
            let url = if broker {
                ticket(&serve, &auth)
            } else {
                vnc.ws_url.clone()
            };
            let mut rfb = Rfb::handshake(&url);
            rfb.update(WIDTH, HEIGHT);
            let start = Instant::now();
            let bytes: usize = (0..FRAMES).map(|_| rfb.update(WIDTH, HEIGHT)).sum();
            rates[i].push(bytes as f64 / start.elapsed().as_secs_f64() / (1 << 20) as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (broker_rate, direct_rate) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "| throughput, {FRAMES} full {WIDTH}x{HEIGHT} frames (3 MiB each), median of {TURNS} | {broker_rate:.0} MiB/s | {direct_rate:.0} MiB/s | {:.2} of direct (goal >= 0.9) |",
        broker_rate / direct_rate
    );

    // Latency: a 16x16 update, request to last byte.
    const ROUNDS: usize = 300;
    let mut medians = Vec::new();
    let mut all = Vec::new();
    for broker in [true, false] {
        let url = if broker {
            ticket(&serve, &auth)
        } else {
            vnc.ws_url.clone()
        };
        let mut rfb = Rfb::handshake(&url);
        let samples: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                rfb.update(16, 16);
                start.elapsed()
            })
            .collect();
        medians.push(super::at(&samples, 0.5));
        all.push(samples);
    }
    println!(
        "| round trip of a 16x16 update, median | {} | {} | {:+.3} ms (goal <= +0.03 ms) |",
        ms(medians[0]),
        ms(medians[1]),
        (medians[0].as_secs_f64() - medians[1].as_secs_f64()) * 1000.0
    );

    // CPU per relayed GiB in one chain (client -> hcc serve -> websockify
    // -> Xvnc): both relay the same bytes, read before and after.
    const CPU_FRAMES: usize = 720;
    let websockify = vnc.children[1].id();
    let mut rfb = Rfb::handshake(&ticket(&serve, &auth));
    rfb.update(WIDTH, HEIGHT);
    let (hcc0, ws0) = (cpu_ms(serve.pid()), cpu_ms(websockify));
    let bytes: usize = (0..CPU_FRAMES).map(|_| rfb.update(WIDTH, HEIGHT)).sum();
    let (hcc1, ws1) = (cpu_ms(serve.pid()), cpu_ms(websockify));
    drop(rfb);
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let (hcc_cpu, ws_cpu) = ((hcc1 - hcc0) / gib, (ws1 - ws0) / gib);
    println!(
        "| CPU per relayed GiB, one chain ({gib:.2} GiB of full frames): hcc serve, websockify | {hcc_cpu:.0} ms | {ws_cpu:.0} ms | {:.2}x (goal <= 0.25x) |",
        hcc_cpu / ws_cpu.max(f64::MIN_POSITIVE)
    );

    // 50 live brokered sessions: memory and threads of `hcc serve`.
    std::thread::sleep(Duration::from_millis(500));
    let pid = serve.pid();
    let (rss0, threads0) = (proc_kb(pid, "VmRSS"), threads(pid));
    let live: Vec<Rfb> = (0..50)
        .map(|_| {
            let mut rfb = Rfb::handshake(&ticket(&serve, &auth));
            rfb.update(64, 64);
            rfb
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, threads1) = (proc_kb(pid, "VmRSS"), threads(pid));
    let per_kb = rss1.saturating_sub(rss0) as f64 / 50.0;
    println!(
        "| `hcc serve` VmRSS: idle, with 50 live sessions | {:.1} MB, {:.1} MB | | |",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0
    );
    println!(
        "| memory per live session | {per_kb:.0} KB | | goal < 1024 KB: {} |",
        if per_kb < 1024.0 { "met" } else { "**missed**" }
    );
    println!(
        "| threads per live session | {:.2} | | |",
        threads1.saturating_sub(threads0) as f64 / 50.0
    );
    drop(live);
    println!();
    println!("| 16x16 update round trip | n | median | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let mut all = all.into_iter();
    row("through the broker", all.next().unwrap_or_default());
    row("straight to websockify", all.next().unwrap_or_default());
    drop(serve);
    browser(hcc, &sim);
}

/// Link open -> first frame drawn in headless Chromium
/// (tests/browser/console.mjs), broker and direct.
fn browser(hcc: &str, sim: &Sim) {
    println!();
    println!("| link open -> first frame drawn in Chromium | n | median | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let driver = std::path::Path::new("tests/browser/node_modules/playwright-core");
    if !have("node") || !std::path::Path::new("/usr/bin/chromium").exists() || !driver.exists() {
        println!(
            "| node, chromium or playwright-core (npm ci --prefix tests/browser) missing | | | | | |"
        );
        return;
    }
    for mode in ["broker", "direct"] {
        let home = home();
        super::measured(hcc_cmd(hcc, home.path(), &["sync"]).envs(sim.env()));
        super::measured(&mut hcc_cmd(
            hcc,
            home.path(),
            &["config", "set", "console_mode", mode],
        ));
        let key = hcc_cmd(
            hcc,
            home.path(),
            &["apikey", "add", "b", "--scope", "console"],
        )
        .output()
        .expect("hcc apikey add");
        let auth = format!("Bearer {}", String::from_utf8_lossy(&key.stdout).trim());
        let serve = Serve::start(hcc, home.path(), sim);
        let mut samples = Vec::new();
        for _ in 0..5 {
            let (status, body) = http(
                &serve.addr,
                "POST",
                "/api/v1/servers/srv-00001/console-link",
                Some("{}"),
                Some(&auth),
            );
            assert_eq!(status, 201, "console-link: {body}");
            let link: serde_json::Value = serde_json::from_str(&body).expect("link JSON");
            let url = link["url"].as_str().expect("url");
            let out = Command::new("timeout")
                .args(["60", "node", "tests/browser/console.mjs", "--url", url])
                .args(["--expect-colour", "#2e6f9e"])
                .output()
                .expect("run node");
            let text = String::from_utf8_lossy(&out.stdout);
            let report: serde_json::Value = text
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str(l).ok())
                .unwrap_or_default();
            let t = &report["timings"];
            match (t["launched"].as_u64(), t["drawn"].as_u64()) {
                (Some(a), Some(b)) if report["ok"] == true => {
                    samples.push(Duration::from_millis(b - a));
                }
                _ => {
                    println!(
                        "| {mode}: the browser check failed: {} | | | | | |",
                        report["error"]
                    );
                    break;
                }
            }
        }
        if !samples.is_empty() {
            row(mode, samples);
        }
    }
}
