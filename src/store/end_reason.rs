//! Why a console session ended, or what its stop request says: the words
//! `console_sessions.end_reason` and `stop_requested` hold (panels read
//! them), as a type. Written with [`EndReason::words`] (or `Display`),
//! read back with [`EndReason::parse`]; whatever a reader makes of a
//! reason (the console page's explanation, serve/links.rs) is a match on
//! it, never a look for words in it.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A session's end: a code and, where there is one, its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndReason {
    pub code: Code,
    /// For an error, what varies in its words (the console host, Hetzner's
    /// message, the protocol's complaint); for the other codes, whatever
    /// followed their words, as written (`limit: 50 sessions`).
    pub detail: Option<String>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// `client closed`: the browser closed its connection in the relay.
    ClientClosed,
    /// `upstream closed`: the console server closed its connection.
    UpstreamClosed,
    /// `idle`: nothing passed either way for the idle timeout.
    Idle,
    /// `replaced`: its page connected again with a new ticket.
    Replaced,
    /// `revoked` (`hcc revoke`, or the session row gone).
    Revoked,
    /// `suspended` (`hcc suspend`).
    Suspended,
    /// `released`: the server is no longer hcc's.
    Released,
    /// `deleted`: the server was deleted.
    Deleted,
    /// `expired`: the session's lifetime is over.
    Expired,
    /// `rationed`: hcc held its request to Hetzner back.
    Rationed,
    /// `limit`: refused at admission, a cap on live sessions reached.
    Limit,
    /// `error: hcc serve stopped` under the session.
    ServeStopped,
    /// `error: the hcc serve relaying it stopped without ending it`: found
    /// by the next serve's sweep.
    Abandoned,
    /// `error: the console host ORIGIN is not in console_hosts`.
    ConsoleHosts,
    /// `error: no console from Hetzner: MESSAGE`.
    NoConsoleFromHetzner,
    /// `error: the client closed ...`: the browser went away in its
    /// handshake.
    ClientGone,
    /// `error: the client ...`: the browser broke the handshake.
    ClientHandshake,
    /// `error: client: ...`: the browser broke the protocol in the relay.
    ClientProtocol,
    /// `error: upstream: ...`: the console server's side failed.
    UpstreamError,
    /// Any other `error: ...` (the detail: its words).
    Error,
    /// Words of no known reason (the detail: the words).
    Other,
}

/// The codes whose words are fixed, with their words.
const PLAIN: [(Code, &str); 11] = [
    (Code::ClientClosed, "client closed"),
    (Code::UpstreamClosed, "upstream closed"),
    (Code::Idle, "idle"),
    (Code::Replaced, "replaced"),
    (Code::Revoked, "revoked"),
    (Code::Suspended, "suspended"),
    (Code::Released, "released"),
    (Code::Deleted, "deleted"),
    (Code::Expired, "expired"),
    (Code::Rationed, "rationed"),
    (Code::Limit, "limit"),
];

const ERROR: &str = "error: ";
const SERVE_STOPPED: &str = "hcc serve stopped";
const ABANDONED: &str = "the hcc serve relaying it stopped without ending it";
const NO_CONSOLE: &str = "no console from Hetzner: ";
const CONSOLE_HOST: &str = "the console host ";
const NOT_IN_CONSOLE_HOSTS: &str = " is not in console_hosts";
const CLIENT_CLOSED: &str = "the client closed";
const THE_CLIENT: &str = "the client";
const CLIENT: &str = "client: ";
const UPSTREAM: &str = "upstream: ";

impl EndReason {
    /// A reason of a fixed code, without detail.
    pub const fn of(code: Code) -> EndReason {
        EndReason { code, detail: None }
    }

    fn with(code: Code, detail: &str) -> EndReason {
        EndReason {
            code,
            detail: Some(detail.to_string()),
        }
    }

