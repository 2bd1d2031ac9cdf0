//! hcc as the one funnel between many customers and one Hetzner project,
//! tried as a hostile customer would: console pages that keep
//! reconnecting cannot take what queued commands need, hundreds of
//! sessions at a low open-file limit are refused cleanly and leave no row
//! live, and a server released or deleted takes its consoles with it for
//! good.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::Message;

use crate::flood::raise_fd_limit;
use crate::support::serve::{Serve, Ws, connect, keyed, link, open_link, serving, serving_with};
use crate::test::{Env, HCC, Sim, Worker, eventually};

/// A console page: its session token and its next `/ws/TICKET` path.
struct Page {
    session: String,
    ws: String,
}

/// Opens a fresh console link of `server` as the page does (a POST).
fn open_page(serve: &Serve, key: &str, server: &str) -> Page {
    let (_, data) = open_link(serve, key, server);
    Page {
        session: data["session"].as_str().unwrap().to_string(),
        ws: ws_path(&data),
    }
}

fn ws_path(data: &Value) -> String {
    let ws = data["ws"].as_str().expect("a ws path in broker mode");
    ws.strip_prefix("..").expect("relative to /c/").to_string()
}

/// `POST /c/refresh` of a page: a new ticket, or the refusal's status.
fn refresh(serve: &Serve, page: &mut Page) -> Result<(), u16> {
    let reply = serve.refresh(&page.session);
    if reply.status != 200 {
        return Err(reply.status);
    }
    page.ws = ws_path(&reply.json());
    Ok(())
}

/// Reads until the console's first RFB bytes (its version) have come:
/// the broker reached the console and relays.
fn relaying(ws: &mut Ws) -> bool {
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) if !b.is_empty() => return b.starts_with(b"RFB "),
            Ok(Message::Close(_)) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// Through the client's side of the handshake (security None, as hcc
/// offers it, and ClientInit) to the server's ServerInit: the session
/// relays from here on.
fn handshake(ws: &mut Ws) -> bool {
    let mut got = Vec::new();
    let mut read = |ws: &mut Ws, n: usize| -> Option<Vec<u8>> {
        while got.len() < n {
            match ws.read() {
                Ok(Message::Binary(b)) => got.extend_from_slice(&b),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
        Some(got.drain(..n).collect())
    };
    let send = |ws: &mut Ws, bytes: &[u8]| ws.send(Message::binary(bytes.to_vec())).is_ok();
    if read(ws, 12).as_deref() != Some(b"RFB 003.008\n".as_slice()) {
        return false;
    }
    send(ws, b"RFB 003.008\n");
    if read(ws, 2).as_deref() != Some([1u8, 1].as_slice()) {
        return false;
    }
    send(ws, &[1]);
    if read(ws, 4).as_deref() != Some([0u8, 0, 0, 0].as_slice()) {
        return false;
    }
    send(ws, &[1]);
    let Some(init) = read(ws, 24) else {
        return false;
    };
    let name = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
    read(ws, name as usize).is_some()
}

/// Waits for the end of a connection; how it ended.
fn closed(ws: &mut Ws) -> String {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return format!("{frame:?}"),
            Ok(_) => {}
            Err(e) => return e.to_string(),
        }
    }
}

/// Why the connected session of `server` ended, once it is recorded: the
/// relay closes its client first, then writes its end.
fn end_reason(env: &Env, server: &str) -> Option<String> {
    let reason = || -> Option<String> {
        env.db()
            .query_row(
                "SELECT end_reason FROM console_sessions
                 WHERE server = ?1 AND connected_at IS NOT NULL",
                [server],
                |r| r.get(0),
            )
            .ok()
            .flatten()
    };
    eventually(Duration::from_secs(2), || reason().is_some());
    reason()
}

fn live_rows(env: &Env) -> i64 {
    env.value(
        "SELECT count(*) FROM console_sessions WHERE connected_at IS NOT NULL AND ended_at IS NULL",
    )
}

fn command_state(env: &Env, id: i64) -> String {
    env.value(&format!("SELECT state FROM commands WHERE id = {id}"))
}

