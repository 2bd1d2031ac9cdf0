//! The `commands` table: a durable queue with leases.
//!
//! States: `queued` -> `running` (leased until `lease_until`) -> `done` or
//! `failed`. Reading never deletes: a consumer that dies keeps its lease
//! only until `lease_until`, then the command is queued again. Every lease
//! runs in one IMMEDIATE transaction, so two consumers never get the same
//! command. Rows inserted by panels with plain SQL are checked when leased;
//! one that is not a valid command ends `failed` with the reason instead of
//! reaching a consumer.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Error, Store, now};
use crate::verb::CommandLine;

/// A command handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub id: i64,
    pub line: CommandLine,
    pub attempts: i64,
}

/// How a consumer closes a command.
#[derive(Debug, Clone)]
pub enum Finish {
    Done { result: Option<String> },
    Failed { reason: String },
}

/// One file read from `spool/new`, ready to be queued.
#[derive(Debug, Clone)]
pub struct SpoolItem {
    /// The file name: unique per file by the maildir protocol.
    pub name: String,
    /// Device, inode, size and mtime of the file: tells "the same file
    /// seen again after a crash" from "a new file reusing a name".
    pub stamp: String,
    pub line: CommandLine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpoolOutcome {
    /// Queued as command `id`.
    Queued(i64),
    /// This very file was queued before (as `id`); only the unlink was lost.
    AlreadyQueued(i64),
    /// Another file with the same name was queued before as `id`.
    NameReused(i64),
}

impl Store {
    /// Queues one command; returns its id.
    pub fn queue(&self, line: &CommandLine, source: &str) -> Result<i64, Error> {
        self.conn
            .execute(
                "INSERT INTO commands (cmd, arg, source, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![line.cmd, line.arg, source, now()],
            )
            .map_err(self.err("queue a command"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Queues spool files in one transaction, keyed on the file name so a
    /// file seen twice (a crash between commit and unlink) is queued once.
    pub fn queue_spool(&mut self, items: &[SpoolItem]) -> Result<Vec<SpoolOutcome>, Error> {
        let path = self.path.clone();
        let err = |action| {
            let path = path.clone();
            move |source| Error::Sqlite {
                path,
                action,
                source,
            }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("start ingesting the spool"))?;
        let mut outcomes = Vec::with_capacity(items.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO commands (cmd, arg, source, spool_name, spool_stamp, created_at)
                     VALUES (?1, ?2, 'spool', ?3, ?4, ?5)
                     ON CONFLICT (spool_name) DO NOTHING",
                )
                .map_err(err("prepare the spool insert"))?;
            let mut existing = tx
                .prepare_cached("SELECT id, spool_stamp FROM commands WHERE spool_name = ?1")
                .map_err(err("prepare the spool lookup"))?;
            let at = now();
            for item in items {
                let inserted = insert
                    .execute(params![
                        item.line.cmd,
                        item.line.arg,
                        item.name,
                        item.stamp,
                        at
                    ])
                    .map_err(err("queue a spool file"))?;
                if inserted == 1 {
                    outcomes.push(SpoolOutcome::Queued(tx.last_insert_rowid()));
                    continue;
                }
                let (id, stamp): (i64, Option<String>) = existing
                    .query_row(params![item.name], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(err("look up a spool file"))?;
                outcomes.push(if stamp.as_deref() == Some(item.stamp.as_str()) {
                    SpoolOutcome::AlreadyQueued(id)
                } else {
                    SpoolOutcome::NameReused(id)
                });
            }
        }
        tx.commit().map_err(err("commit the spool ingest"))?;
        Ok(outcomes)
    }

    /// Leases the oldest queued command to `owner` for `lease_secs`.
    ///
    /// First, expired leases go back to `queued`. With `ack_owner`, the
    /// owner's earlier leases are closed as done: a consumer that asks for
    /// more has finished what it held (the original tool's loops never
    /// acknowledge). Rows that are not valid commands end `failed`.
    pub fn lease_next(
        &mut self,
        owner: &str,
        lease_secs: i64,
        ack_owner: bool,
    ) -> Result<Option<Leased>, Error> {
        let path = self.path.clone();
        let err = |action| {
            let path = path.clone();
            move |source| Error::Sqlite {
                path,
                action,
                source,
            }
        };
        let now = now();
        // Look before locking: a consumer woken by someone else's write
        // must not take the write lock when there is nothing for it, or a
        // panel writing without a busy timeout would meet `database is locked`.
        let work: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM commands
                   WHERE state = 'queued'
                      OR (state = 'running' AND (lease_until < ?1 OR lease_owner = ?2)))",
                params![now, if ack_owner { owner } else { "" }],
                |row| row.get(0),
            )
            .map_err(err("look for queued commands"))?;
        if !work {
            return Ok(None);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("start leasing a command"))?;
        tx.execute(
            "UPDATE commands SET state = 'queued', lease_until = NULL, lease_owner = NULL
             WHERE state = 'running' AND lease_until < ?1",
            params![now],
        )
        .map_err(err("return expired leases"))?;
        if ack_owner {
            tx.execute(
                "UPDATE commands
                 SET state = 'done', finished_at = ?2, lease_until = NULL,
                     result = '{\"acknowledged\":\"next lease\"}'
                 WHERE state = 'running' AND lease_owner = ?1",
                params![owner, now],
            )
            .map_err(err("acknowledge earlier leases"))?;
        }
        let leased = loop {
            let row: Option<(i64, String, Option<String>, i64)> = tx
                .query_row(
                    "SELECT id, cmd, arg, attempts FROM commands
                     WHERE state = 'queued' ORDER BY id LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()
                .map_err(err("find a queued command"))?;
            let Some((id, cmd, arg, attempts)) = row else {
                break None;
            };
            let checked = CommandLine::from_row(&cmd, arg.as_deref().unwrap_or(""));
            match checked {
                Ok(line) => {
                    tx.execute(
                        "UPDATE commands
                         SET state = 'running', lease_until = ?2, lease_owner = ?3,
                             attempts = attempts + 1, started_at = ?4
                         WHERE id = ?1",
                        params![id, now + lease_secs, owner, now],
                    )
                    .map_err(err("lease a command"))?;
                    break Some(Leased {
                        id,
                        line,
                        attempts: attempts + 1,
                    });
                }
                Err(why) => {
                    tx.execute(
                        "UPDATE commands SET state = 'failed', error = ?2, finished_at = ?3
                         WHERE id = ?1",
                        params![id, why, now],
                    )
                    .map_err(err("reject an invalid command"))?;
                }
            }
        };
        tx.commit().map_err(err("commit the lease"))?;
        Ok(leased)
    }

    /// Closes a queued or running command as done or failed.
    pub fn finish(&self, id: i64, finish: &Finish) -> Result<(), Error> {
        let (state, result, error) = match finish {
            Finish::Done { result } => ("done", result.as_deref(), None),
            Finish::Failed { reason } => ("failed", None, Some(reason.as_str())),
        };
        let changed = self
            .conn
            .execute(
                "UPDATE commands
                 SET state = ?2, result = ?3, error = ?4, finished_at = ?5, lease_until = NULL
                 WHERE id = ?1 AND state IN ('queued', 'running')",
                params![id, state, result, error, now()],
            )
            .map_err(self.err("close a command"))?;
        if changed == 1 {
            return Ok(());
        }
        let current: Option<String> = self
            .conn
            .query_row("SELECT state FROM commands WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()
            .map_err(self.err("look up a command"))?;
        Err(Error::Command(match current {
            None => format!("no command with id {id}"),
            Some(state) => format!("command {id} is already {state}"),
        }))
    }

    /// When the earliest running lease expires (Unix seconds), if any.
    pub fn next_lease_expiry(&self) -> Result<Option<i64>, Error> {
        self.conn
            .query_row(
                "SELECT min(lease_until) FROM commands WHERE state = 'running'",
                [],
                |row| row.get(0),
            )
            .map_err(self.err("read lease expiries"))
    }

    /// The highest command id (0 for an empty table).
    pub fn last_command_id(&self) -> Result<i64, Error> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) FROM commands", [], |row| {
                row.get(0)
            })
            .map_err(self.err("read the command queue"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hcc.db")).unwrap();
        (dir, store)
    }

    fn line(s: &str) -> CommandLine {
        CommandLine::parse_line(s).unwrap()
    }

    #[test]
    fn leases_in_order_and_never_twice() {
        let (_dir, mut store) = store();
        store.queue(&line("start a"), "cli").unwrap();
        store.queue(&line("stop b"), "cli").unwrap();
        let first = store.lease_next("x", 60, false).unwrap().unwrap();
        let second = store.lease_next("y", 60, false).unwrap().unwrap();
        assert_eq!(first.line.to_string(), "start a");
        assert_eq!(second.line.to_string(), "stop b");
        assert!(store.lease_next("z", 60, false).unwrap().is_none());
    }

    #[test]
    fn an_expired_lease_is_queued_again() {
        let (_dir, mut store) = store();
        store.queue(&line("start a"), "cli").unwrap();
        let first = store.lease_next("x", -2, false).unwrap().unwrap();
        let again = store.lease_next("y", 60, false).unwrap().unwrap();
        assert_eq!(first.id, again.id);
        assert_eq!(again.attempts, 2);
    }

    #[test]
    fn asking_again_acknowledges_the_owners_lease() {
        let (_dir, mut store) = store();
        let a = store.queue(&line("start a"), "cli").unwrap();
        store.lease_next("ack:loop", 60, true).unwrap().unwrap();
        assert!(store.lease_next("ack:loop", 60, true).unwrap().is_none());
        let err = store.finish(a, &Finish::Failed { reason: "x".into() });
        assert!(err.unwrap_err().to_string().contains("already done"));
    }

    #[test]
    fn invalid_rows_fail_instead_of_reaching_a_consumer() {
        let (_dir, mut store) = store();
        store
            .conn
            .execute(
                "INSERT INTO commands (cmd, arg) VALUES ('explode', 'vm1')",
                [],
            )
            .unwrap();
        store.queue(&line("start ok"), "cli").unwrap();
        let leased = store.lease_next("x", 60, false).unwrap().unwrap();
        assert_eq!(leased.line.to_string(), "start ok");
        let error: String = store
            .conn
            .query_row(
                "SELECT error FROM commands WHERE cmd = 'explode'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(error.contains("unknown command"), "{error}");
    }

    #[test]
    fn spool_files_are_queued_once_per_file() {
        let (_dir, mut store) = store();
        let item = |name: &str, stamp: &str| SpoolItem {
            name: name.into(),
            stamp: stamp.into(),
            line: line("console vm1"),
        };
        let first = store.queue_spool(&[item("f1", "s1")]).unwrap();
        let again = store
            .queue_spool(&[item("f1", "s1"), item("f1", "s2")])
            .unwrap();
        let SpoolOutcome::Queued(id) = first[0] else {
            panic!("{first:?}")
        };
        assert_eq!(
            again,
            vec![
                SpoolOutcome::AlreadyQueued(id),
                SpoolOutcome::NameReused(id)
            ]
        );
        assert_eq!(store.last_command_id().unwrap(), id);
    }
}
