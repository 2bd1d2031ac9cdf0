//! `bench HCC backup`: `hcc backup` of a large state directory (10,000
//! servers synced from the simulator, 100,000 commands, most of them done
//! with their results) while the worker runs: how long a backup takes, and
//! what it does to the wake-up path a panel waits on (spool rename ->
//! the worker ran the command), measured without a backup and while
//! backups run back to back.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Sim, hcc_cmd, quantiles, synced_home};

const SERVERS: &str = "10000";
const COMMANDS: usize = 100_000;
/// Renames measured each way.
const RENAMES: usize = 400;

pub fn run(hcc: &str) {
    let sim = Sim::start(hcc, &["--servers", SERVERS, "--action-ms", "0"]);
    let home = synced_home(hcc, &sim);
    let db_path = home.path().join("hcc.db");
    fill(&db_path);
    let size = std::fs::metadata(&db_path).map(|m| m.len()).unwrap_or(0);
    let (mut worker, db) = super::start_worker(hcc, home.path(), &sim, "3600");
    std::thread::sleep(Duration::from_millis(500));

    let quiet = super::spool_notify(home.path(), &db, RENAMES, "quiet");
    let running = AtomicBool::new(true);
    let copies = home
        .path()
        .join("..")
        .join(format!("hcc-bench-backup-{}.db", std::process::id()));
    let (during, backups) = std::thread::scope(|s| {
        let backups = s.spawn(|| {
            let mut took = Vec::new();
            while running.load(Ordering::Relaxed) {
                let start = Instant::now();
                let status = hcc_cmd(
                    hcc,
                    home.path(),
                    &["backup", "--force", copies.to_str().expect("a UTF-8 path")],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run hcc backup");
                assert!(status.success(), "hcc backup failed");
                took.push(start.elapsed());
            }
            took
        });
        // Let the first backup get under way.
        std::thread::sleep(Duration::from_millis(200));
        let during = super::spool_notify(home.path(), &db, RENAMES, "during");
        running.store(false, Ordering::Relaxed);
        (during, backups.join().expect("the backups"))
    });
    let copy_ok: String = rusqlite::Connection::open(&copies)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .unwrap_or_else(|e| e.to_string());
    let _ = std::fs::remove_file(&copies);
    let _ = worker.kill();
    let _ = worker.wait();

    println!(
        "| `hcc backup` of {SERVERS} servers and {COMMANDS} commands ({:.0} MiB), worker running | n | median | p99 | max | goal |",
        size as f64 / (1024.0 * 1024.0)
    );
    println!("|---|---|---|---|---|---|");
    quantiles(
        &format!("one backup, start to renamed into place (copy: integrity {copy_ok})"),
        backups,
        "",
    );
    let (p50, p99) = (super::at(&quiet, 0.5), super::at(&quiet, 0.99));
    let (during_p50, during_p99) = (super::at(&during, 0.5), super::at(&during, 0.99));
    quantiles(
        "spool rename -> worker ran the command, no backup",
        quiet,
        "",
    );
    quantiles(
        "spool rename -> worker ran the command, backups running",
        during,
        &format!(
            "the backup's cost: median {:+.2} ms, p99 {:+.2} ms",
            (during_p50.as_secs_f64() - p50.as_secs_f64()) * 1000.0,
            (during_p99.as_secs_f64() - p99.as_secs_f64()) * 1000.0
        ),
    );
}

/// 100,000 commands as years of use leave them: done, with results, and a
/// few failed, spread over the servers.
fn fill(db_path: &std::path::Path) {
    let mut db = rusqlite::Connection::open(db_path).expect("open hcc.db");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let tx = db.transaction().expect("a transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO commands (cmd, arg, state, attempts, result, error,
                                       started_at, finished_at)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?6)",
            )
            .expect("prepare");
        let verbs = ["reboot", "start", "stop", "console", "sync"];
        for i in 0..COMMANDS {
            let server = format!("srv-{:05}", i % 10_000 + 1);
            let failed = i % 50 == 0;
            insert
                .execute(rusqlite::params![
                    verbs[i % verbs.len()],
                    server,
                    if failed { "failed" } else { "done" },
                    (!failed).then(|| format!(
                        r#"{{"server_id": {}, "action": "reboot_server"}}"#,
                        i % 10_000 + 1
                    )),
                    failed.then_some("hetzner: 409 locked: server is locked"),
                    1_700_000_000 + i as i64,
                ])
                .expect("insert a command");
        }
    }
    tx.commit().expect("commit");
}
