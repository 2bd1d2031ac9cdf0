//! The worker never stalls: a full sync over a slow link runs beside the
//! queue; a failed command says what became of it; without the action
//! feed, sync still works.

use std::time::Duration;

use crate::test::{Env, Sim, Worker, eventually};

#[test]
fn a_console_queued_during_a_full_sync_ends_before_the_sync() {
    // 1,500 servers at 300 ms a request: the listing takes 30 pages, about
    // 9 s; the console needs two requests.
    let sim = Sim::start(&["--servers", "1500", "--latency", "300"]);
    let env = Env::new();
    let worker = Worker::start(&env, &sim, "3600");
    let sync = env.push_id(&["sync"]);
    assert!(
        eventually(Duration::from_secs(10), || env.command_state(sync)
            == "running"),
        "the sync never started: {}",
        worker.log()
    );
    // A page or two into the listing.
    assert!(
        eventually(Duration::from_secs(10), || {
            sim.stats()["by_route"]["GET /servers"]
                .as_u64()
                .is_some_and(|pages| pages >= 2)
        }),
        "the listing never went on: {}",
        sim.stats()
    );
    let console = env.push_id(&["console", "srv-00007"]);
    assert!(
        eventually(Duration::from_secs(60), || env.command_state(console)
            != "queued"
            && env.command_state(console) != "running"),
        "the console never ended: {}",
        worker.log()
    );
    assert_eq!(env.command_state(console), "done", "{}", worker.log());
    assert_eq!(
        env.command_state(sync),
        "running",
        "the console waited for the sync: {}",
        worker.log()
    );
    let url: Option<String> = env.value("SELECT url FROM vms WHERE name = 'srv-00007'");
    assert!(url.is_some_and(|u| u.starts_with("ws")));
    // The sync goes on to the end and sees every server.
    assert!(
        eventually(Duration::from_secs(60), || env.command_state(sync)
            == "done"),
        "the sync never ended: {}",
        worker.log()
    );
    let rows: i64 = env.value("SELECT count(*) FROM servers");
    assert_eq!(rows, 1500);
}

#[test]
fn a_command_that_fails_for_good_says_so() {
    // Every request is refused with 429: the worker gives up after
    // max_attempts, and the error says that, not that it will retry.
    let sim = Sim::start(&["--servers", "1", "--fail", "429:1"]);
    let env = Env::new();
    env.ok(&["config", "set", "max_attempts", "2"]);
    let worker = Worker::start(&env, &sim, "3600");
    let id = env.push_id(&["start", "srv-00001"]);
    assert!(
        eventually(Duration::from_secs(60), || env.command_state(id)
            == "failed"),
        "still {}: {}",
        env.command_state(id),
        worker.log()
    );
    let error: String = env.value(&format!("SELECT error FROM commands WHERE id = {id}"));
    assert!(error.contains("429"), "{error}");
    assert!(error.contains("gave up after 2 attempts"), "{error}");
    assert!(!error.contains("retr"), "{error}");
}

#[test]
fn sync_works_without_the_action_feed() {
    let sim = Sim::start(&["--servers", "60", "--no-action-feed"]);
    assert_eq!(sim.get("/servers/actions").status, 404);
    let env = Env::new();
    let full = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    assert!(full.status.success(), "{full:?}");
    assert_eq!(env.value::<i64>("SELECT count(*) FROM servers"), 60);
    let mut notes = String::from_utf8_lossy(&full.stderr)
        .matches("no action feed")
        .count();

    // A server deleted behind hcc's back: `--changes` lists everything
    // instead, so the row goes. The missing feed is noted once.
    let gone = sim.get("/servers?name=srv-00042").json()["servers"][0]["id"]
        .as_i64()
        .unwrap();
    let deleted = sim.api("DELETE", &format!("/servers/{gone}"), None);
    assert!((200..300).contains(&deleted.status), "{}", deleted.body);
    for _ in 0..3 {
        let changes = env
            .cmd(&["sync", "--changes"])
            .envs(sim.client_env())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&changes.stderr);
        assert!(changes.status.success(), "{stderr}");
        notes += stderr.matches("no action feed").count();
    }
    assert_eq!(notes, 1, "the missing feed was not noted exactly once");
    // One look at the feed per sync, not one more before the listing.
    assert_eq!(sim.stats()["by_route"]["GET /servers/actions"], 1 + 1 + 3);
    assert_eq!(env.value::<i64>("SELECT count(*) FROM servers"), 59);

    // The worker's refresh cycles go on without it too.
    let created = sim.api(
        "POST",
        "/servers",
        Some(r#"{"name":"srv-new","server_type":"cx22","image":"ubuntu-24.04","labels":{"managed":"1"}}"#),
    );
    assert!((200..300).contains(&created.status), "{}", created.body);
    let worker = Worker::start(&env, &sim, "1");
    assert!(
        eventually(Duration::from_secs(20), || env.value::<i64>(
            "SELECT count(*) FROM servers WHERE name = 'srv-new'"
        ) == 1),
        "{}",
        worker.log()
    );
    assert!(!worker.log().contains("sync failed"), "{}", worker.log());
}

#[test]
fn one_sync_at_a_time_and_a_stop_hands_the_running_one_back() {
    // 1,000 servers at 200 ms: a listing of about 4 s.
    let sim = Sim::start(&["--servers", "1000", "--latency", "200"]);
    let env = Env::new();
    let mut worker = Worker::start(&env, &sim, "3600");
    let first = env.push_id(&["sync"]);
    assert!(
        eventually(Duration::from_secs(10), || env.command_state(first)
            == "running"),
        "{}",
        worker.log()
    );
    // Queued while the first runs (queued together, they would run as
    // one: tests/coalesce.rs), the second waits for the first: still
    // queued a while later.
    let second = env.push_id(&["sync"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.command_state(second), "queued", "{}", worker.log());
    assert!(
        eventually(Duration::from_secs(30), || env.command_state(second)
            == "running"),
        "{}",
        worker.log()
    );
    assert_eq!(env.command_state(first), "done");
    // A stop in the middle of a listing does not wait for it, and the
    // sync goes back to the queue for the next worker.
    let status = worker.stop().expect("the worker did not stop within 5 s");
    assert!(status.success(), "{status:?}: {}", worker.log());
    assert_eq!(env.command_state(second), "queued", "{}", worker.log());
    let worker = Worker::start(&env, &sim, "3600");
    assert!(
        eventually(Duration::from_secs(30), || env.command_state(second)
            == "done"),
        "{}",
        worker.log()
    );
}
