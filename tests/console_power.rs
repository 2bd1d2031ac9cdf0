//! The console page's power buttons: `POST /c/power` with the page's
//! session token. A session opened through the link of a key that may act
//! (`act`, `admin`) queues reboot, reset and start as the API does; a
//! `console` key's session is refused; an ended or unknown one too; the
//! token never reaches the request log.

use serde_json::{Value, json};
use std::time::Duration;

use crate::support::serve::{Serve, code, keyed, link, page_data, serving};
use crate::test::{Http, Sim, Worker, eventually};

/// Opens a one-time link made with `key`; the page's session token.
fn open_session(serve: &Serve, key: &str) -> String {
    let page = serve.request("POST", &link(serve, key, "srv-00001"), None, None);
    assert_eq!(page.status, 200, "{}", page.body);
    page_data(&page.body)["session"]
        .as_str()
        .unwrap()
        .to_string()
}

fn power(serve: &Serve, body: &Value) -> Http {
    serve.request("POST", "/c/power", Some(&body.to_string()), None)
}

#[test]
fn a_session_whose_key_may_act_powers_its_server_and_others_may_not() {
    let (sim, env, keys, serve) = serving(&["--servers", "2", "--action-ms", "0"]);

    // An admin key's link: the page learns which buttons to show.
    let admin = open_session(&serve, &keys.admin);
    let offer = power(&serve, &json!({ "session": admin }));
    assert_eq!(offer.status, 200, "{}", offer.body);
    assert_eq!(offer.json()["server"], "srv-00001");
    assert_eq!(
        offer.json()["verbs"],
        json!(["reboot", "reset", "start", "reset-password"])
    );
    assert_eq!(
        power(&serve, &json!({ "session": admin, "verb": null })).json()["verbs"],
        json!(["reboot", "reset", "start", "reset-password"])
    );

    // Reboot: queued as the API queues it.
    let queued = power(&serve, &json!({ "session": admin, "verb": "reboot" }));
    assert_eq!(queued.status, 202, "{}", queued.body);
    let command = &queued.json()["command"];
    assert_eq!(command["cmd"], "reboot");
    assert_eq!(command["arg"], "srv-00001");
    assert_eq!(command["state"], "queued");
    let id = command["id"].as_i64().unwrap();
    let row: (String, String, String) = env
        .db()
        .query_row(
            "SELECT cmd, arg, source FROM commands WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(row, ("reboot".into(), "srv-00001".into(), "api".into()));

    // A second click while it waits gets the first command, not another.
    let again = power(&serve, &json!({ "session": admin, "verb": "reset" }));
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.json()["command"]["id"], id);
    let count: i64 = env.value("SELECT count(*) FROM commands");
    assert_eq!(count, 1);

    // The page follows its command to done.
    let follow = || power(&serve, &json!({ "session": admin, "command": id }));
    assert_eq!(follow().status, 200, "{}", follow().body);
    assert_eq!(follow().json()["command"]["state"], "queued");
    let worker = Worker::start(&env, &sim, "3600");
    assert!(
        eventually(
            Duration::from_secs(20),
            || follow().json()["command"]["state"] == "done"
        ),
        "{}\n{}",
        follow().body,
        worker.log()
    );
    // Only its server's power commands are shown to a page.
    let other = env.ok(&["push", "reboot", "srv-00002"]);
    let other_id: i64 = env.value("SELECT max(id) FROM commands");
    let shown = power(&serve, &json!({ "session": admin, "command": other_id }));
    assert_eq!(shown.status, 404, "{other}: {}", shown.body);

    // An act key cannot make links itself; a link it made (its name on
    // the session) powers like an admin's.
    let act = open_session(&serve, &keys.admin);
    env.db()
        .execute(
            "UPDATE console_sessions SET created_by = 'act-key' WHERE id = (SELECT max(id) FROM console_sessions)",
            [],
        )
        .unwrap();
    assert_eq!(
        power(&serve, &json!({ "session": act })).json()["verbs"],
        json!(["reboot", "reset", "start", "reset-password"])
    );
    let started = power(&serve, &json!({ "session": act, "verb": "start" }));
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(started.json()["command"]["cmd"], "start");

    // A console key's link: no buttons, and a reboot is refused.
    let console = open_session(&serve, &keys.console);
    let offer = power(&serve, &json!({ "session": console }));
    assert_eq!(offer.status, 200, "{}", offer.body);
    assert_eq!(offer.json()["verbs"], json!([]));
    let refused = power(&serve, &json!({ "session": console, "verb": "reboot" }));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(code(&refused), "forbidden");

    // Verbs the page does not offer, and bad bodies.
    let bad = power(&serve, &json!({ "session": admin, "verb": "kill" }));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let bad = power(&serve, &json!({ "session": admin, "verb": 3 }));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let bad = serve.request("POST", "/c/power", Some("not json"), None);
    assert_eq!(bad.status, 400, "{}", bad.body);
    let bad = power(&serve, &json!({ "verb": "reboot" }));
    assert_eq!(bad.status, 400, "{}", bad.body);
    let get = serve.request("GET", "/c/power", None, None);
    assert_eq!(get.status, 405, "{}", get.body);

    // Unknown sessions: 404; ended ones (revoked here): 410.
    let unknown = power(
        &serve,
        &json!({ "session": "ab".repeat(32), "verb": "reboot" }),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let unknown = power(&serve, &json!({ "session": "../x", "verb": "reboot" }));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    env.ok(&["revoke", "srv-00001"]);
    for body in [
        json!({ "session": admin }),
        json!({ "session": admin, "verb": "reboot" }),
        json!({ "session": act, "command": id }),
    ] {
        let ended = power(&serve, &body);
        assert_eq!(ended.status, 410, "{body}: {}", ended.body);
        assert_eq!(code(&ended), "session_expired");
    }

    // The request log names the route, never a session token.
    let log = serve.log();
    assert!(log.contains("POST /c/power 202"), "{log}");
    for token in [&admin, &act, &console] {
        assert!(
            !log.contains(token.as_str()),
            "a session token in the log: {log}"
        );
    }
}

#[test]
fn the_power_buttons_follow_queue_verbs_and_suspension() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "0"]);
    let (env, keys) = keyed(&sim);
    // This hcc takes no resets from its queue: the page does not offer one.
    env.ok(&[
        "config",
        "set",
        "queue_verbs",
        "sync,start,stop,force,off,reboot,console,create,new,kill,notify,put",
    ]);
    let serve = Serve::start(&env, &sim, &[]);
    let session = open_session(&serve, &keys.admin);
    let offer = power(&serve, &json!({ "session": session }));
    assert_eq!(
        offer.json()["verbs"],
        json!(["reboot", "start"]),
        "{}",
        offer.body
    );
    let reset = power(&serve, &json!({ "session": session, "verb": "reset" }));
    assert_eq!(reset.status, 403, "{}", reset.body);
    assert_eq!(code(&reset), "verb_not_allowed");

    // A suspended server's console powers nothing.
    env.ok(&["suspend", "srv-00001"]);
    let suspended = power(&serve, &json!({ "session": session, "verb": "reboot" }));
    assert_eq!(suspended.status, 403, "{}", suspended.body);
    let count: i64 = env.value("SELECT count(*) FROM commands");
    assert_eq!(count, 0);
}
