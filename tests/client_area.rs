//! The client-area verbs (rebuild, reset-password, rescue, change-type,
//! reverse DNS, ISOs, snapshots, backups) end to end against `hcc sim`:
//! through the queue (spool, SQL, `hcc push`) with a worker, from the
//! CLI, and through `hcc serve`'s API with its scopes; a root password
//! handed out once and written nowhere else; malformed lines refused
//! with one clear line.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::serve::{Keys, Serve, assert_status, code, keyed, serving};
use crate::test::{Env, Run, Sim, Worker, eventually};

const SIM_ARGS: &[&str] = &["--servers", "3", "--action-ms", "50"];

/// How a command reaches the queue.
#[derive(Clone, Copy)]
enum Route {
    Spool,
    Sql,
    Push,
}

/// Queues `line` by `route` and waits for the worker to close it: its
/// result, which must be done.
fn queued(env: &Env, worker: &Worker, route: Route, line: &str) -> Value {
    let before: i64 = env.value("SELECT coalesce(max(id), 0) FROM commands");
    match route {
        Route::Spool => env.spool(
            &format!("{}.client-area", before + 1),
            format!("{line}\n").as_bytes(),
        ),
        Route::Sql => {
            let (cmd, arg) = line.split_once(' ').unwrap();
            env.db()
                .execute(
                    "INSERT INTO commands (cmd, arg) VALUES (?1, ?2)",
                    [cmd, arg],
                )
                .unwrap();
        }
        Route::Push => {
            env.push_id(&line.split(' ').collect::<Vec<_>>());
        }
    }
    let mut id = 0;
    let arrived = eventually(Duration::from_secs(10), || {
        id = env.value(&format!(
            "SELECT coalesce(max(id), 0) FROM commands WHERE id > {before}"
        ));
        id > 0
    });
    assert!(
        arrived,
        "`{line}` never reached the queue: {}",
        worker.log()
    );
    let (state, result, error) = worker.closed(env, id);
    assert_eq!(state, "done", "`{line}`: {error:?}\n{}", worker.log());
    serde_json::from_str(&result.unwrap()).unwrap()
}

