//! What a handler answers: a status, a body and headers, plus the JSON
//! error envelope `{"error":{"code":..,"message":..}}` every API route
//! uses and the HTML error page the console routes use.

use crate::http::Body;

use serde_json::{Value, json};

use crate::error::Error;
use crate::hetzner;

/// An HTTP answer: the server's own type, built by the helpers below.
pub use crate::http::Response as Reply;

pub const JSON: &str = "application/json";
pub const HTML: &str = "text/html; charset=utf-8";

/// A JSON answer, never stored by a cache.
pub fn json(status: u16, value: &Value) -> Reply {
    json_body(status, Body::Owned(rendered(value)))
}

/// `value` as a JSON answer's body: one line.
pub fn rendered(value: &Value) -> Vec<u8> {
    let mut body = value.to_string().into_bytes();
    body.push(b'\n');
    body
}

/// A JSON answer whose body is rendered already (by [`rendered`]; kept
/// and shared between requests, say).
pub fn json_body(status: u16, body: Body) -> Reply {
    Reply {
        status,
        content_type: JSON,
        body,
        headers: vec![("Cache-Control", "no-store".into())],
    }
}

/// An HTML page.
pub fn html(status: u16, body: String) -> Reply {
    Reply {
        status,
        content_type: HTML,
        body: Body::Owned(body.into_bytes()),
        headers: Vec::new(),
    }
}

/// A failed API request: the status, a stable machine-readable code and a
/// message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before trying again (429, 503).
    pub retry_after: Option<u64>,
    /// The methods a 405 names.
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    pub fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    pub fn allow(mut self, methods: impl Into<String>) -> ApiError {
        self.allow = Some(methods.into());
        self
    }

    pub fn to_json(&self) -> Reply {
        let reply = json(
            self.status,
            &json!({"error": {"code": self.code, "message": self.message}}),
        );
        self.decorate(reply)
    }

    /// The same error as a small HTML page, for a person at a browser.
    pub fn to_page(&self) -> Reply {
        let title = match self.status {
            410 => "This console link has expired",
            404 => "Not found",
            403 => "Not allowed",
            429 | 503 | 502 => "Please try again in a moment",
            _ => "Something went wrong",
        };
        let reply = html(self.status, message_page(title, &self.message));
        self.decorate(reply)
    }

    fn decorate(&self, reply: Reply) -> Reply {
        let reply = if self.status == 401 {
            reply.with_header("WWW-Authenticate", "Bearer realm=\"hcc\"")
        } else {
            reply
        };
        let reply = match &self.allow {
            Some(methods) => reply.with_header("Allow", methods.clone()),
            None => reply,
        };
        match self.retry_after {
            Some(secs) => reply.with_header("Retry-After", secs.to_string()),
            None => reply,
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> ApiError {
        match &err {
            Error::Store(store) if store.is_transient() => {
                ApiError::new(503, "busy", err.to_string()).retry_after(1)
            }
            Error::Config(_) => ApiError::new(503, "not_configured", err.to_string()),
            Error::Hetzner(hetzner::Error::ServerNotFound(_)) => {
                ApiError::new(404, "not_found", err.to_string())
            }
            Error::Hetzner(hetzner::Error::Api { status: 404, .. }) => ApiError::new(
                404,
                "not_found",
                format!("{err} (the server is gone at Hetzner)"),
            ),
            Error::Hetzner(hetzner::Error::Budget(_)) => {
                ApiError::new(503, "rate_limited", err.to_string()).retry_after(5)
            }
            // The console's share of the budget is spent for longer than a
            // person should wait.
            Error::Hetzner(hetzner::Error::BudgetSpent { secs }) => {
                super::ration::rationed(std::time::Duration::from_secs((*secs).clamp(1, 3600)))
            }
            Error::Hetzner(h) if h.is_transient() => {
                ApiError::new(503, "hetzner_unavailable", err.to_string()).retry_after(2)
            }
            Error::Hetzner(_) => ApiError::new(502, "hetzner_error", err.to_string()),
            Error::Refused(_) => ApiError::new(403, "not_managed", err.to_string()),
            Error::Input(_) => ApiError::bad_request("bad_request", err.to_string()),
            _ => ApiError::new(500, "internal", err.to_string()),
        }
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(err: crate::store::Error) -> ApiError {
        Error::Store(err).into()
    }
}

/// A minimal page with one message, styled by `style.css` (relative, so
/// that hcc may sit below a path of the proxy; from `/c/TOKEN` and every
/// top-level path it is `/style.css`).
pub fn message_page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"../style.css\">\
         <title>{title}</title></head>\n<body class=\"message\"><main><h1>{title}</h1><p>{}</p></main></body></html>\n",
        escape_html(message),
        title = escape_html(title),
    )
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_envelope_and_retry_hints() {
        let reply = ApiError::new(429, "too_many_requests", "slow down")
            .retry_after(3)
            .to_json();
        assert_eq!(reply.status, 429);
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"]["code"], "too_many_requests");
        assert_eq!(body["error"]["message"], "slow down");
        assert!(reply.headers.contains(&("Retry-After", "3".into())));
        let reply = ApiError::new(401, "unauthorized", "no key").to_json();
        assert!(reply.headers.iter().any(|(n, _)| *n == "WWW-Authenticate"));
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = message_page("x", "<script>alert(1)</script> & 'q'");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;q&#39;"));
        assert!(!page.contains("<script>"));
    }
}
