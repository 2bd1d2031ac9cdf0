//! nginx in front of an upstream, as `scripts/nginx/hcc.conf` sets it up
//! for production: the example itself, with its listen addresses,
//! certificate, upstream and log paths replaced by test values (loopback,
//! free ports, a fresh self-signed certificate for 127.0.0.1, a temporary
//! directory). Stopped when dropped.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::daemon::{Daemon, free_port, wait_listening};
use crate::test::{Http, Sim, eventually, have, require, require_program};
use crate::vnc::{VncServer, WsClient, assert_rfb_greeting_on};

/// The production example, as shipped.
pub const EXAMPLE: &str = include_str!("../scripts/nginx/hcc.conf");

/// A running nginx; stopped when dropped.
pub struct Nginx {
    daemon: Daemon,
    dir: TempDir,
    https_port: u16,
    http_port: u16,
}

impl Nginx {
    /// nginx with the example config proxying to 127.0.0.1:`upstream_port`.
    /// When nginx or openssl is missing: a failure under CI, else None
    /// after a loud `SKIP:` line ([`require`]).
    pub fn start(upstream_port: u16) -> Option<Nginx> {
        let nginx = nginx_program();
        let nginx_missing = "`nginx` is not installed (scripts/test installs it)";
        if !require(nginx.is_some(), nginx_missing) || !require_program("openssl") {
            return None;
        }
        let nginx = nginx?;
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let root = dir.path();
        self_signed_certificate(root);
        for sub in ["tmp", "acme"] {
            std::fs::create_dir(root.join(sub)).expect("create a directory for nginx");
        }

        // Free ports can be taken before nginx binds them: try again.
        for attempt in 1..=3 {
            let https_port = free_port();
            let http_port = free_port();
            let site = render(EXAMPLE, root, https_port, http_port, upstream_port);
            std::fs::write(root.join("hcc.conf"), site).expect("write hcc.conf");
            std::fs::write(root.join("nginx.conf"), main_conf(root)).expect("write nginx.conf");
            let mut cmd = Command::new(&nginx);
            cmd.arg("-p")
                .arg(root)
                .arg("-c")
                .arg(root.join("nginx.conf"));
            let mut daemon = Daemon::spawn("nginx", &cmd, &root.join("nginx.out"));
            let deadline = Instant::now() + Duration::from_secs(10);
            let up = loop {
                if daemon.exited() {
                    break false;
                }
                if wait_listening(https_port, Duration::ZERO)
                    && wait_listening(http_port, Duration::ZERO)
                {
                    break true;
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if up {
                return Some(Nginx {
                    daemon,
                    dir,
                    https_port,
                    http_port,
                });
            }
            let log = format!(
                "{}\n{}",
                daemon.log(),
                std::fs::read_to_string(root.join("error.log")).unwrap_or_default()
            );
            daemon.stop();
            assert!(attempt < 3, "nginx did not start:\n{log}");
            eprintln!("nginx did not start, trying again:\n{log}");
        }
        unreachable!("the loop returns or panics")
    }

    /// `https://127.0.0.1:PORT` (self-signed: clients skip verification).
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.https_port)
    }

    /// `http://127.0.0.1:PORT`, the server that redirects to HTTPS.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// The access log so far (the example's `hcc_private` format).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// nginx's error log and output so far, for assertion messages.
    pub fn error_log(&self) -> String {
        format!(
            "{}\n{}",
            self.daemon.log(),
            std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
        )
    }

    /// The rendered site config, as nginx runs it.
    pub fn site_conf(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hcc.conf")).unwrap_or_default()
    }

    pub fn pgid(&self) -> u32 {
        self.daemon.pgid()
    }
}

/// nginx on PATH, or in /usr/sbin (not on a normal user's PATH).
fn nginx_program() -> Option<PathBuf> {
    if have("nginx") {
        return Some(PathBuf::from("nginx"));
    }
    let sbin = PathBuf::from("/usr/sbin/nginx");
    sbin.exists().then_some(sbin)
}

/// `cert.pem` and `key.pem` in `dir`: P-256, for IP 127.0.0.1, two days.
fn self_signed_certificate(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl req: {out:?}");
}

