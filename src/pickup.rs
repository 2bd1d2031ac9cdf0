//! `serve.json` in the state directory: which version of `config.json` a
//! running `hcc serve` uses (its pid and the file's sha256), so that
//! `hcc config set` can say whether the change was picked up.
//!
//! Written by create-then-rename with mode 0600 (a name planted there is
//! replaced, never written through) and read without following a link,
//! only from a trusted owner (safe_fs.rs). When several `hcc serve` share
//! a state directory, the file names the last one that (re)loaded.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::{Config, RESTART_KEYS, WORKER_KEYS};
use crate::home::Home;
use crate::safe_fs::{self, Access, Failure, Owners};

const FILE: &str = "serve.json";
/// How long `hcc config set` waits for a running `hcc serve`.
const WAIT: Duration = Duration::from_secs(2);

/// What `serve.json` says.
struct Status {
    pid: u32,
    config: String,
}

/// Records that this process now uses the `config.json` with `digest`.
/// A failure is logged: serving goes on, `hcc config set` then cannot tell.
pub fn publish(home: &Home, digest: &str) {
    let text = json!({
        "pid": std::process::id(),
        "config": digest,
        "at": crate::store::now(),
    })
    .to_string();
    let written = std::fs::File::open(home.root())
        .and_then(|dir| safe_fs::write_atomic(&dir, Path::new(FILE), text.as_bytes(), 0o600));
    if let Err(err) = written {
        log(&format!(
            "warning: cannot write {}: {err}; `hcc config set` cannot tell whether this server picked a change up",
            home.root().join(FILE).display()
        ));
    }
}

/// Removes `serve.json` when it names this process (when stopping).
pub fn withdraw(home: &Home) {
    if let Ok(Some(status)) = read(home)
        && status.pid == std::process::id()
        && let Ok(dir) = std::fs::File::open(home.root())
    {
        let _ = rustix::fs::unlinkat(&dir, FILE, rustix::fs::AtFlags::empty());
    }
}

fn read(home: &Home) -> Result<Option<Status>, String> {
    let path = home.root().join(FILE);
    let owners = Owners::of_parent(&path).map_err(|e| e.to_string())?;
    let file = match safe_fs::open_file(rustix::fs::CWD, &path, Access::ReadOwned, &owners) {
        Ok(file) => file,
        Err(Failure::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(Failure::Io(e)) => return Err(format!("cannot read {}: {e}", path.display())),
        Err(Failure::Unsafe(why)) => return Err(safe_fs::refusal(&path, &why)),
    };
    let mut text = String::new();
    file.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // A file half gone or of another kind is "no serve": it says nothing.
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let pid = value["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    let config = value["config"].as_str();
    Ok(pid.zip(config).map(|(pid, config)| Status {
        pid,
        config: config.to_string(),
    }))
}

/// Whether a process with this pid exists (one of another user counts)
/// and, as far as /proc tells, runs this program: a serve killed with
/// SIGKILL leaves its file behind, and its pid may be reused.
fn alive(pid: u32) -> bool {
    let Some(id) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    let exists = match rustix::process::test_kill_process(id) {
        Ok(()) => true,
        Err(err) => err == rustix::io::Errno::PERM,
    };
    let comm = |who: &str| std::fs::read_to_string(format!("/proc/{who}/comm")).ok();
    exists
        && match (comm(&pid.to_string()), comm("self")) {
            (Some(theirs), Some(ours)) => theirs == ours,
            // /proc hidden (hidepid): the pid is all there is to go by.
            _ => true,
        }
}

/// After `hcc config set KEY` saved `config.json`: waits up to 2 s for a
/// running `hcc serve` to load it and says, in one line on stderr, whether
/// it did; then what only a restart applies. The setting is saved either
/// way: nothing here fails the command.
pub fn report(home: &Home, key: &str) {
    let want = match Config::load(&home.config_path()) {
        Ok(config) => config.digest().to_string(),
        Err(err) => {
            say(&format!(
                "cannot tell whether hcc serve picked up the change: {err}"
            ));
            return;
        }
    };
    let deadline = Instant::now() + WAIT;
    let serve = loop {
        let status = match read(home) {
            Ok(status) => status.filter(|s| alive(s.pid)),
            Err(why) => {
                say(&format!(
                    "cannot tell whether hcc serve picked up the change: {why}"
                ));
                break None;
            }
        };
        match status {
            None => {
                say("no hcc serve is running; the change applies when it starts");
                break None;
            }
            Some(s) if s.config == want => {
                say(&format!("hcc serve (pid {}) picked up the change", s.pid));
                break Some(s.pid);
            }
            Some(s) if Instant::now() >= deadline => {
                say(&format!(
                    "hcc serve (pid {0}) did not pick up the change within {1} s; send it SIGHUP (kill -HUP {0}) or restart it, and see its log",
                    s.pid,
                    WAIT.as_secs()
                ));
                break Some(s.pid);
            }
            Some(_) => std::thread::sleep(Duration::from_millis(25)),
        }
    };
    if let Some(pid) = serve
        && RESTART_KEYS.contains(&key)
    {
        say(&format!(
            "`{key}` applies when hcc serve (pid {pid}) restarts"
        ));
    }
    if WORKER_KEYS.contains(&key)
        && let Ok(Some(worker)) = crate::worker::holder(&home.root().join("worker.lock"))
    {
        say(&format!(
            "the worker (pid {}) reads `{key}` when it starts: restart it to apply the change",
            worker.pid
        ));
    }
}

fn say(line: &str) {
    eprintln!("hcc: {line}");
}

/// A line for `hcc serve`'s log: `publish` and `withdraw` run inside it.
fn log(message: &str) {
    eprintln!("hcc serve: {}", crate::output::one_line(message));
}
