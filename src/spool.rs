//! The spool directory: panels hand over commands as files, maildir style.
//!
//! Writer protocol (docs/panels.md, "The spool directory"): write `spool/tmp/NAME`,
//! fsync, rename it to `spool/new/NAME`, with a NAME no other file has used
//! (time, pid and host, as maildir does). A rename is atomic, so a reader
//! never sees half a file.
//!
//! Ingest: list `spool/new` (dot-files are skipped: writers may use them as
//! their own temporaries), check each file, queue the good ones in one
//! transaction keyed on the file name, commit, then unlink. A crash between
//! commit and unlink re-reads the same file later, finds its name (and the
//! same device, inode, size and mtime) already queued, and only unlinks.
//! Anything that is not one valid command line, or that hcc's user may not
//! read, moves to `spool/bad/NAME` with `spool/bad/NAME.why` holding the
//! reason; ingest goes on. Several
//! ingesters may run at once (`next`, `wait`, `ingest`, the worker): each
//! step tolerates a file that another one already took.
//!
//! Locking: none of its own. The database's unique `spool_name` decides
//! which ingester queues a file; an atomic no-replace rename decides which
//! one rejects it. A file that cannot be read or moved now (I/O error,
//! full disk) stays in `spool/new` and is reported, once per process and
//! file (name and inode); the pass goes on.
//!
//! The panel's group may write into these directories: `spool/new` and
//! `spool/bad` are opened once per pass as checked directory descriptors
//! ([`Home::spool_dir`]) and every file is reached through them (`openat`,
//! `renameat`, `unlinkat`), never by a path that a swapped link could
//! redirect; spool files are opened `O_NOFOLLOW|O_NONBLOCK` and must be
//! regular files by `fstat`.
//!
//! Compatibility: the file format (one line `CMD ARG...`, UTF-8, at most
//! 4096 bytes) and the `bad/NAME` + `bad/NAME.why` layout are a contract
//! with panels (docs/panels.md, "The spool directory").

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use rustix::fs::AtFlags;
use rustix::io::Errno;

use crate::error::Error;
use crate::home::Home;
use crate::safe_fs::{self, Access, Failure};
use crate::store::{SpoolItem, SpoolOutcome, Store};
use crate::verb::{CommandLine, shown};

/// The largest spool file accepted, in bytes.
pub const MAX_FILE_SIZE: u64 = 4096;

/// Files queued per transaction: large enough to amortise the commit,
/// small enough to keep the write lock short for panels.
const BATCH: usize = 256;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Files that became new commands.
    pub queued: usize,
    /// Files already queued by an earlier, interrupted pass.
    pub recovered: usize,
    /// Files moved to `spool/bad`, with the reason.
    pub rejected: Vec<(String, String)>,
    /// Files left in `spool/new` for the next pass (a full disk, a read
    /// error, a file that can be neither read nor moved).
    pub deferred: Vec<Deferred>,
    /// Name and inode of each deferred file, in the same order.
    deferred_keys: Vec<(String, u64)>,
}

/// A file left in `spool/new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub name: String,
    pub why: String,
    /// This process already reported the same file (name and inode) in an
    /// earlier pass: a long-running worker says it once, not at every
    /// wake-up.
    pub reported: bool,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.queued == 0
            && self.recovered == 0
            && self.rejected.is_empty()
            && self.deferred.is_empty()
    }

    fn defer(&mut self, name: &str, ino: u64, why: String) {
        self.deferred.push(Deferred {
            name: name.to_string(),
            why,
            reported: false,
        });
        self.deferred_keys.push((name.to_string(), ino));
    }
}

/// Files left in `spool/new` that this process has reported, by name and
/// inode; pruned after each pass to those still left.
static REPORTED: Mutex<BTreeSet<(String, u64)>> = Mutex::new(BTreeSet::new());

/// `spool/new` and `spool/bad`, opened and checked once per pass; every
/// name below is reached through these descriptors, never by path.
struct Dirs {
    new: OwnedFd,
    bad: OwnedFd,
}

/// One pass over `spool/new`.
pub fn ingest(home: &Home, store: &mut Store) -> Result<Report, Error> {
    let dirs = Dirs {
        new: home.spool_dir("new")?,
        bad: home.spool_dir("bad")?,
    };
    let new_path = home.spool_new();
    let mut report = Report::default();
    let mut names = Vec::new();
    let listing = rustix::fs::Dir::read_from(&dirs.new)
        .map_err(|e| Error::io("list", &new_path, e.into()))?;
    for entry in listing {
        let entry = entry.map_err(|e| Error::io("list", &new_path, e.into()))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        names.push(name);
    }
    // Oldest first, as far as names tell: maildir names begin with the time.
    names.sort();

    let mut batch = Vec::new();
    for os_name in names {
        let Some(name) = os_name.to_str().map(str::to_string) else {
            let lossy = os_name.to_string_lossy().into_owned();
            reject(
                &dirs,
                &lossy,
                &os_name,
                "file name is not UTF-8",
                &mut report,
            );
            continue;
        };
        match examine(&dirs.new, Path::new(&name)) {
            Verdict::Good(stamp, line) => batch.push(SpoolItem { name, stamp, line }),
            Verdict::Gone => {} // taken by another ingester meanwhile
            Verdict::Bad(why) => reject(&dirs, &name, &os_name, &why, &mut report),
            Verdict::Unreadable(ino, why) => report.defer(&name, ino, why),
        }
        if batch.len() == BATCH {
            flush(&dirs, store, &mut batch, &mut report)?;
        }
    }
    flush(&dirs, store, &mut batch, &mut report)?;
    remember_reported(&mut report);
    Ok(report)
}

