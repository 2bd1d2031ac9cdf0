//! push, pull, next, done, fail: order, leases and their expiry.

use std::time::Duration;

use crate::test::{Env, eventually};

#[test]
fn pull_leases_in_order_and_never_the_same_command_twice() {
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    env.ok(&["push", "new", "m-vm2", "cx22", "debian-12", "fsn1"]);
    env.ok(&["push", "off", "vm3"]);
    let first = env.ok(&["pull", "--id"]);
    let second = env.ok(&["pull", "--id"]);
    assert_eq!(first, "1 start vm1\n");
    assert_eq!(second, "2 new m-vm2 cx22 debian-12 fsn1\n");
    assert_eq!(env.ok(&["pull"]), "off vm3\n");
    let empty = env.run(&["pull"]);
    assert_eq!(
        (empty.code, empty.stdout.as_str(), empty.stderr.as_str()),
        (1, "", "")
    );
    let states: String =
        env.value("SELECT group_concat(state, ',') FROM (SELECT state FROM commands ORDER BY id)");
    assert_eq!(states, "running,running,done");
}

#[test]
fn next_prints_queued_commands_in_order() {
    let env = Env::new();
    env.ok(&["push", "console", "vm1"]);
    env.ok(&["push", "sync"]);
    assert_eq!(env.ok(&["next", "--id"]), "1 console vm1\n");
    assert_eq!(env.ok(&["next", "--id"]), "2 sync\n");
}

#[test]
fn an_expired_lease_returns_the_command_to_the_queue() {
    let env = Env::new();
    env.ok(&["push", "reboot", "vm1"]);
    assert_eq!(env.ok(&["pull", "--id", "--lease", "1"]), "1 reboot vm1\n");
    // Leased: nobody else gets it while the lease holds.
    assert_eq!(env.run(&["pull", "--id"]).code, 1);
    let back = eventually(Duration::from_secs(5), || {
        env.run(&["pull", "--id"]).stdout == "1 reboot vm1\n"
    });
    assert!(back, "the expired lease never came back");
    let attempts: i64 = env.value("SELECT attempts FROM commands WHERE id = 1");
    assert_eq!(attempts, 2);
}

#[test]
fn next_wakes_when_a_lease_expires() {
    let env = Env::new();
    env.ok(&["push", "stop", "vm1"]);
    env.ok(&["pull", "--id", "--lease", "1"]);
    let next = env.spawn(&["next", "--id"]);
    assert_eq!(
        next.line(Duration::from_secs(10)).as_deref(),
        Some("1 stop vm1")
    );
}

