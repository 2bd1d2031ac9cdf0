//! The `commands` table: a durable queue with leases.
//!
//! States: `queued` -> `running` (leased until `lease_until`) -> `done` or
//! `failed`. Reading never deletes: a consumer that dies keeps its lease
//! only until `lease_until`, then the command is queued again. Every lease
//! runs in one IMMEDIATE transaction, so two consumers never get the same
//! command. Rows inserted by panels with plain SQL are checked when leased;
//! one that is not a valid command ends `failed` with the reason instead of
//! reaching a consumer.

use rusqlite::types::ValueRef;
use std::collections::HashSet;
use std::path::Path;

use rusqlite::{OptionalExtension, Transaction, params};

use super::command_state::{DONE, FAILED, QUEUED, RUNNING};
use super::{CommandId, CommandState, Error, Store, now, sqlite_err};
use crate::verb::{Command, CommandLine};

/// How a command arrived; stored in `commands.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `hcc push`.
    Cli,
    /// `hcc serve`'s JSON API.
    Api,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::Api => "api",
        }
    }
}

/// Who holds a lease, as recorded in `commands.lease_owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Closed by the holder's own `hcc done` / `hcc fail` (`--id`).
    Explicit(String),
    /// Closed by the holder's next request; `tokens` identify the holder
    /// (its parent process and its process group, each `;`-terminated), and
    /// a new request matching any of them acknowledges the lease.
    Implicit { tokens: Vec<String> },
}

impl Owner {
    fn column(&self) -> String {
        match self {
            Owner::Explicit(who) => format!("id:{who}"),
            Owner::Implicit { tokens } => format!("ack:{}", tokens.concat()),
        }
    }

    /// The identities this owner answers to, without the `;` ends.
    fn tokens(&self) -> Vec<&str> {
        match self {
            Owner::Explicit(who) => identities(who).collect(),
            Owner::Implicit { tokens } => tokens.iter().flat_map(|t| identities(t)).collect(),
        }
    }

    /// Whether a recorded `lease_owner` names this owner: one identity in
    /// common (a loop's `hcc done` may run under another parent than its
    /// `hcc pull`, but in the same process group). The one place the rule
    /// is written: closing a lease and acknowledging one both ask here, so
    /// no statement matches owners in SQL.
    fn holds(&self, column: &str) -> bool {
        let recorded = column
            .strip_prefix("id:")
            .or_else(|| column.strip_prefix("ack:"))
            .unwrap_or(column);
        let mine = self.tokens();
        identities(recorded).any(|token| mine.contains(&token))
    }
}

/// The `;`-terminated identities in an owner text (a worker's
/// `worker:PID` has one, unterminated).
fn identities(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').filter(|token| !token.is_empty())
}

/// Which lease a close is meant for: a consumer whose lease expired and
/// went to another must not close the other's work.
#[derive(Debug, Clone)]
pub enum Closer {
    /// Lease number N of the command (the handle `ID:N`; leases are
    /// counted by `attempts`): refused once the command was leased again.
    Lease(i64),
    /// The consumer `owner`, naming only the id: accepted when the latest
    /// lease is this owner's, or when the command was leased only once (no
    /// other holder can exist).
    Owner(Owner),
}

/// A command handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub id: CommandId,
    pub line: CommandLine,
    pub attempts: i64,
    /// Identical queued commands leased with it ([`Store::lease_fair`]):
    /// they share its run, and end as it ends.
    pub merged: Vec<CommandId>,
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
    Queued(CommandId),
    /// This very file was queued before (as `id`); only the unlink was lost.
    AlreadyQueued(CommandId),
    /// Another file with the same name was queued before as `id`.
    NameReused(CommandId),
}

/// The queue at a glance.
#[derive(Debug, Clone, Default)]
pub struct QueueOverview {
    pub by_state: Vec<(String, i64)>,
    pub oldest_queued_at: Option<i64>,
    /// The newest failed command: id and error.
    pub last_error: Option<(CommandId, String)>,
}

/// `cmd` and `arg` of a queued row, or why they cannot be used.
type Decoded = Result<(String, String), String>;

/// Queued rows that are no valid command: id and reason.
type Invalid = Vec<(CommandId, String)>;

/// A text column of a row a panel may have written with anything in it:
/// NULL (for `arg`) reads as empty; a blob or invalid UTF-8 is a reason.
fn text_column(row: &rusqlite::Row, index: usize, name: &str) -> Result<String, String> {
    match row.get_ref(index) {
        Ok(ValueRef::Text(bytes)) => String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("column `{name}` is not UTF-8 text")),
        Ok(ValueRef::Null) if name == "arg" => Ok(String::new()),
        Ok(_) => Err(format!("column `{name}` is not text")),
        Err(e) => Err(format!("column `{name}` cannot be read: {e}")),
    }
}

impl Store {
    /// Queues one command; returns its id.
    pub fn queue(&self, line: &CommandLine, source: Source) -> Result<CommandId, Error> {
        self.queue_by(line, source, None)
    }

    /// Queues one command for the API key named `key`, which alone is
    /// shown the root password the command gets.
    pub fn queue_by(
        &self,
        line: &CommandLine,
        source: Source,
        key: Option<&str>,
    ) -> Result<CommandId, Error> {
        self.conn
            .execute(
                "INSERT INTO commands (cmd, arg, source, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![line.cmd, line.arg, source.as_str(), now(), key],
            )
            .map_err(self.err("queue a command"))?;
        Ok(CommandId::new(self.conn.last_insert_rowid()))
    }

    /// Queues spool files in one transaction, keyed on the file name so a
    /// file seen twice (a crash between commit and unlink) is queued once.
    pub fn queue_spool(&mut self, items: &[SpoolItem]) -> Result<Vec<SpoolOutcome>, Error> {
        let path = self.path.clone();
        let err = |action| sqlite_err(&path, action);
        let tx = self.immediate("start ingesting the spool")?;
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
                    outcomes.push(SpoolOutcome::Queued(CommandId::new(tx.last_insert_rowid())));
                    continue;
                }
                let (id, stamp): (CommandId, Option<String>) = existing
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
    /// First, an implicit owner's earlier leases are closed as done: a
    /// consumer that asks for more has finished what it held (the original
    /// tool's loops never acknowledge). Then expired leases go back to
    /// `queued`, or end `failed` once leased `max_attempts` times. Rows that
    /// are not valid commands end `failed` with the reason.
    pub fn lease_next(
        &mut self,
        owner: &Owner,
        lease_secs: i64,
        max_attempts: i64,
    ) -> Result<Option<Leased>, Error> {
        self.lease_first(owner, lease_secs, max_attempts, &mut |_, delayed| !delayed)
    }

