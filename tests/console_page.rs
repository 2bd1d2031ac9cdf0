//! The console page's session life in headless Chromium (driven by
//! tests/browser/session.mjs): a reload keeps the console and a second
//! browser gets none, an expired link says so, a console that went away
//! comes back without a click (with a countdown meanwhile), and a page
//! that cannot reach the console says why within 5 s. Brokered (the
//! default) and direct, on the simulator's console or a real Xvnc behind
//! websockify.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::browser::{Held, browser_ready, node};
use crate::support::serve::{Serve, keyed, link, serving};
use crate::support::vnc::VncServer;
use crate::test::{Env, Sim};

const SERVER: &str = "srv-00001";

/// session.mjs on the page of `path` for `server`, playing `scenario`
/// (with `extra` arguments); its report. `what` names the check.
fn session(
    serve: &Serve,
    path: &str,
    server: &str,
    scenario: &str,
    extra: &[&str],
    what: &str,
) -> Value {
    let url = url(serve, path);
    let mut args = vec!["--url", &url, "--server", server, "--scenario", scenario];
    args.extend_from_slice(extra);
    node("session.mjs", &args, || what.to_string())
}

/// [`session`] on a fresh link to `server`, made with `key`.
fn linked_session(
    serve: &Serve,
    key: &str,
    server: &str,
    scenario: &str,
    extra: &[&str],
    what: &str,
) -> Value {
    let path = link(serve, key, server);
    session(serve, &path, server, scenario, extra, what)
}

/// `hcc serve` in `mode` (`broker` or `direct`) with the settings given.
fn serve_in(env: &Env, sim: &Sim, mode: &str, settings: &[(&str, &str)]) -> Serve {
    env.ok(&["config", "set", "console_mode", mode]);
    for (key, value) in settings {
        env.ok(&["config", "set", key, value]);
    }
    Serve::start(env, sim, &[])
}

fn url(serve: &Serve, path: &str) -> String {
    format!("http://{}{path}", serve.addr)
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_reload_keeps_the_console_and_a_second_browser_gets_none() {
    if !browser_ready() {
        return;
    }
    let sim = Sim::start(&["--servers", "1"]);
    for mode in ["broker", "direct"] {
        let (env, keys) = keyed(&sim);
        let serve = serve_in(&env, &sim, mode, &[]);
        let report = linked_session(
            &serve,
            &keys.console,
            SERVER,
            "reload",
            &[],
            &format!("reloads in {mode} mode (serve log: {})", serve.log()),
        );
        // Opened by a POST; each reload a GET of the opened link (410, a
        // page without a secret) that connects again.
        assert_eq!(
            report["navigations"],
            serde_json::json!([
                {"method": "GET", "status": 200}, {"method": "POST", "status": 200},
                {"method": "GET", "status": 410}, {"method": "GET", "status": 410}
            ]),
            "{mode}: {report}"
        );
        assert_eq!(report["asksBeforeLeaving"], true, "{report}");
        assert_eq!(report["first"]["title"], "srv-00001 - connected");
        assert_eq!(report["firstStill"], "srv-00001 - connected");
        assert_eq!(report["second"]["title"], "srv-00001 - already opened");
        assert_eq!(report["second"]["websockets"], 0, "{report}");
        // One page session for the link: each reload took fresh
        // credentials through it, none opened a session of its own.
        let refreshes: i64 =
            env.value("SELECT refreshes FROM console_sessions ORDER BY id LIMIT 1");
        assert_eq!(refreshes, 2, "{mode}: {report}");
        let sessions: i64 = env.value("SELECT count(*) FROM console_sessions");
        if mode == "direct" {
            assert_eq!(sessions, 1, "{report}");
        }
        if mode == "broker" {
            // Each connection its own ticket (and row of the session log).
            let connections: i64 =
                env.value("SELECT count(*) FROM console_sessions WHERE connected_at IS NOT NULL");
            assert_eq!(connections, 3, "{report}");
        }
        eprintln!(
            "{mode}: reloads connected again in {} and {} ms",
            report["reloads"][0]["ms"], report["reloads"][1]["ms"]
        );
    }
}

#[test]
fn a_second_tab_of_a_session_takes_the_console_and_the_first_waits_for_a_click() {
    if !browser_ready() {
        return;
    }
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    let serve = serve_in(&env, &sim, "broker", &[]);
    let report = linked_session(
        &serve,
        &keys.console,
        SERVER,
        "replaced",
        &[],
        &format!("a second tab of the session (serve log: {})", serve.log()),
    );
    let elsewhere = &report["elsewhere"];
    assert_eq!(
        elsewhere["title"], "srv-00001 - opened elsewhere",
        "{report}"
    );
    assert!(
        elsewhere["status"]
            .as_str()
            .unwrap()
            .contains("opened again in another tab or window"),
        "{report}"
    );
    assert_eq!(elsewhere["button"], true, "{report}");
    assert_eq!(report["otherStillOpen"], true, "{report}");
    assert_eq!(report["back"]["title"], "srv-00001 - connected", "{report}");
    assert_eq!(report["otherClosed"], "replaced", "{report}");
    // One page session, three connections: each replaced by the next,
    // the last one's ended by the browser closing at the end.
    let db = env.db();
    let mut stmt = db
        .prepare(
            "SELECT coalesce(end_reason, stop_requested, 'live'), page_id FROM console_sessions
             WHERE connected_at IS NOT NULL ORDER BY id",
        )
        .unwrap();
    let rows: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let reasons: Vec<&str> = rows.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons,
        ["replaced", "replaced", "client closed"],
        "{report}"
    );
    assert!(rows.iter().all(|(_, page)| *page == rows[0].1), "{rows:?}");
}

