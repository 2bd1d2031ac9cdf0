//! `create` through the queue: a server carries `hcc-command=<id>`; a
//! retry adopts only the server with its own command's label, never one of
//! the same name that someone else made.

use serde_json::Value;

use crate::test::{Env, Sim, Worker};

fn servers_named(sim: &Sim, name: &str) -> Vec<Value> {
    sim.get(&format!("/servers?name={name}")).json()["servers"]
        .as_array()
        .cloned()
        .unwrap()
}

#[test]
fn a_create_whose_answer_was_lost_is_found_by_its_label() {
    let sim = Sim::start(&["--action-ms", "50"]);
    // The server is made, then the connection closes unanswered.
    sim.lose_next_answer("POST /servers");
    let env = Env::new();
    let id = env.push_id(&["create", "m-lost"]);
    let worker = Worker::start(&env, &sim, "3600");
    let (state, result, error) = worker.closed(&env, id);
    assert_eq!(state, "done", "{error:?}\n{}", worker.log());
    let result: Value = serde_json::from_str(&result.unwrap()).unwrap();
    let servers = servers_named(&sim, "m-lost");
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(servers[0]["labels"]["hcc-command"], id.to_string());
    assert_eq!(result["server_id"], servers[0]["id"]);
    assert_eq!(result["existing"], true);
    assert_eq!(sim.stats()["by_route"]["POST /servers"], 1);
    let stored: i64 = env.value("SELECT id FROM servers WHERE name = 'm-lost'");
    assert_eq!(Value::from(stored), servers[0]["id"]);
}

#[test]
fn a_same_named_server_made_elsewhere_is_never_adopted() {
    let sim = Sim::start(&["--action-ms", "50"]);
    let env = Env::new();
    // Someone else's servers, managed label and all. For the second, an
    // earlier attempt of the command got as far as marking it `new` in the
    // table (as a worker killed mid-create leaves it).
    for name in ["m-taken", "m-taken2"] {
        let made = sim.control(
            "POST",
            "/_sim/servers",
            Some(&format!(
                r#"{{"name": "{name}", "labels": {{"managed": "1"}}}}"#
            )),
        );
        assert_eq!(made.status, 201, "{made:?}");
    }
    let first = env.push_id(&["create", "m-taken"]);
    let second = env.push_id(&["create", "m-taken2"]);
    env.db()
        .execute_batch(&format!(
            "UPDATE commands SET attempts = 1 WHERE id = {second};
             INSERT INTO servers (name, stage) VALUES ('m-taken2', 'new');"
        ))
        .unwrap();
    let worker = Worker::start(&env, &sim, "3600");
    for (id, name) in [(first, "m-taken"), (second, "m-taken2")] {
        let (state, _, error) = worker.closed(&env, id);
        assert_eq!(state, "failed", "{name}: {}", worker.log());
        let error = error.unwrap();
        assert!(error.contains("is taken"), "{error}");
        let servers = servers_named(&sim, name);
        assert_eq!(servers.len(), 1, "{servers:?}");
        assert!(servers[0]["labels"].get("hcc-command").is_none());
    }
    assert_eq!(sim.stats()["by_route"].get("POST /servers"), None);
}

#[test]
fn the_cli_labels_nothing_and_adopts_nothing() {
    let sim = Sim::start(&["--action-ms", "50"]);
    let env = Env::new();
    let run = |args: &[&str]| {
        crate::test::Run::from(env.cmd(args).envs(sim.client_env()).output().unwrap())
    };
    let created = run(&["create", "m-cli", "--json"]);
    assert_eq!(created.code, 0, "{created:?}");
    let servers = servers_named(&sim, "m-cli");
    assert_eq!(servers[0]["labels"], serde_json::json!({"managed": "1"}));
    let made = sim.control(
        "POST",
        "/_sim/servers",
        Some(r#"{"name": "m-cli2", "labels": {"managed": "1"}}"#),
    );
    assert_eq!(made.status, 201);
    run(&["create", "m-cli2"]).fails(
        1,
        "hcc: server name `m-cli2` is taken: a server of that name already exists at Hetzner \
         (id 4200002), not created by this command; `hcc sync m-cli2` records it",
    );
}
