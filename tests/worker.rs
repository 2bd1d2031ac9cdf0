//! `hcc worker` against `hcc sim`: every verb through every route of the
//! queue, ordering, faults, kill -9, a second worker, a clean stop.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::test::{Env, Sim, Worker, eventually};

fn insert(env: &Env, cmd: &str, arg: &str) -> i64 {
    let db = env.db();
    db.execute(
        "INSERT INTO commands (cmd, arg) VALUES (?1, ?2)",
        [cmd, arg],
    )
    .unwrap();
    db.last_insert_rowid()
}

/// (state, result, error) of every command, by id.
fn commands(env: &Env) -> BTreeMap<i64, (String, Option<String>, Option<String>)> {
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT id, state, result, error FROM commands")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The sim's servers called `name`, asked until an answer gets through
/// the sim's own fault injection.
fn sim_servers(sim: &Sim, name: &str) -> Vec<Value> {
    for _ in 0..50 {
        if let Ok(answer) = crate::test::http(
            &sim.addr,
            "GET",
            &format!("/v1/servers?name={name}"),
            None,
            Some(&format!("Bearer {}", sim.token)),
        ) && answer.status == 200
        {
            return answer.json()["servers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        }
    }
    panic!("the sim never answered GET /servers?name={name}");
}

fn sim_server(sim: &Sim, name: &str) -> Option<Value> {
    sim_servers(sim, name).first().cloned()
}

#[test]
fn every_verb_runs_from_every_route_of_the_queue() {
    let sim = Sim::start(&["--servers", "3", "--action-ms", "50"]);
    let env = Env::new();
    let worker = Worker::start(&env, &sim, "3600");
    let stop = env.push_id(&["stop", "srv-00001"]);
    env.spool("1700000000.1.panel", b"start srv-00001\n");
    let reboot = insert(&env, "reboot", "srv-00002");
    let force = env.push_id(&["off", "srv-00003"]);
    env.spool("1700000000.2.panel", b"console srv-00002\n");
    let create = insert(&env, "new", "m-x cx32 ubuntu-24.04 hel1");
    let notify = env.push_id(&["notify", "hello", "panel"]);
    env.settle(Duration::from_secs(30));
    let kill = env.push_id(&["kill", "srv-00003"]);
    let reset = env.push_id(&["reset", "srv-00002"]);
    let sync = env.push_id(&["sync"]);
    let settag = env.push_id(&["settag", "srv-00001"]);
    env.settle(Duration::from_secs(30));
    drop(worker);

    let all = commands(&env);
    for (id, (state, result, error)) in &all {
        if *id == settag {
            assert_eq!(state, "failed");
            assert!(
                error
                    .as_deref()
                    .unwrap()
                    .contains("not allowed from the queue"),
                "{error:?}"
            );
        } else {
            assert_eq!(state, "done", "command {id}: {error:?}");
            assert!(result.is_some(), "command {id} has no result");
        }
    }
    // The sim agrees with what the table says.
    assert_eq!(sim_server(&sim, "srv-00001").unwrap()["status"], "running");
    assert!(
        sim_server(&sim, "srv-00003").is_none(),
        "kill did not delete"
    );
    let created = sim_server(&sim, "m-x").unwrap();
    assert_eq!(created["server_type"]["name"], "cx32");
    assert_eq!(created["datacenter"]["location"]["name"], "hel1");
    assert_eq!(created["image"]["name"], "ubuntu-24.04");
    assert_eq!(created["status"], "running");
    let result: Value = serde_json::from_str(all[&create].1.as_deref().unwrap()).unwrap();
    assert_eq!(result["server_id"], created["id"]);
    assert_eq!(result["status"], "running");
    let url: Option<String> = env
        .db()
        .query_row("SELECT url FROM vms WHERE name = 'srv-00002'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(url.unwrap().starts_with("ws"));
    for id in [stop, reboot, force, kill, reset, sync, notify] {
        assert_eq!(all[&id].0, "done");
    }
    // Every outcome was announced.
    let messages: String = env.value("SELECT group_concat(msg, '|') FROM messages");
    assert!(messages.contains("hello panel"), "{messages}");
    for (id, (state, _, _)) in &all {
        assert!(messages.contains(&format!("{state} {id}")), "{messages}");
    }
}

#[test]
fn refusals_end_failed_and_are_never_retried() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "20"]);
    sim.control(
        "POST",
        "/_sim/servers",
        Some(r#"{"name": "foreign", "labels": {}, "status": "running"}"#),
    );
    let env = Env::new();
    let _worker = Worker::start(&env, &sim, "3600");
    let unmanaged = env.push_id(&["stop", "foreign"]);
    let missing = env.push_id(&["start", "nope"]);
    let bad = insert(&env, "start", "vm_1");
    let unknown = insert(&env, "explode", "srv-00001");
    env.settle(Duration::from_secs(20));
    let all = commands(&env);
    let error = |id: i64| all[&id].2.clone().unwrap_or_default();
    assert!(error(unmanaged).contains("not managed by hcc"), "{all:?}");
    assert!(
        error(missing).contains("server \"nope\" not found"),
        "{all:?}"
    );
    assert!(error(bad).contains("invalid server name"), "{all:?}");
    assert!(error(unknown).contains("unknown command"), "{all:?}");
    let attempts: i64 = env.value("SELECT max(attempts) FROM commands");
    assert!(attempts <= 1, "a refusal was retried");
    assert_eq!(sim_server(&sim, "foreign").unwrap()["status"], "running");
}

#[test]
fn a_console_request_overtakes_a_create_that_is_still_building() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "4000"]);
    let env = Env::new();
    let _worker = Worker::start(&env, &sim, "3600");
    let create = env.push_id(&["create", "m-slow"]);
    let console = env.push_id(&["console", "srv-00001"]);
    let answered = eventually(Duration::from_secs(3), || {
        commands(&env)[&console].0 == "done"
    });
    assert!(answered, "{:?}", commands(&env));
    assert_eq!(
        commands(&env)[&create].0,
        "running",
        "the create should still be building"
    );
    env.settle(Duration::from_secs(30));
    let (c, k): (i64, i64) = env
        .db()
        .query_row(
            &format!(
                "SELECT (SELECT finished_at FROM commands WHERE id = {console}),
                        (SELECT finished_at FROM commands WHERE id = {create})"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(c <= k);
}

#[test]
fn commands_on_one_server_run_in_order() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "300"]);
    let env = Env::new();
    let _worker = Worker::start(&env, &sim, "3600");
    for verb in ["stop", "start", "force", "start", "stop"] {
        env.push_id(&[verb, "srv-00001"]);
    }
    env.settle(Duration::from_secs(30));
    let order: String = env.value(
        "SELECT group_concat(cmd, ',') FROM (SELECT cmd FROM commands ORDER BY started_at, id)",
    );
    assert_eq!(order, "stop,start,force,start,stop");
    assert_eq!(sim_server(&sim, "srv-00001").unwrap()["status"], "off");
    for (_, (state, _, error)) in commands(&env) {
        assert_eq!(state, "done", "{error:?}");
    }
}

