//! A server's metrics: `hcc metrics NAME` and `GET
//! /api/v1/servers/{name}/metrics` against the simulator's deterministic
//! series, and the API's cache: one Hetzner request per window, however
//! many dashboards ask.

use std::time::Duration;

use serde_json::Value;

use crate::support::serve::{Serve, assert_status, code, keyed};
use crate::test::{Env, Run, Sim, unix_now};

const ROUTE: &str = "GET /servers/{id}/metrics";

/// Hetzner metrics requests the simulator has answered.
fn fetches(sim: &Sim) -> i64 {
    sim.stats()["by_route"][ROUTE].as_i64().unwrap_or(0)
}

fn hcc(env: &Env, sim: &Sim, args: &[&str]) -> Run {
    Run::from(env.cmd(args).envs(sim.client_env()).output().unwrap())
}

/// Waits until at least `margin` seconds remain of the current `step`, so
/// that a burst of requests falls in one window.
fn within_one_step(step: f64, margin: f64) {
    let into = unix_now() % step;
    if step - into < margin {
        std::thread::sleep(Duration::from_secs_f64(step - into + 0.05));
    }
}

/// The values of one series, as numbers.
fn values(metrics: &Value, series: &str) -> Vec<f64> {
    metrics["time_series"][series]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no series {series}: {metrics}"))
        .iter()
        .map(|pair| pair[1].as_str().unwrap().parse::<f64>().unwrap())
        .collect()
}

