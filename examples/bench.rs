//! Measurements behind `scripts/bench`, printed as a Markdown table.
//!
//! Usage: `bench PATH/TO/hcc` (scripts/bench builds the release binary and
//! passes it; `bench HCC serve` runs the `hcc serve` section alone, `bench
//! HCC worker-sync` the worker beside a full sync, `bench HCC metrics`
//! the `/metrics` row, `bench HCC sim-console` the simulator's console,
//! `bench HCC broker` the console broker against a local Xvnc, `bench HCC
//! console-browser` console opens in headless Chromium, `bench HCC
//! metrics-graphs` ten dashboards polling one server's metrics, `bench HCC
//! rebuild` a rebuild queued to the console showing it, `bench HCC whmcs`
//! the WHMCS module's create, single sign-on and client-area views, `bench
//! HCC queue-flood` a short soak of the worker's queue, `bench HCC standby`
//! Litestream's replication lag at 100 commands a second). Every figure
//! runs on a fresh temporary state directory.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "bench/backup.rs"]
mod backup;
#[path = "bench/broker.rs"]
mod broker;
#[path = "bench/funnel.rs"]
mod funnel;
#[path = "bench/graphs.rs"]
mod graphs;
#[path = "bench/queue_flood.rs"]
mod queue_flood;
#[path = "bench/rebuild.rs"]
mod rebuild;
#[path = "bench/standby.rs"]
mod standby;
#[path = "bench/whmcs.rs"]
mod whmcs;

fn main() {
    let hcc = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/hcc".into());
    // `bench HCC SECTION`: that section alone.
    let alone: Option<fn(&str)> = match std::env::args().nth(2).as_deref() {
        None => None,
        Some("serve") => Some(|hcc| {
            serve(hcc);
            println!();
            serve_flood(hcc);
            println!();
            serve_list_memory(hcc);
        }),
        // The worker beside a full sync.
        Some("worker-sync") => Some(worker_sync),
        // The simulator's console.
        Some("sim-console") => Some(sim_console),
        // The console broker.
        Some("broker") => Some(broker::run),
        // Console pages against the Hetzner budget, and 300 live sessions.
        Some("funnel") => Some(funnel::run),
        // A rebuild queued to its console.
        Some("rebuild") => Some(rebuild::run),
        // Ten dashboards polling one server's graphs, against the Hetzner
        // requests they cost.
        Some("metrics-graphs") => Some(graphs::run),
        // Console opens in Chromium.
        Some("console-browser") => Some(console_browser),
        // The `/metrics` row.
        Some("metrics") => Some(metrics),
        // The worker: spool and queue wake-ups to a command run.
        Some("worker") => Some(worker),
        // The WHMCS module: create, single sign-on, 100 client-area views.
        Some("whmcs") => Some(whmcs::run),
        // `hcc sync` against `hcloud server list`, at latency and not.
        Some("cloud") => Some(cloud),
        // The worker's queue under a short soak: backlog and waits.
        Some("queue-flood") => Some(|hcc| {
            queue_flood::run(hcc);
            println!();
            queue_flood::drain(hcc);
        }),
        // `hcc backup` of a large state directory beside a running worker.
        Some("backup") => Some(backup::run),
        // Litestream's replication lag at 100 commands a second.
        Some("standby") => Some(standby::run),
        Some(other) => {
            eprintln!(
                "bench: unknown section `{other}` (serve, worker-sync, sim-console, broker, \
                 funnel, rebuild, metrics-graphs, console-browser, metrics, whmcs, cloud, \
                 worker, queue-flood, backup, standby)"
            );
            std::process::exit(2);
        }
    };
    if let Some(section) = alone {
        section(&hcc);
        return;
    }
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
    println!();
    worker_sync(&hcc);
    println!();
    serve(&hcc);
    println!();
    serve_flood(&hcc);
    println!();
    serve_list_memory(&hcc);
    println!();
    metrics(&hcc);
    println!();
    sim_console(&hcc);
    println!();
    broker::run(&hcc);
    println!();
    funnel::run(&hcc);
    println!();
    graphs::run(&hcc);
    println!();
    rebuild::run(&hcc);
    println!();
    backup::run(&hcc);
    println!();
    console_browser(&hcc);
    println!();
    whmcs::run(&hcc);
    println!();
    standby::run(&hcc);
}

