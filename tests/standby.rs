//! A standby takes over from Litestream's replica (docs/operations.md, "A
//! standby with Litestream"; issue 23): the worker runs commands with
//! `wal_checkpoints = external` while Litestream replicates hcc.db to a
//! file replica; everything is killed with SIGKILL; `litestream restore`
//! makes a fresh state directory, and a worker started there finishes
//! every command acknowledged a replication interval before the kill, runs
//! again the ones that were running, and repeats none that was done.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::litestream::{self, Litestream};
use crate::test::{Env, Sim, Worker, eventually, threads_named};

/// Servers in the sim: each gets one `reboot`, so that the sim's actions
/// per server count the times a command was carried out. More than the
/// test queues on a busy machine, so that commands are still being
/// queued, and running, when everything is killed.
const SERVERS: usize = 400;

/// Commands queued before the moment T whose outcome the test checks.
const BEFORE: usize = 20;

fn server_name(n: usize) -> String {
    format!("srv-{n:05}")
}

/// How many reboots the sim carried out on server `name`.
fn reboots(sim: &Sim, name: &str) -> usize {
    let servers = sim.get(&format!("/servers?name={name}")).json();
    let id = servers["servers"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no server {name} in the sim: {servers}"));
    let actions = sim
        .get(&format!("/servers/{id}/actions?per_page=50"))
        .json();
    actions["actions"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|a| a["command"] == "reboot_server")
                .count()
        })
        .unwrap_or(0)
}

/// (id, state, attempts) of every command in `env`, by id.
fn commands(env: &Env) -> BTreeMap<i64, (String, String, i64)> {
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT id, arg, state, attempts FROM commands ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_standby_restored_from_litestream_finishes_what_was_acknowledged_and_repeats_nothing_done() {
    // Actions long enough that commands are still running at the kill.
    let sim = Sim::start(&["--servers", &SERVERS.to_string(), "--action-ms", "1500"]);
    let env = Env::new();
    env.ok(&["config", "set", "wal_checkpoints", "external"]);
    let Some(mut replication) = Litestream::start(&env) else {
        return;
    };
    let worker = Worker::start(&env, &sim, "3600");
    // The worker leaves checkpoints to Litestream: no thread of its own.
    let started = eventually(Duration::from_secs(30), || worker.log().contains("started"));
    assert!(started, "{}", worker.log());
    assert!(
        worker.log().contains("WAL checkpoints left to Litestream"),
        "{}",
        worker.log()
    );
    assert_eq!(threads_named(worker.pid(), "hcc-checkpoint"), 0);

    // Commands queued steadily, ten a second; T is after the first BEFORE.
    let pushed = std::sync::Mutex::new(Vec::new());
    let push = |n: usize| {
        let id = env.push_id(&["reboot", &server_name(n)]);
        pushed.lock().unwrap().push(id);
        std::thread::sleep(Duration::from_millis(100));
    };
    (1..=BEFORE).for_each(push);
    let acknowledged: Vec<i64> = pushed.lock().unwrap().clone();
    let done_at_t: Vec<i64> = acknowledged
        .iter()
        .copied()
        .filter(|&id| env.command_state(id) == "done")
        .collect();
    let t = Instant::now();

    // Queuing goes on while replication catches up, and up to the kill.
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in BEFORE + 1..=SERVERS {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                push(n);
            }
        });
        // At least twice the replication interval; then, since this
        // machine may be busy with other tests, until a restore holds
        // everything acknowledged before T (Litestream's lag is measured
        // by the bench's `standby` section, not asserted here).
        std::thread::sleep(2 * (litestream::MONITOR + litestream::SYNC));
        let probe = tempfile::tempdir().unwrap();
        let mut round = 0;
        let caught_up = eventually(Duration::from_secs(30), || {
            round += 1;
            let out = probe.path().join(format!("probe{round}.db"));
            replication.restore(&out);
            let db = rusqlite::Connection::open(&out).unwrap();
            let max: i64 = db
                .query_row("SELECT coalesce(max(id), 0) FROM commands", [], |r| {
                    r.get(0)
                })
                .unwrap();
            max >= *acknowledged.last().unwrap()
        });
        assert!(
            caught_up,
            "the replica never caught up: {}",
            replication.log()
        );
        eprintln!(
            "standby: the replica held every command acknowledged at T after {} ms",
            t.elapsed().as_millis()
        );
        stop.store(true, Ordering::SeqCst);
        // Everything dies at once, as a machine does.
        replication.kill();
        drop(worker);
    });
    let before_kill = commands(&env);

    // The standby: a fresh state directory from the replica, plus
    // config.json, which Litestream does not replicate.
    let restored = tempfile::tempdir().unwrap();
    replication.restore(&restored.path().join("hcc.db"));
    std::fs::copy(env.path("config.json"), restored.path().join("config.json")).unwrap();
    let standby = Env::copied(restored.path());
    let at_restore = commands(&standby);
    let running_at_restore: Vec<i64> = at_restore
        .iter()
        .filter(|(_, (_, state, _))| state == "running")
        .map(|(id, _)| *id)
        .collect();
    let new_worker = Worker::start(&standby, &sim, "3600");
    standby.settle(Duration::from_secs(60));
    let after = commands(&standby);
    drop(new_worker);

    // Everything acknowledged before T is there and done.
    for id in &acknowledged {
        let (arg, state, _) = after
            .get(id)
            .unwrap_or_else(|| panic!("command {id}, acknowledged before T, was lost"));
        assert_eq!(state, "done", "command {id} ({arg})");
    }
    // Whatever the replica held ends done; nothing appears twice.
    let mut per_server = BTreeMap::new();
    for (id, (arg, state, _)) in &after {
        assert_eq!(state, "done", "command {id} ({arg})");
        *per_server.entry(arg.clone()).or_insert(0) += 1;
    }
    for (arg, count) in &per_server {
        assert_eq!(*count, 1, "`reboot {arg}` has {count} rows");
    }
    // Commands running at the kill ran again, from a new lease.
    assert!(
        !running_at_restore.is_empty(),
        "no command was running in the replica; states: {at_restore:?}"
    );
    for id in &running_at_restore {
        assert!(after[id].2 >= 2, "command {id} was not leased again");
    }
    // A command done before T was not carried out again.
    for id in &done_at_t {
        let arg = &before_kill[id].0;
        assert_eq!(reboots(&sim, arg), 1, "command {id} (reboot {arg})");
    }
    assert!(!done_at_t.is_empty(), "no command was done at T");
    eprintln!(
        "standby: {} acknowledged at T ({} done), {} in the replica ({} running, run again), {} queued in all",
        acknowledged.len(),
        done_at_t.len(),
        after.len(),
        running_at_restore.len(),
        before_kill.len()
    );
}

/// docs/litestream.yml, as printed, is a configuration Litestream accepts:
/// hcc.db with a file replica.
#[test]
fn the_documented_litestream_configuration_is_one_litestream_reads() {
    if !crate::test::require_program("litestream") {
        return;
    }
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/litestream.yml");
    let run = std::process::Command::new("litestream")
        .args(["databases", "-config"])
        .arg(&config)
        .output()
        .expect("run litestream databases");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().eq(["/var/lib/hcc/hcc.db", "file"])),
        "{stdout}"
    );
}
