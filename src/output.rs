//! Standard output for everything a command prints: written and flushed at
//! once, so that `hcc wait | while read` loops see each line as it comes;
//! a write that fails (usually a closed pipe) becomes [`Error::Output`],
//! which `main` turns into a quiet exit.

use std::io::{self, Write};

use crate::error::Error;

/// Writes `text` to stdout at once.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    Output::new().write(text)
}

/// Stdout, flushed after every write.
pub(crate) struct Output {
    out: io::Stdout,
}

impl Output {
    pub(crate) fn new() -> Output {
        Output { out: io::stdout() }
    }

    pub(crate) fn write(&mut self, text: &str) -> Result<(), Error> {
        let mut out = self.out.lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(Error::Output)
    }

    pub(crate) fn line(&mut self, text: &str) -> Result<(), Error> {
        self.write(&format!("{text}\n"))
    }
}
