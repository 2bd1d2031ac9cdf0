//! `next` and `wait` block without polling and wake on inotify: a spool
//! rename, an INSERT by another process (rusqlite or the sqlite3 CLI), a
//! message put by another process.

use std::time::Duration;

use crate::test::{Env, children, comm, cpu_ticks, eventually, have, wait_blocked};

/// How long a wake-up may take on a loaded machine (CI runs many tests at
/// once); still well under the 30 s rescan, so a lost wake-up fails.
const WAKE: Duration = Duration::from_secs(15);

#[test]
fn next_wakes_when_a_spool_file_is_renamed_into_new() {
    let env = Env::new();
    let next = env.spawn(&["next", "--id"]);
    next.wait_blocked();
    env.spool("1700000000.1234.panel", b"console vm1\n");
    assert_eq!(next.line(WAKE).as_deref(), Some("1 console vm1"));
    assert!(
        std::fs::read_dir(env.path("spool/new"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn next_wakes_when_another_process_inserts_a_row() {
    let env = Env::new();
    let next = env.spawn(&["next"]);
    next.wait_blocked();
    env.db()
        .execute(
            "INSERT INTO commands (cmd, arg) VALUES ('start', 'vm7')",
            [],
        )
        .unwrap();
    assert_eq!(next.line(WAKE).as_deref(), Some("start vm7"));
}

#[test]
fn next_wakes_when_the_sqlite3_cli_inserts_a_row() {
    assert!(
        have("sqlite3"),
        "the sqlite3 CLI is missing: scripts/test installs it"
    );
    let env = Env::new();
    let next = env.spawn(&["next"]);
    next.wait_blocked();
    let status = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 5000"])
        .arg(env.path("hcc.db"))
        .arg("INSERT INTO commands (cmd, arg) VALUES ('reboot', 'vm8');")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(next.line(WAKE).as_deref(), Some("reboot vm8"));
}

#[test]
fn a_blocked_next_uses_no_cpu() {
    let env = Env::new();
    let next = env.spawn(&["next"]);
    next.wait_blocked();
    let before = cpu_ticks(next.pid());
    // CPU used over 1.5 s blocked: a measurement over time.
    std::thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks(next.pid()) - before;
    // A poll loop would burn ticks; a blocked process burns none.
    assert!(used <= 2, "next used {used} clock ticks while idle");
}

#[test]
fn wait_prints_messages_from_other_processes_in_order() {
    let env = Env::new();
    env.ok(&["put", "before", "start"]);
    let wait = env.spawn(&["wait"]);
    wait.wait_blocked();
    for i in 0..20 {
        env.ok(&["put", &format!("message {i}")]);
    }
    for i in 0..20 {
        assert_eq!(wait.line(WAKE), Some(format!("message {i}")));
    }
}

#[test]
fn wait_says_cmd_when_work_is_queued_by_any_route() {
    let env = Env::new();
    let wait = env.spawn(&["wait"]);
    wait.wait_blocked();
    env.ok(&["push", "start", "vm1"]);
    assert_eq!(wait.line(WAKE).as_deref(), Some("cmd"));
    env.spool("f1", b"stop vm1");
    assert_eq!(wait.line(WAKE).as_deref(), Some("cmd"));
    env.db()
        .execute(
            "INSERT INTO commands (cmd, arg) VALUES ('start', 'vm2')",
            [],
        )
        .unwrap();
    assert_eq!(wait.line(WAKE).as_deref(), Some("cmd"));
    // The spool file was ingested by wait itself.
    let spooled: i64 = env.value("SELECT count(*) FROM commands WHERE source = 'spool'");
    assert_eq!(spooled, 1);
}

#[test]
fn wait_shows_progress_characters_on_stderr() {
    let env = Env::new();
    let mut wait = env.spawn(&["wait", "iMeS"]);
    wait.wait_blocked();
    env.ok(&["put", "hello"]);
    assert_eq!(wait.line(WAKE).as_deref(), Some("hello"));
    let stderr = wait.kill();
    // S: started; M: a message printed; e: wake-ups that found nothing new.
    assert!(
        stderr.starts_with('S') && stderr.contains('M'),
        "{stderr:?}"
    );
    assert!(stderr.chars().all(|c| "SMe".contains(c)), "{stderr:?}");
}

#[test]
fn the_original_wait_loop_pulls_what_was_pushed() {
    // ../shared/seeds/hcloud-console-README.txt, "Notification":
    // ./server.py wait | while read -r msg; do ...; pull; done
    let env = Env::new();
    let script = format!(
        r#""{hcc}" wait | while read -r msg; do
             while cmd="$("{hcc}" pull)"; do echo "ran $cmd"; done
           done"#,
        hcc = crate::test::HCC
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("HCC_HOME", env.home())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The loop's `hcc wait` must be listening before work arrives.
    let mut waiter = None;
    assert!(eventually(WAKE, || {
        waiter = children(child.id()).into_iter().find(|&p| comm(p) == "hcc");
        waiter.is_some()
    }));
    wait_blocked(waiter.unwrap());
    env.ok(&["push", "console", "vm1"]);
    assert_eq!(
        rx.recv_timeout(WAKE).ok().as_deref(),
        Some("ran console vm1")
    );
    env.spool("panel.1", b"off vm2\n");
    assert_eq!(rx.recv_timeout(WAKE).ok().as_deref(), Some("ran off vm2"));
    let _ = std::process::Command::new("pkill")
        .args(["-P", &child.id().to_string()])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn readers_do_not_wake_waiters() {
    let env = Env::new();
    let mut wait = env.spawn(&["wait", ""]);
    wait.wait_blocked();
    for _ in 0..3 {
        let db = env.db();
        let _: i64 = db
            .query_row("SELECT count(*) FROM commands", [], |r| r.get(0))
            .unwrap();
    }
    // Time for a wake-up, were one coming: a wait for no change.
    std::thread::sleep(Duration::from_millis(300));
    let stderr = wait.kill();
    // Started, and nothing since: no wake-ups from the three readers.
    assert_eq!(stderr, ":");
}