    /// As [`Store::lease_next`], but only a command `eligible` accepts; the
    /// others stay queued, in order (the worker skips servers it is busy
    /// with, so commands on one server run one after another). `eligible`
    /// also sees, in order, the commands waiting out a retry delay
    /// (`not_before`, passed as `delayed`); they are never handed out early,
    /// but a caller may hold back what queued behind them.
    pub fn lease_first(
        &mut self,
        owner: &Owner,
        lease_secs: i64,
        max_attempts: i64,
        eligible: &mut dyn FnMut(&CommandLine, bool) -> bool,
    ) -> Result<Option<Leased>, Error> {
        self.lease_picked(owner, lease_secs, max_attempts, eligible, pick_queued)
    }

    /// The worker's lease: as [`Store::lease_first`], but fair across
    /// servers, and coalescing.
    ///
    /// Fair: among the commands `eligible` accepts, each server's oldest
    /// is a candidate, ranked by when that server last started a command
    /// (a server that started none since its command was queued ranks by
    /// the command's age; ties go to the server that started fewer in
    /// that second, then to the older command); commands about no server
    /// rank by age. So a burst for one server takes turns with the others.
    ///
    /// Coalescing: queued commands identical to the chosen one (the same
    /// parsed command; also one waiting out a delay) are leased with it
    /// (`merged_into` names it) and end as it ends ([`Store::finish`]):
    /// every `console NAME`; `kill`, power verbs and `sync NAME` only while
    /// adjacent in that server's order; a full `sync` takes every queued
    /// full `sync`, and every `sync NAME` with nothing before it for that
    /// server. Nothing else (`notify`, `create`, client-area verbs).
    pub fn lease_fair(
        &mut self,
        owner: &Owner,
        lease_secs: i64,
        max_attempts: i64,
        eligible: &mut dyn FnMut(&CommandLine, bool) -> bool,
    ) -> Result<Option<Leased>, Error> {
        self.lease_picked(owner, lease_secs, max_attempts, eligible, pick_fair)
    }

    /// One lease, the command chosen by `pick`, in one transaction.
    fn lease_picked(
        &mut self,
        owner: &Owner,
        lease_secs: i64,
        max_attempts: i64,
        eligible: &mut dyn FnMut(&CommandLine, bool) -> bool,
        pick: Pick,
    ) -> Result<Option<Leased>, Error> {
        let now = now();
        // Look before locking: a consumer woken by someone else's write
        // must not take the write lock when there is nothing for it, or a
        // panel writing without a busy timeout would meet `database is locked`.
        if !self.has_work(owner, now)? {
            return Ok(None);
        }
        let path = self.path.clone();
        let tx = self.immediate("start leasing a command")?;
        acknowledge_earlier(&tx, &path, owner, now)?;
        expire_leases(&tx, &path, now, max_attempts)?;
        let (leased, invalid) = pick(&tx, &path, now, eligible)?;
        reject_invalid(&tx, &path, invalid, now)?;
        if let Some(leased) = &leased {
            mark_leased(&tx, &path, leased, owner, now + lease_secs, now)?;
        }
        tx.commit().map_err(sqlite_err(&path, "commit the lease"))?;
        Ok(leased)
    }