/// The example with its production values replaced; panics when one is
/// no longer there, so that a changed example cannot go untested.
pub fn render(example: &str, dir: &Path, https: u16, http: u16, upstream: u16) -> String {
    let d = dir.display();
    let replacements = [
        ("    listen [::]:443 ssl;\n", String::new()),
        ("    listen [::]:80;\n", String::new()),
        ("listen 443 ssl;", format!("listen 127.0.0.1:{https} ssl;")),
        ("listen 80;", format!("listen 127.0.0.1:{http};")),
        (
            "/etc/letsencrypt/live/console.example.com/fullchain.pem",
            format!("{d}/cert.pem"),
        ),
        (
            "/etc/letsencrypt/live/console.example.com/privkey.pem",
            format!("{d}/key.pem"),
        ),
        (
            "http://127.0.0.1:8479",
            format!("http://127.0.0.1:{upstream}"),
        ),
        ("/var/log/nginx/hcc.access.log", format!("{d}/access.log")),
        ("/var/www/letsencrypt", format!("{d}/acme")),
    ];
    let mut conf = example.to_string();
    for (from, to) in replacements {
        assert!(conf.contains(from), "scripts/nginx/hcc.conf lost {from:?}");
        conf = conf.replace(from, &to);
    }
    conf
}

/// The main config around the example: in the foreground, everything
/// under `dir`, root's workers when run as root (the temporary directory
/// is root's alone).
fn main_conf(dir: &Path) -> String {
    let d = dir.display();
    let user = if rustix::process::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    format!(
        "{user}daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/default-access.log;
    client_body_temp_path {d}/tmp/client;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/hcc.conf;
}}
"
    )
}

/// `curl -k` (the certificate is self-signed): the answer, not followed.
pub fn curl(url: &str, headers: &[&str]) -> Http {
    curl_method("GET", url, headers)
}

/// `curl` with another method (`POST` sends an empty body).
pub fn curl_method(method: &str, url: &str, headers: &[&str]) -> Http {
    let mut cmd = Command::new("curl");
    cmd.args(["-k", "-sS", "-i", "--max-time", "10", "--noproxy", "*"]);
    match method {
        "GET" => {}
        "POST" => {
            cmd.args(["-X", "POST", "--data", ""]);
        }
        other => {
            cmd.args(["-X", other]);
        }
    }
    for header in headers {
        cmd.args(["-H", header]);
    }
    let out = cmd.arg(url).output().expect("run curl");
    // After a 101 curl has nothing to read and fails; the head is there.
    assert!(!out.stdout.is_empty(), "curl {url}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("curl {url}: no head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("curl {url}: bad status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Http {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A TLS connection as a byte stream: `openssl s_client` with its stdin
/// and stdout (no certificate check). Killed and reaped when dropped, and
/// killed after 30 s in any case, so a read cannot hang a test.
pub struct TlsPipe {
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl TlsPipe {
    pub fn connect(port: u16) -> TlsPipe {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run openssl s_client");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let child = Arc::new(Mutex::new(child));
        let watched = Arc::downgrade(&child);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(30));
            if let Some(child) = watched.upgrade() {
                let _ = child.lock().map(|mut c| c.kill());
            }
        });
        TlsPipe {
            child,
            stdin,
            stdout,
        }
    }
}

impl Read for TlsPipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stdout.read(buf)
    }
}

impl Write for TlsPipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stdin.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.stdin.flush()
    }
}

impl Drop for TlsPipe {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Over TLS to the sim: the query string reaches it, the access log keeps
/// no query string, no link token and no API token; port 80 redirects.
#[test]
fn nginx_proxies_to_the_sim_over_tls_and_logs_no_secret() {
    let sim = Sim::start(&["--servers", "3"]);
    let port: u16 = sim
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("sim port");
    let Some(nginx) = Nginx::start(port) else {
        return;
    };
    let auth = format!("Authorization: Bearer {}", sim.token);

    let url = format!(
        "{}/v1/servers?name=srv-00002&token=SECRET-QUERY",
        nginx.https_url()
    );
    let answer = curl(&url, &[&auth]);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", nginx.error_log());
    let servers = answer.json()["servers"].clone();
    assert_eq!(servers.as_array().map(Vec::len), Some(1), "{servers}");
    assert_eq!(servers[0]["name"], "srv-00002", "the query string got lost");
    assert_eq!(answer.header("Server"), Some("nginx"), "server_tokens");
    assert!(
        answer
            .header("Strict-Transport-Security")
            .is_some_and(|v| v.starts_with("max-age=")),
        "{answer:?}"
    );

    // A console link and a broker session: their tokens stay out of the log.
    let link = curl(
        &format!("{}/c/SECRET-LINK?pw=SECRET-PW", nginx.https_url()),
        &[],
    );
    assert_eq!(link.status, 404, "the sim has no /c/: {link:?}");
    let ws = curl(&format!("{}/ws/SECRET-SESSION", nginx.https_url()), &[]);
    assert_eq!(ws.status, 404, "{ws:?}");
    curl(&format!("{}/c/refresh", nginx.https_url()), &[]);

    // Port 80: to HTTPS, same path and query, with nothing served.
    let plain = curl(&format!("{}/c/SECRET-PLAIN?x=1", nginx.http_url()), &[]);
    assert_eq!(plain.status, 301, "{plain:?}");
    assert_eq!(
        plain.header("Location"),
        Some("https://127.0.0.1/c/SECRET-PLAIN?x=1")
    );

    let log = nginx.access_log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5, "one line per request:\n{log}");
    assert!(
        lines[0].contains("\"GET /v1/servers HTTP/1.1\" 200 "),
        "{log}"
    );
    assert!(lines[1].contains("\"GET /c/- HTTP/1.1\" 404 "), "{log}");
    assert!(lines[2].contains("\"GET /ws/- HTTP/1.1\" 404 "), "{log}");
    assert!(
        lines[3].contains("\"GET /c/refresh HTTP/1.1\" 404 "),
        "{log}"
    );
    assert!(lines[4].contains("\"GET /c/- HTTP/1.1\" 301 "), "{log}");
    assert!(
        !log.contains("SECRET"),
        "a secret in the access log:\n{log}"
    );
    assert!(
        !log.contains(&sim.token),
        "the API token in the access log:\n{log}"
    );
    assert!(
        !log.contains('?'),
        "a query string in the access log:\n{log}"
    );

