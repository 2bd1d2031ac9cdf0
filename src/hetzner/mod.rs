//! The Hetzner Cloud API client: one request pipeline (reserve a token of
//! the shared budget, send, read the rate-limit headers, turn an error
//! envelope into [`Error`], retry as [`retry`] decides, parse) and the
//! calls hcc makes, in `api`. It knows neither clap nor SQLite: the budget
//! is a trait the store implements, notices go to a callback.

mod actions;
mod api;
pub mod budget;
mod error;
pub mod retry;
pub mod wire;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use actions::{ActionWait, Ended, Poller, Waiter, poll_interval};
pub use api::{CreateRequest, ServerPage};
pub use budget::{Budget, Priority, RateState, Reservation};
pub use error::Error;

use retry::{Decision, Outcome};

/// The API token. Never shown: `Debug` and `Display` are redacted.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Token {
        Token(token)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    token: Token,
    budget: Box<dyn Budget + Send>,
    priority: Priority,
    /// The share of the bucket consoles and syncs leave for commands.
    command_share: f64,
    notice: std::sync::Arc<dyn Fn(&str) + Send + Sync>,
    /// Requests sent, for summaries ("sync: 3 requests").
    sent: std::cell::Cell<u64>,
    /// The bucket as the last response described it.
    last_rate: std::cell::Cell<Option<RateState>>,
    /// The number of the reservation the current request is sent under.
    reservation: std::cell::Cell<Option<u64>>,
    max_retries: u32,
    /// The longest a request may wait (for the budget, before a retry);
    /// longer, and it fails at once. None: as long as it takes.
    max_wait: Option<Duration>,
}

