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
mod broker;
mod budget;
mod check;
mod command_state;
mod commands;
pub mod copy;
pub mod end_reason;
mod ids;
mod messages;
mod metrics;
mod passwords;
mod power;
mod schema;
mod servers;
mod sessions;
mod views;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

pub use access::{ApiKey, OpenedLink, Refused, Scope, Session};
pub use broker::{Claimed, LiveCounts, PageStatus, TicketOwner};
pub use budget::SharedBudget;
pub use check::Problem;
pub use command_state::CommandState;
pub use commands::{Closer, Finish, Leased, Owner, QueueOverview, Source, SpoolItem, SpoolOutcome};
pub use end_reason::{Code as EndCode, EndReason};
pub use ids::{CommandId, SessionId};

/// The schema version this binary writes (`PRAGMA user_version` after
/// [`Store::open`]): the number of migrations.
pub const SCHEMA_VERSION: usize = schema::MIGRATIONS.len();

/// The WAL's size, in pages, past which a connection with deferred
/// checkpoints checkpoints in its own commit (40 MB of 4 KiB pages).
pub const DEFERRED_CHECKPOINT_PAGES: i64 = 10_000;

/// What a WAL file is cut back to once it starts again from its beginning
/// (after a flood made it large).
const WAL_SIZE_LIMIT: i64 = 4 << 20;

