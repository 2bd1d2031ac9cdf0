//! A command's id: the `commands` table's rowid, as it travels between the
//! store, the worker, the spool, the CLI and the API. A type of its own so
//! that a server id, a session id or a count is never passed for one.

use std::fmt;

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, ValueRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct CommandId(i64);

impl CommandId {
    pub const fn new(id: i64) -> CommandId {
        CommandId(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

/// An id read from a request or a command line (the row may not exist).
impl From<i64> for CommandId {
    fn from(id: i64) -> CommandId {
        CommandId(id)
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ToSql for CommandId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for CommandId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<CommandId> {
        i64::column_result(value).map(CommandId)
    }
}