#[test]
fn faults_lose_nothing_and_run_nothing_twice() {
    let sim = Sim::start(&[
        "--servers",
        "20",
        "--action-ms",
        "20",
        "--fail",
        "429:0.2,500:0.1,reset:0.05",
        "--seed",
        "5",
    ]);
    let env = Env::new();
    env.ok(&["config", "set", "max_attempts", "6"]);
    let _worker = Worker::start(&env, &sim, "3600");
    let verbs = ["start", "stop", "reboot", "reset", "console", "off"];
    let mut ids = Vec::new();
    for i in 0..200 {
        let server = format!("srv-{:05}", i % 15 + 1);
        let id = match i {
            i if i % 40 == 7 => env.push_id(&["create", &format!("m-c{i}")]),
            i if i % 40 == 9 => env.push_id(&["kill", &format!("srv-{:05}", 16 + i / 40)]),
            _ => env.push_id(&[verbs[i % verbs.len()], &server]),
        };
        ids.push(id);
    }
    env.settle(Duration::from_secs(180));
    let all = commands(&env);
    assert_eq!(all.len(), 200);
    for (id, (state, _, error)) in &all {
        match state.as_str() {
            "done" => {}
            "failed" => assert!(error.as_deref().is_some_and(|e| !e.is_empty()), "{id}"),
            other => panic!("command {id} ended {other}"),
        }
    }
    // Each create made one server at most, each kill deleted its server.
    let creates: Vec<String> = (0..200)
        .filter(|i| i % 40 == 7)
        .map(|i| format!("m-c{i}"))
        .collect();
    for name in &creates {
        let count = sim_servers(&sim, name).len();
        assert!(count <= 1, "{name} exists {count} times");
    }
    let messages = env.messages();
    let announced: BTreeSet<&String> = messages.iter().collect();
    assert_eq!(
        announced.len(),
        messages.len(),
        "an outcome was announced twice"
    );
    assert!(sim.stats()["faults"].as_i64().unwrap() > 20);
}