#[test]
fn pages_reconnecting_on_a_nearly_empty_bucket_leave_queued_commands_their_share() {
    // 60 requests an hour: one a minute comes back. Six pages
    // reconnecting every 3 s would spend it all within half a minute.
    let sim = Sim::start(&[
        "--servers",
        "7",
        "--rate-limit",
        "60/h",
        "--action-ms",
        "200",
    ]);
    let (env, keys) = keyed(&sim);
    let serve = Serve::start(&env, &sim, &[]);
    let mut worker = Worker::start(&env, &sim, "600");
    let pages: Vec<Page> = (1..=6)
        .map(|n| open_page(&serve, &keys.console, &format!("srv-0000{n}")))
        .collect();
    let started = Instant::now();
    let hammer = Duration::from_secs(40);
    let (reboot, waited) = std::thread::scope(|scope| {
        for mut page in pages {
            let serve = &serve;
            scope.spawn(move || {
                while started.elapsed() < hammer {
                    if let Ok(mut ws) = connect(serve, &page.ws) {
                        relaying(&mut ws);
                    }
                    // A page reconnects every 3 s (the point).
                    std::thread::sleep(Duration::from_secs(3));
                    while refresh(serve, &mut page).is_err() && started.elapsed() < hammer {
                        std::thread::sleep(Duration::from_secs(3));
                    }
                }
            });
        }
        // 30 s in, another customer's reboot is queued.
        std::thread::sleep(Duration::from_secs(30));
        env.ok(&["push", "reboot", "srv-00007"]);
        let id: i64 = env.value("SELECT max(id) FROM commands WHERE cmd = 'reboot'");
        let queued = Instant::now();
        eventually(Duration::from_secs(30), || {
            command_state(&env, id) == "done"
        });
        (id, queued.elapsed())
    });
    let state = command_state(&env, reboot);
    assert_eq!(state, "done", "{}", worker.log());
    assert!(
        waited <= Duration::from_secs(5),
        "the reboot took {waited:?} while pages reconnected\n{}",
        worker.log()
    );
    // The consoles were rationed, not failed without a word: the record
    // says so, and the sim never answered a 429.
    let stats = sim.stats();
    assert_eq!(stats["rate_limited"], 0, "{stats}");
    let fetched = stats["requests"].as_u64().unwrap();
    assert!(fetched <= 60, "{stats}");
    // What the worker keeps, as `hcc status` says it: a fifth of 60.
    let status: Value = serde_json::from_str(&env.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["rate_budget"]["for_commands"], 12, "{status}");
    worker.stop();
}

