//! `hcc restore FILE`: puts a backup back as the state directory's
//! database.
//!
//! Order: take `worker.lock` and `serve.lock` (refused, exit 4, while a
//! worker or `hcc serve` runs; held to the end, so none starts meanwhile);
//! copy FILE to a temporary file in the state directory (mode 0600) and
//! check the copy, not FILE, which someone may still change: an SQLite
//! database, hcc's (`application_id`, its `commands` table), a schema no
//! newer than this binary's, `PRAGMA integrity_check` ok. Then keep the
//! live database as `hcc.db.replaced-<UTC time>` (a backup of it, mode
//! 0600) and write the copy into the live database in one transaction
//! (store/copy.rs: its WAL stays its own, connections that panels hold
//! open read the restored state). A live database too damaged to copy is
//! moved aside instead, with its WAL (`-wal` beside the kept name) and
//! without its `-shm` index, and the copy renamed into its place, so no
//! old WAL is ever applied to the restored file. Last, the restored file
//! is opened as every command opens it, which upgrades an older schema.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rustix::fs::AtFlags;
use serde_json::json;

use crate::backup::{Replace, write_copy};
use crate::error::Error;
use crate::home::Home;
use crate::safe_fs;
use crate::store::{self, Store, copy};
use crate::worker;

pub fn run(home: &Home, file: &Path, json_out: bool) -> Result<ExitCode, Error> {
    let _worker = worker::lock(home).map_err(|e| match e {
        Error::Busy(why) => Error::Busy(format!("{why}: stop it before restoring")),
        other => other,
    })?;
    let _serve = worker::ServeLock::exclusive(&worker::serve_lock_path(home))?;
    let root = home.root();
    let root_fd = File::open(root).map_err(|e| Error::io("open directory", root, e))?;
    let tmp = safe_fs::temp_name("hcc.db".as_ref());
    let tmp_path = root.join(&tmp);
    drop(
        safe_fs::create_new(&root_fd, &tmp, 0o600)
            .map_err(|e| Error::io("create", &tmp_path, e))?,
    );
    let outcome = (|| {
        let version = checked_copy(file, &tmp_path)?;
        let kept = replace(home, &root_fd, &tmp, &tmp_path)?;
        Ok::<_, Error>((version, kept))
    })();
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut name = tmp.clone().into_os_string();
        name.push(suffix);
        let _ = rustix::fs::unlinkat(&root_fd, Path::new(&name), AtFlags::empty());
    }
    let (version, kept) = outcome?;
    // Opened as every command opens it: an older schema is upgraded now.
    drop(Store::open(&home.db_path())?);
    if json_out {
        let value = json!({
            "restored": file.display().to_string(),
            "schema_version": version,
            "replaced": kept.display().to_string(),
        });
        crate::output::print(&format!("{value}\n"))?;
    } else {
        crate::output::print(&format!(
            "restored {} (schema version {version}) into {}; the replaced database is kept as {}\n",
            file.display(),
            home.db_path().display(),
            kept.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies FILE to `tmp` and checks the copy (module doc); its schema
/// version.
fn checked_copy(file: &Path, tmp: &Path) -> Result<i64, Error> {
    let refuse =
        |why: String| Error::Input(format!("refusing to restore `{}`: {why}", file.display()));
    if let Err(e) = std::fs::metadata(file) {
        return Err(Error::io("read", file, e));
    }
    copy::copy_file(file, tmp).map_err(|e| {
        refuse(format!(
            "it is not an SQLite database hcc can read ({})",
            cause(&e)
        ))
    })?;
    let identity = copy::identity(tmp).map_err(|e| {
        refuse(format!(
            "it is not an SQLite database hcc can read ({})",
            cause(&e)
        ))
    })?;
    if let Some(why) = identity.foreign() {
        return Err(refuse(format!("it is not an hcc database: {why}")));
    }
    if identity.user_version > copy::known_version() || identity.user_version < 0 {
        return Err(Error::Store(store::Error::TooNew {
            path: file.to_path_buf(),
            found: identity.user_version,
            known: copy::known_version() as usize,
        }));
    }
    let damage =
        copy::integrity(tmp).map_err(|e| refuse(format!("it is damaged ({})", cause(&e))))?;
    if let Some(first) = damage.first() {
        let more = match damage.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Err(refuse(format!(
            "it is damaged: the integrity check says: {}{more}",
            crate::output::one_line(first)
        )));
    }
    Ok(identity.user_version)
}

/// SQLite's own words for a failure, without hcc's advice around them.
fn cause(err: &store::Error) -> String {
    match err {
        store::Error::Sqlite { source, .. } => crate::output::one_line(&source.to_string()).into(),
        other => other.to_string(),
    }
}

/// Keeps the live database and puts the checked copy at `tmp` in its
/// place (module doc); where the live one is kept.
fn replace(home: &Home, root_fd: &File, tmp: &Path, tmp_path: &Path) -> Result<PathBuf, Error> {
    let live = home.db_path();
    let kept_name = free_name(home.root())?;
    let kept = home.root().join(&kept_name);
    let opened = match Store::open(&live) {
        Ok(store) => Some(store),
        Err(err) if is_damage(&err) => None,
        Err(err) => return Err(err.into()),
    };
    if let Some(mut store) = opened {
        match write_copy(&store, &kept, Replace::Never, &mut |_| {}) {
            Ok(_) => {
                store.restore_from(tmp_path)?;
                return Ok(kept);
            }
            Err(Error::Store(err)) if is_damage(&err) => {}
            Err(err) => return Err(err),
        }
    }
    // Too damaged to read: moved aside whole, WAL included.
    let moved = |from: &str, to: &Path| -> Result<bool, Error> {
        match safe_fs::rename_noreplace(root_fd, Path::new(from), root_fd, to) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("move aside", home.root().join(from), e)),
        }
    };
    moved("hcc.db", &kept_name)?;
    let mut kept_wal = kept_name.clone().into_os_string();
    kept_wal.push("-wal");
    moved("hcc.db-wal", Path::new(&kept_wal))?;
    // The index of the old WAL: rebuilt from the WAL it describes,
    // never to be read beside another database.
    match rustix::fs::unlinkat(root_fd, "hcc.db-shm", AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(Error::io(
                "remove",
                home.root().join("hcc.db-shm"),
                e.into(),
            ));
        }
    }
    safe_fs::rename_noreplace(root_fd, tmp, root_fd, Path::new("hcc.db"))
        .map_err(|e| Error::io("rename into", &live, e))?;
    root_fd
        .sync_all()
        .map_err(|e| Error::io("sync directory", home.root(), e))?;
    Ok(kept)
}

