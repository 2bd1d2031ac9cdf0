//! The maildir-style spool: good files become exactly one command each,
//! malformed ones land in spool/bad with a reason, under concurrency and
//! under kill -9.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::process::Stdio;
use std::time::Duration;

use crate::test::Env;

fn names_in(env: &Env, dir: &str) -> BTreeSet<String> {
    fs::read_dir(env.path(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn args(env: &Env) -> Vec<String> {
    env.column("SELECT arg FROM commands ORDER BY id")
}

#[test]
fn malformed_files_go_to_bad_with_a_reason_and_good_ones_still_queue() {
    let env = Env::new();
    env.spool("a-good", b"start vm1\n");
    env.spool("b-unknown", b"explode vm1\n");
    env.spool("c-badname", b"start vm_1\n");
    env.spool("d-binary", b"start \x00\x01\x02");
    env.spool("e-latin1", b"start vm\xe9\n");
    env.spool("f-big", format!("notify {}\n", "x".repeat(5000)).as_bytes());
    env.spool("g-empty", b"");
    env.spool("h-twolines", b"start vm1\nstop vm1\n");
    env.spool("i-good", b"new m-vm2 cx22 debian-12 fsn1");
    symlink("/etc/passwd", env.path("spool/new/j-symlink")).unwrap();
    fs::create_dir(env.path("spool/new/k-directory")).unwrap();
    env.spool("l-good", b"notify hello panel\n");
    env.spool(".m-dotfile", b"start vm1\n");

    let run = env.run(&["ingest"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, "queued 3, rejected 9 (see spool/bad)\n");
    assert_eq!(run.stderr.lines().count(), 9, "{run:?}");
    assert!(
        run.stderr
            .lines()
            .all(|l| l.starts_with("hcc: spool: rejected `"))
    );

    assert_eq!(
        args(&env),
        ["vm1", "m-vm2 cx22 debian-12 fsn1", "hello panel"]
    );
    assert_eq!(
        names_in(&env, "spool/new"),
        BTreeSet::from([".m-dotfile".to_string()])
    );
    let why = |name: &str| {
        fs::read_to_string(env.path("spool/bad").join(format!("{name}.why")))
            .unwrap_or_else(|e| panic!("{name}.why: {e}"))
    };
    assert!(why("b-unknown").contains("unknown command `explode`"));
    assert!(why("c-badname").contains("invalid server name `vm_1`"));
    assert!(why("d-binary").contains("binary"));
    assert!(why("e-latin1").contains("not UTF-8"));
    assert!(why("f-big").contains("larger than 4096 bytes"));
    assert!(why("g-empty").contains("empty"));
    assert!(why("h-twolines").contains("more than one line"));
    assert!(why("j-symlink").contains("symlink"));
    assert!(why("k-directory").contains("directory"));
    // The rejected files themselves are kept, untouched, for inspection.
    assert_eq!(
        fs::read(env.path("spool/bad/b-unknown")).unwrap(),
        b"explode vm1\n"
    );
    assert!(
        fs::symlink_metadata(env.path("spool/bad/j-symlink"))
            .unwrap()
            .is_symlink()
    );
    assert!(env.path("spool/bad/k-directory").is_dir());
    // A second pass finds nothing to do.
    assert_eq!(env.ok(&["ingest"]), "");
}

#[test]
fn a_long_name_is_rejected_like_any_other_and_the_pass_goes_on() {
    let env = Env::new();
    let long = format!("{}.bad", "x".repeat(250));
    env.spool(&long, b"bogus vm1\n");
    env.spool("zz-good", b"start vm1\n");
    let run = env.run(&["ingest"]);
    assert_eq!(
        run.stdout, "queued 1, rejected 1 (see spool/bad)\n",
        "{run:?}"
    );
    let bad = names_in(&env, "spool/bad");
    assert_eq!(bad.len(), 2, "{bad:?}");
    let why = bad.iter().find(|n| n.ends_with(".why")).unwrap();
    assert!(why.len() < 255 && why.starts_with("xxxx"), "{why}");
    let reason = fs::read_to_string(env.path("spool/bad").join(why)).unwrap();
    assert!(reason.contains("unknown command `bogus`"), "{reason}");
}

#[test]
fn nothing_planted_in_bad_is_written_through() {
    let env = Env::new();
    let victim = env.path("victim.txt");
    fs::write(&victim, "precious").unwrap();
    // Whatever names a panel user plants in spool/bad, hcc neither follows
    // nor replaces them.
    symlink(&victim, env.path("spool/bad/evil")).unwrap();
    symlink(&victim, env.path("spool/bad/evil.1.why")).unwrap();
    for i in 0..64 {
        symlink(&victim, env.path(&format!("spool/bad/.evil.2.why.{i}.tmp"))).unwrap();
    }
    env.spool("evil", b"bogus\n");
    let run = env.run(&["ingest"]);
    assert_eq!(
        run.stdout, "queued 0, rejected 1 (see spool/bad)\n",
        "{run:?}"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(fs::read(env.path("spool/bad/evil.2")).unwrap(), b"bogus\n");
    assert!(
        fs::read_to_string(env.path("spool/bad/evil.2.why"))
            .unwrap()
            .contains("unknown command")
    );
}

#[test]
fn a_reused_spool_name_is_rejected_not_dropped() {
    let env = Env::new();
    env.spool("console-vm1", b"console vm1\n");
    env.ok(&["ingest"]);
    env.spool("console-vm1", b"console vm1\n");
    let run = env.run(&["ingest"]);
    assert_eq!(run.stdout, "queued 0, rejected 1 (see spool/bad)\n");
    let why = fs::read_to_string(env.path("spool/bad/console-vm1.why")).unwrap();
    assert!(why.contains("already used by command 1"), "{why}");
}

#[test]
fn a_bad_name_reused_keeps_both_files_and_reasons() {
    let env = Env::new();
    env.spool("x", b"bogus 1\n");
    env.ok(&["ingest"]);
    env.spool("x", b"bogus 2\n");
    env.ok(&["ingest"]);
    assert_eq!(fs::read(env.path("spool/bad/x")).unwrap(), b"bogus 1\n");
    assert_eq!(fs::read(env.path("spool/bad/x.1")).unwrap(), b"bogus 2\n");
    assert!(env.path("spool/bad/x.1.why").exists());
}

#[test]
fn eight_concurrent_writers_lose_and_duplicate_nothing() {
    const WRITERS: usize = 8;
    const FILES: usize = 500;
    let env = Env::new();
    let failed = env.path("ingester-failed");
    let stop = env.path("stop-ingesting");
    // Two consumers ingest while the writers write; a failing pass leaves a
    // mark. They stop by themselves when told, never killed mid-pass.
    let mut ingesters: Vec<_> = (0..2)
        .map(|_| {
            let script = format!(
                r#"while [ ! -e "{}" ]; do out=$("{}" ingest 2>&1) || echo "$out" >> "{}"; done"#,
                stop.display(),
                crate::test::HCC,
                failed.display()
            );
            std::process::Command::new("sh")
                .args(["-c", &script])
                .env("HCC_HOME", env.home())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let env = &env;
            scope.spawn(move || {
                for i in 0..FILES {
                    let name = format!("{}.w{w}i{i}.test", 1_700_000_000 + i);
                    env.spool(&name, format!("console w{w}-i{i}\n").as_bytes());
                    // Every tenth writer round also drops a bad file.
                    if i % 10 == 0 {
                        env.spool(&format!("{name}.bad"), b"bogus\n");
                    }
                }
            });
        }
    });
    fs::write(&stop, "").unwrap();
    for child in &mut ingesters {
        child.wait().unwrap();
    }
    env.ok(&["ingest"]);
    assert!(
        !failed.exists(),
        "an ingest pass failed while others ran: {}",
        fs::read_to_string(&failed).unwrap_or_default()
    );

    let got = args(&env);
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(got.len(), WRITERS * FILES, "commands queued");
    assert_eq!(unique.len(), WRITERS * FILES, "duplicates found");
    for w in 0..WRITERS {
        for i in 0..FILES {
            assert!(unique.contains(&format!("w{w}-i{i}")), "lost w{w}-i{i}");
        }
    }
    assert!(names_in(&env, "spool/new").is_empty());
    let bad = names_in(&env, "spool/bad");
    let files = bad.iter().filter(|n| !n.ends_with(".why")).count();
    let reasons = bad.iter().filter(|n| n.ends_with(".why")).count();
    assert_eq!(
        (files, reasons),
        (WRITERS * FILES / 10, WRITERS * FILES / 10),
        "{bad:?}"
    );
}

#[test]
fn kill_9_while_ingesting_never_loses_or_duplicates_a_file() {
    const FILES: usize = 3000;
    let env = Env::new();
    for i in 0..FILES {
        env.spool(
            &format!("{i:05}.kill.test"),
            format!("sync vm-{i}\n").as_bytes(),
        );
    }
    let mut rng = fastrand::Rng::new();
    let mut kills = 0;
    for _ in 0..40 {
        if names_in(&env, "spool/new").is_empty() {
            break;
        }
        let mut child = env
            .cmd(&["ingest"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed at a random moment (the point).
        std::thread::sleep(Duration::from_micros(rng.u64(0..40_000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills > 0, "no ingest was ever killed mid-pass");
    env.ok(&["ingest"]);
    let got = args(&env);
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(
        (got.len(), unique.len()),
        (FILES, FILES),
        "after {kills} kills"
    );
    assert!(names_in(&env, "spool/new").is_empty());
    assert!(names_in(&env, "spool/bad").is_empty());
    let integrity: String = env.value("PRAGMA integrity_check");
    assert_eq!(integrity, "ok");
}
