//! A real panel: `tests/panel/panel.php` (php-cli, PDO SQLite) queues a
//! console by spool file and a stop by INSERT, against `hcc worker` and
//! `hcc sim`, and what it prints must agree with `hcc.db` and the sim.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::test::{Env, Run, Sim, Worker, eventually, have};

fn panel_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/panel/panel.php")
}

/// Insists on php-cli with PDO SQLite.
fn need_php() {
    let ready = have("php")
        && Command::new("php")
            .args(["-r", "exit(extension_loaded('pdo_sqlite') ? 0 : 1);"])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ready,
        "php with PDO SQLite is missing: scripts/test installs php-cli and php-sqlite3 \
         (apt-get install -y php-cli php-sqlite3)"
    );
}

/// Runs the PHP panel on `env`'s state directory.
fn panel(env: &Env, args: &[&str]) -> Run {
    need_php();
    let out = Command::new("php")
        .arg(panel_script())
        .args(args)
        .env("HCC_HOME", env.home())
        .stdin(Stdio::null())
        .output()
        .expect("run php");
    Run::from(out)
}

/// The panel's JSON lines, merged into one object.
fn outcome(run: &Run) -> Value {
    let mut all = serde_json::Map::new();
    for line in run.stdout.lines() {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}; {run:?}"));
        all.extend(value.as_object().expect("one object per line").clone());
    }
    Value::Object(all)
}

fn server_id(sim: &Sim, name: &str) -> i64 {
    sim.get(&format!("/servers?name={name}")).json()["servers"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no server {name} in the sim"))
}

#[test]
fn php_panel_gets_a_console_by_spool_and_stops_a_server_by_insert() {
    let sim = Sim::start(&["--servers", "3", "--action-ms", "50"]);
    let env = Env::new();
    let mut worker = Worker::start(&env, &sim, "3600");

    let run = panel(&env, &["--timeout", "20"]);
    assert_eq!(run.code, 0, "{run:?}\nworker log:\n{}", worker.log());
    assert_eq!(run.stderr, "", "{run:?}");
    let out = outcome(&run);

    // The console: what the panel read is what hcc stored, and a ticket
    // the sim handed out for that server.
    let url = out["console_url"].as_str().expect("console_url");
    let password = out["console_password"].as_str().expect("console_password");
    let (row_url, row_password, row_at): (String, String, f64) = env
        .db()
        .query_row(
            "SELECT console_url, console_password, console_at FROM servers WHERE name = 'srv-00001'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the console row");
    assert_eq!((url, password), (row_url.as_str(), row_password.as_str()));
    // Within a microsecond: serde_json parses floats to within one ulp.
    let at = out["console_at"].as_f64().expect("console_at");
    assert!((at - row_at).abs() < 1e-6, "{at} vs {row_at}");
    let srv1 = server_id(&sim, "srv-00001");
    let tickets = sim.control("GET", "/_sim/consoles", None).json()["consoles"].clone();
    let tickets = tickets.as_array().expect("consoles");
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0]["server"].as_i64(), Some(srv1));
    assert_eq!(tickets[0]["password"].as_str(), Some(password));
    let token = tickets[0]["token"].as_str().expect("token");
    assert!(
        url.contains(&format!("/console/{srv1}?token={token}")),
        "{url}"
    );

    // The spool file became one command, done, and left nothing behind.
    let spooled = out["spooled"].as_str().expect("spooled");
    let (cmd, state, source): (String, String, String) = env
        .db()
        .query_row(
            "SELECT cmd || ' ' || arg, state, source FROM commands WHERE spool_name = ?1",
            [spooled],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the spooled command");
    assert_eq!(
        (cmd.as_str(), state.as_str(), source.as_str()),
        ("console srv-00001", "done", "spool")
    );
    for dir in ["spool/tmp", "spool/new", "spool/bad"] {
        let left = std::fs::read_dir(env.path(dir)).expect(dir).count();
        assert_eq!(left, 0, "{dir} not empty");
    }

    // The inserted command: the panel's id, done, and the server is off.
    let id = out["command_id"].as_i64().expect("command_id");
    assert_eq!(out["inserted"].as_i64(), Some(id));
    assert_eq!(out["command_state"], "done");
    let (cmd, state, source): (String, String, String) = env
        .db()
        .query_row(
            "SELECT cmd || ' ' || arg, state, source FROM commands WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the inserted command");
    assert_eq!(
        (cmd.as_str(), state.as_str(), source.as_str()),
        ("stop srv-00002", "done", "sql")
    );
    let srv2 = server_id(&sim, "srv-00002");
    assert_eq!(out["result"]["server_id"].as_i64(), Some(srv2));
    let remote = sim.get(&format!("/servers/{srv2}")).json();
    assert_eq!(remote["server"]["status"], "off");
    let local: String = env.value("SELECT status FROM servers WHERE name = 'srv-00002'");
    assert_eq!(local, "off");
    // The other servers were not touched.
    let srv3 = server_id(&sim, "srv-00003");
    assert_eq!(
        sim.get(&format!("/servers/{srv3}")).json()["server"]["status"],
        "running"
    );
    let done: i64 = env.value(&format!(
        "SELECT count(*) FROM messages WHERE msg = 'done {id}'"
    ));
    assert_eq!(done, 1);

    let status = worker.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        worker.log()
    );
}

