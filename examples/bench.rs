//! Measurements behind `scripts/bench`, printed as a Markdown table.
//!
//! Usage: `bench PATH/TO/hcc` (scripts/bench builds the release binary and
//! passes it). Every figure runs on a fresh temporary state directory.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let hcc = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/hcc".into());
    println!("| measurement | n | median | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    row(
        "`hcc pull`, empty queue (process start to exit)",
        pull_empty(&hcc, 300),
    );
    row(
        "`hcc push start vm1` (process start to exit)",
        push(&hcc, 300),
    );
    row(
        "spool rename -> blocked `hcc next` prints it",
        spool_to_next(&hcc, 100),
    );
    row(
        "`hcc ingest` of 4000 spool files (whole pass)",
        ingest(&hcc, 4000, 3),
    );
    println!();
    cloud(&hcc);
    println!();
    worker(&hcc);
}

/// The worker's figures against `hcc sim` with instant actions.
fn worker(hcc: &str) {
    println!("| measurement | n | median | p99 | max |");
    println!("|---|---|---|---|---|");
    let sim = Sim::start(hcc, &["--servers", "500", "--action-ms", "0"]);
    let home = home();
    let db_path = home.path().join("hcc.db");
    timed(hcc_cmd(hcc, home.path(), &["pull"]));
    let start_worker = |cycle: &str| {
        hcc_cmd(hcc, home.path(), &["worker", "--cycle", cycle])
            .envs(sim.env())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the worker")
    };
    // Idle cycles of one second: let the first (a full sync) pass, then count.
    let mut idle = start_worker("1");
    std::thread::sleep(Duration::from_secs(3));
    let before = sim.requests();
    std::thread::sleep(Duration::from_millis(10_500));
    let idle_requests = sim.requests() - before;
    let _ = idle.kill();
    let _ = idle.wait();

    // Latency and memory with the refresh cycle out of the way.
    let mut worker = start_worker("3600");
    let db = rusqlite::Connection::open(&db_path).expect("open hcc.db");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    std::thread::sleep(Duration::from_millis(500));

    // Rename into spool/new -> the worker has run it (a notify: no API).
    let mut picked = Vec::new();
    for i in 0..1000 {
        let name = format!("{i}.bench");
        let tmp = home.path().join("spool/tmp").join(&name);
        std::fs::write(&tmp, format!("notify bench-{i}\n")).expect("spool file");
        let start = Instant::now();
        std::fs::rename(&tmp, home.path().join("spool/new").join(&name)).expect("rename");
        let want = format!("bench-{i}");
        loop {
            let seen: bool = db
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE msg = ?1)",
                    [&want],
                    |r| r.get(0),
                )
                .unwrap_or(false);
            if seen {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        picked.push(start.elapsed());
    }
    quantiles("spool rename -> worker ran the command (notify)", picked);

    // Rename -> console credentials in the row.
    let mut consoles = Vec::new();
    for i in 0..200 {
        let server = format!("srv-{:05}", i % 500 + 1);
        let before: Option<f64> = db
            .query_row(
                "SELECT console_at FROM servers WHERE name = ?1",
                [&server],
                |r| r.get(0),
            )
            .unwrap_or(None);
        let name = format!("c{i}.bench");
        let tmp = home.path().join("spool/tmp").join(&name);
        std::fs::write(&tmp, format!("console {server}\n")).expect("spool file");
        let start = Instant::now();
        std::fs::rename(&tmp, home.path().join("spool/new").join(&name)).expect("rename");
        loop {
            let now: Option<f64> = db
                .query_row(
                    "SELECT console_at FROM servers WHERE name = ?1",
                    [&server],
                    |r| r.get(0),
                )
                .unwrap_or(None);
            if now.is_some() && now != before {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        consoles.push(start.elapsed());
    }
    quantiles(
        "spool rename -> console_url in the row (sim, 0 ms actions)",
        consoles,
    );

    let idle_rss = rss_kb(worker.id());
    // 10,000 commands more, in one INSERT as a busy panel would.
    db.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
         INSERT INTO commands (cmd, arg) SELECT 'notify', 'load-' || i FROM n",
    )
    .expect("insert 10,000 commands");
    let start = Instant::now();
    loop {
        let open: i64 = db
            .query_row(
                "SELECT count(*) FROM commands WHERE state IN ('queued', 'running')",
                [],
                |r| r.get(0),
            )
            .unwrap_or(1);
        if open == 0 || start.elapsed() > Duration::from_secs(300) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let drained = start.elapsed();
    let loaded_rss = rss_kb(worker.id());
    let _ = worker.kill();
    let _ = worker.wait();
    println!();
    println!("| worker figure | value |");
    println!("|---|---|");
    println!(
        "| API requests per idle cycle, 500 servers (10 cycles of 1 s) | {:.1} |",
        idle_requests as f64 / 10.0
    );
    println!(
        "| worker RSS, idle after start | {:.1} MB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| worker RSS after 11,200 commands | {:.1} MB |",
        loaded_rss as f64 / 1024.0
    );
    println!(
        "| 10,000 queued notify commands drained in | {} |",
        ms(drained)
    );
}

fn quantiles(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {what} | {} | {} | {} | {} |",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0))
    );
}

/// Resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The cloud figures against `hcc sim`.
fn cloud(hcc: &str) {
    println!("| measurement | wall | API requests | peak RSS |");
    println!("|---|---|---|---|");
    let sim = Sim::start(hcc, &["--servers", "10000", "--action-ms", "0"]);
    let big = home();
    let (wall, rss) = measured(hcc_cmd(hcc, big.path(), &["sync"]).envs(sim.env()));
    let requests = sim.requests();
    println!(
        "| `hcc sync`, 10,000 servers | {} | {requests} | {rss} |",
        ms(wall)
    );
    let before = sim.requests();
    let mut cli = Command::new("hcloud");
    cli.args(["server", "list", "-o", "json"])
        .envs(sim.env())
        .env("HCLOUD_CONFIG", "/nonexistent/hcloud.toml");
    if Command::new("hcloud").arg("version").output().is_ok() {
        let (wall, rss) = measured(&mut cli);
        let requests = sim.requests() - before;
        println!(
            "| `hcloud server list -o json`, same 10,000 | {} | {requests} | {rss} |",
            ms(wall)
        );
    } else {
        println!("| `hcloud server list -o json` | hcloud not installed | | |");
    }
    drop(sim);

    let sim = Sim::start(hcc, &["--servers", "500", "--action-ms", "0"]);
    let small = home();
    measured(hcc_cmd(hcc, small.path(), &["sync"]).envs(sim.env()));
    let mut walls = Vec::new();
    let before = sim.requests();
    for _ in 0..20 {
        walls.push(measured(hcc_cmd(hcc, small.path(), &["sync", "--changes"]).envs(sim.env())).0);
    }
    let per_call = (sim.requests() - before) as f64 / 20.0;
    walls.sort();
    println!(
        "| `hcc sync --changes`, 500 servers, no change (median of 20) | {} | {per_call} per call | |",
        ms(walls[10])
    );
    let mut walls: Vec<Duration> = (0..200)
        .map(|_| timed(hcc_cmd(hcc, small.path(), &["list"])))
        .collect();
    walls.sort();
    println!(
        "| `hcc list`, 500 servers (median of 200; p99 {}) | {} | 0 | |",
        ms(walls[198]),
        ms(walls[100])
    );
}

/// Wall time and peak RSS (through GNU time, when installed).
fn measured(cmd: &mut Command) -> (Duration, String) {
    let rss_file = std::env::temp_dir().join(format!("hcc-bench-rss-{}", std::process::id()));
    let mut run = if Path::new("/usr/bin/time").exists() {
        let mut wrapped = Command::new("/usr/bin/time");
        wrapped
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    } else {
        std::mem::replace(cmd, Command::new("true"))
    };
    let start = Instant::now();
    let status = run
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    let wall = start.elapsed();
    assert!(status.success(), "{run:?} failed");
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.trim().lines().last().map(|l| l.trim().to_string()))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} MB", kb / 1024.0))
        .unwrap_or_else(|| "n/a".into());
    let _ = std::fs::remove_file(&rss_file);
    (wall, rss)
}

