//! What stands between a console session and Hetzner's console, for the
//! console pages (links.rs) and the websocket broker (broker.rs) alike: the
//! server must still be the managed one the link was made for, and the
//! console's host one that `console_hosts` allows.

use super::reply::ApiError;
use super::request::managed_server;
use super::shared::Ctx;
use crate::config::websocket_origin;

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

/// The console at `url`, when the setting `console_hosts` allows its host
/// ([`crate::config::Settings::console_host_allowed`]); otherwise the
/// refusal, logged.
pub(super) fn console_host(ctx: &Ctx, url: &str) -> Result<(), ApiError> {
    if ctx.settings.config.console_host_allowed(url) {
        Ok(())
    } else {
        Err(host_not_allowed(url))
    }
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

/// The CSP `connect-src` of a page that connects to the console at `url`:
/// hcc itself and the console's origin ([`websocket_origin`]); `wss:` when
/// the URL is not one this can state safely.
pub(super) fn connect_to(url: &str) -> String {
    format!(
        "'self' {}",
        websocket_origin(url).as_deref().unwrap_or("wss:")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_names_only_the_consoles_origin() {
        assert_eq!(
            connect_to("wss://web-console.hetzner.cloud/?server_id=1&token=x"),
            "'self' wss://web-console.hetzner.cloud"
        );
        assert_eq!(
            connect_to("ws://127.0.0.1:5901"),
            "'self' ws://127.0.0.1:5901"
        );
        assert_eq!(connect_to("wss://a b;script-src *"), "'self' wss:");
        assert_eq!(connect_to("javascript:alert(1)"), "'self' wss:");
        assert_eq!(connect_to("https://x"), "'self' wss:");
    }
}
