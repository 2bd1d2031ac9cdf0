//! `hcc serve` re-reads its settings without a restart: when `hcc config
//! set` renames a new config.json into place, on SIGHUP after a hand edit;
//! a broken file keeps the old settings with one log line; and
//! `hcc config set` says whether a running serve picked the change up.

use std::time::Duration;

use crate::support::serve::Serve;
use crate::test::{Env, eventually, http};

/// `hcc serve` on an ephemeral port; no Hetzner needed for pages.
fn serve(env: &Env) -> Serve {
    Serve::start_command(env, &mut env.cmd(&["serve", "--listen", "127.0.0.1:0"]))
}

/// The CSP `frame-ancestors` sources of the dashboard page, as served now.
fn frame_ancestors(serve: &Serve) -> String {
    let reply = http(&serve.addr, "GET", "/", None, None).expect("GET /");
    assert_eq!(reply.status, 200, "{reply:?}");
    let csp = reply
        .header("content-security-policy")
        .expect("a CSP header")
        .to_string();
    csp.split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("frame-ancestors "))
        .unwrap_or_else(|| panic!("no frame-ancestors in {csp}"))
        .to_string()
}

fn sighup(pid: u32) {
    signal("-HUP", pid);
}

fn signal(which: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Writes config.json as an editor's "save" might: a new file renamed
/// over the old one, mode 0600.
fn hand_edit(env: &Env, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = env.path("config.json.edit");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    drop(file);
    std::fs::rename(&tmp, env.path("config.json")).unwrap();
}

#[test]
fn config_set_reaches_a_running_serve_and_says_so() {
    let env = Env::new();
    let mut serve = serve(&env);
    assert_eq!(frame_ancestors(&serve), "'none'");

    let run = env.run(&[
        "config",
        "set",
        "frame_ancestors",
        "https://panel.example.com",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        format!("hcc: hcc serve (pid {}) picked up the change", serve.pid()),
        "{run:?}"
    );
    // "Picked up" means the very next request has it.
    assert_eq!(frame_ancestors(&serve), "https://panel.example.com");
    assert!(
        serve
            .log()
            .contains("settings re-read (config.json changed): changed frame_ancestors"),
        "{}",
        serve.log()
    );

    // Back to the default, and a setting that needs a restart is named.
    let run = env.run(&["config", "unset", "frame_ancestors"]);
    assert!(run.stderr.contains("picked up the change"), "{run:?}");
    assert_eq!(frame_ancestors(&serve), "'none'");
    let run = env.run(&["config", "set", "trusted_proxies", "none"]);
    assert!(run.stderr.contains("picked up the change"), "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "`trusted_proxies` applies when hcc serve (pid {}) restarts",
            serve.pid()
        )),
        "{run:?}"
    );
    assert!(
        eventually(Duration::from_secs(5), || serve.log().contains(
            "these changed settings apply only when hcc serve restarts: trusted_proxies"
        )),
        "{}",
        serve.log()
    );

    // A serve that cannot answer (stopped by SIGSTOP) is named as such.
    signal("-STOP", serve.pid());
    let run = env.run(&["config", "set", "frame_ancestors", "'self'"]);
    signal("-CONT", serve.pid());
    assert_eq!(
        run.stderr.trim(),
        format!(
            "hcc: hcc serve (pid {0}) did not pick up the change within 2 s; send it SIGHUP (kill -HUP {0}) or restart it, and see its log",
            serve.pid()
        ),
        "{run:?}"
    );
    assert!(
        eventually(Duration::from_secs(5), || frame_ancestors(&serve)
            == "'self'"),
        "{}",
        serve.log()
    );

    // A stopped serve takes its record with it.
    assert!(serve.stop().is_some_and(|s| s.success()));
    assert!(!env.path("serve.json").exists());
    let run = env.run(&["config", "set", "frame_ancestors", "'self'"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "hcc: no hcc serve is running; the change applies when it starts"
    );
}

#[test]
fn sighup_rereads_a_hand_edited_config() {
    let env = Env::new();
    let serve = serve(&env);
    assert_eq!(frame_ancestors(&serve), "'none'");
    let mode = std::fs::metadata(env.path("serve.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    hand_edit(&env, r#"{"frame_ancestors": "'self'"}"#);
    sighup(serve.pid());
    assert!(
        eventually(Duration::from_secs(5), || frame_ancestors(&serve)
            == "'self'"),
        "{}",
        serve.log()
    );
    // The process is the same one: SIGHUP did not end it.
    assert!(std::path::Path::new(&format!("/proc/{}", serve.pid())).exists());
    sighup(serve.pid());
    assert!(
        eventually(Duration::from_secs(5), || serve
            .log()
            .contains("settings re-read (SIGHUP): unchanged")),
        "{}",
        serve.log()
    );
}

#[test]
fn a_broken_config_keeps_the_old_settings_with_one_log_line() {
    let env = Env::new();
    let serve = serve(&env);
    env.ok(&["config", "set", "frame_ancestors", "'self'"]);
    assert_eq!(frame_ancestors(&serve), "'self'");

    hand_edit(&env, "{\"frame_ancestors\": ");
    assert!(
        eventually(Duration::from_secs(5), || serve
            .log()
            .contains("settings not re-read")),
        "{}",
        serve.log()
    );
    // Give a second event, if any were coming, time to log again.
    std::thread::sleep(Duration::from_millis(500));
    let log = serve.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("settings not re-read"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("config.json") && lines[0].contains("stay in force"),
        "{log}"
    );
    assert_eq!(frame_ancestors(&serve), "'self'");

    // Fixed by hand: the new value applies.
    hand_edit(&env, r#"{"frame_ancestors": "https://panel.example.com"}"#);
    assert!(
        eventually(Duration::from_secs(5), || frame_ancestors(&serve)
            == "https://panel.example.com"),
        "{}",
        serve.log()
    );
}

#[test]
fn config_set_without_a_running_serve_says_so() {
    let env = Env::new();
    let run = env.run(&["config", "set", "frame_ancestors", "'self'"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr.trim(),
        "hcc: no hcc serve is running; the change applies when it starts"
    );
    // A record left by a serve that was killed names a dead process.
    std::fs::write(
        env.path("serve.json"),
        r#"{"pid": 999999999, "config": "x"}"#,
    )
    .unwrap();
    let run = env.run(&["config", "set", "frame_ancestors", "'none'"]);
    assert_eq!(
        run.stderr.trim(),
        "hcc: no hcc serve is running; the change applies when it starts"
    );
    // Its pid taken by another program (here: this test) is no serve either.
    std::fs::write(
        env.path("serve.json"),
        format!(r#"{{"pid": {}, "config": "x"}}"#, std::process::id()),
    )
    .unwrap();
    let run = env.run(&["config", "set", "frame_ancestors", "'self'"]);
    assert_eq!(
        run.stderr.trim(),
        "hcc: no hcc serve is running; the change applies when it starts"
    );
}