/// `hcc sim` for the benchmarks, stopped when dropped.
struct Sim {
    child: std::process::Child,
    line: String,
    addr: String,
}

impl Sim {
    fn start(hcc: &str, args: &[&str]) -> Sim {
        let mut child = Command::new(hcc)
            .arg("sim")
            .arg("--stop-on-eof")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start hcc sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("sim's first line");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("HCLOUD_ENDPOINT=http://"))
            .and_then(|rest| rest.strip_suffix("/v1"))
            .expect("endpoint")
            .to_string();
        Sim { child, line, addr }
    }

    fn env(&self) -> Vec<(String, String)> {
        self.line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn requests(&self) -> u64 {
        use std::io::Read;
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect to sim");
        write!(
            stream,
            "GET /_sim/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("ask sim");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read sim");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        json["requests"].as_u64().unwrap_or(0)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn row(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {what} | {} | {} | {} | {} | {} |",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0))
    );
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn hcc_cmd(hcc: &str, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(hcc);
    cmd.args(args).env("HCC_HOME", home).stdin(Stdio::null());
    cmd
}

fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).status().expect("run hcc");
    let took = start.elapsed();
    assert!(status.code().is_some(), "hcc crashed");
    took
}

fn pull_empty(hcc: &str, n: usize) -> Vec<Duration> {
    let home = home();
    timed(hcc_cmd(hcc, home.path(), &["pull"])); // creates the state
    (0..n)
        .map(|_| timed(hcc_cmd(hcc, home.path(), &["pull"])))
        .collect()
}