impl Client {
    pub fn new(endpoint: &str, token: Token, budget: Box<dyn Budget + Send>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(format!("hcc/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(60)))
            .max_redirects(0)
            .build()
            .into();
        Client {
            agent,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            budget,
            priority: Priority::Command,
            command_share: budget::DEFAULT_COMMAND_SHARE,
            notice: std::sync::Arc::new(|_| {}),
            sent: std::cell::Cell::new(0),
            last_rate: std::cell::Cell::new(None),
            reservation: std::cell::Cell::new(None),
            max_retries: retry::MAX_RETRIES,
            max_wait: None,
        }
    }

    /// The class this client's requests draw from the budget as.
    pub fn with_priority(mut self, priority: Priority) -> Client {
        self.priority = priority;
        self
    }

    /// The share of the bucket consoles and syncs leave for commands
    /// (`command_reserve`).
    pub fn with_command_share(mut self, share: f64) -> Client {
        self.command_share = share;
        self
    }

    /// How often one request is retried before its error is returned.
    pub fn with_max_retries(mut self, retries: u32) -> Client {
        self.max_retries = retries;
        self
    }

    /// Fail instead of waiting longer than `wait` for the budget or a
    /// retry: for a person waiting on a page.
    pub fn with_max_wait(mut self, wait: Duration) -> Client {
        self.max_wait = Some(wait);
        self
    }

    /// Where notices go (waits for the budget, retries).
    pub fn with_notice(mut self, notice: impl Fn(&str) + Send + Sync + 'static) -> Client {
        self.notice = std::sync::Arc::new(notice);
        self
    }

    /// A client like this one (endpoint, token, priority, retries, notices)
    /// for another thread, drawing from the same budget through its own
    /// handle; `None` when the budget cannot be shared.
    pub fn sibling(&self) -> Option<Client> {
        Some(Client {
            agent: self.agent.clone(),
            endpoint: self.endpoint.clone(),
            token: self.token.clone(),
            budget: self.budget.another()?,
            priority: self.priority,
            command_share: self.command_share,
            notice: self.notice.clone(),
            sent: std::cell::Cell::new(0),
            last_rate: std::cell::Cell::new(None),
            reservation: std::cell::Cell::new(None),
            max_retries: self.max_retries,
            max_wait: self.max_wait,
        })
    }

    /// Counts `n` requests a sibling sent for this client's caller.
    pub fn count_sent(&self, n: u64) {
        self.sent.set(self.sent.get() + n);
    }

    /// Passes `msg` to where this client's notices go.
    pub fn notice(&self, msg: &str) {
        (self.notice)(msg);
    }

    /// The endpoint as it may be shown (logs, errors): the password of
    /// `http://user:PASSWORD@host` redacted, as the token is.
    pub fn endpoint(&self) -> String {
        shown_url(&self.endpoint)
    }

    /// `text` with the endpoint's credentials redacted.
    fn scrub(&self, text: &str) -> String {
        let text = text.replace(&self.endpoint, &self.endpoint());
        match userinfo(&self.endpoint) {
            Some(secret) if !secret.is_empty() => text.replace(secret, "<redacted>"),
            _ => text,
        }
    }

    /// How many requests this client has sent.
    pub fn requests_sent(&self) -> u64 {
        self.sent.get()
    }

    /// Sends one request, with retries; returns the parsed JSON body
    /// (`Value::Null` for an empty one).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let what = format!("{} {path}", method.as_str());
        let mut retries = 0;
        loop {
            self.wait_for_budget()?;
            let (outcome, result) = self.attempt(method, path, query, body, &what);
            if matches!(outcome, Outcome::Unreachable) {
                // Nothing reached the server: the token is still there.
                self.refund();
            }
            crate::metrics::hetzner_request(outcome.status());
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let rate_wait = self.rate_wait();
            let decision = retry::decide_with(
                &outcome,
                method == Method::Get,
                retries,
                self.max_retries,
                rate_wait,
                jitter(),
            );
            match decision {
                Decision::Fail => return Err(error),
                Decision::Retry(wait) if self.max_wait.is_some_and(|max| wait > max) => {
                    return Err(error);
                }
                Decision::Retry(wait) => {
                    // Short retries are routine; a long one deserves a word.
                    if wait >= Duration::from_secs(5) {
                        (self.notice)(&format!(
                            "{error}; retrying in {:.0} s",
                            wait.as_secs_f64().ceil()
                        ));
                    }
                    std::thread::sleep(wait);
                    retries += 1;
                }
            }
        }
    }

    fn wait_for_budget(&self) -> Result<(), Error> {
        let Reservation { wait, number } = self
            .budget
            .reserve(self.priority, self.command_share, now())
            .map_err(Error::Budget)?;
        self.reservation.set(number);
        if self.max_wait.is_some_and(|max| wait > max) {
            self.refund();
            return Err(Error::BudgetSpent {
                secs: wait.as_secs_f64().ceil() as u64,
            });
        }
        if wait > Duration::from_secs(1) {
            (self.notice)(&format!(
                "waiting {:.0} s for the Hetzner rate budget",
                wait.as_secs_f64().ceil()
            ));
        }
        std::thread::sleep(wait);
        Ok(())
    }

    fn refund(&self) {
        if let Err(why) = self.budget.refund(now()) {
            (self.notice)(&format!("cannot record the rate budget: {why}"));
        }
    }

    /// After a 429: how long until the bucket holds a token, if known.
    fn rate_wait(&self) -> Option<Duration> {
        self.last_rate
            .get()
            .map(|state| state.next_token_in(now()).max(Duration::from_secs(1)))
    }

    fn attempt(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        what: &str,
    ) -> (Outcome, Result<Value, Error>) {
        let url = format!("{}{path}", self.endpoint);
        // ureq percent-encodes each pair (a space as %20).
        let pairs = query.iter().map(|(key, value)| (*key, value.as_str()));
        let auth = format!("Bearer {}", self.token.0);
        self.sent.set(self.sent.get() + 1);
        let response = match method {
            Method::Get | Method::Delete => {
                let request = if method == Method::Get {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                request
                    .query_pairs(pairs)
                    .header("Authorization", &auth)
                    .header("Accept", "application/json")
                    .call()
            }
            Method::Post | Method::Put => {
                let request = if method == Method::Post {
                    self.agent.post(&url)
                } else {
                    self.agent.put(&url)
                };
                let bytes = body.map(Value::to_string).unwrap_or_else(|| "{}".into());
                request
                    .query_pairs(pairs)
                    .header("Authorization", &auth)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json")
                    .send(bytes.as_bytes())
            }
        };
        let mut response = match response {
            Ok(response) => response,
            Err(err) => {
                let outcome = if matches!(
                    err,
                    ureq::Error::HostNotFound | ureq::Error::ConnectionFailed
                ) || matches!(&err, ureq::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::ConnectionRefused)
                {
                    Outcome::Unreachable
                } else {
                    Outcome::Transport
                };
                return (
                    outcome,
                    Err(Error::Transport {
                        endpoint: self.endpoint(),
                        detail: self.scrub(&transport_detail(&err)),
                    }),
                );
            }
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(state) = RateState::from_headers(
            header("RateLimit-Limit").as_deref(),
            header("RateLimit-Remaining").as_deref(),
            header("RateLimit-Reset").as_deref(),
            now(),
        ) {
            self.last_rate.set(Some(state));
            if let Err(why) = self.budget.record(state, self.reservation.get()) {
                (self.notice)(&format!("cannot record the rate budget: {why}"));
            }
        }
        let correlation_id = header("X-Correlation-Id");
        let status = response.status().as_u16();
        let text = match response.body_mut().read_to_string() {
            Ok(text) => text,
            Err(err) => {
                return (
                    Outcome::Transport,
                    Err(Error::Transport {
                        endpoint: self.endpoint(),
                        detail: self.scrub(&format!(
                            "reading the answer failed: {}",
                            transport_detail(&err)
                        )),
                    }),
                );
            }
        };
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return (Outcome::Status { status, code: None }, Ok(Value::Null));
            }
            let parsed = serde_json::from_str(&text).map_err(|e| Error::Decode {
                what: what.to_string(),
                detail: e.to_string(),
            });
            return (Outcome::Status { status, code: None }, parsed);
        }
        let envelope = serde_json::from_str::<wire::ErrorEnvelope>(&text).ok();
        let code = envelope.as_ref().map(|e| e.error.code.clone());
        let message = envelope
            .map(|e| e.error.message)
            .unwrap_or_else(|| format!("HTTP {status} without an error body"));
        (
            Outcome::Status {
                status,
                code: code.clone(),
            },
            Err(Error::Api {
                status,
                code: code.unwrap_or_else(|| "http_error".into()),
                message,
                correlation_id,
            }),
        )
    }
}

/// The secret part of a URL's userinfo (`user:PASSWORD@`, or a lone
/// `TOKEN@`), if any.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (info, _) = authority.rsplit_once('@')?;
    Some(info.split_once(':').map_or(info, |(_, password)| password))
}

