//! Closing is tied to the lease: a consumer whose lease expired and went to
//! another cannot close the other's work (`done`/`fail` exit 5), while the
//! usual `pull --id` ... `done $id` loop keeps working.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use crate::test::{Env, HCC, eventually};

/// `hcc ARGS` as the consumer called `name`.
fn as_consumer(env: &Env, name: &str, args: &[&str]) -> crate::test::Run {
    crate::test::Run::from(
        env.cmd(args)
            .env("HCC_CONSUMER", name)
            .output()
            .expect("run hcc"),
    )
}

/// Waits until `pull` (as `name`, with `flag`) leases the command again
/// after the first lease expired.
fn pull_again(env: &Env, name: &str, flag: &str, want: &str) {
    let again = eventually(Duration::from_secs(10), || {
        as_consumer(env, name, &["pull", flag]).stdout == want
    });
    assert!(again, "the expired lease never came back");
}

#[test]
fn a_stale_consumer_cannot_close_the_next_holders_command() {
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    let first = as_consumer(&env, "a", &["pull", "--id", "--lease", "1"]);
    assert_eq!(first.stdout, "1 start vm1\n");
    pull_again(&env, "b", "--id", "1 start vm1\n");
    as_consumer(&env, "a", &["done", "1"]).fails(
        5,
        "hcc: stale lease: command 1 was leased again after that lease expired (its latest \
         lease, 1:2, is running); not closed",
    );
    as_consumer(&env, "a", &["fail", "1", "too", "late"]).fails(
        5,
        "hcc: stale lease: command 1 was leased again after that lease expired (its latest \
         lease, 1:2, is running); not closed",
    );
    let state: String = env.value("SELECT state FROM commands WHERE id = 1");
    assert_eq!(state, "running", "the stale close must change nothing");
    let closed = as_consumer(&env, "b", &["done", "1", "ok"]);
    assert_eq!(closed.code, 0, "{closed:?}");
    let (state, result): (String, String) =
        env.pair("SELECT state, result FROM commands WHERE id = 1");
    assert_eq!((state.as_str(), result.as_str()), ("done", "\"ok\""));
    // After the holder closed it, the stale consumer still hears why.
    as_consumer(&env, "a", &["done", "1"]).fails(
        5,
        "hcc: stale lease: command 1 was leased again after that lease expired (its latest \
         lease, 1:2, is done); not closed",
    );
}

#[test]
fn a_handle_closes_its_own_lease_and_no_later_one() {
    let env = Env::new();
    env.ok(&["push", "reboot", "vm1"]);
    assert_eq!(
        env.ok(&["pull", "--handle", "--lease", "1"]),
        "1:1 reboot vm1\n"
    );
    // The same consumer (same parent) takes it again: only the handle
    // tells its two leases apart.
    pull_again(&env, "", "--handle", "1:2 reboot vm1\n");
    env.run(&["done", "1:1"]).fails(
        5,
        "hcc: lease 1:1 is stale: command 1 was leased again after that lease expired (its \
         latest lease, 1:2, is running); not closed",
    );
    env.run(&["done", "1:3"])
        .fails(1, "hcc: command 1 has no lease 3 (it was leased 2 times)");
    for bad in ["1:", ":2", "1:x", "0", "1:2:3", "+1"] {
        env.run(&["done", bad]).fails(
            2,
            &format!(
                "hcc: invalid value '{bad}' for '<ID>': want a command id (`12`) or a lease \
                 handle (`12:3`) (see `hcc --help`)"
            ),
        );
    }
    env.ok(&["fail", "1:2", "broken"]);
    let state: String = env.value("SELECT state FROM commands WHERE id = 1");
    assert_eq!(state, "failed");
}

