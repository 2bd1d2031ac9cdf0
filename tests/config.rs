//! The state directory and its settings: creation, modes, `config`,
//! `setup`, environment overrides, and the token never shown.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::test::{Env, HCC, run_with_input};

const TOKEN: &str = "Zk3rT9vX2mQ8pL4sW7yB1nC6hJ0dF5gA3eR8tY2uI7oP4aS9dF1gH6jK0lZ5xC3v";

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_use_creates_the_layout_with_private_modes() {
    let env = Env::new();
    for dir in ["spool/tmp", "spool/new", "spool/bad"] {
        assert!(env.path(dir).is_dir(), "{dir}");
    }
    assert_eq!(mode(&env.path("config.json")), 0o600);
    assert_eq!(mode(&env.path("hcc.db")), 0o600);
    let tables: String = env.value(
        "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master
         WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name)",
    );
    assert_eq!(
        tables,
        "api_keys,commands,console_links,console_sessions,messages,rate_budget,servers,suspended,sync_state,vms"
    );
    let journal: String = env.value("PRAGMA journal_mode");
    assert_eq!(journal, "wal");
}

#[test]
fn the_state_directory_follows_xdg_state_home() {
    let xdg = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(HCC)
        .args(["push", "start", "vm1"])
        .env_remove("HCC_HOME")
        .env("XDG_STATE_HOME", xdg.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(xdg.path().join("hcc/hcc.db").is_file());
    // --home wins over HCC_HOME.
    let flag = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(HCC)
        .args(["--home"])
        .arg(flag.path())
        .args(["push", "start", "vm1"])
        .env("HCC_HOME", xdg.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(flag.path().join("hcc.db").is_file());
}

#[test]
fn config_set_get_unset_and_refusals() {
    let env = Env::new();
    env.ok(&["config", "set", "location", "nbg1"]);
    env.ok(&["config", "set", "prefix", "m-"]);
    env.ok(&["config", "set", "ring_size", "50"]);
    assert_eq!(env.ok(&["config", "get", "location"]), "nbg1\n");
    // An unknown name is refused with the list of the known ones.
    let unknown = |name: &str| {
        format!(
            "hcc: unknown setting `{name}` (known: token, token_file, endpoint, location, \
             server_type, image, label, prefix, console_url, ring_size, queue_verbs, \
             full_sync_every, max_attempts, public_url, link_ttl, session_ttl, frame_ancestors, \
             console_hosts, allowed_origins, metrics, trusted_proxies, console_mode, \
             console_idle_timeout, command_reserve, console_refresh_every, \
             console_requests_per_server, max_console_sessions, \
             max_console_sessions_per_server, max_console_sessions_per_key, shutdown_timeout, \
             sync_parallel, log_format, wal_checkpoints)"
        )
    };
    env.run(&["config", "set", "colour", "red"])
        .fails(2, &unknown("colour"));
    env.run(&["config", "set", "ring_size", "lots"]).fails(
        2,
        "hcc: invalid value for `ring_size`: `lots` is not a whole number",
    );
    env.run(&["config", "set", "endpoint", "gopher://x"]).fails(
        2,
        "hcc: invalid value for `endpoint`: `gopher://x` is not an http:// or https:// URL",
    );
    env.run(&["config", "get", "nope"])
        .fails(2, &unknown("nope"));
    env.ok(&["config", "unset", "location"]);
    assert_eq!(env.ok(&["config", "get", "location"]), "fsn1\n");
    let file: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.path("config.json")).unwrap()).unwrap();
    assert_eq!(file, serde_json::json!({"prefix": "m-", "ring_size": 50}));
    assert_eq!(mode(&env.path("config.json")), 0o600);
}