fn push(hcc: &str, n: usize) -> Vec<Duration> {
    let home = home();
    timed(hcc_cmd(hcc, home.path(), &["pull"]));
    (0..n)
        .map(|_| timed(hcc_cmd(hcc, home.path(), &["push", "start", "vm1"])))
        .collect()
}

fn spool_to_next(hcc: &str, n: usize) -> Vec<Duration> {
    let home = home();
    timed(hcc_cmd(hcc, home.path(), &["pull"]));
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let mut child = hcc_cmd(hcc, home.path(), &["next", "--id"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn hcc next");
        wait_blocked(child.id());
        let tmp = home.path().join(format!("spool/tmp/{i}.bench"));
        let mut file = std::fs::File::create(&tmp).expect("spool file");
        writeln!(file, "console vm{i}").expect("write spool file");
        drop(file);
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let start = Instant::now();
        std::fs::rename(&tmp, home.path().join(format!("spool/new/{i}.bench"))).expect("rename");
        let mut line = String::new();
        out.read_line(&mut line).expect("read next's output");
        samples.push(start.elapsed());
        assert!(line.ends_with(&format!("console vm{i}\n")), "{line}");
        child.wait().expect("wait for next");
    }
    samples
}

fn ingest(hcc: &str, files: usize, rounds: usize) -> Vec<Duration> {
    (0..rounds)
        .map(|_| {
            let home = home();
            timed(hcc_cmd(hcc, home.path(), &["pull"]));
            for i in 0..files {
                let tmp = home.path().join(format!("spool/tmp/{i}"));
                std::fs::write(&tmp, format!("sync vm{i}\n")).expect("spool file");
                std::fs::rename(&tmp, home.path().join(format!("spool/new/{i}"))).expect("rename");
            }
            timed(hcc_cmd(hcc, home.path(), &["ingest"]))
        })
        .collect()
}

/// Waits until `pid` sleeps with an inotify descriptor open.
fn wait_blocked(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let inotify = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|t| t.to_string_lossy().contains("inotify"))
                })
            })
            .unwrap_or(false);
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).unwrap_or_default();
        let sleeping = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next())
            == Some('S');
        if inotify && sleeping {
            std::thread::sleep(Duration::from_millis(20));
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("hcc next (pid {pid}) never blocked");
}
