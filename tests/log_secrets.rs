//! Nothing secret in `hcc serve`'s log, whatever is appended to the path:
//! a live link's token with the trailing characters mail programs take
//! into a link, a key pasted as a path, tokens percent-encoded or below
//! another prefix. The link still opens afterwards.

use crate::support::serve::{link, serving};
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
