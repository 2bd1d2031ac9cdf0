//! `bench HCC rebuild`: from `rebuild NAME IMAGE` queued (`hcc push`) to
//! the server's console showing the new system (the simulator's console
//! state, `GET /_sim/consoles/{id}`), and to the command done, with the
//! worker running, against `hcc sim` with actions of 0 ms and of 500 ms.

use std::time::{Duration, Instant};

use super::{Sim, hcc_cmd, ms, synced_home};

const ROUNDS: usize = 10;
/// The images rebuilt from in turn, with the system their console shows.
const IMAGES: [(&str, &str); 2] = [("ubuntu-24.04", "Ubuntu 24.04"), ("debian-12", "Debian 12")];

pub fn run(hcc: &str) {
    println!(
        "| rebuild queued -> (n = {ROUNDS}) | console shows the new system, p50 | p90 | command done, p50 | p90 |"
    );
    println!("|---|---|---|---|---|");
    for action_ms in ["0", "500"] {
        let (console, done) = rounds(hcc, action_ms);
        let p = |mut v: Vec<Duration>, q: f64| {
            v.sort();
            ms(v[((v.len() - 1) as f64 * q).round() as usize])
        };
        println!(
            "| `hcc sim --action-ms {action_ms}` | {} | {} | {} | {} |",
            p(console.clone(), 0.5),
            p(console, 0.9),
            p(done.clone(), 0.5),
            p(done, 0.9)
        );
    }
}

fn rounds(hcc: &str, action_ms: &str) -> (Vec<Duration>, Vec<Duration>) {
    let sim = Sim::start(hcc, &["--servers", "1", "--action-ms", action_ms]);
    let home = synced_home(hcc, &sim);
    let mut worker = hcc_cmd(hcc, home.path(), &["worker"])
        .envs(sim.env())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hcc worker");
    let db = rusqlite::Connection::open(home.path().join("hcc.db")).expect("hcc.db");
    let (mut console, mut done) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (image, system) = IMAGES[round % IMAGES.len()];
        let started = Instant::now();
        let out = hcc_cmd(
            hcc,
            home.path(),
            &["push", "--id", "rebuild", "srv-00001", image],
        )
        .output()
        .expect("hcc push");
        assert!(out.status.success(), "hcc push failed");
        let id: i64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("command id");
        let (mut shown, mut finished) = (None, None);
        while shown.is_none() || finished.is_none() {
            assert!(started.elapsed() < Duration::from_secs(60), "rebuild stuck");
            if shown.is_none() && sim.console_system("srv-00001") == system {
                shown = Some(started.elapsed());
            }
            if finished.is_none() {
                let state: String = db
                    .query_row("SELECT state FROM commands WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .expect("command row");
                match state.as_str() {
                    "done" => finished = Some(started.elapsed()),
                    "failed" => panic!("rebuild failed"),
                    _ => {}
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        console.extend(shown);
        done.extend(finished);
    }
    let _ = worker.kill();
    let _ = worker.wait();
    (console, done)
}
