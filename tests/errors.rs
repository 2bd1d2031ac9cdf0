//! Error output is contract: one `hcc: ` line, a documented exit code,
//! never a panic, and nothing lost.

use std::fs;

use crate::test::{Env, HCC};

#[test]
fn a_damaged_database_is_named_and_left_alone() {
    let env = Env::new();
    fs::remove_file(env.path("hcc.db-wal")).ok();
    fs::remove_file(env.path("hcc.db-shm")).ok();
    let junk = vec![0x5au8; 16384];
    fs::write(env.path("hcc.db"), &junk).unwrap();
    env.run(&["push", "start", "vm1"]).fails(1, "is damaged");
    assert_eq!(fs::read(env.path("hcc.db")).unwrap(), junk);
}

#[test]
fn a_database_from_a_newer_hcc_is_refused() {
    let env = Env::new();
    env.db().pragma_update(None, "user_version", 999).unwrap();
    env.run(&["pull"]).fails(2, "upgrade hcc");
}

#[test]
fn a_broken_config_file_is_refused_with_its_path() {
    let env = Env::new();
    fs::write(env.path("config.json"), "{ not json").unwrap();
    env.run(&["put", "x"]).fails(2, "config.json");
    fs::write(env.path("config.json"), r#"{"colour": "red"}"#).unwrap();
    env.run(&["put", "x"]).fails(2, "unknown setting `colour`");
    fs::write(env.path("config.json"), r#"{"ring_size": 3}"#).unwrap();
    env.run(&["put", "x"])
        .fails(2, "invalid value for `ring_size`");
}

#[test]
fn hostile_arguments_are_escaped_in_messages() {
    let env = Env::new();
    let run = env.run(&["push", "start", "vm\u{1b}[2Jx"]);
    run.fails(2, "invalid server name");
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
    run.fails(1, "cannot create directory");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    // `head` closes the pipe after one line; wait must then exit 0, silently.
    let script =
        format!(r#"( sleep 0.3; "{HCC}" put one; "{HCC}" put two ) & "{HCC}" wait | head -n 1"#);
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("{script}; \"{HCC}\" put three; exit ${{PIPESTATUS[0]}}"),
        ])
        .env("HCC_HOME", env.home())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