/// Who copies the WAL back into the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoints {
    /// SQLite, in the commit that grows the WAL past 1,000 pages.
    Automatic,
    /// The caller, with [`Store::checkpoint`] ([`Store::defer_checkpoints`]).
    Deferred,
    /// Another process: a replication tool such as Litestream, which must
    /// read every frame of the WAL before it is copied back and the WAL
    /// starts over ([`Store::leave_checkpoints`]).
    External,
}
pub use messages::Message;
pub use power::PageSession;
pub use servers::{Refreshed, ServerRow};
pub use sessions::{EXPIRED_UNUSED, LinkState, PageRecord, Revoked, SessionRecord, Suspension};
pub use views::CommandView;

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
    /// The file is not a database hcc can use: empty, or another
    /// program's. Named and left alone; `why` begins with a verb ("is
    /// damaged: ...").
    Damaged { path: PathBuf, why: String },
    /// A symlink or other planted name where the database belongs.
    Unsafe { path: PathBuf, why: String },
    /// A file operation around the database failed.
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// A close for a lease that is no longer the command's latest: it
    /// expired and the command was leased again.
    StaleLease(String),
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
        matches!(self, Error::TooNew { .. } | Error::Unsafe { .. })
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
                // SQLite's messages may quote SQL over several lines.
                let source = one_line(&source.to_string());
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
            Error::Command(msg) | Error::StaleLease(msg) => f.write_str(msg),
            Error::Damaged { path, why } => write!(
                f,
                "database `{}` {why}; hcc leaves it untouched: restore it from a backup or move it away",
                path.display()
            ),
            Error::Unsafe { path, why } => f.write_str(&crate::safe_fs::refusal(path, why)),
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
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
    /// Opens and migrates the database at `path`, creating it first if it
    /// is missing ([`create_if_missing`]). An existing file that is empty
    /// or another program's is refused, never initialised: a panel or a
    /// mistake made it, and it may be someone's data.
    pub fn open(path: &Path) -> Result<Store, Error> {
        create_if_missing(path)?;
        Store::open_existing(path)
    }

    /// A fresh store in a temporary directory, for unit tests; the file
    /// goes when the directory is dropped.
    #[cfg(test)]
    pub(crate) fn scratch() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let store = Store::open(&dir.path().join("hcc.db")).expect("open a fresh store");
        (dir, store)
    }

    /// Begins a `BEGIN IMMEDIATE` transaction (read-then-write, see the
    /// module doc); `action` names the work in the error.
    pub(crate) fn immediate(
        &mut self,
        action: &'static str,
    ) -> Result<rusqlite::Transaction<'_>, Error> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_err(&self.path, action))
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction through `&self`:
    /// committed when it succeeds, rolled back when it fails or panics (for
    /// work that calls the store's own `&self` methods inside, which a
    /// transaction borrowing the connection mutably would forbid).
    pub(crate) fn immediately<T>(
        &self,
        action: &'static str,
        work: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        // `new_unchecked` only because the connection is shared with
        // `work`: nothing else here opens a transaction on it meanwhile.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(self.err(action))?;
        let outcome = work();
        match outcome {
            Ok(_) => tx.commit(),
            Err(_) => tx.rollback(),
        }
        .map_err(self.err(action))?;
        outcome
    }

    fn open_existing(path: &Path) -> Result<Store, Error> {
        check_file(path)?;
        let mut store = Store::connect(path)?;
        // Before anything writes to the file (WAL mode is written into it).
        store
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(store.err("set the busy timeout"))?;
        store.check_identity()?;
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Initialises the empty file at `path`, just created by this process.
    fn open_new(path: &Path) -> Result<Store, Error> {
        let mut store = Store::connect(path)?;
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    fn connect(path: &Path) -> Result<Store, Error> {
        // NOFOLLOW: a symlink swapped in after a check is refused too
        // (SQLite opens its -wal and -shm files with O_NOFOLLOW itself).
        // No CREATE: the file exists or this is an error.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(sqlite_err(path, "open the database"))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Refuses a database that is not hcc's: another program's
    /// `application_id`, or tables without hcc's `commands` table.
    fn check_identity(&self) -> Result<(), Error> {
        let app: i64 = self
            .conn
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .map_err(self.err("read the application id"))?;
        let has = |table: &str| -> Result<bool, Error> {
            self.conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |row| row.get::<_, i64>(0),
                )
                .map(|n| n > 0)
                .map_err(self.err("read the schema"))
        };
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .map_err(self.err("read the schema"))?;
        let foreign = if app != 0 && app != APPLICATION_ID {
            Some(format!("its application id is {app}"))
        } else if tables > 0 && !has("commands")? {
            Some("it holds tables, but not hcc's `commands`".to_string())
        } else {
            None
        };
        match foreign {
            Some(why) => Err(Error::Damaged {
                path: self.path.clone(),
                why: format!("is not an hcc database ({why})"),
            }),
            None => Ok(()),
        }
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
        // A WAL a flood made large is cut back when it starts again, not
        // kept at its largest for good.
        self.conn
            .pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(self.err("limit the WAL's size"))?;
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

    /// Leaves checkpoints of the WAL to [`Store::checkpoint`]: SQLite
    /// otherwise copies the WAL back into the database (and syncs it) in
    /// the commit that grows it past 1,000 pages, about every hundredth
    /// command of the worker, and that command waits for it. A commit of
    /// this connection checkpoints only past [`DEFERRED_CHECKPOINT_PAGES`]:
    /// a bound for a flood that never leaves the checkpoint thread a quiet
    /// moment to finish in.
    pub fn defer_checkpoints(&self) -> Result<(), Error> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", DEFERRED_CHECKPOINT_PAGES)
            .map_err(self.err("defer checkpoints"))
    }

    /// Never checkpoints from this connection (`wal_autocheckpoint=0`),
    /// for a state directory whose WAL Litestream replicates. Litestream
    /// keeps a read transaction open so that nobody else's checkpoint can
    /// restart the WAL under it, and lets go of it only to run its own
    /// checkpoint; a checkpoint of ours in that moment could restart the
    /// WAL before Litestream has read its last frames, and Litestream
    /// would have to start its replica over from a full snapshot (its
    /// "tips": leave checkpoints to it under a steady write load, which is
    /// what the worker is). Its checkpoints are PASSIVE, with a TRUNCATE
    /// only past a WAL of some 500 MB; hcc never runs RESTART or TRUNCATE.
    pub fn leave_checkpoints(&self) -> Result<(), Error> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(self.err("leave checkpoints to another process"))
    }

    /// Applies `mode` to this connection: [`Store::defer_checkpoints`] or
    /// [`Store::leave_checkpoints`]; `Automatic` is what it opened with.
    pub fn set_checkpoints(&self, mode: Checkpoints) -> Result<(), Error> {
        match mode {
            Checkpoints::Automatic => Ok(()),
            Checkpoints::Deferred => self.defer_checkpoints(),
            Checkpoints::External => self.leave_checkpoints(),
        }
    }

    /// Copies what it can of the WAL back into the database without
    /// waiting for readers or writers (`PASSIVE`).
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(self.err("checkpoint the WAL"))
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
        let tx = self.immediate("start the schema upgrade")?;
        // Re-read under the write lock: another process may have migrated.
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite_err(&path, "read the schema version"))?;
        check_version(&path, version)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(sqlite_err(&path, "record the application id"))?;
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

/// `PRAGMA application_id` of hcc's databases ("hcc1"), so that `file`
/// and hcc itself tell them from other SQLite files. Older databases have
/// 0 until their next upgrade; both are accepted.
const APPLICATION_ID: i64 = 0x6863_6331;

