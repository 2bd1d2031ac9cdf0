//! `hcc serve`: API keys and scopes on every route, bad input, one-time
//! console links, console sessions, the request log, start-up checks.

use std::time::Duration;

use crate::support::serve::{
    Serve, assert_status, code, keyed, link, one_wins_at_once, page_data, raw, replace_server,
    serving, serving_with, setup, status_of,
};
use serde_json::Value;

use crate::test::{Env, Sim, eventually, http};

/// Adds a server without the managed label at the sim and syncs it in.
fn unmanaged_server(env: &Env, sim: &Sim, name: &str) {
    let body = format!(r#"{{"name":"{name}","server_type":"cx22","image":"debian-12"}}"#);
    let created = sim.api("POST", "/servers", Some(&body));
    assert_eq!(created.status, 201, "{}", created.body);
    let run = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    assert!(run.status.success());
}

#[test]
fn every_route_needs_a_key_with_the_right_scope() {
    let (_sim, env, keys, serve) = serving(&["--servers", "2", "--action-ms", "0"]);
    let doc = serve.request("GET", "/api/v1/openapi.json", None, None);
    assert_status(&doc, 200, "openapi.json without a key");
    let doc = doc.json();
    let routes = [
        ("GET", "/api/v1/servers", "read"),
        ("GET", "/api/v1/servers/srv-00001", "read"),
        ("GET", "/api/v1/servers/srv-00001/metrics?type=cpu", "read"),
        ("POST", "/api/v1/servers/srv-00001/actions/start", "act"),
        ("POST", "/api/v1/servers/srv-00001/console", "console"),
        ("POST", "/api/v1/servers/srv-00001/console-link", "console"),
        ("GET", "/api/v1/commands/1", "read"),
        ("GET", "/api/v1/status", "read"),
        ("GET", "/api/v1/sessions", "admin"),
        ("POST", "/api/v1/servers/srv-00001/revoke", "admin"),
        ("POST", "/api/v1/servers/srv-00001/suspend", "admin"),
        ("POST", "/api/v1/servers/srv-00001/resume", "admin"),
        ("GET", "/api/v1/catalog", "act"),
        ("POST", "/api/v1/servers/srv-00002/adopt", "admin"),
        // Last: srv-00002 is not managed after it.
        ("POST", "/api/v1/servers/srv-00002/release", "admin"),
    ];
    // The list above is the document's list: no route untested
    // (`/metrics`, outside the prefix, has its own tests: tests/metrics.rs).
    let mut documented = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if path == "/metrics" {
            continue;
        }
        documented += ops
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| !matches!(m.as_str(), "parameters" | "servers"))
            .count();
        assert!(path.starts_with('/'), "{path}");
    }
    assert_eq!(
        documented,
        routes.len() + 1,
        "openapi.json lists other routes"
    );
    // Queue a command first so that /commands/1 exists.
    let queued = serve.post("/api/v1/servers/srv-00002/actions/stop", &keys.admin);
    assert_status(&queued, 202, "admin queues");
    for (method, path, need) in routes {
        for (key, what) in [(None, "no key"), (Some("hcc_wrong"), "unknown key")] {
            let reply = serve.request(method, path, Some("{}"), key);
            assert_status(&reply, 401, &format!("{method} {path} with {what}"));
            assert_eq!(code(&reply), "unauthorized");
            assert!(reply.header("WWW-Authenticate").is_some());
        }
        for (scope, key) in [
            ("read", &keys.read),
            ("act", &keys.act),
            ("console", &keys.console),
            ("admin", &keys.admin),
        ] {
            let allowed = need == "read" || scope == need || scope == "admin";
            let reply = serve.request(method, path, Some("{}"), Some(key));
            let what = format!("{method} {path} with a {scope} key");
            if allowed {
                assert!(
                    (200..300).contains(&reply.status),
                    "{what}: {} {}",
                    reply.status,
                    reply.body
                );
                assert_eq!(reply.header("Content-Type"), Some("application/json"));
            } else {
                assert_status(&reply, 403, &what);
                assert_eq!(code(&reply), "forbidden", "{what}");
            }
        }
    }
    // A malformed Authorization header is a 401 too.
    let reply = http(
        &serve.addr,
        "GET",
        "/api/v1/servers",
        None,
        Some("Basic abc"),
    )
    .unwrap();
    assert_status(&reply, 401, "basic auth");
    // A revoked key stops working at once, though `hcc serve` keeps the
    // keys it has checked and the servers it has rendered (issue 22): the
    // key and the server were just used, and are asked for again.
    let server = "/api/v1/servers/srv-00001";
    assert_status(&serve.get(server, &keys.read), 200, "the key before");
    env.ok(&["apikey", "revoke", "read-key"]);
    assert_status(&serve.get(server, &keys.read), 401, "revoked key, server");
    assert_status(
        &serve.get("/api/v1/servers", &keys.read),
        401,
        "revoked key",
    );
    assert_status(&serve.get(server, &keys.admin), 200, "another key");
}