/// Console opens in headless Chromium through one-time links (broker mode,
/// the default) on the simulator's console, driven by
/// tests/browser/bench.mjs (which defines "first framebuffer"): 20 opens
/// in a fresh browser context and 20 second opens in the same context,
/// timed from the link's navigation to the first framebuffer, and the
/// requests each open cost `hcc serve` (its request log, one line per
/// request, the websocket upgrade included).
fn console_browser(hcc: &str) {
    const OPENS: usize = 20;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let driver = repo.join("tests/browser/bench.mjs");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = if !node {
        Some("node")
    } else if !Path::new("/usr/bin/chromium").exists() {
        Some("chromium (/usr/bin/chromium)")
    } else if !repo
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        Some("playwright-core (npm ci --prefix tests/browser)")
    } else {
        None
    };
    if let Some(what) = missing {
        println!(
            "(console opens in Chromium skipped: {what} is missing; scripts/test installs it)"
        );
        return;
    }
    let sim = Sim::start(
        hcc,
        &[
            "--servers",
            "1",
            "--action-ms",
            "0",
            "--rate-limit",
            "1000000/h",
        ],
    );
    let home = synced_home(hcc, &sim);
    let key = hcc_cmd(
        hcc,
        home.path(),
        &["apikey", "add", "bench", "--scope", "admin"],
    )
    .output()
    .expect("hcc apikey add");
    assert!(key.status.success(), "apikey add: {key:?}");
    let auth = format!("Bearer {}", String::from_utf8_lossy(&key.stdout).trim());
    let serve = Serve::start(hcc, home.path(), &sim);
    let link = || {
        let path = "/api/v1/servers/srv-00001/console-link";
        let (status, body) = http(&serve.addr, "POST", path, Some("{}"), Some(&auth));
        assert_eq!(status, 201, "console-link: {body}");
        let link: serde_json::Value = serde_json::from_str(&body).expect("link JSON");
        link["url"].as_str().expect("the link's url").to_string()
    };
    let pairs: Vec<[String; 2]> = (0..OPENS).map(|_| [link(), link()]).collect();
    let links = home.path().join("links.json");
    std::fs::write(&links, serde_json::to_string(&pairs).expect("JSON")).expect("links file");
    let out = Command::new("timeout")
        .arg("600")
        .arg("node")
        .arg(&driver)
        .arg("--links")
        .arg(&links)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    if report["ok"] != true {
        println!(
            "(console opens in Chromium failed: {} {})",
            report["error"].as_str().unwrap_or(&stdout),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return;
    }
    let log = std::fs::read_to_string(home.path().join("serve.log")).unwrap_or_default();
    if let Some(path) = std::env::var_os("HCC_BENCH_SERVE_LOG") {
        std::fs::write(path, &log).expect("write the serve log copy");
    }
    let mut times = [Vec::new(), Vec::new()];
    let mut connects = [Vec::new(), Vec::new()];
    let mut requests = [Vec::new(), Vec::new()];
    for (i, pair) in report["opens"].as_array().into_iter().flatten().enumerate() {
        for (n, which) in ["first", "second"].into_iter().enumerate() {
            let ms = |key: &str| pair[which][key].as_f64().map(|ms| ms.max(0.0) / 1000.0);
            times[n].extend(ms("ms").map(Duration::from_secs_f64));
            connects[n].extend(ms("connectMs").map(Duration::from_secs_f64));
            let until = if n == 0 { "second" } else { "end" };
            requests[n].push(requests_between(
                &log,
                &format!("/hcc-bench-marker-{i}-{which} "),
                &format!("/hcc-bench-marker-{i}-{until} "),
            ));
        }
    }
    println!(
        "| console open in Chromium (`hcc sim` console, broker mode), {} cores | n | p50 | p90 | max |",
        cores()
    );
    println!("|---|---|---|---|---|");
    let what = [
        "fresh browser context (empty cache)",
        "second open in the same context",
    ];
    for (label, samples) in [
        ("first framebuffer", &times),
        ("noVNC connected (ServerInit read)", &connects),
    ] {
        for n in (0..2).filter(|&n| !samples[n].is_empty()) {
            println!(
                "| link navigation -> {label}, {} | {} | {} | {} | {} |",
                what[n],
                samples[n].len(),
                ms(at(&samples[n], 0.5)),
                ms(at(&samples[n], 0.9)),
                ms(at(&samples[n], 1.0))
            );
        }
    }
    for n in 0..2 {
        let mut counts = requests[n].clone();
        counts.sort_unstable();
        let q = |f: f64| counts[((counts.len() - 1) as f64 * f).round() as usize];
        println!(
            "| requests at `hcc serve` per open (websocket included), {} | {} | {} | {} | {} |",
            what[n],
            counts.len(),
            q(0.5),
            q(0.9),
            q(1.0)
        );
    }
}

/// The request-log lines of `hcc serve` after the line naming `from` and
/// before the one naming `to`.
fn requests_between(log: &str, from: &str, to: &str) -> usize {
    log.lines()
        .skip_while(|l| !l.contains(from))
        .skip(1)
        .take_while(|l| !l.contains(to))
        .filter(|l| {
            // `hcc serve: REMOTE METHOD PATH STATUS N ms`
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() == 8
                && words[..2] == ["hcc", "serve:"]
                && words[7] == "ms"
                && words[5].parse::<u16>().is_ok()
        })
        .count()
}

/// `GET /metrics` of `hcc serve` on a table of 100,000 finished commands:
/// every scrape reads the database.
fn metrics(hcc: &str) {
    let sim = Sim::start(hcc, &["--servers", "1"]);
    let home = home();
    timed(hcc_cmd(hcc, home.path(), &["config", "show"])); // creates hcc.db
    let db = rusqlite::Connection::open(home.path().join("hcc.db")).expect("open hcc.db");
    db.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
         INSERT INTO commands (cmd, arg, state, created_at, started_at, finished_at)
         SELECT CASE i % 3 WHEN 0 THEN 'start' WHEN 1 THEN 'stop' ELSE 'console' END,
                'srv-' || i, CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'done' END,
                1700000000 + i, 1700000000 + i + i % 7, 1700000000 + i + i % 7 + i % 90
         FROM n",
    )
    .expect("fill the commands table");
    drop(db);
    let serve = Serve::start(hcc, home.path(), &sim);
    let samples = (0..50)
        .map(|_| {
            let start = Instant::now();
            let (status, body) = http(&serve.addr, "GET", "/metrics", None, None);
            assert!(
                status == 200 && body.contains("hcc_commands"),
                "{status} {body}"
            );
            start.elapsed()
        })
        .collect();
    println!("| measurement | n | median | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    row("`GET /metrics`, 100,000 finished commands", samples);
}