    /// Whether leasing could change anything for `owner`: a queued command
    /// due, an expired lease, or an earlier lease of this implicit owner
    /// to acknowledge.
    fn has_work(&self, owner: &Owner, now: i64) -> Result<bool, Error> {
        let err = self.err("look for queued commands");
        let due: bool = self
            .conn
            .query_row(
                // Two EXISTS, each served by the (state, id) index; one
                // with OR would scan the whole table, done rows included.
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM commands
                                    WHERE state = {QUEUED}
                                      AND (not_before IS NULL OR not_before <= ?1))
                         OR EXISTS (SELECT 1 FROM commands
                                    WHERE state = {RUNNING}
                                      AND (lease_until IS NULL OR lease_until < ?1))"
                ),
                [now],
                |row| row.get(0),
            )
            .map_err(&err)?;
        Ok(due
            || !held_to_acknowledge(&self.conn, owner)
                .map_err(&err)?
                .is_empty())
    }

    /// Puts a running command back in the queue to be tried again at
    /// `not_before` (a transient failure), remembering why.
    pub fn retry_later(&self, id: CommandId, not_before: i64, why: &str) -> Result<(), Error> {
        self.conn
            .execute(
                &format!(
                    "UPDATE commands SET state = {QUEUED}, lease_until = NULL, lease_owner = NULL,
                     not_before = ?2, error = ?3
                 WHERE (id = ?1 OR merged_into = ?1) AND state = {RUNNING}"
                ),
                params![id, not_before, why],
            )
            .map_err(self.err("queue a command for a retry"))?;
        Ok(())
    }

    /// Hands a running command back to the queue until `not_before`
    /// without counting the attempt: it never reached Hetzner (the rate
    /// budget was spent), so it has not been tried.
    pub fn defer(&self, id: CommandId, not_before: i64, why: &str) -> Result<(), Error> {
        self.conn
            .execute(
                &format!(
                    "UPDATE commands SET state = {QUEUED}, lease_until = NULL, lease_owner = NULL,
                     not_before = ?2, error = ?3, attempts = max(attempts - 1, 0)
                 WHERE (id = ?1 OR merged_into = ?1) AND state = {RUNNING}"
                ),
                params![id, not_before, why],
            )
            .map_err(self.err("queue a command for later"))?;
        Ok(())
    }

    /// Commands not yet closed (queued or running).
    pub fn open_commands(&self) -> Result<i64, Error> {
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM commands WHERE state IN ({QUEUED}, {RUNNING})"),
                [],
                |r| r.get(0),
            )
            .map_err(self.err("count commands"))
    }

    /// When the next command waiting out a retry delay may run.
    pub fn next_retry_at(&self) -> Result<Option<i64>, Error> {
        self.conn
            .query_row(
                &format!(
                    "SELECT CAST(min(not_before) AS INTEGER) FROM commands WHERE state = {QUEUED}"
                ),
                [],
                |r| r.get(0),
            )
            .map_err(self.err("read retry times"))
    }

    /// Extends a running command's lease (a long action at Hetzner).
    pub fn renew_lease(&self, id: CommandId, until: i64) -> Result<(), Error> {
        self.conn
            .execute(
                &format!(
                    "UPDATE commands SET lease_until = ?2
                     WHERE (id = ?1 OR merged_into = ?1) AND state = {RUNNING}"
                ),
                params![id, until],
            )
            .map_err(self.err("renew a lease"))?;
        Ok(())
    }

    /// Records how far a running command got (`change-type`'s steps), in
    /// its `result`, where `hcc show` and the API show it; the final
    /// result replaces it.
    pub fn record_progress(&self, id: CommandId, progress: &str) -> Result<(), Error> {
        self.conn
            .execute(
                &format!(
                    "UPDATE commands SET result = ?2
                     WHERE (id = ?1 OR merged_into = ?1) AND state = {RUNNING}"
                ),
                params![id, progress],
            )
            .map_err(self.err("record a command's progress"))?;
        Ok(())
    }

    /// Returns every lease whose owner begins with `prefix` to the queue
    /// at once: a new worker takes over what a dead one held. A command
    /// already tried `max_attempts` times ends failed instead: it may be
    /// what killed the worker. Each of those posts `failed ID`, as every
    /// other failure does, so `hcc wait` loops learn of it; all in one
    /// transaction.
    pub fn reclaim_leases(
        &self,
        prefix: &str,
        max_attempts: i64,
        ring_size: u64,
    ) -> Result<usize, Error> {
        self.immediately("take over leases", || {
            self.reclaim_in_transaction(prefix, max_attempts, ring_size)
        })
    }

    fn reclaim_in_transaction(
        &self,
        prefix: &str,
        max_attempts: i64,
        ring_size: u64,
    ) -> Result<usize, Error> {
        let failed: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "UPDATE commands SET state = {FAILED}, finished_at = ?3, lease_until = NULL,
                         error = 'its worker died ' || attempts || ' times while running it'
                     WHERE state = {RUNNING} AND substr(lease_owner, 1, length(?1)) = ?1
                       AND coalesce((SELECT l.attempts FROM commands l
                                     WHERE l.id = commands.merged_into
                                       AND l.state = {RUNNING}), attempts) >= ?2
                     RETURNING id"
                ))
                .map_err(self.err("take over leases"))?;
            stmt.query_map(params![prefix, max_attempts, now()], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(self.err("take over leases"))?
        };
        for id in failed {
            self.put_message_in_transaction(&format!("failed {id}"), ring_size)?;
        }
        self.conn
            .execute(
                &format!(
                    "UPDATE commands SET state = {QUEUED}, lease_until = NULL, lease_owner = NULL
                 WHERE state = {RUNNING} AND substr(lease_owner, 1, length(?1)) = ?1"
                ),
                [prefix],
            )
            .map_err(self.err("take over leases"))
    }

    /// Counts by state, the oldest queued command's age, and the newest
    /// failure, for `hcc status`.
    pub fn queue_overview(&self) -> Result<QueueOverview, Error> {
        let mut overview = QueueOverview::default();
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM commands GROUP BY state")
            .map_err(self.err("count commands"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.err("count commands"))?;
        for row in rows {
            let (state, n) = row.map_err(self.err("count commands"))?;
            overview.by_state.push((state, n));
        }
        overview.oldest_queued_at = self
            .conn
            .query_row(
                &format!("SELECT min(created_at) FROM commands WHERE state = {QUEUED}"),
                [],
                |r| r.get(0),
            )
            .map_err(self.err("count commands"))?;
        overview.last_error = self
            .conn
            .query_row(
                &format!("SELECT id, error FROM commands WHERE state = {FAILED} ORDER BY finished_at DESC, id DESC LIMIT 1"),
                [],
                |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default())),
            )
            .optional()
            .map_err(self.err("count commands"))?;
        Ok(overview)
    }

    /// Hands a running command back to the queue, its attempt counted: a
    /// worker stopping while the command's action still runs at Hetzner.
    /// The next attempt knows it may find that action's result.
    pub fn hand_back(&self, id: CommandId) -> Result<(), Error> {
        self.conn
            .execute(
                &format!(
                    "UPDATE commands SET state = {QUEUED}, lease_until = NULL, lease_owner = NULL
                 WHERE (id = ?1 OR merged_into = ?1) AND state = {RUNNING}"
                ),
                [id],
            )
            .map_err(self.err("hand a command back"))?;
        Ok(())
    }

    /// Gives a lease back, as if it had expired: for a consumer that could
    /// not deliver the command it took (its output failed).
    pub fn release(&self, id: CommandId) -> Result<(), Error> {
        self.conn
            .execute(
                &format!(
                    "UPDATE commands SET state = {QUEUED}, lease_until = NULL, lease_owner = NULL,
                     attempts = max(attempts - 1, 0)
                 WHERE (id = ?1 OR merged_into = ?1) AND state = {RUNNING}"
                ),
                [id],
            )
            .map_err(self.err("give a lease back"))?;
        Ok(())
    }

    /// Closes a command and announces it (`done ID`) in one transaction,
    /// so a crash never leaves one without the other.
    pub fn finish_and_notify(
        &mut self,
        id: CommandId,
        closer: &Closer,
        finish: &Finish,
        message: &str,
        ring_size: u64,
    ) -> Result<(), Error> {
        self.immediately("close a command", || {
            let merged = self.close(id, closer, finish)?;
            self.put_message_in_transaction(message, ring_size)?;
            let word = match finish {
                Finish::Done { .. } => "done",
                Finish::Failed { .. } => "failed",
            };
            for other in merged {
                self.put_message_in_transaction(&format!("{word} {other}"), ring_size)?;
            }
            Ok(())
        })
    }

    /// Closes a leased command as done or failed: one that is running, or
    /// one whose lease expired (its consumer finished late), provided the
    /// lease `closer` means is still the command's latest
    /// ([`Error::StaleLease`] otherwise). The commands merged into it
    /// ([`Store::lease_fair`]) end with it, in the same state and with the
    /// same result or error.
    pub fn finish(&self, id: CommandId, closer: &Closer, finish: &Finish) -> Result<(), Error> {
        self.immediately("close a command", || {
            self.close(id, closer, finish).map(|_| ())
        })
    }

    /// [`Store::finish`] inside a transaction: returns the merged commands
    /// closed with it.
    fn close(
        &self,
        id: CommandId,
        closer: &Closer,
        finish: &Finish,
    ) -> Result<Vec<CommandId>, Error> {
        let (state, result, error) = match finish {
            Finish::Done { result } => (CommandState::Done, result.as_deref(), None),
            Finish::Failed { reason } => (CommandState::Failed, None, Some(reason.as_str())),
        };
        // Check, then update only if the row is still as checked: another
        // process may lease it in between; then check again.
        loop {
            let row: Option<(String, i64, Option<String>)> = self
                .conn
                .query_row(
                    "SELECT state, attempts, lease_owner FROM commands WHERE id = ?1",
                    [id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(self.err("look up a command"))?;
            let Some((current, attempts, owner)) = row else {
                return Err(Error::Command(format!("no command with id {id}")));
            };
            check_closer(id, closer, &current, attempts, owner.as_deref())?;
            match CommandState::parse(&current) {
                Some(CommandState::Running) => {}
                Some(CommandState::Queued) if attempts > 0 => {}
                Some(CommandState::Queued) => {
                    return Err(Error::Command(format!(
                        "command {id} was never leased; nothing to close"
                    )));
                }
                _ => return Err(Error::Command(format!("command {id} is already {current}"))),
            }
            let changed = self
                .conn
                .execute(
                    "UPDATE commands
                     SET state = ?2, result = ?3, error = ?4, finished_at = ?5, lease_until = NULL
                     WHERE id = ?1 AND state = ?6 AND attempts = ?7",
                    params![id, state.as_str(), result, error, now(), current, attempts],
                )
                .map_err(self.err("close a command"))?;
            if changed == 1 {
                // Those merged into it that are still its (running, or
                // returned to the queue with it when its lease expired).
                let mut stmt = self
                    .conn
                    .prepare_cached(&format!(
                        "UPDATE commands
                         SET state = ?2, result = ?3, error = ?4, finished_at = ?5,
                             lease_until = NULL
                         WHERE merged_into = ?1 AND (state = {RUNNING} OR state = ?6)
                           AND attempts > 0
                         RETURNING id"
                    ))
                    .map_err(self.err("close merged commands"))?;
                let merged = stmt
                    .query_map(
                        params![id, state.as_str(), result, error, now(), current],
                        |r| r.get(0),
                    )
                    .and_then(|rows| rows.collect::<Result<Vec<CommandId>, _>>())
                    .map_err(self.err("close merged commands"))?;
                return Ok(merged);
            }
        }
    }

    /// When the earliest running lease expires (Unix seconds), if any.
    pub fn next_lease_expiry(&self) -> Result<Option<i64>, Error> {
        self.conn
            .query_row(
                &format!(
                    "SELECT CAST(min(lease_until) AS INTEGER) FROM commands WHERE state = {RUNNING}"
                ),
                [],
                |row| row.get(0),
            )
            .map_err(self.err("read lease expiries"))
    }

    /// The highest command id (0 for an empty table).
    pub fn last_command_id(&self) -> Result<CommandId, Error> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) FROM commands", [], |row| {
                row.get(0)
            })
            .map_err(self.err("read the command queue"))
    }
}