#[test]
fn reads_come_from_the_local_table_and_actions_reach_the_worker() {
    let sim = Sim::start(&["--servers", "3", "--action-ms", "0"]);
    let (env, keys) = keyed(&sim);
    let serve = Serve::start(&env, &sim, &["--worker", "--cycle", "3600"]);
    let before = sim.stats()["requests"].as_i64().unwrap_or(0);
    let list = serve.get("/api/v1/servers", &keys.read);
    assert_status(&list, 200, "list");
    let list = list.json();
    let names: Vec<&str> = list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["srv-00001", "srv-00002", "srv-00003"]);
    let one = serve.get("/api/v1/servers/srv-00002", &keys.read).json();
    assert_eq!(one["server"]["status"], "running");
    assert_eq!(one["server"]["managed"], true);
    assert!(one["server"].get("console_password").is_none());
    assert!(!list.to_string().contains("password"), "{list}");
    // No Hetzner request for reads.
    let after = sim.stats()["requests"].as_i64().unwrap_or(0);
    assert!(
        after - before <= 1,
        "reads called Hetzner: {before} -> {after}"
    );

    let queued = serve.post("/api/v1/servers/srv-00002/actions/stop", &keys.act);
    assert_status(&queued, 202, "stop");
    let id = queued.json()["command"]["id"].as_i64().unwrap();
    assert_eq!(
        queued.header("Location"),
        Some(format!("/api/v1/commands/{id}").as_str())
    );
    let mut state = String::new();
    let done = eventually(Duration::from_secs(20), || {
        let command = serve
            .get(&format!("/api/v1/commands/{id}"), &keys.read)
            .json();
        state = command["command"]["state"]
            .as_str()
            .unwrap_or("")
            .to_string();
        state == "done" || state == "failed"
    });
    assert!(
        done && state == "done",
        "command {id} ended {state}: {}",
        serve.log()
    );
    let server = serve.get("/api/v1/servers/srv-00002", &keys.read).json();
    assert_eq!(server["server"]["status"], "off");
    let source: String = env.value(&format!("SELECT source FROM commands WHERE id = {id}"));
    assert_eq!(source, "api");
    let status = serve.get("/api/v1/status", &keys.read).json();
    assert!(status["worker"]["pid"].as_i64().is_some(), "{status}");
    assert_eq!(status["servers"], 3);
    // `hcc status` sees the serve through serve.lock, in words and JSON.
    assert_eq!(status["serve_running"], true, "{status}");
    let words = env.run(&["status"]);
    assert!(
        words.stdout.contains("\nserve:       running\n"),
        "{words:?}"
    );
    // create: options from the body, the name must be new.
    let create = serve.request(
        "POST",
        "/api/v1/servers/web-new/actions/create",
        Some(r#"{"server_type":"cpx11","location":"hel1"}"#),
        Some(&keys.admin),
    );
    assert_status(&create, 202, "create");
    assert_eq!(
        create.json()["command"]["arg"],
        "web-new cpx11 debian-12 hel1"
    );
    let again = serve.post("/api/v1/servers/srv-00001/actions/create", &keys.admin);
    assert_status(&again, 409, "create of an existing name");
}

