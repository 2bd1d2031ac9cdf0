//! Console POSTs (`/c/TOKEN`, `/c/refresh`, `/c/status`, `/c/power`) and
//! `/ws/` upgrades from another site's page are refused with 403
//! `cross_origin` and a log line, before anything is spent; hcc's own
//! origin, requests without `Origin` (curl, a panel) and the origins in
//! `allowed_origins` pass. (Chromium's own pages, direct and behind
//! nginx: browser.rs, console_page.rs.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::serve::{link, page_data, serving};

/// One request with extra header lines: status and body.
fn send(addr: &str, method: &str, path: &str, body: &str, headers: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(&format!("{h}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = crate::support::serve::status_of(&text);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn upgrade(addr: &str, path: &str, headers: &[&str]) -> u16 {
    let mut all = vec![
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: binary",
    ];
    all.extend_from_slice(headers);
    // By hand: an upgrade carries no `Connection: close`.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in all {
        head.push_str(&format!("{h}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        answer.push(byte[0]);
    }
    crate::support::serve::status_of(&String::from_utf8_lossy(&answer))
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).map_or(String::new(), |v| {
        v["error"]["code"].as_str().unwrap_or("").to_string()
    })
}

const EVIL: &str = "Origin: https://evil.example";
const CROSS: &str = "Sec-Fetch-Site: cross-site";

#[test]
fn another_sites_console_posts_and_upgrades_are_refused_and_ours_pass() {
    let (_sim, env, keys, serve) = serving(&["--servers", "1"]);
    let addr = serve.addr.as_str();
    let own = format!("Origin: http://{addr}");
    let path = link(&serve, &keys.admin, "srv-00001");

    // The link's POST from another site: refused, and still unused.
    for headers in [
        vec![EVIL],
        vec![CROSS],
        vec![EVIL, "Sec-Fetch-Site: same-origin"],
    ] {
        let (status, body) = send(addr, "POST", &path, "", &headers);
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert_eq!(error_code(&body), "cross_origin", "{body}");
    }
    // Our own page's POST: its origin, or `null` under no-referrer.
    let (status, page) = send(
        addr,
        "POST",
        &path,
        "",
        &[&own, "Sec-Fetch-Site: same-origin"],
    );
    assert_eq!(status, 200, "{page}");
    let data = page_data(&page);
    let session = data["session"].as_str().unwrap().to_string();
    let ws = data["ws"]
        .as_str()
        .unwrap()
        .trim_start_matches("..")
        .to_string();
    let body = json!({ "session": session }).to_string();

    for route in ["/c/refresh", "/c/status", "/c/power"] {
        for headers in [vec![EVIL], vec![CROSS], vec!["Origin: null", CROSS]] {
            let (status, answer) = send(addr, "POST", route, &body, &headers);
            assert_eq!(status, 403, "{route} {headers:?}: {answer}");
            assert_eq!(error_code(&answer), "cross_origin", "{answer}");
        }
    }
    // Another site's websocket: refused before the ticket is spent.
    assert_eq!(upgrade(addr, &ws, &[EVIL]), 403);
    assert_eq!(upgrade(addr, &ws, &[&own, CROSS]), 403);
    assert_eq!(
        upgrade(addr, &ws, &[&own, "Sec-Fetch-Site: same-origin"]),
        101
    );

    // Same origin, `null` from a same-origin page, and no Origin at all.
    let (status, answer) = send(addr, "POST", "/c/status", &body, &[&own]);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = send(
        addr,
        "POST",
        "/c/power",
        &body,
        &["Origin: null", "Sec-Fetch-Site: same-origin"],
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = send(addr, "POST", "/c/status", &body, &[]);
    assert_eq!(status, 200, "{answer}");
    // Reading pages is no request to guard: a GET from anywhere.
    let (status, _) = send(
        addr,
        "GET",
        &link(&serve, &keys.console, "srv-00001"),
        "",
        &[EVIL],
    );
    assert_eq!(status, 200);

    let log = serve.log();
    assert!(
        log.contains("refused POST /c/refresh from another site: Origin https://evil.example"),
        "{log}"
    );
    assert!(
        log.contains("refused GET /ws/<ticket> from another site: Origin https://evil.example"),
        "{log}"
    );
    assert!(
        log.contains("refused POST /c/<token> from another site: Sec-Fetch-Site: cross-site"),
        "{log}"
    );
    assert!(log.contains("POST /c/power 403"), "{log}");
    assert!(!log.contains(&session), "{log}");

    // A billing system that embeds the page: allowed_origins admits it,
    // once serve has re-read its settings; others stay out.
    let billing = "Origin: https://billing.example.com";
    let (status, _) = send(addr, "POST", "/c/status", &body, &[billing, CROSS]);
    assert_eq!(status, 403);
    let set = env.run(&[
        "config",
        "set",
        "allowed_origins",
        "https://Billing.Example.com:443/",
    ]);
    assert!(
        set.stderr.contains("picked up the change"),
        "{}",
        set.stderr
    );
    let (status, answer) = send(addr, "POST", "/c/status", &body, &[billing, CROSS]);
    assert_eq!(status, 200, "{answer}");
    let (status, _) = send(addr, "POST", "/c/status", &body, &[EVIL]);
    assert_eq!(status, 403);
    let shown = env.ok(&["config", "get", "allowed_origins"]);
    assert_eq!(shown.trim(), "https://billing.example.com");
    env.run(&["config", "set", "allowed_origins", "https://x/path"]).fails(
        2,
        "hcc: invalid value for `allowed_origins`: `https://x/path` is not an origin like https://billing.example.com (scheme, host and port only)",
    );
}