/// The running commands an implicit `owner` leased earlier: asking again,
/// it has finished them. None for an explicit owner, who closes its own.
fn held_to_acknowledge(
    conn: &rusqlite::Connection,
    owner: &Owner,
) -> rusqlite::Result<Vec<CommandId>> {
    if !matches!(owner, Owner::Implicit { .. }) {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, lease_owner FROM commands
         WHERE state = {RUNNING} AND lease_owner LIKE 'ack:%'"
    ))?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, CommandId>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut held = Vec::new();
    for row in rows {
        let (id, column) = row?;
        if owner.holds(&column) {
            held.push(id);
        }
    }
    Ok(held)
}

/// Leasing, step 1: an implicit owner's earlier leases are closed as done
/// (the original tool's loops never acknowledge).
fn acknowledge_earlier(
    tx: &Transaction,
    path: &Path,
    owner: &Owner,
    now: i64,
) -> Result<(), Error> {
    let err = sqlite_err(path, "acknowledge earlier leases");
    for id in held_to_acknowledge(tx, owner).map_err(&err)? {
        tx.execute(
            &format!(
                "UPDATE commands
                 SET state = {DONE}, finished_at = ?2, lease_until = NULL,
                     result = '{{\"acknowledged\":\"next lease\"}}'
                 WHERE id = ?1 AND state = {RUNNING}"
            ),
            params![id, now],
        )
        .map_err(&err)?;
    }
    Ok(())
}

/// Leasing, step 2: expired leases go back to the queue, or end failed
/// once leased `max_attempts` times.
fn expire_leases(tx: &Transaction, path: &Path, now: i64, max_attempts: i64) -> Result<(), Error> {
    tx.execute(
        &format!(
            "UPDATE commands
             SET state = {FAILED}, finished_at = ?1, lease_until = NULL,
                 error = 'lease expired ' || attempts || ' times: no consumer closed it'
             WHERE state = {RUNNING} AND (lease_until IS NULL OR lease_until < ?1)
               AND attempts >= ?2"
        ),
        params![now, max_attempts],
    )
    .map_err(sqlite_err(path, "fail exhausted leases"))?;
    // `lease_owner` stays: a late close by that owner is still its own.
    tx.execute(
        &format!(
            "UPDATE commands SET state = {QUEUED}, lease_until = NULL
             WHERE state = {RUNNING} AND (lease_until IS NULL OR lease_until < ?1)"
        ),
        params![now],
    )
    .map_err(sqlite_err(path, "return expired leases"))?;
    Ok(())
}

/// Leasing, step 3: the first queued command that is due and `eligible`
/// accepts, and the rows met before it that are no valid command (with
/// the reason).
/// How a lease chooses its command: [`pick_queued`] (oldest first) or
/// [`pick_fair`] (servers in turn, coalescing).
type Pick = fn(
    &Transaction,
    &Path,
    i64,
    &mut dyn FnMut(&CommandLine, bool) -> bool,
) -> Result<(Option<Leased>, Invalid), Error>;

fn pick_queued(
    tx: &Transaction,
    path: &Path,
    now: i64,
    eligible: &mut dyn FnMut(&CommandLine, bool) -> bool,
) -> Result<(Option<Leased>, Invalid), Error> {
    let err = sqlite_err(path, "find a queued command");
    let mut select = tx
        .prepare(&format!(
            "SELECT id, cmd, arg, attempts, coalesce(not_before > ?1, 0) FROM commands
             WHERE state = {QUEUED}
             ORDER BY id"
        ))
        .map_err(&err)?;
    // Columns are read raw: a panel may have written anything.
    let mut rows = select.query([now]).map_err(&err)?;
    let mut invalid = Vec::new();
    while let Some(row) = rows.next().map_err(&err)? {
        let id: CommandId = row.get(0).map_err(&err)?;
        let attempts: i64 = row.get(3).unwrap_or(0);
        let delayed: bool = row.get(4).unwrap_or(false);
        let fields: Decoded =
            text_column(row, 1, "cmd").and_then(|cmd| Ok((cmd, text_column(row, 2, "arg")?)));
        match fields.and_then(|(cmd, arg)| CommandLine::from_row(&cmd, &arg)) {
            Ok(line) if eligible(&line, delayed) && !delayed => {
                let leased = Leased {
                    id,
                    line,
                    attempts: attempts + 1,
                    merged: Vec::new(),
                };
                return Ok((Some(leased), invalid));
            }
            Ok(_) => {}
            Err(why) => invalid.push((id, why)),
        }
    }
    Ok((None, invalid))
}

