//! `hcc sim`: start-up, auth, pagination, filters, actions, locking, the
//! token bucket, fault injection, and the official `hcloud` CLI as a
//! second client.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::test::{Sim, eventually, http, require_program};

fn names(body: &Value, key: &str) -> Vec<String> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` list in {body}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn action_status(sim: &Sim, id: &Value) -> String {
    sim.get(&format!("/actions/{id}")).json()["action"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn server_status(sim: &Sim, id: &Value) -> String {
    sim.get(&format!("/servers/{id}")).json()["server"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn prints_its_endpoint_and_a_random_token_then_serves() {
    let sim = Sim::start(&[]);
    assert!(
        sim.endpoint.starts_with("http://127.0.0.1:"),
        "{}",
        sim.endpoint
    );
    assert!(sim.endpoint.ends_with("/v1"), "{}", sim.endpoint);
    assert_eq!(sim.token.len(), 64);
    assert!(sim.token.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(Sim::start(&[]).token, sim.token, "tokens are random");

    let answer = sim.get("/servers");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.json(),
        json!({"servers": [], "meta": {"pagination": {"page": 1, "per_page": 25,
            "previous_page": null, "next_page": null, "last_page": 1, "total_entries": 0}}})
    );

    let fixed = Sim::start(&["--token", "s3cret"]);
    assert_eq!(fixed.token, "s3cret");
    assert_eq!(fixed.get("/servers").status, 200);
}

#[test]
fn stops_when_its_stdin_closes() {
    let mut sim = Sim::start(&[]);
    assert!(
        sim.close_stdin(),
        "hcc sim (pid {}) outlived its stdin",
        sim.pid()
    );
}

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    let upstream = "hcc: invalid --console-upstream: want a websocket URL such as \
                    ws://127.0.0.1:6080 (ws:// or wss://, a host, no spaces)";
    for (args, line) in [
        (
            &["--fail", "500:2"][..],
            "hcc: invalid --fail `500:2`: `2` is not a probability between 0 and 1",
        ),
        (
            &["--fail", "teapot:0.1"],
            "hcc: invalid --fail `teapot:0.1`: unknown fault `teapot` (want 429, 500, 502, 503, \
             504, timeout or reset)",
        ),
        (
            &["--rate-limit", "0/h"],
            "hcc: invalid --rate-limit `0/h`: want requests per hour, e.g. 3600/h",
        ),
        (
            &["--time-scale", "0"],
            "hcc: invalid --time-scale 0: want a positive factor",
        ),
        (&["--console-upstream", "http://127.0.0.1:6080"], upstream),
        (&["--console-upstream", "ws://"], upstream),
        (
            &["--console-password", "secret12"],
            "hcc: invalid --console-password: it needs --console-upstream",
        ),
        (
            &[
                "--console-upstream",
                "ws://127.0.0.1:6080",
                "--console-password",
                "two words",
            ],
            "hcc: invalid --console-password: want printable characters without spaces",
        ),
    ] {
        let out = Command::new(crate::test::HCC)
            .arg("sim")
            .args(args)
            .output()
            .expect("run hcc sim");
        let run = crate::test::Run::from(out);
        assert!(line.starts_with("hcc: invalid --"), "{args:?}: {run:?}");
        run.fails(2, line);
    }
}

/// Keep-alive, a chunked body, and `Expect: 100-continue`, on one
/// connection, as HTTP clients send them.
#[test]
fn speaks_http_1_1_on_a_kept_alive_connection() {
    use std::io::{BufRead, BufReader, Read, Write};
    let sim = Sim::start(&[]);
    let mut stream = std::net::TcpStream::connect(&sim.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let read_answer = |reader: &mut BufReader<std::net::TcpStream>| -> (String, String) {
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        (
            status.trim().to_string(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    };

    let body = r#"{"name":"chunky","status":"off"}"#;
    let (a, b) = body.split_at(10);
    write!(
        stream,
        "POST /_sim/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Expect: 100-continue\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
    .expect("write");
    let (status, _) = read_answer(&mut reader);
    assert_eq!(status, "HTTP/1.1 100 Continue");
    let (status, text) = read_answer(&mut reader);
    assert_eq!(status, "HTTP/1.1 201 Created", "{text}");

    write!(
        stream,
        "GET /v1/servers?name=chunky HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        sim.token
    )
    .expect("write");
    let (status, text) = read_answer(&mut reader);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(text.contains(r#""status":"off""#), "{text}");
}

#[test]
fn refuses_requests_without_the_token() {
    let sim = Sim::start(&["--servers", "2"]);
    let want = json!({"error": {"code": "unauthorized", "message": "unable to authenticate"}});
    for auth in [None, Some("Bearer wrong"), Some(sim.token.as_str())] {
        let answer = http(&sim.addr, "GET", "/v1/servers", None, auth).expect("answer");
        assert_eq!(answer.status, 401, "{auth:?}");
        assert_eq!(answer.json(), want);
        assert!(answer.header("RateLimit-Remaining").is_some());
    }
    // Outside /v1: the API's 404 envelope.
    let answer = sim.get("/no/such/route");
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"]["code"], "not_found");
    assert_eq!(sim.stats()["requests"], 4);
}

#[test]
fn pages_through_120_servers() {
    let sim = Sim::start(&["--servers", "120"]);
    let mut all = Vec::new();
    for page in 1..=3 {
        let body = sim
            .get(&format!("/servers?page={page}&per_page=50&sort=id:asc"))
            .json();
        let meta = &body["meta"]["pagination"];
        assert_eq!(meta["page"], page);
        assert_eq!(meta["per_page"], 50);
        assert_eq!(meta["last_page"], 3);
        assert_eq!(meta["total_entries"], 120);
        assert_eq!(
            meta["previous_page"],
            if page == 1 {
                json!(null)
            } else {
                json!(page - 1)
            }
        );
        assert_eq!(
            meta["next_page"],
            if page == 3 {
                json!(null)
            } else {
                json!(page + 1)
            }
        );
        all.extend(names(&body, "servers"));
    }
    let want: Vec<String> = (1..=120).map(|i| format!("srv-{i:05}")).collect();
    assert_eq!(all, want);

    let beyond = sim.get("/servers?page=4&per_page=50").json();
    assert_eq!(names(&beyond, "servers").len(), 0);
    let default = sim.get("/servers").json();
    assert_eq!(names(&default, "servers").len(), 25);
    let capped = sim.get("/servers?per_page=500").json();
    assert_eq!(capped["meta"]["pagination"]["per_page"], 50);
    let desc = sim.get("/servers?sort=name:desc&per_page=2").json();
    assert_eq!(names(&desc, "servers"), vec!["srv-00120", "srv-00119"]);
    assert_eq!(sim.get("/servers?sort=colour").status, 400);
    assert_eq!(
        sim.get("/servers?page=0").json()["error"]["code"],
        "invalid_input"
    );
}

#[test]
fn filters_by_name_labels_and_status() {
    let sim = Sim::start(&["--servers", "5"]);
    let made = sim.control(
        "POST",
        "/_sim/servers",
        Some(r#"{"name":"outsider","labels":{"env":"prod"},"status":"off"}"#),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.json()["server"]["status"], "off");

    let count = |query: &str| {
        let body = sim.get(&format!("/servers?{query}")).json();
        body["meta"]["pagination"]["total_entries"]
            .as_u64()
            .unwrap_or(999)
    };
    assert_eq!(count(""), 6);
    assert_eq!(count("label_selector=managed"), 5);
    assert_eq!(count("label_selector=managed%3D1"), 5);
    assert_eq!(count("label_selector=managed==1"), 5);
    assert_eq!(count("label_selector=!managed"), 1);
    assert_eq!(count("label_selector=env=prod"), 1);
    assert_eq!(count("label_selector=env!=prod"), 5);
    assert_eq!(count("label_selector=env%20in%20(prod,test),!managed"), 1);
    assert_eq!(count("label_selector=managed,env"), 0);
    assert_eq!(count("status=off"), 1);
    assert_eq!(count("status=running&status=off"), 6);
    assert_eq!(count("name=srv-00003"), 1);
    assert_eq!(count("name=nobody"), 0);
    let one = sim.get("/servers?name=outsider").json();
    assert_eq!(names(&one, "servers"), vec!["outsider"]);

    let bad = sim.get("/servers?label_selector=a%20b");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "invalid_input");
}

#[test]
fn create_runs_its_actions_then_the_server_runs() {
    let sim = Sim::start(&["--action-ms", "200"]);
    let created = sim.api(
        "POST",
        "/servers",
        Some(r#"{"name":"web1","server_type":"cx22","image":"debian-12","location":"hel1","labels":{"managed":"1"}}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let body = created.json();
    let server = &body["server"];
    assert_eq!(server["status"], "initializing");
    assert_eq!(server["server_type"]["name"], "cx22");
    assert_eq!(server["image"]["name"], "debian-12");
    assert_eq!(server["datacenter"]["location"]["name"], "hel1");
    assert_eq!(server["labels"], json!({"managed": "1"}));
    assert_eq!(body["action"]["command"], "create_server");
    assert_eq!(body["action"]["status"], "running");
    assert_eq!(body["next_actions"][0]["command"], "start_server");
    assert_eq!(body["root_password"].as_str().map(str::len), Some(20));

    let (create, start) = (&body["action"]["id"], &body["next_actions"][0]["id"]);
    let polled = sim.get(&format!("/actions?id={create}&id={start}")).json();
    assert_eq!(polled["actions"].as_array().map(Vec::len), Some(2));
    assert_eq!(polled["meta"]["pagination"]["total_entries"], 2);
    assert!(eventually(Duration::from_secs(5), || {
        action_status(&sim, start) == "success"
    }));
    assert_eq!(action_status(&sim, create), "success");
    let done = sim.get(&format!("/actions/{create}")).json();
    assert_eq!(done["action"]["progress"], 100);
    assert!(done["action"]["finished"].is_string());
    assert_eq!(server_status(&sim, &server["id"]), "running");

    let refused = |body: &str, status: u16, code: &str| {
        let answer = sim.api("POST", "/servers", Some(body));
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_eq!(answer.json()["error"]["code"], code, "{body}");
    };
    refused(
        r#"{"name":"web1","server_type":"cx22","image":"debian-12"}"#,
        409,
        "uniqueness_error",
    );
    refused(
        r#"{"name":"web_1","server_type":"cx22","image":"debian-12"}"#,
        400,
        "invalid_input",
    );
    refused(
        r#"{"name":"web2","server_type":"cx99","image":"debian-12"}"#,
        400,
        "invalid_input",
    );
    refused(
        r#"{"name":"web2","server_type":"cx22","image":"beos-5"}"#,
        400,
        "invalid_input",
    );
    refused(
        r#"{"name":"web2","server_type":"cx22","image":"debian-12","location":"mars1"}"#,
        400,
        "invalid_input",
    );
    refused(r#"{"name":"web2","#, 400, "json_error");

    // Without start_after_create, with an SSH key: off, no password.
    let quiet = sim
        .api(
            "POST",
            "/servers",
            Some(r#"{"name":"web3","server_type":104,"image":"114690387","start_after_create":false,"ssh_keys":["me"]}"#),
        )
        .json();
    assert_eq!(quiet["next_actions"], json!([]));
    assert_eq!(quiet["root_password"], json!(null));
    assert!(eventually(Duration::from_secs(5), || {
        server_status(&sim, &quiet["server"]["id"]) == "off"
    }));
}

#[test]
fn a_running_action_locks_the_server() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "300"]);
    let id = sim.get("/servers").json()["servers"][0]["id"].clone();
    let off = sim.api("POST", &format!("/servers/{id}/actions/poweroff"), None);
    assert_eq!(off.status, 201, "{}", off.body);
    let off = off.json()["action"].clone();
    assert_eq!(off["command"], "stop_server");
    assert_eq!(server_status(&sim, &id), "stopping");

    let locked = sim.api("POST", &format!("/servers/{id}/actions/poweron"), None);
    assert_eq!(locked.status, 423);
    assert_eq!(locked.json()["error"]["code"], "locked");
    assert!(sim.get(&format!("/servers/{id}")).json()["server"]["locked"] == true);

    assert!(eventually(Duration::from_secs(5), || {
        server_status(&sim, &id) == "off"
    }));
    assert_eq!(action_status(&sim, &off["id"]), "success");

    // The console: a websocket URL on the sim itself, and a password.
    let console = sim.request_console(&id).json();
    let url = console["wss_url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with(&format!("ws://{}/console/{id}?token=", sim.addr)),
        "{url}"
    );
    assert_eq!(console["password"].as_str().map(str::len), Some(32));
    assert_eq!(console["action"]["status"], "success");
    let tickets = sim.control("GET", "/_sim/consoles", None).json();
    assert_eq!(tickets["consoles"][0]["password"], console["password"]);

    // A simulated failure: the action ends in error, the server stays off.
    assert_eq!(
        sim.control("POST", "/_sim/fail_next_action", None).status,
        200
    );
    let on = sim
        .api("POST", &format!("/servers/{id}/actions/poweron"), None)
        .json()["action"]
        .clone();
    assert!(eventually(Duration::from_secs(5), || {
        action_status(&sim, &on["id"]) == "error"
    }));
    let failed = sim.get(&format!("/actions/{}", on["id"])).json();
    assert_eq!(
        failed["action"]["error"],
        json!({"code": "action_failed", "message": "Action failed"})
    );
    assert_eq!(server_status(&sim, &id), "off");

    let history = sim
        .get(&format!("/servers/{id}/actions?sort=id:desc"))
        .json();
    let commands: Vec<&str> = history["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["command"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        commands,
        vec!["start_server", "request_console", "stop_server"]
    );
    let errors = sim.get("/servers/actions?status=error").json();
    assert_eq!(errors["meta"]["pagination"]["total_entries"], 1);

    // Delete: an action, and the server is gone at once.
    let deleted = sim.api("DELETE", &format!("/servers/{id}"), None);
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["action"]["command"], "delete_server");
    let gone = sim.get(&format!("/servers/{id}"));
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["error"]["code"], "not_found");
}

#[test]
fn renames_and_relabels() {
    let sim = Sim::start(&["--servers", "2"]);
    let id = sim.get("/servers?name=srv-00001").json()["servers"][0]["id"].clone();
    let updated = sim.api(
        "PUT",
        &format!("/servers/{id}"),
        Some(r#"{"name":"web9","labels":{"env":"test"}}"#),
    );
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["server"]["name"], "web9");
    assert_eq!(updated.json()["server"]["labels"], json!({"env": "test"}));
    let taken = sim.api(
        "PUT",
        &format!("/servers/{id}"),
        Some(r#"{"name":"srv-00002"}"#),
    );
    assert_eq!(taken.json()["error"]["code"], "uniqueness_error");
    let bad = sim.api(
        "PUT",
        &format!("/servers/{id}"),
        Some(r#"{"labels":{"a b":"c"}}"#),
    );
    assert_eq!(bad.json()["error"]["code"], "invalid_input");

    // Gone behind the client's back.
    assert_eq!(
        sim.control("DELETE", &format!("/_sim/servers/{id}"), None)
            .status,
        200
    );
    assert_eq!(sim.get(&format!("/servers/{id}")).status, 404);
}

#[test]
fn an_empty_bucket_answers_429() {
    let sim = Sim::start(&["--rate-limit", "5/h", "--servers", "1"]);
    // Unauthenticated requests spend tokens too.
    let first = http(&sim.addr, "GET", "/v1/servers", None, None).expect("answer");
    assert_eq!(first.status, 401);
    assert_eq!(first.header("RateLimit-Remaining"), Some("4"));
    for left in (0..4).rev() {
        let answer = sim.get("/servers");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("RateLimit-Limit"), Some("5"));
        assert_eq!(
            answer.header("RateLimit-Remaining"),
            Some(left.to_string().as_str())
        );
    }
    let refused = sim.get("/servers");
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.json(),
        json!({"error": {"code": "rate_limit_exceeded",
                         "message": "limit of 5 requests per hour reached"}})
    );
    assert_eq!(refused.header("RateLimit-Limit"), Some("5"));
    assert_eq!(refused.header("RateLimit-Remaining"), Some("0"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let reset: u64 = refused
        .header("RateLimit-Reset")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    // Five tokens at one per 720 s: full again in about an hour.
    assert!(
        reset > now + 3500 && reset <= now + 3601,
        "reset {reset}, now {now}"
    );
    let stats = sim.stats();
    assert_eq!(stats["rate_limited"], 1);
    assert_eq!(stats["requests"], 6);
    assert_eq!(stats["by_route"]["GET /servers"], 6);
}

#[test]
fn time_scale_refills_the_bucket_faster() {
    // 3/h at 3600x: three tokens a second.
    let sim = Sim::start(&["--rate-limit", "3/h", "--time-scale", "3600"]);
    for _ in 0..3 {
        sim.get("/servers");
    }
    assert!(eventually(Duration::from_secs(5), || sim
        .get("/servers")
        .status
        == 200));
}

#[test]
fn injected_faults_come_before_any_effect() {
    let sim = Sim::start(&["--fail", "500:1.0"]);
    let answer = sim.api(
        "POST",
        "/servers",
        Some(r#"{"name":"web1","server_type":"cx22","image":"debian-12"}"#),
    );
    assert_eq!(answer.status, 500);
    assert_eq!(answer.json()["error"]["code"], "server_error");
    assert_eq!(
        sim.stats()["servers"],
        0,
        "a fault must not create anything"
    );
    assert_eq!(sim.stats()["faults"], 1);

    let sim = Sim::start(&["--fail", "reset:1.0", "--servers", "1"]);
    let auth = format!("Bearer {}", sim.token);
    let reset = http(&sim.addr, "GET", "/v1/servers", None, Some(&auth));
    assert!(reset.is_err(), "want no answer, got {reset:?}");
    assert_eq!(sim.stats()["faults_by_kind"]["reset"], 1);

    let sim = Sim::start(&["--fail", "429:1.0", "--rate-limit", "10/h"]);
    let limited = sim.get("/servers");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        limited.header("RateLimit-Remaining"),
        Some("10"),
        "spends no token"
    );

    let sim = Sim::start(&["--fail", "502:1.0"]);
    let gateway = sim.get("/servers");
    assert_eq!(gateway.status, 502);
    assert_eq!(gateway.header("content-type"), Some("text/html"));
}

#[test]
fn serves_ten_thousand_servers() {
    let started = Instant::now();
    let sim = Sim::start(&["--servers", "10000"]);
    let up = started.elapsed();
    let body = sim.get("/servers?per_page=50&page=200").json();
    let listed = started.elapsed();
    assert_eq!(body["meta"]["pagination"]["total_entries"], 10000);
    assert_eq!(body["meta"]["pagination"]["last_page"], 200);
    assert_eq!(
        names(&body, "servers").last().map(String::as_str),
        Some("srv-10000")
    );
    let managed = sim
        .get("/servers?label_selector=managed%3D1&per_page=1")
        .json();
    assert_eq!(managed["meta"]["pagination"]["total_entries"], 10000);
    eprintln!("hcc sim --servers 10000: first line after {up:?}, last page after {listed:?}");
}

#[test]
fn the_catalogue_has_the_api_shapes() {
    let sim = Sim::start(&[]);
    let types = sim.get("/server_types?per_page=50").json();
    assert_eq!(
        names(&types, "server_types"),
        vec!["cpx11", "cpx21", "cax11", "cx22", "cx32"]
    );
    let cx22 = &types["server_types"][3];
    assert_eq!(cx22["prices"][0]["location"], "fsn1");
    assert_eq!(cx22["prices"][0]["price_monthly"]["net"], "3.7900000000");
    assert_eq!(
        sim.get("/server_types/104").json()["server_type"]["name"],
        "cx22"
    );

    let images = sim.get("/images?name=debian-12").json();
    assert_eq!(names(&images, "images"), vec!["debian-12"]);
    assert_eq!(images["images"][0]["type"], "system");
    let current = sim.get("/images?per_page=50").json();
    let everything = sim
        .get("/images?per_page=50&include_deprecated=true")
        .json();
    assert!(names(&everything, "images").len() > names(&current, "images").len());

    let locations = sim.get("/locations").json();
    assert_eq!(
        names(&locations, "locations"),
        vec!["fsn1", "nbg1", "hel1", "ash", "hil", "sin"]
    );
    let dcs = sim.get("/datacenters?sort=name").json();
    assert_eq!(
        names(&dcs, "datacenters"),
        vec![
            "ash-dc1",
            "fsn1-dc14",
            "hel1-dc2",
            "hil-dc1",
            "nbg1-dc3",
            "sin-dc1"
        ]
    );
    assert!(dcs["recommendation"].is_u64());
    assert_eq!(sim.get("/locations/99").status, 404);
}

/// The official CLI (Debian `hcloud-cli`) as a second client.
#[test]
fn the_hcloud_cli_works_against_the_sim() {
    if !require_program("hcloud") {
        return;
    }
    let sim = Sim::start(&["--servers", "3", "--action-ms", "50"]);
    let hcloud = |args: &[&str]| sim.hcloud_ok(args);
    let by_name = |name: &str| -> Value {
        sim.get(&format!("/servers?name={name}")).json()["servers"][0].clone()
    };

    let listed: Value = serde_json::from_str(&hcloud(&["server", "list", "-o", "json"]))
        .expect("server list -o json is JSON");
    let sim_names = names(&sim.get("/servers").json(), "servers");
    let cli_names: Vec<String> = listed
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(cli_names, sim_names);

    let described = hcloud(&["server", "describe", "srv-00002"]);
    assert!(
        described.contains("srv-00002") && described.contains("running"),
        "{described}"
    );

    let created = hcloud(&[
        "server",
        "create",
        "--name",
        "x1",
        "--type",
        "cx22",
        "--image",
        "debian-12",
    ]);
    assert!(created.contains("created"), "{created}");
    let x1 = by_name("x1");
    assert_eq!(x1["status"], "running");
    assert_eq!(x1["server_type"]["name"], "cx22");

    hcloud(&["server", "poweroff", "x1"]);
    assert_eq!(by_name("x1")["status"], "off");
    hcloud(&["server", "poweron", "x1"]);
    assert_eq!(by_name("x1")["status"], "running");

    let console = hcloud(&["server", "request-console", "x1"]);
    let tickets = sim.control("GET", "/_sim/consoles", None).json();
    let password = tickets["consoles"][0]["password"].as_str().unwrap_or("?");
    assert!(console.contains(password), "{console}");
    assert!(
        console.contains(&format!("ws://{}/console/", sim.addr)),
        "{console}"
    );

    hcloud(&["server", "delete", "x1"]);
    assert_eq!(sim.get(&format!("/servers/{}", x1["id"])).status, 404);

    let types = hcloud(&["server-type", "list"]);
    assert!(types.contains("cx22") && types.contains("cax11"), "{types}");
    let images = hcloud(&["image", "list"]);
    assert!(
        images.contains("debian-12") && images.contains("ubuntu-24.04"),
        "{images}"
    );
    let locations = hcloud(&["location", "list"]);
    assert!(
        locations.contains("fsn1") && locations.contains("Helsinki"),
        "{locations}"
    );
    let datacenters = hcloud(&["datacenter", "list"]);
    assert!(datacenters.contains("fsn1-dc14"), "{datacenters}");

    let stats = sim.stats();
    assert_eq!(stats["rate_limited"], 0);
    assert!(
        stats["by_route"]["GET /actions"].as_u64().unwrap_or(0) >= 4,
        "{stats}"
    );
}

/// With `--console-upstream`, `request_console` hands out that URL exactly
/// and the given password, and `/_sim/consoles` records what it handed out.
#[test]
fn hands_out_the_console_upstream() {
    let upstream = "ws://127.0.0.1:5999/websockify?x=1";
    let sim = Sim::start(&[
        "--servers",
        "1",
        "--console-upstream",
        upstream,
        "--console-password",
        "vnc-Pass",
    ]);
    let id = sim.get("/servers").json()["servers"][0]["id"].clone();
    for _ in 0..2 {
        let console = sim.request_console(&id);
        assert_eq!(console.status, 201, "{}", console.body);
        let console = console.json();
        assert_eq!(console["wss_url"], upstream);
        assert_eq!(console["password"], "vnc-Pass");
        assert_eq!(console["action"]["command"], "request_console");
    }
    let tickets = sim.control("GET", "/_sim/consoles", None).json();
    let tickets = tickets["consoles"].as_array().expect("consoles").clone();
    assert_eq!(tickets.len(), 2);
    for ticket in tickets {
        assert_eq!(ticket["wss_url"], upstream);
        assert_eq!(ticket["password"], "vnc-Pass");
        assert_eq!(ticket["server"], id);
    }

    // Without a password, a fresh random one per console.
    let sim = Sim::start(&["--servers", "1", "--console-upstream", "wss://vnc.example"]);
    let id = sim.get("/servers").json()["servers"][0]["id"].clone();
    let path = format!("/servers/{id}/actions/request_console");
    let first = sim.api("POST", &path, None).json();
    let second = sim.api("POST", &path, None).json();
    assert_eq!(first["wss_url"], "wss://vnc.example");
    assert_eq!(first["password"].as_str().map(str::len), Some(32));
    assert_ne!(first["password"], second["password"]);
}
