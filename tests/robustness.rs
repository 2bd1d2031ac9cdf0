//! Hostile or broken inputs and stalls across areas: a queued `sync NAME`,
//! a FIFO or endless token file, a lost `create` beside a look-alike, a
//! nonsensical rate budget row, a FIFO at the rollback journal, a long queue.

use std::time::Duration;

use crate::test::{Env, Sim, Worker, eventually, refusing, unix_now};

/// The shared rate budget as an answer just described it: `remaining` of
/// `limit` an hour, full again in `reset_in` seconds. Returns now.
fn set_rate_budget(env: &Env, limit: f64, remaining: f64, reset_in: f64) -> f64 {
    let now = unix_now();
    env.db()
        .execute(
            "INSERT INTO rate_budget (id, limit_per_hour, remaining, reset_at, observed_at)
             VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET limit_per_hour = excluded.limit_per_hour,
               remaining = excluded.remaining, reset_at = excluded.reset_at,
               observed_at = excluded.observed_at",
            rusqlite::params![limit, remaining, now + reset_in, now],
        )
        .unwrap();
    now
}

/// A worker on three simulated servers, started, with the shared budget
/// then at 100 of 3600: below the reserve background work stops at.
fn worker_on_a_low_budget() -> (Sim, Env, Worker) {
    let sim = Sim::start(&["--servers", "3"]);
    let env = Env::new();
    let worker = Worker::start(&env, &sim, "3600");
    assert!(
        eventually(Duration::from_secs(10), || worker.log().contains("started")),
        "{}",
        worker.log()
    );
    set_rate_budget(&env, 3600.0, 100.0, 3500.0);
    (sim, env, worker)
}

#[test]
fn a_queued_sync_of_one_server_does_not_hold_the_worker_loop() {
    // The budget below the background reserve (180 of 3600): background
    // work waits about 80 s for it, interactive work may spend it. A
    // queued `sync NAME` runs on the worker loop, so it must not wait
    // there: the console queued after it ends at once.
    let (_sim, env, worker) = worker_on_a_low_budget();
    let sync = env.push_id(&["sync", "srv-00001"]);
    let console = env.push_id(&["console", "srv-00002"]);
    assert!(
        eventually(Duration::from_secs(20), || env.command_state(console)
            == "done"),
        "the console waited behind `sync srv-00001` (sync {}, console {}): {}",
        env.command_state(sync),
        env.command_state(console),
        worker.log()
    );
    assert!(
        eventually(Duration::from_secs(20), || env.command_state(sync)
            == "done"),
        "sync {}: {}",
        env.command_state(sync),
        worker.log()
    );
}

#[test]
fn a_queued_full_sync_is_a_command_and_spends_below_the_background_reserve() {
    // The budget below the syncs' floor (100 of 3600, the floor is 900):
    // the worker's own refresh would wait there, but a full `sync` a
    // panel queued is a command like a reboot and runs at once, taking
    // the `sync NAME` queued beside it along.
    let (_sim, env, worker) = worker_on_a_low_budget();
    let full = env.push_id(&["sync"]);
    let one = env.push_id(&["sync", "srv-00002"]);
    assert!(
        eventually(Duration::from_secs(20), || env.command_state(full)
            == "done"
            && env.command_state(one) == "done"),
        "the queued full sync waited behind the reserve ({}, {}): {}",
        env.command_state(full),
        env.command_state(one),
        worker.log()
    );
}

