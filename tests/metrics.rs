//! `GET /metrics`: the values against what happened (commands, links,
//! requests, 429s), and who may read them (`metrics` = loopback, admin,
//! off; proxy headers; key scopes), directly and behind nginx.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use crate::support::nginx::{Nginx, curl};
use crate::support::serve::{Serve, keyed, serving};
use crate::test::{Env, Http, Sim, eventually};

/// One sample: the metric's name, its labels, its value.
type Sample = (String, BTreeMap<String, String>, f64);

/// The samples of a text exposition (format 0.0.4): `name{k="v",...} value`
/// lines; comments skipped. Panics on a line it cannot read, so a malformed
/// exposition fails the test.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                let mut labels = BTreeMap::new();
                // hcc's label values never hold `,` or `"`.
                for pair in inner.split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label in {line:?}"));
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or_else(|| panic!("unquoted label in {line:?}"));
                    labels.insert(k.to_string(), v.to_string());
                }
                (name, labels)
            }
        };
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "bad name in {line:?}"
        );
        samples.push((name.to_string(), labels, value));
    }
    samples
}

/// The value of the sample with exactly these labels.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| *v)
}

/// The sum over every sample of `name`, whatever its labels.
fn total(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, _, v)| v)
        .sum()
}

/// A GET of `path` with extra header lines; the answer read to the end.
fn get(addr: &str, path: &str, headers: &[&str]) -> Http {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to hcc serve");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer to GET {path}: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    Http {
        status,
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
        body: body.to_string(),
    }
}

fn scrape(serve: &Serve) -> Vec<Sample> {
    let reply = get(&serve.addr, "/metrics", &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&reply.body)
}

fn count(env: &Env, state: &str) -> f64 {
    env.value::<i64>(&format!(
        "SELECT count(*) FROM commands WHERE state = '{state}'"
    )) as f64
}

