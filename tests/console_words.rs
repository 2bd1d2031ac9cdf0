//! What a console page is told when something ends: a forged session
//! token is unknown (404) where an expired one has ended (410) on each of
//! the page's routes; `/c/status` blames the browser when the browser
//! closed; a browser that breaks the websocket or RFB protocol hears the
//! close code of what it broke (1002, 1003, 1007, 1009), not 1011. All
//! brokered, on the simulator's own console.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::serve::{Serve, code, open_link, serving, serving_with};
use crate::test::{Http, eventually};

/// Opens a fresh link: the page session's token and its `/ws/TICKET`.
fn open(serve: &Serve, key: &str) -> (String, String) {
    let (_, data) = open_link(serve, key, "srv-00001");
    let ws = data["ws"]
        .as_str()
        .expect("brokered")
        .trim_start_matches("..");
    (
        data["session"].as_str().unwrap().to_string(),
        ws.to_string(),
    )
}

fn post(serve: &Serve, route: &str, body: &Value) -> Http {
    serve.request("POST", route, Some(&body.to_string()), None)
}

#[test]
fn a_forged_session_is_unknown_where_an_expired_one_has_ended() {
    let (_sim, env, keys, serve) = serving(&["--servers", "1"]);
    let (session, _) = open(&serve, &keys.admin);
    let routes = ["/c/refresh", "/c/status", "/c/power"];
    for forged in ["ab".repeat(32), "forged".to_string()] {
        for route in routes {
            let reply = post(&serve, route, &json!({ "session": forged }));
            assert_eq!(reply.status, 404, "{route}: {}", reply.body);
            assert_eq!(code(&reply), "session_unknown", "{route}");
        }
    }
    env.db()
        .execute("UPDATE console_sessions SET expires_at = 1", [])
        .unwrap();
    for route in ["/c/refresh", "/c/power"] {
        let reply = post(&serve, route, &json!({ "session": session }));
        assert_eq!(reply.status, 410, "{route}: {}", reply.body);
        assert_eq!(code(&reply), "session_expired", "{route}");
    }
    // The page asking why learns that its session ended.
    let status = post(&serve, "/c/status", &json!({ "session": session }));
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.json()["state"], "ended");
    assert_eq!(status.json()["reason"], "session_expired");
}

/// A websocket upgrade of `path` by hand: the raw socket after the 101.
fn upgraded(serve: &Serve, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(&serve.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: binary\r\n\r\n",
        serve.addr
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// The next frame from the server (unmasked): opcode and payload.
fn frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        stream.read_exact(&mut b).unwrap();
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        stream.read_exact(&mut b).unwrap();
        len = u64::from_be_bytes(b);
    }
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// RFB bytes from the server's binary frames, `n` of them.
fn rfb(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let (opcode, payload) = frame(stream);
        assert_eq!(opcode, 2, "not a binary frame: {payload:?}");
        got.extend(payload);
    }
    got
}

/// The code of the close frame the server sends next (after any data).
fn close_code(stream: &mut TcpStream) -> u16 {
    loop {
        let (opcode, payload) = frame(stream);
        if opcode == 8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// A client's frame, masked (with a zero mask: the payload as it is).
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend((n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend((n as u64).to_be_bytes());
        }
    }
    frame.extend([0, 0, 0, 0]);
    frame.extend(payload);
    frame
}

#[test]
fn protocol_violations_close_with_their_code_and_status_blames_the_browser() {
    // One console after another on one server, faster than hcc rations.
    let (_sim, env, keys, serve) = serving_with(
        &["--servers", "1"],
        &[("console_requests_per_server", "3600")],
    );
    // What the browser sends after hcc's RFB version, and the close code.
    let oversized = {
        // The frame's head says 300 KiB: over the 256 KiB limit at once.
        let mut f = vec![0x82, 0x80 | 127];
        f.extend((300u64 * 1024).to_be_bytes());
        f.extend([0, 0, 0, 0]);
        f
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("an unmasked frame", vec![0x82, 0x01, 0x00], 1002),
        (
            "a version RFB does not have",
            masked(0x2, b"RFB 009.000\n"),
            1002,
        ),
        ("a text message", masked(0x1, b"RFB 003.008\n"), 1003),
        ("text that is no UTF-8", masked(0x1, b"\xff\xfe"), 1007),
        ("a message over the limit", oversized, 1009),
    ];
    for (what, bytes, want) in cases {
        let (session, ws) = open(&serve, &keys.console);
        let mut stream = upgraded(&serve, &ws);
        assert_eq!(rfb(&mut stream, 12), b"RFB 003.008\n", "{what}");
        stream.write_all(&bytes).unwrap();
        assert_eq!(close_code(&mut stream), want, "{what}");
        let status = post(&serve, "/c/status", &json!({ "session": session })).json();
        assert_eq!(status["reason"], "browser_error", "{what}: {status}");
        assert!(
            !status["message"]
                .as_str()
                .unwrap()
                .contains("did not accept"),
            "{status}"
        );
    }

    // In the relay, after a good handshake: a text message is 1003 too.
    let (_, ws) = open(&serve, &keys.console);
    let mut stream = upgraded(&serve, &ws);
    assert_eq!(rfb(&mut stream, 12), b"RFB 003.008\n");
    stream.write_all(&masked(0x2, b"RFB 003.008\n")).unwrap();
    assert_eq!(rfb(&mut stream, 2), [1, 1]);
    stream.write_all(&masked(0x2, &[1])).unwrap();
    assert_eq!(rfb(&mut stream, 4), [0, 0, 0, 0]);
    stream.write_all(&masked(0x1, b"hello")).unwrap();
    assert_eq!(close_code(&mut stream), 1003);

    // A browser that goes away during its handshake: the page is told
    // that the browser closed, not that the console refused.
    let (session, ws) = open(&serve, &keys.console);
    let mut stream = upgraded(&serve, &ws);
    assert_eq!(rfb(&mut stream, 12), b"RFB 003.008\n");
    stream
        .write_all(&masked(0x8, &1000u16.to_be_bytes()))
        .unwrap();
    drop(stream);
    let ended = eventually(Duration::from_secs(5), || {
        env.value::<i64>("SELECT count(*) FROM console_sessions WHERE end_reason LIKE 'error: the client closed%'") == 1
    });
    assert!(ended, "{}", serve.log());
    let status = post(&serve, "/c/status", &json!({ "session": session })).json();
    assert_eq!(status["reason"], "browser_closed", "{status}");
    let words = status["message"].as_str().unwrap();
    assert!(words.contains("This browser closed"), "{words}");
}