#[test]
fn a_late_close_stands_while_nobody_else_took_the_command() {
    let env = Env::new();
    env.ok(&["push", "stop", "vm1"]);
    as_consumer(&env, "a", &["pull", "--id", "--lease", "1"]);
    assert!(eventually(Duration::from_secs(10), || env.value::<bool>(
        "SELECT lease_until < unixepoch() FROM commands WHERE id = 1"
    )));
    // Expired, but not leased again: its consumer finished late.
    as_consumer(&env, "a", &["fail", "1", "whatever"]);
    env.ok(&["push", "stop", "vm2"]);
    // Leased once: a bare id means that lease even from another identity
    // (`timeout 5 hcc pull --id` runs in a process group of its own).
    as_consumer(&env, "a", &["pull", "--id"]);
    as_consumer(&env, "other", &["done", "2"]);
    let states: String =
        env.value("SELECT group_concat(state, ',') FROM (SELECT state FROM commands ORDER BY id)");
    assert_eq!(states, "failed,done");
}

/// The documented loop shape in two shells, each in its own process group
/// (as two services or terminals are): the one whose lease expired is
/// refused, the one holding the command closes it.
#[test]
fn two_shell_loops_with_bare_ids() {
    let env = Env::new();
    env.ok(&["push", "start", "vm1"]);
    let shell = |script: &str| {
        let mut cmd = std::process::Command::new("bash");
        cmd.args(["-c", script])
            .env("HCC", HCC)
            .env("HCC_HOME", env.home())
            .env_remove("HCC_CONSUMER")
            .current_dir(env.home())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        cmd
    };
    let slow = shell(
        r#"line="$("$HCC" pull --id --lease 1 2>/dev/null)"; echo "got $line"
           while [ ! -e go ]; do sleep 0.05; done
           set -- $line; "$HCC" done "$1"; echo "done exit $?""#,
    )
    .spawn()
    .unwrap();
    let took = eventually(Duration::from_secs(5), || {
        env.value::<i64>("SELECT count(*) FROM commands WHERE state = 'running'") == 1
    });
    assert!(took, "the first loop never leased the command");
    let mut fast = String::new();
    let again = eventually(Duration::from_secs(10), || {
        let out = shell(
            r#"line="$("$HCC" pull --id 2>/dev/null)" || exit 1; echo "got $line"
               set -- $line; "$HCC" done "$1"; echo "done exit $?""#,
        )
        .output()
        .unwrap();
        fast = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert!(again, "the second loop never got the command");
    assert_eq!(fast, "got 1 start vm1\ndone exit 0\n");
    std::fs::write(env.path("go"), "").unwrap();
    let out = slow.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got 1 start vm1\ndone exit 5\n"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hcc: stale lease"),
        "{out:?}"
    );
    let (state, attempts): (String, i64) =
        env.pair("SELECT state, attempts FROM commands WHERE id = 1");
    assert_eq!((state.as_str(), attempts), ("done", 2));
}

/// A loop left running in the background by a script that has ended: its
/// process group outlives its leader, and still names the loop.
#[test]
fn a_loop_whose_group_leader_exited_still_acknowledges() {
    let env = Env::new();
    for name in ["vm1", "vm2", "vm3"] {
        env.ok(&["push", "stop", name]);
    }
    let status = std::process::Command::new("bash")
        .args([
            "-c",
            r#"( sleep 0.3
                 while cmd="$("$HCC" pull 2>/dev/null)"; do echo "got $cmd" >> got; done
                 touch finished ) >/dev/null 2>&1 &
               exit 0"#,
        ])
        .env("HCC", HCC)
        .env("HCC_HOME", env.home())
        .env_remove("HCC_CONSUMER")
        .current_dir(env.home())
        .stdin(Stdio::null())
        .process_group(0)
        .status()
        .unwrap();
    assert!(status.success());
    let finished = eventually(Duration::from_secs(10), || env.path("finished").exists());
    assert!(finished, "the loop never ended");
    assert_eq!(
        std::fs::read_to_string(env.path("got")).unwrap(),
        "got stop vm1\ngot stop vm2\ngot stop vm3\n"
    );
    let done: i64 = env.value("SELECT count(*) FROM commands WHERE state = 'done'");
    assert_eq!(done, 3);
}
