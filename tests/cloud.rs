//! The cloud commands against `hcc sim`: after each, the SQLite row and the
//! simulator's own state must agree.

use serde_json::Value;

use crate::test::{Env, Run, Sim, have};

/// `hcc ARGS` on `env`, talking to `sim`.
fn hcc(env: &Env, sim: &Sim, args: &[&str]) -> Run {
    Run::from(
        env.cmd(args)
            .envs(sim.client_env())
            .output()
            .expect("run hcc"),
    )
}

fn ok(env: &Env, sim: &Sim, args: &[&str]) -> String {
    let run = hcc(env, sim, args);
    assert_eq!(run.code, 0, "hcc {args:?}: {run:?}");
    run.stdout
}

/// The simulator's view of a server.
fn remote(sim: &Sim, id: i64) -> Option<Value> {
    let answer = sim.get(&format!("/servers/{id}"));
    (answer.status == 200).then(|| answer.json()["server"].clone())
}

fn id_of(env: &Env, name: &str) -> i64 {
    env.value(&format!("SELECT id FROM servers WHERE name = '{name}'"))
}

fn column(env: &Env, name: &str, column: &str) -> Option<String> {
    env.db()
        .query_row(
            &format!("SELECT {column} FROM servers WHERE name = ?1"),
            [name],
            |r| r.get(0),
        )
        .ok()
        .flatten()
}

fn requests(sim: &Sim) -> i64 {
    sim.stats()["requests"].as_i64().unwrap_or(-1)
}

