//! `hcc backup FILE`: a consistent copy of `hcc.db` while the worker,
//! `hcc serve` and panels go on writing (store/copy.rs: one read snapshot,
//! copied a slice at a time).
//!
//! The copy is written under a fresh temporary name in FILE's directory
//! (`O_EXCL`, `O_NOFOLLOW`, mode 0600: it holds console and root
//! passwords), synced, then renamed to FILE: a reader never sees half a
//! copy, and a symlink at FILE is replaced, never written through. An
//! existing FILE is kept unless `--force`. `hcc restore` keeps the
//! database it replaces the same way ([`write_copy`]).

use std::fs::File;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use rustix::fs::AtFlags;
use serde_json::json;

use crate::error::Error;
use crate::home::Home;
use crate::safe_fs;
use crate::store::Store;
use crate::store::copy::{PAUSE, Progress};

/// Copies below this many pages (40 MB of 4 KiB pages) show no progress:
/// they are done before a line would be worth drawing.
const PROGRESS_FROM_PAGES: u64 = 10_000;

/// Whether a copy may replace what its target name holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// An existing name is an error.
    Never,
    /// An existing name (a symlink included) is replaced, not followed.
    Allowed,
}

pub fn run(home: &Home, file: &Path, force: bool, json_out: bool) -> Result<ExitCode, Error> {
    refuse_live(home, file)?;
    let store = Store::open(&home.db_path())?;
    let replace = if force {
        Replace::Allowed
    } else {
        Replace::Never
    };
    let started = Instant::now();
    let mut shown = TerminalProgress::new();
    let done = write_copy(&store, file, replace, &mut |p| shown.show(p))?;
    shown.finish();
    let bytes = std::fs::symlink_metadata(file).map_or(0, |m| m.len());
    let secs = started.elapsed().as_secs_f64();
    if json_out {
        let value = json!({
            "file": file.display().to_string(),
            "pages": done.total,
            "bytes": bytes,
            "seconds": (secs * 1000.0).round() / 1000.0,
        });
        crate::output::print(&format!("{value}\n"))?;
    } else {
        crate::output::print(&format!(
            "backed up {} to {} ({} pages, {bytes} bytes, {secs:.1} s)\n",
            home.db_path().display(),
            file.display(),
            done.total
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies `store` into `target`: a new temporary file beside it (mode
/// 0600), synced, renamed into place as `replace` allows, the directory
/// synced. Nothing is left behind when it fails.
pub fn write_copy(
    store: &Store,
    target: &Path,
    replace: Replace,
    progress: &mut dyn FnMut(Progress),
) -> Result<Progress, Error> {
    let (dir, name) = split(target)?;
    if replace == Replace::Never && std::fs::symlink_metadata(target).is_ok() {
        return Err(exists(target));
    }
    let dir_fd = File::open(&dir).map_err(|e| Error::io("open directory", &dir, e))?;
    let tmp = safe_fs::temp_name(name.as_os_str());
    let tmp_path = dir.join(&tmp);
    drop(safe_fs::create_new(&dir_fd, &tmp, 0o600).map_err(|e| Error::io("create", &tmp_path, e))?);
    let written = (|| {
        let done = store.backup_to(&tmp_path, PAUSE, &mut *progress)?;
        let owners =
            safe_fs::Owners::of_parent(&tmp_path).map_err(|e| Error::io("open", &tmp_path, e))?;
        safe_fs::open_file(&dir_fd, &tmp, safe_fs::Access::Read, &owners)
            .map_err(|f| Error::fs("open", &tmp_path, f))?
            .sync_all()
            .map_err(|e| Error::io("sync", &tmp_path, e))?;
        let renamed = match replace {
            Replace::Allowed => {
                rustix::fs::renameat(&dir_fd, &tmp, &dir_fd, &name).map_err(io::Error::from)
            }
            Replace::Never => safe_fs::rename_noreplace(&dir_fd, &tmp, &dir_fd, &name),
        };
        match renamed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists(target)),
            Err(e) => return Err(Error::io("rename into", target, e)),
        }
        // The rename itself survives a crash only once the directory is.
        dir_fd
            .sync_all()
            .map_err(|e| Error::io("sync directory", &dir, e))?;
        Ok(done)
    })();
    if written.is_err() {
        let _ = rustix::fs::unlinkat(&dir_fd, &tmp, AtFlags::empty());
    }
    written
}

/// Refuses a target that is the live database or one of its side files:
/// replacing `hcc.db` by rename under open connections is what `hcc
/// restore` exists to avoid.
fn refuse_live(home: &Home, target: &Path) -> Result<(), Error> {
    let (dir, name) = split(target)?;
    let same_dir = std::fs::canonicalize(&dir).is_ok_and(|d| d == home.root());
    let live = ["hcc.db", "hcc.db-wal", "hcc.db-shm", "hcc.db-journal"];
    if same_dir && live.iter().any(|n| name.as_os_str() == *n) {
        return Err(Error::Input(format!(
            "`{}` is the live database or its journal: back up to another name",
            target.display()
        )));
    }
    Ok(())
}

/// `target`'s directory and file name; a name that is none (`/`, `..`)
/// is a usage error.
fn split(target: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let name = target
        .file_name()
        .filter(|_| !target.as_os_str().as_encoded_bytes().ends_with(b"/"))
        .ok_or_else(|| {
            Error::Input(format!(
                "`{}` names no file: give a file name, e.g. hcc-backup.db",
                target.display()
            ))
        })?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, PathBuf::from(name)))
}

fn exists(target: &Path) -> Error {
    Error::Input(format!(
        "`{}` exists: hcc replaces it only with --force",
        target.display()
    ))
}

/// The copy's progress on stderr when it is a terminal and the copy is
/// large: one line, redrawn, erased at the end (as `hcc sync`'s).
struct TerminalProgress {
    terminal: bool,
    shown: bool,
}

impl TerminalProgress {
    fn new() -> TerminalProgress {
        TerminalProgress {
            terminal: io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(&mut self, p: Progress) {
        if self.terminal && p.total >= PROGRESS_FROM_PAGES {
            eprint!("\rhcc: backup: {}%", percent(p));
            self.shown = true;
        }
    }

    fn finish(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

fn percent(p: Progress) -> u64 {
    (p.copied * 100).checked_div(p.total).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_directory_and_name() {
        let (dir, name) = split(Path::new("b.db")).unwrap();
        assert_eq!(
            (dir.as_path(), name.as_path()),
            (Path::new("."), Path::new("b.db"))
        );
        let (dir, name) = split(Path::new("/x/y/b.db")).unwrap();
        assert_eq!(
            (dir.as_path(), name.as_path()),
            (Path::new("/x/y"), Path::new("b.db"))
        );
        for bad in ["/", "..", "dir/", ""] {
            assert!(split(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn progress_is_a_percentage() {
        assert_eq!(
            percent(Progress {
                copied: 0,
                total: 0
            }),
            100
        );
        assert_eq!(
            percent(Progress {
                copied: 1,
                total: 4
            }),
            25
        );
    }

    #[test]
    fn a_planted_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let (_db_dir, store) = Store::scratch();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let target = dir.path().join("b.db");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        // Without --force: refused.
        assert!(write_copy(&store, &target, Replace::Never, &mut |_| {}).is_err());
        // With it: the link is replaced by the copy, its target untouched.
        write_copy(&store, &target, Replace::Allowed, &mut |_| {}).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
        // A temporary name taken by a link is refused, not followed.
        let tmp = dir.path().join(".taken");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let dir_fd = File::open(dir.path()).unwrap();
        assert!(safe_fs::create_new(&dir_fd, Path::new(".taken"), 0o600).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        // Nothing temporary is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
