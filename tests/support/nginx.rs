//! nginx in front of an upstream, as `scripts/nginx/hcc.conf` sets it up
//! for production: the example itself, with its listen addresses,
//! certificate, upstream and log paths replaced by test values (loopback,
//! free ports, a fresh self-signed certificate for 127.0.0.1, a temporary
//! directory). Stopped when dropped.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{Daemon, free_port, wait_listening};
use crate::test::{Http, eventually, have, require, require_program};

/// The production example, as shipped.
pub const EXAMPLE: &str = include_str!("../../scripts/nginx/hcc.conf");

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
            let listening = |port| wait_listening(port, Duration::ZERO);
            let up = eventually(Duration::from_secs(10), || {
                daemon.exited() || (listening(https_port) && listening(http_port))
            });
            if up && !daemon.exited() {
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