/// Refuses what cannot be hcc's database: a symlink, a non-file, an empty
/// file (SQLite would silently make it a new, empty database).
fn check_file(path: &Path) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_err(path, "open", e))?;
    let kind = meta.file_type();
    let unsafe_why = if kind.is_symlink() {
        Some("is a symbolic link")
    } else if !kind.is_file() {
        Some("is not a regular file")
    } else {
        None
    };
    if let Some(why) = unsafe_why {
        return Err(Error::Unsafe {
            path: path.to_path_buf(),
            why: why.into(),
        });
    }
    // SQLite opens these with O_NOFOLLOW and would fail with a bare
    // "unable to open"; name the planted file instead. It looks for a hot
    // `-journal` before it knows the file is in WAL mode, and opens it
    // blocking: a FIFO there would hang every command.
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if let Ok(meta) = std::fs::symlink_metadata(&side)
            && !meta.file_type().is_file()
        {
            let why = if meta.file_type().is_symlink() {
                "is a symbolic link"
            } else {
                "is not a regular file"
            };
            return Err(Error::Unsafe {
                path: side,
                why: why.into(),
            });
        }
    }
    if meta.len() == 0 {
        return Err(Error::Damaged {
            path: path.to_path_buf(),
            why: "is damaged: it is empty (0 bytes), and hcc never leaves an empty database behind"
                .into(),
        });
    }
    Ok(())
}

/// Creates the database at `path` unless something exists there; returns
/// true when this call created it. It is built under a temporary name
/// (schema, WAL mode) and renamed into place without replacing anything,
/// so no process ever sees an empty `hcc.db`, and an empty one found
/// later is known not to be a half-made database of hcc's.
pub fn create_if_missing(path: &Path) -> Result<bool, Error> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path, "look for the database", e)),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or(path.as_os_str());
    let tmp = dir.join(crate::safe_fs::temp_name(name));
    let made = (|| {
        crate::safe_fs::create_new(rustix::fs::CWD, &tmp, 0o600)
            .map_err(|e| io_err(&tmp, "create the database", e))?;
        drop(Store::open_new(&tmp)?);
        match crate::safe_fs::rename_noreplace(rustix::fs::CWD, &tmp, rustix::fs::CWD, path) {
            Ok(()) => Ok(true),
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err(path, "create the database", e)),
        }
    })();
    if !matches!(made, Ok(true)) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut leftover = tmp.clone().into_os_string();
            leftover.push(suffix);
            let _ = std::fs::remove_file(leftover);
        }
    }
    made
}

fn io_err(path: &Path, action: &'static str, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Whitespace runs (newlines included) become one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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

/// A closure turning a SQLite error into [`Error::Sqlite`]: the one place
/// that error is built. `Store::err` is its short form; this one is for
/// code that holds a transaction and so cannot borrow the whole `Store`.
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
    fn each_checkpoint_mode_sets_the_connections_threshold() {
        let (_dir, store) = Store::scratch();
        let threshold = |store: &Store| -> i64 {
            store
                .conn
                .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
                .unwrap()
        };
        store.set_checkpoints(Checkpoints::Automatic).unwrap();
        assert_eq!(threshold(&store), 1000, "SQLite's default");
        store.set_checkpoints(Checkpoints::Deferred).unwrap();
        assert_eq!(threshold(&store), DEFERRED_CHECKPOINT_PAGES);
        // Litestream's: this connection never checkpoints, not even a
        // WAL grown past any size.
        store.set_checkpoints(Checkpoints::External).unwrap();
        assert_eq!(threshold(&store), 0);
    }

    #[test]
    fn work_that_fails_or_panics_in_a_transaction_leaves_nothing() {
        let (_dir, store) = Store::scratch();
        let add = |store: &Store| {
            store
                .conn
                .execute("INSERT INTO messages (msg, at) VALUES ('x', 0)", [])
                .map_err(store.err("add a message"))
        };
        let failed: Result<(), Error> = store.immediately("test", || {
            add(&store)?;
            Err(Error::Command("no".into()))
        });
        assert!(failed.is_err());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.immediately("test", || -> Result<(), Error> {
                add(&store)?;
                panic!("in the middle")
            })
        }));
        assert!(panicked.is_err());
        // Nothing stayed open: the next transaction begins and commits.
        store.immediately("test", || add(&store)).unwrap();
        let count: i64 = store
            .conn
            .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }

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
    fn sessions_recorded_before_pages_are_grouped_by_their_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hcc.db");
        {
            // Version 5: a link's page and its reconnect (one page
            // session), and a session that no link opened.
            let conn = Connection::open(&path).unwrap();
            for sql in &schema::MIGRATIONS[..5] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 5).unwrap();
            conn.execute_batch(
                "INSERT INTO console_sessions
                     (id, session_hash, server, server_id, link_id, started_at, last_seen_at,
                      expires_at, connected_at, user_agent)
                 VALUES (1, 'a', 'web1', 7, 4, 100, 100, 900, 101, 'ua-1'),
                        (2, 'b', 'web2', 8, NULL, 100, 100, 900, NULL, NULL),
                        (3, 'c', 'web1', 7, 4, 110, 110, 900, 111, 'ua-3');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let mut stmt = store
            .conn
            .prepare("SELECT id, page_id, connection_user_agent FROM console_sessions ORDER BY id")
            .unwrap();
        let rows: Vec<(i64, i64, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            [
                (1, 1, Some("ua-1".into())),
                (2, 2, None),
                (3, 1, Some("ua-3".into()))
            ]
        );
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