#[test]
fn used_and_expired_links_say_which_with_what_to_do() {
    if !browser_ready() {
        return;
    }
    let (_sim, env, keys, serve) = serving(&["--servers", "1"]);
    let stale = link(&serve, &keys.console, SERVER);
    env.db()
        .execute(
            "UPDATE console_links SET expires_at = 1 WHERE opened_at IS NULL",
            [],
        )
        .unwrap();
    let report = session(
        &serve,
        &stale,
        SERVER,
        "message",
        &["--expect-text", "has expired"],
        "an expired link",
    );
    assert!(
        report["status"]
            .as_str()
            .unwrap()
            .contains("Open a new console from your control panel"),
        "{report}"
    );
    for method in ["GET", "POST"] {
        let reply = serve.request(method, &stale, None, None);
        assert_eq!(reply.status, 410, "{method}");
        assert!(reply.body.contains("link_expired") || reply.body.contains("has expired"));
        assert!(!reply.body.contains("already opened"), "{}", reply.body);
    }
    // Used: 410 too, but "already opened" (the page says it), not expired.
    let used = link(&serve, &keys.console, SERVER);
    assert_eq!(serve.request("POST", &used, None, None).status, 200);
    let again = serve.request("GET", &used, None, None);
    assert_eq!(again.status, 410);
    assert!(again.body.contains(r#""opened":true"#), "{}", again.body);
    assert!(
        !again.body.contains("session"),
        "no session in it: {}",
        again.body
    );
}

/// websockify in front of Xvnc killed under a connected page and started
/// again 4 s later: the page counts down, offers "Reconnect now", and is
/// connected again without a click, brokered and direct. Prints the time
/// from the drop, and from the restart, to connected again.
#[test]
fn a_console_that_went_away_comes_back_without_a_click() {
    if !browser_ready() {
        return;
    }
    let Some(mut vnc) = VncServer::start("s3cret!x") else {
        return;
    };
    let sim = vnc.sim(&["--servers", "1"]);
    for mode in ["broker", "direct"] {
        let (env, keys) = keyed(&sim);
        let serve = serve_in(&env, &sim, mode, &[]);
        let path = link(&serve, &keys.console, SERVER);
        let held = Held::start(
            "session.mjs",
            90,
            &[
                "--url",
                &url(&serve, &path),
                "--server",
                SERVER,
                "--scenario",
                "hold",
            ],
        );
        vnc.stop_websockify();
        // The console stays away 4 s (the point): the page counts down.
        std::thread::sleep(Duration::from_secs(4));
        vnc.restart_websockify();
        let restarted = epoch_ms();
        let report = held.finish();
        let after_restart = report["backAt"].as_u64().unwrap().saturating_sub(restarted);
        eprintln!(
            "console_reconnect {mode}: dropped for {} ms, connected again {after_restart} ms after websockify restarted; countdown {}",
            report["droppedForMs"], report["countdowns"]
        );
        assert!(
            report["countdowns"][0]
                .as_str()
                .unwrap()
                .contains("Reconnecting in"),
            "{report}"
        );
        // Within the backoff's next step after the restart (at most 8 s
        // here), generously.
        assert!(after_restart < 20_000, "{after_restart} ms: {report}");
    }
}

/// A brokered page whose connect hcc holds back (the server's console
/// requests for the minute are spent) says so and counts down: its
/// connect refused and recorded `rationed`, `/c/status` tells the page.
#[test]
fn a_rationed_page_says_so_and_counts_down() {
    if !browser_ready() {
        return;
    }
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    // One console request a minute for a server: an API client's takes it.
    let serve = serve_in(
        &env,
        &sim,
        "broker",
        &[("console_requests_per_server", "1")],
    );
    let path = link(&serve, &keys.console, SERVER);
    let taken = serve.post(&format!("/api/v1/servers/{SERVER}/console"), &keys.console);
    assert_eq!(taken.status, 200, "{}", taken.body);
    let report = session(
        &serve,
        &path,
        SERVER,
        "message",
        &[
            "--expect-text",
            "hcc is rationing requests to Hetzner, retrying in",
        ],
        "a rationed page",
    );
    assert_eq!(report["state"], "reconnecting", "{report}");
    let reason: String = env.value(
        "SELECT end_reason FROM console_sessions WHERE end_reason IS NOT NULL ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(reason, "rationed");
}

/// A page whose console cannot be reached says why within 5 s: the
/// server is off; the console's host is not in `console_hosts`; hcc
/// cannot reach Hetzner.
#[test]
fn a_page_that_cannot_reach_the_console_says_why() {
    if !browser_ready() {
        return;
    }
    let sim = Sim::start(&["--servers", "2", "--action-ms", "0"]);
    let (env, keys) = keyed(&sim);
    let id = sim.api("GET", "/servers?name=srv-00001", None).json()["servers"][0]["id"]
        .as_i64()
        .unwrap();
    let off = sim.api("POST", &format!("/servers/{id}/actions/poweroff"), None);
    assert_eq!(off.status, 201, "{}", off.body);
    assert!(crate::test::eventually(Duration::from_secs(5), || {
        sim.api("GET", &format!("/servers/{id}"), None).json()["server"]["status"] == "off"
    }));
    let run = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    assert!(run.status.success(), "{run:?}");
    for mode in ["broker", "direct"] {
        let serve = serve_in(&env, &sim, mode, &[]);
        let report = linked_session(
            &serve,
            &keys.console,
            SERVER,
            "message",
            &["--expect-text", "srv-00001 is off"],
            &format!("a server that is off, {mode}"),
        );
        eprintln!(
            "{mode}: \"{}\" after {} ms",
            report["status"], report["saidAfter"]
        );
        assert_eq!(report["state"], "reconnecting", "{report}");
    }

    // A console host not in console_hosts: brokered, the page says so; direct,
    // the link's answer does (and the link stays usable).
    let (env, keys) = keyed(&sim);
    let hosts = [("console_hosts", "wss://web-console.hetzner.cloud")];
    let serve = serve_in(&env, &sim, "broker", &hosts);
    let report = linked_session(
        &serve,
        &keys.console,
        "srv-00002",
        "message",
        &["--expect-text", "console_hosts"],
        "a console host not allowed, brokered",
    );
    assert!(
        !report["status"].as_str().unwrap().contains("127.0.0.1"),
        "{report}"
    );
    let reason: String = env.value(
        "SELECT end_reason FROM console_sessions WHERE end_reason IS NOT NULL ORDER BY id DESC LIMIT 1",
    );
    assert!(reason.contains("console_hosts"), "{reason}");
    drop(serve);
    let serve = serve_in(&env, &sim, "direct", &hosts);
    let path = link(&serve, &keys.console, "srv-00002");
    let page = serve.request("POST", &path, None, None);
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("console_hosts"), "{}", page.body);
    assert_eq!(serve.request("GET", &path, None, None).status, 200);

    // Hetzner away (the simulator stopped): brokered, the page says so.
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    let serve = serve_in(&env, &sim, "broker", &[]);
    let path = link(&serve, &keys.console, SERVER);
    drop(sim);
    let report = session(
        &serve,
        &path,
        SERVER,
        "message",
        &["--expect-text", "cannot reach Hetzner"],
        &format!("Hetzner away (serve log: {})", serve.log()),
    );
    eprintln!(
        "Hetzner away: \"{}\" after {} ms",
        report["status"], report["saidAfter"]
    );
}

/// The console page reviewed by axe (with its power panel: an admin's
/// link may power) and its "Reset root password": confirmed, reset by
/// hcc's worker through `POST /c/password`, the password shown once, then
/// typed into the console by its button (the simulator's console records
/// what was typed).
#[test]
fn the_console_page_resets_the_root_password_and_types_it() {
    if !browser_ready() {
        return;
    }
    let sim = Sim::start(&["--servers", "1", "--action-ms", "0"]);
    let (env, keys) = keyed(&sim);
    env.ok(&["config", "set", "console_mode", "broker"]);
    let serve = Serve::start(&env, &sim, &["--worker", "--cycle", "3600"]);
    let path = link(&serve, &keys.admin, SERVER);
    let shot = crate::support::browser::shots().join("console-review.png");
    let report = node(
        "a11y.mjs",
        &[
            "--url",
            &url(&serve, &path),
            "--console",
            "1",
            "--password",
            "1",
            "--screenshot",
            shot.to_str().unwrap(),
        ],
        || {
            format!(
                "the console page's password reset (serve log: {})",
                serve.log()
            )
        },
    );
    assert_eq!(report["power"], true, "{report}");
    crate::dashboard::assert_no_violations(
        &report,
        &["console", "consolePower", "consolePassword"],
    );
    let steps = &report["passwordSteps"];
    assert_eq!(
        steps["question"],
        format!("Reset root password {SERVER}?"),
        "{steps}"
    );
    // The password the worker got, as the panel finds it in `servers`.
    let stored: String = env.value(&format!(
        "SELECT root_password FROM servers WHERE name = '{SERVER}'"
    ));
    assert_eq!(steps["password"], stored.as_str(), "{steps}");
    // Handed out once: the row keeps it no more.
    let kept: i64 = env.value("SELECT count(*) FROM commands WHERE root_password IS NOT NULL");
    assert_eq!(kept, 0);
    // Typed whole into the console, and the Type text field emptied after.
    assert_eq!(steps["typed"], stored.len(), "{steps}");
    assert_eq!(steps["typeField"], "", "{steps}");
    let console = sim
        .control("GET", &format!("/_sim/consoles/{SERVER}"), None)
        .json();
    assert!(
        console["typed"].as_str().unwrap_or("").contains(&stored),
        "{console}"
    );
    // Never in serve's log.
    assert!(!serve.log().contains(&stored), "{}", serve.log());
}