/// A state directory synced from a fresh `hcc sim` of 500 servers, an admin
/// key for it (`Bearer ...`), and `hcc serve` on it.
fn serve_500(hcc: &str) -> (Sim, tempfile::TempDir, String, Serve) {
    let sim = Sim::start(hcc, &["--servers", "500", "--action-ms", "0"]);
    let home = home();
    measured(hcc_cmd(hcc, home.path(), &["sync"]).envs(sim.env()));
    let key = hcc_cmd(
        hcc,
        home.path(),
        &["apikey", "add", "bench", "--scope", "admin"],
    )
    .output()
    .expect("hcc apikey add");
    assert!(key.status.success(), "apikey add: {key:?}");
    let auth = format!("Bearer {}", String::from_utf8_lossy(&key.stdout).trim());
    let serve = Serve::start(hcc, home.path(), &sim);
    (sim, home, auth, serve)
}

/// Room for a few thousand sockets in this process.
fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

/// A normal request's latency on an idle `hcc serve`, then while 1,000 idle
/// connections and 1,000 sending their head a byte at a time (all from
/// loopback, as through a proxy) are held.
fn serve_flood(hcc: &str) {
    raise_fd_limit();
    let (_sim, _home, auth, serve) = serve_500(hcc);
    let path = "/api/v1/servers/srv-00001";
    let sample = |n: usize| -> Vec<Duration> {
        (0..n)
            .map(|_| {
                let start = Instant::now();
                let (status, body) = http(&serve.addr, "GET", path, None, Some(&auth));
                assert_eq!(status, 200, "{body}");
                start.elapsed()
            })
            .collect()
    };
    let quiet = sample(200);
    let idle: Vec<std::net::TcpStream> = (0..1000)
        .map(|_| std::net::TcpStream::connect(&serve.addr).expect("connect"))
        .collect();
    let slow: Vec<std::net::TcpStream> = (0..1000)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&serve.addr).expect("connect");
            stream.write_all(b"G").expect("a first byte");
            stream
        })
        .collect();
    // Within the server's 10 s for a head: the flood is still held.
    let flooded = sample(200);
    let threads = proc_kb(serve.pid(), "Threads");
    let rss = proc_kb(serve.pid(), "VmRSS");
    drop((idle, slow));

    let goal = |samples: &[Duration]| {
        let p99 = at(samples, 0.99);
        let met = p99 < Duration::from_millis(100);
        format!("p99 < 100 ms: {}", if met { "met" } else { "**missed**" })
    };
    println!(
        "| `hcc serve` under a connection flood from loopback (500 servers) | n | p50 | p99 | max | goal |"
    );
    println!("|---|---|---|---|---|---|");
    for (what, samples) in [
        (
            "`GET {path}`, new connection each, nothing else held",
            &quiet,
        ),
        (
            "the same while 1,000 idle and 1,000 slow-header connections are held",
            &flooded,
        ),
    ] {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            what.replace("{path}", path),
            samples.len(),
            ms(at(samples, 0.5)),
            ms(at(samples, 0.99)),
            ms(at(samples, 1.0)),
            goal(samples),
        );
    }
    println!(
        "| threads / VmRSS of `hcc serve` holding the 2,000 connections | {threads} / {:.1} MB | | | | |",
        rss as f64 / 1024.0
    );
}

/// Peak memory of a fresh `hcc serve` under `wrk -t2 -c16 -d5s` on the
/// server list (500 servers).
fn serve_list_memory(hcc: &str) {
    println!(
        "| `hcc serve` memory under `wrk -t2 -c16 -d5s` on `GET /api/v1/servers` (500 servers) | value | goal |"
    );
    println!("|---|---|---|");
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("| wrk not installed | | |");
        return;
    }
    let (_sim, _home, auth, serve) = serve_500(hcc);
    let idle = proc_kb(serve.pid(), "VmRSS");
    let run = Command::new("wrk")
        .args(["-t2", "-c16", "-d5s", "--latency", "-H"])
        .arg(format!("Authorization: {auth}"))
        .arg(format!("http://{}/api/v1/servers", serve.addr))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .expect("run wrk");
    let w = Wrk::parse(&String::from_utf8_lossy(&run.stdout));
    let peak = proc_kb(serve.pid(), "VmHWM");
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!("| VmRSS before the load | {:.1} MB | |", mb(idle));
    println!(
        "| VmHWM (peak) after the load | {:.1} MB | < 20 MB: {} |",
        mb(peak),
        if mb(peak) < 20.0 { "met" } else { "**missed**" }
    );
    println!(
        "| requests/s, p99, errors | {:.0}, {:.2} ms, {} | |",
        w.rps, w.p99_ms, w.errors
    );
}