#[test]
fn kill_9_of_the_worker_loses_nothing_and_duplicates_no_server() {
    let sim = Sim::start(&["--servers", "30", "--action-ms", "400"]);
    let env = Env::new();
    let mut names = Vec::new();
    for i in 0..100 {
        match i % 10 {
            0 => {
                let name = format!("m-k{i}");
                env.push_id(&["create", &name]);
                names.push(name);
            }
            5 => {
                env.push_id(&["kill", &format!("srv-{:05}", 21 + i / 10)]);
            }
            _ => {
                let verb = ["start", "stop", "reboot", "console"][i % 4];
                env.push_id(&[verb, &format!("srv-{:05}", i % 20 + 1)]);
            }
        }
    }
    let mut rng = fastrand::Rng::with_seed(9);
    for _ in 0..4 {
        let worker = Worker::start(&env, &sim, "3600");
        // Killed at a random moment (the point).
        std::thread::sleep(Duration::from_millis(rng.u64(300..1500)));
        drop(worker); // SIGKILL
    }
    let _worker = Worker::start(&env, &sim, "3600");
    env.settle(Duration::from_secs(120));
    let all = commands(&env);
    assert_eq!(all.len(), 100);
    let messages = env.messages();
    for (id, (state, _, error)) in &all {
        assert!(state == "done" || state == "failed", "{id}: {state}");
        let times = messages
            .iter()
            .filter(|m| **m == format!("{state} {id}"))
            .count();
        assert_eq!(
            times, 1,
            "command {id} ({state}, {error:?}) announced {times} times"
        );
    }
    for name in &names {
        assert_eq!(sim_servers(&sim, name).len(), 1, "{name}");
    }
    let creates_done: i64 =
        env.value("SELECT count(*) FROM commands WHERE cmd = 'create' AND state = 'done'");
    assert_eq!(creates_done, names.len() as i64);
}

