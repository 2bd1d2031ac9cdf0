//! Names from the API are checked at the door: an answer that names a
//! server with terminal escape sequences (through a proxy in front of the
//! simulator that rewrites its JSON, as a broken or hostile API could) is
//! kept by `hcc sync`, never reaches the terminal raw (`hcc list`, its
//! JSON, errors), and is marked as a server hcc offers no action on (the
//! API's `name_ok`; in Chromium, the dashboard's row has no button and
//! says why).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::support::serve::{Serve, keyed};
use crate::test::Sim;

/// What the proxy calls `srv-00002`: it retitles a terminal window
/// (OSC 0, ended by BEL) and clears the screen (CSI 2J).
const HOSTILE: &str = "srv-\u{1b}]0;PWNED\u{7}\u{1b}[2J";

/// A proxy on loopback in front of `upstream` (`127.0.0.1:PORT`) that
/// replaces `from` by `to` in every answer's body, one request per
/// connection; its address. It lives as long as the test binary.
fn rewriting_proxy(upstream: &str, from: &str, to: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (upstream, from, to) = (upstream.to_string(), from.to_string(), to.to_string());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let (upstream, from, to) = (upstream.clone(), from.clone(), to.clone());
            std::thread::spawn(move || {
                let _ = relay_one(client, &upstream, &from, &to);
            });
        }
    });
    addr
}

/// Reads a head (to the blank line) from `stream`.
fn head_of(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// A head's lines but those named in `drop` (case-insensitive), and the
/// value of `Content-Length`.
fn without(head: &str, drop: &[&str]) -> (Vec<String>, usize) {
    let mut length = 0;
    let mut lines = Vec::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name == "content-length" {
            length = line[line.find(':').unwrap() + 1..]
                .trim()
                .parse()
                .unwrap_or(0);
        }
        if !drop.contains(&name.as_str()) {
            lines.push(line.to_string());
        }
    }
    (lines, length)
}

fn relay_one(mut client: TcpStream, upstream: &str, from: &str, to: &str) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = head_of(&mut client)?;
    let (mut lines, length) = without(&head, &["connection", "accept-encoding"]);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body)?;
    lines.push("Connection: close".into());
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = body.replace(from, to);
    let (mut lines, _) = without(head, &["connection", "content-length", "transfer-encoding"]);
    lines.push(format!("Content-Length: {}", body.len()));
    lines.push("Connection: close".into());
    client.write_all(format!("{}\r\n\r\n{body}", lines.join("\r\n")).as_bytes())?;
    client.flush()
}

/// Raw terminal control bytes: ESC, BEL, CSI in UTF-8 (C2 9B).
fn raw_controls(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

#[test]
fn a_hostile_name_from_the_api_never_reaches_the_terminal_raw_and_offers_no_action() {
    let sim = Sim::start(&["--servers", "2"]);
    let (env, keys) = keyed(&sim);
    // The name as JSON writes it: escapes, so the proxy's answer is JSON.
    let hostile_json = serde_json::to_string(HOSTILE).unwrap();
    let proxy = rewriting_proxy(&sim.addr, "\"srv-00002\"", &hostile_json);
    let through = [
        ("HCLOUD_ENDPOINT", format!("http://{proxy}/v1")),
        ("HCLOUD_TOKEN", sim.token.clone()),
    ];
    let run = env.cmd(&["sync"]).envs(through.clone()).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(run.status.success(), "{stdout}{stderr}");
    // Kept, under the name the API gave.
    let stored: String = env.value("SELECT name FROM servers WHERE name LIKE 'srv-%PWNED%'");
    assert_eq!(stored, HOSTILE);

    for args in [
        &["list"][..],
        &["list", "--all"],
        &["list", "--json"],
        &["list", "--all", "--json"],
    ] {
        let out = env.ok(args);
        assert!(
            !raw_controls(&out),
            "hcc {args:?} wrote control bytes: {out:?}"
        );
        assert!(out.contains("PWNED"), "hcc {args:?} lost the server: {out}");
        if args.contains(&"--json") {
            let list: Value = serde_json::from_str(&out).unwrap();
            let mine = list
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == HOSTILE)
                .unwrap_or_else(|| panic!("{list}"));
            assert_eq!(mine["name_ok"], false, "{mine}");
            let fine = list
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == "srv-00001");
            assert_eq!(fine.unwrap()["name_ok"], true);
        } else {
            assert!(
                out.contains("srv-\\u001b]0;PWNED\\u0007\\u001b[2J"),
                "{out}"
            );
        }
    }
    // Errors that name it, and a second sync through the proxy.
    let refused = env.run(&["start", HOSTILE]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(!raw_controls(&refused.stderr), "{:?}", refused.stderr);
    let again = env.cmd(&["sync", "--json"]).envs(through).output().unwrap();
    assert!(again.status.success());
    assert!(!raw_controls(&String::from_utf8_lossy(&again.stdout)));

    // The API (and so the dashboard) marks it: no action on it.
    let serve = Serve::start(&env, &sim, &[]);
    let servers = serve.get("/api/v1/servers", &keys.read).json();
    let servers = servers["servers"].as_array().unwrap().clone();
    let mine = servers.iter().find(|s| s["name"] == HOSTILE).unwrap();
    assert_eq!(mine["name_ok"], false, "{mine}");
    assert_eq!(mine["managed"], true, "still hcc's, by its label: {mine}");
    assert!(
        servers
            .iter()
            .any(|s| s["name"] == "srv-00001" && s["name_ok"] == true)
    );

    // The dashboard, as an admin sees it: no button on that row, a note
    // saying why; the other server's buttons as ever.
    if !crate::support::browser::browser_ready() {
        return;
    }
    let report = crate::browser::look(&serve, &keys.admin, &[]);
    let look = &report["look"];
    assert_eq!(look["buttons"][HOSTILE], serde_json::json!([]), "{report}");
    assert_eq!(look["manage"][HOSTILE], serde_json::json!([]), "{report}");
    let note = look["notes"][HOSTILE]
        .as_str()
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        note.starts_with("No actions: this name breaks the name rules"),
        "{note}"
    );
    assert!(look["notes"].get("srv-00001").is_none(), "{report}");
    let fine = look["buttons"]["srv-00001"].as_array().unwrap();
    assert!(fine.iter().any(|b| b == "console"), "{report}");
    assert!(!look["manage"]["srv-00001"].as_array().unwrap().is_empty());
}
