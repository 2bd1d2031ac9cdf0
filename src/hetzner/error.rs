//! The client's error: what went wrong talking to Hetzner, in Hetzner's
//! own words (code and message kept, with the correlation id Hetzner
//! support asks for), rendered as one line a user can act on.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The API answered with an error envelope (or an unexpected status).
    Api {
        status: u16,
        code: String,
        message: String,
        correlation_id: Option<String>,
    },
    /// The request never got an answer: DNS, connect, reset, timeout.
    Transport { endpoint: String, detail: String },
    /// The answer could not be understood.
    Decode { what: String, detail: String },
    /// An action ended in `error`.
    ActionFailed {
        id: i64,
        command: String,
        code: String,
        message: String,
    },
    /// An action did not finish in time.
    ActionTimeout { id: i64, command: String, secs: u64 },
    /// A server looked up by name does not exist.
    ServerNotFound(String),
    /// The rate budget cannot be read or written.
    Budget(String),
    /// The rate budget is spent for longer than the caller may wait
    /// (`Client::with_max_wait`); the request was not sent.
    BudgetSpent { secs: u64 },
}

impl Error {
    /// The API's error code (`not_found`, `locked`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } | Error::ActionFailed { code, .. } => Some(code),
            Error::ServerNotFound(_) => Some("not_found"),
            _ => None,
        }
    }

    /// True for failures where retrying later may succeed (network, 5xx,
    /// 429, `locked`): the worker retries these, the CLI reports them.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::ActionTimeout { .. } => true,
            Error::Api { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || matches!(
                        code.as_str(),
                        "locked" | "conflict" | "rate_limit_exceeded" | "timeout" | "maintenance"
                    )
            }
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("hetzner: ")?;
        match self {
            Error::Api {
                status,
                code,
                message,
                correlation_id,
            } => {
                let hint = match (*status, code.as_str()) {
                    (401, _) | (_, "unauthorized") => {
                        " (check HCLOUD_TOKEN or `hcc config set token -`)"
                    }
                    (403, _) | (_, "forbidden") | (_, "token_readonly") => {
                        " (the token needs Read & Write permission)"
                    }
                    (429, _) | (_, "rate_limit_exceeded") => {
                        " (the project's request budget is spent; it refills over time)"
                    }
                    (_, "locked") => " (another action runs on this server; try again shortly)",
                    (_, "protected") => " (disable the server's protection first)",
                    _ => "",
                };
                let reason = if code == "unauthorized" {
                    "token rejected".to_string()
                } else {
                    message.clone()
                };
                write!(f, "{status} {code}: {reason}{hint}")?;
                if let Some(id) = correlation_id {
                    write!(f, " [correlation id {id}]")?;
                }
                Ok(())
            }
            Error::Transport { endpoint, detail } => write!(
                f,
                "cannot reach {endpoint}: {detail} (check the network and `hcc config get endpoint`)"
            ),
            Error::Decode { what, detail } => write!(f, "unexpected answer to {what}: {detail}"),
            Error::ActionFailed {
                id,
                command,
                code,
                message,
            } => write!(f, "action {command} ({id}) failed: {code}: {message}"),
            Error::ActionTimeout { id, command, secs } => write!(
                f,
                "action {command} ({id}) still running after {secs} s; it may still finish (`hcc sync` shows the outcome)"
            ),
            Error::ServerNotFound(name) => write!(f, "server {name:?} not found"),
            Error::Budget(why) => write!(f, "rate budget: {why}"),
            Error::BudgetSpent { secs } => write!(
                f,
                "rate budget: the Hetzner rate budget is spent for the next {secs} s"
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_hetzners_words_and_say_what_to_do() {
        let e = Error::Api {
            status: 401,
            code: "unauthorized".into(),
            message: "unable to authenticate".into(),
            correlation_id: None,
        };
        assert_eq!(
            e.to_string(),
            "hetzner: 401 unauthorized: token rejected (check HCLOUD_TOKEN or `hcc config set token -`)"
        );
        assert_eq!(
            Error::ServerNotFound("vm1".into()).to_string(),
            "hetzner: server \"vm1\" not found"
        );
        let e = Error::Api {
            status: 409,
            code: "locked".into(),
            message: "server is locked".into(),
            correlation_id: Some("abc".into()),
        };
        assert!(e.to_string().ends_with("[correlation id abc]"), "{e}");
        assert!(e.is_transient());
    }
}
