//! Headless Chromium for the tests: whether it is here (`browser_ready`),
//! where screenshots go (`shots`), a driver script in tests/browser run to
//! its report (`node`) or held open on a connected page while the test acts
//! (`Held`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where screenshots go: `target/browser/`.
pub fn shots() -> PathBuf {
    let dir = repo().join("target/browser");
    std::fs::create_dir_all(&dir).expect("create target/browser");
    dir
}

/// Whether node, chromium and the driver are here; a failure under CI, a
/// loud SKIP otherwise ([`crate::test::require`]).
pub fn browser_ready() -> bool {
    let driver = repo().join("tests/browser/node_modules/playwright-core");
    let missing = if !crate::test::have("node") {
        Some("node")
    } else if !Path::new("/usr/bin/chromium").exists() {
        Some("chromium (/usr/bin/chromium)")
    } else if !driver.exists() {
        Some("playwright-core (npm ci --prefix tests/browser)")
    } else {
        None
    };
    crate::test::require(
        missing.is_none(),
        &format!(
            "browser test: {} is missing (scripts/test installs it)",
            missing.unwrap_or_default()
        ),
    )
}

/// Runs a driver in tests/browser (60 s at most); returns its last JSON
/// line, failing the test with it and what the driver printed on stderr
/// unless the run passed (exit 0, `"ok": true`). `what` names the check.
pub fn node(script: &str, args: &[&str], what: impl Fn() -> String) -> Value {
    let out = Command::new("timeout")
        .arg("60")
        .arg("node")
        .arg(repo().join("tests/browser").join(script))
        .args(args)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "{script} printed no report: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        out.status.success() && report["ok"] == true,
        "browser check failed on {}: {report:#}\n{}",
        what(),
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// A driver run (console.mjs with `--hold-until`, session.mjs with
/// `--scenario hold`), its page kept open while the
/// test acts; in its own process group, stopped if the test fails first.
pub struct Held {
    _driver: crate::daemon::Daemon,
    script: &'static str,
    out: std::io::BufReader<std::process::ChildStdout>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Held {
    /// Starts console.mjs on `args` (which hold `--hold-until`) and waits
    /// until its page is connected; fails the test with what the driver
    /// said otherwise.
    pub fn connected(args: &[&str]) -> Held {
        Held::start("console.mjs", 60, args)
    }

    /// Starts the driver `script` on `args` (`secs` seconds at most) and
    /// waits until it says `{"connected":true}`; fails the test with what
    /// the driver said otherwise.
    pub fn start(script: &'static str, secs: u32, args: &[&str]) -> Held {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(format!("{script}.log"));
        let mut cmd = Command::new("timeout");
        cmd.arg(secs.to_string())
            .arg("node")
            .arg(repo().join("tests/browser").join(script))
            .args(args);
        let (driver, out) = crate::daemon::Daemon::spawn_piped(script, &cmd, &log);
        let mut out = std::io::BufReader::new(out);
        let mut said = String::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                let err = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("the page never connected: {said}\n{err}");
            }
            said.push_str(&line);
            if line.trim() == r#"{"connected":true}"# {
                return Held {
                    _driver: driver,
                    script,
                    out,
                    log,
                    _dir: dir,
                };
            }
        }
    }

    /// Waits for the driver's end; its report, failing the test unless
    /// every check passed.
    pub fn finish(mut self) -> Value {
        use std::io::Read;
        let mut rest = String::new();
        let _ = self.out.read_to_string(&mut rest);
        let report: Value = rest
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("{} printed no report: {rest}", self.script));
        assert!(
            report["ok"] == true,
            "browser check failed: {report:#}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        report
    }
}

/// The page opened websockets, each below `prefix` (`ws://ADDR/ws/`): the
/// console went through hcc's broker.
pub fn assert_websockets_below(report: &Value, prefix: &str) {
    let sockets = report["websockets"].as_array().unwrap();
    assert!(
        !sockets.is_empty()
            && sockets
                .iter()
                .all(|w| w.as_str().unwrap().starts_with(prefix)),
        "{report}"
    );
}

/// With a browser here: a VNC console with `password`, a sim handing it out
/// (started with `sim_args`) and a state directory with one key per scope;
/// `None` (after a SKIP line; a failure under CI) without them.
pub fn on_a_real_console(
    password: &str,
    sim_args: &[&str],
) -> Option<(
    crate::support::vnc::VncServer,
    crate::test::Sim,
    crate::test::Env,
    crate::support::serve::Keys,
)> {
    if !browser_ready() {
        return None;
    }
    let vnc = crate::support::vnc::VncServer::start(password)?;
    let sim = vnc.sim(sim_args);
    let (env, keys) = crate::support::serve::keyed(&sim);
    Some((vnc, sim, env, keys))
}
