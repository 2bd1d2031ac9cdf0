//! Background servers for tests (Xvnc, websockify, nginx): each in its own
//! process group, its output in a log file, and the whole group stopped
//! when dropped, so nothing outlives a test, not even when it panics.
//! Plus free loopback ports and waiting until one listens.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};

use crate::test::{eventually, have};

/// A program running in its own process group; the group gets SIGTERM,
/// then SIGKILL, when this is dropped.
pub struct Daemon {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` in a new process group with stdout and stderr appended
    /// to `log` (stdin from /dev/null unless `cmd` says otherwise).
    ///
    /// Where `setpriv` exists, the program also gets SIGKILL when the
    /// thread that started it ends, which covers a test binary killed
    /// from outside: start a daemon on the thread that owns it.
    pub fn spawn(name: &str, cmd: &Command, log: &Path) -> Daemon {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut run = wrapped(cmd);
        run.stdout(file.try_clone().expect("clone a log handle"))
            .stderr(file)
            .process_group(0);
        let child = run
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({:?}): {e}", cmd.get_program()));
        Daemon {
            child,
            name: name.to_string(),
            log: log.to_path_buf(),
        }
    }

    /// Like [`Daemon::spawn`], but with stdout piped to the caller (for a
    /// program that reports readiness on it) and only stderr in `log`.
    pub fn spawn_piped(
        name: &str,
        cmd: &Command,
        log: &Path,
    ) -> (Daemon, std::process::ChildStdout) {
        let file =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let mut run = wrapped(cmd);
        run.stdout(Stdio::piped()).stderr(file).process_group(0);
        let mut child = run
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({:?}): {e}", cmd.get_program()));
        let stdout = child.stdout.take().expect("piped stdout");
        let daemon = Daemon {
            child,
            name: name.to_string(),
            log: log.to_path_buf(),
        };
        (daemon, stdout)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process group: the same number as the pid.
    pub fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the program has exited (its group may still have members).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// What it wrote so far, for assertion messages.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- {} ({}) ---\n{text}", self.name, self.log.display())
    }

    /// SIGTERM to the group, up to 2 s for it to empty, then SIGKILL; the
    /// program itself is reaped. Safe to call twice.
    pub fn stop(&mut self) {
        let Some(pgid) = Pid::from_raw(self.pgid() as i32) else {
            return;
        };
        if group_alive(self.pgid()) {
            let _ = kill_process_group(pgid, Signal::TERM);
            // The leader is our child: reap it as it exits, or the zombie
            // keeps the group "alive".
            eventually(Duration::from_secs(2), || {
                let _ = self.child.try_wait();
                !group_alive(self.pgid())
            });
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether any process is left in group `pgid` (a zombie counts).
pub fn group_alive(pgid: u32) -> bool {
    Pid::from_raw(pgid as i32).is_some_and(|pid| test_kill_process_group(pid).is_ok())
}

/// `cmd` behind `setpriv --pdeathsig KILL` when that exists.
fn wrapped(cmd: &Command) -> Command {
    let mut run = if have("setpriv") {
        let mut run = Command::new("setpriv");
        run.args(["--pdeathsig", "KILL", "--"])
            .arg(cmd.get_program());
        run
    } else {
        Command::new(cmd.get_program())
    };
    run.args(cmd.get_args()).stdin(Stdio::null());
    if let Some(dir) = cmd.get_current_dir() {
        run.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => run.env(key, value),
            None => run.env_remove(key),
        };
    }
    run
}

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then
/// released). Another process may take it before it is used: callers
/// that bind it later retry with a new one when that fails.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Waits until something accepts connections on 127.0.0.1:`port`, or
/// `timeout` passes.
pub fn wait_listening(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let addr = (Ipv4Addr::LOCALHOST, port).into();
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The programs in `programs` that are not on PATH.
pub fn missing(programs: &[&str]) -> Vec<String> {
    programs
        .iter()
        .filter(|p| !have(p))
        .map(|p| p.to_string())
        .collect()
}