    assert!(
        !nginx.site_conf().contains("http://127.0.0.1:8479;"),
        "{}",
        nginx.site_conf()
    );
    let pgid = nginx.pgid();
    drop(nginx);
    assert!(!crate::daemon::group_alive(pgid), "nginx outlived the drop");
}

/// What hcc is told about the client: its address (not one it claims),
/// https, the host; and a websocket upgrade passes through.
#[test]
fn nginx_forwards_the_client_and_upgrades() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an upstream");
    let port = listener.local_addr().expect("upstream address").port();
    // The upstream answers every request with the request head it got.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let answer = if text.to_ascii_lowercase().contains("\r\nupgrade: websocket") {
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     X-Seen: {}\r\n\r\n",
                    text.replace("\r\n", " | ")
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                )
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let Some(nginx) = Nginx::start(port) else {
        return;
    };

    let echo = curl(
        &format!("{}/api/v1/status?k=v", nginx.https_url()),
        &["X-Forwarded-For: 203.0.113.9", "X-Real-IP: 203.0.113.9"],
    );
    assert_eq!(echo.status, 200, "{echo:?}\n{}", nginx.error_log());
    let seen = echo.body.to_ascii_lowercase();
    assert!(
        seen.starts_with("get /api/v1/status?k=v http/1.1\r\n"),
        "{seen}"
    );
    for header in [
        "host: 127.0.0.1".to_string(),
        "x-real-ip: 127.0.0.1".to_string(),
        "x-forwarded-for: 127.0.0.1\r\n".to_string(),
        "x-forwarded-proto: https".to_string(),
        "connection: close".to_string(),
    ] {
        assert!(seen.contains(&header), "want {header:?} upstream:\n{seen}");
    }
    assert!(
        !seen.contains("203.0.113.9"),
        "a forged address went through:\n{seen}"
    );

    let upgrade = curl(
        &format!("{}/ws/abc", nginx.https_url()),
        &["Connection: Upgrade", "Upgrade: websocket"],
    );
    assert_eq!(upgrade.status, 101, "{upgrade:?}\n{}", nginx.error_log());
    let seen = upgrade
        .header("X-Seen")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(seen.contains("upgrade: websocket"), "{seen}");
    assert!(seen.contains("connection: upgrade"), "{seen}");
}

/// wss:// through nginx to websockify and a real Xvnc: the RFB greeting.
#[test]
fn nginx_carries_a_vnc_websocket_over_tls() {
    let Some(vnc) = VncServer::start("secret12") else {
        return;
    };
    let Some(nginx) = Nginx::start(vnc.ws_port()) else {
        return;
    };
    let host = format!("127.0.0.1:{}", nginx.https_port());
    let ws = WsClient::handshake(TlsPipe::connect(nginx.https_port()), &host, "/ws/session")
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", nginx.error_log(), vnc.logs()));
    assert_rfb_greeting_on(ws, &|| format!("{}\n{}", nginx.error_log(), vnc.logs()));
    // The line is written when the connection ends.
    assert!(
        eventually(Duration::from_secs(5), || nginx
            .access_log()
            .contains("\"GET /ws/- HTTP/1.1\" 101 ")),
        "{}",
        nginx.access_log()
    );
}
