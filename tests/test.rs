//! The harness: a fresh state directory per test, the built `hcc` binary
//! run against it with a clean environment, and helpers to read its
//! database and to wait on a condition with a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const HCC: &str = env!("CARGO_BIN_EXE_hcc");

/// A temporary state directory and the means to drive hcc on it.
pub struct Env {
    dir: TempDir,
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        };
        // Create the layout, as any first command does.
        env.ok(&["config", "show"]);
        env
    }

    /// A state directory copied from `src` (test data an older release
    /// wrote), with the modes hcc gives what it creates: directories 0700,
    /// files 0600 (git keeps neither). Nothing runs on it yet.
    pub fn copied(src: &Path) -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        };
        copy_tree(src, env.home());
        env
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `hcc ARGS` on this home, with no inherited HCC_*/HCLOUD_* variables.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(HCC);
        cmd.args(args)
            .env("HCC_HOME", self.home())
            .env_remove("HCLOUD_TOKEN")
            .env_remove("HCLOUD_ENDPOINT")
            .env_remove("XDG_STATE_HOME")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run hcc"))
    }

    /// Runs and insists on exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "hcc {args:?} failed: {run:?}");
        run.stdout
    }

    /// Drops a spool file as a panel does: write in tmp/, rename into new/.
    pub fn spool(&self, name: &str, contents: &[u8]) {
        let tmp = self.path("spool/tmp").join(name);
        let mut file = std::fs::File::create(&tmp).expect("create spool file");
        file.write_all(contents).expect("write spool file");
        file.sync_all().expect("sync spool file");
        std::fs::rename(&tmp, self.path("spool/new").join(name)).expect("rename spool file");
    }

    /// Every message in the ring, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let db = self.db();
        let mut stmt = db.prepare("SELECT msg FROM messages ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Waits until no command is queued or running.
    pub fn settle(&self, timeout: Duration) {
        let open = "FROM commands WHERE state IN ('queued', 'running')";
        let settled = eventually(timeout, || {
            self.value::<i64>(&format!("SELECT count(*) {open}")) == 0
        });
        assert!(
            settled,
            "commands still open: {}",
            self.value::<String>(&format!(
                "SELECT coalesce(group_concat(id || ' ' || cmd || ' ' || arg || ': ' || state, '; '), '') {open}"
            ))
        );
    }

    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.path("hcc.db")).expect("open hcc.db");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn
    }

    /// One column of every row the query gives, in order.
    pub fn column<T: rusqlite::types::FromSql>(&self, sql: &str) -> Vec<T> {
        let db = self.db();
        let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// One value from the database.
    pub fn value<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        self.db()
            .query_row(sql, [], |row| row.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `hcc push --id WORDS`: the new command's id.
    pub fn push_id(&self, words: &[&str]) -> i64 {
        let mut args = vec!["push", "--id"];
        args.extend_from_slice(words);
        self.ok(&args).trim().parse().unwrap()
    }

    /// The state of command `id`: queued, running, done or failed.
    pub fn command_state(&self, id: i64) -> String {
        self.value(&format!("SELECT state FROM commands WHERE id = {id}"))
    }

    /// Two values of one row from the database.
    pub fn pair<A: rusqlite::types::FromSql, B: rusqlite::types::FromSql>(
        &self,
        sql: &str,
    ) -> (A, B) {
        self.db()
            .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `hcc ARGS` in the background, its stdout lines arriving on a
    /// channel, its stderr collected.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hcc");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let said = Arc::new(Mutex::new(String::new()));
        let stderr_reader = {
            let said = said.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                    let text = String::from_utf8_lossy(&chunk[..n]);
                    said.lock().expect("stderr buffer").push_str(&text);
                }
            })
        };
        Running {
            child,
            lines,
            stderr: said,
            stderr_reader: Some(stderr_reader),
        }
    }
}

/// Copies the directory tree `src` into the existing directory `dst`:
/// directories 0700, regular files 0600.
fn copy_tree(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    };
    mode(dst, 0o700);
    let entries = std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    for entry in entries.map(|e| e.expect("read a directory entry")) {
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir(&to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
            mode(&to, 0o600);
        }
    }
}