#[test]
fn php_panel_reports_failed_commands_and_timeouts() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "50"]);
    let env = Env::new();

    // No worker yet: nothing answers, the panel gives up with exit 1.
    let run = panel(&env, &["--command", "stop srv-00001", "--timeout", "0.5"]);
    assert_eq!(run.code, 1, "{run:?}");
    let out = outcome(&run);
    assert_eq!(out["timeout"], serde_json::json!(["console", "command"]));
    let first_stop = out["inserted"].as_i64().expect("inserted");

    // The worker takes over what was queued, and then a bad command ends
    // failed with hcc's reason, which the panel shows (exit 3).
    let worker = Worker::start(&env, &sim, "3600");
    let run = panel(&env, &["--command", "stop nosuch", "--timeout", "20"]);
    assert_eq!(run.code, 3, "{run:?}\nworker log:\n{}", worker.log());
    let out = outcome(&run);
    assert_eq!(out["command_state"], "failed");
    assert!(
        out["error"].as_str().is_some_and(|e| e.contains("nosuch")),
        "{out}"
    );
    assert!(out["console_url"].is_string(), "{out}");
    assert!(eventually(Duration::from_secs(10), || {
        env.value::<i64>("SELECT count(*) FROM commands WHERE state IN ('queued', 'running')") == 0
    }));
    let state: String = env.value(&format!(
        "SELECT state FROM commands WHERE id = {first_stop}"
    ));
    assert_eq!(state, "done");
    let srv1 = server_id(&sim, "srv-00001");
    assert_eq!(
        sim.get(&format!("/servers/{srv1}")).json()["server"]["status"],
        "off"
    );

    // A state directory that is not one: usage error, no hcc.db created.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = Command::new("php")
        .arg(panel_script())
        .arg(empty.path())
        .output()
        .expect("run php");
    assert_eq!(out.status.code(), Some(2));
    assert!(!empty.path().join("hcc.db").exists());
}

/// The billing guide's PHP snippet (docs/billing.md), as printed there, run
/// by php-cli (ext-curl) against `hcc serve`.
#[test]
fn the_billing_guide_php_snippet_gets_a_one_time_console_link() {
    need_php();
    let curl_ready = Command::new("php")
        .args(["-r", "exit(extension_loaded('curl') ? 0 : 1);"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        curl_ready,
        "php's curl extension is missing: scripts/test installs php-curl"
    );
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/billing.md"))
            .expect("read docs/billing.md");
    let snippet = guide
        .split("```php\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("function hcc_console_link"))
        .expect("docs/billing.md's ```php block with hcc_console_link");

    let (_sim, env, keys, serve) = crate::support::serve::serving(&["--servers", "1"]);
    // The snippet as printed, pointed at this hcc, with its redirect turned
    // into a line of output.
    let script = snippet
        .replace(
            "https://console.example.com",
            &format!("http://{}", serve.addr),
        )
        .lines()
        .filter(|l| !l.starts_with("header("))
        .collect::<Vec<_>>()
        .join("\n")
        + "\ntry { echo hcc_console_link($argv[1], $argv[2]), \"\\n\"; }\n\
           catch (RuntimeException $e) { echo \"error: \", $e->getMessage(), \"\\n\"; exit(1); }\n";
    let file = env.path("snippet.php");
    std::fs::write(&file, script).unwrap();
    let run = |server: &str, key: &str| {
        Run::from(
            Command::new("php")
                .arg(&file)
                .args([server, key])
                .output()
                .expect("run php"),
        )
    };
    let made = run("srv-00001", &keys.console);
    assert_eq!(made.code, 0, "{made:?}");
    let url = made.stdout.trim();
    let path = url
        .strip_prefix(&format!("http://{}", serve.addr))
        .unwrap_or_else(|| panic!("{url}"));
    // The redirected browser's GET leaves it unused; its page's POST opens it.
    assert_eq!(serve.request("GET", path, None, None).status, 200);
    assert_eq!(serve.request("POST", path, None, None).status, 200);
    assert_eq!(serve.request("POST", path, None, None).status, 410);
    let refused = run("nosuch", &keys.console);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stdout.contains("error: no server named `nosuch`"),
        "{refused:?}"
    );
    let refused = run("srv-00001", "hcc_wrong");
    assert!(
        refused.stdout.contains("unknown or revoked API key"),
        "{refused:?}"
    );
}
