//! `hcc demo`: the whole chain on this machine, nothing to set up. It
//! starts `hcc sim` with a few servers, `hcc worker` and `hcc serve` on a
//! temporary state directory, queues work the three ways a panel does (a
//! spool file, an SQL INSERT, `hcc push`) and shows what happens. Then it
//! keeps them running for a person with a browser (the dashboard, a
//! console that really works) until SIGINT or SIGTERM; `--quick` skips
//! that part. Either way it cleans up: no process and no file is left
//! behind.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::Error;
use crate::home::Home;
use crate::store::Store;
use crate::verb::CommandLine;
use crate::wakeup::{Look, Wakeup};

/// Children and the temporary directory, ended and removed on drop (also
/// when the demo fails half-way).
struct Scene {
    dir: PathBuf,
    /// Each with the name the demo gives it when it stops by itself.
    children: Vec<(&'static str, Child)>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            // SIGTERM first: the worker hands its work back and exits.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in &mut self.children {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn say(text: &str) -> Result<(), Error> {
    crate::output::print(&format!("{text}\n"))
}

pub fn run(quick: bool) -> Result<ExitCode, Error> {
    // From the start: a Ctrl-C at any step still ends in the clean-up,
    // never in a default death that leaves the worker and serve behind.
    // SIGHUP too: a closed terminal ends the demo the same way.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Error::io("handle signals in", "hcc demo", e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "hcc", e))?;
    let dir = std::env::temp_dir().join(format!("hcc-demo-{}", std::process::id()));
    // Made here, new and private: a path someone planted (a symlink) is
    // refused rather than followed.
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io("create directory", &dir, e))?;
    }
    let mut scene = Scene {
        dir: dir.clone(),
        children: Vec::new(),
    };
    let home = Home::open(dir.clone())?;
    say(&format!(
        "hcc demo: a temporary state directory in {}",
        dir.display()
    ))?;

    // The simulator plays Hetzner.
    let mut sim = Command::new(&exe)
        .args([
            "sim",
            "--servers",
            "5",
            "--action-ms",
            "800",
            "--stop-on-eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io("start", &exe, e))?;
    let mut first = String::new();
    if let Some(out) = sim.stdout.take() {
        BufReader::new(out)
            .read_line(&mut first)
            .map_err(|e| Error::io("read from", "hcc sim", e))?;
    }
    scene.children.push(("hcc sim", sim));
    let env: Vec<(String, String)> = first
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let endpoint = env
        .iter()
        .find(|(k, _)| k == "HCLOUD_ENDPOINT")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Error::Failed("the simulator did not start".into()))?;
    say(&format!(
        "1. `hcc sim` plays the Hetzner API at {endpoint}, with 5 servers"
    ))?;

    let hcc = |args: &[&str]| -> Result<String, Error> {
        let out = Command::new(&exe)
            .arg("--home")
            .arg(&dir)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io("run", &exe, e))?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "`hcc {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    hcc(&["config", "set", "prefix", "demo-"])?;
    let synced = hcc(&["sync"])?;
    say(&format!(
        "2. `hcc sync` fills the servers table: {}",
        synced.trim()
    ))?;

    // A long-running hcc on the demo's state, its log on a pipe.
    let background = |args: &[&str]| -> Result<Child, Error> {
        Command::new(&exe)
            .arg("--home")
            .arg(&dir)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("start", &exe, e))
    };

    // The worker runs the queue; its log lines are shown as they come.
    let mut worker = background(&["worker", "--cycle", "3600"])?;
    if let Some(err) = worker.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "   | {line}");
            }
        });
    }
    scene.children.push(("hcc worker", worker));
    say("3. `hcc worker` runs the queue (its log is indented below)")?;

    let wakeup = Wakeup::new(&home)?;
    let store = Store::open(&home.db_path())?;
    say("4. a panel queues work three ways:")?;
    spool(&home, "console srv-00001")?;
    say("   - a spool file: `console srv-00001`")?;
    let create =
        CommandLine::parse_line("create demo-web cx22 debian-12 nbg1").map_err(Error::Input)?;
    store.queue(&create, crate::store::Source::Cli)?;
    say("   - `hcc push create demo-web cx22 debian-12 nbg1`")?;
    panel_sql(&home.db_path(), PANEL_INSERT)?;
    say(&format!("   - SQL: {PANEL_INSERT}"))?;

    let deadline = Instant::now() + Duration::from_secs(60);
    let finished = wakeup.until(|_| {
        if store.open_commands()? == 0 {
            return Ok(Look::Ready(true));
        }
        if signals.pending().next().is_some() {
            return Ok(Look::Ready(false));
        }
        if Instant::now() > deadline {
            return Err(Error::Failed(
                "the demo's commands did not finish in 60 s".into(),
            ));
        }
        Ok(Look::Again(Duration::from_millis(500)))
    })?;
    if !finished {
        drop(scene);
        return Err(Error::Failed(
            "the demo was interrupted; what it started is stopped and removed".into(),
        ));
    }
    std::thread::sleep(Duration::from_millis(100));
    say("5. every command is done; the servers table now says:")?;
    for line in hcc(&["list"])?.lines() {
        say(&format!("   {line}"))?;
    }
    let console = store.console_url("srv-00001")?.unwrap_or_default();
    say(&format!(
        "6. the console credentials stored for srv-00001 (URL#password, valid for a minute):\n   {console}"
    ))?;

    // A billing system asks `hcc serve` for a one-time console link.
    let key = hcc(&["apikey", "add", "billing", "--scope", "console"])?;
    let mut serve = background(&["serve", "--listen", "127.0.0.1:0"])?;
    let log = serve.stderr.take();
    scene.children.push(("hcc serve", serve));
    let addr = serve_address(log)?;
    say(&format!(
        "7. `hcc serve` answers on http://{addr}; a billing system with an API key asks it for a console link:"
    ))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let (url, _) = console_link(&agent, &addr, key.trim(), "srv-00003")?;
    say(&format!(
        "   POST /api/v1/servers/srv-00003/console-link -> {url}"
    ))?;
    // A GET leaves the link unused; the page it answers opens it with a POST.
    let scanned = agent
        .get(&url)
        .call()
        .map(|r| r.status().as_u16())
        .map_err(|e| Error::Failed(format!("hcc serve did not answer: {e}")))?;
    say(&format!(
        "   a mail scanner fetches it first: {scanned}, a page that opens the console with a POST; the link stays unused"
    ))?;
    for attempt in ["first", "second"] {
        let status = agent
            .post(&url)
            .send_empty()
            .map(|r| r.status().as_u16())
            .map_err(|e| Error::Failed(format!("hcc serve did not answer: {e}")))?;
        let what = match status {
            200 => "the console page, with credentials Hetzner handed out just now",
            410 => "gone: a link opens once",
            _ => "unexpected",
        };
        say(&format!(
            "   the customer opens it ({attempt} time): {status}, {what}"
        ))?;
    }
    if !quick {
        let dashboard = hcc(&["apikey", "add", "dashboard", "--scope", "admin"])?;
        let (link, valid) = console_link(&agent, &addr, key.trim(), "demo-web")?;
        say(&format!(
            "8. the demo keeps running, for you to try in a browser. The dashboard, with an admin API key\n   \
             (in the URL's fragment, which the browser keeps to itself and never sends):\n\n   \
             http://{addr}/#key={key}\n\n   \
             It lists the servers with their power buttons; Console opens a server's console,\n   \
             which really works: a simulated text console with a login prompt that echoes what\n   \
             you type. Consoles opened through hcc show under \"Live console sessions\", with Revoke.\n   \
             A one-time console link for demo-web (opens once, within {minutes} minutes):\n\n   {link}\n\n   \
             Ctrl-C ends the demo and removes everything.",
            key = dashboard.trim(),
            minutes = valid.as_secs().div_ceil(60),
        ))?;
        if let Some(stopped) = serve_until_signal(&mut signals, &mut scene) {
            drop(scene);
            return Err(Error::Failed(format!(
                "{stopped} stopped by itself; the demo is over, what it started is stopped and removed"
            )));
        }
        say("")?;
    }
    let step = if quick { 8 } else { 9 };
    say(&format!(
        "{step}. cleaning up: serve, worker and simulator stopped, state directory removed"
    ))?;
    drop(scene);
    say("done. Next: `hcc sim --help`, `hcc worker --help`, `hcc serve --help`, README.md")?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGINT, SIGTERM or SIGHUP; returns the name of a child that