/// Marks the deferred files this process reported before, and forgets
/// those no longer left (a file that comes back is reported again).
fn remember_reported(report: &mut Report) {
    let keys = std::mem::take(&mut report.deferred_keys);
    let Ok(mut seen) = REPORTED.lock() else {
        return;
    };
    for (deferred, key) in report.deferred.iter_mut().zip(&keys) {
        deferred.reported = seen.contains(key);
    }
    *seen = keys.into_iter().collect();
}

/// Queues a batch, then unlinks (or rejects) its files.
fn flush(
    dirs: &Dirs,
    store: &mut Store,
    batch: &mut Vec<SpoolItem>,
    report: &mut Report,
) -> Result<(), Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = store.queue_spool(batch)?;
    for (item, outcome) in batch.drain(..).zip(outcomes) {
        match outcome {
            SpoolOutcome::Queued(_) | SpoolOutcome::AlreadyQueued(_) => {
                match outcome {
                    SpoolOutcome::Queued(_) => report.queued += 1,
                    _ => report.recovered += 1,
                }
                match rustix::fs::unlinkat(&dirs.new, Path::new(&item.name), AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    // Queued already; the next pass sees it as recovered.
                    Err(e) => report.defer(
                        &item.name,
                        0,
                        format!("queued, but cannot remove it: {}", io::Error::from(e)),
                    ),
                }
            }
            SpoolOutcome::NameReused(id) => {
                let why = format!(
                    "the name was already used by command {id}; give every spool file a new unique name (maildir style: time.pid.host)"
                );
                reject(dirs, &item.name, item.name.as_ref(), &why, report);
            }
        }
    }
    Ok(())
}

/// What one look at a spool file found.
enum Verdict {
    /// A valid command; its stamp.
    Good(String, CommandLine),
    /// Another ingester took it meanwhile.
    Gone,
    /// Not a valid command file, or one hcc may not read: it belongs in
    /// `spool/bad`.
    Bad(String),
    /// Could not be read now (I/O error): left for the next pass; its
    /// inode.
    Unreadable(u64, String),
}

/// Reads and checks one spool file, `name` in `spool/new`.
fn examine(new_dir: &OwnedFd, name: &Path) -> Verdict {
    let meta = match rustix::fs::statat(new_dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(meta) => meta,
        Err(Errno::NOENT) => return Verdict::Gone,
        Err(e) => {
            return Verdict::Unreadable(
                0,
                format!("cannot read file metadata: {}", io::Error::from(e)),
            );
        }
    };
    let ino = meta.st_ino;
    match rustix::fs::FileType::from_raw_mode(meta.st_mode as _) {
        rustix::fs::FileType::RegularFile => {}
        rustix::fs::FileType::Symlink => {
            return Verdict::Bad("a symlink; spool files must be regular files".into());
        }
        rustix::fs::FileType::Directory => {
            return Verdict::Bad("a directory; spool files must be regular files".into());
        }
        _ => return Verdict::Bad("not a regular file".into()),
    }
    // O_NOFOLLOW and O_NONBLOCK, and fstat on the descriptor: a symlink or
    // FIFO swapped in after the check is refused, never followed or
    // waited on.
    let file = match safe_fs::open_file(new_dir, name, Access::Read, &safe_fs::Owners::new(0)) {
        Ok(file) => file,
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Verdict::Gone,
        Err(Failure::Unsafe(why)) => {
            return Verdict::Bad(format!("it {why}; spool files must be regular files"));
        }
        // Not for hcc's user (another user's file of mode 0600): it will
        // not get better by itself, so it goes to spool/bad like any file
        // hcc cannot take.
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Verdict::Bad(format!(
                "hcc cannot read it: permission denied (owner uid {}, mode {:04o}); spool files must be readable by hcc's user",
                meta.st_uid,
                meta.st_mode & 0o7777
            ));
        }
        Err(Failure::Io(e)) => return Verdict::Unreadable(ino, format!("cannot open: {e}")),
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return Verdict::Unreadable(ino, format!("cannot read file metadata: {e}")),
    };
    // A second name: a hard link to a file of someone else's, planted to
    // have hcc read it (and quote it in a `.why` the group can read). It is
    // neither read nor moved; a writer that links into spool/new and then
    // unlinks its temporary (old maildir style) has its file taken at the
    // next pass.
    if meta.nlink() > 1 {
        return Verdict::Unreadable(
            meta.ino(),
            format!(
                "it has {} hard links; a spool file must be renamed into spool/new, not linked",
                meta.nlink()
            ),
        );
    }
    let mut bytes = Vec::new();
    if let Err(e) = (&file).take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes) {
        return Verdict::Unreadable(ino, format!("cannot read: {e}"));
    }
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Verdict::Bad(format!(
            "larger than {MAX_FILE_SIZE} bytes; a spool file holds one command line"
        ));
    }
    match parse(&bytes) {
        Ok(line) => Verdict::Good(stamp(&meta), line),
        Err(why) => Verdict::Bad(why),
    }
}

