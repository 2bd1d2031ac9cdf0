//! A short soak of the worker's queue: commands queued at ~3.6/s for 20
//! servers (a third of them for one hot server) with 8% injected faults,
//! for `HCC_BENCH_FLOOD_SECS` seconds (default 60), against a rate bucket
//! scaled as a 10-minute soak meets Hetzner's 3,600/h: 6 requests per
//! second of flood (360/h for 60 s). Prints the backlog when the flood ends, the wait
//! from queued to started (p50, p99, max; a command still queued counts
//! its age so far), and what it cost at Hetzner.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Sim, hcc_cmd, synced_home};

/// A wait's p50, p99 and max, and how many commands it was taken over.
type Waits = (i64, i64, i64, usize);

/// What one flood left behind.
struct Flood {
    queued: usize,
    open: i64,
    syncs: i64,
    consoles: i64,
    merged: i64,
    waits: Vec<(&'static str, Waits)>,
    spent: u64,
    /// The most requested routes at the simulator during the flood.
    routes: String,
}

impl Flood {
    fn per_closed(&self) -> f64 {
        self.spent as f64 / (self.queued as i64 - self.open).max(1) as f64
    }
}

/// The flood on `hcc`'s worker, and, when `HCC_BENCH_BEFORE` names an
/// earlier hcc, the same flood on that one's worker at the same time
/// (each against a simulator of the current hcc, same seed), side by side.
pub fn run(hcc: &str) {
    let secs: u64 = std::env::var("HCC_BENCH_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let bucket = format!("{}/h", secs * 6);
    let before = std::env::var("HCC_BENCH_BEFORE").ok();
    let (now, then) = std::thread::scope(|s| {
        let then = before
            .as_deref()
            .map(|old| s.spawn(|| flood(hcc, old, secs, &bucket)));
        let now = flood(hcc, hcc, secs, &bucket);
        (
            now,
            then.map(|t| t.join().expect("the earlier hcc's flood")),
        )
    });
    let title = format!("queue flood ({secs} s at 3.6/s, 20 servers, {bucket}, 8% faults)");
    let Some(then) = then else {
        println!("| {title} | value |");
        println!("|---|---|");
        for (what, value) in rows(&now) {
            println!("| {what} | {value} |");
        }
        return;
    };
    println!("| {title} | before (`HCC_BENCH_BEFORE`) | now | goal |");
    println!("|---|---|---|---|");
    let goals = [
        (
            "still open when the flood ended",
            format!("<= {}", then.open / 2),
        ),
        (
            "wait, queued to started, all",
            format!("p99 <= {} s", then.waits[0].1.1 / 2),
        ),
        (
            "Hetzner requests during the flood",
            format!("per command closed < {:.2}", then.per_closed()),
        ),
    ];
    for ((what, old), (_, new)) in rows(&then).into_iter().zip(rows(&now)) {
        let goal = goals
            .iter()
            .find(|(g, _)| what.starts_with(g))
            .map(|(_, g)| g.as_str())
            .unwrap_or("");
        println!("| {what} | {old} | {new} | {goal} |");
    }
}

fn rows(f: &Flood) -> Vec<(String, String)> {
    let mut rows = vec![
        ("commands queued".to_string(), f.queued.to_string()),
        (
            "still open when the flood ended".to_string(),
            f.open.to_string(),
        ),
        (
            "of them full `sync`s / `console`s still queued".to_string(),
            format!("{} / {}", f.syncs, f.consoles),
        ),
        (
            "commands merged into another's run".to_string(),
            f.merged.to_string(),
        ),
    ];
    for (what, (p50, p99, max, _)) in &f.waits {
        rows.push((
            format!("wait, queued to started, {what}: p50 / p99 / max"),
            format!("{p50} s / {p99} s / {max} s"),
        ));
    }
    rows.push((
        "Hetzner requests during the flood, per command closed".to_string(),
        format!("{}, {:.2}", f.spent, f.per_closed()),
    ));
    rows.push(("the routes most asked".to_string(), f.routes.clone()));
    rows
}

/// One flood: `worker_hcc`'s worker against a simulator of `hcc`.
fn flood(hcc: &str, worker_hcc: &str, secs: u64, bucket: &str) -> Flood {
    let sim = Sim::start(
        hcc,
        &[
            "--servers",
            "20",
            "--action-ms",
            "500",
            "--rate-limit",
            bucket,
            "--fail",
            "429:0.02,500:0.03,502:0.01,reset:0.02",
            "--seed",
            "22",
        ],
    );
    let home = synced_home(worker_hcc, &sim);
    let (mut worker, db) = super::start_worker(worker_hcc, home.path(), &sim, "60");
    let routes_before = sim.stats()["by_route"].clone();
    let requests_before = sim.requests();
    let mut rng = fastrand::Rng::with_seed(22);
    let began = Instant::now();
    let every = Duration::from_secs_f64(1.0 / 3.6);
    let mut queued = 0;
    while began.elapsed() < Duration::from_secs(secs) {
        let (cmd, arg) = one_of_the_mix(&mut rng, queued);
        db.execute(
            "INSERT INTO commands (cmd, arg) VALUES (?1, ?2)",
            rusqlite::params![cmd, arg],
        )
        .expect("queue a command");
        queued += 1;
        // On schedule, not after it: the two floods of a side-by-side
        // run queue at the same pace whatever their inserts cost.
        let next = every * queued as u32;
        std::thread::sleep(next.saturating_sub(began.elapsed()));
    }
    let spent = sim.requests() - requests_before;
    let routes = top_routes(&routes_before, &sim.stats()["by_route"]);
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    let open = count("SELECT count(*) FROM commands WHERE state IN ('queued', 'running')");
    let syncs =
        count("SELECT count(*) FROM commands WHERE state = 'queued' AND cmd = 'sync' AND arg = ''");
    let consoles =
        count("SELECT count(*) FROM commands WHERE state = 'queued' AND cmd = 'console'");
    // -1 on a schema without the column (an hcc from before it).
    let merged = count("SELECT count(*) FROM commands WHERE merged_into IS NOT NULL");
    // Waits (queued to started; a command still queued counts its age so
    // far): all, the hot server's, the other servers', commands about none.
    let waits = |filter: &str| -> Waits {
        let mut stmt = db
            .prepare(&format!(
                "SELECT coalesce(started_at, CAST(strftime('%s', 'now') AS INTEGER)) - created_at
                 FROM commands WHERE {filter}"
            ))
            .expect("read waits");
        let mut waits: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .expect("read waits")
            .map(|r| r.expect("a wait"))
            .collect();
        waits.sort();
        if waits.is_empty() {
            return (0, 0, 0, 0);
        }
        let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.99), at(1.0), waits.len())
    };
    let waits = vec![
        ("all", waits("1")),
        ("the hot server", waits("arg = 'srv-00001'")),
        (
            "the 19 others",
            waits("arg LIKE 'srv-%' AND arg != 'srv-00001'"),
        ),
        ("about no server", waits("arg NOT LIKE 'srv-%'")),
    ];
    let _ = worker.kill();
    let _ = worker.wait();
    Flood {
        queued,
        open,
        syncs,
        consoles,
        merged,
        waits,
        spent,
        routes,
    }
}

