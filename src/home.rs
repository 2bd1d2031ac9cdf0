//! The state directory: where it is and what it holds.
//!
//! Layout (a contract panels rely on):
//! `hcc.db` (SQLite), `config.json` (mode 0600), `spool/tmp`, `spool/new`,
//! `spool/bad`, and later `worker.lock`. Everything is created on first use;
//! what exists is never loosened or replaced. New directories are private
//! (0700) and new files 0600 because the database holds console and root
//! passwords; an operator who lets a panel in through a shared group widens
//! them on purpose (README, "Sharing the state directory with a panel").

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
    /// True when this run created the database file.
    new: bool,
}

impl Home {
    /// Where the state directory is: `--home` (or `HCC_HOME`, which clap
    /// folds into the same flag), else `$XDG_STATE_HOME/hcc`, else
    /// `~/.local/state/hcc`.
    pub fn locate(flag: Option<PathBuf>) -> Result<PathBuf, Error> {
        if let Some(dir) = flag.filter(|d| !d.as_os_str().is_empty()) {
            return Ok(dir);
        }
        // The XDG spec says relative values are invalid and must be ignored.
        if let Some(state) = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from)
            && state.is_absolute()
        {
            return Ok(state.join("hcc"));
        }
        match std::env::var_os("HOME").map(PathBuf::from) {
            Some(home) if home.is_absolute() => Ok(home.join(".local/state/hcc")),
            _ => Err(Error::Input(
                "cannot find a state directory: HOME is not set; use --home DIR or set HCC_HOME"
                    .into(),
            )),
        }
    }

    /// Opens the state directory at `root`, creating whatever is missing.
    pub fn open(root: PathBuf) -> Result<Home, Error> {
        let mut home = Home { root, new: false };
        let mut dirs = DirBuilder::new();
        dirs.recursive(true).mode(0o700);
        for dir in [
            home.root.clone(),
            home.spool_tmp(),
            home.spool_new(),
            home.spool_bad(),
        ] {
            dirs.create(&dir)
                .map_err(|e| Error::io("create directory", &dir, e))?;
        }
        home.new = create_private_file(&home.db_path(), b"")?;
        create_private_file(&home.config_path(), b"{}\n")?;
        // Absolute paths: inotify reports events under the watched path.
        home.root =
            fs::canonicalize(&home.root).map_err(|e| Error::io("resolve", &home.root, e))?;
        Ok(home)
    }

    /// True when this run created the state (the database was missing).
    pub fn is_new(&self) -> bool {
        self.new
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("hcc.db")
    }

    /// The write-ahead log SQLite keeps beside the database; every commit
    /// by any process (hcc, PHP's PDO, the sqlite3 CLI) writes to it.
    pub fn wal_file_name(&self) -> &'static str {
        "hcc.db-wal"
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.json")
    }

    pub fn spool_tmp(&self) -> PathBuf {
        self.root.join("spool/tmp")
    }

    pub fn spool_new(&self) -> PathBuf {
        self.root.join("spool/new")
    }

    pub fn spool_bad(&self) -> PathBuf {
        self.root.join("spool/bad")
    }
}

/// Creates `path` with mode 0600 holding `contents` unless it exists
/// (returns true when it created it). An
/// existing file keeps its contents; if it is readable by others it is
/// narrowed to 0600 only when it is the configuration (which may hold the
/// API token) — the database's mode is the operator's choice (panels may
/// share it through a group).
fn create_private_file(path: &Path, contents: &[u8]) -> Result<bool, Error> {
    use std::io::Write;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => file
            .write_all(contents)
            .and_then(|()| file.sync_all())
            .map(|()| true)
            .map_err(|e| Error::io("write", path, e)),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            if path.file_name().is_some_and(|n| n == "config.json") {
                restrict_to_owner(path)?;
            }
            Ok(false)
        }
        Err(err) => Err(Error::io("create", path, err)),
    }
}

/// Narrows a file that may hold a secret to 0600 if group or others can
/// read it.
pub fn restrict_to_owner(path: &Path) -> Result<(), Error> {
    let meta = fs::metadata(path).map_err(|e| Error::io("read metadata of", path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("restrict permissions of", path, e))?;
    }
    Ok(())
}
