//! A short soak of the worker's queue: commands queued at ~3.6/s for 20
//! servers (a third of them for one hot server) against the simulator's
//! 3,600/h bucket with 8% injected faults, for `HCC_BENCH_FLOOD_SECS`
//! seconds (default 60). Prints the backlog when the flood ends, the wait
//! from queued to started (p50, p99, max; a command still queued counts
//! its age so far), and what it cost at Hetzner.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Sim, hcc_cmd, synced_home};

pub fn run(hcc: &str) {
    let secs: u64 = std::env::var("HCC_BENCH_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let sim = Sim::start(
        hcc,
        &[
            "--servers",
            "20",
            "--action-ms",
            "500",
            "--rate-limit",
            "3600/h",
            "--fail",
            "429:0.02,500:0.03,502:0.01,reset:0.02",
            "--seed",
            "22",
        ],
    );
    let home = synced_home(hcc, &sim);
    let mut worker = hcc_cmd(hcc, home.path(), &["worker", "--cycle", "60"])
        .envs(sim.env())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the worker");
    let db = rusqlite::Connection::open(home.path().join("hcc.db")).expect("open hcc.db");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let requests_before = sim.requests();
    let mut rng = fastrand::Rng::with_seed(22);
    let began = Instant::now();
    let every = Duration::from_secs_f64(1.0 / 3.6);
    let mut queued = 0;
    while began.elapsed() < Duration::from_secs(secs) {
        let server = if rng.u32(0..3) == 0 {
            "srv-00001".to_string()
        } else {
            format!("srv-{:05}", rng.u32(1..=20))
        };
        let (cmd, arg) = match rng.u32(0..20) {
            0..=1 => ("sync", String::new()),
            2..=3 => ("sync", server),
            4..=8 => ("console", server),
            9..=10 => ("notify", format!("flood {queued}")),
            n => (["start", "stop", "reboot"][n as usize % 3], server),
        };
        db.execute(
            "INSERT INTO commands (cmd, arg) VALUES (?1, ?2)",
            rusqlite::params![cmd, arg],
        )
        .expect("queue a command");
        queued += 1;
        std::thread::sleep(every);
    }
    let spent = sim.requests() - requests_before;
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    let open = count("SELECT count(*) FROM commands WHERE state IN ('queued', 'running')");
    let syncs =
        count("SELECT count(*) FROM commands WHERE state = 'queued' AND cmd = 'sync' AND arg = ''");
    let consoles =
        count("SELECT count(*) FROM commands WHERE state = 'queued' AND cmd = 'console'");
    // -1 on a schema without the column (an hcc from before it).
    let merged = count("SELECT count(*) FROM commands WHERE merged_into IS NOT NULL");
    let mut waits: Vec<i64> = {
        let mut stmt = db
            .prepare(
                "SELECT coalesce(started_at, CAST(strftime('%s', 'now') AS INTEGER)) - created_at
                 FROM commands",
            )
            .expect("read waits");
        stmt.query_map([], |r| r.get(0))
            .expect("read waits")
            .map(|r| r.expect("a wait"))
            .collect()
    };
    waits.sort();
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    let _ = worker.kill();
    let _ = worker.wait();
    println!("| queue flood ({secs} s at 3.6/s, 20 servers, 3,600/h, 8% faults) | value |");
    println!("|---|---|");
    println!("| commands queued | {queued} |");
    println!("| still open when the flood ended | {open} |");
    println!("| of them full `sync`s / `console`s still queued | {syncs} / {consoles} |");
    println!("| commands merged into another's run | {merged} |");
    println!(
        "| wait, queued to started: p50 / p99 / max | {} s / {} s / {} s |",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    println!("| Hetzner requests during the flood | {spent} |");
}