/// The four routes the simulator answered most between two `by_route`
/// counts, as `route count`.
fn top_routes(before: &serde_json::Value, after: &serde_json::Value) -> String {
    let mut routes: Vec<(String, u64)> = after
        .as_object()
        .into_iter()
        .flatten()
        .map(|(route, n)| {
            let was = before[route.as_str()].as_u64().unwrap_or(0);
            (route.clone(), n.as_u64().unwrap_or(0).saturating_sub(was))
        })
        .collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    routes
        .iter()
        .take(4)
        .map(|(route, n)| format!("`{route}` {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One command of the flood's mix: a third for the hot server.
fn one_of_the_mix(rng: &mut fastrand::Rng, n: usize) -> (&'static str, String) {
    let server = if rng.u32(0..3) == 0 {
        "srv-00001".to_string()
    } else {
        format!("srv-{:05}", rng.u32(1..=20))
    };
    match rng.u32(0..20) {
        0..=1 => ("sync", String::new()),
        2..=3 => ("sync", server),
        4..=8 => ("console", server),
        9..=10 => ("notify", format!("flood {n}")),
        n => (["start", "stop", "reboot"][n as usize % 3], server),
    }
}

/// A backlog drained: `n` commands of the flood's mix queued while no
/// worker runs (as after an outage), then one worker started on Hetzner's
/// full 3,600/h bucket, with the same faults: how long until none is open,
/// the requests it took, and how long the first command of the last
/// server to get one waited.
pub fn drain(hcc: &str) {
    let n = 300;
    let sim = Sim::start(
        hcc,
        &[
            "--servers",
            "20",
            "--action-ms",
            "100",
            "--fail",
            "429:0.02,500:0.03,502:0.01,reset:0.02",
            "--seed",
            "22",
        ],
    );
    let home = synced_home(hcc, &sim);
    let db = rusqlite::Connection::open(home.path().join("hcc.db")).expect("open hcc.db");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mut rng = fastrand::Rng::with_seed(22);
    for i in 0..n {
        let (cmd, arg) = one_of_the_mix(&mut rng, i);
        db.execute(
            "INSERT INTO commands (cmd, arg) VALUES (?1, ?2)",
            rusqlite::params![cmd, arg],
        )
        .expect("queue a command");
    }
    let requests_before = sim.requests();
    let began = Instant::now();
    let mut worker = hcc_cmd(hcc, home.path(), &["worker", "--cycle", "3600"])
        .envs(sim.env())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the worker");
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    while count("SELECT count(*) FROM commands WHERE state IN ('queued', 'running')") > 0
        && began.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = began.elapsed();
    let spent = sim.requests() - requests_before;
    let _ = worker.kill();
    let _ = worker.wait();
    let open = count("SELECT count(*) FROM commands WHERE state IN ('queued', 'running')");
    let merged = count("SELECT count(*) FROM commands WHERE merged_into IS NOT NULL");
    let first_start = count(
        "SELECT max(first) - min(first) FROM (SELECT min(started_at) AS first FROM commands
         WHERE arg LIKE 'srv-%' GROUP BY arg)",
    );
    println!("| backlog of {n} commands (20 servers, 3,600/h, 8% faults) | value |");
    println!("|---|---|");
    println!(
        "| drained in | {:.1} s{} |",
        took.as_secs_f64(),
        if open > 0 {
            format!(" ({open} still open)")
        } else {
            String::new()
        }
    );
    println!("| Hetzner requests | {spent} |");
    println!("| commands merged into another's run | {merged} |");
    println!("| the last server's first start, after the first server's | {first_start} s |");
}
