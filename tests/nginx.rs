//! nginx running the production example (`support::nginx`) in front of
//! the sim, an echoing upstream and a real VNC console: what it forwards,
//! upgrades and logs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use crate::support::nginx::{Nginx, TlsPipe, curl};
use crate::support::vnc::{VncServer, WsClient, assert_rfb_greeting_on};
use crate::test::{Sim, eventually};

/// Over TLS to the sim: the query string reaches it, the access log keeps
/// no query string, no link token and no API token; port 80 redirects.
#[test]
fn nginx_proxies_to_the_sim_over_tls_and_logs_no_secret() {
    let sim = Sim::start(&["--servers", "3"]);
    let port: u16 = sim
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("sim port");
    let Some(nginx) = Nginx::start(port) else {
        return;
    };
    let auth = format!("Authorization: Bearer {}", sim.token);

    let url = format!(
        "{}/v1/servers?name=srv-00002&token=SECRET-QUERY",
        nginx.https_url()
    );
    let answer = curl(&url, &[&auth]);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", nginx.error_log());
    let servers = answer.json()["servers"].clone();
    assert_eq!(servers.as_array().map(Vec::len), Some(1), "{servers}");
    assert_eq!(servers[0]["name"], "srv-00002", "the query string got lost");
    assert_eq!(answer.header("Server"), Some("nginx"), "server_tokens");
    assert!(
        answer
            .header("Strict-Transport-Security")
            .is_some_and(|v| v.starts_with("max-age=")),
        "{answer:?}"
    );

    // A console link and a broker session: their tokens stay out of the log.
    let link = curl(
        &format!("{}/c/SECRET-LINK?pw=SECRET-PW", nginx.https_url()),
        &[],
    );
    assert_eq!(link.status, 404, "the sim has no /c/: {link:?}");
    let ws = curl(&format!("{}/ws/SECRET-SESSION", nginx.https_url()), &[]);
    assert_eq!(ws.status, 404, "{ws:?}");
    curl(&format!("{}/c/refresh", nginx.https_url()), &[]);
    // A key pasted as a path, a token below another path (percent-encoded
    // in part): logged as `/-`.
    let key = format!("hcc_{}", "5e".repeat(32));
    curl(&format!("{}/{key}", nginx.https_url()), &[]);
    curl(
        &format!("{}/x/%35e{}", nginx.https_url(), "5e".repeat(20)),
        &[],
    );

    // Port 80: to HTTPS, same path and query, with nothing served.
    let plain = curl(&format!("{}/c/SECRET-PLAIN?x=1", nginx.http_url()), &[]);
    assert_eq!(plain.status, 301, "{plain:?}");
    assert_eq!(
        plain.header("Location"),
        Some("https://127.0.0.1/c/SECRET-PLAIN?x=1")
    );

    let log = nginx.access_log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 7, "one line per request:\n{log}");
    assert!(
        lines[0].contains("\"GET /v1/servers HTTP/1.1\" 200 "),
        "{log}"
    );
    assert!(lines[1].contains("\"GET /c/- HTTP/1.1\" 404 "), "{log}");
    assert!(lines[2].contains("\"GET /ws/- HTTP/1.1\" 404 "), "{log}");
    assert!(
        lines[3].contains("\"GET /c/refresh HTTP/1.1\" 404 "),
        "{log}"
    );
    for line in &lines[4..6] {
        assert!(line.contains("\"GET /- HTTP/1.1\" 404 "), "{log}");
    }
    assert!(!log.contains("5e5e5e5e"), "a key in the access log:\n{log}");
    assert!(lines[6].contains("\"GET /c/- HTTP/1.1\" 301 "), "{log}");
    assert!(
        !log.contains("SECRET"),
        "a secret in the access log:\n{log}"
    );
    assert!(
        !log.contains(&sim.token),
        "the API token in the access log:\n{log}"
    );
    assert!(
        !log.contains('?'),
        "a query string in the access log:\n{log}"
    );

    assert!(
        !nginx.site_conf().contains("http://127.0.0.1:8479;"),
        "{}",
        nginx.site_conf()
    );
    let pgid = nginx.pgid();
    drop(nginx);
    assert!(!crate::daemon::group_alive(pgid), "nginx outlived the drop");
}

/// What hcc is told about the client: its address (not one it claims),
/// https, the host; and a websocket upgrade passes through.
#[test]
fn nginx_forwards_the_client_and_upgrades() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an upstream");
    let port = listener.local_addr().expect("upstream address").port();
    // The upstream answers every request with the request head it got.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let answer = if text.to_ascii_lowercase().contains("\r\nupgrade: websocket") {
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     X-Seen: {}\r\n\r\n",
                    text.replace("\r\n", " | ")
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                )
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let Some(nginx) = Nginx::start(port) else {
        return;
    };

    let echo = curl(
        &format!("{}/api/v1/status?k=v", nginx.https_url()),
        &["X-Forwarded-For: 203.0.113.9", "X-Real-IP: 203.0.113.9"],
    );
    assert_eq!(echo.status, 200, "{echo:?}\n{}", nginx.error_log());
    let seen = echo.body.to_ascii_lowercase();
    assert!(
        seen.starts_with("get /api/v1/status?k=v http/1.1\r\n"),
        "{seen}"
    );
    for header in [
        // The port too: hcc compares it with a console page's Origin.
        format!("host: 127.0.0.1:{}\r\n", nginx.https_port()),
        "x-real-ip: 127.0.0.1".to_string(),
        "x-forwarded-for: 127.0.0.1\r\n".to_string(),
        "x-forwarded-proto: https".to_string(),
        "connection: close".to_string(),
    ] {
        assert!(seen.contains(&header), "want {header:?} upstream:\n{seen}");
    }
    assert!(
        !seen.contains("203.0.113.9"),
        "a forged address went through:\n{seen}"
    );

    let upgrade = curl(
        &format!("{}/ws/abc", nginx.https_url()),
        &["Connection: Upgrade", "Upgrade: websocket"],
    );
    assert_eq!(upgrade.status, 101, "{upgrade:?}\n{}", nginx.error_log());
    let seen = upgrade
        .header("X-Seen")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(seen.contains("upgrade: websocket"), "{seen}");
    assert!(seen.contains("connection: upgrade"), "{seen}");
}

/// wss:// through nginx to websockify and a real Xvnc: the RFB greeting.
#[test]
fn nginx_carries_a_vnc_websocket_over_tls() {
    let Some(vnc) = VncServer::start("secret12") else {
        return;
    };
    let Some(nginx) = Nginx::start(vnc.ws_port()) else {
        return;
    };
    let host = format!("127.0.0.1:{}", nginx.https_port());
    let ws = WsClient::handshake(TlsPipe::connect(nginx.https_port()), &host, "/ws/session")
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", nginx.error_log(), vnc.logs()));
    assert_rfb_greeting_on(ws, &|| format!("{}\n{}", nginx.error_log(), vnc.logs()));
    // The line is written when the connection ends.
    assert!(
        eventually(Duration::from_secs(5), || nginx
            .access_log()
            .contains("\"GET /ws/- HTTP/1.1\" 101 ")),
        "{}",
        nginx.access_log()
    );
}
