//! One-time links that scanners cannot burn (a GET or HEAD never uses a
//! link up, a POST does, once), and console access cut from another
//! process: `hcc revoke`, `hcc suspend`, `hcc resume` while `hcc serve`
//! runs; `hcc sessions` and `GET /api/v1/sessions`.

use serde_json::Value;

use crate::support::serve::{
    Serve, link, one_wins_at_once, open_link, page_data, serving, serving_with,
};
use std::time::Duration;

use crate::test::{Env, Sim, Worker, eventually};

fn post(serve: &Serve, path: &str) -> u16 {
    serve.request("POST", path, None, None).status
}

#[test]
fn gets_and_heads_never_use_a_link_up_and_one_post_wins() {
    // Direct mode: opening a link asks Hetzner for the console at once,
    // so the simulator counts what each open did.
    let (sim, env, keys, serve) = serving_with(&["--servers", "1"], &[("console_mode", "direct")]);

    // A mail scanner and a chat unfurler fetch the link ten times each.
    let path = link(&serve, &keys.console, "srv-00001");
    for _ in 0..10 {
        for method in ["GET", "HEAD"] {
            let reply = serve.request(method, &path, None, None);
            assert_eq!(reply.status, 200, "{method}: {}", reply.body);
            assert!(!reply.body.contains("hcc-console"), "{}", reply.body);
        }
    }
    let opened: i64 = env.value("SELECT count(*) FROM console_links WHERE opened_at IS NOT NULL");
    assert_eq!(opened, 0, "a GET or HEAD used the link up");
    let page = serve.request("POST", &path, None, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page_data(&page.body)["server"], "srv-00001");
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    assert_eq!(post(&serve, &path), 410);

    // Two POSTs, one after the other: one wins.
    let path = link(&serve, &keys.console, "srv-00001");
    let mut statuses = [post(&serve, &path), post(&serve, &path)];
    statuses.sort();
    assert_eq!(statuses, [200, 410]);

    // Fifty at once: exactly one wins, and only it asked for a console.
    let path = link(&serve, &keys.console, "srv-00001");
    let before = consoles(&sim);
    one_wins_at_once(50, 410, || post(&serve, &path));
    assert_eq!(consoles(&sim), before + 1);
    // The landing page names no token; no log line does either.
    let token = path.trim_start_matches("/c/");
    assert!(!serve.log().contains(token), "{}", serve.log());
}

