//! The state directory as an attacker in the panel's group sees it: every
//! name in it may be a planted symlink, FIFO, hard link or foreign
//! directory. hcc refuses them with one line naming the file (exit 2) and
//! never writes, chmods or reads through them. Also: unreadable spool
//! files, an empty or foreign `hcc.db`, an endpoint with a password, and
//! the token as a systemd credential.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::test::{Env, Run, Sim, eventually, refusing, require, require_program};

/// Root: needed to act as, or chown to, another user.
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A file of the test's own outside the state directory, as another
/// project's database or `/etc/passwd` would be.
fn victim(dir: &tempfile::TempDir, mode: u32) -> std::path::PathBuf {
    let path = dir.path().join("victim");
    fs::write(&path, "precious\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn a_symlink_at_worker_lock_is_refused_and_its_target_kept() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    let other = tempfile::tempdir().unwrap();
    let target = victim(&other, 0o644);
    let lock = env.path("worker.lock");
    // A worker started against what is planted at `worker.lock` exits 2
    // with the one line naming it.
    let worker_refuses = |why: &str| {
        let run = Run::from(
            env.cmd(&["worker", "--cycle", "60"])
                .envs(sim.client_env())
                .output()
                .unwrap(),
        );
        run.fails(2, &refusing(&lock, why));
        run
    };
    symlink(&target, &lock).unwrap();
    let run = worker_refuses("it is a symbolic link");
    assert!(run.stderr.contains("symbolic link"), "{run:?}");
    assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
    env.run(&["status"])
        .fails(2, &refusing(&lock, "it is a symbolic link"));

    // A dangling link is not created through either.
    fs::remove_file(&lock).unwrap();
    let absent = other.path().join("absent");
    symlink(&absent, &lock).unwrap();
    worker_refuses("it is a symbolic link");
    assert!(!absent.exists());

    // A hard link to someone else's file is refused as well: writing the
    // pid into it would overwrite the other name's contents.
    fs::remove_file(&lock).unwrap();
    fs::hard_link(&target, &lock).unwrap();
    worker_refuses("it has 2 hard links: another name shares its contents");
    assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");

    // A FIFO does not block the worker.
    fs::remove_file(&lock).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &lock,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    worker_refuses("it is a FIFO, not a regular file");
}

#[test]
fn a_symlink_at_config_json_is_never_chmodded_or_read() {
    let env = Env::new();
    let other = tempfile::tempdir().unwrap();
    let target = victim(&other, 0o644);
    fs::remove_file(env.path("config.json")).unwrap();
    symlink(&target, env.path("config.json")).unwrap();
    for args in [
        &["push", "start", "vm1"][..],
        &["status"],
        &["config", "show"],
        &["config", "set", "location", "nbg1"],
    ] {
        let run = env.run(args);
        run.fails(
            2,
            &refusing(&env.path("config.json"), "it is a symbolic link"),
        );
        assert!(run.stderr.contains("symbolic link"), "{args:?}: {run:?}");
        assert_eq!(mode(&target), 0o644, "{args:?}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
    }
    assert!(
        fs::symlink_metadata(env.path("config.json"))
            .unwrap()
            .is_symlink()
    );

    // A hard link to the test's file: narrowing its mode would narrow the
    // other name's too.
    fs::remove_file(env.path("config.json")).unwrap();
    fs::hard_link(&target, env.path("config.json")).unwrap();
    env.run(&["config", "show"]).fails(
        2,
        &refusing(
            &env.path("config.json"),
            "it has 2 hard links: another name shares its contents",
        ),
    );
    assert_eq!(mode(&target), 0o644);
}

#[test]
fn spool_directories_replaced_by_symlinks_are_refused() {
    let env = Env::new();
    let elsewhere = tempfile::tempdir().unwrap();
    for dir in ["spool/new", "spool/bad", "spool/tmp", "spool"] {
        let real = env.path(&format!("{dir}.real"));
        fs::rename(env.path(dir), &real).unwrap();
        symlink(elsewhere.path(), env.path(dir)).unwrap();
        // Something to ingest, and something to reject into spool/bad.
        fs::write(elsewhere.path().join("f1"), "start vm1\n").unwrap();
        fs::write(elsewhere.path().join("f2"), "bogus\n").unwrap();
        let before: Vec<_> = fs::read_dir(elsewhere.path()).unwrap().collect();
        for args in [&["ingest"][..], &["pull"], &["config", "show"]] {
            let run = env.run(args);
            run.fails(
                2,
                &refusing(&env.path(dir), "it is a symbolic link, not a directory"),
            );
            assert!(run.stderr.contains("symbolic link"), "{run:?}");
        }
        let after: Vec<_> = fs::read_dir(elsewhere.path()).unwrap().collect();
        assert_eq!(before.len(), after.len(), "{dir}");
        let queued: i64 = env.value("SELECT count(*) FROM commands");
        assert_eq!(queued, 0, "{dir}");
        fs::remove_file(env.path(dir)).unwrap();
        fs::rename(&real, env.path(dir)).unwrap();
        fs::remove_file(elsewhere.path().join("f1")).unwrap();
        fs::remove_file(elsewhere.path().join("f2")).unwrap();
    }

    // A regular file where a directory belongs.
    fs::rename(env.path("spool/bad"), env.path("bad.real")).unwrap();
    fs::write(env.path("spool/bad"), "").unwrap();
    env.run(&["ingest"]).fails(
        2,
        &refusing(
            &env.path("spool/bad"),
            "it is a regular file, not a directory",
        ),
    );
    fs::remove_file(env.path("spool/bad")).unwrap();
    fs::rename(env.path("bad.real"), env.path("spool/bad")).unwrap();
    env.ok(&["ingest"]);
}

#[test]
fn a_spool_directory_owned_by_another_user_is_refused() {
    if !require(is_root(), "chown to another user needs root") {
        return;
    }
    let env = Env::new();
    rustix::fs::chown(
        env.path("spool/new"),
        Some(rustix::process::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let run = env.run(&["ingest"]);
    run.fails(
        2,
        &refusing(
            &env.path("spool/new"),
            "it is owned by uid 65534, neither hcc's user, root nor the state directory's owner",
        ),
    );
    assert!(run.stderr.contains("owned by uid 65534"), "{run:?}");
}

#[test]
fn fifos_and_devices_in_spool_new_are_rejected_without_blocking() {
    let env = Env::new();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        env.path("spool/new/pipe"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    env.spool("good", b"start vm1\n");
    let mut child = env
        .cmd(&["ingest"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let finished = eventually(Duration::from_secs(10), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !finished {
        let _ = child.kill();
    }
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(finished, "ingest blocked on a FIFO: {run:?}");
    assert_eq!(
        run.stdout, "queued 1, rejected 1 (see spool/bad)\n",
        "{run:?}"
    );
    let why = fs::read_to_string(env.path("spool/bad/pipe.why")).unwrap();
    assert!(why.contains("not a regular file"), "{why}");
}

#[test]
fn a_hard_link_in_spool_new_is_neither_read_nor_lost() {
    let env = Env::new();
    let other = tempfile::tempdir().unwrap();
    let target = other.path().join("private");
    fs::write(&target, "start vm-secret-42\n").unwrap();
    fs::hard_link(&target, env.path("spool/new/linked")).unwrap();
    let run = env.run(&["ingest"]);
    assert_eq!(
        run.stdout, "queued 0, left 1 for the next pass\n",
        "{run:?}"
    );
    assert!(run.stderr.contains("2 hard links"), "{run:?}");
    assert!(!run.stderr.contains("secret"), "{run:?}");
    assert_eq!(env.value::<i64>("SELECT count(*) FROM commands"), 0);
    assert!(
        fs::read_dir(env.path("spool/bad"))
            .unwrap()
            .next()
            .is_none()
    );
    // Once spool/new holds its only name, it is an ordinary spool file.
    fs::remove_file(&target).unwrap();
    assert_eq!(env.ok(&["ingest"]), "queued 1\n");
}

/// `hcc ARGS` as a user that cannot read a mode-000 file. Root reads any
/// file (CAP_DAC_OVERRIDE), so as root hcc runs with that capability and
/// CAP_DAC_READ_SEARCH dropped from its bounding set (`setpriv`), which
/// makes a mode-000 file unreadable for it too; as any other user the
/// mode alone does it. None (a failure under CI) when running as root
/// without `setpriv`.
fn without_read_override(env: &Env, args: &[&str]) -> Option<Command> {
    let cmd = env.cmd(args);
    if !rustix::process::geteuid().is_root() {
        return Some(cmd);
    }
    if !require_program("setpriv") {
        return None;
    }
    let inner = cmd;
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set=-dac_override,-dac_read_search", "--"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear()
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    Some(cmd)
}

#[test]
fn an_unreadable_spool_file_is_quarantined_or_counted_and_logged_once() {
    let env = Env::new();
    env.spool("locked", b"start vm1\n");
    fs::set_permissions(
        env.path("spool/new/locked"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let Some(mut cmd) = without_read_override(&env, &["ingest"]) else {
        return;
    };
    // The proof that the set-up works: this process cannot read it.
    let run = Run::from(cmd.output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout, "queued 0, rejected 1 (see spool/bad)\n",
        "{run:?}"
    );
    let why = fs::read_to_string(env.path("spool/bad/locked.why")).unwrap();
    assert!(why.contains("permission denied"), "{why}");
    assert!(env.path("spool/bad/locked").exists());

    // When it cannot be moved either (spool/bad not writable for hcc), it
    // stays, is counted as left, and a long-running process reports it
    // once, not at every wake-up.
    env.spool("locked2", b"start vm1\n");
    fs::set_permissions(
        env.path("spool/new/locked2"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    fs::set_permissions(env.path("spool/bad"), fs::Permissions::from_mode(0o500)).unwrap();
    let run = Run::from(
        without_read_override(&env, &["ingest"])
            .unwrap()
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout, "queued 0, left 1 for the next pass\n",
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");

    let sim = Sim::start(&["--servers", "2"]);
    let mut worker = without_read_override(&env, &["worker", "--cycle", "60"]).unwrap();
    let log = env.path("worker.log");
    let mut child = worker
        .envs(sim.client_env())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Five wake-ups, each a spool file that becomes a command.
    for i in 1..=5 {
        env.spool(&format!("w{i}"), b"sync\n");
        let ran = eventually(Duration::from_secs(15), || {
            env.value::<i64>("SELECT count(*) FROM commands WHERE state = 'done'") >= i
        });
        assert!(ran, "{}", fs::read_to_string(&log).unwrap_or_default());
    }
    crate::test::terminate(&mut child, Duration::from_secs(5));
    let _ = child.kill();
    let _ = child.wait();
    let text = fs::read_to_string(&log).unwrap();
    let about: Vec<&str> = text.lines().filter(|l| l.contains("locked2")).collect();
    assert_eq!(about.len(), 1, "{text}");
    fs::set_permissions(env.path("spool/bad"), fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn an_empty_hcc_db_is_named_damaged_and_left_alone() {
    let env = Env::new();
    for name in ["hcc.db", "hcc.db-wal", "hcc.db-shm"] {
        let _ = fs::remove_file(env.path(name));
    }
    fs::write(env.path("hcc.db"), "").unwrap();
    for args in [&["push", "start", "vm1"][..], &["ingest"], &["list"]] {
        let run = env.run(args);
        run.fails(
            1,
            &format!(
                "hcc: database `{}/hcc.db` is damaged: it is empty (0 bytes), and hcc never \
                 leaves an empty database behind; hcc leaves it untouched: restore it from a \
                 backup or move it away",
                env.home().display()
            ),
        );
        assert!(run.stderr.contains("damaged"), "{run:?}");
        assert!(run.stderr.contains("empty"), "{run:?}");
    }
    assert_eq!(fs::metadata(env.path("hcc.db")).unwrap().len(), 0);

    // A symlink at hcc.db is refused, not opened.
    let other = tempfile::tempdir().unwrap();
    let target = other.path().join("other.db");
    rusqlite::Connection::open(&target)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let before = fs::read(&target).unwrap();
    fs::remove_file(env.path("hcc.db")).unwrap();
    symlink(&target, env.path("hcc.db")).unwrap();
    env.run(&["push", "start", "vm1"])
        .fails(2, &refusing(&env.path("hcc.db"), "it is a symbolic link"));
    assert_eq!(fs::read(&target).unwrap(), before);

    // So is one at its write-ahead log.
    fs::remove_file(env.path("hcc.db")).unwrap();
    env.ok(&["push", "start", "vm1"]);
    let _ = fs::remove_file(env.path("hcc.db-wal"));
    symlink(&target, env.path("hcc.db-wal")).unwrap();
    env.run(&["push", "start", "vm1"]).fails(
        2,
        &refusing(&env.path("hcc.db-wal"), "it is a symbolic link"),
    );
    assert_eq!(fs::read(&target).unwrap(), before);
}

#[test]
fn a_new_state_directory_never_shows_an_empty_hcc_db() {
    // The database is made under a temporary name and renamed into
    // place: whoever sees `hcc.db` sees tables.
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("state");
    let mut children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(crate::test::HCC)
                .args(["push", "start", "vm1"])
                .env("HCC_HOME", &home)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children.drain(..) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let conn = rusqlite::Connection::open(home.join("hcc.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM commands", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4);
    let leftovers: Vec<String> = fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_unrelated_sqlite_file_gives_one_line_and_is_not_touched() {
    let tables = "it holds tables, but not hcc's `commands`";
    let cases = [
        // Another program's tables, user_version 0: hcc's first migration
        // would fail half-way on `servers`, or add its tables beside them.
        ("CREATE TABLE servers (x); CREATE TABLE other (y);", tables),
        ("CREATE TABLE notes (body TEXT);", tables),
        // A newer-looking version that is not hcc's at all.
        (
            "CREATE TABLE notes (body TEXT); PRAGMA user_version = 42;",
            tables,
        ),
        (
            "PRAGMA application_id = 1196444487; CREATE TABLE gpkg (x);",
            "its application id is 1196444487",
        ),
    ];
    for (sql, why) in cases {
        let env = Env::new();
        for name in ["hcc.db", "hcc.db-wal", "hcc.db-shm"] {
            let _ = fs::remove_file(env.path(name));
        }
        rusqlite::Connection::open(env.path("hcc.db"))
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let before = fs::read(env.path("hcc.db")).unwrap();
        let run = env.run(&["push", "start", "vm1"]);
        run.fails(
            1,
            &format!(
                "hcc: database `{}` is not an hcc database ({why}); hcc leaves it untouched: \
                 restore it from a backup or move it away",
                env.path("hcc.db").display()
            ),
        );
        assert!(run.stderr.contains("not an hcc database"), "{sql}: {run:?}");
        assert_eq!(fs::read(env.path("hcc.db")).unwrap(), before, "{sql}");
    }
}

const PASSWORD: &str = "Pa55w0rdNeverShown";

#[test]
fn an_endpoint_password_is_never_printed() {
    let env = Env::new();
    let endpoint = format!("http://user:{PASSWORD}@127.0.0.1:9/v1");
    // A dead port: the transport error names the endpoint.
    let run = Run::from(
        env.cmd(&["sync"])
            .env("HCLOUD_ENDPOINT", &endpoint)
            .env("HCLOUD_TOKEN", "t0ken")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(!run.stderr.contains(PASSWORD), "{run:?}");
    assert!(
        run.stderr.contains("http://user:<redacted>@127.0.0.1:9/v1"),
        "{run:?}"
    );

    env.ok(&["config", "set", "endpoint", &endpoint]);
    let show = env.ok(&["config", "show"]);
    assert!(!show.contains(PASSWORD), "{show}");
    assert!(
        show.contains("http://user:<redacted>@127.0.0.1:9/v1"),
        "{show}"
    );
    let get = env.ok(&["config", "get", "endpoint"]);
    assert_eq!(get, "http://user:<redacted>@127.0.0.1:9/v1\n");
    let run = env.run(&["status"]);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));

    // The worker's start line.
    let sim = Sim::start(&[]);
    let log = env.path("worker.log");
    let mut worker = env
        .cmd(&["worker", "--cycle", "60"])
        .env(
            "HCLOUD_ENDPOINT",
            format!("http://user:{PASSWORD}@{}/v1", sim.addr),
        )
        .env("HCLOUD_TOKEN", &sim.token)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = eventually(Duration::from_secs(10), || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("started")
    });
    crate::test::terminate(&mut worker, Duration::from_secs(5));
    let _ = worker.kill();
    let _ = worker.wait();
    let text = fs::read_to_string(&log).unwrap();
    assert!(started, "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        text.contains(&format!("endpoint http://user:<redacted>@{}/v1", sim.addr)),
        "{text}"
    );
}

#[test]
fn the_token_comes_from_the_systemd_credential_directory() {
    let sim = Sim::start(&["--servers", "2"]);
    let env = Env::new();
    let creds = tempfile::tempdir().unwrap();
    fs::write(
        creds.path().join("hcloud-token"),
        format!("{}\n", sim.token),
    )
    .unwrap();
    // `hcc sync` against the simulator, with no token but the credential
    // directory `dir`.
    let sync = |dir: &std::path::Path| {
        let mut cmd = env.cmd(&["sync"]);
        cmd.env("HCLOUD_ENDPOINT", &sim.endpoint)
            .env("CREDENTIALS_DIRECTORY", dir);
        cmd
    };
    let run = Run::from(sync(creds.path()).output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(env.value::<i64>("SELECT count(*) FROM servers"), 2);
    // `config show` says where it came from, and never shows it.
    let run = Run::from(
        env.cmd(&["config", "show"])
            .env("CREDENTIALS_DIRECTORY", creds.path())
            .output()
            .unwrap(),
    );
    assert!(
        run.stdout
            .contains("(from $CREDENTIALS_DIRECTORY/hcloud-token)"),
        "{run:?}"
    );
    assert!(!run.stdout.contains(&sim.token), "{run:?}");
    // HCLOUD_TOKEN still wins.
    let run = Run::from(
        sync(creds.path())
            .env("HCLOUD_TOKEN", "wrong")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{run:?}");

    // A credential directory without the token: the usual "no token".
    let empty = tempfile::tempdir().unwrap();
    let run = Run::from(sync(empty.path()).output().unwrap());
    run.fails(
        2,
        "hcc: hetzner: no API token: set HCLOUD_TOKEN, run `hcc config set token -`, or run \
         `hcc setup`",
    );
}

#[test]
fn the_state_directory_layout_has_no_foreign_owner_or_links() {
    // What a first run makes passes its own checks, and nothing in it is
    // a link.
    let env = Env::new();
    for name in [
        "hcc.db",
        "config.json",
        "spool",
        "spool/tmp",
        "spool/new",
        "spool/bad",
    ] {
        let meta = fs::symlink_metadata(env.path(name)).unwrap();
        assert!(!meta.file_type().is_symlink(), "{name}");
        assert_eq!(meta.uid(), rustix::process::geteuid().as_raw(), "{name}");
    }
}

#[test]
fn a_panel_user_in_the_group_still_pushes_and_ingests() {
    // The shared set-up (docs/operations.md): the state directory 2770 with the
    // panel's group, hcc.db 660, config.json private to hcc's user. The
    // panel's user (here nobody:nogroup) runs `hcc push` and `hcc ingest`.
    if !require(is_root(), "acting as another user needs root") || !require_program("setpriv") {
        return;
    }
    let env = Env::new();
    let group = rustix::process::Gid::from_raw(65534);
    for dir in ["", "spool", "spool/tmp", "spool/new", "spool/bad"] {
        let path = env.path(dir);
        rustix::fs::chown(&path, None, Some(group)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o2770)).unwrap();
    }
    for file in ["hcc.db", "hcc.db-wal", "hcc.db-shm"] {
        let path = env.path(file);
        if path.exists() {
            rustix::fs::chown(&path, None, Some(group)).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o660)).unwrap();
        }
    }
    let as_panel = |args: &[&str]| {
        let inner = env.cmd(args);
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(crate::test::HCC)
            .args(args)
            .env_clear()
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::null());
        Run::from(cmd.output().unwrap())
    };
    let run = as_panel(&["push", "start", "vm1"]);
    assert_eq!(run.code, 0, "{run:?}");
    env.spool("p1", b"stop vm1\n");
    let run = as_panel(&["ingest"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "queued 1\n"),
        "{run:?}"
    );
    assert_eq!(mode(&env.path("config.json")), 0o600);
    assert_eq!(env.value::<i64>("SELECT count(*) FROM commands"), 2);
}

#[test]
fn status_without_a_state_directory_creates_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("state");
    for json in [false, true] {
        let mut args = vec!["status"];
        if json {
            args.push("--json");
        }
        let run = Run::from(
            Command::new(crate::test::HCC)
                .args(&args)
                .env("HCC_HOME", &home)
                .env_remove("XDG_STATE_HOME")
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        );
        // "No worker runs": exit 1, one line, and JSON readers get no
        // stray text on stdout.
        assert_eq!(run.code, 1, "{run:?}");
        let line = if json { &run.stderr } else { &run.stdout };
        let other = if json { &run.stdout } else { &run.stderr };
        assert_eq!(line.lines().count(), 1, "{run:?}");
        assert!(line.contains("not running"), "{run:?}");
        assert!(line.contains(home.to_str().unwrap()), "{run:?}");
        assert!(other.is_empty(), "{run:?}");
        assert!(!home.exists(), "hcc status created {}", home.display());
    }
    // An existing empty directory stays empty too.
    fs::create_dir(&home).unwrap();
    let run = Run::from(
        Command::new(crate::test::HCC)
            .arg("status")
            .env("HCC_HOME", &home)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(fs::read_dir(&home).unwrap().count(), 0);
}
