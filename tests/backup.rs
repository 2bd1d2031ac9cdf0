//! `hcc backup`, `hcc restore` and `hcc check` (issue 23): a consistent
//! copy while the worker and a panel write, no name followed, every bad
//! file refused before anything changes, the replaced database kept, the
//! invariants checked.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::serve::Serve;
use crate::test::{Env, Sim, Worker, eventually};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// The names in the state directory that look like leftovers.
fn temporaries(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.contains(".tmp-"))
        .collect()
}

fn open(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn integrity(path: &Path) -> String {
    open(path)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// A finished command per row, each with 4 KB of result: a database of
/// some 20 MB, copied in several slices.
fn fill(env: &Env, rows: usize) {
    let mut db = env.db();
    let tx = db.transaction().unwrap();
    let result = format!("\"{}\"", "r".repeat(4000));
    for _ in 0..rows {
        tx.execute(
            "INSERT INTO commands (cmd, arg, state, result) VALUES ('notify', 'old', 'done', ?1)",
            [&result],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn a_backup_under_load_is_a_consistent_prefix() {
    let sim = Sim::start(&["--servers", "3", "--action-ms", "20"]);
    let env = Env::new();
    fill(&env, 5000);
    let worker = Worker::start(&env, &sim, "3600");
    // A panel inserting commands one by one, as fast as it can; the worker
    // runs them meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicI64::new(0));
    let writer = {
        let (stop, inserted, db) = (stop.clone(), inserted.clone(), env.path("hcc.db"));
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(db).unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            while !stop.load(Ordering::SeqCst) {
                let n = inserted.load(Ordering::SeqCst) + 1;
                conn.execute(
                    "INSERT INTO commands (cmd, arg) VALUES ('notify', ?1)",
                    [format!("panel {n}")],
                )
                .unwrap();
                inserted.store(n, Ordering::SeqCst);
            }
        })
    };
    assert!(eventually(Duration::from_secs(10), || inserted
        .load(Ordering::SeqCst)
        > 50));
    let mut copies = Vec::new();
    for round in 0..3 {
        let file = env.path(&format!("copy-{round}.db"));
        let before = inserted.load(Ordering::SeqCst);
        let started = Instant::now();
        let out = env.ok(&["backup", file.to_str().unwrap(), "--json"]);
        let took = started.elapsed();
        let after = inserted.load(Ordering::SeqCst);
        let report: Value = serde_json::from_str(&out).unwrap();
        assert!(report["pages"].as_u64().unwrap() > 4000, "{report}");
        eprintln!(
            "backup {round}: {} pages in {took:?}; the panel inserted {} rows meanwhile",
            report["pages"],
            after - before
        );
        copies.push((file, before, after));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    for (file, before, after) in copies {
        assert_eq!(mode(&file), 0o600);
        assert_eq!(integrity(&file), "ok");
        let db = open(&file);
        // Every panel row up to some n, and none after it: one commit's
        // state, not rows from different moments.
        let args: Vec<String> = db
            .prepare("SELECT arg FROM commands WHERE arg LIKE 'panel %' ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let n = args.len() as i64;
        assert!(n >= before && n <= after, "{n} rows, {before}..{after}");
        for (i, arg) in args.iter().enumerate() {
            assert_eq!(arg, &format!("panel {}", i + 1));
        }
        let old: i64 = db
            .query_row("SELECT count(*) FROM commands WHERE arg = 'old'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(old, 5000);
        // A command the worker closed in the copy has its message in it:
        // both were one commit.
        let done: i64 = db
            .query_row(
                "SELECT count(*) FROM commands WHERE state = 'done' AND arg LIKE 'panel %'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(done <= n);
    }
    assert!(temporaries(&env).is_empty(), "{:?}", temporaries(&env));
    drop(worker);
}

#[test]
fn a_backup_replaces_nothing_without_force_and_follows_no_link() {
    let env = Env::new();
    let file = env.path("b.db");
    std::fs::write(&file, b"precious").unwrap();
    env.run(&["backup", file.to_str().unwrap()]).fails(
        2,
        &format!(
            "hcc: `{}` exists: hcc replaces it only with --force",
            file.display()
        ),
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    let out = env.ok(&["backup", file.to_str().unwrap(), "--force"]);
    assert!(out.starts_with("backed up "), "{out}");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(integrity(&file), "ok");

    // A link planted at FILE: refused, then replaced, never written
    // through.
    let victim = env.path("victim");
    std::fs::write(&victim, b"keep").unwrap();
    let link = env.path("l.db");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    assert_eq!(env.run(&["backup", link.to_str().unwrap()]).code, 2);
    env.ok(&["backup", link.to_str().unwrap(), "--force"]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
    assert_eq!(mode(&link), 0o600);

    // A directory that is no file name.
    assert_eq!(env.run(&["backup", "/"]).code, 2);
    // The live database itself, however named.
    let live = env.home().join(".").join("hcc.db");
    env.run(&["backup", "--force", live.to_str().unwrap()])
        .fails(
            2,
            &format!(
                "hcc: `{}` is the live database or its journal: back up to another name",
                live.display()
            ),
        );
    assert!(temporaries(&env).is_empty(), "{:?}", temporaries(&env));
}

#[test]
fn restore_refuses_what_is_not_a_sound_hcc_database() {
    let env = Env::new();
    let good = env.path("good.db");
    fill(&env, 200);
    env.ok(&["backup", good.to_str().unwrap()]);
    let before = std::fs::read(env.path("hcc.db")).unwrap();
    let refused = |file: &Path, why: &str| {
        let run = env.run(&["restore", file.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(why), "{why}: {run:?}");
        assert!(!run.stderr.trim_end().contains('\n'), "{run:?}");
    };

    let other = env.path("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x)")
        .unwrap();
    refused(
        &other,
        "it is not an hcc database: it has no `commands` table",
    );

    let foreign = env.path("foreign.db");
    std::fs::copy(&good, &foreign).unwrap();
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .pragma_update(None, "application_id", 42)
        .unwrap();
    refused(&foreign, "its application id is 42");

    let text = env.path("text.db");
    std::fs::write(&text, vec![b'x'; 8192]).unwrap();
    refused(&text, "it is not an SQLite database hcc can read");

    let corrupt = env.path("corrupt.db");
    let mut bytes = std::fs::read(&good).unwrap();
    for b in &mut bytes[4096 * 5..4096 * 7] {
        *b = 0xa5;
    }
    std::fs::write(&corrupt, bytes).unwrap();
    refused(
        &corrupt,
        &format!("refusing to restore `{}`: it ", corrupt.display()),
    );

    let newer = env.path("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    refused(&newer, "has schema version 99, this hcc knows up to");

    env.run(&["restore", env.path("missing.db").to_str().unwrap()])
        .fails_around(
            1,
            "hcc: cannot read `",
            "No such file or directory (os error 2)",
        );
    // Nothing changed, nothing kept, nothing left behind.
    assert_eq!(std::fs::read(env.path("hcc.db")).unwrap(), before);
    let kept: Vec<_> = std::fs::read_dir(env.home())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with("hcc.db.replaced").then_some(name)
        })
        .collect();
    assert!(kept.is_empty(), "{kept:?}");
    assert!(temporaries(&env).is_empty(), "{:?}", temporaries(&env));
}

#[test]
fn restore_waits_for_no_worker_or_server() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    let good = env.path("good.db");
    env.ok(&["backup", good.to_str().unwrap()]);
    let mut worker = Worker::start(&env, &sim, "3600");
    assert!(eventually(Duration::from_secs(10), || env
        .run(&["status"])
        .code
        == 0));
    env.run(&["restore", good.to_str().unwrap()]).fails_around(
        4,
        "hcc: worker already running (pid ",
        "): stop it before restoring",
    );
    worker.stop();
    let mut serve = Serve::start(&env, &sim, &[]);
    env.run(&["restore", good.to_str().unwrap()]).fails(
        4,
        "hcc: hcc serve runs on this state directory: stop it first",
    );
    serve.stop();
    env.ok(&["restore", good.to_str().unwrap()]);
}

fn server_names(env: &Env, sim: &Sim) -> Vec<String> {
    let out = env
        .cmd(&["list", "--json"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut names: Vec<String> = list
        .as_array()
        .or_else(|| list["servers"].as_array())
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn restore_brings_the_state_back_and_keeps_the_replaced_one() {
    let sim = Sim::start(&["--servers", "3"]);
    let env = Env::new();
    let sync = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    assert!(sync.status.success(), "{sync:?}");
    let all = server_names(&env, &sim);
    assert_eq!(all.len(), 3, "{all:?}");
    let good = env.path("good.db");
    env.ok(&["backup", good.to_str().unwrap()]);

    // Later: servers gone from the table, a command queued.
    let panel = env.db();
    panel.execute("DELETE FROM servers", []).unwrap();
    env.push_id(&["notify", "after the backup"]);
    assert!(server_names(&env, &sim).is_empty());

    let out = env.ok(&["restore", good.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let kept = Path::new(report["replaced"].as_str().unwrap()).to_path_buf();
    assert!(
        kept.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("hcc.db.replaced-"),
        "{report}"
    );
    assert_eq!(mode(&kept), 0o600);
    assert_eq!(server_names(&env, &sim), all);
    // The panel's connection, open throughout, reads the restored state.
    let count: i64 = panel
        .query_row("SELECT count(*) FROM servers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3);
    // The replaced database holds what was replaced.
    let old = open(&kept);
    let notes: i64 = old
        .query_row(
            "SELECT count(*) FROM commands WHERE arg = 'after the backup'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(notes, 1);
    assert_eq!(env.value::<i64>("SELECT count(*) FROM commands"), 0);
    env.ok(&["check"]);
    // Exit 1: no worker runs; the restored queue is read all the same.
    let status: Value = serde_json::from_str(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["queue"]["queued"], 0, "{status}");
    // The restore let go of serve.lock: no serve is reported.
    assert_eq!(status["serve_running"], false, "{status}");
    assert!(temporaries(&env).is_empty(), "{:?}", temporaries(&env));

    // A live database too damaged to copy is moved aside whole.
    drop(panel);
    std::fs::write(env.path("hcc.db"), vec![0x42u8; 8192]).unwrap();
    let out = env.ok(&["restore", good.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let kept = Path::new(report["replaced"].as_str().unwrap()).to_path_buf();
    assert_eq!(std::fs::read(&kept).unwrap(), vec![0x42u8; 8192]);
    assert_eq!(server_names(&env, &sim), all);
    env.ok(&["check"]);
}

#[test]
fn check_names_each_broken_invariant_and_exits_6() {
    let env = Env::new();
    let out = env.ok(&["check"]);
    assert!(
        out.ends_with(": ok (integrity, foreign keys, leases, merged commands, live sessions)\n"),
        "{out}"
    );
    let healthy: Value = serde_json::from_str(&env.ok(&["check", "--json"])).unwrap();
    assert_eq!(healthy, serde_json::json!({"ok": true, "problems": []}));

    env.db()
        .execute_batch(
            "INSERT INTO commands (id, cmd, arg, state) VALUES (7, 'start', 'web1', 'running');
             INSERT INTO commands (id, cmd, arg, merged_into) VALUES (8, 'stop', 'web2', 99);",
        )
        .unwrap();
    let run = env.run(&["check"]);
    assert_eq!(run.code, 6, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "running_without_lease: command 7 `start web1`: running without a lease (nothing will ever requeue it)\n\
             merged_into_missing: command 8 `stop web2`: merged into command 99, which does not exist\n\
             {}: 2 problems\n",
            env.path("hcc.db").display()
        )
    );
    let run = env.run(&["check", "--json"]);
    assert_eq!(run.code, 6, "{run:?}");
    let found: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(found["ok"], false);
    assert_eq!(found["problems"][1]["code"], "merged_into_missing");
}

#[test]
fn a_live_session_is_a_problem_only_while_no_server_runs() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    env.db()
        .execute_batch(
            "INSERT INTO console_sessions
                 (session_hash, server, server_id, started_at, last_seen_at, expires_at,
                  mode, connected_at)
             VALUES ('h', 'srv-00001', 1, 1, 1, 2, 'broker', 1);",
        )
        .unwrap();
    let run = env.run(&["check"]);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stdout.starts_with(
            "live_session_without_serve: console session 1 of `srv-00001`: recorded live, \
             but no hcc serve runs\n"
        ),
        "{run:?}"
    );
    // While one runs (it holds serve.lock), the session may well be live.
    let mut serve = Serve::start(&env, &sim, &[]);
    let run = env.run(&["check"]);
    assert_eq!(run.code, 0, "{run:?} {}", serve.log());
    serve.stop();
}

#[test]
fn a_link_planted_at_serve_lock_is_refused_not_followed() {
    let env = Env::new();
    let victim = env.path("victim");
    std::fs::write(&victim, b"keep").unwrap();
    let lock = env.path("serve.lock");
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let why = "it is a symbolic link";
    env.run(&["check"])
        .fails(2, &crate::test::refusing(&lock, why));
    let good = env.path("good.db");
    env.ok(&["backup", good.to_str().unwrap()]);
    env.run(&["restore", good.to_str().unwrap()])
        .fails(2, &crate::test::refusing(&lock, why));
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
}
