//! The console pages in a real browser on a real VNC console: headless
//! Chromium (driven by tests/browser/console.mjs) opens a one-time link
//! served by `hcc serve`, brokered (the default: the browser talks only to
//! hcc) and direct, and the old `l.html?ws://...#PASSWORD` form; the
//! console is Xvnc behind websockify, handed out by `hcc sim
//! --console-upstream`, or the simulator's own. A live session cut by
//! `hcc revoke` from another process. And the link flow through nginx
//! over TLS.

use serde_json::Value;

use crate::support::browser::{Held, browser_ready, node, on_a_real_console, shots};
use crate::support::nginx::{Nginx, curl, curl_method};
use crate::support::serve::{Serve, keyed, serving};
use crate::test::Sim;

const PASSWORD: &str = "s3cret!x";

/// Runs the console driver on `url`; returns its JSON report, failing the
/// test with the report when a check failed.
fn drive(url: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "--url",
        url,
        "--expect-colour",
        crate::support::vnc::ROOT_COLOUR,
    ];
    args.extend_from_slice(extra);
    // The URL without its fragment: l.html carries a password there.
    node("console.mjs", &args, || {
        url.split('#').next().unwrap_or("").to_string()
    })
}

#[test]
fn a_browser_opens_a_one_time_link_and_the_old_url_form_on_a_real_console() {
    let Some((vnc, sim, env, keys)) = on_a_real_console(PASSWORD, &["--servers", "1"]) else {
        return;
    };
    let serve = Serve::start(&env, &sim, &[]);
    let made = serve.post("/api/v1/servers/srv-00001/console-link", &keys.console);
    assert_eq!(made.status, 201, "{}", made.body);
    let url = made.json()["url"].as_str().unwrap().to_string();
    let shot = shots().join("console-link.png");
    let xev = vnc.xev_log();
    // Brokered: the browser never sees where the console is or its
    // password, in its network log or in the page.
    let upstream_port = vnc.ws_port().to_string();
    let report = drive(
        &url,
        &[
            "--screenshot",
            shot.to_str().unwrap(),
            "--xev-log",
            xev.to_str().unwrap(),
            "--forbid",
            vnc.ws_url(),
            "--forbid",
            &format!(":{upstream_port}"),
            "--forbid",
            PASSWORD,
            "--forbid",
            &PASSWORD[..8],
        ],
    );
    assert!(shot.exists(), "no screenshot: {report}");
    // The GET answered the page that opens the link with its POST.
    assert_eq!(
        report["navigations"],
        serde_json::json!([{"method": "GET", "status": 200}, {"method": "POST", "status": 200}]),
        "{report}"
    );
    crate::support::browser::assert_websockets_below(&report, &format!("ws://{}/ws/", serve.addr));
    let reason: String = env.value(
        "SELECT end_reason FROM console_sessions WHERE connected_at IS NOT NULL ORDER BY id LIMIT 1",
    );
    assert_eq!(reason, "client closed");
    let keys_seen = vnc.xev_text();
    for key in ["Control_L", "Alt_L", "Delete"] {
        assert!(
            keys_seen.contains(key),
            "Ctrl-Alt-Del did not arrive: {keys_seen}"
        );
    }
    // The link is spent.
    let path = url.trim_start_matches(&format!("http://{}", serve.addr));
    for method in ["GET", "POST"] {
        let again = crate::test::http(&serve.addr, method, path, None, None).unwrap();
        assert_eq!(again.status, 410, "{method}");
    }

    // A mail scanner and a link preview fetched it ten times each first:
    // the customer's browser still opens it.
    let made = serve.post("/api/v1/servers/srv-00001/console-link", &keys.console);
    let url = made.json()["url"].as_str().unwrap().to_string();
    let path = url.trim_start_matches(&format!("http://{}", serve.addr));
    for _ in 0..10 {
        for method in ["GET", "HEAD"] {
            let scanned = crate::test::http(&serve.addr, method, path, None, None).unwrap();
            assert_eq!(scanned.status, 200, "{method} by a scanner");
        }
    }
    let report = drive(&url, &[]);
    assert_eq!(report["navigations"][1]["method"], "POST", "{report}");

    // Without script, the page's button opens it.
    let made = serve.post("/api/v1/servers/srv-00001/console-link", &keys.console);
    let url = made.json()["url"].as_str().unwrap().to_string();
    let report = node("noscript.mjs", &["--url", &url], || {
        "the link without script".into()
    });
    assert_eq!(
        report["navigations"],
        serde_json::json!([{"method": "GET", "status": 200}, {"method": "POST", "status": 200}]),
        "{report}"
    );

    // The page outlives a dropped connection: it fetches fresh
    // credentials through its session and connects again.
    let made = serve.post("/api/v1/servers/srv-00001/console-link", &keys.console);
    let url = made.json()["url"].as_str().unwrap().to_string();
    let before = consoles(&sim);
    drive(&url, &["--drop"]);
    assert!(
        consoles(&sim) >= before + 2,
        "no fresh credentials after the drop: {}",
        serve.log()
    );
    assert!(
        serve.log().contains("POST /c/refresh 200"),
        "{}",
        serve.log()
    );

    // The original's URL form, unchanged for existing panels.
    let old = format!(
        "http://{}/l.html?{}#{}",
        serve.addr,
        vnc.ws_url(),
        vnc.password()
    );
    let shot = shots().join("l-html.png");
    drive(&old, &["--screenshot", shot.to_str().unwrap()]);
    assert!(shot.exists());
    assert!(!serve.log().contains(PASSWORD), "{}", serve.log());
}

