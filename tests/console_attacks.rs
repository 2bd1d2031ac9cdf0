//! A hostile client and a hostile console server against the broker
//! (`/ws/TICKET`): one ticket raced by many upgrades, a client that
//! vanishes before the 101, RFB bytes pipelined behind the upgrade request,
//! and an upstream that never answers. Every session that claimed a ticket
//! ends with a recorded reason; no secret reaches the log.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};

use crate::support::serve::{
    Serve, link, open_link, page_data, raw, replace_server, serving, status_of,
};
use crate::support::vnc::hcc_vnc;
use crate::test::{Env, Sim, eventually};

/// `hcc serve` on a simulator whose console is its own (or `upstream`).
fn start(upstream: Option<&str>) -> (Sim, Env, crate::support::serve::Keys, Serve) {
    let mut args = vec!["--servers", "1"];
    if let Some(url) = upstream {
        args.extend(["--console-upstream", url, "--console-password", "pw123456"]);
    }
    let (sim, env, keys, serve) = serving(&args);
    (sim, env, keys, serve)
}

/// A fresh link opened by POST: its `/ws/TICKET` path.
fn ticket(serve: &Serve, key: &str) -> String {
    let path = link(serve, key, "srv-00001");
    let page = serve.request("POST", &path, None, None);
    assert_eq!(page.status, 200, "{}", page.body);
    let ws = page_data(&page.body)["ws"].as_str().unwrap().to_string();
    ws.trim_start_matches("..").to_string()
}

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n"
    )
}

/// Sessions that connected but have no end yet.
fn open_sessions(env: &Env) -> i64 {
    env.value(
        "SELECT count(*) FROM console_sessions WHERE connected_at IS NOT NULL AND ended_at IS NULL",
    )
}

/// Whether every session that connected has ended with a reason (one
/// query: a session may connect between two).
fn ended_with_reasons(env: &Env) -> bool {
    let reasons = reasons(env);
    !reasons.is_empty() && reasons.iter().all(Option::is_some)
}

/// The end reasons of the sessions that connected, oldest first.
fn reasons(env: &Env) -> Vec<Option<String>> {
    env.column("SELECT end_reason FROM console_sessions WHERE connected_at IS NOT NULL ORDER BY id")
}

/// Waits until no session is open; the first one ended with an error.
fn ended_in_error(env: &Env) {
    assert!(
        eventually(Duration::from_secs(10), || open_sessions(env) == 0),
        "{:?}",
        reasons(env)
    );
    let reason = reasons(env)[0].clone().unwrap();
    assert!(reason.starts_with("error: "), "{reason}");
}

#[test]
fn thirty_parallel_upgrades_of_one_ticket_one_wins() {
    let (_sim, env, keys, serve) = start(None);
    let ws = ticket(&serve, &keys.console);
    let n = 30;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (addr, path, barrier) = (serve.addr.clone(), ws.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                barrier.wait();
                stream.write_all(upgrade_request(&path).as_bytes()).unwrap();
                let mut head = [0u8; 12];
                stream.read_exact(&mut head).unwrap();
                status_of(&String::from_utf8_lossy(&head))
            })
        })
        .collect();
    let mut statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort_unstable();
    let mut expected = vec![101];
    expected.extend(std::iter::repeat_n(410, n - 1));
    assert_eq!(statuses, expected);
    // The winner's client went away: its session ends with a reason.
    assert!(
        eventually(Duration::from_secs(20), || open_sessions(&env) == 0),
        "{:?}",
        reasons(&env)
    );
    assert_eq!(reasons(&env).len(), 1);
}