#[test]
fn sync_fills_the_table_in_pages_and_list_reads_it_back() {
    let sim = Sim::start(&["--servers", "120"]);
    let env = Env::new();
    let out = ok(&env, &sim, &["sync"]);
    // One action-log request for the bookmark, then three pages of 50.
    assert_eq!(
        out,
        "synced 120 servers (120 added, 0 updated, 0 removed) (4 requests)\n"
    );
    assert_eq!(requests(&sim), 4);
    let count: i64 = env.value("SELECT count(*) FROM servers");
    assert_eq!(count, 120);
    let id = id_of(&env, "srv-00042");
    let server = remote(&sim, id).unwrap();
    assert_eq!(
        column(&env, "srv-00042", "status").as_deref(),
        server["status"].as_str()
    );
    assert_eq!(
        column(&env, "srv-00042", "ipv4").as_deref(),
        server["public_net"]["ipv4"]["ip"].as_str()
    );
    assert_eq!(
        column(&env, "srv-00042", "location").as_deref(),
        server["datacenter"]["location"]["name"].as_str()
    );
    let api: Value = serde_json::from_str(&column(&env, "srv-00042", "api").unwrap()).unwrap();
    assert_eq!(api["id"], server["id"]);
    // The vms view keeps the original's names.
    let ip4: String = env.value("SELECT ip4 FROM vms WHERE name = 'srv-00042'");
    assert_eq!(
        Some(ip4.as_str()),
        server["public_net"]["ipv4"]["ip"].as_str()
    );

    let before = requests(&sim);
    let list: Value = serde_json::from_str(&ok(&env, &sim, &["list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 120);
    // The API's field names, and the deprecated `ipv4`/`ipv6` beside them.
    let first = &list[0];
    let ip4 = column(&env, first["name"].as_str().unwrap(), "ipv4").expect("an address");
    assert_eq!(first["ip4"].as_str(), Some(ip4.as_str()));
    assert_eq!(
        (&first["ipv4"], &first["ipv6"]),
        (&first["ip4"], &first["ip6"])
    );
    assert_eq!(requests(&sim), before, "list must not call the API");
    let table = ok(&env, &sim, &["list"]);
    assert!(table.starts_with("NAME "), "{table}");
    assert_eq!(table.lines().count(), 121);
}

#[test]
fn a_full_sync_removes_rows_of_servers_gone_remotely() {
    let sim = Sim::start(&["--servers", "5"]);
    let env = Env::new();
    ok(&env, &sim, &["sync"]);
    let id = id_of(&env, "srv-00003");
    assert_eq!(
        sim.control("DELETE", &format!("/_sim/servers/{id}"), None)
            .status,
        200
    );
    let out = ok(&env, &sim, &["sync"]);
    assert!(
        out.starts_with("synced 4 servers (0 added, 4 updated, 1 removed)"),
        "{out}"
    );
    assert!(column(&env, "srv-00003", "name").is_none());
}

#[test]
fn sync_changes_costs_one_request_when_nothing_changed() {
    let sim = Sim::start(&["--servers", "60", "--action-ms", "0"]);
    let env = Env::new();
    ok(&env, &sim, &["sync"]);
    let before = requests(&sim);
    let out = ok(&env, &sim, &["sync", "--changes"]);
    assert_eq!(
        out,
        "synced changes: 0 servers touched (0 updated, 0 removed) (1 request)\n"
    );
    assert_eq!(requests(&sim) - before, 1);
    // Another client powers a server off: only that one is fetched again.
    let id = id_of(&env, "srv-00007");
    let answer = sim.api(
        "POST",
        &format!("/servers/{id}/actions/poweroff"),
        Some("{}"),
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    let before = requests(&sim);
    let out = ok(&env, &sim, &["sync", "--changes"]);
    assert!(
        out.starts_with("synced changes: 1 servers touched (1 updated"),
        "{out}"
    );
    assert_eq!(requests(&sim) - before, 2);
    assert_eq!(column(&env, "srv-00007", "status").as_deref(), Some("off"));
    let json: Value =
        serde_json::from_str(&ok(&env, &sim, &["sync", "--changes", "--json"])).unwrap();
    assert_eq!(json["requests"], 1);
}

#[test]
fn power_verbs_change_the_server_and_its_row() {
    let sim = Sim::start(&["--servers", "2", "--action-ms", "50"]);
    let env = Env::new();
    ok(&env, &sim, &["sync"]);
    let id = id_of(&env, "srv-00001");
    for (verb, want) in [
        ("stop", "off"),
        ("start", "running"),
        ("force", "off"),
        ("start", "running"),
        ("off", "off"),
        ("start", "running"),
        ("reboot", "running"),
        ("reset", "running"),
    ] {
        let out = ok(&env, &sim, &[verb, "srv-00001"]);
        assert!(out.ends_with(&format!("now {want}\n")), "{verb}: {out}");
        assert_eq!(remote(&sim, id).unwrap()["status"], want, "{verb}");
        assert_eq!(
            column(&env, "srv-00001", "status").as_deref(),
            Some(want),
            "{verb}"
        );
    }
    let json: Value = serde_json::from_str(&ok(
        &env,
        &sim,
        &["stop", "srv-00002", "--no-wait", "--json"],
    ))
    .unwrap();
    assert_eq!(
        (json["action"].as_str(), json["waited"].as_bool()),
        (Some("shutdown_server"), Some(false))
    );
    let by_route = &sim.stats()["by_route"];
    assert_eq!(by_route["POST /servers/{id}/actions/reset"], 1);
    assert_eq!(by_route["POST /servers/{id}/actions/reboot"], 1);
}

#[test]
fn create_records_the_server_and_its_root_password() {
    let sim = Sim::start(&["--action-ms", "50"]);
    let env = Env::new();
    env.ok(&["config", "set", "prefix", "m-"]);
    let out = ok(
        &env,
        &sim,
        &["create", "m-vm1", "cx22", "debian-12", "hel1"],
    );
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("root password: "))
        .unwrap_or_else(|| panic!("no root password in {out}"))
        .to_string();
    assert!(out.starts_with("created m-vm1 (id "), "{out}");
    assert_eq!(
        column(&env, "m-vm1", "root_password"),
        Some(password.clone())
    );
    assert_eq!(column(&env, "m-vm1", "stage").as_deref(), Some("created"));
    assert_eq!(column(&env, "m-vm1", "status").as_deref(), Some("running"));
    assert_eq!(column(&env, "m-vm1", "location").as_deref(), Some("hel1"));
    let pw: String = env.value("SELECT pw FROM vms WHERE name = 'm-vm1'");
    assert_eq!(pw, password);
    let server = remote(&sim, id_of(&env, "m-vm1")).unwrap();
    assert_eq!(server["labels"]["managed"], "1");
    assert_eq!(server["server_type"]["name"], "cx22");
    assert_eq!(server["status"], "running");
    // Twice: refused, no second server.
    hcc(&env, &sim, &["create", "m-vm1"]).fails(
        1,
        "hcc: server `m-vm1` already exists (id 4200001); if it was deleted elsewhere, run `hcc \
         sync m-vm1`",
    );
    // Without the prefix: refused by the guard.
    hcc(&env, &sim, &["new", "vm2"]).fails(
        3,
        "hcc: server name `vm2` must begin with the prefix `m-` (`hcc config get prefix`)",
    );
    let count = sim.get("/servers").json()["servers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(count, 1);
    // The alias and the defaults.
    ok(&env, &sim, &["new", "m-vm3", "--no-wait"]);
    assert_eq!(
        column(&env, "m-vm3", "server_type").as_deref(),
        Some("cx22")
    );
    assert_eq!(column(&env, "m-vm3", "location").as_deref(), Some("fsn1"));
}

#[test]
fn a_failed_create_leaves_no_row_behind() {
    let sim = Sim::start(&[]);
    let env = Env::new();
    let run = hcc(&env, &sim, &["create", "vm1", "no-such-type"]);
    assert_eq!(run.code, 1, "{run:?}");
    run.fails_around(
        1,
        "hcc: hetzner: 400 invalid_input: invalid input in field 'server_type': server type \
         not found [correlation id ",
        "]",
    );
    assert!(column(&env, "vm1", "name").is_none());
}

#[test]
fn kill_asks_or_needs_yes() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "20"]);
    let env = Env::new();
    ok(&env, &sim, &["sync"]);
    let id = id_of(&env, "srv-00001");
    hcc(&env, &sim, &["kill", "srv-00001"]).fails(
        2,
        "hcc: refusing to delete `srv-00001` without --yes (standard input is not a terminal)",
    );
    assert!(remote(&sim, id).is_some());
    assert_eq!(
        ok(&env, &sim, &["kill", "srv-00001", "--yes"]),
        format!("deleted srv-00001 (id {id})\n")
    );
    assert!(remote(&sim, id).is_none());
    assert!(column(&env, "srv-00001", "name").is_none());
}

#[test]
fn the_guard_refuses_every_verb_on_an_unmanaged_server() {
    let sim = Sim::start(&["--action-ms", "20"]);
    let env = Env::new();
    let made = sim.control(
        "POST",
        "/_sim/servers",
        Some(r#"{"name": "foreign", "labels": {"team": "other"}, "status": "running"}"#),
    );
    assert!(made.status < 300, "{made:?}");
    for args in [
        &["start", "foreign"][..],
        &["stop", "foreign"],
        &["force", "foreign"],
        &["off", "foreign"],
        &["reboot", "foreign"],
        &["reset", "foreign"],
        &["kill", "foreign", "--yes"],
        &["console", "foreign"],
        &["sync", "foreign"],
    ] {
        hcc(&env, &sim, args).fails(
            3,
            "hcc: server `foreign` is not managed by hcc: it lacks the label `managed` (adopt \
             it with `hcc settag foreign`)",
        );
    }
    let by_route = &sim.stats()["by_route"];
    assert!(
        by_route.get("POST /servers/{id}/actions/poweron").is_none(),
        "{by_route}"
    );
    assert!(by_route.get("DELETE /servers/{id}").is_none(), "{by_route}");
    assert!(column(&env, "foreign", "name").is_none());
    // Adopt, act, release.
    assert_eq!(
        ok(&env, &sim, &["settag", "foreign"]),
        "foreign: now managed (label `managed`)\n"
    );
    ok(&env, &sim, &["stop", "foreign"]);
    ok(&env, &sim, &["deltag", "foreign"]);
    let labels = sim.get("/servers?name=foreign").json()["servers"][0]["labels"].clone();
    assert_eq!(labels, serde_json::json!({"team": "other"}));
    hcc(&env, &sim, &["start", "foreign"]).fails(
        3,
        "hcc: server `foreign` is not managed by hcc: it lacks the label `managed` (adopt it \
         with `hcc settag foreign`)",
    );
}

#[test]
fn console_prints_the_original_url_and_stores_the_credentials() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    env.ok(&[
        "config",
        "set",
        "console_url",
        "https://panel.example.org/vnc/l.html?",
    ]);
    let out = ok(&env, &sim, &["console", "srv-00001"]);
    let url = column(&env, "srv-00001", "console_url").unwrap();
    let password = column(&env, "srv-00001", "console_password").unwrap();
    assert_eq!(
        out,
        format!("https://panel.example.org/vnc/l.html?{url}#{password}\n")
    );
    assert!(url.starts_with("ws"), "{url}");
    let at: f64 = env.value("SELECT ts FROM vms WHERE name = 'srv-00001'");
    assert!((crate::test::unix_now() - at).abs() < 30.0);
    let json: Value =
        serde_json::from_str(&ok(&env, &sim, &["console", "srv-00001", "--json"])).unwrap();
    assert_eq!(
        json["password"].as_str(),
        column(&env, "srv-00001", "console_password").as_deref()
    );
    assert_ne!(
        json["password"].as_str(),
        Some(password.as_str()),
        "fresh credentials each time"
    );
}

#[test]
fn catalog_commands_show_hetzners_lists() {
    let sim = Sim::start(&[]);
    let env = Env::new();
    let images: Value = serde_json::from_str(&ok(&env, &sim, &["images", "--json"])).unwrap();
    assert!(
        images
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "debian-12")
    );
    let types = ok(&env, &sim, &["types"]);
    assert!(
        types.starts_with("NAME ") && types.contains("cx22"),
        "{types}"
    );
    let types: Value = serde_json::from_str(&ok(&env, &sim, &["types", "--json"])).unwrap();
    assert!(
        types
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["cores"].as_f64().unwrap_or(0.0) > 0.0)
    );
    assert!(ok(&env, &sim, &["dc"]).contains("fsn1-dc14"));
    assert!(ok(&env, &sim, &["datacenters"]).contains("fsn1"));
    assert!(ok(&env, &sim, &["locations"]).contains("Falkenstein"));
}