    /// A failure, sorted by its words (the console's handshakes and relay
    /// say what went wrong in sentences of their own).
    pub fn error(words: &str) -> EndReason {
        if words == SERVE_STOPPED {
            return EndReason::of(Code::ServeStopped);
        }
        if words == ABANDONED {
            return EndReason::of(Code::Abandoned);
        }
        if let Some(message) = words.strip_prefix(NO_CONSOLE) {
            return EndReason::with(Code::NoConsoleFromHetzner, message);
        }
        if let Some(origin) = words
            .strip_prefix(CONSOLE_HOST)
            .and_then(|rest| rest.strip_suffix(NOT_IN_CONSOLE_HOSTS))
        {
            return EndReason::with(Code::ConsoleHosts, origin);
        }
        if words.starts_with(CLIENT_CLOSED) {
            return EndReason::with(Code::ClientGone, words);
        }
        if let Some(rest) = words.strip_prefix(THE_CLIENT) {
            return EndReason::with(Code::ClientHandshake, rest);
        }
        if let Some(rest) = words.strip_prefix(CLIENT) {
            return EndReason::with(Code::ClientProtocol, rest);
        }
        if let Some(rest) = words.strip_prefix(UPSTREAM) {
            return EndReason::with(Code::UpstreamError, rest);
        }
        EndReason::with(Code::Error, words)
    }

    /// No console from Hetzner, with what it said.
    pub fn no_console(message: &str) -> EndReason {
        EndReason::with(Code::NoConsoleFromHetzner, message)
    }

    /// The console is at `origin`, a host console_hosts does not allow.
    pub fn console_host(origin: &str) -> EndReason {
        EndReason::with(Code::ConsoleHosts, origin)
    }

    /// The words as stored.
    pub fn words(&self) -> String {
        self.to_string()
    }

    /// The reason stored as `words`: a fixed code alone or with detail
    /// after it (`limit: ...`), an error, or words of no known reason.
    pub fn parse(words: &str) -> EndReason {
        if let Some(rest) = words.strip_prefix(ERROR) {
            return EndReason::error(rest);
        }
        for (code, fixed) in PLAIN {
            if words == fixed {
                return EndReason::of(code);
            }
            if let Some(rest) = words.strip_prefix(fixed)
                && rest.starts_with([':', ' '])
            {
                return EndReason::with(code, rest);
            }
        }
        EndReason::with(Code::Other, words)
    }
}

impl From<Code> for EndReason {
    fn from(code: Code) -> EndReason {
        EndReason::of(code)
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self.detail.as_deref().unwrap_or("");
        if let Some((_, fixed)) = PLAIN.iter().find(|(code, _)| *code == self.code) {
            return write!(f, "{fixed}{detail}");
        }
        match self.code {
            Code::ServeStopped => write!(f, "{ERROR}{SERVE_STOPPED}"),
            Code::Abandoned => write!(f, "{ERROR}{ABANDONED}"),
            Code::ConsoleHosts => write!(f, "{ERROR}{CONSOLE_HOST}{detail}{NOT_IN_CONSOLE_HOSTS}"),
            Code::NoConsoleFromHetzner => write!(f, "{ERROR}{NO_CONSOLE}{detail}"),
            Code::ClientGone | Code::Error => write!(f, "{ERROR}{detail}"),
            Code::ClientHandshake => write!(f, "{ERROR}{THE_CLIENT}{detail}"),
            Code::ClientProtocol => write!(f, "{ERROR}{CLIENT}{detail}"),
            Code::UpstreamError => write!(f, "{ERROR}{UPSTREAM}{detail}"),
            _ => f.write_str(detail),
        }
    }
}

/// In JSON (the API, `--json`), the words as stored.
impl serde::Serialize for EndReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl ToSql for EndReason {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.words()))
    }
}

impl FromSql for EndReason {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<EndReason> {
        value.as_str().map(EndReason::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_back_as_written() {
        for words in [
            "client closed",
            "upstream closed",
            "idle",
            "replaced",
            "revoked",
            "suspended",
            "released",
            "deleted",
            "expired",
            "rationed",
            "limit",
            "error: hcc serve stopped",
            "error: the hcc serve relaying it stopped without ending it",
            "error: no console from Hetzner: 503",
            "error: the console host wss://x.example is not in console_hosts",
            "error: the client closed the connection during the version exchange",
            "error: the client sent a text message",
            "error: the client's connection cannot be waited on",
            "error: client: connection reset",
            "error: upstream: connection reset",
            "error: connection refused",
            "limit: 50 sessions",
            "limited",
        ] {
            assert_eq!(EndReason::parse(words).words(), words);
        }
        assert_eq!(
            EndReason::parse("error: no console from Hetzner: 503"),
            EndReason::no_console("503")
        );
        assert_eq!(
            EndReason::parse("error: the client sent a text message").code,
            Code::ClientHandshake
        );
        assert_eq!(EndReason::parse("limit: 50 sessions").code, Code::Limit);
        assert_eq!(EndReason::parse("limited").code, Code::Other);
    }
}