#[test]
fn a_client_gone_before_the_switch_leaves_no_session_open() {
    let (_sim, env, keys, serve) = start(None);
    for _ in 0..5 {
        let ws = ticket(&serve, &keys.console);
        let mut stream = TcpStream::connect(&serve.addr).unwrap();
        stream.write_all(upgrade_request(&ws).as_bytes()).unwrap();
        // A reset, not a close: the 101 cannot be written.
        rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO)).unwrap();
        drop(stream);
    }
    assert!(
        eventually(Duration::from_secs(20), || {
            let reasons = reasons(&env);
            reasons.len() == 5 && reasons.iter().all(Option::is_some)
        }),
        "sessions left open: {:?}",
        reasons(&env)
    );
    assert!(reasons(&env).iter().all(Option::is_some));
}

#[test]
fn bytes_pipelined_behind_the_upgrade_and_a_body_are_no_smuggling() {
    let (_sim, env, keys, serve) = start(None);
    // A client frame (masked, binary) holding RFB's version, sent in the
    // same write as the request: it reaches the handshake, not the HTTP
    // parser.
    let ws = ticket(&serve, &keys.console);
    let mut bytes = upgrade_request(&ws).into_bytes();
    let payload = b"RFB 003.008\n";
    bytes.extend_from_slice(&[0x82, 0x80 | payload.len() as u8, 0, 0, 0, 0]);
    bytes.extend_from_slice(payload);
    let mut stream = TcpStream::connect(&serve.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream.write_all(&bytes).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    // 101 head, then the version frame and the security types frame.
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") || got.len() < 200 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&got);
        if let Some(at) = text.find("\r\n\r\n") {
            let frames = &got[at + 4..];
            if frames.len() >= 14 + 4 {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    let at = text.find("\r\n\r\n").unwrap() + 4;
    // The server's version, then security types [1 type: None].
    assert_eq!(&got[at..at + 14], b"\x82\x0cRFB 003.008\n");
    assert_eq!(&got[at + 14..at + 18], b"\x82\x02\x01\x01");
    drop(stream);

    // An upgrade with a body: refused, and the ticket is kept.
    let ws = ticket(&serve, &keys.console);
    let request = upgrade_request(&ws).replace("\r\n\r\n", "\r\nContent-Length: 5\r\n\r\nhello");
    let answer = raw(&serve.addr, request.as_bytes());
    let status = status_of(&answer);
    assert!(
        status == 400 || status == 101,
        "an upgrade with a body: {answer}"
    );
    // HTTP/1.0 cannot upgrade (RFC 9110 7.8): refused.
    let ws = ticket(&serve, &keys.console);
    let answer = raw(
        &serve.addr,
        upgrade_request(&ws)
            .replace("HTTP/1.1", "HTTP/1.0")
            .as_bytes(),
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    // Two keys: refused.
    let ws = ticket(&serve, &keys.console);
    let request = upgrade_request(&ws).replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
    );
    assert_eq!(status_of(&raw(&serve.addr, request.as_bytes())), 400);
    assert!(eventually(Duration::from_secs(20), || open_sessions(&env) == 0));
}

/// A console server's answer to the websocket: subprotocol `binary`.
#[allow(clippy::result_large_err)] // the callback type is tungstenite's
fn binary(_: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    response
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    Ok(response)
}

/// A console server that takes the websocket and then says nothing.
fn silent_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            let ws = tungstenite::accept_hdr(stream, binary);
            if let Ok(ws) = ws {
                held.push(ws);
            }
        }
    });
    format!("ws://{addr}/?token=upstream-s3cret")
}

/// A client's session on the console upstream at `url`: within `limit` it
/// ends, its reason that the upstream did not answer in time. The
/// simulator, the state, the serve, the ticket used and the client's
/// connection.
fn cut_off_upstream(url: &str, limit: Duration) -> (Sim, Env, Serve, String, TcpStream) {
    let (sim, env, keys, serve) = start(Some(url));
    let ws = ticket(&serve, &keys.console);
    let mut stream = TcpStream::connect(&serve.addr).unwrap();
    stream.write_all(upgrade_request(&ws).as_bytes()).unwrap();
    assert!(
        eventually(limit, || ended_with_reasons(&env)),
        "{:?}",
        reasons(&env)
    );
    let reason = reasons(&env)[0].clone().unwrap();
    assert!(reason.contains("in time"), "{reason}");
    (sim, env, serve, ws, stream)
}

