//! Whole-database copies, through SQLite's online backup API: `hcc backup`
//! (the live database into a new file), `hcc restore` (a checked copy back
//! into the live database), and what tells a file is a usable copy of
//! hcc's.
//!
//! Locking: a backup reads from one read transaction held from its first
//! page to its last, so the copy is the database as one commit left it,
//! however much the worker, `hcc serve` and panels write meanwhile (in WAL
//! mode a reader never blocks a writer, and the backup does not restart
//! when another connection commits, as it would between short reads). It
//! copies a slice of pages at a time with a pause in between, so that its
//! disk reads leave room for theirs.
//!
//! A restore writes the copy into the live database's own connection, in
//! one write transaction (the backup API's single step): the WAL and its
//! index stay the live file's, every connection open on it (a panel's, a
//! cron `hcc sync`) sees the restored state at its next read, and no WAL of
//! the old file is ever applied to the new one, as it could be if files
//! were renamed under open connections.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{APPLICATION_ID, Error, Store, check_version, schema, sqlite_err};

/// Pages a backup copies at a time (4 MiB of 4 KiB pages).
pub const PAGES_PER_STEP: i32 = 1024;
/// The pause between two slices of a backup.
pub const PAUSE: Duration = Duration::from_millis(5);
/// How long a copy or a restore waits for another process's lock before
/// it gives up.
const RESTORE_WAIT: Duration = Duration::from_secs(10);

/// How far a copy is, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub copied: u64,
    pub total: u64,
}

/// What a file holds, as far as telling hcc's databases goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub application_id: i64,
    pub user_version: i64,
    /// It has hcc's `commands` table.
    pub has_commands: bool,
}

impl Identity {
    /// Why the file cannot be hcc's database, if it cannot: another
    /// program's `application_id`, or none (0, as databases from before
    /// hcc recorded it have) without hcc's `commands` table.
    pub fn foreign(&self) -> Option<String> {
        if self.application_id != APPLICATION_ID && self.application_id != 0 {
            Some(format!(
                "its application id is {}, not hcc's ({APPLICATION_ID})",
                self.application_id
            ))
        } else if !self.has_commands {
            Some("it has no `commands` table".into())
        } else {
            None
        }
    }
}

/// The schema version this binary writes.
pub fn known_version() -> i64 {
    schema::MIGRATIONS.len() as i64
}