#[test]
fn a_browser_opens_a_one_time_link_in_direct_mode() {
    let Some((vnc, sim, env, keys)) = on_a_real_console(PASSWORD, &["--servers", "1"]) else {
        return;
    };
    env.ok(&["config", "set", "console_mode", "direct"]);
    let serve = Serve::start(&env, &sim, &[]);
    let made = serve.post("/api/v1/servers/srv-00001/console-link", &keys.console);
    assert_eq!(made.status, 201, "{}", made.body);
    let url = made.json()["url"].as_str().unwrap().to_string();
    let xev = vnc.xev_log();
    let report = drive(&url, &["--xev-log", xev.to_str().unwrap()]);
    // The browser went to the console itself.
    assert_eq!(
        report["websockets"][0]
            .as_str()
            .map(|u| u.trim_end_matches('/')),
        Some(vnc.ws_url().trim_end_matches('/')),
        "{report}"
    );
}

#[test]
fn the_dashboard_lists_acts_and_opens_a_console() {
    let Some((_vnc, sim, env, keys)) =
        on_a_real_console(PASSWORD, &["--servers", "2", "--action-ms", "0"])
    else {
        return;
    };
    let serve = Serve::start(&env, &sim, &["--worker", "--cycle", "3600"]);
    // A live brokered session, as the broker records one, from a browser
    // with a long User-Agent; a page session of the other server that
    // never connected (its ticket expired long ago).
    let long_agent = format!(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/156.0.7339.80 Safari/537.36 Extension/{}",
        "a".repeat(200)
    );
    env.db()
        .execute(
            "INSERT INTO console_sessions
                 (session_hash, server, server_id, created_by, remote, started_at,
                  last_seen_at, expires_at, mode, user_agent, connected_at)
             VALUES ('live-1', 'srv-00001', (SELECT id FROM servers WHERE name = 'srv-00001'),
                     'console-key', '192.0.2.7',
                     strftime('%s', 'now'), strftime('%s', 'now'),
                     strftime('%s', 'now') + 600, 'broker', ?1,
                     strftime('%s', 'now'))",
            [&long_agent],
        )
        .unwrap();
    env.db()
        .execute_batch(
            "INSERT INTO console_sessions
                 (id, page_id, session_hash, server, server_id, created_by, remote, started_at,
                  last_seen_at, expires_at, mode, user_agent, ticket_expires_at)
             VALUES (900, 900, 'unused-1', 'srv-00002',
                     (SELECT id FROM servers WHERE name = 'srv-00002'), 'console-key', '192.0.2.8',
                     strftime('%s', 'now') - 3000, strftime('%s', 'now') - 3000,
                     strftime('%s', 'now') + 600, 'broker', 'curl/8.5.0',
                     strftime('%s', 'now') - 2970)",
        )
        .unwrap();
    let shot = shots().join("dashboard.png");
    let url = format!("http://{}", serve.addr);
    let report = node(
        "dashboard.mjs",
        &[
            "--url",
            &url,
            "--key",
            &keys.admin,
            "--server",
            "srv-00002",
            "--session",
            "srv-00001",
            "--reconnect",
            "1",
            "--unused",
            "900",
            "--screenshot",
            shot.to_str().unwrap(),
        ],
        || format!("the dashboard (serve log: {})", serve.log()),
    );
    assert!(
        report["wrongKey"]
            .as_str()
            .unwrap_or("")
            .contains("unknown or revoked"),
        "{report}"
    );
    assert_eq!(
        report["rows"],
        serde_json::json!(["srv-00001", "srv-00002"])
    );
    assert!(
        report["reboot"].as_str().unwrap().contains("done"),
        "{report}"
    );
    assert_eq!(report["opener"], "null");
    // With `serve --worker`, the status panel says it runs and no banner.
    assert_eq!(report["look"]["banner"], false, "{report}");
    assert!(
        report["look"]["worker"]
            .as_str()
            .unwrap()
            .starts_with("running (pid"),
        "{report}"
    );
    assert_eq!(report["look"]["key"], "admin-key (admin)", "{report}");
    assert_eq!(
        report["look"]["buttons"]["srv-00002"],
        serde_json::json!(["stop", "reboot", "reset", "force", "console", "suspend"]),
        "{report}"
    );
    // The console tab reloaded: one row for its page session, with two
    // connections, found by the list's own refresh within its 5 s.
    let reconnected = report["reconnected"].as_array().unwrap();
    let live: Vec<_> = reconnected.iter().filter(|r| r["live"] == "yes").collect();
    assert_eq!(live.len(), 1, "{report}");
    assert_eq!(live[0]["connections"], "2", "{report}");
    assert_eq!(live[0]["revoke"], true, "{report}");
    let page_rows: i64 = env.value(
        "SELECT count(DISTINCT page_id) FROM console_sessions
         WHERE server = 'srv-00002' AND connected_at IS NOT NULL",
    );
    assert_eq!(page_rows, 1);
    assert!(
        report["refreshedAfterMs"].as_u64().unwrap() <= 7_000,
        "{report}"
    );
    // A page that never connected: "expired unused", no growing duration,
    // nothing to revoke.
    let unused = &report["unused"];
    assert_eq!(unused["state"], "expired unused", "{report}");
    assert_eq!(unused["duration"], "\u{2013}", "{report}");
    assert_eq!(unused["revoke"], false, "{report}");
    // Revoke's success is a notice, not an error; only live rows offer it.
    assert!(
        report["revoke"]
            .as_str()
            .unwrap()
            .contains("Consoles of srv-00001 revoked"),
        "{report}"
    );
    assert_eq!(report["revokeShown"]["notice"], true, "{report}");
    assert_eq!(report["revokeShown"]["error"], false, "{report}");
    assert_ne!(
        report["revokeShown"]["noticeColor"], report["revokeShown"]["errorColor"],
        "{report}"
    );
    for row in report["sessionRows"].as_array().unwrap() {
        assert_eq!(row["revoke"], row["live"] == "yes", "{report}");
    }
    assert_eq!(
        report["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| *s == "srv-00001")
            .count(),
        1,
        "{report}"
    );
    assert!(
        report["sessionState"].as_str().unwrap().contains("revoked"),
        "{report}"
    );
    // The whole User-Agent on hover, the browser and system in the cell,
    // and the page no wider than a 1366 px screen.
    assert_eq!(report["wide"]["browser"], "Chrome 156 on Linux", "{report}");
    assert_eq!(report["wide"]["title"], long_agent.as_str(), "{report}");
    assert!(
        report["wide"]["scrollWidth"].as_u64().unwrap() <= 1366,
        "{report}"
    );
    let stop: String =
        env.value("SELECT stop_requested FROM console_sessions WHERE session_hash = 'live-1'");
    assert_eq!(stop, "revoked");
    let by: String = env.value("SELECT suspended_by FROM suspended WHERE server = 'srv-00001'");
    assert_eq!(by, "admin-key");
    let done: i64 =
        env.value("SELECT count(*) FROM commands WHERE cmd = 'reboot' AND state = 'done'");
    assert_eq!(done, 1);
    assert!(!serve.log().contains(&keys.admin));
}

fn consoles(sim: &Sim) -> usize {
    sim.control("GET", "/_sim/consoles", None).json()["consoles"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn a_console_link_works_through_nginx_over_tls() {
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    // nginx needs serve's port, serve needs nginx's URL for its links: the
    // link is made below the URL nginx answers at.
    let serve = Serve::start(&env, &sim, &[]);
    let port: u16 = serve.addr.rsplit(':').next().unwrap().parse().unwrap();
    let Some(nginx) = Nginx::start(port) else {
        return;
    };
    let made = serve.post("/api/v1/servers/srv-00001/console-link", &keys.console);
    assert_eq!(made.status, 201, "{}", made.body);
    let local = made.json()["url"].as_str().unwrap().to_string();
    let path = local.trim_start_matches(&format!("http://{}", serve.addr));
    let through = format!("{}{path}", nginx.https_url());
    assert!(through.starts_with("https://"), "{through}");
    // A GET answers the page that opens the link, and leaves it usable.
    for _ in 0..2 {
        let landing = curl(&through, &[]);
        assert_eq!(landing.status, 200, "{}", landing.body);
        assert!(!landing.body.contains(r#"id="hcc-console""#));
        assert_eq!(landing.header("Cache-Control"), Some("no-store"));
    }
    let page = curl_method("POST", &through, &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"id="hcc-console""#));
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    assert_eq!(page.header("Referrer-Policy"), Some("no-referrer"));
    assert!(page.header("Content-Security-Policy").is_some());
    let again = curl_method("POST", &through, &[]);
    assert_eq!(again.status, 410, "{}", again.body);
    // The API through nginx, with its key in a header.
    let auth = format!("Authorization: Bearer {}", keys.read);
    let list = curl(&format!("{}/api/v1/servers", nginx.https_url()), &[&auth]);
    assert_eq!(list.status, 200, "{}", list.body);
    // The audit records the customer's address as nginx forwarded it.
    let remote: String = env.value("SELECT remote FROM console_sessions");
    assert_eq!(remote, "127.0.0.1");
    // Neither log holds the link's token or the key.
    let token = path.trim_start_matches("/c/");
    for log in [nginx.access_log(), serve.log()] {
        assert!(!log.contains(token), "{log}");
        assert!(!log.contains(&keys.read), "{log}");
    }
}

/// Chromium behind nginx (TLS, the example site): the link's POST, the
/// websocket and the page's own requests come from hcc's origin as the
/// browser sees it (https, nginx's port), which hcc's Origin check must
/// recognise from the Host and X-Forwarded-Proto nginx passes on.
#[test]
fn chromium_opens_a_brokered_console_through_nginx_and_its_origin_passes() {
    if !browser_ready() {
        return;
    }
    let (_sim, _env, keys, serve) = serving(&["--servers", "1"]);
    let port: u16 = serve.addr.rsplit(':').next().unwrap().parse().unwrap();
    let Some(nginx) = Nginx::start(port) else {
        return;
    };
    let path = crate::support::serve::link(&serve, &keys.admin, "srv-00001");
    let report = drive_sim(&format!("{}{path}", nginx.https_url()), &[]);
    assert_eq!(report["state"], "connected", "{report}");
    let wss = format!("wss://127.0.0.1:{}/ws/", nginx.https_port());
    crate::support::browser::assert_websockets_below(&report, &wss);
    let log = serve.log();
    assert!(!log.contains("from another site"), "{log}");
    assert!(log.contains("POST /c/<token> 200"), "{log}");
    assert!(log.contains("GET /ws/<ticket> 101"), "{log}");
    assert!(log.contains("POST /c/power 200"), "{log}");
}

/// The simulator console's banner colour, its top-left pixel.
pub const SIM_BANNER: &str = "#3c8d5a";

/// A websocket upgrade of `path` on `addr`, by hand: the answer's status.
fn upgrade_status(addr: &str, path: &str) -> u16 {
    let answer = crate::support::serve::raw(
        addr,
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: binary\r\n\r\n"
        )
        .as_bytes(),
    );
    crate::support::serve::status_of(&answer)
}

/// A live brokered session in Chromium (on the simulator's console) is
/// cut by `hcc revoke`, a process of its own: the page leaves
/// "connected" at once and says the session has ended, and the session's
/// end reason is `revoked`. A suspended server's link gives 403 and an
/// upgrade with a ticket its page already held is refused; after `hcc
/// resume` a link connects again.
#[test]
fn a_live_browser_session_ends_when_hcc_revoke_runs_and_suspend_holds() {
    if !browser_ready() {
        return;
    }
    let (_sim, env, keys, serve) = serving(&["--servers", "1"]);
    let url = |serve: &Serve| {
        format!(
            "http://{}{}",
            serve.addr,
            crate::support::serve::link(serve, &keys.console, "srv-00001")
        )
    };
    let held = Held::connected(&[
        "--url",
        &url(&serve),
        "--expect-colour",
        SIM_BANNER,
        "--hold-until",
        "ended",
        "--expect-text",
        "session has ended",
    ]);
    let live: i64 = env.value(
        "SELECT count(*) FROM console_sessions WHERE connected_at IS NOT NULL AND ended_at IS NULL",
    );
    assert_eq!(live, 1);
    let asked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let run = env.run(&["revoke", "srv-00001"]);
    assert!(
        run.code == 0 && run.stderr.contains("1 live session(s)"),
        "{run:?}"
    );
    let report = held.finish();
    let took = report["leftConnectedAt"].as_u64().unwrap_or(u64::MAX) - asked;
    eprintln!("the page left \"connected\" {took} ms after hcc revoke started");
    // A second as a rule (the broker looks every 0.4 s); generous here for
    // a loaded machine, and this includes starting `hcc revoke`.
    assert!(took < 3000, "{took} ms: {report}");
    let reason: String = env.value(
        "SELECT end_reason FROM console_sessions WHERE connected_at IS NOT NULL ORDER BY id LIMIT 1",
    );
    assert_eq!(reason, "revoked");
    assert_eq!(
        crate::test::http(
            &serve.addr,
            "POST",
            report["page"]
                .as_str()
                .unwrap()
                .trim_start_matches(&format!("http://{}", serve.addr)),
            None,
            None
        )
        .unwrap()
        .status,
        410,
        "the revoked link"
    );

    // A page opened before `hcc suspend` holds a ticket: its upgrade is
    // refused, and a link's GET and POST give 403.
    let before = crate::support::serve::link(&serve, &keys.console, "srv-00001");
    let page = serve.request("POST", &before, None, None);
    assert_eq!(page.status, 200, "{}", page.body);
    let ticket = crate::support::serve::page_data(&page.body)["ws"]
        .as_str()
        .unwrap()
        .trim_start_matches("..")
        .to_string();
    let waiting = crate::support::serve::link(&serve, &keys.console, "srv-00001");
    env.ok(&["suspend", "srv-00001"]);
    assert_eq!(upgrade_status(&serve.addr, &ticket), 403);
    for method in ["GET", "POST"] {
        let reply = serve.request(method, &waiting, None, None);
        assert_eq!(reply.status, 403, "{method}: {}", reply.body);
    }
    let reason: String =
        env.value("SELECT end_reason FROM console_sessions ORDER BY id DESC LIMIT 1");
    assert_eq!(reason, "suspended");

    // Resumed: the same link opens in the browser again.
    env.ok(&["resume", "srv-00001"]);
    let report = drive_sim(&format!("http://{}{waiting}", serve.addr), &[]);
    assert_eq!(report["state"], "connected", "{report}");
}

/// console.mjs on the simulator's console (640x400, its banner colour).
fn drive_sim(url: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "--url",
        url,
        "--expect-colour",
        SIM_BANNER,
        "--size",
        "640x400",
    ];
    args.extend_from_slice(extra);
    node("console.mjs", &args, || url.to_string())
}

/// The dashboard read with `--look` by one key: its JSON report.
pub fn look(serve: &Serve, key: &str, extra: &[&str]) -> Value {
    let url = format!("http://{}", serve.addr);
    let mut args = vec![
        "--url", &url, "--key", key, "--server", "srv-off", "--look", "1",
    ];
    args.extend_from_slice(extra);
    node("dashboard.mjs", &args, || {
        format!("the dashboard (serve log: {})", serve.log())
    })
}

#[test]
fn the_dashboard_warns_without_a_worker_and_shows_the_buttons_a_key_may_press() {
    if !browser_ready() {
        return;
    }
    let sim = crate::support::serve::sim_with_an_off_server();
    let (env, keys) = keyed(&sim);
    // No worker: commands wait, and the page says so.
    let serve = Serve::start(&env, &sim, &[]);
    let buttons = |report: &Value, server: &str| report["look"]["buttons"][server].clone();
    let none = serde_json::json!([]);

    let read = look(&serve, &keys.read, &[]);
    assert_eq!(read["look"]["banner"], true, "{read}");
    assert_eq!(read["look"]["worker"], "not running", "{read}");
    assert_eq!(read["look"]["key"], "read-key (read)", "{read}");
    assert_eq!(read["look"]["status"]["srv-off"], "off", "{read}");
    assert_eq!(read["look"]["status"]["srv-00001"], "running", "{read}");
    assert_eq!(buttons(&read, "srv-00001"), none, "{read}");
    assert_eq!(buttons(&read, "srv-off"), none, "{read}");
    assert_eq!(read["searched"], serde_json::json!(["srv-off"]), "{read}");
    assert_eq!(read["searchedNone"], 0, "{read}");

    // An act key: Start only where the server is off, the others only
    // where it runs; no console, no suspension. A command pushed while
    // the page is open shows in its queue without a click; a server
    // started elsewhere (and synced) gets a running server's buttons.
    let off_id = sim.api("GET", "/servers?name=srv-off", None).json()["servers"][0]["id"]
        .as_i64()
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let ready = scratch.path().join("read");
    let act = std::thread::scope(|s| {
        s.spawn(|| {
            // Once the page was read as it was: then the changes.
            crate::test::eventually(std::time::Duration::from_secs(60), || ready.exists());
            env.ok(&["push", "start", "srv-off"]);
            let on = sim.api("POST", &format!("/servers/{off_id}/actions/poweron"), None);
            assert!(on.status < 300, "{}", on.body);
            // The sync must see it running.
            let running = crate::test::eventually(std::time::Duration::from_secs(10), || {
                sim.api("GET", &format!("/servers/{off_id}"), None).json()["server"]["status"]
                    == "running"
            });
            assert!(running, "the sim never powered srv-off on");
            let run = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
            assert!(run.status.success(), "sync: {run:?}");
        });
        look(
            &serve,
            &keys.act,
            &[
                "--ready",
                ready.to_str().unwrap(),
                "--queue",
                "1",
                "--follow",
                "srv-off",
            ],
        )
    });
    assert_eq!(
        buttons(&act, "srv-off"),
        serde_json::json!(["start"]),
        "{act}"
    );
    assert_eq!(
        buttons(&act, "srv-00001"),
        serde_json::json!(["stop", "reboot", "reset", "force"]),
        "{act}"
    );
    assert!(
        act["queueLater"].as_str().unwrap().starts_with("1 queued"),
        "{act}"
    );
    assert_eq!(
        act["followed"],
        serde_json::json!(["stop", "reboot", "reset", "force"]),
        "{act}"
    );

    let console = look(&serve, &keys.console, &[]);
    assert_eq!(buttons(&console, "srv-off"), serde_json::json!(["console"]));
    assert_eq!(
        buttons(&console, "srv-00001"),
        serde_json::json!(["console"])
    );

    // The admin key sees every button that fits (srv-off runs by now),
    // all of them on a 390 px wide screen, and nothing wider than it.
    let shot = shots().join("dashboard-390.png");
    let admin = look(
        &serve,
        &keys.admin,
        &["--screenshot", shot.to_str().unwrap()],
    );
    assert_eq!(
        buttons(&admin, "srv-off"),
        serde_json::json!(["stop", "reboot", "reset", "force", "console", "suspend"]),
        "{admin}"
    );
    // Each server's Release and Delete besides the six above.
    assert_eq!(
        admin["look"]["manage"]["srv-off"],
        serde_json::json!(["release", "delete"]),
        "{admin}"
    );
    assert_eq!(admin["look"]["create"], true, "{admin}");
    for other in [&read, &act, &console] {
        assert_eq!(other["look"]["manage"]["srv-off"], none, "{other}");
        assert_eq!(other["look"]["create"], false, "{other}");
    }
    // Each server's name is a button too (its detail view).
    assert_eq!(admin["narrow"]["buttons"], 18, "{admin}");
    assert_eq!(admin["narrow"]["buttonsInside"], true, "{admin}");
    assert!(
        admin["narrow"]["scrollWidth"].as_i64().unwrap() <= 390,
        "{admin}"
    );
}
