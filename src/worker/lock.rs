//! `worker.lock`: one worker per state directory. The worker holds an
//! exclusive lock on the file for its whole life and writes its pid and
//! start time into it; the kernel drops the lock when the process dies,
//! however it dies, so a stale file never blocks a new worker.
//!
//! The file sits in a directory the panel's group may write into: it is
//! opened without following a symlink and must be a regular file with one
//! link (safe_fs.rs), or writing the pid would overwrite whatever a
//! planted name points to.
//!
//! `serve.lock`: every `hcc serve` holds a shared lock on it for its whole
//! life (several may serve one state directory), so that `hcc restore`
//! and `hcc check` can tell whether one runs: they try an exclusive lock.
//! `hcc restore` holds both files exclusively while it writes, so neither
//! a worker nor a server starts on a half-restored database (a worker is
//! refused, exit 4; a server waits for the restore to end).

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::Error;
use crate::safe_fs::{self, Access, Owners};

/// The held lock; dropping it releases it.
pub struct WorkerLock {
    _file: File,
}

/// Who holds the lock, as the file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub since: i64,
}

fn open(path: &Path) -> Result<File, Error> {
    let owners = Owners::of_parent(path).map_err(|e| Error::io("open", path, e))?;
    safe_fs::open_file(
        rustix::fs::CWD,
        path,
        Access::ReadWriteCreate(0o600),
        &owners,
    )
    .map_err(|f| Error::fs("open", path, f))
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    let mut words = text.split_whitespace();
    Some(Holder {
        pid: words.next()?.parse().ok()?,
        since: words.next()?.parse().ok()?,
    })
}

impl WorkerLock {
    /// Takes the lock, or says who has it.
    pub fn acquire(path: &Path) -> Result<WorkerLock, Error> {
        let mut file = open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let who = read_holder(&mut file)
                    .map(|h| format!(" (pid {})", h.pid))
                    .unwrap_or_default();
                return Err(Error::Busy(format!("worker already running{who}")));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
        }
        let record = format!("{} {}\n", std::process::id(), crate::store::now());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(record.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write", path, e))?;
        Ok(WorkerLock { _file: file })
    }
}

/// The running worker, if any.
pub fn holder(path: &Path) -> Result<Option<Holder>, Error> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let mut file = open(path)?;
    match file.try_lock() {
        // We got it: nobody holds it. Dropping the file releases it.
        Ok(()) => Ok(None),
        Err(TryLockError::WouldBlock) => {
            Ok(read_holder(&mut file).or(Some(Holder { pid: 0, since: 0 })))
        }
        Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}

/// A lock on `serve.lock`, shared by running servers or held alone by a
/// restore; dropping it releases it.
pub struct ServeLock {
    _file: File,
}

impl ServeLock {
    /// For `hcc serve`: a shared lock, waited for while a restore holds
    /// the file.
    pub fn share(path: &Path) -> Result<ServeLock, Error> {
        let file = open(path)?;
        file.lock_shared().map_err(|e| Error::io("lock", path, e))?;
        Ok(ServeLock { _file: file })
    }

    /// For `hcc restore`: the lock alone, or [`Error::Busy`] when an
    /// `hcc serve` runs.
    pub fn exclusive(path: &Path) -> Result<ServeLock, Error> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Busy(
                "hcc serve runs on this state directory: stop it first".into(),
            )),
            Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }
}

/// Whether an `hcc serve` (or a restore) holds `serve.lock` now.
pub fn serve_runs(path: &Path) -> Result<bool, Error> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    let file = open(path)?;
    match file.try_lock() {
        // Ours a moment: nobody holds it. Dropping the file releases it.
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}
