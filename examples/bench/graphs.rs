//! `bench HCC metrics-graphs`: what ten dashboards showing one server's
//! graphs cost at Hetzner. Ten clients (started half a second apart) each
//! poll `GET /api/v1/servers/{name}/metrics?type=T&since=1h` for cpu, disk
//! and network every 5 s for 60 s against `hcc serve` + `hcc sim`, with
//! the real step of a 1h range (15 s). The goal is one Hetzner request per
//! step and type: 4 per type in a minute that starts on a step.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Serve, Sim, at, hcc_cmd, http, synced_home};

const DASHBOARDS: usize = 10;
const POLL: Duration = Duration::from_secs(5);
const RUN: Duration = Duration::from_secs(60);
/// The step of a 1h range (cloud/metrics.rs).
const STEP: u64 = 15;
const TYPES: [&str; 3] = ["cpu", "disk", "network"];

/// One answer: its type, its window's end, when hcc fetched it, how long
/// it took.
struct Seen {
    kind: usize,
    end: String,
    fetched_at: i64,
    took: Duration,
}

pub fn run(hcc: &str) {
    let sim = Sim::start(hcc, &["--servers", "1"]);
    let home = synced_home(hcc, &sim);
    let key = hcc_cmd(hcc, home.path(), &["apikey", "add", "b", "--scope", "read"])
        .output()
        .expect("hcc apikey add");
    let auth = format!("Bearer {}", String::from_utf8_lossy(&key.stdout).trim());
    let serve = Serve::start(hcc, home.path(), &sim);
    let before = metrics_requests(&sim);

    // Start just after a step begins, so that the minute spans 4 steps.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let into = now.as_secs_f64() % STEP as f64;
    std::thread::sleep(Duration::from_secs_f64(STEP as f64 - into + 0.1));
    let started = Instant::now();
    let seen: Vec<Seen> = std::thread::scope(|scope| {
        let dashboards: Vec<_> = (0..DASHBOARDS)
            .map(|d| {
                let (serve, auth) = (&serve, &auth);
                scope.spawn(move || {
                    let offset = POLL.mul_f64(d as f64 / DASHBOARDS as f64);
                    std::thread::sleep(offset);
                    let mut seen = Vec::new();
                    let mut next = started + offset;
                    while next < started + RUN {
                        for (kind, t) in TYPES.iter().enumerate() {
                            let path =
                                format!("/api/v1/servers/srv-00001/metrics?type={t}&since=1h");
                            let t0 = Instant::now();
                            let (status, body) =
                                http(&serve.addr, "GET", &path, None, Some(auth.as_str()));
                            let took = t0.elapsed();
                            assert_eq!(status, 200, "{path}: {body}");
                            let json: serde_json::Value =
                                serde_json::from_str(&body).expect("metrics JSON");
                            seen.push(Seen {
                                kind,
                                end: json["metrics"]["end"].as_str().unwrap_or("").into(),
                                fetched_at: json["fetched_at"].as_i64().unwrap_or(0),
                                took,
                            });
                        }
                        next += POLL;
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                    seen
                })
            })
            .collect();
        dashboards
            .into_iter()
            .flat_map(|h| h.join().expect("a dashboard"))
            .collect()
    });
    // Every poll starts within the run (the last answers come a little
    // after it): per minute of polling.
    let minutes = RUN.as_secs_f64() / 60.0;
    let fetched = metrics_requests(&sim) - before;

    println!(
        "| metrics graphs: {DASHBOARDS} dashboards polling every {} s for {} s (1h range, step {STEP} s) | API requests | windows (steps) served | Hetzner requests | Hetzner requests per minute | p50 | max |",
        POLL.as_secs(),
        RUN.as_secs()
    );
    println!("|---|---|---|---|---|---|---|");
    let mut windows_total = 0;
    for (kind, t) in TYPES.iter().enumerate() {
        let mine: Vec<&Seen> = seen.iter().filter(|s| s.kind == kind).collect();
        let windows: BTreeSet<&str> = mine.iter().map(|s| s.end.as_str()).collect();
        // Distinct fetches the answers show (a fetch is one window and one
        // fetched_at): a lower bound of this type's Hetzner requests.
        let fetches: BTreeSet<(&str, i64)> = mine
            .iter()
            .map(|s| (s.end.as_str(), s.fetched_at))
            .collect();
        windows_total += windows.len();
        let took: Vec<Duration> = mine.iter().map(|s| s.took).collect();
        println!(
            "| `type={t}` | {} | {} | {} | {:.1} | {} | {} |",
            mine.len(),
            windows.len(),
            fetches.len(),
            fetches.len() as f64 / minutes,
            super::ms(at(&took, 0.5)),
            super::ms(at(&took, 1.0)),
        );
    }
    let took: Vec<Duration> = seen.iter().map(|s| s.took).collect();
    println!(
        "| all three (Hetzner requests counted by `hcc sim`; goal: {windows_total}, one per step and type) | {} | {windows_total} | {fetched} | {:.1} | {} | {} |",
        seen.len(),
        fetched as f64 / minutes,
        super::ms(at(&took, 0.5)),
        super::ms(at(&took, 1.0)),
    );
}

/// `GET /servers/{id}/metrics` requests `hcc sim` has answered.
fn metrics_requests(sim: &Sim) -> u64 {
    sim.stats()["by_route"]["GET /servers/{id}/metrics"]
        .as_u64()
        .unwrap_or(0)
}
