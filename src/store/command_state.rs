//! A command's state, as the `commands.state` column holds it: `queued` ->
//! `running` -> `done` or `failed` (the table's module doc tells when).
//! Statements name a state through [`CommandState::sql`] or the constants
//! below, so the words are written here once.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandState {
    Queued,
    Running,
    Done,
    Failed,
}

impl CommandState {
    /// Every state, in the order they are shown.
    pub const ALL: [CommandState; 4] = [
        CommandState::Queued,
        CommandState::Running,
        CommandState::Done,
        CommandState::Failed,
    ];

    /// The word in the `state` column (and in `hcc status`, the API and
    /// the metrics' `state` label).
    pub const fn as_str(self) -> &'static str {
        match self {
            CommandState::Queued => "queued",
            CommandState::Running => "running",
            CommandState::Done => "done",
            CommandState::Failed => "failed",
        }
    }

    /// The same word as an SQL string literal, to write into a statement.
    pub const fn sql(self) -> &'static str {
        match self {
            CommandState::Queued => "'queued'",
            CommandState::Running => "'running'",
            CommandState::Done => "'done'",
            CommandState::Failed => "'failed'",
        }
    }

    /// The state a `state` column names; `None` for anything else (a
    /// panel may write what it likes).
    pub fn parse(word: &str) -> Option<CommandState> {
        CommandState::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// Whether the command is closed for good.
    pub fn is_finished(self) -> bool {
        matches!(self, CommandState::Done | CommandState::Failed)
    }
}

impl fmt::Display for CommandState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The states as SQL literals, for `format!` into statements.
pub(super) const QUEUED: &str = CommandState::Queued.sql();
pub(super) const RUNNING: &str = CommandState::Running.sql();
pub(super) const DONE: &str = CommandState::Done.sql();
pub(super) const FAILED: &str = CommandState::Failed.sql();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_is_one_word_in_rust_and_sql() {
        for state in CommandState::ALL {
            assert_eq!(state.sql(), format!("'{state}'"));
            assert_eq!(CommandState::parse(state.as_str()), Some(state));
        }
        assert_eq!(CommandState::parse("Queued"), None);
    }
}