#[test]
fn errors_are_one_line_with_hetzners_code() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "20"]);
    let env = Env::new();
    let wrong = env
        .cmd(&["sync"])
        .env("HCLOUD_ENDPOINT", &sim.endpoint)
        .env("HCLOUD_TOKEN", "not-the-token")
        .output()
        .unwrap();
    Run::from(wrong).fails_around(
        1,
        "hcc: hetzner: 401 unauthorized: token rejected (check HCLOUD_TOKEN or `hcc config set token -`) [correlation id ",
        "]",
    );
    env.run(&["sync"]).fails(
        2,
        "hcc: hetzner: no API token: set HCLOUD_TOKEN, run `hcc config set token -`, or run \
         `hcc setup`",
    );
    let dead = env
        .cmd(&["sync"])
        .env("HCLOUD_ENDPOINT", "http://127.0.0.1:9/v1")
        .env("HCLOUD_TOKEN", "x")
        .output()
        .unwrap();
    Run::from(dead).fails(
        1,
        "hcc: hetzner: cannot reach http://127.0.0.1:9/v1: connection refused (check the \
         network and `hcc config get endpoint`)",
    );
    hcc(&env, &sim, &["start", "nope"]).fails(1, "hcc: hetzner: server \"nope\" not found");
    ok(&env, &sim, &["sync"]);
    sim.control("POST", "/_sim/fail_next_action", None);
    hcc(&env, &sim, &["reboot", "srv-00001"]).fails(
        1,
        "hcc: hetzner: action reboot_server (90000001) failed: action_failed: Action failed",
    );
}