#[test]
fn an_upstream_that_never_answers_ends_the_session_with_a_reason() {
    let (_sim, _env, serve, ws, _stream) =
        cut_off_upstream(&silent_upstream(), Duration::from_secs(30));
    let log = serve.log();
    assert!(!log.contains("upstream-s3cret"), "{log}");
    assert!(!log.contains("pw123456"), "{log}");
    assert!(!log.contains(ws.trim_start_matches("/ws/")), "{log}");
}

/// A console server that answers its version, refuses with a reason of
/// 4096 bytes, and then sends that reason a byte a second.
fn trickling_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let ws = tungstenite::accept_hdr(stream, binary);
                let Ok(mut ws) = ws else { return };
                let mut send = |b: &[u8]| ws.send(tungstenite::Message::binary(b.to_vec())).is_ok();
                if !send(b"RFB 003.008\n") || !send(&[0, 0, 0, 16, 0]) {
                    return;
                }
                // A byte a second: an upstream that trickles (the point).
                for _ in 0..4096 {
                    std::thread::sleep(Duration::from_secs(1));
                    if !send(b"x") {
                        return;
                    }
                }
            });
        }
    });
    format!("ws://{addr}/?token=upstream-s3cret")
}

#[test]
fn an_upstream_that_trickles_its_handshake_is_cut_off() {
    cut_off_upstream(&trickling_upstream(), Duration::from_secs(60));
}

#[test]
fn a_client_that_only_pings_during_its_handshake_is_cut_off() {
    let (_sim, env, keys, serve) = start(None);
    let ws = ticket(&serve, &keys.console);
    let request = format!("ws://{}{ws}", serve.addr)
        .into_client_request()
        .unwrap();
    let stream = TcpStream::connect(&serve.addr).unwrap();
    let (mut client, _) = tungstenite::client(request, stream).unwrap();
    client
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let ended = eventually(Duration::from_secs(60), || {
        // A ping every turn, never a version.
        if client
            .send(tungstenite::Message::Ping(vec![1].into()))
            .is_ok()
        {
            let _ = client.read();
        }
        // The pings' pace, under the handshake's deadline (the point).
        std::thread::sleep(Duration::from_millis(900));
        ended_with_reasons(&env)
    });
    assert!(ended, "{:?}", reasons(&env));
    let reason = reasons(&env)[0].clone().unwrap();
    assert!(reason.contains("in time"), "{reason}");
}

#[test]
fn a_session_still_in_its_handshake_when_serve_stops_is_recorded_as_ended() {
    let url = silent_upstream();
    let (_sim, env, keys, mut serve) = start(Some(&url));
    let ws = ticket(&serve, &keys.console);
    let mut stream = TcpStream::connect(&serve.addr).unwrap();
    stream.write_all(upgrade_request(&ws).as_bytes()).unwrap();
    assert!(eventually(Duration::from_secs(10), || open_sessions(&env) == 1));
    serve.stop();
    assert_eq!(open_sessions(&env), 0, "{:?}", reasons(&env));
    let reason = reasons(&env)[0].clone().unwrap();
    assert!(reason.contains("hcc serve stopped"), "{reason}");
}

/// A client's RFB handshake (security None) and ClientInit, up to the
/// ServerInit's first bytes.
fn rfb_session(serve: &Serve, path: &str) -> tungstenite::WebSocket<TcpStream> {
    rfb_session_with(serve, path, &[])
}