/// `hcc.db.replaced-<UTC time>`, with `-2`, `-3` ... when taken.
fn free_name(root: &Path) -> Result<PathBuf, Error> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    for n in 1..100 {
        let name = match n {
            1 => format!("hcc.db.replaced-{stamp}"),
            n => format!("hcc.db.replaced-{stamp}-{n}"),
        };
        if std::fs::symlink_metadata(root.join(&name)).is_err() {
            return Ok(PathBuf::from(name));
        }
    }
    Err(Error::Failed(format!(
        "too many hcc.db.replaced-{stamp}* files in {}",
        root.display()
    )))
}

/// Whether `err` says the live database cannot be read as one.
fn is_damage(err: &store::Error) -> bool {
    match err {
        store::Error::Damaged { .. } => true,
        store::Error::Sqlite { source, .. } => matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_names_never_replace_one_another() {
        let dir = tempfile::tempdir().unwrap();
        let first = free_name(dir.path()).unwrap();
        assert!(first.to_string_lossy().starts_with("hcc.db.replaced-"));
        assert!(first.to_string_lossy().ends_with('Z'));
        std::fs::write(dir.path().join(&first), b"").unwrap();
        let second = free_name(dir.path()).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn only_damage_moves_the_live_database_aside() {
        let damaged = store::Error::Damaged {
            path: "hcc.db".into(),
            why: "is damaged".into(),
        };
        assert!(is_damage(&damaged));
        let newer = store::Error::TooNew {
            path: "hcc.db".into(),
            found: 99,
            known: 8,
        };
        assert!(!is_damage(&newer));
    }
}
