//! The worker's queue order: identical queued commands run once and end
//! together; servers take turns; a killed worker loses nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::test::{Env, Sim, Worker};

/// (state, result, error, started_at) of every command, by id.
type Row = (String, Option<String>, Option<String>, Option<i64>);

fn commands(env: &Env) -> BTreeMap<i64, Row> {
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT id, state, result, error, started_at FROM commands")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Requests on `route` since `before` (a `by_route` object).
fn more(before: &Value, after: &Value, route: &str) -> i64 {
    after[route].as_i64().unwrap_or(0) - before[route].as_i64().unwrap_or(0)
}

#[test]
fn identical_consoles_and_syncs_run_once_and_all_end_done() {
    let sim = Sim::start(&["--servers", "3", "--action-ms", "50"]);
    let env = Env::new();
    // The servers known first, so a console needs no lookup of its own.
    let worker = Worker::start(&env, &sim, "3600");
    let first = env.push_id(&["sync"]);
    env.settle(Duration::from_secs(30));
    drop(worker);
    let before = sim.stats()["by_route"].clone();
    let mut consoles = Vec::new();
    let mut syncs = Vec::new();
    for i in 0..10 {
        consoles.push(env.push_id(&["console", "srv-00001"]));
        if i % 2 == 0 {
            syncs.push(env.push_id(&["sync"]));
        }
    }
    let _worker = Worker::start(&env, &sim, "3600");
    env.settle(Duration::from_secs(30));
    let after = sim.stats()["by_route"].clone();
    assert_eq!(
        more(
            &before,
            &after,
            "POST /servers/{id}/actions/request_console"
        ),
        1,
        "{before} -> {after}"
    );
    // One list for the sync (one page), one lookup for the console: ten
    // consoles and five syncs one by one would be 15 and 10 more.
    assert_eq!(
        more(&before, &after, "GET /servers"),
        2,
        "{before} -> {after}"
    );
    assert_eq!(
        more(&before, &after, "GET /servers/actions"),
        1,
        "{before} -> {after}"
    );
    let all = commands(&env);
    let result_of = |ids: &[i64]| -> Vec<Option<String>> {
        ids.iter()
            .map(|id| {
                let (state, result, error, _) = &all[id];
                assert_eq!(state, "done", "command {id}: {error:?}");
                result.clone()
            })
            .collect()
    };
    let console_results = result_of(&consoles);
    assert!(console_results[0].is_some());
    assert!(console_results.iter().all(|r| *r == console_results[0]));
    let sync_results = result_of(&syncs);
    assert!(sync_results.iter().all(|r| *r == sync_results[0]));
    // One `done ID` for each (what `hcc wait ID` waits for), once.
    let messages = env.messages();
    for id in consoles.iter().chain(&syncs).chain([&first]) {
        let times = messages
            .iter()
            .filter(|m| **m == format!("done {id}"))
            .count();
        assert_eq!(times, 1, "done {id} in {messages:?}");
    }
    let merged: i64 = env.value("SELECT count(*) FROM commands WHERE merged_into IS NOT NULL");
    assert_eq!(merged, 9 + 4);
}

#[test]
fn start_stop_start_runs_three_actions_in_order() {
    let sim = Sim::start(&["--servers", "2", "--action-ms", "50"]);
    let env = Env::new();
    let ids: Vec<i64> = ["start", "stop", "start", "reboot", "reboot"]
        .iter()
        .map(|verb| env.push_id(&[verb, "srv-00001"]))
        .collect();
    let before = sim.stats()["by_route"].clone();
    let _worker = Worker::start(&env, &sim, "3600");
    env.settle(Duration::from_secs(30));
    let after = sim.stats()["by_route"].clone();
    assert_eq!(
        more(&before, &after, "POST /servers/{id}/actions/poweron"),
        2
    );
    assert_eq!(
        more(&before, &after, "POST /servers/{id}/actions/shutdown"),
        1
    );
    assert_eq!(
        more(&before, &after, "POST /servers/{id}/actions/reboot"),
        1
    );
    let all = commands(&env);
    for id in &ids {
        assert_eq!(all[id].0, "done", "command {id}: {:?}", all[id].2);
    }
    let started: Vec<i64> = ids[..3].iter().map(|id| all[id].3.unwrap()).collect();
    assert!(started.windows(2).all(|w| w[0] <= w[1]), "{started:?}");
}

#[test]
fn one_servers_burst_does_not_hold_back_another_server() {
    let sim = Sim::start(&["--servers", "3", "--action-ms", "20"]);
    let env = Env::new();
    // Commands that end at once: oldest first, the worker would run all
    // of A's before B's (A is never busy between two of them).
    let burst: Vec<i64> = (0..50)
        .map(|i| env.push_id(&[["sync", "console"][i % 2], "srv-00001"]))
        .collect();
    let other = env.push_id(&["sync", "srv-00002"]);
    let _worker = Worker::start(&env, &sim, "3600");
    env.settle(Duration::from_secs(60));
    let all = commands(&env);
    assert!(burst.iter().chain([&other]).all(|id| all[id].0 == "done"));
    // The order they ended in, by their messages.
    let messages = env.messages();
    let at = |id: i64| {
        messages
            .iter()
            .position(|m| *m == format!("done {id}"))
            .unwrap()
    };
    let before_other = burst.iter().filter(|id| at(**id) < at(other)).count();
    assert!(
        before_other < 25,
        "{before_other} of A's 50 ended before B's: {messages:?}"
    );
}

#[test]
fn a_killed_worker_loses_no_merged_command_and_runs_none_twice() {
    let sim = Sim::start(&["--servers", "5", "--action-ms", "300"]);
    let env = Env::new();
    let mut ids = Vec::new();
    for i in 0..60 {
        let server = format!("srv-{:05}", i % 5 + 1);
        let verb = ["reboot", "reboot", "console", "console", "sync"][i % 5];
        let id = if verb == "sync" {
            env.push_id(&["sync"])
        } else {
            env.push_id(&[verb, &server])
        };
        ids.push(id);
    }
    let mut rng = fastrand::Rng::with_seed(22);
    for _ in 0..4 {
        let worker = Worker::start(&env, &sim, "3600");
        std::thread::sleep(Duration::from_millis(rng.u64(200..1200)));
        drop(worker); // SIGKILL
    }
    let _worker = Worker::start(&env, &sim, "3600");
    env.settle(Duration::from_secs(120));
    let all = commands(&env);
    assert_eq!(all.len(), 60);
    let messages = env.messages();
    for (id, (state, _, error, _)) in &all {
        assert!(state == "done" || state == "failed", "{id}: {state}");
        let times = messages
            .iter()
            .filter(|m| **m == format!("{state} {id}"))
            .count();
        assert_eq!(times, 1, "{state} {id} announced {times} times ({error:?})");
    }
}