/// stopped by itself first, if one did.
fn serve_until_signal(signals: &mut Signals, scene: &mut Scene) -> Option<&'static str> {
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let stopped = scene
            .children
            .iter_mut()
            .find_map(|(name, child)| (!matches!(child.try_wait(), Ok(None))).then_some(*name));
        // Read after the children: a Ctrl-C on a terminal reaches them too,
        // and its signal is here before any of them has had time to exit.
        if signals.pending().next().is_some() {
            return None;
        }
        if stopped.is_some() {
            return stopped;
        }
    }
}

/// A fresh one-time console link for `server`, as a billing system gets
/// it, and how long it stays valid unopened.
fn console_link(
    agent: &ureq::Agent,
    addr: &str,
    key: &str,
    server: &str,
) -> Result<(String, Duration), Error> {
    let answer = agent
        .post(&format!(
            "http://{addr}/api/v1/servers/{server}/console-link"
        ))
        .header("Authorization", &format!("Bearer {key}"))
        .send("{}")
        .and_then(|mut r| r.body_mut().read_to_string())
        .map_err(|e| Error::Failed(format!("hcc serve did not answer: {e}")))?;
    let answer: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|e| Error::Failed(format!("hcc serve answered no JSON: {e}")))?;
    let url = answer["url"]
        .as_str()
        .ok_or_else(|| Error::Failed(format!("hcc serve made no console link: {answer}")))?;
    let left = answer["expires_at"].as_i64().unwrap_or(0) - crate::store::now();
    Ok((url.to_string(), Duration::from_secs(left.max(0) as u64)))
}