#[test]
fn metrics_tell_the_queue_durations_links_and_requests() {
    let sim = Sim::start(&["--servers", "3", "--action-ms", "0"]);
    let (env, keys) = keyed(&sim);
    // From here on only the serve below talks to the sim.
    let before = sim.stats()["requests"].as_f64().unwrap();
    let serve = Serve::start(&env, &sim, &["--worker", "--cycle", "3600"]);
    let forced = sim.control("POST", "/_sim/rate_limit_next", Some(r#"{"count":2}"#));
    assert_eq!(forced.status, 200, "{}", forced.body);

    env.ok(&["push", "stop", "srv-00001"]);
    env.ok(&["push", "stop", "srv-00002"]);
    env.ok(&["push", "start", "nosuch"]);
    let settled = eventually(Duration::from_secs(60), || {
        count(&env, "done") + count(&env, "failed") == 3.0
    });
    assert!(settled, "commands did not finish: {}", serve.log());
    // One command that stays queued: not before an hour from now.
    env.db()
        .execute_batch(
            "INSERT INTO commands (cmd, arg, not_before)
             VALUES ('start', 'srv-00003', CAST(strftime('%s', 'now') AS INTEGER) + 3600)",
        )
        .unwrap();

    // Links: two issued, one opened, and one long expired.
    let made: Vec<String> = (0..2)
        .map(|_| {
            let reply = serve.post("/api/v1/servers/srv-00003/console-link", &keys.console);
            assert_eq!(reply.status, 201, "{}", reply.body);
            let url = reply.json()["url"].as_str().unwrap().to_string();
            url.split("/c/").nth(1).unwrap().to_string()
        })
        .collect();
    let opened =
        crate::test::http(&serve.addr, "POST", &format!("/c/{}", made[0]), None, None).unwrap();
    assert_eq!(opened.status, 200, "{}", opened.body);
    env.db()
        .execute_batch(
            "INSERT INTO console_links
               (token_hash, server, server_id, created_by, created_at, expires_at)
             VALUES ('old', 'srv-00003', 3, 'console-key', 1000, 2000)",
        )
        .unwrap();
    // A 404 and a 401.
    assert_eq!(get(&serve.addr, "/no-such-page", &[]).status, 404);
    assert_eq!(get(&serve.addr, "/api/v1/servers", &[]).status, 401);

    let m = scrape(&serve);

    // The queue, as the table has it.
    assert_eq!(value(&m, "hcc_commands", &[("state", "queued")]), Some(1.0));
    assert_eq!(
        value(&m, "hcc_commands", &[("state", "running")]),
        Some(0.0)
    );
    let (done, failed) = (count(&env, "done"), count(&env, "failed"));
    assert_eq!(done, 2.0, "both stops done: {}", serve.log());
    assert_eq!(value(&m, "hcc_commands", &[("state", "done")]), Some(done));
    assert_eq!(
        value(&m, "hcc_commands", &[("state", "failed")]),
        Some(failed)
    );
    let oldest = value(&m, "hcc_queue_oldest_seconds", &[]).unwrap();
    assert!((0.0..60.0).contains(&oldest), "{oldest}");

    // Durations: one observation per finished command, in every bucket
    // series consistent with its count.
    assert_eq!(
        total(&m, "hcc_command_duration_seconds_count"),
        done + failed
    );
    assert_eq!(
        value(
            &m,
            "hcc_command_duration_seconds_count",
            &[("verb", "stop"), ("outcome", "done")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &m,
            "hcc_command_duration_seconds_count",
            &[("verb", "start"), ("outcome", "failed")]
        ),
        Some(1.0)
    );
    let inf = value(
        &m,
        "hcc_command_duration_seconds_bucket",
        &[("verb", "stop"), ("outcome", "done"), ("le", "+Inf")],
    );
    assert_eq!(inf, Some(2.0));
    // Retries after the 429s included, well inside a minute.
    let within_a_minute = value(
        &m,
        "hcc_command_duration_seconds_bucket",
        &[("verb", "stop"), ("outcome", "done"), ("le", "60")],
    );
    assert_eq!(within_a_minute, Some(2.0));
    let started: i64 = env.value(
        "SELECT count(*) FROM commands WHERE finished_at IS NOT NULL AND started_at IS NOT NULL",
    );
    assert_eq!(total(&m, "hcc_command_run_seconds_count"), started as f64);

    // Links.
    assert_eq!(value(&m, "hcc_console_links_issued_total", &[]), Some(3.0));
    assert_eq!(value(&m, "hcc_console_links_opened_total", &[]), Some(1.0));
    for (state, n) in [("pending", 1.0), ("opened", 1.0), ("expired", 1.0)] {
        assert_eq!(
            value(&m, "hcc_console_links", &[("state", state)]),
            Some(n),
            "{state}"
        );
    }

    // This process's HTTP answers; the scrape itself is not yet counted.
    let http = |status: &str| value(&m, "hcc_http_requests_total", &[("status", status)]);
    assert_eq!(http("404"), Some(1.0));
    assert_eq!(http("401"), Some(1.0));
    assert_eq!(http("201"), Some(2.0));
    assert!(http("200").is_some_and(|n| n >= 1.0));
    let again = scrape(&serve);
    assert_eq!(
        value(&again, "hcc_http_requests_total", &[("status", "200")]),
        http("200").map(|n| n + 1.0),
        "the first scrape is counted by the second"
    );

    // Hetzner requests: every one the sim saw since serve began came
    // from this process, the two forced 429s included.
    assert_eq!(
        value(&m, "hcc_hetzner_requests_total", &[("status", "429")]),
        Some(2.0)
    );
    assert_eq!(sim.stats()["rate_limited"].as_f64(), Some(2.0));
    // (A request under way has reached the sim but is not counted yet.)
    let (mut counted, mut seen) = (0.0, 0.0);
    let agree = eventually(Duration::from_secs(10), || {
        counted = total(&scrape(&serve), "hcc_hetzner_requests_total");
        seen = sim.stats()["requests"].as_f64().unwrap() - before;
        counted == seen
    });
    assert!(agree, "hcc counted {counted} requests, the sim saw {seen}");
    let limit = value(&m, "hcc_rate_budget_limit", &[]).expect("a rate budget");
    let remaining = value(&m, "hcc_rate_budget_remaining", &[]).unwrap();
    assert!(
        limit > 0.0 && (0.0..=limit).contains(&remaining),
        "{remaining} of {limit}"
    );
}

#[test]
fn metrics_are_for_this_machine_or_admin_keys() {
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    let bearer = |key: &str| format!("Authorization: Bearer {key}");
    let (read, admin) = (bearer(&keys.read), bearer(&keys.admin));

    // loopback (the default): this machine without a key; a relayed
    // request only with an admin key.
    let serve = Serve::start(&env, &sim, &[]);
    let addr = serve.addr.as_str();
    assert_eq!(get(addr, "/metrics", &[]).status, 200);
    assert_eq!(get(addr, "/metrics", &[&read]).status, 200);
    for proxy in [
        "X-Forwarded-For: 203.0.113.9",
        "Forwarded: for=203.0.113.9",
        "X-Real-IP: 203.0.113.9",
        "X-Forwarded-For: 127.0.0.1",
    ] {
        let refused = get(addr, "/metrics", &[proxy]);
        assert_eq!(refused.status, 401, "{proxy}: {}", refused.body);
        assert_eq!(refused.json()["error"]["code"], "unauthorized");
        let refused = get(addr, "/metrics", &[proxy, &read]);
        assert_eq!(refused.status, 403, "{proxy} with a read key");
        assert_eq!(refused.json()["error"]["code"], "forbidden");
        let allowed = get(addr, "/metrics", &[proxy, &admin]);
        assert_eq!(allowed.status, 200, "{proxy} with an admin key");
        assert!(allowed.body.contains("hcc_commands{"), "{}", allowed.body);
    }
    let post = serve.request("POST", "/metrics", Some("{}"), None);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET, HEAD"));
    drop(serve);

    // admin: a key with scope admin, even from this machine.
    env.ok(&["config", "set", "metrics", "admin"]);
    let serve = Serve::start(&env, &sim, &[]);
    let addr = serve.addr.as_str();
    let refused = get(addr, "/metrics", &[]);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.header("WWW-Authenticate").is_some());
    for key in [&keys.read, &keys.act, &keys.console] {
        assert_eq!(get(addr, "/metrics", &[&bearer(key)]).status, 403);
    }
    assert_eq!(get(addr, "/metrics", &[&bearer("hcc_wrong")]).status, 401);
    assert_eq!(get(addr, "/metrics", &[&admin]).status, 200);
    drop(serve);

    // off: not there for anyone.
    env.ok(&["config", "set", "metrics", "off"]);
    let serve = Serve::start(&env, &sim, &[]);
    let gone = get(&serve.addr, "/metrics", &[&admin]);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"]["code"], "not_found");
    env.run(&["config", "set", "metrics", "public"]).fails(
        2,
        "hcc: invalid value for `metrics`: `public` is not one of loopback, admin, off",
    );
}

/// The example nginx site keeps /metrics to this machine: nginx answers
/// 404 itself, while hcc behind it still serves its own clients.
#[test]
fn nginx_does_not_pass_metrics_on() {
    let (_sim, _env, keys, serve) = serving(&["--servers", "1"]);
    let port: u16 = serve.addr.rsplit(':').next().unwrap().parse().unwrap();
    let Some(nginx) = Nginx::start(port) else {
        return;
    };
    for path in ["/metrics", "//metrics", "/metrics?x=1", "/%6detrics"] {
        let reply = curl(
            &format!("{}{path}", nginx.https_url()),
            &[&format!("Authorization: Bearer {}", keys.admin)],
        );
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert!(!reply.body.contains("hcc_"), "{path}: {}", reply.body);
    }
    let status = curl(
        &format!("{}/api/v1/status", nginx.https_url()),
        &[&format!("Authorization: Bearer {}", keys.read)],
    );
    assert_eq!(status.status, 200, "{}", nginx.error_log());
    assert_eq!(get(&serve.addr, "/metrics", &[]).status, 200);
}