#[test]
fn four_hundred_sessions_at_1024_descriptors_are_refused_cleanly_and_none_stays_live() {
    if !crate::test::require_program("prlimit") {
        return;
    }
    raise_fd_limit();
    let sim = Sim::start(&["--servers", "1"]);
    let (env, keys) = keyed(&sim);
    for (key, value) in [
        ("max_console_sessions_per_server", "1000"),
        ("max_console_sessions_per_key", "1000"),
        ("console_requests_per_server", "3600"),
    ] {
        env.ok(&["config", "set", key, value]);
    }
    let serve = Serve::start_command(
        &env,
        std::process::Command::new("prlimit")
            .args([
                "--nofile=1024:1024",
                HCC,
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .env("HCC_HOME", env.home())
            .envs(sim.client_env()),
    );
    let pages: Vec<Page> = (0..400)
        .map(|_| open_page(&serve, &keys.console, "srv-00001"))
        .collect();
    let outcomes: Vec<(Option<Ws>, Result<(), u16>)> = std::thread::scope(|scope| {
        let runs: Vec<_> = pages
            .iter()
            .map(|page| {
                let serve = &serve;
                scope.spawn(move || match connect(serve, &page.ws) {
                    Ok(mut ws) => {
                        if relaying(&mut ws) {
                            (Some(ws), Ok(()))
                        } else {
                            (None, Err(1))
                        }
                    }
                    Err(status) => (None, Err(status)),
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let open = outcomes.iter().filter(|(_, r)| r.is_ok()).count();
    let refused: Vec<u16> = outcomes.iter().filter_map(|(_, r)| r.err()).collect();
    let log = serve.log();
    assert!(
        open >= 100,
        "{open} sessions relayed, refusals {refused:?}\n{log}"
    );
    let reasons = || -> Vec<String> {
        let db = env.db();
        let mut stmt = db
            .prepare(
                "SELECT DISTINCT coalesce(end_reason, '-') FROM console_sessions
                 WHERE end_reason IS NOT 'limit'",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Refused at the door (503), or admitted and failed at the console
    // (the simulator, like Hetzner, lets a console URL go unused for only
    // so long; 1 here): nothing else.
    assert!(
        refused.iter().all(|s| *s == 503 || *s == 1),
        "refusals other than 503: {refused:?}, {:?}\n{log}",
        reasons()
    );
    for trouble in [
        "Too many open files",
        "unable to open database file",
        "panicked",
    ] {
        assert!(!log.contains(trouble), "{trouble} in\n{log}");
    }
    // Each refusal is on record as such, each failure with its reason.
    let limited: i64 =
        env.value("SELECT count(*) FROM console_sessions WHERE end_reason = 'limit'");
    assert_eq!(
        limited as usize,
        refused.iter().filter(|s| **s == 503).count()
    );
    assert!(limited >= 100, "{limited} refused");
    let failed: i64 =
        env.value("SELECT count(*) FROM console_sessions WHERE end_reason LIKE 'error: %'");
    assert_eq!(failed as usize, refused.iter().filter(|s| **s == 1).count());
    assert_eq!(live_rows(&env) as usize, open);
    drop(outcomes);
    assert!(
        eventually(Duration::from_secs(20), || live_rows(&env) == 0),
        "{} rows still live after every client closed",
        live_rows(&env)
    );
    let lying: i64 = env.value(
        "SELECT count(*) FROM console_sessions WHERE end_reason LIKE '%stopped without ending%'",
    );
    assert_eq!(lying, 0);
}

fn power(serve: &Serve, session: &str) -> u16 {
    let body = json!({ "session": session, "verb": "reboot" }).to_string();
    serve.request("POST", "/c/power", Some(&body), None).status
}

#[test]
fn a_released_server_ends_its_consoles_within_a_second_and_adoption_revives_none() {
    let (sim, env, keys, serve) = serving(&["--servers", "2"]);
    let page = open_page(&serve, &keys.admin, "srv-00001");
    let unopened = link(&serve, &keys.admin, "srv-00001");
    let mut ws = connect(&serve, &page.ws).unwrap();
    assert!(handshake(&mut ws));
    let released = Instant::now();
    let out = env
        .cmd(&["deltag", "srv-00001"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let how = closed(&mut ws);
    assert!(
        released.elapsed() < Duration::from_millis(1500),
        "the relay ran {:?} after the release ({how})",
        released.elapsed()
    );
    assert!(
        eventually(Duration::from_secs(2), || live_rows(&env) == 0),
        "a relay of a released server is live"
    );
    let reasons: Vec<String> =
        env.column("SELECT end_reason FROM console_sessions WHERE connected_at IS NOT NULL");
    assert_eq!(reasons, ["released"]);
    // Adopted again (for the next customer): the old page gets nothing.
    let out = env
        .cmd(&["settag", "srv-00001"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut old = Page {
        session: page.session.clone(),
        ws: String::new(),
    };
    assert_eq!(refresh(&serve, &mut old), Err(410));
    assert_eq!(power(&serve, &page.session), 410);
    let opened = serve.request("POST", &unopened, None, None);
    assert_eq!(opened.status, 410, "{}", opened.body);
    let status = serve.request(
        "POST",
        "/c/status",
        Some(&json!({ "session": page.session }).to_string()),
        None,
    );
    assert_eq!(status.json()["state"], "ended", "{}", status.body);

    // The other server, released behind hcc's back (at Hetzner), ends at
    // the next sync.
    let other = open_page(&serve, &keys.console, "srv-00002");
    let mut ws = connect(&serve, &other.ws).unwrap();
    assert!(handshake(&mut ws));
    let id: i64 = env.value("SELECT id FROM servers WHERE name = 'srv-00002'");
    let unlabelled = sim.api("PUT", &format!("/servers/{id}"), Some(r#"{"labels":{}}"#));
    assert_eq!(unlabelled.status, 200, "{}", unlabelled.body);
    let out = env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    closed(&mut ws);
    assert_eq!(end_reason(&env, "srv-00002").as_deref(), Some("released"));
}

#[test]
fn a_deleted_server_ends_its_consoles_and_the_simulator_drops_its_viewers() {
    let (sim, env, keys, serve) = serving(&["--servers", "2"]);
    let page = open_page(&serve, &keys.console, "srv-00001");
    let mut ws = connect(&serve, &page.ws).unwrap();
    assert!(handshake(&mut ws));
    let viewers = || sim.control("GET", "/_sim/consoles/srv-00001", None).json()["clients"].clone();
    assert_eq!(viewers(), 1);
    let out = env
        .cmd(&["kill", "--yes", "srv-00001"])
        .envs(sim.client_env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    closed(&mut ws);
    assert_eq!(end_reason(&env, "srv-00001").as_deref(), Some("deleted"));
    let mut old = Page {
        session: page.session,
        ws: String::new(),
    };
    assert_eq!(refresh(&serve, &mut old), Err(410));

    // Deleted behind hcc's back (at Hetzner): the simulator cuts its
    // console's viewers off, so hcc's relay ends at once.
    let page = open_page(&serve, &keys.console, "srv-00002");
    let mut ws = connect(&serve, &page.ws).unwrap();
    assert!(handshake(&mut ws));
    let id: i64 = env.value("SELECT id FROM servers WHERE name = 'srv-00002'");
    let deleted = sim.api("DELETE", &format!("/servers/{id}"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let started = Instant::now();
    closed(&mut ws);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        end_reason(&env, "srv-00002").as_deref(),
        Some("upstream closed")
    );
}

#[test]
fn caps_per_server_and_per_key_refuse_with_a_reason_the_page_can_say() {
    let (_sim, env, keys, serve) = serving_with(
        &["--servers", "3"],
        &[
            ("max_console_sessions_per_server", "2"),
            ("max_console_sessions_per_key", "3"),
        ],
    );
    let mut held = Vec::new();
    for _ in 0..2 {
        let page = open_page(&serve, &keys.console, "srv-00001");
        let mut ws = connect(&serve, &page.ws).unwrap();
        assert!(relaying(&mut ws));
        held.push(ws);
    }
    let third = open_page(&serve, &keys.console, "srv-00001");
    assert_eq!(connect(&serve, &third.ws).err(), Some(429));
    let status = serve.request(
        "POST",
        "/c/status",
        Some(&json!({ "session": third.session }).to_string()),
        None,
    );
    let said = status.json();
    assert_eq!(said["state"], "live", "{said}");
    assert_eq!(said["reason"], "limit", "{said}");
    // Another server of the same key: one more, then the key's cap.
    let page = open_page(&serve, &keys.console, "srv-00002");
    let mut ws = connect(&serve, &page.ws).unwrap();
    assert!(relaying(&mut ws));
    held.push(ws);
    let page = open_page(&serve, &keys.console, "srv-00003");
    assert_eq!(connect(&serve, &page.ws).err(), Some(429));
    // Another key is not held back by this one's.
    let page = open_page(&serve, &keys.admin, "srv-00003");
    let mut ws = connect(&serve, &page.ws).unwrap();
    assert!(relaying(&mut ws));
    // One closes: the refused page gets in on its next try.
    drop(held.remove(0));
    assert!(eventually(Duration::from_secs(5), || live_rows(&env) == 3));
    let mut third = third;
    // Waits out the 3 s between a session's refreshes.
    std::thread::sleep(Duration::from_millis(3100));
    refresh(&serve, &mut third).unwrap();
    let mut ws = connect(&serve, &third.ws).unwrap();
    assert!(relaying(&mut ws));
}

#[test]
fn a_link_opened_while_rationed_stays_usable_in_direct_mode() {
    let (_sim, env, keys, serve) = serving_with(
        &["--servers", "1"],
        &[
            ("console_mode", "direct"),
            ("console_requests_per_server", "1"),
        ],
    );
    // An API client takes the server's one console request of the minute.
    let taken = serve.post("/api/v1/servers/srv-00001/console", &keys.console);
    assert_eq!(taken.status, 200, "{}", taken.body);
    let path = link(&serve, &keys.console, "srv-00001");
    let opened = serve.request("POST", &path, None, None);
    assert_eq!(opened.status, 429, "{}", opened.body);
    assert!(
        opened.body.contains("rationing requests to Hetzner"),
        "{}",
        opened.body
    );
    // Not used up: a GET still offers to open it, not "already opened".
    let landing = serve.request("GET", &path, None, None);
    assert_eq!(landing.status, 200, "{}", landing.body);
    let sessions: i64 = env.value("SELECT count(*) FROM console_sessions");
    assert_eq!(sessions, 0);
}