#[test]
fn the_cli_sums_up_each_series_and_prints_hetzners_json() {
    let sim = crate::support::serve::sim_with_foreign("2");
    let env = Env::new();
    let run = hcc(&env, &sim, &["metrics", "srv-00001"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("srv-00001: last 1h, ") && lines[0].ends_with("a sample every 15 s"),
        "{}",
        run.stdout
    );
    assert!(lines[1].starts_with("SERIES"), "{}", run.stdout);
    // One row per series of the three types: cpu, 4 disk, 4 network.
    assert_eq!(lines.len(), 2 + 9, "{}", run.stdout);
    let cpu: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(cpu[0], "cpu", "{}", run.stdout);
    for cell in &cpu[1..5] {
        let pct: f64 = cell.trim_end_matches('%').parse().unwrap();
        assert!((0.0..=100.0).contains(&pct), "{}", run.stdout);
    }
    assert_eq!(cpu[5], "241", "{}", run.stdout);
    assert!(
        run.stdout.contains("network.0.bandwidth.in"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("B/s"), "{}", run.stdout);

    let run = hcc(
        &env,
        &sim,
        &[
            "metrics",
            "srv-00001",
            "--type",
            "cpu,network",
            "--since",
            "24h",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let metrics = &json["metrics"];
    assert_eq!(metrics["step"], 300, "{metrics}");
    let mut series: Vec<&String> = metrics["time_series"].as_object().unwrap().keys().collect();
    series.sort();
    assert_eq!(
        series,
        [
            "cpu",
            "network.0.bandwidth.in",
            "network.0.bandwidth.out",
            "network.0.pps.in",
            "network.0.pps.out"
        ]
    );
    let cpu = values(metrics, "cpu");
    assert_eq!(cpu.len(), 289);
    assert!(cpu.iter().all(|v| (0.0..=100.0).contains(v)), "{cpu:?}");
    // The simulator's series are a function of the time: asked again, the
    // same window gives the same values.
    let again = hcc(
        &env,
        &sim,
        &[
            "metrics",
            "srv-00001",
            "--type",
            "cpu",
            "--since",
            "24h",
            "--json",
        ],
    );
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    if again["metrics"]["end"] == metrics["end"] {
        assert_eq!(values(&again["metrics"], "cpu"), cpu);
    }

    // Refused: an unmanaged server (before any metrics request), bad flags.
    let before = fetches(&sim);
    let run = hcc(&env, &sim, &["metrics", "foreign"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("managed"), "{run:?}");
    assert_eq!(fetches(&sim), before);
    let run = hcc(&env, &sim, &["metrics", "srv-00001", "--since", "2h"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = hcc(&env, &sim, &["metrics", "srv-00001", "--type", "ram"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(fetches(&sim), before);
}

#[test]
fn the_api_answers_the_time_series_for_any_key() {
    let sim = crate::support::serve::sim_with_foreign("2");
    let (env, keys) = keyed(&sim);
    let serve = Serve::start(&env, &sim, &[]);
    for key in [&keys.read, &keys.act, &keys.console, &keys.admin] {
        let reply = serve.get("/api/v1/servers/srv-00002/metrics?type=disk&since=7d", key);
        assert_status(&reply, 200, "metrics");
        let json = reply.json();
        let metrics = &json["metrics"];
        assert_eq!(metrics["step"], 1800, "{json}");
        assert_eq!(values(metrics, "disk.0.iops.read").len(), 337);
        assert_eq!(metrics["time_series"].as_object().unwrap().len(), 4);
        let fetched = json["fetched_at"].as_f64().unwrap();
        assert!((fetched - unix_now()).abs() < 60.0, "{json}");
    }
    // Default: every type over the last hour.
    let all = serve.get("/api/v1/servers/srv-00002/metrics", &keys.read);
    assert_status(&all, 200, "metrics");
    let metrics = &all.json()["metrics"];
    assert_eq!(metrics["step"], 15);
    assert_eq!(metrics["time_series"].as_object().unwrap().len(), 9);

    let before = fetches(&sim);
    for (query, what) in [
        ("type=ram", "`ram`"),
        ("type=cpu,memory", "`memory`"),
        ("since=2h", "`2h`"),
        ("step=1", "`step`"),
    ] {
        let bad = serve.get(
            &format!("/api/v1/servers/srv-00002/metrics?{query}"),
            &keys.read,
        );
        assert_status(&bad, 400, query);
        assert_eq!(code(&bad), "bad_query");
        assert!(bad.body.contains(what), "{query}: {}", bad.body);
    }
    let foreign = serve.get("/api/v1/servers/foreign/metrics", &keys.read);
    assert_status(&foreign, 403, "foreign");
    assert_eq!(code(&foreign), "not_managed");
    let nobody = serve.get("/api/v1/servers/nobody/metrics", &keys.read);
    assert_status(&nobody, 404, "unknown");
    let anonymous = serve.request("GET", "/api/v1/servers/srv-00002/metrics", None, None);
    assert_status(&anonymous, 401, "no key");
    assert_eq!(fetches(&sim), before, "refused requests asked Hetzner");
}

#[test]
fn dashboards_asking_within_one_step_cost_one_hetzner_request() {
    let sim = Sim::start(&["--servers", "2"]);
    let (env, keys) = keyed(&sim);
    let serve = Serve::start(&env, &sim, &[]);
    let path = "/api/v1/servers/srv-00001/metrics?type=cpu&since=1h";

    // Ten in a row.
    within_one_step(15.0, 5.0);
    let first = serve.get(path, &keys.read);
    assert_status(&first, 200, "metrics");
    for _ in 0..9 {
        let reply = serve.get(path, &keys.read);
        assert_status(&reply, 200, "metrics");
        assert_eq!(reply.json(), first.json());
    }
    assert_eq!(fetches(&sim), 1);

    // Ten at once, for another type set: they wait for the one fetch.
    within_one_step(15.0, 5.0);
    let path = "/api/v1/servers/srv-00001/metrics?type=network,disk&since=1h";
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    let reply = serve.get(path, &keys.read);
                    assert_status(&reply, 200, "metrics");
                    reply.json()
                })
            })
            .collect();
        calls.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| *a == answers[0]));
    assert_eq!(
        answers[0]["metrics"]["time_series"]
            .as_object()
            .unwrap()
            .len(),
        8
    );
    assert_eq!(fetches(&sim), 2);
    // The same set named another way is the same question.
    let same = serve.get(
        "/api/v1/servers/srv-00001/metrics?type=disk&type=network",
        &keys.read,
    );
    assert_eq!(same.json(), answers[0]);
    assert_eq!(fetches(&sim), 2);

    // Another range, another server: one more each.
    within_one_step(300.0, 5.0);
    for _ in 0..5 {
        let day = serve.get(
            "/api/v1/servers/srv-00001/metrics?type=cpu&since=24h",
            &keys.read,
        );
        assert_status(&day, 200, "24h");
    }
    assert_eq!(fetches(&sim), 3);
    for _ in 0..5 {
        let other = serve.get(
            "/api/v1/servers/srv-00002/metrics?type=cpu&since=24h",
            &keys.read,
        );
        assert_status(&other, 200, "other server");
    }
    assert_eq!(fetches(&sim), 4);

    // The next window is fetched again, once.
    let end = first.json()["metrics"]["end"].clone();
    let wait = 15.0 - unix_now() % 15.0 + 0.1;
    std::thread::sleep(Duration::from_secs_f64(wait));
    let before = fetches(&sim);
    let next = serve.get(
        "/api/v1/servers/srv-00001/metrics?type=cpu&since=1h",
        &keys.read,
    );
    assert_status(&next, 200, "next window");
    assert_ne!(next.json()["metrics"]["end"], end);
    serve.get(
        "/api/v1/servers/srv-00001/metrics?type=cpu&since=1h",
        &keys.read,
    );
    assert_eq!(fetches(&sim), before + 1);
}

#[test]
fn a_fetched_window_outlives_hetzner_and_a_new_one_fails_in_words() {
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    let serve = Serve::start(&env, &sim, &[]);
    let path = "/api/v1/servers/srv-00001/metrics?type=cpu";
    within_one_step(15.0, 10.0);
    let fetched = serve.get(path, &keys.read);
    assert_status(&fetched, 200, "metrics");
    drop(sim);
    // Hetzner is gone: the window fetched is still answered...
    let again = serve.get(path, &keys.read);
    assert_status(&again, 200, "the same window");
    assert_eq!(again.json(), fetched.json());
    // ...and another is a JSON error that says what failed.
    let other = serve.get("/api/v1/servers/srv-00001/metrics?type=disk", &keys.read);
    assert_status(&other, 503, "Hetzner down");
    assert_eq!(code(&other), "hetzner_unavailable");
    let message = other.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("cannot load the metrics from Hetzner: "),
        "{message}"
    );
    assert!(other.header("Retry-After").is_some());
}
