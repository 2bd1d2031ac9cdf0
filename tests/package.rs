//! The Debian package (`scripts/package`): built from the binary under
//! test, checked by lintian, installed on this machine with dpkg, its
//! units accepted by `systemd-analyze verify`, its man page opened; removal
//! keeps the state directory, purge removes what the package made.
//!
//! It installs system-wide (`/usr/bin/hcc`, the user `hcc`), so it runs as
//! root only, and outside CI only when no `hcc` package is installed
//! already: it would replace and then purge an operator's.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::test::{HCC, require, require_program};

/// Installing and purging share the machine's package database.
static DPKG: Mutex<()> = Mutex::new(());

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    let out = run("dpkg-query", &["-W", "-f=${Status}", "hcc"]);
    String::from_utf8_lossy(&out.stdout).contains("installed")
}

fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

fn user_exists(name: &str) -> bool {
    run("getent", &["passwd", name]).status.success()
}

fn group_exists(name: &str) -> bool {
    run("getent", &["group", name]).status.success()
}

/// `scripts/package --binary HCC --fast`: the path of the .deb it made.
fn build_package() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/package"))
        .args(["--binary", HCC, "--fast"])
        .current_dir(root)
        .output()
        .expect("run scripts/package");
    assert!(
        out.status.success(),
        "scripts/package: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("no .deb named in: {stdout}"));
    let deb = root.join(deb);
    assert!(deb.is_file(), "{}", deb.display());
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        name.starts_with(&format!("hcc_{version}")) && name.ends_with(".deb"),
        "{name}"
    );
    deb
}

#[test]
fn the_package_installs_verifies_and_purges_cleanly() {
    let _dpkg = DPKG.lock().unwrap_or_else(|p| p.into_inner());
    let root = rustix::process::geteuid().is_root();
    if !require(root, "the package test installs system-wide and needs root")
        || !require_program("dpkg")
        || !require_program("lintian")
        || !require_program("man")
        || !require_program("systemd-analyze")
    {
        return;
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    if installed() {
        if !ci {
            eprintln!(
                "\nSKIP: an hcc package is installed here; this test would replace and purge it\n"
            );
            return;
        }
        ok("dpkg", &["--purge", "hcc"]);
    }
    let deb = build_package();
    let deb = deb.to_str().expect("a UTF-8 path");

    // Lintian: nothing that applies (pkg/deb/lintian-overrides says why
    // each override does not).
    let lint = run("lintian", &["--no-tag-display-limit", deb]);
    let said = String::from_utf8_lossy(&lint.stdout);
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .collect();
    assert!(complaints.is_empty(), "lintian: {said}");

    ok("dpkg", &["--install", deb]);
    let version = ok("/usr/bin/hcc", &["--version"]);
    assert_eq!(
        version.trim(),
        format!("hcc {}", env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    // The user, the group and the directories the maintainer scripts made.
    assert!(user_exists("hcc") && group_exists("hcc"));
    let state = std::fs::metadata("/var/lib/hcc").expect("/var/lib/hcc");
    let hcc_uid: u32 = ok("id", &["-u", "hcc"]).trim().parse().expect("uid");
    assert_eq!(state.uid(), hcc_uid);
    assert_eq!(state.mode() & 0o7777, 0o750);
    let etc = std::fs::metadata("/etc/hcc").expect("/etc/hcc");
    assert_eq!((etc.uid(), etc.mode() & 0o7777), (0, 0o700));
    // Installed, not enabled: a worker needs a token first.
    for unit in [
        "hcc-worker.service",
        "hcc-worker@.service",
        "hcc-serve.service",
        "hcc-sync.service",
        "hcc-sync.timer",
    ] {
        let path = format!("/usr/lib/systemd/system/{unit}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(!text.contains("/usr/local/bin"), "{path}");
        assert!(
            !exists(&format!(
                "/etc/systemd/system/multi-user.target.wants/{unit}"
            )),
            "{unit} enabled"
        );
    }
    let verify = run(
        "systemd-analyze",
        &[
            "verify",
            "--man=no",
            "/usr/lib/systemd/system/hcc-worker.service",
            "/usr/lib/systemd/system/hcc-serve.service",
            "/usr/lib/systemd/system/hcc-sync.service",
            "/usr/lib/systemd/system/hcc-sync.timer",
        ],
    );
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let verify = run(
        "systemd-analyze",
        &["verify", "--man=no", "hcc-worker@shop.service"],
    );
    assert!(
        verify.status.success(),
        "systemd-analyze verify hcc-worker@shop.service: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // The man page opens; the completions are where the shells look.
    let page = ok("man", &["-P", "cat", "hcc"]);
    assert!(
        page.contains("hcc - Hetzner Cloud console middleware"),
        "{page}"
    );
    for file in [
        "/usr/share/bash-completion/completions/hcc",
        "/usr/share/zsh/vendor-completions/_hcc",
        "/usr/share/fish/vendor_completions.d/hcc.fish",
        "/usr/share/doc/hcc/examples/nginx/hcc.conf",
        "/usr/share/doc/hcc/examples/litestream.yml",
    ] {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!text.is_empty(), "{file}");
    }

    // The packaged hcc, as the user hcc, makes its state in /var/lib/hcc.
    ok(
        "setpriv",
        &[
            "--reuid=hcc",
            "--regid=hcc",
            "--init-groups",
            "env",
            "HCC_HOME=/var/lib/hcc",
            "/usr/bin/hcc",
            "config",
            "set",
            "prefix",
            "pkg-",
        ],
    );
    assert!(exists("/var/lib/hcc/hcc.db"));

    // Removal keeps the state; purge removes what the package made.
    ok("dpkg", &["--remove", "hcc"]);
    assert!(!exists("/usr/bin/hcc"));
    assert!(exists("/var/lib/hcc/hcc.db"), "removal took the state");
    assert!(user_exists("hcc"));
    ok("dpkg", &["--purge", "hcc"]);
    assert!(!installed());
    for path in [
        "/var/lib/hcc",
        "/etc/hcc",
        "/usr/lib/systemd/system/hcc-worker.service",
    ] {
        assert!(!exists(path), "{path} left after purge");
    }
    assert!(!user_exists("hcc") && !group_exists("hcc"));
}