/// Runs `cmd` with `input` on its standard input (answers to `hcc setup`,
/// a token for `config set token -`).
pub fn run_with_input(mut cmd: Command, input: &str) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hcc");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    Run::from(child.wait_with_output().expect("wait for hcc"))
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts a failure: exit `code`, no stdout, and stderr exactly the
    /// one line `line` (which begins `hcc: `).
    pub fn fails(&self, code: i32, line: &str) {
        let whole = line.starts_with("hcc: ") && !line.contains('\n');
        assert!(whole, "not a whole `hcc: ` line: {line:?}");
        assert_eq!(self.stderr, format!("{line}\n"), "{self:?}");
        assert_eq!((self.code, self.stdout.as_str()), (code, ""), "{self:?}");
    }

    /// [`Run::fails`] for a line with a part that changes from run to run
    /// (a pid, a correlation id): stderr is exactly one line, `before`,
    /// then anything but a line break, then `after`.
    pub fn fails_around(&self, code: i32, before: &str, after: &str) {
        assert!(before.starts_with("hcc: "), "{before:?}");
        let line = self.stderr.strip_suffix('\n').unwrap_or_default();
        let fits = !line.contains('\n')
            && line.len() >= before.len() + after.len()
            && line.starts_with(before)
            && line.ends_with(after);
        assert!(fits, "want {before:?} ... {after:?}: {self:?}");
        assert_eq!((self.code, self.stdout.as_str()), (code, ""), "{self:?}");
    }
}

/// The line hcc refuses a planted name in its state directory with: `path`
/// and `why` (e.g. "it is a symbolic link").
pub fn refusing(path: &Path, why: &str) -> String {
    format!(
        "hcc: refusing `{}`: {why}; hcc never follows or writes through a name in its state \
         directory that it did not make (anyone in the directory's group can plant one): \
         remove it or fix it",
        path.display()
    )
}

