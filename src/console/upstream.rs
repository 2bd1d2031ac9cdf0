//! The console server's side: a websocket to Hetzner's `wss_url` (TLS by
//! rustls with the webpki roots) or a `ws://` URL (the simulator, a local
//! websockify), subprotocol `binary`, then the RFB client handshake with
//! the console's password. The URL carries Hetzner's token in its query:
//! no error text here repeats it.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{HandshakeError, WebSocket};

use super::rfb;
use super::wsio::WsIo;

/// Connecting, and each read or write of the handshakes, may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The websocket and RFB handshakes together may take this long, however
/// the server paces its bytes.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest websocket message taken from a console server.
pub const MAX_MESSAGE: usize = 4 << 20;

pub type UpstreamSocket = WebSocket<MaybeTlsStream<TcpStream>>;

/// A console server, authenticated and waiting for ClientInit.
#[derive(Debug)]
pub struct Upstream {
    pub ws: UpstreamSocket,
    /// Bytes the server sent past SecurityResult (normally none).
    pub rest: Vec<u8>,
}

/// `scheme://host:port` of a URL, for messages: never its path or query.
pub fn origin(url: &str) -> String {
    match crate::config::url_origin(url) {
        Some((scheme, authority)) => format!("{scheme}://{authority}"),
        None => "the console URL".into(),
    }
}

/// Dials `url`, opens the websocket and authenticates with `password`.
pub fn connect(url: &str, password: &str) -> Result<Upstream, String> {
    let shown = origin(url);
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("the console URL {shown} is not usable: {e}"))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tungstenite::http::HeaderValue::from_static(crate::http::websocket::BINARY),
    );
    let uri = request.uri();
    let Some(host) = uri.host().map(|h| h.trim_matches(['[', ']']).to_string()) else {
        return Err(format!("the console URL {shown} names no host"));
    };
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("wss") => 443,
        Some("ws") => 80,
        _ => {
            return Err(format!(
                "the console URL {shown} is neither ws:// nor wss://"
            ));
        }
    });
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {shown}: {e}"))?
        .collect();
    let mut last = format!("{shown} has no address");
    let mut socket = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                socket = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {shown}: {e}"),
        }
    }
    let socket = socket.ok_or(last)?;
    let timeouts = socket
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .and_then(|()| socket.set_write_timeout(Some(CONNECT_TIMEOUT)))
        .and_then(|()| socket.set_nodelay(true));
    timeouts.map_err(|e| format!("cannot set up the connection to {shown}: {e}"))?;
    let watch = super::deadline::watch(&socket, HANDSHAKE_TIMEOUT)
        .map_err(|e| format!("cannot set up the connection to {shown}: {e}"))?;
    handshakes(request, socket, password, &shown, url).map_err(|why| {
        if watch.fired() {
            format!("{shown} did not complete its handshake in time")
        } else {
            why
        }
    })
}

/// The websocket's handshake on `socket`, then RFB's.
fn handshakes(
    request: tungstenite::handshake::client::Request,
    socket: TcpStream,
    password: &str,
    shown: &str,
    url: &str,
) -> Result<Upstream, String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(super::relay::READ_BUFFER)
        .write_buffer_size(super::relay::WRITE_BUFFER)
        .max_write_buffer_size(super::relay::MAX_WRITE_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let mut ws = match tungstenite::client_tls_with_config(request, socket, Some(config), None) {
        Ok((ws, _)) => ws,
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            // An expired console URL is answered with an HTTP error.
            return Err(format!(
                "{shown} refused the websocket: HTTP {}",
                response.status()
            ));
        }
        Err(HandshakeError::Failure(e)) => {
            return Err(format!(
                "the websocket to {shown} failed: {}",
                scrub(&e.to_string(), url)
            ));
        }
        Err(HandshakeError::Interrupted(_)) => {
            return Err(format!(
                "{shown} did not complete the websocket handshake in time"
            ));
        }
    };
    let mut io = WsIo::new(&mut ws);
    rfb::client_handshake(&mut io, password)?;
    let rest = io.into_rest();
    Ok(Upstream { ws, rest })
}

/// An error text without the URL's secret parts, should a library repeat them.
fn scrub(text: &str, url: &str) -> String {
    match url.split_once('?') {
        Some((_, query)) if !query.is_empty() => text.replace(query, "..."),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_only_the_origin() {
        assert_eq!(
            origin("wss://web-console.hetzner.cloud/?server_id=1&token=secret"),
            "wss://web-console.hetzner.cloud"
        );
        assert_eq!(origin("ws://127.0.0.1:5901/x"), "ws://127.0.0.1:5901");
        assert_eq!(origin("ws://user:pw@h:1/"), "ws://h:1");
        assert_eq!(origin("nonsense"), "the console URL");
        assert_eq!(scrub("bad ?token=abc", "wss://h/?token=abc"), "bad ?...");
    }

    #[test]
    fn a_closed_port_is_an_error_with_a_reason() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = connect(&format!("ws://{addr}/?token=s3cret"), "pw").unwrap_err();
        assert!(
            err.starts_with(&format!("cannot connect to ws://{addr}")),
            "{err}"
        );
        assert!(!err.contains("s3cret"));
        let err = connect("http://example.invalid/", "pw").unwrap_err();
        assert!(!err.is_empty());
    }
}
