//! A real VNC console for tests: TigerVNC's Xvnc with a VNC password,
//! painted so that a viewer sees more than black, `xev` recording the keys
//! that reach the X server, and websockify in front, so that a browser
//! (noVNC) or hcc's broker connects with `ws://127.0.0.1:PORT`. Everything
//! listens on loopback, on free ports, and stops when dropped.
//!
//! ```ignore
//! let Some(vnc) = VncServer::start("secret12") else { return }; // SKIP printed (fails under CI)
//! let sim = Sim::start(&["--servers", "1", "--console-upstream", vnc.ws_url(),
//!                        "--console-password", vnc.password()]);
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::channel;
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{Daemon, free_port, missing, wait_listening};
use crate::test::{Env, Sim, eventually, require, wait_asleep};

/// The colour of the root window: a viewer that shows it has the
/// framebuffer.
pub const ROOT_COLOUR: &str = "#2e6f9e";

const PROGRAMS: [&str; 5] = ["Xvnc", "vncpasswd", "websockify", "xsetroot", "xev"];

/// Xvnc + xev + websockify; all stopped when dropped.
pub struct VncServer {
    // Declared before `dir`, so they stop before it is removed.
    websockify: Daemon,
    xev: Daemon,
    xvnc: Daemon,
    dir: TempDir,
    display: u32,
    rfb_port: u16,
    ws_port: u16,
    ws_url: String,
    password: String,
}

impl VncServer {
    /// Starts the chain with VNC password `password` (VNC authentication
    /// uses only its first 8 characters). When a program is not installed:
    /// a failure under CI, else None after a loud `SKIP:` line on stderr
    /// ([`require`]); a panic with the logs when an installed one fails.
    pub fn start(password: &str) -> Option<VncServer> {
        let missing = missing(&PROGRAMS);
        let why = format!(
            "no real VNC server: {} not installed (scripts/test installs \
             tigervnc-standalone-server tigervnc-tools websockify x11-xserver-utils x11-utils)",
            missing.join(", ")
        );
        if !require(missing.is_empty(), &why) {
            return None;
        }
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let passwd = dir.path().join("passwd");
        write_password_file(&passwd, password);

        // A free RFB port may be taken before Xvnc binds it: try again
        // with another one.
        let mut tries = 0;
        let (xvnc, display, rfb_port) = loop {
            tries += 1;
            let rfb_port = free_port();
            match start_xvnc(dir.path(), &passwd, rfb_port) {
                Ok((xvnc, display)) => break (xvnc, display, rfb_port),
                Err(log) if tries < 3 => eprintln!("Xvnc did not start, trying again:\n{log}"),
                Err(log) => panic!("Xvnc did not start:\n{log}"),
            }
        };

        let x = |program: &str| {
            let mut cmd = Command::new(program);
            cmd.env("DISPLAY", format!(":{display}"));
            cmd
        };
        let mut paint = x("xsetroot");
        paint.args(["-solid", ROOT_COLOUR]);
        let out = paint.output().expect("run xsetroot");
        assert!(out.status.success(), "xsetroot: {out:?}\n{}", xvnc.log());

        let mut cmd = x("xev");
        cmd.args(["-root", "-event", "keyboard"]);
        let xev = Daemon::spawn("xev", &cmd, &dir.path().join("xev.log"));
        assert!(
            wait_x_client_ready(xev.pid()),
            "xev never settled\n{}\n{}",
            xev.log(),
            xvnc.log()
        );

        let mut tries = 0;
        let (websockify, ws_port) = loop {
            tries += 1;
            let ws_port = free_port();
            let mut cmd = Command::new("websockify");
            cmd.arg(format!("127.0.0.1:{ws_port}"))
                .arg(format!("127.0.0.1:{rfb_port}"));
            let mut ws = Daemon::spawn("websockify", &cmd, &dir.path().join("websockify.log"));
            let up = eventually(Duration::from_secs(10), || {
                ws.exited() || wait_listening(ws_port, Duration::ZERO)
            });
            if up && !ws.exited() {
                break (ws, ws_port);
            }
            assert!(tries < 3, "websockify did not start\n{}", ws.log());
        };

        Some(VncServer {
            ws_url: format!("ws://127.0.0.1:{ws_port}"),
            password: password.to_string(),
            websockify,
            xev,
            xvnc,
            dir,
            display,
            rfb_port,
            ws_port,
        })
    }

    /// `ws://127.0.0.1:PORT`: websockify in front of Xvnc (subprotocol
    /// `binary` or none).
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    pub fn ws_port(&self) -> u16 {
        self.ws_port
    }

