//! `hcc check`'s queries: SQLite's own checks (`integrity_check`,
//! `foreign_key_check`) and hcc's invariants, each problem one [`Problem`].
//! Read-only: nothing here repairs anything.

use super::command_state::RUNNING;
use super::{APPLICATION_ID, Error, Store, copy};

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A short stable code: `integrity`, `foreign_key`, `application_id`,
    /// `running_without_lease`, `merged_into_missing`, `merged_into_self`,
    /// `merged_into_not_running`, `live_session_without_serve`.
    pub code: &'static str,
    /// One line saying what and where.
    pub message: String,
}

impl Store {
    /// Every problem found; `serve_runs` says whether an `hcc serve` holds
    /// the state directory (a live session without one is stale).
    pub fn check(&self, serve_runs: bool) -> Result<Vec<Problem>, Error> {
        let mut problems: Vec<Problem> = copy::integrity_of(&self.conn, &self.path)?
            .into_iter()
            .map(|line| Problem {
                code: "integrity",
                message: super::one_line(&line),
            })
            .collect();
        if !problems.is_empty() {
            // The rest reads tables that may be the damaged part.
            return Ok(problems);
        }
        let app: i64 = self
            .conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .map_err(self.err("read the application id"))?;
        if app != APPLICATION_ID {
            problems.push(Problem {
                code: "application_id",
                message: format!("the application id is {app}, not hcc's ({APPLICATION_ID})"),
            });
        }
        problems.extend(self.rows(
            "PRAGMA foreign_key_check",
            |row| {
                let table: String = row.get(0)?;
                let rowid: Option<i64> = row.get(1)?;
                let parent: String = row.get(2)?;
                Ok(format!(
                    "{table} row {} refers to a missing row of {parent}",
                    rowid.map_or("?".into(), |r| r.to_string())
                ))
            },
            "foreign_key",
        )?);
        problems.extend(self.rows(
            &format!(
                "SELECT id, cmd, arg FROM commands
                 WHERE state = {RUNNING} AND lease_until IS NULL ORDER BY id"
            ),
            |row| {
                Ok(format!(
                    "command {} `{}`: running without a lease (nothing will ever requeue it)",
                    row.get::<_, i64>(0)?,
                    command_text(row)?
                ))
            },
            "running_without_lease",
        )?);
        problems.extend(self.rows(
            "SELECT c.id, c.cmd, c.arg, c.merged_into FROM commands c
             WHERE c.merged_into IS NOT NULL AND c.merged_into <> c.id
               AND NOT EXISTS (SELECT 1 FROM commands l WHERE l.id = c.merged_into)
             ORDER BY c.id",
            |row| {
                Ok(format!(
                    "command {} `{}`: merged into command {}, which does not exist",
                    row.get::<_, i64>(0)?,
                    command_text(row)?,
                    row.get::<_, i64>(3)?
                ))
            },
            "merged_into_missing",
        )?);
        problems.extend(self.rows(
            "SELECT id, cmd, arg FROM commands WHERE merged_into = id ORDER BY id",
            |row| {
                Ok(format!(
                    "command {} `{}`: merged into itself",
                    row.get::<_, i64>(0)?,
                    command_text(row)?
                ))
            },
            "merged_into_self",
        )?);
        problems.extend(self.rows(
            &format!(
                "SELECT c.id, c.cmd, c.arg, c.merged_into, l.state FROM commands c
                 JOIN commands l ON l.id = c.merged_into
                 WHERE c.state = {RUNNING} AND l.state <> {RUNNING} AND c.id <> l.id
                 ORDER BY c.id"
            ),
            |row| {
                Ok(format!(
                    "command {} `{}`: running, merged into command {}, which is {}",
                    row.get::<_, i64>(0)?,
                    command_text(row)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, String>(4)?
                ))
            },
            "merged_into_not_running",
        )?);
        if !serve_runs {
            problems.extend(self.rows(
                "SELECT id, server FROM console_sessions
                 WHERE mode <> 'direct' AND connected_at IS NOT NULL AND ended_at IS NULL
                 ORDER BY id",
                |row| {
                    Ok(format!(
                        "console session {} of `{}`: recorded live, but no hcc serve runs",
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?
                    ))
                },
                "live_session_without_serve",
            )?);
        }
        Ok(problems)
    }

    /// One [`Problem`] with `code` per row of `sql`, worded by `message`.
    fn rows(
        &self,
        sql: &str,
        message: impl Fn(&rusqlite::Row) -> rusqlite::Result<String>,
        code: &'static str,
    ) -> Result<Vec<Problem>, Error> {
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(self.err("check the database"))?;
        stmt.query_map([], |row| message(row))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map(|lines| {
                lines
                    .into_iter()
                    .map(|line| Problem {
                        code,
                        message: super::one_line(&line),
                    })
                    .collect()
            })
            .map_err(self.err("check the database"))
    }
}

/// `cmd arg` of a row whose columns 1 and 2 are those.
fn command_text(row: &rusqlite::Row) -> rusqlite::Result<String> {
    let cmd: String = row.get(1)?;
    let arg: String = row.get(2)?;
    Ok(if arg.is_empty() {
        cmd
    } else {
        format!("{cmd} {arg}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(problems: &[Problem]) -> Vec<&'static str> {
        problems.iter().map(|p| p.code).collect()
    }

    #[test]
    fn a_fresh_database_has_no_problem() {
        let (_dir, store) = Store::scratch();
        assert_eq!(store.check(false).unwrap(), []);
    }

    #[test]
    fn broken_invariants_are_each_named() {
        let (_dir, store) = Store::scratch();
        store
            .conn
            .execute_batch(
                "INSERT INTO commands (id, cmd, arg, state) VALUES (1, 'start', 'a', 'running');
                 INSERT INTO commands (id, cmd, arg, merged_into) VALUES (2, 'start', 'b', 99);
                 INSERT INTO commands (id, cmd, arg, merged_into) VALUES (3, 'start', 'c', 3);
                 INSERT INTO commands (id, cmd, arg, state) VALUES (4, 'stop', 'd', 'done');
                 INSERT INTO commands (id, cmd, arg, state, lease_until, merged_into)
                     VALUES (5, 'stop', 'd', 'running', 9999999999, 4);
                 INSERT INTO console_sessions
                     (session_hash, server, server_id, started_at, last_seen_at, expires_at,
                      mode, connected_at)
                     VALUES ('h', 'web1', 7, 1, 1, 2, 'broker', 1);",
            )
            .unwrap();
        let found = store.check(false).unwrap();
        assert_eq!(
            codes(&found),
            [
                "running_without_lease",
                "merged_into_missing",
                "merged_into_self",
                "merged_into_not_running",
                "live_session_without_serve"
            ],
            "{found:?}"
        );
        assert!(found[1].message.contains("command 99"), "{found:?}");
        // With a serve running, a live session is what it should be.
        assert_eq!(store.check(true).unwrap().len(), 4);
    }
}