/// The address `hcc serve` prints when it listens.
fn serve_address(log: Option<std::process::ChildStderr>) -> Result<String, Error> {
    let failed = || Error::Failed("hcc serve did not start".into());
    let mut lines = BufReader::new(log.ok_or_else(failed)?).lines();
    let first = lines.next().and_then(Result::ok).ok_or_else(failed)?;
    // The rest of its log goes nowhere, but must be read so it never blocks.
    std::thread::spawn(move || lines.for_each(drop));
    first
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .ok_or_else(failed)
}

/// Writes a spool file the maildir way, as a panel does.
fn spool(home: &Home, line: &str) -> Result<(), Error> {
    let name = format!("{}.{}.demo", crate::store::now(), std::process::id());
    let tmp = home.spool_tmp().join(&name);
    write_synced(&tmp, line)?;
    std::fs::rename(&tmp, home.spool_new().join(&name)).map_err(|e| Error::io("rename", &tmp, e))
}

fn write_synced(path: &Path, line: &str) -> Result<(), Error> {
    let mut file = std::fs::File::create(path).map_err(|e| Error::io("create", path, e))?;
    file.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", path, e))
}

/// What the demo's panel writes with plain SQL.
const PANEL_INSERT: &str = "INSERT INTO commands (cmd, arg) VALUES ('stop', 'srv-00002')";

/// Runs SQL on its own connection, as a panel would: hcc's store has no
/// door for raw SQL.
fn panel_sql(db: &Path, sql: &str) -> Result<(), Error> {
    let failed = |e: rusqlite::Error| Error::Failed(format!("the panel's SQL failed: {e}"));
    let conn = rusqlite::Connection::open(db).map_err(failed)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(failed)?;
    conn.execute_batch(sql).map_err(failed)
}
