//! `hcc serve` on a free loopback port and the helpers every test of it
//! uses: a state directory with one key per scope (`setup`), one-time
//! console links (`link`), the page's embedded data (`page_data`), raw
//! bytes on a connection (`raw`, `status_of`), status and error-code checks.

use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::test::{Env, Http, Sim, eventually, http};

/// `hcc serve` on an ephemeral loopback port; stopped when dropped.
pub struct Serve {
    child: Child,
    log: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Serve {
    pub fn start(env: &Env, sim: &Sim, extra: &[&str]) -> Serve {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Serve::start_with(env, sim, &args)
    }

    pub fn start_with(env: &Env, sim: &Sim, args: &[&str]) -> Serve {
        Serve::start_command(env, env.cmd(args).envs(sim.client_env()))
    }

    /// `cmd` runs `hcc serve` with its log on stderr.
    pub fn start_command(env: &Env, cmd: &mut std::process::Command) -> Serve {
        let log = env.path(&format!("serve-{}.log", fastrand::u32(..)));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the serve log"))
            .spawn()
            .expect("spawn hcc serve");
        let mut serve = Serve {
            child,
            log,
            addr: String::new(),
        };
        let mut addr = None;
        let up = eventually(Duration::from_secs(10), || {
            addr = serve.log().lines().find_map(|l| {
                l.split("listening on http://")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_string)
            });
            addr.is_some() || matches!(serve.child.try_wait(), Ok(Some(_)))
        });
        assert!(up, "hcc serve did not start: {}", serve.log());
        serve.addr = addr.unwrap_or_else(|| panic!("hcc serve exited: {}", serve.log()));
        serve
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&str>, key: Option<&str>) -> Http {
        let auth = key.map(|k| format!("Bearer {k}"));
        http(&self.addr, method, path, body, auth.as_deref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str, key: &str) -> Http {
        self.request("GET", path, None, Some(key))
    }

    pub fn post(&self, path: &str, key: &str) -> Http {
        self.request("POST", path, Some("{}"), Some(key))
    }

    /// `POST /c/refresh` for the page session `session`, as the page asks
    /// for a new ticket before it connects again.
    pub fn refresh(&self, session: &str) -> Http {
        let body = serde_json::json!({ "session": session }).to_string();
        self.request("POST", "/c/refresh", Some(&body), None)
    }

    /// SIGTERM, then the exit status within 10 s.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        crate::test::terminate(&mut self.child, Duration::from_secs(10))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A state directory that knows the sim's servers, with one key per scope.
pub struct Keys {
    pub read: String,
    pub act: String,
    pub console: String,
    pub admin: String,
}

pub fn setup(env: &Env, sim: &Sim) -> Keys {
    let run = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    assert!(run.status.success(), "sync: {run:?}");
    let add = |scope: &str| {
        env.ok(&["apikey", "add", &format!("{scope}-key"), "--scope", scope])
            .trim()
            .to_string()
    };
    Keys {
        read: add("read"),
        act: add("act"),
        console: add("console"),
        admin: add("admin"),
    }
}

/// The `error.code` of a JSON error answer, or "".
pub fn code(reply: &Http) -> String {
    reply.json()["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn assert_status(reply: &Http, status: u16, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
}

/// The page's embedded data.
pub fn page_data(page: &str) -> Value {
    let start = page
        .find(r#"<script type="application/json" id="hcc-console">"#)
        .unwrap_or_else(|| panic!("no console data in the page: {page}"));
    let rest = &page[start..];
    let json = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(json).unwrap()
}

/// A fresh one-time console link of `server`, made with `key`: its path.
pub fn link(serve: &Serve, key: &str, server: &str) -> String {
    let made = serve.post(&format!("/api/v1/servers/{server}/console-link"), key);
    assert_status(&made, 201, "console-link");
    let url = made.json()["url"].as_str().unwrap().to_string();
    let prefix = format!("http://{}", serve.addr);
    url.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not below {prefix}"))
        .to_string()
}

/// A fresh console link of `server` opened as the page does (a POST,
/// which must answer 200): the page and its embedded data.
pub fn open_link(serve: &Serve, key: &str, server: &str) -> (Http, Value) {
    let path = link(serve, key, server);
    let page = serve.request("POST", &path, None, None);
    assert_eq!(page.status, 200, "{}", page.body);
    let data = page_data(&page.body);
    (page, data)
}

/// Sends raw bytes on a fresh connection; returns what comes back until the
/// server closes (or 5 s pass).
pub fn raw(addr: &str, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

pub fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// A sim started with `sim_args`, a state directory that knows its servers
/// with one key per scope (`setup`), and `hcc serve` on it with no extra
/// arguments: the start of most tests that talk to `hcc serve`.
pub fn serving(sim_args: &[&str]) -> (Sim, Env, Keys, Serve) {
    serving_with(sim_args, &[])
}

/// [`serving`] with `hcc config set KEY VALUE` for each of `settings` before
/// `hcc serve` starts.
pub fn serving_with(sim_args: &[&str], settings: &[(&str, &str)]) -> (Sim, Env, Keys, Serve) {
    let sim = Sim::start(sim_args);
    let (env, keys) = keyed(&sim);
    for (key, value) in settings {
        env.ok(&["config", "set", key, value]);
    }
    let serve = Serve::start(&env, &sim, &[]);
    (sim, env, keys, serve)
}

pub type Ws = tungstenite::WebSocket<std::net::TcpStream>;

/// A websocket to `path` on serve, as noVNC opens it; `Err(status)` when
/// the upgrade is refused (0: the connection failed before an answer).
pub fn connect(serve: &Serve, path: &str) -> Result<Ws, u16> {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}{path}", serve.addr)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    headers.insert("User-Agent", "broker-test/1".parse().unwrap());
    let stream = std::net::TcpStream::connect(&serve.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16())
        }
        Err(_) => Err(0),
    }
}

/// `call` made `n` times at once: exactly one is answered 200, every other
/// one `refused`.
pub fn one_wins_at_once(n: usize, refused: u16, call: impl Fn() -> u16 + Sync) {
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..n).map(|_| scope.spawn(&call)).collect();
        calls.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == refused).count(),
        n - 1,
        "{statuses:?}"
    );
}

