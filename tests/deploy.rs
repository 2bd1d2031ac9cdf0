//! The deployment files in `scripts/`: the systemd units carry the
//! hardening and the token credential (which hcc reads from
//! `$CREDENTIALS_DIRECTORY` itself), their ExecStart runs as systemd would
//! run it, and the cron lines are valid `hcc sync` calls.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::test::{Env, HCC, Sim, eventually, require_program};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(script(name)).unwrap_or_else(|e| panic!("scripts/{name}: {e}"))
}

/// The `Key=Value` lines of a unit's `[Service]` section, in order.
fn service(unit: &str) -> Vec<(String, String)> {
    let mut section = "";
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line;
        } else if section == "[Service]" {
            let (k, v) = line.split_once('=').expect("Key=Value");
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

fn get<'a>(keys: &'a [(String, String)], key: &str) -> &'a str {
    keys.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key}= in [Service]"))
}

/// Checks one unit: `home` is its state directory, `token` its credential.
fn check_unit(name: &str, home: &str, token: &str) -> Vec<(String, String)> {
    let keys = service(&read(name));
    let want = [
        ("Type", "simple"),
        ("User", "hcc"),
        ("Group", "hcc"),
        ("Restart", "on-failure"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("SystemCallArchitectures", "native"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
    ];
    for (key, value) in want {
        assert_eq!(get(&keys, key), value, "{name}: {key}");
    }
    assert!(get(&keys, "RestartSec").parse::<u32>().is_ok(), "{name}");
    assert_eq!(get(&keys, "Environment"), format!("HCC_HOME={home}"));
    assert_eq!(get(&keys, "ReadWritePaths"), home, "{name}");
    assert_eq!(
        format!("/var/lib/{}", get(&keys, "StateDirectory")),
        home,
        "{name}"
    );
    assert_eq!(
        get(&keys, "LoadCredential"),
        format!("hcloud-token:{token}"),
        "{name}"
    );
    // hcc reads the credential itself: no shell wrapper that puts the
    // token into the environment.
    let exec = get(&keys, "ExecStart");
    assert!(
        exec == "/usr/local/bin/hcc worker"
            || exec.starts_with("/usr/local/bin/hcc serve --worker --listen 127.0.0.1:"),
        "{exec}"
    );
    assert!(!exec.contains('$') && !exec.contains("sh -c"), "{exec}");
    keys
}

#[test]
fn units_carry_the_hardening_and_the_token_credential() {
    let single = check_unit("hcc-worker.service", "/var/lib/hcc", "/etc/hcc/token");
    let template = check_unit(
        "hcc-worker@.service",
        "/var/lib/hcc/%i",
        "/etc/hcc/%i.token",
    );
    // The template is the same unit per project: same keys, same order.
    let names = |keys: &[(String, String)]| keys.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(names(&single), names(&template));
    // hcc serve with its worker: the same unit but for what it runs.
    let serve = check_unit("hcc-serve.service", "/var/lib/hcc", "/etc/hcc/token");
    let differ: Vec<&str> = single
        .iter()
        .zip(&serve)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert_eq!(names(&single), names(&serve));
    assert_eq!(differ, ["ExecStart"]);
    let differ: Vec<&str> = single
        .iter()
        .zip(&template)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert_eq!(
        differ,
        [
            "StateDirectory",
            "Environment",
            "LoadCredential",
            "ReadWritePaths"
        ]
    );

    if !require_program("systemd-analyze") {
        return;
    }
    // verify checks that ExecStart's program exists: the one just built.
    let dir = tempfile::tempdir().expect("tempdir");
    for (unit, file) in [
        ("hcc-worker.service", "hcc-worker.service"),
        ("hcc-worker@.service", "hcc-worker@shop.service"),
        ("hcc-serve.service", "hcc-serve.service"),
        ("hcc-sync.service", "hcc-sync.service"),
        ("hcc-sync.timer", "hcc-sync.timer"),
    ] {
        let text = read(unit).replace("/usr/local/bin/hcc", HCC);
        std::fs::write(dir.path().join(file), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args([
            "verify",
            "--man=no",
            "hcc-worker.service",
            "hcc-worker@shop.service",
            "hcc-serve.service",
            "hcc-sync.service",
            "hcc-sync.timer",
        ])
        .current_dir(dir.path())
        .output()
        .expect("run systemd-analyze");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_sync_timer_runs_changes_with_the_workers_hardening() {
    let worker = service(&read("hcc-worker.service"));
    let sync = service(&read("hcc-sync.service"));
    assert_eq!(get(&sync, "Type"), "oneshot");
    assert_eq!(get(&sync, "ExecStart"), "/usr/local/bin/hcc sync --changes");
    // Everything the worker's unit sets but what makes it a long-running
    // service, the sync's sets alike: user, state directory, credential,
    // every hardening line.
    let daemon_only = [
        "Type",
        "ExecStart",
        "Restart",
        "RestartSec",
        "RestartPreventExitStatus",
        "KillSignal",
        "TimeoutStopSec",
    ];
    let shared: Vec<&(String, String)> = worker
        .iter()
        .filter(|(k, _)| !daemon_only.contains(&k.as_str()))
        .collect();
    assert!(shared.len() > 30, "{shared:?}");
    for pair in shared {
        assert!(
            sync.contains(pair),
            "hcc-sync.service lacks {}={}",
            pair.0,
            pair.1
        );
    }
    let timer = read("hcc-sync.timer");
    assert!(timer.contains("\nOnCalendar=*:0/5\n"), "{timer}");
    assert!(timer.contains("\nWantedBy=timers.target\n"), "{timer}");
}

/// The unit's ExecStart as systemd runs it (its words, no shell), with
/// the hcc just built.
fn exec_start() -> Command {
    let keys = service(&read("hcc-worker.service"));
    let line = get(&keys, "ExecStart");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/hcc"), "{line}");
    let mut cmd = Command::new(HCC);
    cmd.args(words)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn exec_start_runs_the_worker_with_the_token_credential() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "50"]);
    let env = Env::new();
    env.ok(&["push", "stop", "srv-00001"]);
    let creds = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        creds.path().join("hcloud-token"),
        format!("{}\n", sim.token),
    )
    .unwrap();

    let mut worker = exec_start()
        .env("HCC_HOME", env.home())
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .env("HCLOUD_ENDPOINT", &sim.endpoint)
        .spawn()
        .expect("run ExecStart");
    let done = eventually(Duration::from_secs(10), || {
        env.value::<String>("SELECT state FROM commands WHERE id = 1") == "done"
    });
    // No shell: systemd's SIGTERM reaches hcc itself.
    let comm = crate::test::comm(worker.id());
    let pid = rustix::process::Pid::from_raw(worker.id() as i32).expect("a pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let mut status = None;
    eventually(Duration::from_secs(5), || {
        status = worker.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = worker.kill();
    }
    let out = worker.wait_with_output().expect("wait");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(done, "{log}");
    assert_eq!(comm, "hcc");
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {log}");

    // No credential: exit 2, which the unit does not restart on.
    let out = exec_start()
        .env("HCC_HOME", env.home())
        .env("CREDENTIALS_DIRECTORY", creds.path().join("missing"))
        .output()
        .expect("run ExecStart");
    assert_eq!(out.status.code(), Some(2));
    let keys = service(&read("hcc-worker.service"));
    assert_eq!(get(&keys, "RestartPreventExitStatus"), "2");
}

#[test]
fn cron_lines_run_hcc_sync_as_hcc() {
    let sim = Sim::start(&["--servers", "3"]);
    let env = Env::new();
    let cron = read("hcc-sync.cron");
    assert!(
        cron.ends_with('\n'),
        "cron ignores a last line without newline"
    );
    let mut jobs = 0;
    for line in cron.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[0].contains('=') {
            assert!(
                [
                    "SHELL=/bin/sh",
                    "PATH=/usr/local/bin:/usr/bin:/bin",
                    "HCC_HOME=/var/lib/hcc"
                ]
                .contains(&line),
                "{line}"
            );
            continue;
        }
        // /etc/cron.d: five time fields, the user, the command.
        assert!(fields.len() > 6, "{line}");
        assert_eq!(fields[5], "hcc", "user field: {line}");
        assert_eq!(&fields[6..8], ["hcc", "sync"], "{line}");
        let command = fields[6..].join(" ").replacen("hcc", HCC, 1);
        let out = Command::new("/bin/sh")
            .args(["-c", &command])
            .env("HCC_HOME", env.home())
            .envs(sim.client_env())
            .output()
            .expect("run the cron command");
        assert!(out.status.success(), "{line}: {out:?}");
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{line}: {out:?}"
        );
        jobs += 1;
    }
    assert_eq!(jobs, 2);
    let rows: i64 = env.value("SELECT count(*) FROM servers");
    assert_eq!(rows, 3);
}
