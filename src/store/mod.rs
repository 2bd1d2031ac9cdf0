//! The SQLite state: opening, pragmas, migrations, and the queries of each
//! table (one file per table). SQL lives here and nowhere else.
//!
//! Locking: the database runs in WAL mode, so readers never block and
//! writers take turns; every read-then-write (leasing a command) runs in a
//! `BEGIN IMMEDIATE` transaction, because a deferred transaction that turns
//! into a write after another process committed fails with `SQLITE_BUSY` at
//! once, whatever the busy timeout. Transactions stay short and never span
//! network I/O. One `Store` per thread.
//!
//! Compatibility: the schema version is `PRAGMA user_version`; migrations
//! are append-only ([`schema::MIGRATIONS`]). A database newer than this
//! binary is refused ("upgrade hcc"); a damaged one is named and left alone,
//! never deleted or recreated.

mod access;
mod budget;
mod commands;
mod messages;
mod schema;
mod servers;
mod views;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

pub use access::{ApiKey, OpenedLink, Refused, Session};
pub use budget::SharedBudget;
pub use commands::{Finish, Leased, Owner, QueueOverview, Source, SpoolItem, SpoolOutcome};
pub use messages::Message;
pub use servers::{Listed, Refreshed, ServerRow};
pub use views::{CommandView, ServerView};

#[derive(Debug)]
pub enum Error {
    /// SQLite failed; `action` says what hcc was doing.
    Sqlite {
        path: PathBuf,
        action: &'static str,
        source: rusqlite::Error,
    },
    /// The file was written by a newer hcc.
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    /// A command id that does not exist, or is in the wrong state.
    Command(String),
}

impl Error {
    /// Errors a long-running loop (`next`, `wait`) outlives: another
    /// process holding the lock, a passing I/O failure. It reports them and
    /// looks again later instead of exiting.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::DiskFull
                        | ErrorCode::OutOfMemory
                )
            ),
            _ => false,
        }
    }
}

impl Error {
    /// Errors the user fixes by changing their setup, not by retrying.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::TooNew { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite {
                path,
                action,
                source,
            } => {
                let code = source.sqlite_error_code();
                if matches!(
                    code,
                    Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
                ) {
                    write!(
                        f,
                        "database `{}` is damaged ({source}); hcc leaves it untouched: restore it from a backup or move it away",
                        path.display()
                    )
                } else if code == Some(ErrorCode::DatabaseBusy) {
                    write!(
                        f,
                        "database `{}` stayed locked while trying to {action}; another process holds a long write transaction",
                        path.display()
                    )
                } else {
                    write!(f, "cannot {action} in `{}`: {source}", path.display())
                }
            }
            Error::TooNew { path, found, known } => write!(
                f,
                "database `{}` has schema version {found}, this hcc knows up to {known}: upgrade hcc",
                path.display()
            ),
            Error::Command(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

/// How long a writer waits for another process's write to finish before
/// giving up (rusqlite's default as well; panels write small rows).
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if empty) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let conn = Connection::open(path).map_err(|source| Error::Sqlite {
            path: path.to_path_buf(),
            action: "open the database",
            source,
        })?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&self) -> Result<(), Error> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(self.err("set the busy timeout"))?;
        // WAL: panels read while hcc writes, and every commit lands in
        // `hcc.db-wal`, whose writes wake `next` and `wait` via inotify.
        // Must be set outside a transaction; it persists in the file.
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(self.err("switch to WAL mode"))?;
        // NORMAL stays consistent after kill -9 (WAL is append-only); a
        // power cut may lose the last commits, which leases make harmless.
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(self.err("set synchronous mode"))?;
        // A small page cache (1 MB; SQLite's default is 2 MB per
        // connection): hcc's queries touch few pages, and the worker keeps
        // three connections open for days.
        self.conn
            .pragma_update(None, "cache_size", -1024)
            .map_err(self.err("set the cache size"))?;
        // Not used by today's schema; on so that future references between
        // tables are enforced from the first row.
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(self.err("enable foreign keys"))?;
        Ok(())
    }

    /// For a connection that reads much (`hcc serve`): table pages are read
    /// through a shared memory map of the file instead of being copied into
    /// this connection's own small cache.
    pub fn map_for_reading(&self) -> Result<(), Error> {
        self.conn
            .pragma_update(None, "mmap_size", 64 * 1024 * 1024)
            .map_err(self.err("map the database for reading"))
    }

    /// A number that changes whenever another connection, of any
    /// process, commits (`PRAGMA data_version`): whether something read
    /// before may have changed.
    pub fn data_version(&self) -> Result<i64, Error> {
        self.conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(self.err("read the data version"))
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let known = schema::MIGRATIONS.len();
        let version = self.user_version()?;
        if version as usize == known {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_err(&path, "start the schema upgrade"))?;
        // Re-read under the write lock: another process may have migrated.
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite_err(&path, "read the schema version"))?;
        check_version(&path, version)?;
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)
                .map_err(sqlite_err(&path, "upgrade the schema"))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sqlite_err(&path, "record the schema version"))?;
        }
        tx.commit()
            .map_err(sqlite_err(&path, "commit the schema upgrade"))
    }

    fn user_version(&self) -> Result<i64, Error> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(self.err("read the schema version"))?;
        check_version(&self.path, version)?;
        Ok(version)
    }

    /// A closure turning a SQLite error into [`Error::Sqlite`].
    fn err(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> Error + '_ {
        sqlite_err(&self.path, action)
    }
}

/// Refuses a schema version this binary does not know.
fn check_version(path: &Path, version: i64) -> Result<(), Error> {
    let known = schema::MIGRATIONS.len();
    if version < 0 || version as usize > known {
        return Err(Error::TooNew {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    Ok(())
}

/// A closure turning a SQLite error into [`Error::Sqlite`]; for code that
/// holds a transaction and so cannot borrow the whole `Store`.
fn sqlite_err<'a>(path: &'a Path, action: &'static str) -> impl Fn(rusqlite::Error) -> Error + 'a {
    move |source| Error::Sqlite {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hcc.db");
        drop(Store::open(&path).unwrap());
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.user_version().unwrap(),
            schema::MIGRATIONS.len() as i64
        );
        store.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        let err = Store::open(&path).err().unwrap();
        assert!(err.to_string().contains("upgrade hcc"), "{err}");
        assert!(err.is_usage());
    }

    #[test]
    fn every_past_schema_upgrades_with_its_data() {
        for version in 1..schema::MIGRATIONS.len() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hcc.db");
            {
                // A database as that release left it, with a queued command.
                let conn = Connection::open(&path).unwrap();
                for sql in &schema::MIGRATIONS[..version] {
                    conn.execute_batch(sql).unwrap();
                }
                conn.pragma_update(None, "user_version", version as i64)
                    .unwrap();
                conn.execute(
                    "INSERT INTO commands (cmd, arg) VALUES ('start', 'vm1')",
                    [],
                )
                .unwrap();
            }
            let store = Store::open(&path).unwrap();
            assert_eq!(
                store.user_version().unwrap(),
                schema::MIGRATIONS.len() as i64
            );
            let arg: String = store
                .conn
                .query_row("SELECT arg FROM commands", [], |r| r.get(0))
                .unwrap();
            assert_eq!(arg, "vm1", "from version {version}");
        }
    }

    #[test]
    fn a_damaged_file_is_named_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hcc.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("damaged"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x42u8; 8192]);
    }
}
