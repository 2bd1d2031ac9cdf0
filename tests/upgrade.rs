//! Upgrades (issue 23): the state directory each earlier release wrote,
//! kept as test data in `tests/data/upgrade/schema-N/` (made by that
//! release with `tests/data/upgrade/make.sh`; its README says what each
//! holds), opens under this binary. It migrates to today's schema, and the
//! servers, queued and leased commands, API key, console links, console
//! session and messages the old release left are all there and work.

use std::path::PathBuf;
use std::time::Duration;

use hcc::store::SCHEMA_VERSION;
use serde_json::Value;

use crate::support::serve::Serve;
use crate::test::{Env, Sim, Worker, unix_now};

/// What a release could make: it synced servers from its simulator (2
/// on), leased with a worker rather than `hcc pull` (3 on), and ran
/// `hcc serve` with API keys, console links and sessions (4 on).
fn synced(n: usize) -> bool {
    n >= 2
}

fn has_worker(n: usize) -> bool {
    n >= 3
}

fn has_serve(n: usize) -> bool {
    n >= 4
}

fn data(n: usize) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/upgrade/schema-{n}"))
}

fn user_version(db: &rusqlite::Connection) -> usize {
    db.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .expect("read user_version") as usize
}

/// The test data of schema `n`, opened and used by this binary.
fn upgrades(n: usize) {
    let env = Env::copied(&data(n));
    assert_eq!(
        user_version(&env.db()),
        n,
        "schema-{n} holds another version"
    );
    // The servers as the old release stored them, to compare with today's
    // listing.
    let made: Vec<String> = env.column("SELECT name || ' ' || id FROM servers ORDER BY name");

    // Any command opens the database and migrates it.
    let listed: Value = serde_json::from_str(&env.ok(&["list", "--all", "--json"])).unwrap();
    assert_eq!(user_version(&env.db()), SCHEMA_VERSION);
    let servers: Vec<String> = listed
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| format!("{} {}", s["name"].as_str().unwrap(), s["id"]))
        .collect();
    assert_eq!(servers, made, "schema {n}");
    let names: Vec<&str> = made.iter().map(|s| s.split(' ').next().unwrap()).collect();
    let want: &[&str] = if synced(n) {
        &["srv-00001", "srv-00002", "srv-00003"]
    } else {
        &[]
    };
    assert_eq!(names, want, "schema {n}");

    // Queued by push, by spool file and by INSERT, and one leased.
    let commands = "SELECT id || ' ' || cmd || ' ' || arg || ' ' || state || ' ' || source \
                    FROM commands ORDER BY id";
    assert_eq!(
        env.column::<String>(commands),
        [
            "1 reboot srv-00001 running cli",
            "2 stop srv-00002 queued cli",
            "3 start srv-00003 queued spool",
            "4 reset srv-00003 queued sql",
        ],
        "schema {n}"
    );
    let (owner, until): (String, i64) =
        env.pair("SELECT lease_owner, lease_until FROM commands WHERE id = 1");
    assert_eq!(
        env.value::<i64>("SELECT attempts FROM commands WHERE id = 1"),
        1
    );
    if has_worker(n) {
        // A worker killed by SIGKILL: the next worker takes its leases over.
        assert!(owner.starts_with("id:worker:"), "schema {n}: {owner}");
    } else {
        // A consumer's `hcc pull --id --lease 1` that never closed it.
        assert!(owner.starts_with("id:"), "schema {n}: {owner}");
        assert!(
            (until as f64) < unix_now(),
            "schema {n}: lease until {until}"
        );
    }
    // The spool file a panel dropped that the old release never ingested.
    env.ok(&["ingest"]);
    assert_eq!(
        env.value::<String>("SELECT cmd || ' ' || arg || ' ' || state FROM commands WHERE id = 5"),
        "console srv-00002 queued"
    );
    assert_eq!(env.messages(), [format!("made by schema {n}")]);

    let sim = Sim::start(&["--servers", "3", "--action-ms", "50"]);
    if has_serve(n) {
        serves(n, &env, &sim);
    }

    // The leased command runs again, to its end, with everything queued.
    let worker = Worker::start(&env, &sim, "60");
    let (state, _, error) = worker.closed(&env, 1);
    assert_eq!((state.as_str(), error), ("done", None), "{}", worker.log());
    env.settle(Duration::from_secs(30));
    assert_eq!(
        env.column::<String>("SELECT id || ' ' || state FROM commands ORDER BY id"),
        ["1 done", "2 done", "3 done", "4 done", "5 done"],
        "schema {n}: {}",
        worker.log()
    );
    assert_eq!(
        env.value::<i64>("SELECT attempts FROM commands WHERE id = 1"),
        2
    );
    let messages = env.messages();
    assert_eq!(messages[0], format!("made by schema {n}"));
    assert!(messages.contains(&"done 1".to_string()), "{messages:?}");
}