/// Identifies one file: inode, size and modification time. A file seen
/// again after a crash has the same stamp; a new file reusing a name
/// almost surely does not. (No device number: it can change across a
/// reboot on some file systems.)
fn stamp(meta: &fs::Metadata) -> String {
    format!(
        "{}:{}:{}.{:09}",
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

/// Parses a spool file's bytes: one UTF-8 line `CMD ARG...`, an optional
/// line ending, nothing else.
pub fn parse(bytes: &[u8]) -> Result<CommandLine, String> {
    if bytes.contains(&0) {
        return Err("binary content (NUL bytes); expected one line of UTF-8 text".into());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "binary content (not UTF-8); expected one line of UTF-8 text".to_string())?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.contains(['\n', '\r']) {
        return Err("more than one line; put each command in its own file".into());
    }
    if text.trim().is_empty() {
        return Err("empty; expected `CMD ARG...`".into());
    }
    CommandLine::parse_line(text)
}

/// Moves `spool/new/NAME` to `spool/bad/` with a `.why` beside it.
///
/// The file is claimed by an atomic rename that never replaces anything
/// (`RENAME_NOREPLACE`): of several ingesters rejecting the same file, one
/// wins and writes the reason; the others find it gone and do nothing.
/// The reason goes through a temporary file created anew (`O_EXCL`,
/// `O_NOFOLLOW`), so nothing planted in `spool/bad` is ever written
/// through. A failure leaves the file in `spool/new` for the next pass.
fn reject(dirs: &Dirs, name: &str, os_name: &OsStr, why: &str, report: &mut Report) {
    let base = bad_name(name);
    let ino = rustix::fs::statat(&dirs.new, os_name, AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| st.st_ino)
        .unwrap_or(0);
    let mut target = None;
    for attempt in 0..1000 {
        let candidate = if attempt == 0 {
            base.clone()
        } else {
            format!("{base}.{attempt}")
        };
        let why_name = format!("{candidate}.why");
        if rustix::fs::statat(&dirs.bad, why_name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            continue;
        }
        match safe_fs::rename_noreplace(
            &dirs.new,
            Path::new(os_name),
            &dirs.bad,
            Path::new(&candidate),
        ) {
            Ok(()) => {
                target = Some(candidate);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return, // another ingester's
            Err(e) => {
                report.defer(
                    name,
                    ino,
                    format!("{why}; and it cannot be moved to spool/bad: {e}"),
                );
                return;
            }
        }
    }
    let Some(target) = target else {
        report.defer(name, ino, "no free name left in spool/bad".into());
        return;
    };
    report.rejected.push((name.to_string(), why.to_string()));
    let written = safe_fs::write_atomic(
        &dirs.bad,
        Path::new(&format!("{target}.why")),
        format!("{why}\n").as_bytes(),
        0o600,
    );
    if let Err(e) = written {
        report.defer(
            name,
            0,
            format!("moved to spool/bad/{target}, but cannot write its .why: {e}"),
        );
    }
}

/// The name a rejected file gets in `spool/bad`: printable, and short
/// enough that `.NAME.why.PID.tmp` still fits a file name (255 bytes).
fn bad_name(name: &str) -> String {
    let printable: String = name
        .chars()
        .map(|c| if c.is_control() || c == '/' { '_' } else { c })
        .collect();
    if printable.len() <= 200 {
        return printable;
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    let mut cut = 180;
    while !printable.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{:016x}", &printable[..cut], hasher.finish())
}

/// Prints what a pass rejected, one `hcc:` line per file, for commands
/// that ingest on the side (`next`, `wait`).
pub fn warn_rejected(report: &Report) {
    for (name, why) in &report.rejected {
        eprintln!("hcc: spool: rejected `{}`: {why}", shown(name));
    }
    for deferred in report.deferred.iter().filter(|d| !d.reported) {
        eprintln!(
            "hcc: spool: left `{}` for the next pass: {}",
            shown(&deferred.name),
            deferred.why
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_line() {
        assert_eq!(parse(b"start vm1\n").unwrap().to_string(), "start vm1");
        assert_eq!(parse(b"start vm1\r\n").unwrap().to_string(), "start vm1");
        assert!(
            parse(b"start vm1\nstop vm1\n")
                .unwrap_err()
                .contains("more than one line")
        );
        assert!(parse(b"start \0vm1").unwrap_err().contains("binary"));
        assert!(
            parse(&[0xff, 0xfe, b'a'])
                .unwrap_err()
                .contains("not UTF-8")
        );
        assert!(parse(b"\n\n").unwrap_err().contains("empty"));
        assert!(parse(b"bogus vm1").unwrap_err().contains("unknown command"));
    }
}