/// `hcc serve` against `hcc sim` (500 servers, instant actions): link
/// opens and console requests one by one, then `wrk` on the read routes.
fn serve(hcc: &str) {
    let sim = Sim::start(hcc, &["--servers", "500", "--action-ms", "0"]);
    let home = home();
    measured(hcc_cmd(hcc, home.path(), &["sync"]).envs(sim.env()));
    let key = hcc_cmd(
        hcc,
        home.path(),
        &["apikey", "add", "bench", "--scope", "admin"],
    )
    .output()
    .expect("hcc apikey add");
    assert!(key.status.success(), "apikey add: {key:?}");
    let key = String::from_utf8_lossy(&key.stdout).trim().to_string();
    let auth = format!("Bearer {key}");
    // Link opens hand out credentials here (the broker has its own rows).
    measured(&mut hcc_cmd(
        hcc,
        home.path(),
        &["config", "set", "console_mode", "direct"],
    ));
    let serve = Serve::start(hcc, home.path(), &sim);
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = proc_kb(serve.pid(), "VmRSS");

    // One Hetzner round trip for comparison: a server by id at the sim.
    let shown = http(
        &serve.addr,
        "GET",
        "/api/v1/servers/srv-00001",
        None,
        Some(&auth),
    );
    assert_eq!(shown.0, 200, "{}", shown.1);
    let json: serde_json::Value = serde_json::from_str(&shown.1).expect("server JSON");
    let id = json["server"]["id"].as_i64().expect("the server's id");
    let token = sim
        .env()
        .into_iter()
        .find(|(k, _)| k == "HCLOUD_TOKEN")
        .map(|(_, v)| format!("Bearer {v}"))
        .expect("HCLOUD_TOKEN");
    let round_trips: Vec<Duration> = (0..200)
        .map(|_| {
            let start = Instant::now();
            let (status, _) = http(
                &sim.addr,
                "GET",
                &format!("/v1/servers/{id}"),
                None,
                Some(&token),
            );
            assert_eq!(status, 200, "GET /v1/servers/{id} at the sim");
            start.elapsed()
        })
        .collect();
    let trip = at(&round_trips, 0.5);

    // Link open -> the page with the credentials, fully read.
    let mut opens = Vec::new();
    let mut open_requests = 0;
    for i in 0..200 {
        let server = format!("srv-{:05}", i % 500 + 1);
        let path = format!("/api/v1/servers/{server}/console-link");
        let (status, body) = http(&serve.addr, "POST", &path, Some("{}"), Some(&auth));
        assert_eq!(status, 201, "console-link: {body}");
        let link: serde_json::Value = serde_json::from_str(&body).expect("link JSON");
        let url = link["url"].as_str().expect("the link's url");
        let token = url.split("/c/").nth(1).expect("a /c/ link");
        let before = sim.requests();
        let start = Instant::now();
        let (status, page) = http(&serve.addr, "POST", &format!("/c/{token}"), None, None);
        opens.push(start.elapsed());
        open_requests += sim.requests() - before;
        assert_eq!(status, 200, "link open: {page}");
        assert!(page.contains("id=\"hcc-console\"") && page.contains("\"password\""));
    }
    // Direct credentials, as a panel with its own page asks for them.
    let mut directs = Vec::new();
    let before = sim.requests();
    for i in 0..200 {
        let path = format!("/api/v1/servers/srv-{:05}/console", i % 500 + 1);
        let start = Instant::now();
        let (status, body) = http(&serve.addr, "POST", &path, Some("{}"), Some(&auth));
        directs.push(start.elapsed());
        assert_eq!(status, 200, "console: {body}");
        assert!(body.contains("\"password\""));
    }
    let direct_requests = sim.requests() - before;
    let after_consoles_rss = proc_kb(serve.pid(), "VmRSS");

    let mut loads = Vec::new();
    let mut loaded_rss = Vec::new();
    let wrk_ok = Command::new("wrk").arg("--version").output().is_ok();
    if wrk_ok {
        for path in ["/api/v1/servers/srv-00001", "/api/v1/servers"] {
            let run = Command::new("wrk")
                .args(["-t2", "-c16", "-d10s", "--latency", "-H"])
                .arg(format!("Authorization: {auth}"))
                .arg(format!("http://{}{path}", serve.addr))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start wrk");
            std::thread::sleep(Duration::from_secs(5));
            loaded_rss.push((path, proc_kb(serve.pid(), "VmRSS")));
            let out = run.wait_with_output().expect("wrk");
            loads.push((path, Wrk::parse(&String::from_utf8_lossy(&out.stdout))));
        }
    }
    let peak_rss = proc_kb(serve.pid(), "VmHWM");
    drop(serve);

    let goal = trip.as_secs_f64() * 1000.0 + 100.0;
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    println!(
        "| `hcc serve` latency (sim, 500 servers, 0 ms actions) | n | p50 | p99 | max | goal |"
    );
    println!("|---|---|---|---|---|---|");
    let sorted = |mut v: Vec<Duration>| {
        v.sort();
        v
    };
    let round_trips = sorted(round_trips);
    println!(
        "| one sim round trip: `GET /v1/servers/{{id}}` (new connection) | {} | {} | {} | {} | (reference) |",
        round_trips.len(),
        ms(at(&round_trips, 0.5)),
        ms(at(&round_trips, 0.99)),
        ms(at(&round_trips, 1.0)),
    );
    for (what, samples, requests) in [
        (
            "link open: `POST /c/<token>` (direct mode) -> console page read",
            opens,
            open_requests,
        ),
        (
            "`POST /api/v1/servers/{name}/console` -> credentials",
            directs,
            direct_requests,
        ),
    ] {
        let what = format!(
            "{what} ({:.1} sim requests each)",
            requests as f64 / samples.len() as f64
        );
        let samples = sorted(samples);
        let p99 = at(&samples, 0.99);
        println!(
            "| {what} | {} | {} | {} | {} | p99 < 100 ms + round trip = {goal:.1} ms: {} |",
            samples.len(),
            ms(at(&samples, 0.5)),
            ms(p99),
            ms(at(&samples, 1.0)),
            verdict(p99.as_secs_f64() * 1000.0 < goal),
        );
    }
    println!();
    println!(
        "| `hcc serve` under `wrk -t2 -c16 -d10s` ({} cores, wrk on the same machine) | requests/s | p50 | p99 | max | errors | goal |",
        cores()
    );
    println!("|---|---|---|---|---|---|---|");
    if !wrk_ok {
        println!("| wrk not installed | | | | | | |");
    }
    for (path, w) in &loads {
        let goal = if path.ends_with("/servers") {
            "(none set)".to_string()
        } else {
            format!(
                ">= 50,000 req/s: {}; p99 < 10 ms: {}",
                verdict(w.rps >= 50_000.0),
                verdict(w.p99_ms < 10.0)
            )
        };
        println!(
            "| `GET {path}`{} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {goal} |",
            if path.ends_with("/servers") {
                " (500 servers)"
            } else {
                ""
            },
            w.rps,
            w.p50_ms,
            w.p99_ms,
            w.max_ms,
            w.errors,
        );
    }
    println!();
    println!("| `hcc serve` memory | value |");
    println!("|---|---|");
    println!(
        "| VmRSS idle after start | {:.1} MB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| VmRSS after 200 link opens + 200 console requests | {:.1} MB |",
        after_consoles_rss as f64 / 1024.0
    );
    for (path, rss) in loaded_rss {
        println!(
            "| VmRSS under wrk on `GET {path}` (sampled mid-run) | {:.1} MB |",
            rss as f64 / 1024.0
        );
    }
    println!(
        "| VmHWM (peak) after the load | {:.1} MB |",
        peak_rss as f64 / 1024.0
    );
}