/// Broker mode (the default): opening a link asks Hetzner nothing yet
/// (hcc asks when the page's websocket comes), so what counts is the page
/// sessions and tickets issued: of two POSTs one wins; of fifty at once
/// exactly one gets the page, one page session and one ticket.
#[test]
fn in_broker_mode_one_post_of_fifty_gets_the_one_ticket() {
    let (sim, env, keys, serve) = serving(&["--servers", "1"]);
    let sessions_of = |path: &str| -> (i64, i64) {
        let token = path.trim_start_matches("/c/");
        let hash = hcc_hash(token);
        env.db()
            .query_row(
                "SELECT count(*), count(s.ticket_hash) FROM console_sessions s
                 JOIN console_links l ON l.id = s.link_id WHERE l.token_hash = ?1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };

    let path = link(&serve, &keys.console, "srv-00001");
    for _ in 0..10 {
        for method in ["GET", "HEAD"] {
            assert_eq!(serve.request(method, &path, None, None).status, 200);
        }
    }
    assert_eq!(sessions_of(&path), (0, 0), "a GET or HEAD opened the link");
    let mut statuses = [post(&serve, &path), post(&serve, &path)];
    statuses.sort();
    assert_eq!(statuses, [200, 410]);
    assert_eq!(sessions_of(&path), (1, 1));

    let path = link(&serve, &keys.console, "srv-00001");
    let answers: Vec<crate::test::Http> = std::thread::scope(|scope| {
        let opens: Vec<_> = (0..50)
            .map(|_| scope.spawn(|| serve.request("POST", &path, None, None)))
            .collect();
        opens.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(answers.iter().filter(|a| a.status == 410).count(), 49);
    let ws = page_data(&won[0].body)["ws"].as_str().unwrap().to_string();
    assert!(ws.starts_with("../ws/"), "{ws}");
    assert_eq!(sessions_of(&path), (1, 1));
    assert_eq!(consoles(&sim), 0, "no console asked of Hetzner yet");
}

/// The store's hash of a token, as hcc keeps it (hex SHA-256).
fn hcc_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn consoles(sim: &Sim) -> usize {
    sim.control("GET", "/_sim/consoles", None).json()["consoles"]
        .as_array()
        .map_or(0, Vec::len)
}

/// A brokered session that is connected now, as the broker records one.
fn fake_live_session(env: &Env, hash: &str, server: &str) {
    env.db()
        .execute(
            "INSERT INTO console_sessions
                 (session_hash, server, server_id, created_by, remote, started_at,
                  last_seen_at, expires_at, mode, user_agent, connected_at,
                  bytes_to_client, bytes_from_client)
             VALUES (?1, ?2, 1, 'console-key', '192.0.2.7', strftime('%s', 'now'),
                     strftime('%s', 'now'), strftime('%s', 'now') + 600, 'broker',
                     'Mozilla/5.0 (test)', strftime('%s', 'now'), 12345, 678)",
            [hash, server],
        )
        .unwrap();
}

fn stop_requested(env: &Env, hash: &str) -> Option<String> {
    env.db()
        .query_row(
            "SELECT stop_requested FROM console_sessions WHERE session_hash = ?1",
            [hash],
            |r| r.get(0),
        )
        .unwrap()
}

fn refresh(serve: &Serve, session: &str) -> u16 {
    serve.refresh(session).status
}

fn open_session(serve: &Serve, key: &str, server: &str) -> String {
    open_link(serve, key, server).1["session"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn revoke_suspend_and_resume_from_another_process() {
    // Direct mode: opening a link asks Hetzner for the console at once,
    // so the simulator counts what each open did.
    let (sim, env, keys, serve) = serving_with(&["--servers", "2"], &[("console_mode", "direct")]);

    let unopened = link(&serve, &keys.console, "srv-00001");
    let other = link(&serve, &keys.console, "srv-00002");
    let session = open_session(&serve, &keys.console, "srv-00001");
    fake_live_session(&env, "live-1", "srv-00001");
    fake_live_session(&env, "live-2", "srv-00002");

    // hcc revoke, a process of its own.
    let run = env.run(&["revoke", "srv-00001"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("1 unopened link(s) void") && run.stderr.contains("1 live session(s)"),
        "{run:?}"
    );
    assert_eq!(serve.request("GET", &unopened, None, None).status, 410);
    assert_eq!(post(&serve, &unopened), 410);
    assert_eq!(refresh(&serve, &session), 410);
    assert_eq!(stop_requested(&env, "live-1").as_deref(), Some("revoked"));
    assert_eq!(stop_requested(&env, "live-2"), None);
    assert_eq!(serve.request("GET", &other, None, None).status, 200);
    // A new link works at once after a revoke.
    let later = link(&serve, &keys.console, "srv-00001");
    assert_eq!(serve.request("GET", &later, None, None).status, 200);
    let session = open_session(&serve, &keys.console, "srv-00001");

    // hcc suspend: links give 403 and stay unused, the API refuses.
    fake_live_session(&env, "live-3", "srv-00001");
    let run = env.run(&["suspend", "srv-00001"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(stop_requested(&env, "live-3").as_deref(), Some("suspended"));
    let check_suspended = |serve: &Serve| {
        for method in ["GET", "HEAD", "POST"] {
            let reply = serve.request(method, &later, None, None);
            assert_eq!(reply.status, 403, "{method}: {}", reply.body);
        }
        for route in ["console-link", "console"] {
            let reply = serve.post(&format!("/api/v1/servers/srv-00001/{route}"), &keys.console);
            assert_eq!(reply.status, 403, "{route}: {}", reply.body);
            assert_eq!(reply.json()["error"]["code"], "suspended");
        }
        let queued = serve.post("/api/v1/servers/srv-00001/actions/console", &keys.act);
        assert_eq!(queued.status, 403, "console action: {}", queued.body);
        // Refused however often it is asked (no refresh is spent).
        for _ in 0..2 {
            assert_eq!(refresh(serve, &session), 403);
        }
    };
    check_suspended(&serve);
    let opened: i64 = env.value("SELECT count(*) FROM console_links WHERE opened_at IS NULL AND expires_at > strftime('%s', 'now')");
    assert!(opened >= 2, "a refused link was used up");
    // It survives a restart.
    drop(serve);
    let serve = Serve::start(&env, &sim, &[]);
    check_suspended(&serve);
    // The other server is not affected.
    assert_eq!(post(&serve, &other), 200);

    // hcc resume: the same link opens now.
    let run = env.run(&["resume", "srv-00001"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(post(&serve, &later), 200);
    assert_eq!(refresh(&serve, &session), 200);
    assert_eq!(
        serve
            .post("/api/v1/servers/srv-00001/console-link", &keys.console)
            .status,
        201
    );
    let run = env.run(&["resume", "srv-00001"]);
    assert!(
        run.code == 0 && run.stderr.contains("was not suspended"),
        "{run:?}"
    );

    // Names hcc does not know, and names that are no names.
    env.run(&["revoke", "no-such"]).fails(
        1,
        "hcc: no server named `no-such`, and no console link or session for one (hcc sync \
         refreshes the table)",
    );
    env.run(&["suspend", "no-such"]).fails(
        1,
        "hcc: no server named `no-such`, and no console link or session for one (hcc sync \
         refreshes the table)",
    );
    env.run(&["resume", "no-such"]).fails(
        1,
        "hcc: no server named `no-such`, and no console link or session for one (hcc sync \
         refreshes the table)",
    );
    env.run(&["suspend", "bad name"]).fails(
        2,
        "hcc: invalid server name `bad name`: only letters, digits, dashes and dots are allowed",
    );
}

#[test]
fn sessions_are_listed_without_secrets_and_cut_through_the_api() {
    // Direct mode: opening a link asks Hetzner for the console at once,
    // so the simulator counts what each open did.
    let (_sim, env, keys, serve) = serving_with(&["--servers", "2"], &[("console_mode", "direct")]);
    let session = open_session(&serve, &keys.console, "srv-00002");
    fake_live_session(&env, "live-hash-1", "srv-00001");

    // The CLI: a table, live only, JSON.
    let all = env.ok(&["sessions"]);
    assert!(all.starts_with("ID "), "{all}");
    for word in [
        "srv-00001",
        "srv-00002",
        "192.0.2.7",
        "Mozilla/5.0 (test)",
        "broker",
        "direct",
        "12345",
        "console-key",
    ] {
        assert!(all.contains(word), "{word} missing: {all}");
    }
    let live = env.ok(&["sessions", "--live"]);
    assert_eq!(live.lines().count(), 2, "{live}");
    assert!(
        live.contains("srv-00001") && !live.contains("srv-00002"),
        "{live}"
    );
    let json: Value = serde_json::from_str(&env.ok(&["sessions", "--json"])).unwrap();
    let rows = json["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["live"], true);
    assert_eq!(rows[0]["bytes_to_client"], 12345);
    assert_eq!(rows[1]["mode"], "direct");
    assert_eq!(rows[1]["link_id"], 1);
    let text = format!("{all}{live}{json}");
    let session_hash: String =
        env.value("SELECT session_hash FROM console_sessions WHERE mode = 'direct'");
    for secret in [session.as_str(), session_hash.as_str(), "live-hash-1"] {
        assert!(!text.contains(secret), "a secret in the listing: {text}");
    }

    // The API: admin only, ?live=1, bad queries refused.
    let reply = serve.get("/api/v1/sessions?live=1", &keys.admin);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let listed = reply.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["server"], "srv-00001");
    assert!(!reply.body.contains("live-hash-1"));
    let reply = serve.get("/api/v1/sessions", &keys.admin);
    assert_eq!(reply.json()["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(
        serve.get("/api/v1/sessions?limit=1", &keys.admin).json()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for bad in ["?live=maybe", "?limit=0", "?color=red"] {
        let reply = serve.get(&format!("/api/v1/sessions{bad}"), &keys.admin);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
    }
    assert_eq!(serve.get("/api/v1/sessions", &keys.console).status, 403);

    // Revoke, suspend and resume through the API.
    let reply = serve.post("/api/v1/servers/srv-00001/revoke", &keys.console);
    assert_eq!(reply.status, 403, "{}", reply.body);
    let reply = serve.post("/api/v1/servers/srv-00001/revoke", &keys.admin);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["revoked"]["stopped"], 1);
    assert_eq!(
        stop_requested(&env, "live-hash-1").as_deref(),
        Some("revoked")
    );
    let reply = serve.post("/api/v1/servers/srv-00002/suspend", &keys.admin);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["suspended_by"], "admin-key");
    let by: String = env.value("SELECT suspended_by FROM suspended WHERE server = 'srv-00002'");
    assert_eq!(by, "admin-key");
    assert_eq!(refresh(&serve, &session), 403);
    let reply = serve.post("/api/v1/servers/srv-00002/resume", &keys.admin);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["was_suspended"], true);
    for (path, status) in [
        ("/api/v1/servers/no-such/suspend", 404),
        ("/api/v1/servers/bad_name/suspend", 400),
    ] {
        assert_eq!(serve.post(path, &keys.admin).status, status, "{path}");
    }
}

#[test]
fn a_queued_console_for_a_suspended_server_fails_and_asks_hetzner_nothing() {
    let sim = Sim::start(&["--servers", "2"]);
    let env = Env::new();
    env.cmd(&["sync"]).envs(sim.client_env()).output().unwrap();
    env.ok(&["suspend", "srv-00001"]);
    let worker = Worker::start(&env, &sim, "3600");
    let refused: i64 = env
        .ok(&["push", "--id", "console", "srv-00001"])
        .trim()
        .parse()
        .unwrap();
    let allowed: i64 = env
        .ok(&["push", "--id", "console", "srv-00002"])
        .trim()
        .parse()
        .unwrap();
    let state =
        |id: i64| -> String { env.value(&format!("SELECT state FROM commands WHERE id = {id}")) };
    assert!(
        eventually(Duration::from_secs(15), || state(refused) == "failed"
            && state(allowed) == "done"),
        "{} {}\n{}",
        state(refused),
        state(allowed),
        worker.log()
    );
    let error: String = env.value(&format!("SELECT error FROM commands WHERE id = {refused}"));
    assert!(
        error.contains("suspended") && error.contains("hcc resume srv-00001"),
        "{error}"
    );
    assert_eq!(
        consoles(&sim),
        1,
        "only the other server's console was requested"
    );
    let password: Option<String> =
        env.value("SELECT console_password FROM servers WHERE name = 'srv-00001'");
    assert_eq!(password, None);
}

#[test]
fn sessions_are_listed_by_page_session_with_their_connections_on_request() {
    let (_sim, env, keys, serve) = serving(&["--servers", "2"]);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // A page that connected, connected again from elsewhere (the first
    // connection replaced) and is live; a page closed before it ever
    // connected (its ticket expired).
    env.db()
        .execute_batch(&format!(
            "INSERT INTO console_sessions
                 (id, page_id, session_hash, server, server_id, link_id, created_by, remote,
                  user_agent, started_at, last_seen_at, expires_at, mode, ticket_expires_at,
                  connected_at, ended_at, end_reason, bytes_to_client, bytes_from_client,
                  connection_remote, connection_user_agent)
             VALUES
              (1, 1, 'h1', 'srv-00001', 1, 5, 'console-key', '192.0.2.10', 'PageUA/1',
               {t} - 100, {t} - 50, {t} + 600, 'broker', {t} - 70,
               {t} - 90, {t} - 50, 'replaced', 1000, 10, '192.0.2.10', 'PageUA/1'),
              (2, 1, 'h2', 'srv-00001', 1, 5, 'console-key', '192.0.2.10', 'PageUA/1',
               {t} - 55, {t} - 5, {t} + 600, 'broker', {t} - 25,
               {t} - 50, NULL, NULL, 234, 5, '198.51.100.20', 'Elsewhere/2'),
              (3, 3, 'h3', 'srv-00002', 2, 6, 'console-key', '192.0.2.11', 'PageUA/1',
               {t} - 200, {t} - 200, {t} + 600, 'broker', {t} - 170,
               NULL, NULL, NULL, 0, 0, NULL, NULL);"
        ))
        .unwrap();

    // One row per page session; connections counted, bytes summed.
    let table = env.ok(&["sessions"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].contains("CONNECTIONS"), "{table}");
    assert!(
        lines[1].starts_with("3 ") && lines[1].contains("expired unused"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("1 ") && lines[2].contains("1234"),
        "{table}"
    );
    assert!(!table.contains("Elsewhere/2"), "{table}");
    // With --connections, each page's connections below it, each with its
    // own client.
    let table = env.ok(&["sessions", "--connections"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[2].starts_with("1 "), "{table}");
    assert!(
        lines[3].trim_start().starts_with("\\_ 1")
            && lines[3].contains("replaced")
            && lines[3].contains("1000"),
        "{table}"
    );
    assert!(
        lines[4].contains("198.51.100.20")
            && lines[4].contains("Elsewhere/2")
            && lines[4].contains("live"),
        "{table}"
    );
    let live = env.ok(&["sessions", "--live"]);
    assert_eq!(live.lines().count(), 2, "{live}");

    // JSON, from the CLI and the API alike.
    let json: Value =
        serde_json::from_str(&env.ok(&["sessions", "--json", "--connections"])).unwrap();
    let api = serve.get("/api/v1/sessions?connections=1", &keys.admin);
    assert_eq!(api.status, 200, "{}", api.body);
    for body in [json, api.json()] {
        let pages = body["sessions"].as_array().unwrap();
        assert_eq!(pages.len(), 2, "{body}");
        let (unused, page) = (&pages[0], &pages[1]);
        assert_eq!(unused["end_reason"], "expired unused");
        assert_eq!(unused["ended_at"], t - 170);
        assert_eq!(unused["connection_count"], 0);
        assert_eq!(page["id"], 1);
        assert_eq!(page["live"], true);
        assert_eq!(page["ended_at"], Value::Null);
        assert_eq!(page["connection_count"], 2);
        assert_eq!(page["connected_at"], t - 90);
        assert_eq!(page["bytes_to_client"], 1234);
        assert_eq!(page["remote"], "192.0.2.10");
        let connections = page["connections"].as_array().unwrap();
        assert_eq!(connections.len(), 2);
        assert_eq!(connections[0]["end_reason"], "replaced");
        assert_eq!(connections[1]["connection_remote"], "198.51.100.20");
        assert_eq!(connections[1]["connection_user_agent"], "Elsewhere/2");
        assert_eq!(connections[1]["page_id"], 1);
        assert!(!body.to_string().contains("\"h1\""), "{body}");
    }
    // Without `connections`, the count only.
    let plain = serve.get("/api/v1/sessions", &keys.admin).json();
    assert_eq!(plain["sessions"][1]["connection_count"], 2);
    assert!(plain["sessions"][1].get("connections").is_none(), "{plain}");
    let live = serve.get("/api/v1/sessions?live=1", &keys.admin).json();
    assert_eq!(live["sessions"].as_array().unwrap().len(), 1);
    let bad = serve.get("/api/v1/sessions?connections=all", &keys.admin);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body.contains("`connections` must be 1 or 0"),
        "{}",
        bad.body
    );
}