#[test]
fn a_second_worker_is_refused() {
    let sim = Sim::start(&[]);
    let env = Env::new();
    let _first = Worker::start(&env, &sim, "3600");
    let started = eventually(Duration::from_secs(10), || env.run(&["status"]).code == 0);
    assert!(started);
    let second = env
        .cmd(&["worker"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    let run = crate::test::Run::from(second);
    run.fails_around(4, "hcc: worker already running (pid ", ")");
}

#[test]
fn sigterm_stops_within_five_seconds_and_hands_work_back() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "30000"]);
    let env = Env::new();
    let mut worker = Worker::start(&env, &sim, "3600");
    let id = env.push_id(&["create", "m-long"]);
    assert!(eventually(Duration::from_secs(10), || commands(&env)[&id]
        .0
        == "running"));
    let status = env.run(&["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(
        status.stdout.starts_with("worker:      running (pid"),
        "{status:?}"
    );
    assert_eq!(
        worker.stop().and_then(|s| s.code()),
        Some(0),
        "{}",
        worker.log()
    );
    let running: i64 = env.value("SELECT count(*) FROM commands WHERE state = 'running'");
    assert_eq!(running, 0);
    assert_eq!(commands(&env)[&id].0, "queued");
    let down = env.run(&["status", "--json"]);
    assert_eq!(down.code, 1);
    let report: Value = serde_json::from_str(&down.stdout).unwrap();
    assert_eq!(report["worker"], Value::Null);
    assert_eq!(report["queue"]["queued"], 1);
    // The next worker finds the server the first one started and adopts it.
    let _next = Worker::start(&env, &sim, "3600");
    assert!(eventually(Duration::from_secs(10), || commands(&env)[&id]
        .0
        == "done"));
    let result: Value = serde_json::from_str(commands(&env)[&id].1.as_deref().unwrap()).unwrap();
    assert_eq!(result["existing"], true);
}

#[test]
fn the_demo_runs_and_leaves_nothing_behind() {
    let env = Env::new();
    let run = env.run(&["demo", "--quick"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("5. every command is done"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("demo-web   running"), "{}", run.stdout);
    // The one-time link: opened once, then gone.
    assert!(
        run.stdout.contains("(first time): 200") && run.stdout.contains("(second time): 410"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.trim_end().ends_with("README.md"),
        "{}",
        run.stdout
    );
    // The simulator's port is closed and the state directory is gone.
    let endpoint = run
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap();
    let addr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches("/v1");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the simulator still runs"
    );
    let dir = run
        .stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap();
    assert!(!std::path::Path::new(dir).exists(), "{dir} is left behind");
    let leftover = Command::new("pgrep").args(["-f", dir]).output().unwrap();
    assert!(leftover.stdout.is_empty(), "processes left: {:?}", leftover);
}

#[test]
fn a_big_insert_by_another_process_wakes_the_worker_at_once() {
    // The commit's last write to the WAL can arrive before the commit is
    // visible; the worker must look again shortly after, not at its 30 s
    // safety rescan.
    let sim = Sim::start(&[]);
    let env = Env::new();
    let worker = Worker::start(&env, &sim, "3600");
    assert!(eventually(Duration::from_secs(10), || env
        .run(&["status"])
        .code
        == 0));
    // Idle: asleep on its inotify watch, where the insert must wake it.
    crate::test::wait_blocked(worker.pid());
    env.db()
        .execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO commands (cmd, arg) SELECT 'notify', 'load-' || i FROM n",
        )
        .unwrap();
    env.settle(Duration::from_secs(15));
}

#[test]
fn a_command_closed_by_someone_else_does_not_stop_the_worker() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "1500"]);
    let env = Env::new();
    let _worker = Worker::start(&env, &sim, "3600");
    let id = env.push_id(&["reboot", "srv-00001"]);
    assert!(eventually(Duration::from_secs(10), || commands(&env)[&id]
        .0
        == "running"));
    env.ok(&[
        "fail",
        &id.to_string(),
        "cancelled",
        "by",
        "the",
        "operator",
    ]);
    // The worker notes it, keeps running, and serves the next command.
    let next = env.push_id(&["console", "srv-00001"]);
    assert!(eventually(Duration::from_secs(10), || commands(&env)
        [&next]
        .0
        == "done"));
    assert_eq!(env.run(&["status"]).code, 0, "the worker died");
    assert_eq!(
        commands(&env)[&id].2.as_deref(),
        Some("cancelled by the operator")
    );
}