/// A background hcc; killed when dropped.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, or None after `timeout`.
    pub fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits until the process is blocked on its inotify watch.
    pub fn wait_blocked(&self) {
        wait_blocked(self.pid());
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Kills it; everything it wrote on stderr.
    pub fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        self.stderr()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until process `pid` sleeps in the kernel with an inotify watch
/// open, i.e. it is blocked waiting for a wake-up, not busy.
pub fn wait_blocked(pid: u32) {
    let inotify = |target: &str| target.contains("inotify");
    let blocked = wait_asleep(pid, Duration::from_millis(50), inotify);
    assert!(
        blocked,
        "hcc (pid {pid}) never blocked on its inotify watch"
    );
}

/// The pids of the processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The command name of process `pid`.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Waits (up to 10 s) until process `pid` has a file descriptor whose
/// target (`socket:[...]`, `anon_inode:inotify`, a path) passes `fd`, and
/// its main thread sleeps in the kernel and still does `pause` later: it
/// waits for an event, not between steps.
pub fn wait_asleep(pid: u32, pause: Duration, fd: impl Fn(&str) -> bool) -> bool {
    eventually(Duration::from_secs(10), || {
        has_fd(pid, &fd) && proc_state(pid) == Some('S') && {
            std::thread::sleep(pause);
            proc_state(pid) == Some('S')
        }
    })
}

fn has_fd(pid: u32, fd: impl Fn(&str) -> bool) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries.flatten().any(|e| {
                std::fs::read_link(e.path())
                    .map(|target| fd(&target.to_string_lossy()))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

/// The state letter of the process's main thread (R, S, D, Z, ...).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// CPU time used by a process so far, in clock ticks (utime + stime).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(end) = stat.rfind(')') else { return 0 };
    let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tick(11) + tick(12)
}

/// Whether a real peer a test drives is here. When it is not: under CI
/// (`CI` set, as `scripts/test` does) the test fails, naming `missing`, so
/// that no test passes there by skipping; elsewhere it prints a loud
/// `SKIP:` line and returns false, and the caller returns.
pub fn require(ready: bool, missing: &str) -> bool {
    if ready {
        return true;
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(!ci, "{missing}; with CI set a test may not skip");
    eprintln!("\nSKIP: {missing} (with CI set, this fails)\n");
    false
}

/// [`require`] for one program on PATH.
pub fn require_program(program: &str) -> bool {
    require(
        have(program),
        &format!("`{program}` is not installed (scripts/test installs it)"),
    )
}

/// True when a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Now, in Unix seconds with fractions.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `hcc sim --stop-on-eof ARGS` in the background, its first line parsed;
/// killed when dropped (and it stops by itself when its stdin closes).
pub struct Sim {
    child: Child,
    /// `http://127.0.0.1:PORT/v1`, as printed.
    pub endpoint: String,
    pub token: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Sim {
    /// The official `hcloud` CLI against this sim, with no configuration
    /// of its own.
    pub fn hcloud(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("hcloud")
            .args(args)
            .envs(self.client_env())
            .env("HCLOUD_CONFIG", "/nonexistent/path")
            .env_remove("HCLOUD_CONTEXT")
            .output()
            .expect("run hcloud")
    }

    /// `hcloud ARGS`, which must succeed: its standard output.
    pub fn hcloud_ok(&self, args: &[&str]) -> String {
        let out = self.hcloud(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "hcloud {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(HCC)
            .arg("sim")
            .arg("--stop-on-eof")
            .args(args)
            .env_remove("HCLOUD_TOKEN")
            .env_remove("HCLOUD_ENDPOINT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hcc sim");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the sim's first line");
        let mut endpoint = None;
        let mut token = None;
        for word in line.split_whitespace() {
            if let Some(v) = word.strip_prefix("HCLOUD_ENDPOINT=") {
                endpoint = Some(v.to_string());
            } else if let Some(v) = word.strip_prefix("HCLOUD_TOKEN=") {
                token = Some(v.to_string());
            }
        }
        let (Some(endpoint), Some(token)) = (endpoint, token) else {
            let _ = child.kill();
            panic!("hcc sim {args:?} printed {line:?}, not its endpoint and token");
        };
        let addr = endpoint
            .trim_start_matches("http://")
            .trim_end_matches("/v1")
            .to_string();
        Sim {
            child,
            endpoint,
            token,
            addr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the sim's stdin and waits (up to 5 s) for it to exit.
    pub fn close_stdin(&mut self) -> bool {
        drop(self.child.stdin.take());
        eventually(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        })
    }

    /// The next answer on `route` (`POST /servers`) is lost: the sim does
    /// the work, then closes the connection unanswered.
    pub fn lose_next_answer(&self, route: &str) {
        let body = serde_json::json!({ "route": route }).to_string();
        let lost = self.control("POST", "/_sim/lose_next_answer", Some(&body));
        assert_eq!(lost.status, 200, "{}", lost.body);
    }

    /// `POST /servers/{id}/actions/request_console` at the sim's API.
    pub fn request_console(&self, id: impl std::fmt::Display) -> Http {
        self.api(
            "POST",
            &format!("/servers/{id}/actions/request_console"),
            None,
        )
    }

    /// An authenticated API request; `path` is relative to `/v1`.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> Http {
        let auth = format!("Bearer {}", self.token);
        http(&self.addr, method, &format!("/v1{path}"), body, Some(&auth))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str) -> Http {
        self.api("GET", path, None)
    }

    /// A request to a control endpoint (`/_sim/...`, no token).
    pub fn control(&self, method: &str, path: &str, body: Option<&str>) -> Http {
        http(&self.addr, method, path, body, None)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn stats(&self) -> serde_json::Value {
        self.control("GET", "/_sim/stats", None).json()
    }

    /// Env for a client of this sim: HCLOUD_ENDPOINT and HCLOUD_TOKEN.
    pub fn client_env(&self) -> [(&'static str, String); 2] {
        [
            ("HCLOUD_ENDPOINT", self.endpoint.clone()),
            ("HCLOUD_TOKEN", self.token.clone()),
        ]
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read
/// to the end. A connection closed without an answer is an error.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    authorization: Option<&str>,
) -> std::io::Result<Http> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(auth) = authorization {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("connection closed without an answer ({} bytes)", raw.len()),
        ));
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Http {
        status,
        headers,
        body: body.to_string(),
    })
}

/// `hcc worker` in the background; stopped when dropped, so no test leaves
/// one behind, even when an assertion fails.
pub struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    pub fn start(env: &Env, sim: &Sim, cycle: &str) -> Worker {
        let log = env.path("worker.log");
        let child = env
            .cmd(&["worker", "--cycle", cycle])
            .envs(sim.client_env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create worker.log"))
            .spawn()
            .expect("spawn hcc worker");
        Worker { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then its exit status within 5 s (None if it did not stop).
    pub fn stop(&mut self) -> Option<ExitStatus> {
        terminate(&mut self.child, Duration::from_secs(5))
    }

    /// (state, result, error) of command `id` of `env`, once this worker
    /// closed it (within 30 s).
    pub fn closed(&self, env: &Env, id: i64) -> (String, Option<String>, Option<String>) {
        let done = eventually(Duration::from_secs(30), || {
            let state = env.command_state(id);
            state == "done" || state == "failed"
        });
        assert!(done, "command {id} never closed: {}", self.log());
        env.db()
            .query_row(
                "SELECT state, result, error FROM commands WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }
}

/// SIGTERM, then the exit status within `timeout` (None if it did not stop).
pub fn terminate(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let mut status = None;
    eventually(timeout, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many threads of process `pid` are named `name`.
pub fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
                })
                .count()
        })
        .unwrap_or(0)
}
