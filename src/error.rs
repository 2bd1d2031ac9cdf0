//! The crate's error: one variant per kind of failure a user can meet, each
//! rendered as one line (without the `hcc: ` prefix, which `main` adds) and
//! mapped to a documented exit code.
//!
//! Exit codes (also in the man page, EXIT STATUS):
//! - 0: done.
//! - 1: the operation failed or found nothing to do (`pull` on an empty
//!   queue, `done` on a command that is not running, a database or file
//!   system failure).
//! - 2: usage or configuration: a bad argument, an unknown command, an
//!   invalid setting, no API token, a database written by a newer hcc, an
//!   unsafe state directory (a planted symlink, FIFO, hard link or foreign
//!   directory where hcc keeps a file).
//! - 4: busy: another worker already runs on this state directory.
//! - 3: refused by the guard: the server lacks the managed label, or a new
//!   server's name lacks the prefix.
//! - 5: a stale close: `done`/`fail` for a lease that expired and was
//!   handed to another consumer.
//! - 6: `hcc check` found a problem in the database.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::{config, hetzner, safe_fs, store};

/// Exit code for a failed operation.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for usage and configuration errors (clap uses 2 as well).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when another process holds what this one needs (a second
/// worker on the same state directory).
pub const EXIT_BUSY: u8 = 4;
/// Exit code for a request the guard refused: the server is not managed
/// by hcc, or a new name lacks the prefix.
pub const EXIT_REFUSED: u8 = 3;
/// Exit code for closing a lease that is no longer the command's latest.
pub const EXIT_STALE: u8 = 5;
/// Exit code of `hcc check` when it found a problem (it could check; the
/// database is not as it should be).
pub const EXIT_PROBLEMS: u8 = 6;

#[derive(Debug)]
pub enum Error {
    /// A setting or the configuration file is wrong.
    Config(config::Error),
    /// The SQLite state could not be opened, migrated, read or written.
    Store(store::Error),
    /// An argument was refused: unknown command, invalid server name, ...
    Input(String),
    /// The operation could not be carried out as asked.
    Failed(String),
    /// A file or directory operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Writing to stdout failed (usually a closed pipe).
    Output(io::Error),
    /// The inotify watch could not be set up.
    Watch(String),
    /// Talking to Hetzner failed.
    Hetzner(hetzner::Error),
    /// The guard refused: unmanaged server, name without the prefix.
    Refused(String),
    /// Another process holds the state directory's worker lock.
    Busy(String),
    /// A name in the state directory holds something hcc did not make
    /// (a symlink, a FIFO, a hard link, a foreign directory).
    Unsafe { path: PathBuf, why: String },
}

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A [`safe_fs::Failure`] while trying to `action` `path`.
    pub fn fs(action: &'static str, path: impl Into<PathBuf>, failure: safe_fs::Failure) -> Self {
        match failure {
            safe_fs::Failure::Unsafe(why) => Error::Unsafe {
                path: path.into(),
                why,
            },
            safe_fs::Failure::Io(source) => Error::io(action, path, source),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(config::Error::Unreadable { .. }) => EXIT_FAILED,
            Error::Config(_) | Error::Input(_) => EXIT_USAGE,
            Error::Refused(_) => EXIT_REFUSED,
            Error::Busy(_) => EXIT_BUSY,
            Error::Unsafe { .. } => EXIT_USAGE,
            Error::Store(err) if err.is_usage() => EXIT_USAGE,
            Error::Store(store::Error::StaleLease(_)) => EXIT_STALE,
            _ => EXIT_FAILED,
        }
    }

    /// True when trying again later may succeed: a network failure or one
    /// Hetzner asks to retry, the database locked by another process's long
    /// transaction, a full disk, a file system error. The long-running
    /// loops (`next`, `wait`, the worker) report these and go on; anything
    /// else ends them (or, for a queued command, fails it).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Hetzner(err) => err.is_transient(),
            Error::Store(err) => err.is_transient(),
            Error::Io { .. } => true,
            _ => false,
        }
    }

    /// True when stdout's reader went away; `main` exits 0 silently then.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output(err) if err.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(err) => err.fmt(f),
            Error::Store(err) => err.fmt(f),
            Error::Input(msg)
            | Error::Failed(msg)
            | Error::Watch(msg)
            | Error::Refused(msg)
            | Error::Busy(msg) => f.write_str(msg),
            Error::Hetzner(err) => err.fmt(f),
            Error::Io {
                action,
                path,
                source,
            } => write!(
                f,
                "cannot {action} `{}`: {source}",
                crate::verb::escaped(&path.display().to_string())
            ),
            Error::Output(err) => write!(f, "cannot write output: {err}"),
            Error::Unsafe { path, why } => f.write_str(&safe_fs::refusal(path, why)),
        }
    }
}

impl std::error::Error for Error {}

impl From<config::Error> for Error {
    fn from(err: config::Error) -> Self {
        Error::Config(err)
    }
}

impl From<hetzner::Error> for Error {
    fn from(err: hetzner::Error) -> Self {
        Error::Hetzner(err)
    }
}

impl From<store::Error> for Error {
    fn from(err: store::Error) -> Self {
        Error::Store(err)
    }
}