impl Store {
    /// Copies this database into `to`, an empty file this process just
    /// created (no journal: a failed copy is deleted, not rolled back),
    /// `PAGES_PER_STEP` pages at a time with a `pause` in between, all from
    /// one read snapshot (module doc). `progress` hears after each slice.
    pub fn backup_to(
        &self,
        to: &Path,
        pause: Duration,
        mut progress: impl FnMut(Progress),
    ) -> Result<Progress, Error> {
        let mut dest = open_plain(to, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // A fresh temporary file: nothing to roll back to, and the caller
        // syncs it once, whole.
        dest.pragma_update(None, "journal_mode", "OFF")
            .map_err(sqlite_err(to, "prepare the copy"))?;
        dest.pragma_update(None, "synchronous", "OFF")
            .map_err(sqlite_err(to, "prepare the copy"))?;
        // The snapshot: a read transaction that lasts the whole copy.
        self.conn
            .execute_batch("BEGIN DEFERRED")
            .map_err(self.err("start reading the database"))?;
        let copied = (|| {
            self.conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
                .map_err(self.err("start reading the database"))?;
            copy(
                &self.conn,
                &self.path,
                &mut dest,
                to,
                PAGES_PER_STEP,
                pause,
                &mut progress,
            )
        })();
        let ended = self
            .conn
            .execute_batch("COMMIT")
            .map_err(self.err("end reading the database"));
        let progress = copied?;
        ended?;
        self_contained(&dest, to)?;
        Ok(progress)
    }

    /// Writes the database at `from` (a checked copy: [`inspect`]) over
    /// this one, in one write transaction (module doc). Waits up to ten
    /// seconds for other writers to finish.
    pub fn restore_from(&mut self, from: &Path) -> Result<(), Error> {
        let source = open_plain(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let (path, conn) = (self.path.clone(), &mut self.conn);
        let backup = Backup::new(&source, conn).map_err(sqlite_err(&path, "start the restore"))?;
        let deadline = Instant::now() + RESTORE_WAIT;
        loop {
            match backup.step(-1) {
                Ok(StepResult::Done) => return Ok(()),
                Ok(StepResult::More) => {}
                Ok(StepResult::Busy | StepResult::Locked) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(_) => {
                    return Err(Error::Command(format!(
                        "database `{}` stayed locked by another process's write for {} s: try again",
                        path.display(),
                        RESTORE_WAIT.as_secs()
                    )));
                }
                Err(source) => {
                    return Err(sqlite_err(&path, "write the restored database")(source));
                }
            }
        }
    }
}

/// Copies the database at `from` into the empty file `to`, whole (for
/// `hcc restore`, which checks the copy rather than a file someone may
/// still change).
pub fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    let source = open_plain(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut dest = open_plain(to, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    dest.pragma_update(None, "journal_mode", "OFF")
        .map_err(sqlite_err(to, "prepare the copy"))?;
    copy(
        &source,
        from,
        &mut dest,
        to,
        -1,
        Duration::ZERO,
        &mut |_| {},
    )?;
    self_contained(&dest, to)
}

/// Turns a finished copy, which took the source's WAL mode with its
/// first page, into one file in rollback mode: it opens read-only
/// anywhere, with no `-wal` or `-shm` beside it. hcc switches it back to
/// WAL when it opens it as its database.
fn self_contained(dest: &Connection, to: &Path) -> Result<(), Error> {
    dest.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sqlite_err(to, "finish the copy"))
}

/// What the file at `path` is: its identity, or why it is none.
pub fn identity(path: &Path) -> Result<Identity, Error> {
    let conn = open_plain(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let err = sqlite_err(path, "read the database");
    let application_id = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(&err)?;
    let user_version = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(&err)?;
    let has_commands = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'commands'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(&err)?
        > 0;
    Ok(Identity {
        application_id,
        user_version,
        has_commands,
    })
}

/// Refuses a file `hcc restore` must not write over the live database:
/// not an SQLite database, another program's, written by a newer hcc, or
/// one whose `PRAGMA integrity_check` finds damage.
pub fn inspect(path: &Path) -> Result<Identity, Error> {
    let identity = identity(path)?;
    if let Some(why) = identity.foreign() {
        return Err(Error::Damaged {
            path: path.to_path_buf(),
            why: format!("is not an hcc database ({why})"),
        });
    }
    check_version(path, identity.user_version)?;
    let damage = integrity(path)?;
    if let Some(first) = damage.first() {
        return Err(Error::Damaged {
            path: path.to_path_buf(),
            why: format!(
                "is damaged: integrity check: {}{}",
                super::one_line(first),
                match damage.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                }
            ),
        });
    }
    Ok(identity)
}

/// What `PRAGMA integrity_check` says is wrong with the file at `path`
/// (nothing: an empty list).
pub fn integrity(path: &Path) -> Result<Vec<String>, Error> {
    let conn = open_plain(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    integrity_of(&conn, path)
}

pub(super) fn integrity_of(conn: &Connection, path: &Path) -> Result<Vec<String>, Error> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check(100)")
        .map_err(sqlite_err(path, "check the database"))?;
    let lines = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(sqlite_err(path, "check the database"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sqlite_err(path, "check the database"))?;
    Ok(lines.into_iter().filter(|line| line != "ok").collect())
}

/// A connection to a file that is no live database of hcc's (a copy
/// being made or checked): no symlink followed, nothing created.
fn open_plain(path: &Path, flags: OpenFlags) -> Result<Connection, Error> {
    let flags = flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn =
        Connection::open_with_flags(path, flags).map_err(sqlite_err(path, "open the database"))?;
    conn.busy_timeout(super::BUSY_TIMEOUT)
        .map_err(sqlite_err(path, "set the busy timeout"))?;
    Ok(conn)
}

/// The backup loop: `pages` at a time (-1: all at once), `pause` between
/// slices, waiting out a busy source.
fn copy(
    source: &Connection,
    from: &Path,
    dest: &mut Connection,
    to: &Path,
    pages: i32,
    pause: Duration,
    progress: &mut dyn FnMut(Progress),
) -> Result<Progress, Error> {
    let backup = Backup::new(source, dest).map_err(sqlite_err(to, "start the copy"))?;
    let mut locked_since: Option<Instant> = None;
    loop {
        let step = backup
            .step(pages)
            .map_err(sqlite_err(from, "copy the database"))?;
        let p = backup.progress();
        let now = Progress {
            copied: (p.pagecount - p.remaining).max(0) as u64,
            total: p.pagecount.max(0) as u64,
        };
        match step {
            StepResult::Done => {
                progress(now);
                return Ok(now);
            }
            StepResult::More => {
                locked_since = None;
                progress(now);
                std::thread::sleep(pause);
            }
            // Another process holds a lock a moment: try again shortly,
            // but not for ever.
            _ => {
                let since = *locked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > RESTORE_WAIT {
                    return Err(Error::Command(format!(
                        "database `{}` stayed locked by another process for {} s: try again",
                        from.display(),
                        RESTORE_WAIT.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_a_checked_hcc_database() {
        let (dir, store) = Store::scratch();
        store
            .conn
            .execute(
                "INSERT INTO commands (cmd, arg) VALUES ('start', 'vm1')",
                [],
            )
            .unwrap();
        let to = dir.path().join("copy.db");
        crate::safe_fs::create_new(rustix::fs::CWD, &to, 0o600).unwrap();
        let mut seen = Vec::new();
        let done = store
            .backup_to(&to, Duration::ZERO, |p| seen.push(p))
            .unwrap();
        assert_eq!(done.copied, done.total);
        assert_eq!(seen.last(), Some(&done));
        let identity = inspect(&to).unwrap();
        assert_eq!(identity.user_version, known_version());
        assert_eq!(identity.application_id, APPLICATION_ID);
    }

    #[test]
    fn foreign_files_are_told_apart() {
        let hcc = Identity {
            application_id: APPLICATION_ID,
            user_version: 8,
            has_commands: true,
        };
        assert_eq!(hcc.foreign(), None);
        let old = Identity {
            application_id: 0,
            ..hcc.clone()
        };
        assert_eq!(old.foreign(), None);
        let other = Identity {
            application_id: 42,
            ..hcc.clone()
        };
        assert!(other.foreign().unwrap().contains("42"));
        let bare = Identity {
            application_id: 0,
            has_commands: false,
            ..hcc
        };
        assert!(bare.foreign().unwrap().contains("commands"));
    }

    #[test]
    fn a_restore_replaces_the_content_in_place() {
        let (dir, store) = Store::scratch();
        store
            .conn
            .execute("INSERT INTO messages (msg, at) VALUES ('before', 0)", [])
            .unwrap();
        let to = dir.path().join("copy.db");
        crate::safe_fs::create_new(rustix::fs::CWD, &to, 0o600).unwrap();
        store.backup_to(&to, Duration::ZERO, |_| {}).unwrap();
        store
            .conn
            .execute("INSERT INTO messages (msg, at) VALUES ('after', 0)", [])
            .unwrap();
        // A second connection, open throughout, sees the restored state.
        let other = Store::open(&dir.path().join("hcc.db")).unwrap();
        let mut store = store;
        store.restore_from(&to).unwrap();
        let count: i64 = other
            .conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }
}