/// Leasing fairly, step 3: the command [`Store::lease_fair`] picks, with
/// the identical ones merged into it, and the rows met before it that are
/// no valid command (with the reason).
///
/// Rows are read in id order, which is the order of `created_at` for rows
/// hcc queued: a row's rank is never better than (its `created_at`, 0, its
/// id), so the scan stops at the first row that cannot beat the best so far.
fn pick_fair(
    tx: &Transaction,
    path: &Path,
    now: i64,
    eligible: &mut dyn FnMut(&CommandLine, bool) -> bool,
) -> Result<(Option<Leased>, Invalid), Error> {
    let err = sqlite_err(path, "find a queued command");
    let mut invalid = Vec::new();
    let mut servers: HashSet<String> = HashSet::new();
    let mut best: Option<((i64, i64, CommandId), Leased)> = None;
    let mut select = tx
        .prepare_cached(&format!(
            "SELECT id, cmd, arg, attempts, coalesce(not_before > ?1, 0), created_at
             FROM commands WHERE state = {QUEUED} ORDER BY id"
        ))
        .map_err(&err)?;
    let mut rows = select.query([now]).map_err(&err)?;
    while let Some(row) = rows.next().map_err(&err)? {
        let id: CommandId = row.get(0).map_err(&err)?;
        let created_at: i64 = row.get(5).unwrap_or(0);
        if best
            .as_ref()
            .is_some_and(|(key, _)| (created_at, 0, id) > *key)
        {
            break;
        }
        let fields: Decoded =
            text_column(row, 1, "cmd").and_then(|cmd| Ok((cmd, text_column(row, 2, "arg")?)));
        let line = match fields.and_then(|(cmd, arg)| CommandLine::from_row(&cmd, &arg)) {
            Ok(line) => line,
            Err(why) => {
                invalid.push((id, why));
                continue;
            }
        };
        let delayed: bool = row.get(4).unwrap_or(false);
        if !eligible(&line, delayed) || delayed {
            continue;
        }
        let key = match line.command.server() {
            // Only a server's oldest command is a candidate.
            Some(server) if !servers.insert(server.to_string()) => continue,
            Some(server) => match last_start(tx, path, server, created_at)? {
                Some((at, n)) => (at, n, id),
                None => (created_at, 0, id),
            },
            None => (created_at, 0, id),
        };
        if best.as_ref().is_none_or(|(best, _)| key < *best) {
            let attempts: i64 = row.get(3).unwrap_or(0);
            let leased = Leased {
                id,
                line,
                attempts: attempts + 1,
                merged: Vec::new(),
            };
            best = Some((key, leased));
        }
    }
    let Some((_, mut leased)) = best else {
        return Ok((None, invalid));
    };
    leased.merged = mergeable(tx, path, now, &leased)?;
    Ok((Some(leased), invalid))
}

/// When `server` last started a command, if at or after `since`, and how
/// many it started in that second; merged commands do not count.
fn last_start(
    tx: &Transaction,
    path: &Path,
    server: &str,
    since: i64,
) -> Result<Option<(i64, i64)>, Error> {
    let err = sqlite_err(path, "read when a server last started a command");
    // `instr` narrows the rows; the parsed command decides.
    let mut select = tx
        .prepare_cached(
            "SELECT cmd, arg, started_at FROM commands
             WHERE started_at >= ?1 AND merged_into IS NULL AND instr(arg, ?2) > 0",
        )
        .map_err(&err)?;
    let mut rows = select.query(params![since, server]).map_err(&err)?;
    let mut last: Option<(i64, i64)> = None;
    while let Some(row) = rows.next().map_err(&err)? {
        let Ok(at) = row.get::<_, i64>(2) else {
            continue;
        };
        if parsed(row).is_none_or(|line| line.command.server() != Some(server)) {
            continue;
        }
        last = match last {
            Some((t, n)) if t == at => Some((t, n + 1)),
            Some((t, n)) if t > at => Some((t, n)),
            _ => Some((at, 1)),
        };
    }
    Ok(last)
}

/// The command in a row's first two columns (`cmd`, `arg`), if valid.
fn parsed(row: &rusqlite::Row) -> Option<CommandLine> {
    let cmd = text_column(row, 0, "cmd").ok()?;
    let arg = text_column(row, 1, "arg").ok()?;
    CommandLine::from_row(&cmd, &arg).ok()
}

/// The open (queued or running) commands about `server`, in id order, as
/// `(id, command, waiting out a delay, running)`.
fn open_about(
    tx: &Transaction,
    path: &Path,
    now: i64,
    server: &str,
) -> Result<Vec<(CommandId, Command, bool, bool)>, Error> {
    let err = sqlite_err(path, "read a server's queued commands");
    let mut select = tx
        .prepare_cached(&format!(
            "SELECT cmd, arg, id, coalesce(not_before > ?1, 0), state = {RUNNING}
             FROM commands
             WHERE state IN ({QUEUED}, {RUNNING}) AND instr(arg, ?2) > 0
             ORDER BY id"
        ))
        .map_err(&err)?;
    let mut rows = select.query(params![now, server]).map_err(&err)?;
    let mut about = Vec::new();
    while let Some(row) = rows.next().map_err(&err)? {
        let Some(line) = parsed(row) else { continue };
        if line.command.server() != Some(server) {
            continue;
        }
        let id: CommandId = row.get(2).map_err(&err)?;
        let delayed: bool = row.get(3).unwrap_or(false);
        let running: bool = row.get(4).unwrap_or(false);
        about.push((id, line.command, delayed, running));
    }
    Ok(about)
}

/// The queued commands that share the run of `chosen`.
fn mergeable(
    tx: &Transaction,
    path: &Path,
    now: i64,
    chosen: &Leased,
) -> Result<Vec<CommandId>, Error> {
    let command = &chosen.line.command;
    // Queued after it, about its server. One waiting out a delay (the
    // budget, a retry) is merged too: it gets the result sooner, and costs
    // no request of its own later.
    let later = |server: &str| -> Result<Vec<(CommandId, Command)>, Error> {
        Ok(open_about(tx, path, now, server)?
            .into_iter()
            .filter(|(id, _, _, running)| *id > chosen.id && !running)
            .map(|(id, command, _, _)| (id, command))
            .collect())
    };
    Ok(match command {
        // One fresh credential serves every request for it.
        Command::Console(server) => later(server)?
            .into_iter()
            .filter(|(_, c)| c == command)
            .map(|(id, _)| id)
            .collect(),
        // Only while nothing else for the server comes between.
        Command::Power(_, server) | Command::Kill(server) | Command::Sync(Some(server)) => {
            later(server)?
                .into_iter()
                .take_while(|(_, c)| c == command)
                .map(|(id, _)| id)
                .collect()
        }
        // Every full sync, and each `sync NAME` that nothing for its
        // server (queued or running) comes before.
        Command::Sync(None) => {
            let err = sqlite_err(path, "read the queued syncs");
            let mut select = tx
                .prepare_cached(&format!(
                    "SELECT cmd, arg, id FROM commands
                     WHERE state = {QUEUED} AND cmd = 'sync' AND id != ?1
                     ORDER BY id"
                ))
                .map_err(&err)?;
            let mut rows = select.query([chosen.id]).map_err(&err)?;
            let mut syncs = Vec::new();
            while let Some(row) = rows.next().map_err(&err)? {
                if let Some(line) = parsed(row) {
                    syncs.push((row.get::<_, CommandId>(2).map_err(&err)?, line.command));
                }
            }
            drop(rows);
            let mut merged = Vec::new();
            for (id, sync) in syncs {
                match &sync {
                    Command::Sync(None) => merged.push(id),
                    Command::Sync(Some(server)) => {
                        // First of its server's open commands, but for
                        // identical syncs queued before it.
                        let first = open_about(tx, path, now, server)?
                            .into_iter()
                            .take_while(|(other, _, _, _)| *other < id)
                            .all(|(_, c, _, running)| !running && c == sync);
                        if first {
                            merged.push(id);
                        }
                    }
                    _ => {}
                }
            }
            merged
        }
        _ => Vec::new(),
    })
}