/// What `wrk --latency` printed.
#[derive(Default)]
struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Non-2xx answers plus socket errors.
    errors: u64,
}

impl Wrk {
    fn parse(text: &str) -> Wrk {
        let mut w = Wrk::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["Requests/sec:", n] => w.rps = n.parse().unwrap_or(0.0),
                ["50%", t] => w.p50_ms = wrk_ms(t),
                ["99%", t] => w.p99_ms = wrk_ms(t),
                ["Latency", _avg, _stdev, max, ..] => w.max_ms = wrk_ms(max),
                ["Non-2xx", "or", "3xx", "responses:", n] => w.errors += n.parse().unwrap_or(0),
                ["Socket", "errors:", rest @ ..] => {
                    w.errors += rest
                        .iter()
                        .filter_map(|t| t.trim_end_matches(',').parse::<u64>().ok())
                        .sum::<u64>()
                }
                _ => {}
            }
        }
        w
    }
}

/// A wrk duration (`812.00us`, `1.23ms`, `2.00s`, `1.00m`) in ms.
fn wrk_ms(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let n: f64 = text[..split].parse().unwrap_or(f64::NAN);
    match &text[split..] {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn at(sorted_or_not: &[Duration], q: f64) -> Duration {
    let mut samples = sorted_or_not.to_vec();
    samples.sort();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

/// One request on a new connection (`Connection: close`): status and body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    auth: Option<&str>,
) -> (u16, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let body = body.unwrap_or("");
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut text = Vec::new();
    stream.read_to_end(&mut text).expect("read the answer");
    let text = String::from_utf8_lossy(&text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// `hcc serve` on an ephemeral loopback port, its log in the state
/// directory; stopped when dropped.
struct Serve {
    child: std::process::Child,
    addr: String,
}

impl Serve {
    fn start(hcc: &str, home: &Path, sim: &Sim) -> Serve {
        let log = home.join("serve.log");
        let child = hcc_cmd(hcc, home, &["serve", "--listen", "127.0.0.1:0"])
            .envs(sim.env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("serve log"))
            .spawn()
            .expect("start hcc serve");
        let mut serve = Serve {
            child,
            addr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while serve.addr.is_empty() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(|l| {
                l.split("listening on http://")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
            }) {
                serve.addr = addr.to_string();
            } else if Instant::now() > deadline || matches!(serve.child.try_wait(), Ok(Some(_))) {
                panic!("hcc serve did not start: {text}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        serve
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The worker's figures against `hcc sim` with instant actions.
fn worker(hcc: &str) {
    println!("| measurement | n | median | p99 | max | goal |");
    println!("|---|---|---|---|---|---|");
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
    let picked = spool_notify(home.path(), &db, 1000, "bench");
    let p99 = {
        let mut sorted = picked.clone();
        sorted.sort();
        at(&sorted, 0.99)
    };
    quantiles(
        "spool rename -> worker ran the command (notify)",
        picked,
        &format!(
            "p99 < 2 ms: {}",
            if p99 < Duration::from_millis(2) {
                "met"
            } else {
                "**missed**"
            }
        ),
    );

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
        "",
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

/// A row of n, median, p99 and max, and the goal it is held to (empty:
/// none).
fn quantiles(what: &str, mut samples: Vec<Duration>, goal: &str) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {what} | {} | {} | {} | {} | {goal} |",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0))
    );
}

/// Resident memory of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    proc_kb(pid, "VmRSS")
}

/// A `/proc/PID/status` figure (VmRSS, VmHWM), in kB.
fn proc_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The cloud figures against `hcc sim`.
fn cloud(hcc: &str) {
    println!("| measurement | wall | API requests | peak RSS |");
    println!("|---|---|---|---|");
    sync_at_latency(hcc);
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

/// `hcc sync` (default `sync_parallel`, 4 pages at once) against
/// `hcloud server list`, which reads page after page: 2,000 servers (40
/// pages of 50) at 50 ms latency, the median of 3 runs each, in one run of
/// the simulator.
fn sync_at_latency(hcc: &str) {
    const RUNS: usize = 3;
    let sim = Sim::start(
        hcc,
        &["--servers", "2000", "--action-ms", "0", "--latency", "50"],
    );
    let median = |mut runs: Vec<(Duration, u64, String)>| {
        runs.sort_by_key(|r| r.0);
        runs.swap_remove(RUNS / 2)
    };
    let hcc_runs = (0..RUNS)
        .map(|_| {
            let fresh = home();
            let before = sim.requests();
            let (wall, rss) = measured(hcc_cmd(hcc, fresh.path(), &["sync"]).envs(sim.env()));
            (wall, sim.requests() - before, rss)
        })
        .collect();
    let (hcc_wall, requests, rss) = median(hcc_runs);
    println!(
        "| `hcc sync`, 2,000 servers at 50 ms latency (sync_parallel 4) | {} | {requests} | {rss} |",
        ms(hcc_wall)
    );
    if Command::new("hcloud").arg("version").output().is_err() {
        println!(
            "| `hcloud server list -o json`, same 2,000 at 50 ms | hcloud not installed | | |"
        );
        return;
    }
    let cli_runs = (0..RUNS)
        .map(|_| {
            let mut cli = Command::new("hcloud");
            cli.args(["server", "list", "-o", "json"])
                .envs(sim.env())
                .env("HCLOUD_CONFIG", "/nonexistent/hcloud.toml");
            let before = sim.requests();
            let (wall, rss) = measured(&mut cli);
            (wall, sim.requests() - before, rss)
        })
        .collect();
    let (cli_wall, requests, rss) = median(cli_runs);
    println!(
        "| `hcloud server list -o json`, same 2,000 at 50 ms | {} | {requests} | {rss} |",
        ms(cli_wall)
    );
    println!(
        "| `hcc sync` / `hcloud server list`, 2,000 at 50 ms | {:.2}x (goal: at most 0.35x) | | |",
        hcc_wall.as_secs_f64() / cli_wall.as_secs_f64()
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

    /// The system the server's console shows (`GET /_sim/consoles/NAME`).
    fn console_system(&self, server: &str) -> String {
        let (_, body) = http(
            &self.addr,
            "GET",
            &format!("/_sim/consoles/{server}"),
            None,
            None,
        );
        serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()["system"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn requests(&self) -> u64 {
        self.stats()["requests"].as_u64().unwrap_or(0)
    }

    /// `GET /_sim/stats`.
    fn stats(&self) -> serde_json::Value {
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
        serde_json::from_str(body).unwrap_or_default()
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

/// A fresh state directory with the simulator's servers synced into it.
fn synced_home(hcc: &str, sim: &Sim) -> tempfile::TempDir {
    let home = home();
    let synced = hcc_cmd(hcc, home.path(), &["sync"])
        .envs(sim.env())
        .stdout(Stdio::null())
        .status()
        .expect("hcc sync");
    assert!(synced.success(), "hcc sync failed");
    home
}

/// `hcc worker` on `home` against `sim`, and a connection to its database.
fn start_worker(
    hcc: &str,
    home: &Path,
    sim: &Sim,
    cycle: &str,
) -> (std::process::Child, rusqlite::Connection) {
    let worker = hcc_cmd(hcc, home, &["worker", "--cycle", cycle])
        .envs(sim.env())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the worker");
    let db = rusqlite::Connection::open(home.join("hcc.db")).expect("open hcc.db");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    (worker, db)
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

/// The worker beside a full sync: 3,000 servers at 300 ms a request, so a
/// full listing takes about 18 s (61 requests). Measures (1) spool rename
/// -> the worker ran a `notify` (its message is in the ring), 1,000
/// commands, with no sync and then with a full sync in progress, and (2)
/// the stall: a `console` inserted into `commands` during the full sync ->
/// its row is `done` (two API requests, so at least 600 ms).
fn worker_sync(hcc: &str) {
    println!(
        "| worker beside a full sync (3,000 servers, 300 ms API latency) | n | median | p99 | max | goal |"
    );
    println!("|---|---|---|---|---|---|");
    let sim = Sim::start(
        hcc,
        &["--servers", "3000", "--latency", "300", "--action-ms", "0"],
    );
    let home = home();
    timed(hcc_cmd(hcc, home.path(), &["pull"]));
    let (mut worker, db) = start_worker(hcc, home.path(), &sim, "3600");
    std::thread::sleep(Duration::from_millis(500));

    let idle = spool_notify(home.path(), &db, 1000, "idle");
    quantiles(
        "spool rename -> worker ran `notify`, no sync running",
        idle,
        "",
    );

    let queued = Instant::now();
    let sync = start_sync(&db);
    let during = spool_notify(home.path(), &db, 1000, "busy");
    let overlapped = state(&db, sync) == "running";
    quantiles(
        if overlapped {
            "spool rename -> worker ran `notify`, full sync in progress"
        } else {
            "spool rename -> worker ran `notify`, full sync in progress (it ended before the last)"
        },
        during,
        "",
    );
    wait_state(&db, sync, "done", Duration::from_secs(300));
    let sync_took = queued.elapsed();

    // The stall: consoles queued one by one while a fresh full sync runs.
    let sync = start_sync(&db);
    let mut stalls = Vec::new();
    for i in 0..8 {
        std::thread::sleep(Duration::from_millis(1000));
        if state(&db, sync) != "running" {
            break;
        }
        db.execute(
            "INSERT INTO commands (cmd, arg) VALUES ('console', ?1)",
            [format!("srv-{:05}", i * 300 + 1)],
        )
        .expect("queue a console");
        let id = db.last_insert_rowid();
        stalls.push(wait_state(&db, id, "done", Duration::from_secs(120)));
    }
    quantiles(
        "the stall: `console` queued during a full sync -> done",
        stalls,
        "< 1 s",
    );
    let _ = wait_state(&db, sync, "done", Duration::from_secs(300));
    let _ = worker.kill();
    let _ = worker.wait();
    println!();
    println!("| worker sync figure | value |");
    println!("|---|---|");
    println!(
        "| full sync of 3,000 servers at 300 ms, queued to done, with 1,000 commands beside it | {} |",
        ms(sync_took)
    );
}

/// Queues a full `sync` and waits until the worker runs it; its id.
fn start_sync(db: &rusqlite::Connection) -> i64 {
    db.execute("INSERT INTO commands (cmd, arg) VALUES ('sync', '')", [])
        .expect("queue a sync");
    let id = db.last_insert_rowid();
    wait_state(db, id, "running", Duration::from_secs(60));
    id
}

fn state(db: &rusqlite::Connection, id: i64) -> String {
    db.query_row("SELECT state FROM commands WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .unwrap_or_default()
}

/// How long until command `id` is in `want` (at most `limit`).
fn wait_state(db: &rusqlite::Connection, id: i64, want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    while state(db, id) != want && start.elapsed() < limit {
        std::thread::sleep(Duration::from_micros(200));
    }
    start.elapsed()
}

/// `n` notify commands through the spool, one at a time: rename into
/// `spool/new` -> its message is in the ring.
fn spool_notify(home: &Path, db: &rusqlite::Connection, n: usize, tag: &str) -> Vec<Duration> {
    let mut took = Vec::new();
    for i in 0..n {
        let name = format!("{tag}{i}.bench");
        let tmp = home.join("spool/tmp").join(&name);
        std::fs::write(&tmp, format!("notify {tag}-{i}\n")).expect("spool file");
        let want = format!("{tag}-{i}");
        let start = Instant::now();
        std::fs::rename(&tmp, home.join("spool/new").join(&name)).expect("rename");
        loop {
            let seen: bool = db
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM messages WHERE msg = ?1)",
                    [&want],
                    |r| r.get(0),
                )
                .unwrap_or(false);
            if seen || start.elapsed() > Duration::from_secs(30) {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        took.push(start.elapsed());
    }
    took
}

/// The simulator's console over loopback: opening it (upgrade, RFB 3.8
/// handshake, VNC authentication), a full 640x400 update in Raw (1 MB at
/// 32 bpp), a key press to the update that shows it; then memory and
/// threads with 50 viewers connected.
fn sim_console(hcc: &str) {
    use tungstenite::Message;
    use tungstenite::client::IntoClientRequest;

    struct Viewer {
        ws: tungstenite::WebSocket<std::net::TcpStream>,
        buf: Vec<u8>,
    }
    impl Viewer {
        fn open(url: &str, password: &str) -> Viewer {
            let mut request = url.into_client_request().expect("console URL");
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
            let host = url
                .trim_start_matches("ws://")
                .split('/')
                .next()
                .unwrap()
                .to_string();
            let stream = std::net::TcpStream::connect(host).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (ws, _) = tungstenite::client(request, stream).expect("upgrade");
            let mut v = Viewer {
                ws,
                buf: Vec::new(),
            };
            v.read(12);
            v.write(b"RFB 003.008\n");
            let n = v.read(1)[0];
            v.read(usize::from(n));
            v.write(&[2]);
            let mut challenge = [0u8; 16];
            challenge.copy_from_slice(&v.read(16));
            v.write(&hcc::vnc_auth::response(password, &challenge));
            assert_eq!(v.read(4), [0, 0, 0, 0], "VNC authentication");
            v.write(&[1]);
            let init = v.read(24);
            let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
            v.read(name_len as usize);
            v
        }
        fn read(&mut self, n: usize) -> Vec<u8> {
            while self.buf.len() < n {
                if let Message::Binary(b) = self.ws.read().expect("read") {
                    self.buf.extend_from_slice(&b);
                }
            }
            self.buf.drain(..n).collect()
        }
        fn write(&mut self, bytes: &[u8]) {
            self.ws
                .send(Message::binary(bytes.to_vec()))
                .expect("write");
        }
        /// Asks for an update and reads it; its size in bytes.
        fn update(&mut self, incremental: bool) -> usize {
            self.write(&[3, u8::from(incremental), 0, 0, 0, 0, 2, 128, 1, 144]);
            let head = self.read(4);
            let mut total = 4;
            for _ in 0..u16::from_be_bytes([head[2], head[3]]) {
                let r = self.read(12);
                let w = usize::from(u16::from_be_bytes([r[4], r[5]]));
                let h = usize::from(u16::from_be_bytes([r[6], r[7]]));
                self.read(w * h * 4);
                total += 12 + w * h * 4;
            }
            total
        }
    }

    let sim = Sim::start(hcc, &["--servers", "1", "--rate-limit", "1000000/h"]);
    let env = sim.env();
    let token = env
        .iter()
        .find(|(k, _)| k == "HCLOUD_TOKEN")
        .map(|(_, v)| v.clone())
        .expect("token");
    let auth = format!("Bearer {token}");
    let (_, body) = http(&sim.addr, "GET", "/v1/servers", None, Some(&auth));
    let servers: serde_json::Value = serde_json::from_str(&body).expect("servers");
    let id = servers["servers"][0]["id"].as_u64().expect("a server");
    let console = || {
        let path = format!("/v1/servers/{id}/actions/request_console");
        let (_, body) = http(&sim.addr, "POST", &path, None, Some(&auth));
        let answer: serde_json::Value = serde_json::from_str(&body).expect("console");
        (
            answer["wss_url"].as_str().expect("wss_url").to_string(),
            answer["password"].as_str().expect("password").to_string(),
        )
    };

    println!("| `hcc sim` console (loopback) | n | median | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    let mut open = Vec::new();
    for _ in 0..50 {
        let (url, password) = console();
        let started = Instant::now();
        drop(Viewer::open(&url, &password));
        open.push(started.elapsed());
    }
    row(
        "console URL -> ServerInit (upgrade, 3.8 handshake, VNC auth)",
        open,
    );
    let (url, password) = console();
    let mut viewer = Viewer::open(&url, &password);
    let mut full = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        assert_eq!(viewer.update(false), 4 + 12 + 640 * 400 * 4);
        full.push(started.elapsed());
    }
    row(
        "full update 640x400 Raw 32 bpp (1 MB): request -> last byte",
        full,
    );
    let mut keys = Vec::new();
    for i in 0..200u32 {
        // A held incremental request, then a key: the update it brings.
        viewer.write(&[3, 1, 0, 0, 0, 0, 2, 128, 1, 144]);
        let started = Instant::now();
        let keysym = if i % 20 == 19 {
            0xff0d
        } else {
            u32::from(b'a')
        };
        let mut msg = vec![4, 1, 0, 0];
        msg.extend_from_slice(&keysym.to_be_bytes());
        viewer.write(&msg);
        let head = viewer.read(4);
        for _ in 0..u16::from_be_bytes([head[2], head[3]]) {
            let r = viewer.read(12);
            let w = usize::from(u16::from_be_bytes([r[4], r[5]]));
            let h = usize::from(u16::from_be_bytes([r[6], r[7]]));
            viewer.read(w * h * 4);
        }
        keys.push(started.elapsed());
    }
    row("key press -> the update showing it (held request)", keys);
    drop(viewer);

    let pid = sim.child.id();
    std::thread::sleep(Duration::from_millis(300));
    let before = proc_kb(pid, "VmRSS");
    let threads = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let threads_before = threads(pid);
    let mut viewers: Vec<Viewer> = (0..50)
        .map(|_| {
            let (url, password) = console();
            Viewer::open(&url, &password)
        })
        .collect();
    for v in &mut viewers {
        v.update(false);
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = proc_kb(pid, "VmRSS");
    println!();
    println!("| `hcc sim` console, 50 viewers connected (each sent a full update) | value |");
    println!("|---|---|");
    println!(
        "| VmRSS before / after | {:.1} MB / {:.1} MB |",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    println!(
        "| memory per viewer | {:.0} KB |",
        after.saturating_sub(before) as f64 / 50.0
    );
    println!(
        "| threads per viewer | {:.1} |",
        (threads(pid) - threads_before) as f64 / 50.0
    );
}