    /// Xvnc's own RFB port, for native viewers and the broker's upstream.
    pub fn rfb_port(&self) -> u16 {
        self.rfb_port
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// `DISPLAY` for X clients on this server, e.g. `:1`.
    pub fn display(&self) -> String {
        format!(":{}", self.display)
    }

    /// Where xev writes the key events that reach the root window
    /// (`KeyPress event ... (keysym 0xffe3, Control_L)`).
    pub fn xev_log(&self) -> PathBuf {
        self.dir.path().join("xev.log")
    }

    /// The xev log so far.
    pub fn xev_text(&self) -> String {
        std::fs::read_to_string(self.xev_log()).unwrap_or_default()
    }

    /// The process groups of the servers, to check that none is left.
    pub fn process_groups(&self) -> Vec<u32> {
        vec![self.xvnc.pgid(), self.xev.pgid(), self.websockify.pgid()]
    }

    /// Stops websockify: the console goes away under its viewers (the
    /// browser's or hcc's websocket drops) and refuses new ones.
    pub fn stop_websockify(&mut self) {
        self.websockify.stop();
    }

    /// Starts websockify again, on the same port.
    pub fn restart_websockify(&mut self) {
        let mut cmd = Command::new("websockify");
        cmd.arg(format!("127.0.0.1:{}", self.ws_port))
            .arg(format!("127.0.0.1:{}", self.rfb_port));
        self.websockify =
            Daemon::spawn("websockify", &cmd, &self.dir.path().join("websockify.log"));
        assert!(
            wait_listening(self.ws_port, Duration::from_secs(10)),
            "websockify did not start again\n{}",
            self.websockify.log()
        );
    }

    /// `hcc sim ARGS` handing out this console, with its password, as
    /// every server's.
    pub fn sim(&self, args: &[&str]) -> Sim {
        let mut args = args.to_vec();
        args.extend([
            "--console-upstream",
            self.ws_url(),
            "--console-password",
            self.password(),
        ]);
        Sim::start(&args)
    }

    /// The temporary directory of its logs and password file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every log, for assertion messages.
    pub fn logs(&self) -> String {
        [self.xvnc.log(), self.xev.log(), self.websockify.log()].join("\n")
    }
}

impl Drop for VncServer {
    fn drop(&mut self) {
        self.websockify.stop();
        self.xev.stop();
        self.xvnc.stop();
    }
}

/// `vncpasswd -f`: the obfuscated password file Xvnc reads, mode 0600.
fn write_password_file(path: &Path, password: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mut child = Command::new("vncpasswd")
        .arg("-f")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vncpasswd");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write to vncpasswd");
    let out = child.wait_with_output().expect("wait for vncpasswd");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "vncpasswd -f: {out:?}"
    );
    std::fs::write(path, &out.stdout).expect("write the VNC password file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("chmod the VNC password file");
}

/// Xvnc on a display it picks itself (`-displayfd`), ready when it has
/// written the display number and its RFB port accepts connections.
/// Err carries its log.
fn start_xvnc(dir: &Path, passwd: &Path, rfb_port: u16) -> Result<(Daemon, u32), String> {
    let mut cmd = Command::new("Xvnc");
    cmd.args(["-displayfd", "1", "-rfbport"])
        .arg(rfb_port.to_string())
        .args([
            "-localhost",
            "-nolisten",
            "tcp",
            "-SecurityTypes",
            "VncAuth",
            "-PasswordFile",
        ])
        .arg(passwd)
        .args([
            "-UseBlacklist=0",
            "-geometry",
            "1024x768",
            "-depth",
            "24",
            "-desktop",
            "hcc-test",
        ]);
    let (mut xvnc, stdout) = Daemon::spawn_piped("Xvnc", &cmd, &dir.join("xvnc.log"));
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep the pipe open for as long as Xvnc runs.
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    let display = rx
        .recv_timeout(Duration::from_secs(15))
        .ok()
        .and_then(|line| line.trim().parse::<u32>().ok());
    let Some(display) = display else {
        let log = xvnc.log();
        xvnc.stop();
        return Err(log);
    };
    if !wait_listening(rfb_port, Duration::from_secs(10)) || xvnc.exited() {
        let log = xvnc.log();
        xvnc.stop();
        return Err(log);
    }
    Ok((xvnc, display))
}

/// Waits until X client `pid` has its connection open and sleeps in the
/// kernel twice in a row: it has made its requests and waits for events.
fn wait_x_client_ready(pid: u32) -> bool {
    let socket = |target: &str| target.starts_with("socket:");
    wait_asleep(pid, Duration::from_millis(30), socket)
}

/// A websocket client just big enough to reach a VNC server behind
/// websockify: the upgrade with subprotocol `binary`, binary frames. Over
/// TCP, or any byte stream (TLS through `openssl s_client`).
pub struct WsClient<S: Read + Write = TcpStream> {
    stream: S,
    /// Payload bytes received and not yet taken.
    buffered: Vec<u8>,
}

