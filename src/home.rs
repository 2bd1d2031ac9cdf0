//! The state directory: where it is and what it holds.
//!
//! Layout (a contract panels rely on):
//! `hcc.db` (SQLite), `config.json` (mode 0600), `spool/tmp`, `spool/new`,
//! `spool/bad`, `worker.lock` and `serve.lock`. Everything is created on first use;
//! what exists is never loosened or replaced. The panel's group may write
//! here, so every name is opened through [`crate::safe_fs`]: no symlink is
//! followed, no FIFO opened blocking, no foreign directory used. New directories are private
//! (0700) and new files 0600 because the database holds console and root
//! passwords; an operator who lets a panel in through a shared group widens
//! them on purpose (docs/operations.md, "Sharing the state directory with a panel").

use std::fs::{self, DirBuilder};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::safe_fs::{self, Access, Failure, Owners};

#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
    /// True when this run created the database file.
    new: bool,
    owners: Owners,
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

    /// True when there is no state at `root` yet: no `hcc.db` (the
    /// directory itself missing included). Read-only; anything else, an
    /// unreadable directory say, is left for [`Home::open`] to report.
    pub fn absent(root: &Path) -> bool {
        matches!(
            fs::symlink_metadata(root.join("hcc.db")),
            Err(e) if e.kind() == io::ErrorKind::NotFound
        )
    }

    /// Opens the state directory at `root`, creating whatever is missing
    /// and refusing what an attacker in its group could have planted: a
    /// symlink, a non-directory or a foreign directory at `spool` or its
    /// children, a symlink or hard link at `config.json` (safe_fs.rs).
    pub fn open(root: PathBuf) -> Result<Home, Error> {
        // The state directory itself and its parents are the operator's
        // (not writable by the panel's group), so the path may be a link.
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| Error::io("create directory", &root, e))?;
        // Absolute paths: inotify reports events under the watched path.
        let root = fs::canonicalize(&root).map_err(|e| Error::io("resolve", &root, e))?;
        let meta = fs::metadata(&root).map_err(|e| Error::io("read metadata of", &root, e))?;
        let owners = Owners::new(std::os::unix::fs::MetadataExt::uid(&meta));
        let mut home = Home {
            root,
            new: false,
            owners,
        };
        let root_fd = home.root_fd()?;
        let spool = safe_fs::make_dir(&root_fd, Path::new("spool"), &home.owners)
            .map_err(|f| Error::fs("create directory", home.root.join("spool"), f))?;
        for sub in ["tmp", "new", "bad"] {
            safe_fs::make_dir(&spool, Path::new(sub), &home.owners)
                .map_err(|f| Error::fs("create directory", home.root.join("spool").join(sub), f))?;
        }
        home.new = crate::store::create_if_missing(&home.db_path())?;
        home.private_config(&root_fd)?;
        Ok(home)
    }

    /// Creates `config.json` (`{}`, mode 0600) unless it exists; an
    /// existing one must be a regular file of hcc's user with one link, and
    /// is narrowed to 0600 through its descriptor if others may read it.
    fn private_config(&self, root_fd: &OwnedFd) -> Result<(), Error> {
        let path = self.config_path();
        let name = Path::new("config.json");
        loop {
            match safe_fs::open_file(root_fd, name, Access::ReadOwned, &self.owners) {
                Ok(file) => {
                    return safe_fs::restrict_to_owner(&file)
                        .map_err(|e| Error::io("restrict permissions of", &path, e));
                }
                Err(Failure::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
                // Another user's private file (a panel running `hcc push`
                // in a shared state directory): not this user's to narrow.
                // A link or FIFO would have been refused before the
                // permission check.
                Err(Failure::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
                    return Ok(());
                }
                Err(failure) => return Err(Error::fs("open", &path, failure)),
            }
            match safe_fs::create_new(root_fd, name, 0o600) {
                Ok(mut file) => {
                    return file
                        .write_all(b"{}\n")
                        .and_then(|()| file.sync_all())
                        .map_err(|e| Error::io("write", &path, e));
                }
                // Made by another process meanwhile: check that one.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create", &path, e)),
            }
        }
    }

    /// The state directory, opened as a directory.
    fn root_fd(&self) -> Result<OwnedFd, Error> {
        safe_fs::open_dir(rustix::fs::CWD, &self.root, &self.owners)
            .map_err(|f| Error::fs("open directory", &self.root, f))
    }

    /// `spool/NAME` (`tmp`, `new`, `bad`), opened one component at a time
    /// from the state directory, each checked to be a real directory of a
    /// trusted owner: a component renamed away and replaced by a link is
    /// refused, and the descriptor stays on the checked directory.
    pub fn spool_dir(&self, name: &str) -> Result<OwnedFd, Error> {
        let root_fd = self.root_fd()?;
        let spool = safe_fs::open_dir(&root_fd, Path::new("spool"), &self.owners)
            .map_err(|f| Error::fs("open directory", self.root.join("spool"), f))?;
        safe_fs::open_dir(&spool, Path::new(name), &self.owners)
            .map_err(|f| Error::fs("open directory", self.root.join("spool").join(name), f))
    }

    /// Whose files hcc trusts in this state directory.
    pub fn owners(&self) -> &Owners {
        &self.owners
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
