//! What of a request reaches the log: its route, never a secret in it.
//!
//! Link tokens, websocket tickets and API keys are 64 hex digits (keys
//! after `hcc_`). A path under `/c/` or `/ws/` is logged by its route
//! alone, whatever follows the token (a mail program that takes a
//! trailing `.`, `)` or `%20` into the link still sends the live token);
//! anywhere else, every run of 16 or more hex digits is replaced, also
//! when some of them are percent-encoded (`%61` is `a`), so that a key
//! pasted as a path or a token below a proxy's prefix stays out too.

use crate::assets;
use crate::verb::shown;

/// The routes below `/c/` that carry no token.
const FIXED_C_ROUTES: [&str; 3] = ["/c/refresh", "/c/status", "/c/power"];
/// A run of this many hex digits is taken for (a piece of) a secret: a
/// secret has 64, and 16 of them are already more than anyone should read
/// in a log.
const MIN_SECRET_RUN: usize = 16;
/// What stands in for a redacted run.
const REDACTED: &str = "<redacted>";

/// The path as logged: `/c/<token>` and `/ws/<ticket>` by route (the
/// fixed `/c/refresh`, `/c/status`, `/c/power` as they are), anything else
/// with its token-shaped runs redacted; control characters escaped.
pub fn logged_path(path: &str) -> String {
    if FIXED_C_ROUTES.contains(&path) {
        return path.to_string();
    }
    if path.starts_with("/c/") {
        return "/c/<token>".into();
    }
    if path.starts_with("/ws/") {
        return "/ws/<ticket>".into();
    }
    // The files below this build's hash (16 hex digits, public).
    let build = format!("/v/{}/", assets::build_hash());
    if let Some(file) = path.strip_prefix(&build) {
        return format!("{build}{}", shown(&redacted(file)));
    }
    shown(&redacted(path))
}

/// The method as logged: httparse takes any token for one, a 64-digit
/// hex token too.
pub fn logged_method(method: &str) -> String {
    shown(&redacted(method))
}

/// `text` with every run of [`MIN_SECRET_RUN`] or more hex digits (plain
/// or percent-encoded, in any mix) replaced by `<redacted>`.
pub fn redacted(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // The raw start of the current hex run, and how many digits it holds.
    let mut run_start = 0;
    let mut run_len = 0;
    let mut at = 0;
    let flush = |out: &mut String, from: usize, to: usize, len: usize| {
        if len >= MIN_SECRET_RUN {
            out.push_str(REDACTED);
        } else {
            out.push_str(&text[from..to]);
        }
    };
    while at < bytes.len() {
        let (decoded, width) = unit(bytes, at);
        if decoded.is_ascii_hexdigit() {
            if run_len == 0 {
                run_start = at;
            }
            run_len += 1;
            at += width;
            continue;
        }
        if run_len > 0 {
            flush(&mut out, run_start, at, run_len);
            run_len = 0;
        }
        // Whole characters only: `width` is 1 or 3 ASCII bytes here, and
        // a multi-byte character is copied as it is.
        let end = if width == 3 {
            at + 3
        } else {
            at + text[at..].chars().next().map_or(1, char::len_utf8)
        };
        out.push_str(&text[at..end]);
        at = end;
    }
    if run_len > 0 {
        flush(&mut out, run_start, bytes.len(), run_len);
    }
    out
}

/// The byte at `at` as a URL decoder reads it: `%XX` is one byte, three
/// long; anything else is itself, one long.
fn unit(bytes: &[u8], at: usize) -> (u8, usize) {
    if bytes[at] == b'%'
        && let (Some(&hi), Some(&lo)) = (bytes.get(at + 1), bytes.get(at + 2))
        && let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo))
    {
        return (hi << 4 | lo, 3);
    }
    (bytes[at], 1)
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_routes_are_logged_by_route() {
        let token = "ab".repeat(32);
        for tail in ["", ".", ")", ",", "%20", ";a", "%00", "/x"] {
            assert_eq!(logged_path(&format!("/c/{token}{tail}")), "/c/<token>");
            assert_eq!(logged_path(&format!("/ws/{token}{tail}")), "/ws/<ticket>");
        }
        for fixed in FIXED_C_ROUTES {
            assert_eq!(logged_path(fixed), fixed);
        }
        assert_eq!(logged_path("/api/v1/servers"), "/api/v1/servers");
    }

    #[test]
    fn token_shaped_runs_are_redacted_anywhere_else() {
        let token = "0123456789abcdef".repeat(4);
        assert_eq!(logged_path(&format!("//c/{token}")), "//c/<redacted>");
        assert_eq!(logged_path(&format!("/x/{token}/y")), "/x/<redacted>/y");
        assert_eq!(logged_path(&format!("/hcc_{token}")), "/hcc_<redacted>");
        // Percent-encoded digits, alone or mixed with plain ones.
        let encoded: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
        assert_eq!(logged_path(&format!("/{encoded}")), "/<redacted>");
        let mixed = format!(
            "/{}%{:02x}{}",
            &token[..20],
            token.as_bytes()[20],
            &token[21..]
        );
        assert_eq!(logged_path(&mixed), "/<redacted>");
        // Short runs, a UUID's included, stay.
        let uuid = "/api/v1/servers/0f8e6c2a-1b3d-4e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(logged_path(uuid), uuid);
        assert_eq!(logged_path("/%zz%4"), "/%zz%4");
        assert_eq!(redacted("é/abc"), "é/abc");
        // This build's files keep their hash (it is public).
        let file = format!("/v/{}/console.js", assets::build_hash());
        assert_eq!(logged_path(&file), file);
        assert_eq!(
            logged_path(&format!("/v/{token}/console.js")),
            "/v/<redacted>/console.js"
        );
    }
}
