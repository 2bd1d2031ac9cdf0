//! Standard output for everything a command prints: written and flushed at
//! once, so that `hcc wait | while read` loops see each line as it comes;
//! a write that fails (usually a closed pipe) becomes [`Error::Output`],
//! which `main` turns into a quiet exit.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use crate::error::Error;

/// Writes `text` to stdout at once, control characters escaped
/// ([`visible`]).
pub(crate) fn print(text: &str) -> Result<(), Error> {
    Output::new().write(text)
}

/// `text` safe for a terminal: every control character but newline and
/// tab (ESC, BEL, CR, DEL, the C1 range) written as `\u001b`. Names and
/// messages come from Hetzner's API, panels and the queue; one with
/// escape sequences in it would otherwise retitle the operator's window
/// or clear the screen. The escape is JSON's own, so a line of JSON stays
/// valid JSON with the same meaning (serde_json escapes C0 already; DEL
/// and C1 it leaves raw).
pub(crate) fn visible(text: &str) -> Cow<'_, str> {
    escape(text, |c| c.is_control() && c != '\n' && c != '\t')
}

/// [`visible`] for one line: newlines and tabs escaped too.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, char::is_control)
}

fn escape(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escaped(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Stdout, flushed after every write.
pub(crate) struct Output {
    out: io::Stdout,
}

impl Output {
    pub(crate) fn new() -> Output {
        Output { out: io::stdout() }
    }

    /// Writes `text`, control characters escaped ([`visible`]).
    pub(crate) fn write(&mut self, text: &str) -> Result<(), Error> {
        self.write_raw(&visible(text))
    }

    /// Writes `text` as it is: for what hcc itself generated whole (the
    /// man page, shell completions).
    pub(crate) fn write_raw(&mut self, text: &str) -> Result<(), Error> {
        let mut out = self.out.lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(Error::Output)
    }

    pub(crate) fn line(&mut self, text: &str) -> Result<(), Error> {
        self.write(&format!("{text}\n"))
    }
}

/// A full listing's progress on stderr when it is a terminal: one line,
/// redrawn after each page, erased when the listing is done. Nothing
/// elsewhere (a log file, a panel's pipe).
pub(crate) struct TerminalProgress {
    terminal: bool,
    shown: bool,
}

impl TerminalProgress {
    pub(crate) fn new() -> TerminalProgress {
        TerminalProgress {
            terminal: io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// `seen` servers so far of `total` (when the API said).
    pub(crate) fn page(&mut self, seen: usize, total: Option<u64>) {
        if self.terminal {
            let total = total.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
            eprint!("\rhcc: sync: {seen}/{total} servers");
            self.shown = true;
        }
    }

    /// The listing is done: the line goes.
    pub(crate) fn finish(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal_raw() {
        let hostile = "srv-\u{1b}]0;PWNED\u{7}\u{1b}[2J\r\u{7f}\u{9b}1m";
        let shown = visible(hostile);
        assert_eq!(
            shown,
            "srv-\\u001b]0;PWNED\\u0007\\u001b[2J\\u000d\\u007f\\u009b1m"
        );
        assert!(!shown.chars().any(char::is_control));
        assert_eq!(visible("a\tb\nc\n"), "a\tb\nc\n");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\nb"), "a\\u000ab");
        // JSON stays JSON, with the same strings.
        let json = serde_json::json!({ "name": hostile }).to_string();
        let back: serde_json::Value = serde_json::from_str(&visible(&json)).unwrap();
        assert_eq!(back["name"], hostile);
    }
}