#[test]
fn secrets_never_reach_stderr() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "20"]);
    let env = Env::new();
    let mut stderr = String::new();
    let mut stdout = String::new();
    for args in [
        &["sync"][..],
        &["console", "srv-00001"],
        &["create", "vm9"],
        &["start", "vm9"],
        &["console", "nope"],
    ] {
        let run = hcc(&env, &sim, args);
        stderr.push_str(&run.stderr);
        stdout.push_str(&run.stdout);
    }
    let console_password = column(&env, "srv-00001", "console_password").unwrap();
    let root_password = column(&env, "vm9", "root_password").unwrap();
    for secret in [sim.token.as_str(), &console_password, &root_password] {
        assert!(!stderr.contains(secret), "secret on stderr: {stderr}");
    }
    assert!(
        stdout.contains(&root_password),
        "create prints the root password once"
    );
}

#[test]
fn sync_survives_injected_faults() {
    let sim = Sim::start(&[
        "--servers",
        "500",
        "--fail",
        "429:0.2,500:0.1,reset:0.05",
        "--seed",
        "11",
    ]);
    let env = Env::new();
    let run = hcc(&env, &sim, &["sync"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("synced 500 servers (500 added"),
        "{run:?}"
    );
    let count: i64 = env.value("SELECT count(DISTINCT id) FROM servers");
    assert_eq!(count, 500);
    assert!(
        sim.stats()["faults"].as_i64().unwrap() > 0,
        "no fault was injected"
    );
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn two_concurrent_syncs_share_the_budget_and_earn_no_429() {
    // 60 requests an hour, the clock sped up 360 times (6 a second): two
    // syncs of 51 requests each need more than the bucket holds.
    let sim = Sim::start(&[
        "--servers",
        "2500",
        "--rate-limit",
        "60/h",
        "--time-scale",
        "360",
    ]);
    let env = Env::new();
    let spawn = || spawn_sync(&env, &sim);
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let run = Run::from(child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stdout.starts_with("synced 2500 servers"), "{run:?}");
        assert!(!run.stderr.contains("429"), "{run:?}");
    }
    assert_eq!(sim.stats()["rate_limited"], 0);
    let count: i64 = env.value("SELECT count(*) FROM servers");
    assert_eq!(count, 2500);
}

#[test]
fn the_official_cli_and_hcc_agree() {
    if !have("hcloud") {
        panic!("the hcloud CLI is missing: scripts/test installs hcloud-cli");
    }
    let sim = Sim::start(&["--servers", "3", "--action-ms", "50"]);
    let env = Env::new();
    let hcloud = |args: &[&str]| {
        let out = std::process::Command::new("hcloud")
            .args(args)
            .envs(sim.client_env())
            .env("HCLOUD_CONFIG", "/nonexistent/hcloud.toml")
            .output()
            .unwrap();
        assert!(out.status.success(), "hcloud {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    hcloud(&[
        "server",
        "create",
        "--name",
        "from-cli",
        "--type",
        "cx22",
        "--image",
        "debian-12",
    ]);
    hcloud(&["server", "poweroff", "from-cli"]);
    ok(&env, &sim, &["sync"]);
    let listed: Value = serde_json::from_str(&hcloud(&["server", "list", "-o", "json"])).unwrap();
    let from_cli = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "from-cli")
        .unwrap()
        .clone();
    assert_eq!(from_cli["id"].as_i64(), Some(id_of(&env, "from-cli")));
    assert_eq!(column(&env, "from-cli", "status").as_deref(), Some("off"));
    // hcc acts, the CLI sees it.
    ok(&env, &sim, &["start", "srv-00002"]);
    let described = hcloud(&["server", "describe", "srv-00002", "-o", "json"]);
    let described: Value = serde_json::from_str(&described).unwrap();
    assert_eq!(described["status"], "running");
}