/// The old API key, links and session under today's `hcc serve`.
fn serves(n: usize, env: &Env, sim: &Sim) {
    let key = std::fs::read_to_string(data(n).join("api-key")).expect("schema-N/api-key");
    let key = key.trim();
    assert!(
        env.ok(&["apikey", "list"]).contains("billing  console"),
        "schema {n}"
    );
    let serve = Serve::start(env, sim, &[]);
    let status = serve.get("/api/v1/status", key);
    assert_eq!(status.status, 200, "schema {n}: {}", status.body);
    // The key with its last digit changed.
    let last = if key.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &key[..key.len() - 1]);
    assert_ne!(wrong, key);
    assert_eq!(serve.get("/api/v1/status", &wrong).status, 401);
    let queued = serve.get("/api/v1/commands/2", key).json();
    assert_eq!(
        (&queued["command"]["cmd"], &queued["command"]["state"]),
        (&Value::from("stop"), &Value::from("queued")),
        "schema {n}: {queued}"
    );

    // Two links, one opened (into the one session); and a new one.
    let links = "SELECT id || ' ' || server || ' ' || created_by || ' ' || (opened_at IS NOT NULL) \
                 FROM console_links ORDER BY id";
    assert_eq!(
        env.column::<String>(links),
        ["1 srv-00002 billing 0", "2 srv-00002 billing 1"],
        "schema {n}"
    );
    let sessions: Value = serde_json::from_str(&env.ok(&["sessions", "--json"])).unwrap();
    let sessions = sessions["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "schema {n}: {sessions:?}");
    let session = &sessions[0];
    assert_eq!(
        (
            &session["server"],
            &session["created_by"],
            &session["link_id"]
        ),
        (
            &Value::from("srv-00002"),
            &Value::from("billing"),
            &Value::from(2)
        ),
        "schema {n}: {session}"
    );
    let made = serve.post("/api/v1/servers/srv-00002/console-link", key);
    assert_eq!(made.status, 201, "schema {n}: {}", made.body);
    assert_eq!(env.value::<i64>("SELECT count(*) FROM console_links"), 3);
}

/// Test data and a test for every schema this binary knows: a migration
/// added without them fails here.
#[test]
fn there_is_test_data_for_every_earlier_schema() {
    let every: Vec<usize> = (1..=SCHEMA_VERSION).collect();
    assert_eq!(
        TESTED, every,
        "add the new schema to `schemas!` in tests/upgrade.rs"
    );
    for n in every {
        assert!(
            data(n).join("hcc.db").is_file(),
            "no tests/data/upgrade/schema-{n}: make it with tests/data/upgrade/make.sh (its README says how)"
        );
    }
}

macro_rules! schemas {
    ($($name:ident: $n:expr,)*) => {
        /// The schemas with a test below.
        const TESTED: &[usize] = &[$($n),*];
        $(
            #[test]
            fn $name() {
                upgrades($n);
            }
        )*
    };
}

schemas! {
    schema_1_opens_and_works: 1,
    schema_2_opens_and_works: 2,
    schema_3_opens_and_works: 3,
    schema_4_opens_and_works: 4,
    schema_5_opens_and_works: 5,
    schema_6_opens_and_works: 6,
    schema_7_opens_and_works: 7,
    schema_8_opens_and_works: 8,
}