#[test]
fn a_stream_of_new_commands_does_not_starve_the_running_ones() {
    let sim = Sim::start(&["--servers", "30", "--action-ms", "500"]);
    let env = Env::new();
    let _worker = Worker::start(&env, &sim, "3600");
    let first = env.push_id(&["reboot", "srv-00001"]);
    // A new command every 200 ms for 4 s: the first must finish meanwhile.
    let mut done_early = false;
    for i in 2..=21 {
        env.push_id(&["reboot", &format!("srv-{i:05}")]);
        // The stream's pace (the point).
        std::thread::sleep(Duration::from_millis(200));
        done_early |= commands(&env)[&first].0 == "done";
    }
    assert!(done_early, "the first command waited for the stream to end");
    env.settle(Duration::from_secs(20));
}

/// The worker's own commits leave checkpoints of the WAL to its
/// checkpoint thread, and a flood does not let the WAL grow without bound:
/// thousands of commands through the spool, nobody else writing, then a
/// quiet moment, and the WAL is back to a few megabytes.
#[test]
fn the_wal_stays_small_while_the_worker_runs_thousands_of_commands() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    let _worker = Worker::start(&env, &sim, "3600");
    const COMMANDS: usize = 2000;
    for n in 0..COMMANDS {
        env.spool(
            &format!("n{n:05}"),
            format!("notify message {n}\n").as_bytes(),
        );
    }
    assert!(
        eventually(Duration::from_secs(120), || {
            let done: i64 = env.value("SELECT count(*) FROM commands WHERE state = 'done'");
            done as usize == COMMANDS
        }),
        "not every notify is done"
    );
    let wal = || std::fs::metadata(env.path("hcc.db-wal")).map_or(0, |m| m.len());
    // Bounded during the flood: past 10,000 pages the worker's own commit
    // checkpoints.
    assert!(wal() < 48 << 20, "hcc.db-wal is {} bytes", wal());
    // A quiet moment: the checkpoint thread catches up, and the next
    // command's commit starts the WAL again, cut back to 4 MiB.
    std::thread::sleep(Duration::from_millis(500));
    env.spool("last", b"notify last\n");
    assert!(
        eventually(Duration::from_secs(10), || wal() <= 4 << 20),
        "hcc.db-wal is {} bytes after {COMMANDS} commands and a pause",
        wal()
    );
}

#[test]
fn a_burst_of_reboots_looks_the_server_up_once_and_follows_a_replaced_one() {
    let sim = Sim::start(&["--servers", "2", "--action-ms", "0"]);
    let env = Env::new();
    let worker = Worker::start(&env, &sim, "3600");
    assert!(
        eventually(Duration::from_secs(20), || worker.log().contains("started")),
        "{}",
        worker.log()
    );
    let lookups = || {
        sim.stats()["by_route"]["GET /servers"]
            .as_u64()
            .unwrap_or(0)
    };
    let reboot = || {
        let id = env.push_id(&["reboot", "srv-00001"]);
        let (state, result, error) = worker.closed(&env, id);
        assert_eq!(state, "done", "{error:?}: {}", worker.log());
        let result: serde_json::Value = serde_json::from_str(&result.unwrap()).unwrap();
        result["server_id"].as_i64().expect("the server's id")
    };
    let old = reboot();
    let before = lookups();
    for _ in 0..4 {
        assert_eq!(reboot(), old);
    }
    assert_eq!(
        lookups(),
        before,
        "reboots within a minute looked the server up again: {}",
        sim.stats()["by_route"]
    );
    // Deleted and made again under its name behind the worker's back: the
    // old id answers 404, and the worker looks the name up again.
    let killed = env
        .cmd(&["kill", "srv-00001", "--yes"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    assert!(killed.status.success(), "{killed:?}");
    let made = sim.control(
        "POST",
        "/_sim/servers",
        Some(r#"{"name": "srv-00001", "labels": {"managed": "1"}}"#),
    );
    assert_eq!(made.status, 201);
    let new = reboot();
    assert_ne!(new, old);
    // One lookup for `hcc kill`, one for the worker after the 404.
    assert_eq!(lookups(), before + 2, "{}", sim.stats()["by_route"]);
}
