//! `worker.lock`: one worker per state directory. The worker holds an
//! exclusive lock on the file for its whole life and writes its pid and
//! start time into it; the kernel drops the lock when the process dies,
//! however it dies, so a stale file never blocks a new worker.
//!
//! The file sits in a directory the panel's group may write into: it is
//! opened without following a symlink and must be a regular file with one
//! link (safe_fs.rs), or writing the pid would overwrite whatever a
//! planted name points to.

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
