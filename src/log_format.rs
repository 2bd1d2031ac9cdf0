//! The log lines of `hcc worker` and `hcc serve` on stderr, in the format
//! the `log_format` setting names: `text` (`hcc worker: MESSAGE`, the
//! lines as they always were) or `json` (one object per line: `time`,
//! `level`, `source`, `event`, `message`, and the line's own fields, the
//! same whichever format is chosen: a command's `command_id` and
//! `command`, a request's `remote`, `method`, `path`, `status`, `ms`).
//!
//! Every line is built by its caller from values that are no secret
//! (serve's paths are redacted before they get here: serve/redact.rs);
//! this module only writes them, one line each, with no control character
//! raw in either format (names and messages come from Hetzner, panels and
//! the queue).

use std::sync::atomic::{AtomicU8, Ordering};

use serde_json::{Map, Value};

pub use crate::config::LogFormat;

static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Chooses the format of every line from now on (read when `hcc worker`
/// or `hcc serve` starts).
pub fn set(format: LogFormat) {
    let code = match format {
        LogFormat::Text => 0,
        LogFormat::Json => 1,
    };
    FORMAT.store(code, Ordering::Relaxed);
}

/// The format chosen with [`set`].
pub fn current() -> LogFormat {
    match FORMAT.load(Ordering::Relaxed) {
        1 => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// How much a line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    /// A plain message's level: `warn` for one that says `warning:`
    /// first, as hcc's warnings do; else `info`.
    pub fn of(message: &str) -> Level {
        if message.starts_with("warning:") {
            Level::Warn
        } else {
            Level::Info
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One log line: who writes it, what it says, its fields.
#[derive(Debug, Clone)]
pub struct Line {
    /// `worker` or `serve`: the text form's `hcc worker:` prefix.
    pub source: &'static str,
    pub level: Level,
    /// What happened, one word: `log` for a plain message, `command` for
    /// a command's step, `request` for serve's access line.
    pub event: &'static str,
    /// The text form's words after the prefix.
    pub message: String,
    /// The line's own fields (JSON only; the message says them in text).
    pub fields: Vec<(&'static str, Value)>,
}

impl Line {
    /// A plain message.
    pub fn new(source: &'static str, level: Level, message: impl Into<String>) -> Line {
        Line {
            source,
            level,
            event: "log",
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn event(mut self, event: &'static str) -> Line {
        self.event = event;
        self
    }

    pub fn field(mut self, name: &'static str, value: impl Into<Value>) -> Line {
        self.fields.push((name, value.into()));
        self
    }

    /// Writes the line to stderr in the chosen format.
    pub fn emit(&self) {
        use std::io::Write;
        let mut line = self.render(current(), now_millis());
        line.push('\n');
        // One write(2) per line (eprintln! makes one per piece: three for
        // every request `hcc serve` logs), and a log that cannot be written
        // costs the line, not the caller (eprintln! would panic).
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// The line as written, without its newline; `millis`: the time, in
    /// Unix milliseconds.
    pub fn render(&self, format: LogFormat, millis: i64) -> String {
        match format {
            LogFormat::Text => format!(
                "hcc {}: {}",
                self.source,
                crate::output::one_line(&self.message)
            ),
            LogFormat::Json => {
                let mut object = Map::new();
                object.insert("time".into(), time(millis).into());
                object.insert("level".into(), self.level.as_str().into());
                object.insert("source".into(), self.source.into());
                object.insert("event".into(), self.event.into());
                object.insert("message".into(), self.message.clone().into());
                for (name, value) in &self.fields {
                    object.insert((*name).into(), value.clone());
                }
                // serde_json escapes C0 controls; DEL and C1 it leaves raw.
                crate::output::one_line(&Value::Object(object).to_string()).into_owned()
            }
        }
    }
}

/// `2026-12-06T11:42:25.123Z`.
fn time(millis: i64) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Line {
        Line::new(
            "serve",
            Level::Info,
            "127.0.0.1 GET /api/v1/servers 200 1.5 ms",
        )
        .event("request")
        .field("remote", "127.0.0.1")
        .field("method", "GET")
        .field("path", "/api/v1/servers")
        .field("status", 200)
        .field("ms", 1.5)
    }

    #[test]
    fn text_is_the_old_line() {
        assert_eq!(
            request().render(LogFormat::Text, 0),
            "hcc serve: 127.0.0.1 GET /api/v1/servers 200 1.5 ms"
        );
        let odd = Line::new("worker", Level::Warn, "a\nb\u{1b}[2J");
        assert_eq!(
            odd.render(LogFormat::Text, 0),
            "hcc worker: a\\u000ab\\u001b[2J"
        );
    }

    #[test]
    fn json_is_one_object_with_the_fields() {
        let line = request().render(LogFormat::Json, 1_765_021_345_123);
        assert!(!line.contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["time"], "2025-12-06T11:42:25.123Z");
        assert_eq!(value["level"], "info");
        assert_eq!(value["source"], "serve");
        assert_eq!(value["event"], "request");
        assert_eq!(value["status"], 200);
        assert_eq!(value["path"], "/api/v1/servers");
        assert_eq!(value["message"], "127.0.0.1 GET /api/v1/servers 200 1.5 ms");
        assert_eq!(Level::of("warning: plain HTTP"), Level::Warn);
        assert_eq!(Level::of("listening on http://[::1]:1"), Level::Info);
        let odd = Line::new("worker", Level::Error, "x\u{7f}\u{9b}y").render(LogFormat::Json, 0);
        assert!(!odd.chars().any(char::is_control), "{odd}");
        let back: Value = serde_json::from_str(&odd).unwrap();
        assert_eq!(back["message"], "x\u{7f}\u{9b}y");
    }
}