/// Leasing, step 4: rows that are no valid command end failed, saying why.
fn reject_invalid(tx: &Transaction, path: &Path, invalid: Invalid, now: i64) -> Result<(), Error> {
    for (id, why) in invalid {
        tx.execute(
            &format!(
                "UPDATE commands SET state = {FAILED}, error = ?2, finished_at = ?3
                 WHERE id = ?1"
            ),
            params![id, why, now],
        )
        .map_err(sqlite_err(path, "reject an invalid command"))?;
    }
    Ok(())
}

/// Leasing, step 5: the command is `owner`'s until `until`.
fn mark_leased(
    tx: &Transaction,
    path: &Path,
    leased: &Leased,
    owner: &Owner,
    until: i64,
    now: i64,
) -> Result<(), Error> {
    let mut update = tx
        .prepare_cached(&format!(
            "UPDATE commands
             SET state = {RUNNING}, lease_until = ?2, lease_owner = ?3,
                 attempts = attempts + 1, started_at = ?4, not_before = NULL,
                 merged_into = ?5
             WHERE id = ?1"
        ))
        .map_err(sqlite_err(path, "lease a command"))?;
    update
        .execute(params![leased.id, until, owner.column(), now, None::<i64>])
        .map_err(sqlite_err(path, "lease a command"))?;
    for merged in &leased.merged {
        update
            .execute(params![merged, until, owner.column(), now, leased.id])
            .map_err(sqlite_err(path, "lease a merged command"))?;
    }
    Ok(())
}

