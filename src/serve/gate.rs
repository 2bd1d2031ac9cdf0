//! What stands between a console session and Hetzner's console, for the
//! console pages (links.rs) and the websocket broker (broker.rs) alike: the
//! server must still be the managed one the link was made for, and the
//! console's host one that `console_hosts` allows.

use super::reply::ApiError;
use super::request::managed_server;
use super::shared::Ctx;

/// The server's id when it is still the managed server the link was made
/// for; a server deleted and made again under its name is not.
pub(super) fn same_server(ctx: &Ctx, name: &str, made_for: i64) -> Result<i64, ApiError> {
    let (_, id) = managed_server(ctx, name)?;
    if id == made_for {
        Ok(id)
    } else {
        Err(ApiError::new(
            410,
            "server_replaced",
            format!("The server `{name}` this console was opened for no longer exists."),
        ))
    }
}

/// Whether hcc may connect to (or send a browser to) the console at
/// `url`: the setting `console_hosts` names the websocket origins consoles
/// may be at; empty, any.
pub(super) fn console_host_allowed(hosts: &str, url: &str) -> bool {
    let normal = |origin: &str| {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        match origin.strip_suffix(":443") {
            Some(bare) if bare.starts_with("wss://") => bare.to_string(),
            _ => match origin.strip_suffix(":80") {
                Some(bare) if bare.starts_with("ws://") => bare.to_string(),
                _ => origin,
            },
        }
    };
    let origin = normal(&websocket_origin(url));
    hosts.split_whitespace().next().is_none()
        || hosts.split_whitespace().any(|h| normal(h) == origin)
}

/// The refusal of a console whose host `console_hosts` does not name
/// (logged for the operator with the host).
pub(super) fn host_not_allowed(url: &str) -> ApiError {
    super::shared::log(&format!(
        "console: the console host {} is not in the setting console_hosts",
        crate::console::upstream::origin(url)
    ));
    ApiError::new(
        502,
        "console_host_not_allowed",
        "The console of this server is at a host the setting console_hosts does not allow. Please tell your provider.",
    )
}

/// `scheme://host[:port]` of a websocket URL, for the page's CSP; `wss:`
/// when the URL is not one this can state safely.
pub(super) fn websocket_origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "wss:".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let safe = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if matches!(scheme, "ws" | "wss") && safe {
        format!("{scheme}://{authority}")
    } else {
        "wss:".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_names_only_the_consoles_origin() {
        assert_eq!(
            websocket_origin("wss://web-console.hetzner.cloud/?server_id=1&token=x"),
            "wss://web-console.hetzner.cloud"
        );
        assert_eq!(
            websocket_origin("ws://127.0.0.1:5901"),
            "ws://127.0.0.1:5901"
        );
        assert_eq!(websocket_origin("wss://a b;script-src *"), "wss:");
        assert_eq!(websocket_origin("javascript:alert(1)"), "wss:");
        assert_eq!(websocket_origin("https://x"), "wss:");
    }

    #[test]
    fn console_hosts_bound_where_a_console_may_be() {
        let url = "wss://web-console.hetzner.cloud/?server_id=1&token=x";
        assert!(console_host_allowed("", url));
        assert!(console_host_allowed("wss://web-console.hetzner.cloud", url));
        assert!(console_host_allowed(
            "ws://127.0.0.1:1 wss://WEB-console.hetzner.cloud:443",
            url
        ));
        assert!(!console_host_allowed("wss://other.example", url));
        assert!(!console_host_allowed(
            "wss://web-console.hetzner.cloud",
            "ws://web-console.hetzner.cloud/"
        ));
    }
}