/// Deletes the server `name` at the simulator, makes another one under the
/// same name, and lets `hcc sync` (on `env`) find the change.
pub fn replace_server(sim: &Sim, env: &Env, name: &str) {
    let id: i64 = env.value(&format!("SELECT id FROM servers WHERE name = '{name}'"));
    let deleted = sim.control("DELETE", &format!("/_sim/servers/{id}"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let body = serde_json::json!({
        "name": name,
        "server_type": "cx22",
        "image": "debian-12",
        "labels": {"managed": "1"},
    });
    let again = sim.api("POST", "/servers", Some(&body.to_string()));
    assert_eq!(again.status, 201, "{}", again.body);
    let run = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    assert!(run.status.success());
}

/// A sim with `servers` managed servers, acting at once, and `foreign`:
/// a server made outside hcc, without the managed label.
pub fn sim_with_foreign(servers: &str) -> Sim {
    let sim = Sim::start(&["--servers", servers, "--action-ms", "0"]);
    let made = sim.api(
        "POST",
        "/servers",
        Some(r#"{"name":"foreign","server_type":"cx22","image":"debian-12"}"#),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    sim
}

/// A sim with a running server (srv-00001) and an off one (srv-off),
/// both managed, actions done at once.
pub fn sim_with_an_off_server() -> Sim {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "0"]);
    let made = sim.control(
        "POST",
        "/_sim/servers",
        Some(r#"{"name": "srv-off", "labels": {"managed": "1"}, "status": "off"}"#),
    );
    assert_eq!(made.status, 201, "{made:?}");
    sim
}

/// A state directory that knows `sim`'s servers, with one key per scope.
pub fn keyed(sim: &Sim) -> (Env, Keys) {
    let env = Env::new();
    let keys = setup(&env, sim);
    (env, keys)
}
