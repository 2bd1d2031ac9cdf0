//! The command line as typed: clap definitions only. Doc comments here are
//! the help text, the man page and the completions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Hetzner Cloud console middleware: a local SQLite state, a command queue
/// fed by panels, and VNC console access.
///
/// hcc sits between a hosting panel or billing system and the Hetzner Cloud
/// API. Panels queue work by renaming a file into `spool/new`, inserting a
/// row into `commands`, or running `hcc push`; consumers take it with
/// `hcc next` or `hcc pull` and close it with `hcc done` or `hcc fail`.
#[derive(Debug, Parser)]
#[command(name = "hcc", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// State directory holding hcc.db, config.json and spool/.
    /// Default: $XDG_STATE_HOME/hcc, else ~/.local/state/hcc.
    #[arg(long, global = true, env = "HCC_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for each setting interactively, showing its current value.
    ///
    /// RETURN keeps a value, `-` clears it (back to its default). The token
    /// is never shown and not echoed on a terminal. Nothing is saved until
    /// the final question is answered with `y`.
    Setup,

    /// Read or change settings without questions.
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Queue a command and wake consumers.
    ///
    /// CMD is one of sync, start, stop, force (alias off), reboot, reset,
    /// console, create (alias new), kill, settag, deltag, notify (alias
    /// put). Server names must be valid hostnames (RFC 1123); `create`
    /// takes NAME [TYPE [IMAGE [LOCATION]]].
    Push {
        /// Print the new command's id.
        #[arg(long)]
        id: bool,
        /// The command word.
        #[arg(value_name = "CMD")]
        cmd: String,
        /// Its arguments.
        #[arg(value_name = "ARG")]
        args: Vec<String>,
    },

    /// Lease the oldest queued command and print `CMD ARG`; exit 1 if none.
    ///
    /// Ingests the spool first. The command is marked running until the
    /// lease expires, then queued again (up to max_attempts times), so no
    /// command is lost when a consumer dies. Without --id, the same
    /// consumer's next `pull` or `next` marks it done (the original tool's
    /// loops never acknowledge; the consumer is the parent process or
    /// process group, or HCC_CONSUMER); with --id, close it with `hcc done
    /// ID` or `hcc fail ID REASON`.
    Pull(LeaseArgs),

    /// Like pull, but block until a command can be leased.
    ///
    /// Wakes on inotify when a spool file arrives or any process writes to
    /// the database; ingests the spool as it goes.
    Next(LeaseArgs),

    /// Mark a leased command done.
    Done {
        /// The command's id, as printed by `pull --id`.
        id: i64,
        /// Optional result, stored as JSON (text that is not JSON is stored
        /// as a JSON string).
        #[arg(value_name = "RESULT")]
        result: Option<String>,
    },

    /// Mark a leased command failed.
    Fail {
        /// The command's id, as printed by `pull --id`.
        id: i64,
        /// Why it failed (one line).
        #[arg(value_name = "REASON", required = true)]
        reason: Vec<String>,
    },

    /// Append a message to the message ring.
    #[command(visible_alias = "notify")]
    Put {
        /// The message; several words are joined by spaces.
        #[arg(value_name = "MSG", required = true)]
        msg: Vec<String>,
    },

    /// Print every new message, one per line, forever.
    ///
    /// Prints messages put after it started, and `cmd` whenever new
    /// commands were queued (by push, spool or SQL), so that
    /// `hcc wait | while read -r msg; do ...; done` loops wake up for work.
    /// Ingests the spool as it goes.
    Wait {
        /// Show progress characters on stderr: idle tick, message, empty
        /// wake-up, start, skipped (defaults `.x_:-`; the given characters
        /// replace them in order, '' keeps them all).
        #[arg(value_name = "PROGRESS")]
        progress: Option<String>,
    },

    /// Move the spool into the queue once: valid files become commands,
    /// others go to spool/bad with a .why file.
    Ingest,

    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// Print the command's id first (`ID CMD ARG`) and leave closing it to
    /// `hcc done` / `hcc fail`.
    #[arg(long)]
    pub id: bool,
    /// Seconds until an unclosed lease returns the command to the queue.
    #[arg(long, value_name = "SECS", default_value_t = 300,
          value_parser = clap::value_parser!(i64).range(1..=86_400))]
    pub lease: i64,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a setting's effective value (the token is redacted).
    Get {
        /// Setting name, e.g. location.
        key: String,
    },
    /// Check and store a setting. `hcc config set token -` reads the token
    /// from standard input, keeping it out of the process list and history.
    Set {
        /// Setting name.
        key: String,
        /// New value; for `token`, `-` reads it from standard input.
        value: String,
    },
    /// Remove a setting from config.json so its default applies.
    Unset {
        /// Setting name.
        key: String,
    },
    /// Print every setting with its value and where it comes from.
    Show,
}