impl WsClient<TcpStream> {
    /// Opens `url` (`ws://HOST:PORT[/PATH]`); Err when the answer is not
    /// `101` with subprotocol `binary`.
    pub fn connect(url: &str) -> std::io::Result<WsClient<TcpStream>> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| std::io::Error::other(format!("not a ws:// URL: {url}")))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        WsClient::handshake(stream, host, path)
    }
}

impl<S: Read + Write> WsClient<S> {
    /// The upgrade for `path` on `host` over an open `stream`.
    pub fn handshake(mut stream: S, host: &str, path: &str) -> std::io::Result<WsClient<S>> {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: binary\r\n\r\n"
        )?;
        stream.flush()?;
        // The head, byte by byte, so that no frame byte is consumed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            stream.read_exact(&mut byte)?;
            head.push(byte[0]);
            if head.len() > 16 * 1024 {
                return Err(std::io::Error::other("answer head too long"));
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status_ok = head.starts_with("HTTP/1.1 101");
        let binary = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("sec-websocket-protocol") && v.trim() == "binary"
            })
        });
        // RFC 6455: base64(sha1(key + GUID)) for the sample key above.
        let accept = head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        if !(status_ok && binary && accept) {
            return Err(std::io::Error::other(format!("no websocket: {head:?}")));
        }
        Ok(WsClient {
            stream,
            buffered: Vec::new(),
        })
    }

    /// Exactly `n` payload bytes, across as many frames as they take.
    pub fn read(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buffered.len() < n {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head)?;
            let opcode = head[0] & 0x0f;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut ext = [0u8; 2];
                self.stream.read_exact(&mut ext)?;
                len = u64::from(u16::from_be_bytes(ext));
            } else if len == 127 {
                let mut ext = [0u8; 8];
                self.stream.read_exact(&mut ext)?;
                len = u64::from_be_bytes(ext);
            }
            if head[1] & 0x80 != 0 || len > 64 << 20 {
                return Err(std::io::Error::other(
                    "masked or huge frame from the server",
                ));
            }
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload)?;
            match opcode {
                0x0 | 0x2 => self.buffered.extend_from_slice(&payload),
                0x8 => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("closed by the server: {payload:?}"),
                    ));
                }
                _ => {} // ping, pong, text: not part of the byte stream
            }
        }
        Ok(self.buffered.drain(..n).collect())
    }

    /// Sends `data` as one masked binary frame.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mask = [0x5a, 0x17, 0xc3, 0x8e];
        let mut frame = vec![0x82];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame)?;
        self.stream.flush()
    }
}

/// Through websockify to Xvnc: the RFB 3.8 banner, then, after ours, the
/// security types, which are exactly VNC authentication (2).
pub fn assert_rfb_greeting(url: &str, logs: &dyn Fn() -> String) {
    let ws = WsClient::connect(url).unwrap_or_else(|e| panic!("{url}: {e}\n{}", logs()));
    assert_rfb_greeting_on(ws, logs);
}

/// [`assert_rfb_greeting`] on an open websocket.
pub fn assert_rfb_greeting_on<S: Read + Write>(mut ws: WsClient<S>, logs: &dyn Fn() -> String) {
    let banner = ws.read(12).unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    assert_eq!(banner, b"RFB 003.008\n", "{}", logs());
    ws.write(b"RFB 003.008\n").expect("send our version");
    let count = ws.read(1).expect("number of security types")[0];
    let types = ws.read(usize::from(count)).expect("security types");
    assert_eq!(types, [2], "want VncAuth only\n{}", logs());
    // The 16-byte DES challenge of VNC authentication follows the choice.
    ws.write(&[2]).expect("choose VncAuth");
    assert_eq!(ws.read(16).expect("challenge").len(), 16);
}

/// `hcc vnc srv-00001` (on loopback unless `extra` says `--listen`): the
/// bridge for a native viewer, killed when dropped.
pub struct Bridge {
    child: std::process::Child,
    /// The port its `vncviewer` line names.
    pub port: u16,
    /// What it printed up to its last instruction.
    pub printed: String,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hcc vnc srv-00001 EXTRA` on the state of `env`, against `sim`.
pub fn hcc_vnc(env: &Env, sim: &Sim, extra: &[&str]) -> Bridge {
    let mut args = vec!["vnc", "srv-00001"];
    if !extra.contains(&"--listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    let mut child = env
        .cmd(&args)
        .envs(sim.client_env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    for _ in 0..3 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        printed.push_str(&line);
        let last = line.contains("password")
            || (line.trim_start().starts_with("vncviewer") && !extra.contains(&"--allow-remote"));
        if last {
            break;
        }
    }
    let port = printed
        .split_whitespace()
        .find_map(|w| w.strip_prefix("127.0.0.1::").or(w.strip_prefix("[::]::")))
        .or_else(|| {
            printed
                .split_whitespace()
                .find_map(|w| w.rsplit_once("::").map(|(_, p)| p))
        })
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port printed: {printed}"));
    Bridge {
        child,
        port,
        printed,
    }
}