#[test]
fn the_token_is_stored_but_never_printed() {
    let env = Env::new();
    // Its output captured: what it says about a running serve is checked
    // here, not printed among the test results.
    let set = run_with_input(
        env.cmd(&["config", "set", "token", "-"]),
        &format!("{TOKEN}\n"),
    );
    assert_eq!(set.code, 0, "{set:?}");
    assert!(
        !set.stdout.contains(TOKEN) && !set.stderr.contains(TOKEN),
        "{set:?}"
    );
    assert!(set.stderr.contains("no hcc serve is running"), "{set:?}");
    assert!(
        fs::read_to_string(env.path("config.json"))
            .unwrap()
            .contains(TOKEN)
    );
    assert_eq!(mode(&env.path("config.json")), 0o600);
    let show = env.ok(&["config", "show"]);
    let get = env.ok(&["config", "get", "token"]);
    assert!(!show.contains(TOKEN) && !get.contains(TOKEN), "{show}{get}");
    let token_line = show.lines().next().unwrap_or_default();
    assert!(token_line.starts_with("token "), "{show}");
    assert!(
        token_line.ends_with(" <redacted, 64 characters>  (from config.json)"),
        "{show}"
    );
    // HCLOUD_TOKEN and HCLOUD_ENDPOINT override the file.
    let out = env
        .cmd(&["config", "show"])
        .env("HCLOUD_TOKEN", "other-token")
        .env("HCLOUD_ENDPOINT", "http://127.0.0.1:9/v1")
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(
        show.contains("(from HCLOUD_TOKEN)") && !show.contains("other-token"),
        "{show}"
    );
    assert!(
        show.contains("http://127.0.0.1:9/v1  (from HCLOUD_ENDPOINT)"),
        "{show}"
    );
}

#[test]
fn a_loose_config_file_is_narrowed_to_0600() {
    let env = Env::new();
    fs::set_permissions(env.path("config.json"), fs::Permissions::from_mode(0o644)).unwrap();
    env.ok(&["config", "show"]);
    assert_eq!(mode(&env.path("config.json")), 0o600);
}

fn setup(env: &Env, answers: &str) -> crate::test::Run {
    run_with_input(env.cmd(&["setup"]), answers)
}

#[test]
fn setup_asks_every_setting_rechecks_bad_answers_and_saves_on_yes() {
    let env = Env::new();
    env.ok(&["config", "set", "image", "ubuntu-24.04"]);
    // token, token_file, endpoint, location (bad, then good), server_type,
    // image (keep), label, prefix, console_url, ring_size, queue_verbs,
    // full_sync_every, max_attempts, public_url, link_ttl, session_ttl,
    // frame_ancestors, console_hosts, allowed_origins, metrics, trusted_proxies,
    // console_mode, console_idle_timeout, command_reserve,
    // console_refresh_every, console_requests_per_server,
    // max_console_sessions, max_console_sessions_per_server,
    // max_console_sessions_per_key, shutdown_timeout, sync_parallel,
    // log_format, wal_checkpoints, save.
    let answers = format!(
        "{TOKEN}\n\n\nnot valid!\nhel1\ncpx11\n\n\nm-\nhttps://panel.example.org/vnc/l.html?\n-\n\n\n3\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\ny\n"
    );
    let run = setup(&env, &answers);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("invalid value for `location`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("image [ubuntu-24.04]: "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("saved"), "{}", run.stdout);
    assert!(!run.stdout.contains(TOKEN), "setup printed the token");
    assert_eq!(env.ok(&["config", "get", "location"]), "hel1\n");
    assert_eq!(env.ok(&["config", "get", "server_type"]), "cpx11\n");
    assert_eq!(env.ok(&["config", "get", "image"]), "ubuntu-24.04\n");
    assert_eq!(env.ok(&["config", "get", "prefix"]), "m-\n");
    assert_eq!(
        env.ok(&["config", "get", "console_url"]),
        "https://panel.example.org/vnc/l.html?\n"
    );
    assert_eq!(env.ok(&["config", "get", "ring_size"]), "1000\n");
    assert_eq!(env.ok(&["config", "get", "max_attempts"]), "3\n");
    assert_eq!(env.ok(&["config", "get", "max_attempts"]), "3\n");
    // The token prompt now shows it redacted.
    let run = setup(&env, "");
    assert!(
        run.stdout.contains("token [<redacted, 64 characters>]: "),
        "{}",
        run.stdout
    );
}

#[test]
fn setup_saves_nothing_unless_told_to() {
    let env = Env::new();
    let run = setup(
        &env,
        "\n\n\nhel1\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nn\n",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.ends_with("not saved\n"));
    assert_eq!(env.ok(&["config", "get", "location"]), "fsn1\n");
    // Input that ends early aborts, unsaved.
    let run = setup(&env, "\n\n\nhel1\n");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        "hcc: setup aborted: standard input ended; nothing saved\n"
    );
    assert_eq!(env.ok(&["config", "get", "location"]), "fsn1\n");
}
