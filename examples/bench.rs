//! Measurements behind `scripts/bench`, printed as a Markdown table.
//!
//! Usage: `bench PATH/TO/hcc` (scripts/bench builds the release binary and
//! passes it). Every figure runs on a fresh temporary state directory.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let hcc = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/hcc".into());
    println!("| measurement | n | median | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    row(
        "`hcc pull`, empty queue (process start to exit)",
        pull_empty(&hcc, 300),
    );
    row(
        "`hcc push start vm1` (process start to exit)",
        push(&hcc, 300),
    );
    row(
        "spool rename -> blocked `hcc next` prints it",
        spool_to_next(&hcc, 100),
    );
    row(
        "`hcc ingest` of 4000 spool files (whole pass)",
        ingest(&hcc, 4000, 3),
    );
}

fn row(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {what} | {} | {} | {} | {} | {} |",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0))
    );
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn hcc_cmd(hcc: &str, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(hcc);
    cmd.args(args).env("HCC_HOME", home).stdin(Stdio::null());
    cmd
}

fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).status().expect("run hcc");
    let took = start.elapsed();
    assert!(status.code().is_some(), "hcc crashed");
    took
}

fn pull_empty(hcc: &str, n: usize) -> Vec<Duration> {
    let home = home();
    timed(hcc_cmd(hcc, home.path(), &["pull"])); // creates the state
    (0..n)
        .map(|_| timed(hcc_cmd(hcc, home.path(), &["pull"])))
        .collect()
}

fn push(hcc: &str, n: usize) -> Vec<Duration> {
    let home = home();
    timed(hcc_cmd(hcc, home.path(), &["pull"]));
    (0..n)
        .map(|_| timed(hcc_cmd(hcc, home.path(), &["push", "start", "vm1"])))
        .collect()
}

fn spool_to_next(hcc: &str, n: usize) -> Vec<Duration> {
    let home = home();
    timed(hcc_cmd(hcc, home.path(), &["pull"]));
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let mut child = hcc_cmd(hcc, home.path(), &["next", "--id"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn hcc next");
        wait_blocked(child.id());
        let tmp = home.path().join(format!("spool/tmp/{i}.bench"));
        let mut file = std::fs::File::create(&tmp).expect("spool file");
        writeln!(file, "console vm{i}").expect("write spool file");
        drop(file);
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let start = Instant::now();
        std::fs::rename(&tmp, home.path().join(format!("spool/new/{i}.bench"))).expect("rename");
        let mut line = String::new();
        out.read_line(&mut line).expect("read next's output");
        samples.push(start.elapsed());
        assert!(line.ends_with(&format!("console vm{i}\n")), "{line}");
        child.wait().expect("wait for next");
    }
    samples
}

fn ingest(hcc: &str, files: usize, rounds: usize) -> Vec<Duration> {
    (0..rounds)
        .map(|_| {
            let home = home();
            timed(hcc_cmd(hcc, home.path(), &["pull"]));
            for i in 0..files {
                let tmp = home.path().join(format!("spool/tmp/{i}"));
                std::fs::write(&tmp, format!("sync vm{i}\n")).expect("spool file");
                std::fs::rename(&tmp, home.path().join(format!("spool/new/{i}"))).expect("rename");
            }
            timed(hcc_cmd(hcc, home.path(), &["ingest"]))
        })
        .collect()
}

/// Waits until `pid` sleeps with an inotify descriptor open.
fn wait_blocked(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let inotify = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.flatten().any(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|t| t.to_string_lossy().contains("inotify"))
                })
            })
            .unwrap_or(false);
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).unwrap_or_default();
        let sleeping = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next())
            == Some('S');
        if inotify && sleeping {
            std::thread::sleep(Duration::from_millis(20));
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("hcc next (pid {pid}) never blocked");
}
