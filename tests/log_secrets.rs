//! Nothing secret in `hcc serve`'s log, whatever is appended to the path:
//! a live link's token with the trailing characters mail programs take
//! into a link, a key pasted as a path, tokens percent-encoded or below
//! another prefix. The link still opens afterwards.

use crate::support::serve::{link, serving, serving_with};
use crate::test::http;

/// Every 16-character piece of `secret` that appears in `log`.
fn pieces_in(log: &str, secret: &str) -> Vec<String> {
    (0..=secret.len().saturating_sub(16))
        .map(|at| secret[at..at + 16].to_string())
        .filter(|piece| log.contains(piece.as_str()))
        .collect()
}

#[test]
fn no_token_or_key_reaches_the_log_whatever_follows_it() {
    let (_sim, _env, keys, serve) = serving(&["--servers", "1"]);
    let path = link(&serve, &keys.console, "srv-00001");
    let token = path.trim_start_matches("/c/").to_string();
    let key_hex = keys.admin.trim_start_matches("hcc_").to_string();
    let encoded = |text: &str| -> String { text.bytes().map(|b| format!("%{b:02x}")).collect() };

    let mut asked = Vec::new();
    for suffix in [".", ")", ",", "%20", ";a", "%00", "/", "%2e"] {
        for method in ["GET", "HEAD", "POST"] {
            let body = (method == "POST").then_some("");
            let reply = http(&serve.addr, method, &format!("{path}{suffix}"), body, None).unwrap();
            // Not a link: nothing is opened, nothing used up.
            assert_eq!(reply.status, 404, "{method} {path}{suffix}: {}", reply.body);
            asked.push(format!("{method} {suffix}"));
        }
    }
    for other in [
        format!("/{}", keys.admin),
        format!("/api/v1/{}", keys.admin),
        format!("/{}", encoded(&keys.admin)),
        format!("/x/{token}"),
        format!("//c/{token}"),
        format!("/%63/{token}"),
        format!("/{}", encoded(&token)),
        format!("/c{}", encoded(&format!("/{token}"))),
        format!(
            "/{}%{:02X}{}",
            &token[..30],
            token.as_bytes()[30],
            &token[31..]
        ),
    ] {
        let reply = http(&serve.addr, "GET", &other, None, None).unwrap();
        assert!(reply.status >= 400, "{other}: {}", reply.status);
    }

    let log = serve.log();
    assert!(log.contains("GET /c/<token> 404"), "{log}");
    assert!(log.contains("POST /c/<token> 404"), "{log}");
    for secret in [&token, &keys.admin, &key_hex] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret in the log:\n{log}"
        );
        let pieces = pieces_in(&log, secret);
        assert!(pieces.is_empty(), "pieces {pieces:?} in the log:\n{log}");
    }

    // Whatever came before, the link opens once, now.
    let page = http(&serve.addr, "POST", &path, Some(""), None).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"id="hcc-console""#), "{}", page.body);
    assert_eq!(asked.len(), 24);
}

/// Every line of `log` as a JSON object (`log_format = json`).
fn objects(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{log}"));
            assert!(value.is_object(), "{line}");
            for field in ["time", "level", "source", "event", "message"] {
                assert!(value.get(field).is_some(), "no {field}: {line}");
            }
            value
        })
        .collect()
}

#[test]
fn json_lines_carry_the_same_fields_and_no_secret() {
    let (_sim, _env, keys, mut serve) =
        serving_with(&["--servers", "1"], &[("log_format", "json")]);
    let path = link(&serve, &keys.console, "srv-00001");
    let token = path.trim_start_matches("/c/").to_string();
    let reply = http(&serve.addr, "GET", &format!("{path}."), None, None).unwrap();
    assert_eq!(reply.status, 404);
    let reply = http(&serve.addr, "GET", &format!("/{}", keys.admin), None, None).unwrap();
    assert!(reply.status >= 400);
    serve.stop();
    let log = serve.log();
    for secret in [&token, &keys.admin] {
        assert!(
            pieces_in(&log, secret).is_empty(),
            "a secret in the log:\n{log}"
        );
    }
    let lines = objects(&log);
    let request = lines
        .iter()
        .find(|l| l["event"] == "request" && l["path"] == "/c/<token>")
        .unwrap_or_else(|| panic!("no request line:\n{log}"));
    assert_eq!(request["source"], "serve");
    assert_eq!(request["method"], "GET");
    assert_eq!(request["status"], 404);
    assert!(request["ms"].is_number(), "{request}");
    assert_eq!(request["remote"], "127.0.0.1");
    let message = request["message"].as_str().unwrap();
    assert!(
        message.starts_with("127.0.0.1 GET /c/<token> 404 "),
        "{message}"
    );
    assert!(lines.iter().any(|l| l["message"] == "stopped"), "{log}");
}

#[test]
fn the_workers_json_lines_name_each_command() {
    let sim = crate::test::Sim::start(&["--servers", "1", "--action-ms", "20"]);
    let env = crate::test::Env::new();
    env.ok(&["config", "set", "log_format", "json"]);
    let mut worker = crate::test::Worker::start(&env, &sim, "3600");
    let id = env.push_id(&["stop", "srv-00001"]);
    let (state, _, _) = worker.closed(&env, id);
    assert_eq!(state, "done");
    worker.stop();
    let log = worker.log();
    let lines = objects(&log);
    let steps: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "command" && l["command_id"] == id)
        .map(|l| l["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["started", "done"], "{log}");
    let done = lines.iter().find(|l| l["step"] == "done").unwrap();
    assert_eq!(done["source"], "worker");
    assert_eq!(done["level"], "info");
    assert_eq!(done["command"], "stop srv-00001");
    assert_eq!(
        done["message"],
        format!("command {id} `stop srv-00001`: done")
    );
}