/// `url` as it may be shown: `http://user:<redacted>@host/...`; a lone
/// userinfo (`http://TOKEN@host`) is redacted whole. Every place that
/// prints an endpoint (the worker's start line, errors, `config show`)
/// goes through this.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((info, host)) => {
            let user = match info.split_once(':') {
                Some((user, _)) => format!("{user}:<redacted>"),
                None => "<redacted>".to_string(),
            };
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

fn transport_detail(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection refused or failed".into(),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionReset => "connection reset".into(),
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::UnexpectedEof => "connection closed without an answer".into(),
            _ => io.to_string(),
        },
        other => other.to_string(),
    }
}

/// Unix seconds, with fractions.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A number in [0, 1) for backoff jitter: a fresh random draw, so that
/// several processes retrying at once spread out.
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_credentials_are_redacted() {
        assert_eq!(
            shown_url("http://user:s3cret@127.0.0.1:9/v1"),
            "http://user:<redacted>@127.0.0.1:9/v1"
        );
        assert_eq!(
            shown_url("https://tok@example.com"),
            "https://<redacted>@example.com"
        );
        assert_eq!(
            shown_url("https://api.hetzner.cloud/v1?a=b@c"),
            "https://api.hetzner.cloud/v1?a=b@c"
        );
        assert_eq!(userinfo("http://u:p@h/v1"), Some("p"));
        assert_eq!(userinfo("http://h/v1"), None);
    }

    #[test]
    fn tokens_never_show() {
        let t = Token::new("secret-token".into());
        assert!(!format!("{t} {t:?}").contains("secret"));
    }
}