#[test]
fn done_and_fail_are_recorded() {
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    env.ok(&["push", "stop", "vm2"]);
    env.ok(&["pull", "--id"]);
    env.ok(&["pull", "--id"]);
    env.ok(&["done", "1", r#"{"server_id": 42}"#]);
    env.ok(&["fail", "2", "server", "locked"]);
    let (state, result): (String, String) =
        env.pair("SELECT state, result FROM commands WHERE id = 1");
    assert_eq!(
        (state.as_str(), result.as_str()),
        ("done", r#"{"server_id":42}"#)
    );
    let (state, error): (String, String) =
        env.pair("SELECT state, error FROM commands WHERE id = 2");
    assert_eq!(
        (state.as_str(), error.as_str()),
        ("failed", "server locked")
    );
    let finished: i64 = env.value("SELECT count(*) FROM commands WHERE finished_at IS NOT NULL");
    assert_eq!(finished, 2);
    env.run(&["done", "1"])
        .fails(1, "hcc: command 1 is already done");
    env.run(&["fail", "2", "again"])
        .fails(1, "hcc: command 2 is already failed");
    env.run(&["done", "99"])
        .fails(1, "hcc: no command with id 99");
    env.ok(&["push", "start", "vm3"]);
    env.ok(&["pull", "--id"]);
    env.ok(&["done", "3", "plain text"]);
    let result: String = env.value("SELECT result FROM commands WHERE id = 3");
    assert_eq!(result, r#""plain text""#);
}

/// Pushes `cmd` for vm1, vm2 and vm3, runs `pull` (a shell command line
/// with `{hcc}` for the binary) in a `while cmd="$(...)"` loop under
/// `shell`, and checks the loop got each command once and that asking for
/// more acknowledged every one of them.
fn pull_loop_runs_each_command_once(shell: &str, cmd: &str, pull: &str) {
    let env = Env::new();
    for name in ["vm1", "vm2", "vm3"] {
        env.ok(&["push", cmd, name]);
    }
    let pull = pull.replace("{hcc}", crate::test::HCC);
    let script = format!(r#"while cmd="$({pull})"; do echo "got $cmd"; done"#);
    let out = std::process::Command::new(shell)
        .args(["-c", &script])
        .env("HCC_HOME", env.home())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("got {cmd} vm1\ngot {cmd} vm2\ngot {cmd} vm3\n")
    );
    // Asking for more acknowledged each earlier command: nothing comes back.
    let done: i64 = env.value("SELECT count(*) FROM commands WHERE state = 'done'");
    assert_eq!(done, 3);
}

#[test]
fn the_original_shell_loop_runs_each_command_once() {
    // ../shared/seeds/hcloud-console-README.txt:
    // while cmd="$(./server.py next)"; do process_cmd "$cmd"; done
    pull_loop_runs_each_command_once("sh", "console", r#""{hcc}" pull"#);
}

#[test]
fn a_bash_loop_with_redirections_runs_each_command_once() {
    // bash forks a subshell for `$(hcc pull 2>/dev/null)`: the parent
    // differs every time, the process group does not.
    pull_loop_runs_each_command_once("bash", "stop", r#""{hcc}" pull 2>/dev/null"#);
}

#[test]
fn hcc_consumer_names_a_loop_explicitly() {
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    env.ok(&["push", "start", "vm2"]);
    let pull = || {
        let out = env
            .cmd(&["pull"])
            .env("HCC_CONSUMER", "billing")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(pull(), "start vm1\n");
    assert_eq!(pull(), "start vm2\n");
    let owner: String = env.value("SELECT lease_owner FROM commands WHERE id = 2");
    assert_eq!(owner, "ack:Nbilling;Nbilling;");
    let state: String = env.value("SELECT state FROM commands WHERE id = 1");
    assert_eq!(state, "done");
}

#[test]
fn rows_inserted_by_sql_are_checked_before_a_consumer_sees_them() {
    let env = Env::new();
    env.db()
        .execute_batch(
            "INSERT INTO commands (cmd, arg) VALUES ('rm', '-rf /');
             INSERT INTO commands (cmd, arg) VALUES ('start', 'bad name');
             INSERT INTO commands (cmd, arg) VALUES ('start', 'vm1');",
        )
        .unwrap();
    assert_eq!(env.ok(&["pull", "--id"]), "3 start vm1\n");
    let errors: String =
        env.value("SELECT group_concat(state || ': ' || error, ' | ') FROM commands WHERE id < 3");
    assert!(errors.contains("failed: unknown command `rm`"), "{errors}");
    assert!(
        errors.contains("failed: `start` takes one server name, got 2 words"),
        "{errors}"
    );
    let source: String = env.value("SELECT source FROM commands WHERE id = 3");
    assert_eq!(source, "sql");
}

#[test]
fn push_refuses_what_no_consumer_could_run() {
    let env = Env::new();
    env.run(&["push", "explode", "vm1"]).fails(
        2,
        "hcc: unknown command `explode` (known: sync, start, stop, force, reboot, reset, \
         console, create, kill, settag, deltag, notify, rebuild, reset-password, \
         enable-rescue, disable-rescue, change-type, set-rdns, attach-iso, detach-iso, \
         create-image, enable-backup, disable-backup, off, new, put)",
    );
    env.run(&["push", "start", "vm_1"]).fails(
        2,
        "hcc: invalid server name `vm_1`: only letters, digits, dashes and dots are allowed",
    );
    env.run(&["push", "start"])
        .fails(2, "hcc: `start` needs a server name");
    env.run(&["push", "kill", "a", "b"])
        .fails(2, "hcc: `kill` takes one server name, got 2 words");
    let count: i64 = env.value("SELECT count(*) FROM commands");
    assert_eq!(count, 0);
    assert_eq!(env.ok(&["push", "--id", "notify", "hello", "world"]), "1\n");
    let arg: String = env.value("SELECT arg FROM commands WHERE id = 1");
    assert_eq!(arg, "hello world");
}

#[test]
fn a_command_that_cannot_be_printed_goes_back_to_the_queue() {
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = env.cmd(&["pull"]).stdout(full).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let (state, attempts): (String, i64) =
        env.pair("SELECT state, attempts FROM commands WHERE id = 1");
    assert_eq!((state.as_str(), attempts), ("queued", 0));
    assert_eq!(env.ok(&["pull", "--id"]), "1 start vm1\n");
}

#[test]
fn done_needs_a_command_that_was_leased() {
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    env.run(&["done", "1"])
        .fails(1, "hcc: command 1 was never leased; nothing to close");
    env.ok(&["pull", "--id", "--lease", "1"]);
    // Its lease expired and it went back to the queue: a late `done` from
    // the consumer that ran it still closes it.
    env.db()
        .execute(
            "UPDATE commands SET state = 'queued', lease_until = NULL WHERE id = 1",
            [],
        )
        .unwrap();
    env.ok(&["done", "1"]);
}

#[test]
fn a_running_row_without_a_lease_is_taken_over() {
    let env = Env::new();
    env.db()
        .execute(
            "INSERT INTO commands (cmd, arg, state) VALUES ('start', 'vm1', 'running')",
            [],
        )
        .unwrap();
    assert_eq!(env.ok(&["pull", "--id"]), "1 start vm1\n");
}