/// The sim's server `id`, as Hetzner's API shows it.
fn sim_server(sim: &Sim, id: i64) -> Value {
    let answer = sim.get(&format!("/servers/{id}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["server"].clone()
}

fn id_of(env: &Env, name: &str) -> i64 {
    env.value(&format!("SELECT id FROM servers WHERE name = '{name}'"))
}

/// `hcc ARGS` against the sim.
fn cli(env: &Env, sim: &Sim, args: &[&str]) -> Run {
    Run::from(env.cmd(args).envs(sim.client_env()).output().unwrap())
}

/// `hcc ARGS --json` against the sim, which must succeed: its JSON.
fn cli_json(env: &Env, sim: &Sim, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let run = cli(env, sim, &args);
    assert_eq!(run.code, 0, "hcc {args:?}: {run:?}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

/// The sim's snapshots.
fn snapshots(sim: &Sim) -> Vec<Value> {
    sim.get("/images?type=snapshot").json()["images"]
        .as_array()
        .cloned()
        .unwrap()
}

fn root_password(env: &Env, name: &str) -> Option<String> {
    env.value(&format!(
        "SELECT root_password FROM servers WHERE name = '{name}'"
    ))
}

#[test]
fn every_verb_runs_through_the_queue() {
    let sim = Sim::start(SIM_ARGS);
    let (env, _) = keyed(&sim);
    let worker = Worker::start(&env, &sim, "3600");
    let id = id_of(&env, "srv-00001");
    let run = |route, line: &str| queued(&env, &worker, route, line);

    let rebuilt = run(Route::Spool, "rebuild srv-00001 ubuntu-24.04");
    assert_eq!(rebuilt["image"], "ubuntu-24.04", "{rebuilt}");
    assert!(rebuilt.get("root_password").is_none(), "{rebuilt}");
    assert_eq!(sim_server(&sim, id)["image"]["name"], "ubuntu-24.04");
    let first = root_password(&env, "srv-00001").expect("a root password after rebuild");
    // Queued otherwise than by an API key: nothing kept in the command.
    let kept: Option<String> = env.value("SELECT max(root_password) FROM commands");
    assert_eq!(kept, None);

    run(Route::Sql, "enable-rescue srv-00001");
    assert_eq!(sim_server(&sim, id)["rescue_enabled"], true);
    let rescue = root_password(&env, "srv-00001").unwrap();
    assert_ne!(rescue, first, "enable-rescue stores its own password");
    run(Route::Push, "disable-rescue srv-00001");
    assert_eq!(sim_server(&sim, id)["rescue_enabled"], false);
    run(Route::Push, "reset-password srv-00001");
    assert_ne!(root_password(&env, "srv-00001").unwrap(), rescue);

    let rdns = run(Route::Push, "set-rdns srv-00001 10.0.0.1 www.example.com");
    assert_eq!(rdns["dns_ptr"], "www.example.com", "{rdns}");
    let ipv4 = &sim_server(&sim, id)["public_net"]["ipv4"];
    assert_eq!(ipv4["ip"], "10.0.0.1");
    assert_eq!(ipv4["dns_ptr"], "www.example.com");

    run(Route::Spool, "attach-iso srv-00001 virtio-win-0.1.262.iso");
    assert_eq!(
        sim_server(&sim, id)["iso"]["name"],
        "virtio-win-0.1.262.iso"
    );
    run(Route::Sql, "detach-iso srv-00001");
    assert_eq!(sim_server(&sim, id)["iso"], Value::Null);

    let imaged = run(Route::Push, "create-image srv-00001 before the upgrade");
    let snapshots = snapshots(&sim);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let snapshot = &snapshots[0];
    assert_eq!(snapshot["description"], "before the upgrade");
    assert_eq!(
        snapshot["labels"],
        json!({"managed": "1", "hcc-server": "srv-00001"})
    );
    assert_eq!(imaged["image_id"], snapshot["id"], "{imaged}");

    // A snapshot is rebuilt from by its id.
    let line = format!("rebuild srv-00002 {}", snapshot["id"]);
    run(Route::Sql, &line);
    let image = &sim_server(&sim, id_of(&env, "srv-00002"))["image"];
    assert_eq!(image["id"], snapshot["id"], "{image}");

    run(Route::Spool, "enable-backup srv-00001");
    assert!(sim_server(&sim, id)["backup_window"].is_string());
    run(Route::Sql, "disable-backup srv-00001");
    assert_eq!(sim_server(&sim, id)["backup_window"], Value::Null);
    let bad: Vec<_> = std::fs::read_dir(env.path("spool/bad")).unwrap().collect();
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn change_type_restarts_a_running_server_and_leaves_an_off_one_off() {
    let sim = Sim::start(SIM_ARGS);
    let (env, _) = keyed(&sim);
    let worker = Worker::start(&env, &sim, "3600");
    // srv-00003 is an arm server: srv-00001 goes off.
    let (running, off) = (id_of(&env, "srv-00002"), id_of(&env, "srv-00001"));
    assert_eq!(sim_server(&sim, running)["status"], "running");
    let disk = sim_server(&sim, off)["primary_disk_size"].clone();

    let resized = queued(&env, &worker, Route::Push, "change-type srv-00002 cx32");
    assert_eq!(resized["restarted"], true, "{resized}");
    assert_eq!(resized["status"], "running", "{resized}");
    assert_eq!(resized["server_type"], "cx32", "{resized}");
    let server = sim_server(&sim, running);
    assert_eq!(server["server_type"]["name"], "cx32");
    assert_eq!(server["status"], "running");
    assert_eq!(server["primary_disk_size"], server["server_type"]["disk"]);
    // The worker said each step.
    let log = worker.log();
    for step in ["shutting down", "changing type", "starting"] {
        assert!(
            log.contains(&format!("`change-type srv-00002`: {step}")),
            "{log}"
        );
    }

    // A type Hetzner refuses: the command fails, and the server that was
    // running runs again.
    let refused = env.push_id(&["change-type", "srv-00002", "cax11"]);
    let (state, _, error) = worker.closed(&env, refused);
    assert_eq!(state, "failed", "{}", worker.log());
    assert!(error.unwrap().contains("another architecture"));
    let server = sim_server(&sim, running);
    assert_eq!(server["server_type"]["name"], "cx32");
    assert_eq!(server["status"], "running", "left off after a refusal");

    queued(&env, &worker, Route::Push, "off srv-00001");
    assert_eq!(sim_server(&sim, off)["status"], "off");
    let resized = queued(
        &env,
        &worker,
        Route::Spool,
        "change-type srv-00001 cx32 keep-disk",
    );
    assert_eq!(resized["restarted"], false, "{resized}");
    assert_eq!(resized["status"], "off", "{resized}");
    let server = sim_server(&sim, off);
    assert_eq!(server["server_type"]["name"], "cx32");
    assert_eq!(server["status"], "off");
    assert_eq!(server["primary_disk_size"], disk, "keep-disk kept the disk");
}

#[test]
fn the_cli_runs_each_verb() {
    let sim = Sim::start(SIM_ARGS);
    let (env, _) = keyed(&sim);
    let id = id_of(&env, "srv-00001");

    let rebuilt = cli_json(&env, &sim, &["rebuild", "srv-00001", "ubuntu-24.04"]);
    assert_eq!(rebuilt["name"], "srv-00001");
    assert_eq!(rebuilt["waited"], true);
    assert_eq!(rebuilt["status"], "running");
    assert_eq!(rebuilt["image"], "ubuntu-24.04");
    assert_eq!(
        rebuilt["root_password"].as_str(),
        root_password(&env, "srv-00001").as_deref()
    );
    assert_eq!(sim_server(&sim, id)["image"]["name"], "ubuntu-24.04");

    // Not waited for: the action's id, and it still ends.
    let begun = cli_json(&env, &sim, &["enable-rescue", "srv-00001", "--no-wait"]);
    assert_eq!(begun["waited"], false, "{begun}");
    assert!(begun["action_id"].is_u64(), "{begun}");
    assert!(begun.get("status").is_none(), "{begun}");
    let action = begun["action_id"].clone();
    let ended = eventually(Duration::from_secs(10), || {
        sim.get(&format!("/actions/{action}")).json()["action"]["status"] == "success"
    });
    assert!(ended);
    assert_eq!(sim_server(&sim, id)["rescue_enabled"], true);
    let run = cli(&env, &sim, &["disable-rescue", "srv-00001"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "srv-00001: rescue system disabled\n"),
        "{run:?}"
    );
    assert_eq!(sim_server(&sim, id)["rescue_enabled"], false);

    let rdns = cli_json(
        &env,
        &sim,
        &["set-rdns", "srv-00001", "10.0.0.1", "a.example.org"],
    );
    assert_eq!(
        (rdns["ip"].as_str(), rdns["dns_ptr"].as_str()),
        (Some("10.0.0.1"), Some("a.example.org"))
    );
    assert_eq!(
        sim_server(&sim, id)["public_net"]["ipv4"]["dns_ptr"],
        "a.example.org"
    );
    let iso = cli_json(&env, &sim, &["attach-iso", "srv-00001", "104212"]);
    assert_eq!(iso["action"], "attach_iso", "{iso}");
    assert_eq!(
        sim_server(&sim, id)["iso"]["name"],
        "FreeBSD-14.1-RELEASE-amd64-dvd1.iso"
    );
    let run = cli(&env, &sim, &["detach-iso", "srv-00001"]);
    assert_eq!(run.stdout, "srv-00001: ISO detached\n", "{run:?}");
    assert_eq!(sim_server(&sim, id)["iso"], Value::Null);

    let image = cli_json(&env, &sim, &["create-image", "srv-00001"]);
    let snapshots = snapshots(&sim);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!(image["image_id"], snapshots[0]["id"]);
    assert_eq!(snapshots[0]["description"], "srv-00001 snapshot");
    assert_eq!(snapshots[0]["labels"]["hcc-server"], "srv-00001");
    cli_json(&env, &sim, &["enable-backup", "srv-00001"]);
    assert!(sim_server(&sim, id)["backup_window"].is_string());
    let run = cli(&env, &sim, &["disable-backup", "srv-00001"]);
    assert_eq!(run.stdout, "srv-00001: backups disabled\n", "{run:?}");
    assert_eq!(sim_server(&sim, id)["backup_window"], Value::Null);

    // change-type says each step on stderr, its result on stdout.
    let run = cli(&env, &sim, &["change-type", "srv-00002", "cx32"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr,
        "hcc: srv-00002: shutting down\nhcc: srv-00002: changing type\nhcc: srv-00002: starting\n"
    );
    assert_eq!(run.stdout, "srv-00002: type changed to cx32, now running\n");
    let server = sim_server(&sim, id_of(&env, "srv-00002"));
    assert_eq!(
        server["primary_disk_size"], 80,
        "the disk grew with the type"
    );
    let run = cli(&env, &sim, &["change-type", "srv-00002", "cx99"]);
    assert_eq!(run.code, 1, "{run:?}");
    let steps: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(steps.len(), 4, "{run:?}");
    assert_eq!(
        steps[..3],
        [
            "hcc: srv-00002: shutting down",
            "hcc: srv-00002: changing type",
            "hcc: srv-00002: starting"
        ]
    );
    assert!(steps[3].contains("server type not found"), "{run:?}");
    assert_eq!(
        sim_server(&sim, id_of(&env, "srv-00002"))["status"],
        "running"
    );
    // An off server stays off, its disk as it was.
    let run = cli(&env, &sim, &["force", "srv-00001"]);
    assert_eq!(run.code, 0, "{run:?}");
    let resized = cli_json(
        &env,
        &sim,
        &["change-type", "srv-00001", "cx32", "--keep-disk"],
    );
    assert_eq!(
        (
            &resized["server_type"],
            &resized["restarted"],
            &resized["status"]
        ),
        (&json!("cx32"), &json!(false), &json!("off")),
        "{resized}"
    );
    let server = sim_server(&sim, id);
    assert_eq!(server["server_type"]["name"], "cx32");
    assert_eq!(server["primary_disk_size"], 40, "kept");
    // --no-wait queues it for the worker instead, once the server is
    // known; nothing changes until a worker runs it.
    let queued = cli_json(
        &env,
        &sim,
        &[
            "change-type",
            "srv-00001",
            "cx22",
            "--keep-disk",
            "--no-wait",
        ],
    );
    assert_eq!(queued["waited"], false, "{queued}");
    let command = queued["command"].as_i64().unwrap();
    assert_eq!(
        env.value::<String>(&format!(
            "SELECT cmd || ' ' || arg FROM commands WHERE id = {command}"
        )),
        "change-type srv-00001 cx22 keep-disk"
    );
    assert_eq!(sim_server(&sim, id)["server_type"]["name"], "cx32");
}

#[test]
fn the_cli_prints_a_root_password_once() {
    let sim = Sim::start(SIM_ARGS);
    let (env, _) = keyed(&sim);
    let run = cli(&env, &sim, &["reset-password", "srv-00001"]);
    assert_eq!(run.code, 0, "{run:?}");
    let password = root_password(&env, "srv-00001").unwrap();
    assert_eq!(
        run.stdout,
        format!("srv-00001: root password reset\nroot password: {password}\n")
    );
    assert_eq!(run.stderr, "");
    let begun = cli_json(&env, &sim, &["reset-password", "srv-00001", "--no-wait"]);
    let again = root_password(&env, "srv-00001").unwrap();
    assert_ne!(again, password);
    assert_eq!(begun["root_password"].as_str(), Some(again.as_str()));
    // Kept in no command row: the CLI queues nothing.
    let commands: i64 = env.value("SELECT count(*) FROM commands");
    assert_eq!(commands, 0);
}

#[test]
fn rescue_then_reboot_boots_the_rescue_system() {
    let sim = Sim::start(SIM_ARGS);
    let (env, _) = keyed(&sim);
    let id = id_of(&env, "srv-00001");
    let console = || {
        sim.control("GET", &format!("/_sim/consoles/{id}"), None)
            .json()
    };
    let banner = |c: &Value| c["screen"][0].as_str().unwrap_or_default().to_string();
    assert!(!banner(&console()).contains("Rescue"), "{}", console());

    cli_json(&env, &sim, &["enable-rescue", "srv-00001"]);
    // The worker runs the reboot, as a panel queues it.
    let worker = Worker::start(&env, &sim, "3600");
    queued(&env, &worker, Route::Push, "reboot srv-00001");
    let screen = console();
    assert!(
        banner(&screen).contains("Hetzner Rescue System"),
        "{screen}"
    );
    assert_eq!(
        sim_server(&sim, id)["rescue_enabled"],
        false,
        "used up by the boot"
    );

    queued(
        &env,
        &worker,
        Route::Spool,
        "rebuild srv-00001 ubuntu-24.04",
    );
    let screen = console();
    assert_eq!(screen["system"], "Ubuntu 24.04", "{screen}");
    assert!(banner(&screen).contains("Ubuntu 24.04"), "{screen}");
}

/// `POST /api/v1/servers/NAME/actions/VERB` with `body` by `key`.
fn act(serve: &Serve, key: &str, name: &str, verb: &str, body: &str) -> crate::test::Http {
    serve.request(
        "POST",
        &format!("/api/v1/servers/{name}/actions/{verb}"),
        Some(body),
        Some(key),
    )
}

/// An action queued through the API (202), then run by `worker`: the
/// command's result.
fn api_done(
    (serve, env, worker): (&Serve, &Env, &Worker),
    key: &str,
    verb: &str,
    body: Value,
) -> Value {
    let queued = act(serve, key, "srv-00001", verb, &body.to_string());
    assert_status(&queued, 202, verb);
    let id = queued.json()["command"]["id"].as_i64().unwrap();
    let (state, result, error) = worker.closed(env, id);
    assert_eq!(state, "done", "{verb}: {error:?}\n{}", worker.log());
    serde_json::from_str(&result.unwrap()).unwrap()
}

#[test]
fn the_api_queues_each_verb_with_its_body() {
    let (sim, env, keys, serve) = serving(SIM_ARGS);
    let worker = Worker::start(&env, &sim, "3600");
    let at = (&serve, &env, &worker);
    let id = id_of(&env, "srv-00001");
    let admin = keys.admin.as_str();

    let rebuilt = api_done(at, admin, "rebuild", json!({"image": "ubuntu-24.04"}));
    assert_eq!(rebuilt["image"], "ubuntu-24.04");
    assert_eq!(sim_server(&sim, id)["image"]["name"], "ubuntu-24.04");
    api_done(at, &keys.act, "enable-rescue", json!({"type": "linux64"}));
    assert_eq!(sim_server(&sim, id)["rescue_enabled"], true);
    api_done(at, &keys.act, "disable-rescue", json!({}));
    assert_eq!(sim_server(&sim, id)["rescue_enabled"], false);
    let body = json!({"ip": "10.0.0.1", "hostname": "api.example.net"});
    api_done(at, &keys.act, "set-rdns", body);
    assert_eq!(
        sim_server(&sim, id)["public_net"]["ipv4"]["dns_ptr"],
        "api.example.net"
    );
    let body = json!({"iso": "ubuntu-24.04.1-live-server-amd64.iso"});
    api_done(at, &keys.act, "attach-iso", body);
    assert_eq!(sim_server(&sim, id)["iso"]["id"], 109_865);
    api_done(at, &keys.act, "detach-iso", json!({}));
    assert_eq!(sim_server(&sim, id)["iso"], Value::Null);
    api_done(
        at,
        admin,
        "create-image",
        json!({"description": "from the API"}),
    );
    assert_eq!(snapshots(&sim)[0]["description"], "from the API");
    // The catalog offers the snapshot and the ISOs.
    let catalog = serve.get("/api/v1/catalog", admin).json();
    let offered = &catalog["snapshots"][0];
    assert_eq!(offered["description"], "from the API", "{catalog}");
    assert_eq!(offered["created_from"], "srv-00001", "{catalog}");
    let isos: Vec<&str> = catalog["isos"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(isos.contains(&"virtio-win-0.1.262.iso"), "{isos:?}");
    api_done(at, admin, "enable-backup", json!({}));
    assert!(sim_server(&sim, id)["backup_window"].is_string());
    api_done(at, admin, "disable-backup", json!({}));
    assert_eq!(sim_server(&sim, id)["backup_window"], Value::Null);
    let body = json!({"server_type": "cx32", "keep_disk": true});
    let resized = api_done(at, admin, "change-type", body);
    assert_eq!(
        (&resized["restarted"], &resized["status"]),
        (&json!(true), &json!("running"))
    );
    let server = sim_server(&sim, id);
    assert_eq!(server["server_type"]["name"], "cx32");
    assert_eq!(server["primary_disk_size"], 40, "kept");
    let arg: String = env.value("SELECT arg FROM commands WHERE cmd = 'change-type'");
    assert_eq!(arg, "srv-00001 cx32 keep-disk");
    // The server's detail shows what the verbs left.
    let shown = serve.get("/api/v1/servers/srv-00001", &keys.read).json();
    let detail = &shown["detail"];
    assert_eq!(detail["rescue_enabled"], false, "{shown}");
    assert_eq!(detail["iso"], Value::Null, "{shown}");
}

#[test]
fn the_api_checks_scopes_and_bodies() {
    let (_sim, env, keys, serve) = serving(SIM_ARGS);
    let refused = act(
        &serve,
        &keys.act,
        "srv-00001",
        "rebuild",
        r#"{"image": "debian-12"}"#,
    );
    assert_status(&refused, 403, "act rebuilds");
    assert_eq!(code(&refused), "forbidden");
    for verb in [
        "change-type",
        "create-image",
        "enable-backup",
        "disable-backup",
    ] {
        let refused = act(
            &serve,
            &keys.act,
            "srv-00001",
            verb,
            r#"{"server_type": "cx32"}"#,
        );
        assert_eq!(
            (refused.status, code(&refused)),
            (403, "forbidden".into()),
            "{verb}"
        );
    }
    let allowed = act(&serve, &keys.act, "srv-00001", "reset-password", "{}");
    assert_status(&allowed, 202, "act resets a password");
    for key in [&keys.read, &keys.console] {
        let refused = act(&serve, key, "srv-00001", "reset-password", "{}");
        assert_status(&refused, 403, "read or console resets a password");
    }
    let bad = [
        ("rebuild", "{}"),
        ("rebuild", r#"{"image": 12}"#),
        ("rebuild", r#"{"image": "bad image"}"#),
        (
            "change-type",
            r#"{"server_type": "cx32", "keep_disk": "yes"}"#,
        ),
        ("change-type", r#"{"keep_disk": true}"#),
        ("set-rdns", r#"{"ip": "not-an-ip"}"#),
        ("set-rdns", r#"{"ip": "10.0.0.1", "hostname": "a b"}"#),
        ("attach-iso", r#"{"iso": ["x"]}"#),
        ("create-image", r#"{"description": "\u001b[2J"}"#),
        ("enable-rescue", "not json"),
    ];
    for (verb, body) in bad {
        let answer = act(&serve, &keys.admin, "srv-00001", verb, body);
        assert_eq!(answer.status, 400, "{verb} {body}: {}", answer.body);
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            !message.is_empty() && !message.contains('\n'),
            "{verb} {body}: {message:?}"
        );
    }
    // Only the one allowed command was queued.
    let queued: i64 = env.value("SELECT count(*) FROM commands");
    assert_eq!(queued, 1);
}

#[test]
fn a_root_password_goes_once_to_the_key_that_queued_it_and_nowhere_else() {
    let (sim, env, keys, serve) = serving(SIM_ARGS);
    let Keys {
        act: a, admin: b, ..
    } = &keys;
    let queued = act(&serve, a, "srv-00001", "reset-password", "{}");
    assert_status(&queued, 202, "reset-password");
    let id = queued.json()["command"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/commands/{id}");
    let read = |key: &str| {
        let answer = serve.get(&path, key);
        assert_status(&answer, 200, "GET command");
        answer.json()["command"].clone()
    };
    // Not done yet: nothing to hand out.
    let before = read(a);
    assert_eq!(before["state"], "queued");
    assert!(before["result"].get("root_password").is_none(), "{before}");

    let mut worker = Worker::start(&env, &sim, "3600");
    worker.closed(&env, id);
    let other = read(b);
    assert_eq!(other["state"], "done");
    assert!(other["result"].get("root_password").is_none(), "{other}");
    let first = read(a);
    let password = first["result"]["root_password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(Some(password.clone()), root_password(&env, "srv-00001"));
    let second = read(a);
    assert!(second["result"].get("root_password").is_none(), "{second}");
    let kept: Option<String> = env.value(&format!(
        "SELECT root_password FROM commands WHERE id = {id}"
    ));
    assert_eq!(kept, None);

    // Nowhere else: not in the logs, the spool, the metrics, the API's
    // other answers, the command's stored result or the message ring.
    let metrics = serve.request("GET", "/metrics", None, None);
    assert_status(&metrics, 200, "metrics");
    for key in [a, b] {
        for path in [
            "/api/v1/servers/srv-00001",
            "/api/v1/servers",
            "/api/v1/status",
        ] {
            let answer = serve.get(path, key);
            assert_status(&answer, 200, path);
            assert!(!answer.body.contains(&password), "{path}: {}", answer.body);
        }
    }
    worker.stop();
    let mut places = vec![
        ("worker log", worker.log()),
        ("serve log", serve.log()),
        ("metrics", metrics.body),
        (
            "result",
            env.value(&format!("SELECT result FROM commands WHERE id = {id}")),
        ),
        (
            "messages",
            env.value("SELECT coalesce(group_concat(msg), '') FROM messages"),
        ),
    ];
    for dir in ["spool/bad", "spool/new", "spool/tmp"] {
        for file in std::fs::read_dir(env.path(dir)).unwrap().flatten() {
            places.push((
                dir,
                std::fs::read_to_string(file.path()).unwrap_or_default(),
            ));
        }
    }
    for (place, text) in places {
        assert!(
            !text.contains(&password),
            "the root password is in the {place}: {text}"
        );
    }
    assert!(
        serve.log().contains(&format!("/api/v1/commands/{id}")),
        "{}",
        serve.log()
    );
}

#[test]
fn malformed_lines_are_refused_with_one_clear_line() {
    let sim = Sim::start(SIM_ARGS);
    let (env, _) = keyed(&sim);
    let lines = [
        (
            "rdns",
            "set-rdns srv-00001 not-an-ip",
            "`not-an-ip` is not an IP address",
        ),
        (
            "shrink",
            "change-type srv-00001 cx32 shrink",
            "`change-type` takes `keep-disk` after the type, not `shrink`",
        ),
        (
            "rebuild",
            "rebuild srv-00001",
            "`rebuild` takes a server name and IMAGE, got 0 words after it",
        ),
        (
            "image",
            "rebuild srv-00001 ../../etc",
            "invalid image `../../etc`: expected a Hetzner name or id (letters, digits, `-`, `_`, `.`)",
        ),
        (
            "reset",
            "reset-password srv-00001 now",
            "`reset-password` takes one server name, got 1 words after it",
        ),
    ];
    for (file, line, _) in lines {
        env.spool(file, format!("{line}\n").as_bytes());
    }
    let run = env.run(&["ingest"]);
    assert_eq!(
        run.stdout, "queued 0, rejected 5 (see spool/bad)\n",
        "{run:?}"
    );
    for (file, line, why) in lines {
        let kept = std::fs::read_to_string(env.path("spool/bad").join(file)).unwrap();
        assert_eq!(kept, format!("{line}\n"));
        let reason = std::fs::read_to_string(env.path(&format!("spool/bad/{file}.why"))).unwrap();
        assert_eq!(reason.lines().count(), 1, "{reason:?}");
        assert!(reason.contains(why), "{file}: {reason:?}");
        // The same words from `hcc push`: exit 2, the same reason.
        env.run(&[&["push"][..], &line.split(' ').collect::<Vec<_>>()].concat())
            .fails(2, &format!("hcc: {why}"));
    }
    let queued: i64 = env.value("SELECT count(*) FROM commands");
    assert_eq!(queued, 0);

    // The CLI: exit 2 and one `hcc:` line; nothing reaches the sim.
    let actions = sim.stats()["by_route"].clone();
    cli(&env, &sim, &["set-rdns", "srv-00001", "not-an-ip"])
        .fails(2, "hcc: `not-an-ip` is not an IP address");
    cli(&env, &sim, &["change-type", "srv-00001", "cx32", "shrink"]).fails(
        2,
        "hcc: unexpected argument 'shrink' found (see `hcc --help`)",
    );
    cli(&env, &sim, &["rebuild", "srv-00001"]).fails(
        2,
        "hcc: the following required arguments were not provided: <IMAGE> (see `hcc --help`)",
    );
    cli(&env, &sim, &["rebuild", "srv-00001", "a/b"]).fails(
        2,
        "hcc: invalid image `a/b`: expected a Hetzner name or id (letters, digits, `-`, `_`, `.`)",
    );
    cli(&env, &sim, &["create-image", "srv-00001", "\u{1b}[2J"])
        .fails(2, "hcc: description contains control characters");
    assert_eq!(sim.stats()["by_route"], actions);

    // The API: 400 with the same reason.
    let serve = Serve::start(&env, &sim, &[]);
    let admin = env.ok(&["apikey", "add", "panel", "--scope", "admin"]);
    let answer = act(
        &serve,
        admin.trim(),
        "srv-00001",
        "set-rdns",
        r#"{"ip": "not-an-ip"}"#,
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(
        answer.json()["error"]["message"],
        "`not-an-ip` is not an IP address"
    );
}