#[test]
fn bad_input_gets_a_clear_4xx_and_never_a_file_outside_the_set() {
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    unmanaged_server(&env, &sim, "plain");
    let serve = Serve::start(&env, &sim, &[]);
    let admin = Some(keys.admin.as_str());
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        (
            "POST",
            "/api/v1/servers/srv-00001/actions/start",
            Some("{not json"),
            400,
            "bad_json",
        ),
        (
            "POST",
            "/api/v1/servers/srv-00001/actions/start",
            Some("[1,2]"),
            400,
            "bad_json",
        ),
        (
            "POST",
            "/api/v1/servers/srv-00001/console-link",
            Some("nope"),
            400,
            "bad_json",
        ),
        ("GET", "/api/v1/servers/nosuch", None, 404, "not_found"),
        (
            "POST",
            "/api/v1/servers/nosuch/console",
            Some("{}"),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/v1/servers/nosuch/actions/start",
            Some("{}"),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/v1/servers/plain/actions/start",
            Some("{}"),
            403,
            "not_managed",
        ),
        (
            "POST",
            "/api/v1/servers/plain/console",
            Some("{}"),
            403,
            "not_managed",
        ),
        (
            "POST",
            "/api/v1/servers/plain/console-link",
            Some("{}"),
            403,
            "not_managed",
        ),
        (
            "GET",
            "/api/v1/servers/Bad_Name!",
            None,
            400,
            "invalid_name",
        ),
        ("GET", "/api/v1/servers/%2e%2e", None, 400, "invalid_name"),
        (
            "POST",
            "/api/v1/servers/srv-00001/actions/explode",
            Some("{}"),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/v1/servers/srv-00001/actions/settag",
            Some("{}"),
            404,
            "not_found",
        ),
        ("GET", "/api/v1/commands/abc", None, 400, "invalid_id"),
        ("GET", "/api/v1/commands/999999", None, 404, "not_found"),
        ("GET", "/api/v1/nothing/here", None, 404, "not_found"),
        (
            "DELETE",
            "/api/v1/servers/srv-00001",
            None,
            405,
            "method_not_allowed",
        ),
        ("GET", "/c/refresh", None, 405, "method_not_allowed"),
        ("POST", "/c/refresh", Some("{}"), 400, "bad_field"),
        (
            "POST",
            "/c/refresh",
            Some(r#"{"session":"forged"}"#),
            404,
            "session_unknown",
        ),
    ];
    for (method, path, body, status, want) in cases {
        let reply = serve.request(method, path, *body, admin);
        assert_status(&reply, *status, &format!("{method} {path}"));
        assert_eq!(&code(&reply), want, "{method} {path}: {}", reply.body);
    }
    // Oversized body: refused before it is read.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(100_000));
    let reply = serve.request(
        "POST",
        "/api/v1/servers/srv-00001/console-link",
        Some(&big),
        admin,
    );
    assert_status(&reply, 413, "oversized body");
    assert_eq!(code(&reply), "too_large");
    // Static files: only the embedded set, whatever the spelling.
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E%2FCargo.toml",
        "/novnc/../../Cargo.toml",
        "/novnc/..%2f..%2fCargo.toml",
        "/..%5c..%5cCargo.toml",
        "//etc/passwd",
        "/www/index.html",
        "/src/main.rs",
        "/console.html",
        "/c/../../etc/passwd",
        "/c/%2e%2e%2fetc%2fpasswd",
    ] {
        let reply = serve.request("GET", path, None, None);
        assert!(
            reply.status == 404 || reply.status == 400,
            "GET {path}: {} {}",
            reply.status,
            reply.body
        );
        assert!(
            !reply.body.contains("[package]") && !reply.body.contains("root:"),
            "{path}"
        );
        assert_eq!(
            reply.header("Content-Type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
    }
    assert!(
        !serve.log().contains(" 500 "),
        "a 500 was served: {}",
        serve.log()
    );
}

#[test]
fn a_console_link_opens_once_with_fresh_credentials_and_safe_headers() {
    // Credentials in the page: direct mode (tests/broker.rs covers broker).
    let (sim, env, keys, serve) = serving_with(&["--servers", "2"], &[("console_mode", "direct")]);
    assert_eq!(
        serve.request("GET", "/novnc/novnc.js", None, None).status,
        200,
        "noVNC is not embedded: run `npm ci --prefix noVNC` and rebuild (scripts/test does)"
    );
    let path = link(&serve, &keys.console, "srv-00001");
    assert!(path.starts_with("/c/") && path.len() == 3 + 64, "{path}");
    // Nothing is asked of Hetzner until the link is opened.
    assert_eq!(
        sim.control("GET", "/_sim/consoles", None).json()["consoles"],
        serde_json::json!([])
    );

    // However often it is fetched, the link stays usable.
    for method in ["GET", "HEAD"] {
        let landing = serve.request(method, &path, None, None);
        assert_status(&landing, 200, &format!("{method} of a link"));
        assert_eq!(landing.header("Cache-Control"), Some("no-store"));
        assert_eq!(landing.header("Referrer-Policy"), Some("no-referrer"));
        let csp = landing
            .header("Content-Security-Policy")
            .unwrap_or_default();
        assert!(csp.contains("form-action 'self'"), "{csp}");
        assert!(!landing.body.contains(path.trim_start_matches("/c/")));
    }
    assert_eq!(
        sim.control("GET", "/_sim/consoles", None).json()["consoles"],
        serde_json::json!([])
    );
    let page = serve.request("POST", &path, None, None);
    assert_status(&page, 200, "first open");
    let csp = page
        .header("Content-Security-Policy")
        .unwrap_or_default()
        .to_string();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        &format!("connect-src 'self' ws://{}", sim.addr),
    ] {
        assert!(csp.contains(part), "CSP {csp:?} lacks {part:?}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    assert_eq!(page.header("Referrer-Policy"), Some("no-referrer"));
    assert_eq!(page.header("X-Frame-Options"), Some("DENY"));
    let data = page_data(&page.body);
    let consoles = sim.control("GET", "/_sim/consoles", None).json();
    let issued = &consoles["consoles"][0];
    assert_eq!(data["password"], issued["password"]);
    assert_eq!(data["server"], "srv-00001");
    assert!(
        data["wss_url"]
            .as_str()
            .unwrap()
            .contains(issued["token"].as_str().unwrap())
    );
    // Twice: gone; a GET now says so too.
    let again = serve.request("POST", &path, None, None);
    assert_status(&again, 410, "second open");
    assert_status(
        &serve.request("GET", &path, None, None),
        410,
        "GET of a used link",
    );
    assert!(again.body.contains(r#""opened":true"#), "{}", again.body);
    assert_eq!(again.header("Cache-Control"), Some("no-store"));
    // Other methods are refused.
    let fresh = link(&serve, &keys.console, "srv-00002");
    let put = serve.request("PUT", &fresh, None, None);
    assert_status(&put, 405, "PUT");
    assert_eq!(put.header("Allow"), Some("GET, HEAD, POST"));
    assert_status(
        &serve.request("POST", &fresh, None, None),
        200,
        "POST after a PUT",
    );
    // Past its lifetime: gone, never opened.
    let stale = link(&serve, &keys.console, "srv-00001");
    env.db()
        .execute(
            "UPDATE console_links SET expires_at = 1 WHERE opened_at IS NULL",
            [],
        )
        .unwrap();
    let unknown = format!("/c/{}", "ab".repeat(32));
    for method in ["GET", "POST"] {
        assert_status(
            &serve.request(method, &stale, None, None),
            410,
            &format!("{method} of an expired link"),
        );
        assert_status(
            &serve.request(method, &unknown, None, None),
            410,
            &format!("{method} of an unknown token"),
        );
        assert_status(
            &serve.request(method, "/c/short", None, None),
            404,
            &format!("{method} of a malformed token"),
        );
    }

    // The session brings fresh credentials without a second login.
    let session = data["session"].as_str().unwrap();
    let body = format!(r#"{{"session":"{session}"}}"#);
    let refreshed = serve.request("POST", "/c/refresh", Some(&body), None);
    assert_status(&refreshed, 200, "refresh");
    let refreshed = refreshed.json();
    assert_ne!(refreshed["password"], data["password"]);
    assert_eq!(refreshed["server"], "srv-00001");
    let hurried = serve.request("POST", "/c/refresh", Some(&body), None);
    assert_status(&hurried, 429, "refresh right after a refresh");
    assert!(hurried.header("Retry-After").is_some());
    env.db()
        .execute("UPDATE console_sessions SET expires_at = 1", [])
        .unwrap();
    let ended = serve.request("POST", "/c/refresh", Some(&body), None);
    assert_status(&ended, 410, "refresh after the session ended");
    // The audit trail: who, which server, from where; never a secret.
    let (server, by, remote): (String, String, String) = env
        .db()
        .query_row(
            "SELECT server, created_by, remote FROM console_sessions ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (server.as_str(), by.as_str(), remote.as_str()),
        ("srv-00001", "console-key", "127.0.0.1")
    );
}

#[test]
fn of_concurrent_opens_of_one_link_exactly_one_wins() {
    let (_sim, _env, keys, serve) = serving(&["--servers", "1"]);
    for _ in 0..3 {
        let path = link(&serve, &keys.console, "srv-00001");
        one_wins_at_once(8, 410, || serve.request("POST", &path, None, None).status);
    }
}

#[test]
fn a_link_survives_a_hetzner_failure_and_no_secret_reaches_the_log() {
    let token = "t".repeat(64);
    let first = Sim::start(&["--servers", "1", "--token", &token]);
    let env = Env::new();
    let keys = setup(&env, &first);
    env.ok(&["config", "set", "console_mode", "direct"]);
    let serve = Serve::start(&env, &first, &[]);
    let path = link(&serve, &keys.console, "srv-00001");
    // Hetzner is away: the page says so, and the link stays usable.
    let addr = first.addr.clone();
    drop(first);
    let page = serve.request("POST", &path, None, None);
    assert_status(&page, 503, "open while Hetzner is away");
    assert!(page.body.contains("try again"), "{}", page.body);
    assert!(
        !page.body.contains("hetzner:"),
        "operator detail on a customer page: {}",
        page.body
    );
    assert!(serve.log().contains("console: hetzner:"), "{}", serve.log());
    let sim = Sim::start(&["--servers", "1", "--token", &token, "--listen", &addr]);
    assert_status(&serve.request("GET", &path, None, None), 200, "GET");
    let page = serve.request("POST", &path, None, None);
    assert_status(&page, 200, "open after Hetzner came back");
    let data = page_data(&page.body);
    let direct = serve
        .post("/api/v1/servers/srv-00001/console", &keys.admin)
        .json();
    let mut secrets = vec![
        sim.token.clone(),
        keys.read.clone(),
        keys.act.clone(),
        keys.console.clone(),
        keys.admin.clone(),
        path.trim_start_matches("/c/").to_string(),
        data["session"].as_str().unwrap().to_string(),
        data["password"].as_str().unwrap().to_string(),
        direct["password"].as_str().unwrap().to_string(),
    ];
    for ticket in sim.control("GET", "/_sim/consoles", None).json()["consoles"]
        .as_array()
        .unwrap()
    {
        secrets.push(ticket["password"].as_str().unwrap().to_string());
        secrets.push(ticket["token"].as_str().unwrap().to_string());
    }
    let log = serve.log();
    assert!(log.contains("GET /c/<token> 200"), "{log}");
    assert!(log.contains("POST /c/<token> 200"), "{log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the serve log holds a secret: {log}"
        );
    }
}

#[test]
fn serve_refuses_other_machines_without_a_key_and_stops_on_sigterm() {
    let sim = Sim::start(&[]);
    let env = Env::new();
    let run = env.run(&["serve", "--listen", "0.0.0.0:0"]);
    run.fails(
        2,
        "hcc: refusing to listen on 0.0.0.0:0, beyond this machine, while no API key exists: \
         create one first (`hcc apikey add NAME --scope admin`) or listen on 127.0.0.1",
    );
    let run = env.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--public-url",
        "ftp://x",
    ]);
    run.fails(
        2,
        "hcc: invalid --public-url `ftp://x`: want an http:// or https:// URL",
    );
    env.ok(&["apikey", "add", "ops", "--scope", "admin"]);
    let mut serve = Serve::start_with(&env, &sim, &["serve", "--listen", "0.0.0.0:0"]);
    assert!(
        serve.log().contains("put a TLS proxy in front"),
        "{}",
        serve.log()
    );
    let status = serve.stop().expect("serve stops on SIGTERM");
    assert!(status.success(), "{status:?}: {}", serve.log());
    // With --worker, a second worker on the same state is refused.
    let mut serve = Serve::start(&env, &sim, &["--worker"]);
    let second = env
        .cmd(&["worker"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(4), "{second:?}");
    let busy = env
        .cmd(&["serve", "--listen", "127.0.0.1:0", "--worker"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    assert_eq!(busy.status.code(), Some(4), "{busy:?}");
    assert!(serve.stop().expect("stops").success(), "{}", serve.log());
    assert!(serve.log().contains("hcc worker: "), "{}", serve.log());
}

#[test]
fn api_keys_are_shown_once_and_stored_hashed() {
    let env = Env::new();
    let key = env.ok(&["apikey", "add", "whmcs", "--scope", "console"]);
    let key = key.trim();
    assert!(key.starts_with("hcc_") && key.len() == 68, "{key}");
    let listed = env.ok(&["apikey", "list"]);
    assert!(
        listed.contains("whmcs") && listed.contains("console"),
        "{listed}"
    );
    assert!(!listed.contains(key));
    let json: Value = serde_json::from_str(&env.ok(&["apikey", "list", "--json"])).unwrap();
    assert_eq!(json["api_keys"][0]["name"], "whmcs");
    assert!(!json.to_string().contains(key));
    let stored: String = env.value("SELECT key_hash FROM api_keys WHERE name = 'whmcs'");
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(&key[4..]));
    env.run(&["apikey", "add", "whmcs", "--scope", "read"])
        .fails(
            1,
            "hcc: an API key named `whmcs` exists already (revoke it first, or pick another name)",
        );
    env.run(&["apikey", "add", "bad name", "--scope", "read"])
        .fails(
            2,
            "hcc: invalid key name `bad name`: up to 64 letters, digits, `-`, `_`, `.`",
        );
    env.run(&["apikey", "add", "x", "--scope", "root"]).fails(
        2,
        "hcc: invalid value 'root' for '--scope <SCOPE>' (see `hcc --help`)",
    );
    env.ok(&["apikey", "revoke", "whmcs"]);
    env.run(&["apikey", "revoke", "whmcs"])
        .fails(1, "hcc: no API key named `whmcs` (see `hcc apikey list`)");
}

#[test]
fn hostile_requests_are_refused_and_the_server_keeps_serving() {
    let (_sim, _env, keys, serve) = serving(&["--servers", "1"]);
    let addr = serve.addr.as_str();
    let cases: &[(&str, u16)] = &[
        // A chunk size that overflows any counter.
        (
            "POST /c/refresh HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\nffffffffffffffff\r\n",
            413,
        ),
        (
            "POST /c/refresh HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
            400,
        ),
        // Framing a proxy could read differently.
        (
            "POST /c/refresh HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            400,
        ),
        (
            "POST /c/refresh HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        (
            "POST /c/refresh HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
            400,
        ),
        (
            "POST /c/refresh HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            400,
        ),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\n\r\n", 505),
        ("GARBAGE\r\n\r\n", 400),
        // Methods are case-sensitive.
        ("get / HTTP/1.1\r\nConnection: close\r\n\r\n", 405),
        // The absolute form names the same resource.
        (
            "GET http://example.com/api/v1/openapi.json HTTP/1.1\r\nConnection: close\r\n\r\n",
            200,
        ),
    ];
    for (request, want) in cases {
        let answer = raw(addr, request.as_bytes());
        assert_eq!(status_of(&answer), *want, "{request:?} -> {answer}");
    }
    // More hostile connections than the server has slots: every one is
    // given back, so it still answers.
    for _ in 0..600 {
        raw(addr, cases[0].0.as_bytes());
    }
    let doc = serve.request("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(doc.status, 200, "after 600 bad requests: {}", serve.log());
    // A 405 names what is allowed.
    let reply = serve.request("DELETE", "/api/v1/servers", None, Some(&keys.read));
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("Allow"), Some("GET, HEAD"));
    // However a link's path is spelt, its token stays out of the log.
    let path = link(&serve, &keys.console, "srv-00001");
    let token = path.trim_start_matches("/c/");
    serve.request("GET", &format!("/{path}"), None, None);
    serve.request("POST", &format!("/{path}"), None, None);
    raw(
        addr,
        format!("GET http://h{path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(!serve.log().contains(token), "{}", serve.log());
    assert!(!serve.log().contains(&token[..32]), "{}", serve.log());
}

#[test]
fn only_admin_keys_create_and_delete_servers() {
    let (_sim, _env, keys, serve) = serving(&["--servers", "1", "--action-ms", "0"]);
    for (verb, path) in [
        ("kill", "/api/v1/servers/srv-00001/actions/kill"),
        ("create", "/api/v1/servers/new-1/actions/create"),
        ("new", "/api/v1/servers/new-1/actions/new"),
    ] {
        let reply = serve.post(path, &keys.act);
        assert_eq!(reply.status, 403, "{verb} with an act key: {}", reply.body);
        assert!(reply.body.contains("scope `admin`"), "{}", reply.body);
    }
    for (path, key) in [
        ("/api/v1/servers/srv-00001/actions/reboot", &keys.act),
        ("/api/v1/servers/new-1/actions/create", &keys.admin),
        ("/api/v1/servers/srv-00001/actions/kill", &keys.admin),
    ] {
        assert_eq!(serve.post(path, key).status, 202, "{path}");
    }
}

#[test]
fn sessions_refresh_one_at_a_time_and_end_with_their_key_or_server() {
    let (sim, env, keys, serve) = serving(&["--servers", "2"]);
    let open = |server: &str| {
        let page = serve.request("POST", &link(&serve, &keys.console, server), None, None);
        assert_eq!(page.status, 200, "{}", page.body);
        page_data(&page.body)["session"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Concurrent refreshes of one session: one Hetzner request, the rest 429.
    let session = open("srv-00001");
    one_wins_at_once(8, 429, || serve.refresh(&session).status);

    // The server is deleted and made again under its name: another server.
    let other = open("srv-00002");
    let stale = link(&serve, &keys.console, "srv-00002");
    replace_server(&sim, &env, "srv-00002");
    let reply = serve.refresh(&other);
    assert_eq!(reply.status, 410, "{}", reply.body);
    // The sync that found it gone ended its consoles for good.
    assert_eq!(code(&reply), "session_expired");
    let page = serve.request("POST", &stale, None, None);
    assert_eq!(page.status, 410, "{}", page.body);

    // Revoking the key ends its sessions and its unopened links. (Waits
    // out the 3 s between a session's refreshes first.)
    std::thread::sleep(Duration::from_millis(3100));
    let unopened = link(&serve, &keys.console, "srv-00001");
    env.ok(&["apikey", "revoke", "console-key"]);
    let reply = serve.refresh(&session);
    assert_eq!(reply.status, 410, "{}", reply.body);
    assert_eq!(serve.request("POST", &unopened, None, None).status, 410);
}

#[test]
fn l_html_reaches_only_the_configured_console_hosts() {
    let sim = Sim::start(&[]);
    let env = Env::new();
    let csp = |serve: &Serve| {
        serve
            .request("GET", "/l.html", None, None)
            .header("Content-Security-Policy")
            .unwrap_or_default()
            .to_string()
    };
    // As the original: any console.
    let serve = Serve::start(&env, &sim, &[]);
    assert!(
        csp(&serve).contains("connect-src 'self' ws: wss:;"),
        "{}",
        csp(&serve)
    );
    drop(serve);
    env.run(&["config", "set", "console_hosts", "https://x"])
        .fails(
            2,
            "hcc: invalid value for `console_hosts`: `https://x` is not a websocket origin like \
             wss://web-console.hetzner.cloud",
        );
    env.run(&["config", "set", "console_hosts", "wss://a;script-src *"])
        .fails(
            2,
            "hcc: invalid value for `console_hosts`: `wss://a;script-src` is not a websocket \
             origin like wss://web-console.hetzner.cloud",
        );
    env.ok(&[
        "config",
        "set",
        "console_hosts",
        "wss://web-console.hetzner.cloud  ws://127.0.0.1:5900",
    ]);
    let serve = Serve::start(&env, &sim, &[]);
    let policy = csp(&serve);
    assert!(
        policy.contains("connect-src 'self' wss://web-console.hetzner.cloud ws://127.0.0.1:5900;"),
        "{policy}"
    );
    // The other pages are not affected.
    let index = serve.request("GET", "/", None, None);
    assert!(
        index
            .header("Content-Security-Policy")
            .unwrap()
            .contains("connect-src 'self';")
    );
}
