//! Error output is contract: one `hcc: ` line, a documented exit code,
//! never a panic, and nothing lost.

use std::fs;

use crate::test::{Env, HCC, eventually};

#[test]
fn a_damaged_database_is_named_and_left_alone() {
    let env = Env::new();
    fs::remove_file(env.path("hcc.db-wal")).ok();
    fs::remove_file(env.path("hcc.db-shm")).ok();
    let junk = vec![0x5au8; 16384];
    fs::write(env.path("hcc.db"), &junk).unwrap();
    env.run(&["push", "start", "vm1"]).fails(
        1,
        &format!(
            "hcc: database `{}/hcc.db` is damaged (file is not a database); hcc leaves it \
             untouched: restore it from a backup or move it away",
            env.home().display()
        ),
    );
    assert_eq!(fs::read(env.path("hcc.db")).unwrap(), junk);
}

#[test]
fn a_database_from_a_newer_hcc_is_refused() {
    let env = Env::new();
    env.db().pragma_update(None, "user_version", 999).unwrap();
    env.run(&["pull"]).fails(
        2,
        &format!(
            "hcc: database `{}/hcc.db` has schema version 999, this hcc knows up to 8: upgrade hcc",
            env.home().display()
        ),
    );
}

#[test]
fn a_broken_config_file_is_refused_with_its_path() {
    let env = Env::new();
    fs::write(env.path("config.json"), "{ not json").unwrap();
    env.run(&["put", "x"]).fails(
        2,
        &format!(
            "hcc: cannot read configuration `{}/config.json`: not a JSON object: key must be a \
             string at line 1 column 3 (fix the file or run `hcc setup`)",
            env.home().display()
        ),
    );
    fs::write(env.path("config.json"), r#"{"colour": "red"}"#).unwrap();
    env.run(&["put", "x"]).fails(
        2,
        &format!(
            "hcc: cannot read configuration `{}/config.json`: unknown setting `colour` (known: \
             token, token_file, endpoint, location, server_type, image, label, prefix, \
             console_url, ring_size, queue_verbs, full_sync_every, max_attempts, public_url, \
             link_ttl, session_ttl, frame_ancestors, console_hosts, allowed_origins, metrics, trusted_proxies, \
             console_mode, console_idle_timeout, command_reserve, console_refresh_every, \
             console_requests_per_server, max_console_sessions, max_console_sessions_per_server, \
             max_console_sessions_per_key, shutdown_timeout, sync_parallel, log_format, wal_checkpoints) (fix the file or run `hcc setup`)",
            env.home().display()
        ),
    );
    fs::write(env.path("config.json"), r#"{"ring_size": 3}"#).unwrap();
    env.run(&["put", "x"]).fails(
        2,
        &format!(
            "hcc: cannot read configuration `{}/config.json`: invalid value for \
             `ring_size`: 3 is outside 10..=1000000 (fix the file or run `hcc setup`)",
            env.home().display()
        ),
    );
}

#[test]
fn hostile_arguments_are_escaped_in_messages() {
    let env = Env::new();
    let run = env.run(&["push", "start", "vm\u{1b}[2Jx"]);
    run.fails(
        2,
        "hcc: invalid server name `vm\\u{1b}[2Jx`: only letters, digits, dashes and dots are \
         allowed",
    );
    assert!(!run.stderr.contains('\u{1b}'), "{run:?}");
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    assert_eq!(env.run(&["frobnicate"]).code, 2);
    assert_eq!(env.run(&["done", "not-a-number"]).code, 2);
    assert_eq!(env.run(&["pull", "--lease", "0"]).code, 2);
}

#[test]
fn an_unusable_state_directory_is_one_line() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = std::process::Command::new(HCC)
        .args(["--home"])
        .arg(file.path())
        .args(["push", "start", "vm1"])
        .output()
        .unwrap();
    let run = crate::test::Run::from(out);
    run.fails(
        1,
        &format!(
            "hcc: cannot create directory `{}`: File exists (os error 17)",
            file.path().display()
        ),
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let env = Env::new();
    // `head` closes the pipe after one line; wait must then exit 0, silently.
    let mut child = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(r#""{HCC}" wait | head -n 1; exit ${{PIPESTATUS[0]}}"#),
        ])
        .env("HCC_HOME", env.home())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut waiter = None;
    assert!(crate::test::eventually(
        std::time::Duration::from_secs(10),
        || {
            waiter = crate::test::children(child.id())
                .into_iter()
                .find(|&p| crate::test::comm(p) == "hcc");
            waiter.is_some()
        }
    ));
    crate::test::wait_blocked(waiter.unwrap());
    env.ok(&["put", "one"]);
    // wait learns that `head` is gone only when it writes again; lines
    // that still fit the pipe buffer go unnoticed, so keep putting.
    let mut status = None;
    for i in 0..200 {
        if let Some(done) = child.try_wait().unwrap() {
            status = Some(done);
            break;
        }
        env.ok(&["put", &format!("more {i}")]);
        // The pace of the puts, polled for wait's exit above.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let Some(status) = status else {
        let _ = child.kill();
        panic!("wait never noticed that its reader was gone");
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!((stdout.as_str(), stderr.as_str()), ("one\n", ""));
    assert_eq!(status.code(), Some(0), "wait's own exit status");
}

#[test]
fn wait_and_next_outlive_a_locked_database() {
    let env = Env::new();
    let wait = env.spawn(&["wait"]);
    wait.wait_blocked();
    // Another process holds the write lock longer than hcc's busy timeout:
    // until wait has given up once and said it tries again.
    let db = env.db();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    env.spool("during-lock", b"start vm1\n");
    assert!(
        eventually(std::time::Duration::from_secs(30), || wait
            .stderr()
            .contains("; trying again")),
        "wait never met the lock: {:?}",
        wait.stderr()
    );
    db.execute_batch("COMMIT").unwrap();
    assert_eq!(
        wait.line(std::time::Duration::from_secs(10)).as_deref(),
        Some("cmd"),
        "wait gave up instead of trying again"
    );
}

#[test]
fn usage_errors_are_one_line_too() {
    let env = Env::new();
    env.run(&["frobnicate"]).fails(
        2,
        "hcc: unrecognized subcommand 'frobnicate' (see `hcc --help`)",
    );
    let help = env.run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Usage: hcc"));
}

#[test]
fn flags_after_words_are_still_flags() {
    let env = Env::new();
    let other = tempfile::tempdir().unwrap();
    let other_home = other.path().to_str().unwrap();
    env.ok(&["put", "hello", "--home", other_home]);
    let count: i64 = rusqlite::Connection::open(other.path().join("hcc.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM messages WHERE msg = 'hello'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 1);
    env.ok(&["put", "--", "-starts-with-a-dash"]);
}

#[test]
fn completions_into_a_full_disk_fail_cleanly() {
    let env = Env::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = env
        .cmd(&["completions", "bash"])
        .stdout(full)
        .output()
        .unwrap();
    crate::test::Run::from(out).fails(
        1,
        "hcc: cannot write output: No space left on device (os error 28)",
    );
}

#[test]
fn help_starts_newcomers_at_the_demo_and_the_demo_offers_no_home() {
    let env = Env::new();
    for flag in ["--help", "-h"] {
        let help = env.ok(&[flag]);
        let first = help.lines().next().unwrap_or_default();
        assert!(first.contains("`hcc demo`"), "{flag}: {help}");
    }
    // The demo always uses a state directory of its own: its help does
    // not offer --home, which every other command keeps.
    let demo = env.ok(&["help", "demo"]);
    // (Its text says that --home is not used; no option line offers it.)
    let offered = |help: &str| help.contains("--home <DIR>");
    assert!(demo.contains("--quick") && !offered(&demo), "{demo}");
    assert!(!offered(&env.ok(&["demo", "--help"])));
    assert!(offered(&env.ok(&["help", "status"])));
    assert!(
        env.ok(&["man"])
            .contains("\\fBhcc demo [\\-\\-quick]\\fR\n")
    );
}