#[test]
fn setup_offers_pick_lists_from_the_api() {
    let sim = Sim::start(&[]);
    let env = Env::new();
    // token, token_file, endpoint: keep (the environment provides them);
    // location: row 2 of the list; server type: row 1; image: keep, then
    // type `ubuntu-24.04`; the rest: keep; save.
    let answers =
        "\n\n\n2\n1\n\nubuntu-24.04\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\ny\n";
    let mut setup = env.cmd(&["setup"]);
    setup.envs(sim.client_env());
    let run = crate::test::run_with_input(setup, answers);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("location [fsn1]: pick one"),
        "{}",
        run.stdout
    );
    let locations: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("location [fsn1]: pick one"))
        .skip(1)
        .take_while(|l| !l.starts_with("select row"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert!(locations.len() >= 3, "{locations:?}");
    let location = env.ok(&["config", "get", "location"]);
    assert_eq!(location.trim(), locations[1]);
    // The types offered are those the chosen location has available.
    let dcs = sim.get("/datacenters").json();
    let available: Vec<i64> = dcs["datacenters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|dc| dc["location"]["name"] == location.trim())
        .flat_map(|dc| dc["server_types"]["available"].as_array().unwrap().clone())
        .filter_map(|v| v.as_i64())
        .collect();
    let chosen = env.ok(&["config", "get", "server_type"]);
    let types = sim.get("/server_types").json();
    let chosen_id = types["server_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == chosen.trim())
        .and_then(|t| t["id"].as_i64())
        .unwrap();
    assert!(
        available.contains(&chosen_id),
        "{chosen} not available in {location}"
    );
    assert_eq!(env.ok(&["config", "get", "image"]), "ubuntu-24.04\n");
    assert!(run.stdout.contains("debian-12"), "images were offered");
}

/// The `servers` table, one line per row in id order.
fn rows(env: &Env) -> String {
    env.value(
        "SELECT group_concat(line, char(10)) FROM \
         (SELECT id || ' ' || name || ' ' || status AS line FROM servers ORDER BY id)",
    )
}

#[test]
fn a_parallel_sync_stores_every_server_once_and_sync_parallel_1_lists_as_before() {
    // 43 pages of 50 at 50 ms each: one after another well over 2 s.
    let sim = Sim::start(&["--servers", "2120", "--latency", "50"]);
    let parallel = Env::new();
    let sequential = Env::new();
    sequential.ok(&["config", "set", "sync_parallel", "1"]);
    let timed = |env: &Env| {
        let start = std::time::Instant::now();
        let out = ok(env, &sim, &["sync"]);
        (out, start.elapsed())
    };
    let (out, fast) = timed(&parallel);
    // The bookmark, then 43 pages: as many requests as before.
    let expected = "synced 2120 servers (2120 added, 0 updated, 0 removed) (44 requests)\n";
    assert_eq!(out, expected);
    let (out, slow) = timed(&sequential);
    assert_eq!(out, expected);
    // Latency is most of a page's time here; the rest (the simulator and
    // the store, in debug builds) is not shortened by asking at once.
    assert!(
        fast * 4 < slow * 3,
        "4 pages at once took {fast:?}, one after another {slow:?}"
    );
    for env in [&parallel, &sequential] {
        let count: i64 = env.value("SELECT count(*) FROM servers");
        let distinct: i64 = env.value("SELECT count(DISTINCT id) FROM servers");
        assert_eq!((count, distinct), (2120, 2120));
    }
    assert_eq!(rows(&parallel), rows(&sequential));
    // A server gone remotely: its row goes, the others stay.
    let id = id_of(&parallel, "srv-01234");
    assert_eq!(
        sim.control("DELETE", &format!("/_sim/servers/{id}"), None)
            .status,
        200
    );
    for env in [&parallel, &sequential] {
        let out = ok(env, &sim, &["sync"]);
        assert!(
            out.starts_with("synced 2119 servers (0 added, 2119 updated, 1 removed)"),
            "{out}"
        );
        assert!(column(env, "srv-01234", "name").is_none());
        let count: i64 = env.value("SELECT count(*) FROM servers");
        assert_eq!(count, 2119);
    }
    assert_eq!(sim.stats()["rate_limited"], 0);
}

/// Once the parallel part of a listing runs (page 1 answered), `fault`.
fn amid_the_listing(sim: &Sim, fault: impl FnOnce()) {
    let start = std::time::Instant::now();
    while sim.stats()["by_route"]["GET /servers"]
        .as_i64()
        .unwrap_or(0)
        < 3
    {
        assert!(start.elapsed().as_secs() < 20, "the listing never began");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    fault();
}

#[test]
fn a_parallel_sync_retries_a_lost_page_and_fails_on_a_page_that_keeps_failing() {
    let sim = Sim::start(&["--servers", "1500", "--latency", "50"]);
    let env = Env::new();
    let sync = || spawn_sync(&env, &sim);
    // An answer lost while pages are out: that page is asked for again.
    let child = sync();
    amid_the_listing(&sim, || sim.lose_next_answer("GET /servers"));
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with("synced 1500 servers (1500 added, 0 updated, 0 removed) (32 requests)"),
        "{run:?}"
    );
    let distinct: i64 = env.value("SELECT count(DISTINCT id) FROM servers");
    let count: i64 = env.value("SELECT count(*) FROM servers");
    assert_eq!((count, distinct), (1500, 1500));

    // A server goes; then every page out answers 429 more often than it is
    // retried: the sync fails, and no row is removed.
    let id = id_of(&env, "srv-00777");
    assert_eq!(
        sim.control("DELETE", &format!("/_sim/servers/{id}"), None)
            .status,
        200
    );
    let child = sync();
    amid_the_listing(&sim, || {
        let limited = sim.control("POST", "/_sim/rate_limit_next", Some(r#"{"count": 40}"#));
        assert_eq!(limited.status, 200);
    });
    let run = Run::from(child.wait_with_output().unwrap());
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("rate_limit_exceeded"), "{run:?}");
    assert!(column(&env, "srv-00777", "name").is_some());
    let count: i64 = env.value("SELECT count(*) FROM servers");
    assert_eq!(count, 1500);

    // The faults over, the next sync removes it.
    sim.control("POST", "/_sim/rate_limit_next", Some(r#"{"count": 0}"#));
    let out = ok(&env, &sim, &["sync"]);
    assert!(
        out.starts_with("synced 1499 servers (0 added, 1499 updated, 1 removed)"),
        "{out}"
    );
    assert!(column(&env, "srv-00777", "name").is_none());
}

/// `hcc sync` started against the sim, its output captured.
fn spawn_sync(env: &Env, sim: &Sim) -> std::process::Child {
    env.cmd(&["sync"])
        .envs(sim.client_env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}