/// Whether `closer` means the command's latest lease (`attempts`, held by
/// `owner`); a stale close is refused, whatever state the command is in.
fn check_closer(
    id: CommandId,
    closer: &Closer,
    state: &str,
    attempts: i64,
    owner: Option<&str>,
) -> Result<(), Error> {
    let stale = |what: String| {
        Err(Error::StaleLease(format!(
            "{what}: command {id} was leased again after that lease expired \
             (its latest lease, {id}:{attempts}, is {state}); not closed"
        )))
    };
    match closer {
        Closer::Lease(n) if *n < 1 || *n > attempts => Err(Error::Command(format!(
            "command {id} has no lease {n} (it was leased {attempts} times)"
        ))),
        Closer::Lease(n) if *n < attempts => stale(format!("lease {id}:{n} is stale")),
        Closer::Lease(_) => Ok(()),
        Closer::Owner(_) if attempts <= 1 => Ok(()),
        Closer::Owner(me) if owner.is_some_and(|o| me.holds(o)) => Ok(()),
        Closer::Owner(_) => stale("stale lease".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> CommandLine {
        CommandLine::parse_line(s).unwrap()
    }

    fn explicit(who: &str) -> Owner {
        Owner::Explicit(who.into())
    }

    fn implicit(parent: &str, group: &str) -> Owner {
        Owner::Implicit {
            tokens: vec![format!("P{parent};"), format!("G{group};")],
        }
    }

    #[test]
    fn reclaimed_leases_go_back_or_fail_with_a_message() {
        let (_dir, mut store) = Store::scratch();
        let tried = store.queue(&line("start a"), Source::Cli).unwrap();
        let fresh = store.queue(&line("stop b"), Source::Cli).unwrap();
        let dead = explicit("worker:1");
        // `start a` has had its two attempts; `stop b` its first.
        for _ in 0..2 {
            let leased = store.lease_next(&dead, 60, 5).unwrap().unwrap();
            assert_eq!(leased.id, tried);
            store.reclaim_leases("id:worker:", 5, 50).unwrap();
        }
        store.lease_next(&dead, 60, 5).unwrap().unwrap();
        store.lease_next(&dead, 60, 5).unwrap().unwrap();
        let before = store.last_message_id().unwrap();
        assert_eq!(store.reclaim_leases("id:worker:", 3, 50).unwrap(), 1);
        let messages: Vec<String> = store
            .messages_after(before)
            .unwrap()
            .into_iter()
            .map(|m| m.msg)
            .collect();
        assert_eq!(messages, vec![format!("failed {tried}")]);
        let again = store
            .lease_next(&explicit("worker:2"), 60, 5)
            .unwrap()
            .unwrap();
        assert_eq!(again.id, fresh);
    }

    #[test]
    fn leases_in_order_and_never_twice() {
        let (_dir, mut store) = Store::scratch();
        store.queue(&line("start a"), Source::Cli).unwrap();
        store.queue(&line("stop b"), Source::Cli).unwrap();
        let first = store.lease_next(&explicit("x"), 60, 5).unwrap().unwrap();
        let second = store.lease_next(&explicit("y"), 60, 5).unwrap().unwrap();
        assert_eq!(first.line.to_string(), "start a");
        assert_eq!(second.line.to_string(), "stop b");
        assert!(store.lease_next(&explicit("z"), 60, 5).unwrap().is_none());
    }

    #[test]
    fn an_expired_lease_is_queued_again() {
        let (_dir, mut store) = Store::scratch();
        store.queue(&line("start a"), Source::Cli).unwrap();
        let first = store.lease_next(&explicit("x"), -2, 5).unwrap().unwrap();
        let again = store.lease_next(&explicit("y"), 60, 5).unwrap().unwrap();
        assert_eq!(first.id, again.id);
        assert_eq!(again.attempts, 2);
    }

    #[test]
    fn asking_again_acknowledges_the_owners_lease() {
        let (_dir, mut store) = Store::scratch();
        let a = store.queue(&line("start a"), Source::Cli).unwrap();
        let b = store.queue(&line("start b"), Source::Cli).unwrap();
        // Same process group, another parent (bash forked a subshell).
        store
            .lease_next(&implicit("1", "9"), 60, 5)
            .unwrap()
            .unwrap();
        let second = store
            .lease_next(&implicit("2", "9"), 60, 5)
            .unwrap()
            .unwrap();
        assert_eq!(second.id, b);
        let err = store.finish(a, &Closer::Lease(1), &Finish::Failed { reason: "x".into() });
        assert!(err.unwrap_err().to_string().contains("already done"));
        // Another consumer altogether does not acknowledge it.
        assert!(
            store
                .lease_next(&implicit("3", "8"), 60, 5)
                .unwrap()
                .is_none()
        );
        store
            .finish(b, &Closer::Lease(1), &Finish::Done { result: None })
            .unwrap();
    }

    fn done() -> Finish {
        Finish::Done { result: None }
    }

    fn close(store: &Store, id: CommandId, closer: Closer) -> Result<(), Error> {
        store.finish(id, &closer, &done())
    }

    #[test]
    fn a_stale_owner_cannot_close_the_next_holders_lease() {
        let (_dir, mut store) = Store::scratch();
        let id = store.queue(&line("start a"), Source::Cli).unwrap();
        store.lease_next(&explicit("Na;"), -2, 5).unwrap().unwrap();
        let again = store.lease_next(&explicit("Nb;"), 60, 5).unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (id, 2));
        let stale = close(&store, id, Closer::Owner(explicit("Na;"))).unwrap_err();
        assert!(matches!(stale, Error::StaleLease(_)), "{stale}");
        assert!(stale.to_string().contains(&format!("{id}:2")), "{stale}");
        // One identity in common is enough (same group, other parent).
        close(&store, id, Closer::Owner(explicit("P9@1;Nb;"))).unwrap();
        // Once closed, the stale one still hears that it is stale.
        let stale = close(&store, id, Closer::Owner(explicit("Na;"))).unwrap_err();
        assert!(matches!(stale, Error::StaleLease(_)), "{stale}");
        let again = close(&store, id, Closer::Owner(explicit("Nb;"))).unwrap_err();
        assert!(again.to_string().contains("already done"), "{again}");
    }

    #[test]
    fn a_handle_closes_only_its_own_lease() {
        let (_dir, mut store) = Store::scratch();
        let id = store.queue(&line("start a"), Source::Cli).unwrap();
        store.lease_next(&explicit("Na;"), -2, 5).unwrap().unwrap();
        store.lease_next(&explicit("Na;"), 60, 5).unwrap().unwrap();
        // Same owner, but the handle names the expired lease.
        let stale = close(&store, id, Closer::Lease(1)).unwrap_err();
        assert!(matches!(stale, Error::StaleLease(_)), "{stale}");
        let unknown = close(&store, id, Closer::Lease(3)).unwrap_err();
        assert!(matches!(unknown, Error::Command(_)), "{unknown}");
        close(&store, id, Closer::Lease(2)).unwrap();
    }

    #[test]
    fn a_late_close_is_accepted_while_nobody_else_leased_it() {
        let (_dir, mut store) = Store::scratch();
        let a = store.queue(&line("start a"), Source::Cli).unwrap();
        let b = store.queue(&line("start b"), Source::Cli).unwrap();
        let requeue = |store: &mut Store| {
            let none = store.lease_first(&explicit("Nq;"), 60, 5, &mut |_, _| false);
            assert!(none.unwrap().is_none());
        };
        // Leased once, expired, queued again: a bare close can only mean
        // that lease, whoever sends it (its consumer's identity changed).
        store.lease_next(&explicit("Na;"), -2, 5).unwrap().unwrap();
        requeue(&mut store);
        close(&store, a, Closer::Owner(explicit("Nz;"))).unwrap();
        // b: leased twice by the same owner, expired, requeued, not yet
        // leased again: its owner may still close it late.
        store.lease_next(&explicit("Nc;"), -2, 5).unwrap().unwrap();
        store.lease_next(&explicit("Nc;"), -2, 5).unwrap().unwrap();
        requeue(&mut store);
        let state: String = store
            .conn
            .query_row("SELECT state FROM commands WHERE id = ?1", [b], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(state, "queued");
        let stale = close(&store, b, Closer::Owner(explicit("Nd;"))).unwrap_err();
        assert!(matches!(stale, Error::StaleLease(_)), "{stale}");
        close(&store, b, Closer::Owner(explicit("Nc;"))).unwrap();
    }

    #[test]
    fn a_workers_close_matches_its_whole_pid() {
        let (_dir, mut store) = Store::scratch();
        let id = store.queue(&line("start a"), Source::Cli).unwrap();
        store.lease_next(&explicit("worker:12"), -2, 5).unwrap();
        store.lease_next(&explicit("worker:123"), 60, 5).unwrap();
        let stale = close(&store, id, Closer::Owner(explicit("worker:12"))).unwrap_err();
        assert!(matches!(stale, Error::StaleLease(_)), "{stale}");
        close(&store, id, Closer::Owner(explicit("worker:123"))).unwrap();
    }

    #[test]
    fn a_consumer_with_one_identity_acknowledges_only_its_own() {
        let (_dir, mut store) = Store::scratch();
        let a = store.queue(&line("start a"), Source::Cli).unwrap();
        store.queue(&line("start b"), Source::Cli).unwrap();
        store
            .lease_next(&implicit("1", "9"), 60, 5)
            .unwrap()
            .unwrap();
        // No process group to go by (hidden /proc): the parent alone.
        let lone = Owner::Implicit {
            tokens: vec!["P2;".into()],
        };
        store.lease_next(&lone, 60, 5).unwrap().unwrap();
        let state: String = store
            .conn
            .query_row("SELECT state FROM commands WHERE id = ?1", [a], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(state, "running");
    }

    #[test]
    fn acknowledging_comes_before_expiry() {
        let (_dir, mut store) = Store::scratch();
        let a = store.queue(&line("start a"), Source::Cli).unwrap();
        store.queue(&line("start b"), Source::Cli).unwrap();
        // The owner's lease has expired by the time it asks again: it was
        // still finished, not handed out a second time.
        store
            .lease_next(&implicit("1", "1"), -5, 5)
            .unwrap()
            .unwrap();
        let next = store
            .lease_next(&implicit("1", "1"), 60, 5)
            .unwrap()
            .unwrap();
        assert_ne!(next.id, a);
    }

    #[test]
    fn a_lease_that_keeps_expiring_ends_failed() {
        let (_dir, mut store) = Store::scratch();
        let a = store.queue(&line("kill a"), Source::Cli).unwrap();
        for attempt in 1..=3 {
            let leased = store.lease_next(&explicit("x"), -5, 3).unwrap().unwrap();
            assert_eq!((leased.id, leased.attempts), (a, attempt));
        }
        assert!(store.lease_next(&explicit("x"), 60, 3).unwrap().is_none());
        let error: String = store
            .conn
            .query_row("SELECT error FROM commands WHERE id = ?1", [a], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(error, "lease expired 3 times: no consumer closed it");
    }

    #[test]
    fn rows_that_cannot_be_decoded_fail_and_the_queue_goes_on() {
        let (_dir, mut store) = Store::scratch();
        store
            .conn
            .execute_batch(
                "INSERT INTO commands (cmd, arg) VALUES ('start', CAST(x'ff' AS TEXT));
                 INSERT INTO commands (cmd, arg) VALUES (x'00', 'vm1');
                 INSERT INTO commands (cmd) VALUES ('sync');",
            )
            .unwrap();
        let leased = store.lease_next(&explicit("x"), 60, 5).unwrap().unwrap();
        assert_eq!(leased.line.to_string(), "sync");
        let errors: String = store
            .conn
            .query_row(
                "SELECT group_concat(error, ' | ') FROM (SELECT error FROM commands WHERE id < 3 ORDER BY id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            errors,
            "column `arg` is not UTF-8 text | column `cmd` is not text"
        );
    }

    #[test]
    fn invalid_rows_fail_instead_of_reaching_a_consumer() {
        let (_dir, mut store) = Store::scratch();
        store
            .conn
            .execute(
                "INSERT INTO commands (cmd, arg) VALUES ('explode', 'vm1')",
                [],
            )
            .unwrap();
        store.queue(&line("start ok"), Source::Cli).unwrap();
        let leased = store.lease_next(&explicit("x"), 60, 5).unwrap().unwrap();
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
        let (_dir, mut store) = Store::scratch();
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
    fn fair(store: &mut Store, owner: &str) -> Option<Leased> {
        store
            .lease_fair(&explicit(owner), 60, 5, &mut |_, delayed| !delayed)
            .unwrap()
    }

    fn row(store: &Store, id: CommandId) -> (String, Option<String>, Option<String>) {
        store
            .conn
            .query_row(
                "SELECT state, result, error FROM commands WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    #[test]
    fn identical_consoles_and_syncs_are_leased_and_closed_together() {
        let (_dir, mut store) = Store::scratch();
        let q = |store: &Store, s: &str| store.queue(&line(s), Source::Cli).unwrap();
        let consoles: Vec<CommandId> = (0..3).map(|_| q(&store, "console a")).collect();
        let other = q(&store, "console b");
        let syncs: Vec<CommandId> = (0..2).map(|_| q(&store, "sync")).collect();
        let named = q(&store, "sync c");
        let first = fair(&mut store, "w").unwrap();
        assert_eq!(
            (first.id, first.merged.clone()),
            (consoles[0], consoles[1..].to_vec())
        );
        let before = store.last_message_id().unwrap();
        store
            .finish_and_notify(
                first.id,
                &Closer::Owner(explicit("w")),
                &Finish::Done {
                    result: Some("{\"ok\":1}".into()),
                },
                &format!("done {}", first.id),
                50,
            )
            .unwrap();
        for id in &consoles {
            assert_eq!(
                row(&store, *id),
                ("done".into(), Some("{\"ok\":1}".into()), None)
            );
        }
        let messages: Vec<String> = store
            .messages_after(before)
            .unwrap()
            .into_iter()
            .map(|m| m.msg)
            .collect();
        let expected: Vec<String> = consoles.iter().map(|id| format!("done {id}")).collect();
        assert_eq!(messages, expected);
        // `console b` is not the same command.
        let b = fair(&mut store, "w").unwrap();
        assert_eq!((b.id, b.merged.len()), (other, 0));
        // A full sync takes the other full sync and `sync c`; a failure
        // is every one's.
        let sync = fair(&mut store, "w").unwrap();
        assert_eq!(
            (sync.id, sync.merged.clone()),
            (syncs[0], vec![syncs[1], named])
        );
        store
            .finish(
                sync.id,
                &Closer::Lease(1),
                &Finish::Failed {
                    reason: "no".into(),
                },
            )
            .unwrap();
        assert_eq!(
            row(&store, named),
            ("failed".into(), None, Some("no".into()))
        );
    }

    #[test]
    fn power_verbs_merge_only_when_adjacent() {
        let (_dir, mut store) = Store::scratch();
        let q = |store: &Store, s: &str| store.queue(&line(s), Source::Cli).unwrap();
        let ids: Vec<CommandId> = [
            "start a",
            "stop a",
            "start a",
            "reboot a",
            "reboot a",
            "console a",
        ]
        .iter()
        .map(|s| q(&store, s))
        .collect();
        let mut order = Vec::new();
        while let Some(leased) = fair(&mut store, "w") {
            order.push((leased.id, leased.merged.clone()));
            store.finish(leased.id, &Closer::Lease(1), &done()).unwrap();
        }
        assert_eq!(
            order,
            vec![
                (ids[0], vec![]),
                (ids[1], vec![]),
                (ids[2], vec![]),
                (ids[3], vec![ids[4]]),
                (ids[5], vec![]),
            ]
        );
        // `off` and `force` are one command.
        let off = q(&store, "off a");
        let force = q(&store, "force a");
        let leased = fair(&mut store, "w").unwrap();
        assert_eq!((leased.id, leased.merged), (off, vec![force]));
    }

    #[test]
    fn merged_commands_go_back_with_their_leader() {
        let (_dir, mut store) = Store::scratch();
        let a = store.queue(&line("reboot a"), Source::Cli).unwrap();
        let b = store.queue(&line("reboot a"), Source::Cli).unwrap();
        let leased = fair(&mut store, "worker:1").unwrap();
        assert_eq!(leased.merged, vec![b]);
        store.retry_later(a, 0, "busy").unwrap();
        assert_eq!(row(&store, b).0, "queued");
        let again = fair(&mut store, "worker:1").unwrap();
        assert_eq!((again.id, again.merged.clone()), (a, vec![b]));
        // A dead worker's leases: both queued again, neither lost.
        assert_eq!(store.reclaim_leases("id:worker:", 5, 50).unwrap(), 2);
        let third = fair(&mut store, "worker:2").unwrap();
        assert_eq!((third.id, third.attempts, third.merged), (a, 3, vec![b]));
        // Out of attempts: the leader fails, and so does what it carries.
        assert_eq!(store.reclaim_leases("id:worker:", 3, 50).unwrap(), 0);
        assert_eq!(row(&store, a).0, "failed");
        assert_eq!(row(&store, b).0, "failed");
    }

    #[test]
    fn the_worker_takes_servers_in_turn() {
        let (_dir, mut store) = Store::scratch();
        let burst: Vec<CommandId> = (0..10)
            .map(|i| {
                let verb = if i % 2 == 0 { "start a" } else { "stop a" };
                store.queue(&line(verb), Source::Cli).unwrap()
            })
            .collect();
        let b = store.queue(&line("start b"), Source::Cli).unwrap();
        let sync = store.queue(&line("sync"), Source::Cli).unwrap();
        let mut order = Vec::new();
        while let Some(leased) = fair(&mut store, "w") {
            order.push(leased.id);
            store.finish(leased.id, &Closer::Lease(1), &done()).unwrap();
        }
        // Oldest first would run the whole burst before `start b`.
        let at = |id| order.iter().position(|x| *x == id).unwrap();
        assert!(at(b) <= 2, "{order:?}");
        assert!(at(sync) <= 3, "{order:?}");
        let of_a: Vec<CommandId> = order
            .iter()
            .copied()
            .filter(|id| burst.contains(id))
            .collect();
        assert_eq!(of_a, burst, "a's commands stay in order");
        assert_eq!(order.len(), 12);
        // Other consumers still lease oldest first.
        let x = store.queue(&line("start a"), Source::Cli).unwrap();
        store.queue(&line("start b"), Source::Cli).unwrap();
        assert_eq!(
            store.lease_next(&explicit("p"), 60, 5).unwrap().unwrap().id,
            x
        );
    }
}