/// `cmd` run to its end within `limit`, or killed (None).
fn run_within(mut cmd: std::process::Command, limit: Duration) -> Option<crate::test::Run> {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hcc");
    if eventually(limit, || child.try_wait().ok().flatten().is_some()) {
        Some(child.wait_with_output().expect("hcc's output").into())
    } else {
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

#[test]
fn a_token_file_that_is_a_fifo_or_endless_is_refused_not_waited_on() {
    // The token file may sit where others can plant a name: a FIFO must
    // not hang hcc, nor /dev/zero fill its memory.
    let env = Env::new();
    env.ok(&["config", "set", "endpoint", "http://127.0.0.1:1/v1"]);
    let fifo = env.path("token.fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let endless = env.path("token.endless");
    std::os::unix::fs::symlink("/dev/zero", &endless).unwrap();
    let big = env.path("token.big");
    std::fs::write(&big, "x".repeat(100_000)).unwrap();
    for (file, why) in [
        (&fifo, "it is a FIFO, not a regular file"),
        (&endless, "it is a device, not a regular file"),
        (&big, "it is larger than 4096 bytes"),
    ] {
        env.ok(&["config", "set", "token_file", file.to_str().unwrap()]);
        let mut cmd = env.cmd(&["sync"]);
        cmd.env_remove("HCLOUD_TOKEN");
        let run = run_within(cmd, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("`hcc sync` hung reading the token file {file:?}"));
        run.fails(
            2,
            &format!(
                "hcc: hetzner: cannot read the token file `{}`: {why}",
                file.display()
            ),
        );
    }
}

#[test]
fn a_lost_create_is_found_even_beside_another_server_with_the_same_command_label() {
    // Command ids are per state directory: another hcc on the same
    // project (or an earlier database) made a server labelled
    // hcc-command=1 too. The retry of this command 1 must still find its
    // own server, by its name, and not call the name taken.
    let sim = Sim::start(&["--action-ms", "50"]);
    let other = sim.control(
        "POST",
        "/_sim/servers",
        Some(r#"{"name": "m-other", "labels": {"managed": "1", "hcc-command": "1"}}"#),
    );
    assert!((200..300).contains(&other.status), "{}", other.body);
    sim.lose_next_answer("POST /servers");
    let env = Env::new();
    let id = env.push_id(&["create", "m-mine"]);
    assert_eq!(id, 1);
    let worker = Worker::start(&env, &sim, "3600");
    let (state, result, error) = worker.closed(&env, id);
    assert_eq!(state, "done", "{error:?}\n{}", worker.log());
    let result: serde_json::Value = serde_json::from_str(&result.unwrap()).unwrap();
    assert_eq!(result["existing"], true, "{result}");
    assert_eq!(sim.stats()["by_route"]["POST /servers"], 1);
}

#[test]
fn a_nonsensical_rate_budget_row_is_ignored_not_a_panic_or_an_hour_wait() {
    // `hcc.db` is shared with the panel's group: a row written by hand or
    // by a buggy panel must not crash hcc or stall it for an hour.
    let sim = Sim::start(&["--servers", "2"]);
    let env = Env::new();
    let first = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    for (limit, remaining) in [
        (-3.0, 10.0),
        (0.0, 0.0),
        (1e-300, 0.0),
        (f64::INFINITY, 5.0),
        (3600.0, -1e300),
    ] {
        env.db()
            .execute(
                "UPDATE rate_budget SET limit_per_hour = ?1, remaining = ?2",
                rusqlite::params![limit, remaining],
            )
            .unwrap();
        let mut cmd = env.cmd(&["sync"]);
        cmd.envs(sim.client_env());
        let run = run_within(cmd, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("`hcc sync` waited with limit {limit}"));
        assert_eq!(run.code, 0, "limit {limit}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "limit {limit}: {run:?}");
        let status = env.run(&["status"]);
        assert!(
            status.stdout.contains("rate budget: ") && !status.stdout.contains(" of -"),
            "limit {limit}: {status:?}"
        );
    }
}

#[test]
fn a_fifo_or_link_at_the_rollback_journal_is_named_not_waited_on() {
    // SQLite looks for a hot `hcc.db-journal` before it knows the file is
    // in WAL mode: a FIFO there hung every command, a link made every
    // command fail with a bare "unable to open database file".
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    let journal = env.path("hcc.db-journal");
    let victim = env.path("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, &journal).unwrap();
    let run = run_within(env.cmd(&["push", "start", "vm2"]), Duration::from_secs(10))
        .expect("`hcc push` hung");
    run.fails(
        2,
        &refusing(&env.path("hcc.db-journal"), "it is a symbolic link"),
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    std::fs::remove_file(&journal).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &journal,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let run = run_within(env.cmd(&["push", "start", "vm2"]), Duration::from_secs(10))
        .expect("`hcc push` hung on a FIFO at hcc.db-journal");
    run.fails(
        2,
        &refusing(&env.path("hcc.db-journal"), "it is not a regular file"),
    );
    std::fs::remove_file(&journal).unwrap();
    env.ok(&["push", "start", "vm2"]);
}

#[test]
fn a_long_queue_of_starts_does_not_hold_back_the_polls() {
    // 40 commands on 40 servers at 250 ms a request: starting them all
    // takes some 20 s. The first one's action ends after 300 ms; it must
    // be polled and done while later ones are still being started, not
    // after the worker has started the last.
    let sim = Sim::start(&["--servers", "40", "--latency", "250", "--action-ms", "300"]);
    let env = Env::new();
    let ids: Vec<i64> = (1..=40)
        .map(|n| env.push_id(&["reboot", &format!("srv-{n:05}")]))
        .collect();
    let worker = Worker::start(&env, &sim, "3600");
    let (first, last) = (ids[0], ids[ids.len() - 1]);
    assert!(
        eventually(Duration::from_secs(120), || env.command_state(last)
            == "done"),
        "{}",
        worker.log()
    );
    let done_at: i64 = env.value(&format!(
        "SELECT finished_at FROM commands WHERE id = {first}"
    ));
    let last_started: i64 = env.value(&format!(
        "SELECT started_at FROM commands WHERE id = {last}"
    ));
    assert!(
        done_at < last_started,
        "the first command was closed at {done_at}, after the last was started at {last_started}"
    );
}

#[test]
fn a_spent_rate_budget_defers_commands_without_holding_the_worker_or_their_attempts() {
    // 60 requests an hour, none left: the next token is a minute away.
    let sim = Sim::start(&["--servers", "2"]);
    let env = Env::new();
    env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    let now = set_rate_budget(&env, 60.0, 0.0, 3600.0);
    let mut worker = Worker::start(&env, &sim, "3600");
    let start = env.push_id(&["start", "srv-00001"]);
    let deferred = || -> (String, i64, String, i64) {
        env.db()
            .query_row(
                "SELECT state, attempts, coalesce(error, ''), coalesce(not_before, 0)
                 FROM commands WHERE id = ?1",
                [start],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(10), || {
            let (state, attempts, error, not_before) = deferred();
            state == "queued"
                && attempts == 0
                && error.contains("rate budget")
                && not_before as f64 > now + 30.0
        }),
        "{:?}\n{}",
        deferred(),
        worker.log()
    );
    // The loop is not asleep in the budget: SIGTERM ends it at once.
    let stopped = std::time::Instant::now();
    let status = worker.stop();
    assert!(
        status.is_some_and(|s| s.success()) && stopped.elapsed() < Duration::from_secs(5),
        "{status:?} after {:?}: {}",
        stopped.elapsed(),
        worker.log()
    );
    assert_eq!(deferred().0, "queued", "{}", worker.log());
}