/// [`rfb_session`] with more request headers (a proxy's
/// `X-Forwarded-For`, a `User-Agent`).
fn rfb_session_with(
    serve: &Serve,
    path: &str,
    headers: &[(&'static str, &str)],
) -> tungstenite::WebSocket<TcpStream> {
    let mut request = format!("ws://{}{path}", serve.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let stream = TcpStream::connect(&serve.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let (mut ws, _) = tungstenite::client(request, stream).unwrap();
    let mut got = Vec::new();
    let mut wait_for = |ws: &mut tungstenite::WebSocket<TcpStream>, n: usize| {
        while got.len() < n {
            match ws.read().unwrap() {
                tungstenite::Message::Binary(b) => got.extend_from_slice(&b),
                other => panic!("{other:?}"),
            }
        }
    };
    wait_for(&mut ws, 12);
    ws.send(tungstenite::Message::binary(b"RFB 003.008\n".to_vec()))
        .unwrap();
    wait_for(&mut ws, 14);
    ws.send(tungstenite::Message::binary(vec![1])).unwrap();
    wait_for(&mut ws, 18);
    ws.send(tungstenite::Message::binary(vec![1])).unwrap();
    wait_for(&mut ws, 19);
    ws
}

#[test]
fn revoking_the_api_key_that_made_the_link_ends_its_live_session_as_revoked() {
    let (_sim, env, keys, serve) = start(None);
    let ws = ticket(&serve, &keys.console);
    let mut client = rfb_session(&serve, &ws);
    assert_eq!(open_sessions(&env), 1);
    env.ok(&["apikey", "revoke", "console-key"]);
    assert!(
        eventually(Duration::from_secs(10), || open_sessions(&env) == 0),
        "{:?}",
        reasons(&env)
    );
    assert_eq!(reasons(&env), [Some("revoked".to_string())]);
    // Its client hears it, and the page cannot get another ticket.
    loop {
        match client.read() {
            Ok(tungstenite::Message::Close(frame)) => {
                assert_eq!(frame.unwrap().reason.as_str(), "revoked");
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

#[test]
fn a_huge_clientcuttext_passes_in_pieces_and_an_oversized_message_ends_the_session() {
    let (sim, env, keys, serve) = start(None);
    let ws = ticket(&serve, &keys.console);
    let mut client = rfb_session(&serve, &ws);
    // ClientCutText of 1 MiB, sent in 256 KiB messages, then the key `a`:
    // the console takes the key, so the stream stayed in step.
    let text_len: u32 = 1 << 20;
    let mut head = vec![6, 0, 0, 0];
    head.extend_from_slice(&text_len.to_be_bytes());
    client.send(tungstenite::Message::binary(head)).unwrap();
    for _ in 0..4 {
        client
            .send(tungstenite::Message::binary(vec![b'x'; 256 * 1024]))
            .unwrap();
    }
    for down in [1u8, 0] {
        let mut key = vec![4, down, 0, 0];
        key.extend_from_slice(&u32::from(b'a').to_be_bytes());
        client.send(tungstenite::Message::binary(key)).unwrap();
    }
    let typed = || {
        sim.control("GET", "/_sim/consoles/srv-00001", None).json()["typed"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        eventually(Duration::from_secs(10), || typed().ends_with('a')),
        "{} {:?}",
        sim.control("GET", "/_sim/consoles/srv-00001", None).body,
        reasons(&env)
    );
    assert_eq!(open_sessions(&env), 1);
    // One message past the broker's limit: the session ends, recorded.
    let _ = client.send(tungstenite::Message::binary(vec![0u8; 1 << 20]));
    ended_in_error(&env);
    assert!(!serve.log().contains("panicked"));
}

#[test]
fn a_viewer_that_trickles_its_handshake_loses_its_place_at_hcc_vnc() {
    let (sim, env, _keys, _serve) = start(None);
    let bridge = hcc_vnc(&env, &sim, &[]);
    let mut viewer = TcpStream::connect(("127.0.0.1", bridge.port)).unwrap();
    viewer
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // A byte of the version every 20 s: each read's own timeout never
    // passes, the handshake's as a whole must.
    let mut sent = 0;
    let mut buf = [0u8; 64];
    let started = std::time::Instant::now();
    let closed = eventually(Duration::from_secs(120), || {
        if started.elapsed() >= Duration::from_secs(20 * sent as u64) && sent < 12 {
            let _ = viewer.write_all(&b"RFB 003.008\n"[sent..=sent]);
            sent += 1;
        }
        loop {
            match viewer.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    });
    drop(bridge);
    assert!(closed, "the viewer was still connected after {sent} bytes");
}

#[test]
fn no_secret_in_the_session_records_the_api_or_the_log() {
    let (sim, env, keys, serve) = start(None);
    let path = link(&serve, &keys.console, "srv-00001");
    let page = serve.request("POST", &path, None, None);
    let data = page_data(&page.body);
    let ws = data["ws"].as_str().unwrap().trim_start_matches("..");
    let session = data["session"].as_str().unwrap().to_string();
    let client = rfb_session(&serve, ws);
    drop(client);
    assert!(eventually(Duration::from_secs(10), || open_sessions(&env) == 0));
    // A refused upgrade and a wrong ticket, for the error paths.
    let _ = raw(&serve.addr, upgrade_request(ws).as_bytes());
    let _ = raw(
        &serve.addr,
        upgrade_request(&format!("/ws/{}", "ab".repeat(32))).as_bytes(),
    );
    let mut secrets = vec![
        path.trim_start_matches("/c/").to_string(),
        ws.trim_start_matches("/ws/").to_string(),
        session,
        keys.console.clone(),
        keys.admin.clone(),
    ];
    let consoles = sim.control("GET", "/_sim/consoles", None).json();
    for console in consoles["consoles"].as_array().unwrap() {
        for field in ["token", "password"] {
            if let Some(s) = console[field].as_str() {
                secrets.push(s.to_string());
            }
        }
    }
    let records = [
        env.ok(&["sessions", "--json"]),
        env.ok(&["sessions"]),
        serve.get("/api/v1/sessions", &keys.admin).body,
        serve.log(),
    ];
    for text in &records {
        assert!(text.contains("srv-00001"), "{text}");
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} in {text}");
        }
    }
}

#[test]
fn a_ticket_of_a_server_since_replaced_under_its_name_opens_nothing() {
    let (sim, env, keys, serve) = start(None);
    let ws = ticket(&serve, &keys.console);
    replace_server(&sim, &env, "srv-00001");
    let answer = raw(&serve.addr, upgrade_request(&ws).as_bytes());
    assert_eq!(status_of(&answer), 410, "{answer}");
    let consoles = sim.control("GET", "/_sim/consoles", None).json();
    assert_eq!(consoles["consoles"].as_array().map_or(0, Vec::len), 0);
    assert_eq!(open_sessions(&env), 0);
    // The sync that found the server gone ended its consoles: the ticket
    // was void before it was used.
    let reason: Option<String> =
        env.value("SELECT end_reason FROM console_sessions ORDER BY id DESC LIMIT 1");
    assert_eq!(reason.as_deref(), Some("deleted"));
}

#[test]
fn a_session_whose_serve_was_killed_is_ended_by_the_next_serve() {
    let (sim, env, keys, mut serve) = start(None);
    let ws = ticket(&serve, &keys.console);
    let _client = rfb_session(&serve, &ws);
    assert_eq!(open_sessions(&env), 1);
    // No chance to record anything.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &serve.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    serve.stop();
    // A while later (its relay would have written its bytes by then).
    env.db()
        .execute(
            "UPDATE console_sessions SET last_seen_at = last_seen_at - 3600",
            [],
        )
        .unwrap();
    let _next = Serve::start(&env, &sim, &[]);
    ended_in_error(&env);
}

/// The page session's token and first `/ws/TICKET` path of a fresh link
/// opened by POST.
fn page(serve: &Serve, key: &str) -> (String, String) {
    let (_, data) = open_link(serve, key, "srv-00001");
    let ws = data["ws"].as_str().unwrap().trim_start_matches("..");
    (
        data["session"].as_str().unwrap().to_string(),
        ws.to_string(),
    )
}

/// A new ticket for the page session (`POST /c/refresh`, as the page
/// asks before it connects again).
fn next_ticket(serve: &Serve, session: &str) -> String {
    let reply = serve.refresh(session);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ws = reply.json()["ws"].as_str().unwrap().to_string();
    ws.trim_start_matches("..").to_string()
}

/// Waits for the close frame of a relay hcc ended; its reason.
fn close_reason(client: &mut tungstenite::WebSocket<TcpStream>) -> String {
    loop {
        match client.read() {
            Ok(tungstenite::Message::Close(frame)) => {
                return frame.map(|f| f.reason.to_string()).unwrap_or_default();
            }
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

#[test]
fn a_page_session_holds_one_relay_a_new_ticket_replaces_the_old_one() {
    let (_sim, env, keys, serve) = start(None);
    let (session, ws) = page(&serve, &keys.console);
    let mut first = rfb_session(&serve, &ws);
    assert_eq!(open_sessions(&env), 1);
    // The page connects again (a reload, a reconnect) while the first
    // connection stays open on the client's side.
    let mut second = rfb_session(&serve, &next_ticket(&serve, &session));
    assert!(
        eventually(Duration::from_secs(5), || open_sessions(&env) == 1
            && reasons(&env)[0].is_some()),
        "{:?}",
        reasons(&env)
    );
    assert_eq!(reasons(&env), [Some("replaced".to_string()), None]);
    assert_eq!(close_reason(&mut first), "replaced");
    // The second relay carries on: a key reaches the console and the
    // connection stays the page's one live relay.
    second
        .send(tungstenite::Message::binary(vec![
            4, 1, 0, 0, 0, 0, 0, 0x61,
        ]))
        .unwrap();
    // Nothing may end meanwhile: a wait for no change.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(open_sessions(&env), 1);
    assert_eq!(reasons(&env), [Some("replaced".to_string()), None]);
    // Both rows are the one page session's.
    let pages: i64 = env.value("SELECT count(DISTINCT page_id) FROM console_sessions");
    assert_eq!(pages, 1);
    // Another page of the same link's key is not touched by it.
    let (_, other) = page(&serve, &keys.console);
    let _third = rfb_session(&serve, &other);
    assert!(eventually(Duration::from_secs(5), || open_sessions(&env) == 2));
    // Nothing may end meanwhile: a wait for no change.
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(open_sessions(&env), 2, "{:?}", reasons(&env));
}

#[test]
fn each_connection_records_its_own_client_beside_the_pages() {
    let (_sim, env, keys, serve) = start(None);
    // The page is opened from one address with one browser (through the
    // proxy on this machine, which `trusted_proxies` believes)...
    let path = link(&serve, &keys.console, "srv-00001");
    let answer = raw(
        &serve.addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             X-Forwarded-For: 203.0.113.7\r\nUser-Agent: PageBrowser/1.0\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    let data = page_data(&answer);
    let ws = data["ws"].as_str().unwrap().trim_start_matches("..");
    // ...and its ticket used from another, with another.
    let _client = rfb_session_with(
        &serve,
        ws,
        &[
            ("X-Forwarded-For", "198.51.100.8"),
            ("User-Agent", "OtherClient/2.0"),
        ],
    );
    let row: (String, String, String, String) = env
        .db()
        .query_row(
            "SELECT remote, user_agent, connection_remote, connection_user_agent
             FROM console_sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "203.0.113.7".into(),
            "PageBrowser/1.0".into(),
            "198.51.100.8".into(),
            "OtherClient/2.0".into()
        )
    );
    // The listing shows both, the connection's under the page's.
    let listed = serve
        .get("/api/v1/sessions?connections=1", &keys.admin)
        .json();
    let page = &listed["sessions"][0];
    assert_eq!(
        (&page["remote"], &page["user_agent"]),
        (&"203.0.113.7".into(), &"PageBrowser/1.0".into())
    );
    let connection = &page["connections"][0];
    assert_eq!(
        (
            &connection["connection_remote"],
            &connection["connection_user_agent"]
        ),
        (&"198.51.100.8".into(), &"OtherClient/2.0".into())
    );
}
