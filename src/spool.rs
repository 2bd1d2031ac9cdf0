//! The spool directory: panels hand over commands as files, maildir style.
//!
//! Writer protocol (README, "The spool directory"): write `spool/tmp/NAME`,
//! fsync, rename it to `spool/new/NAME`, with a NAME no other file has used
//! (time, pid and host, as maildir does). A rename is atomic, so a reader
//! never sees half a file.
//!
//! Ingest: list `spool/new` (dot-files are skipped: writers may use them as
//! their own temporaries), check each file, queue the good ones in one
//! transaction keyed on the file name, commit, then unlink. A crash between
//! commit and unlink re-reads the same file later, finds its name (and the
//! same device, inode, size and mtime) already queued, and only unlinks.
//! Anything that is not one valid command line moves to `spool/bad/NAME`
//! with `spool/bad/NAME.why` holding the reason; ingest goes on. Several
//! ingesters may run at once (`next`, `wait`, `ingest`, the worker): each
//! step tolerates a file that another one already took.
//!
//! Locking: none of its own. The database's unique `spool_name` decides
//! which ingester queues a file; an atomic no-replace rename decides which
//! one rejects it. A file that cannot be read or moved now (I/O error,
//! full disk) stays in `spool/new` and is reported; the pass goes on.
//!
//! Compatibility: the file format (one line `CMD ARG...`, UTF-8, at most
//! 4096 bytes) and the `bad/NAME` + `bad/NAME.why` layout are a contract
//! with panels (README, "The spool directory").

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::error::Error;
use crate::home::Home;
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
    /// Files left in `spool/new` for the next pass, with the failure that
    /// kept them there (a full disk, a read error).
    pub deferred: Vec<(String, String)>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.queued == 0
            && self.recovered == 0
            && self.rejected.is_empty()
            && self.deferred.is_empty()
    }
}

/// One pass over `spool/new`.
pub fn ingest(home: &Home, store: &mut Store) -> Result<Report, Error> {
    let new_dir = home.spool_new();
    let mut report = Report::default();
    let mut names = Vec::new();
    let entries = fs::read_dir(&new_dir).map_err(|e| Error::io("list", &new_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", &new_dir, e))?;
        let name = entry.file_name();
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
                home,
                &lossy,
                &os_name,
                "file name is not UTF-8",
                &mut report,
            );
            continue;
        };
        match examine(&new_dir.join(&name)) {
            Verdict::Good(stamp, line) => batch.push(SpoolItem { name, stamp, line }),
            Verdict::Gone => {} // taken by another ingester meanwhile
            Verdict::Bad(why) => reject(home, &name, &os_name, &why, &mut report),
            Verdict::Unreadable(why) => report.deferred.push((name, why)),
        }
        if batch.len() == BATCH {
            flush(home, store, &mut batch, &mut report)?;
        }
    }
    flush(home, store, &mut batch, &mut report)?;
    Ok(report)
}

/// Queues a batch, then unlinks (or rejects) its files.
fn flush(
    home: &Home,
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
                let path = home.spool_new().join(&item.name);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    // Queued already; the next pass sees it as recovered.
                    Err(e) => report.deferred.push((
                        item.name.clone(),
                        format!("queued, but cannot remove it: {e}"),
                    )),
                }
            }
            SpoolOutcome::NameReused(id) => {
                let why = format!(
                    "the name was already used by command {id}; give every spool file a new unique name (maildir style: time.pid.host)"
                );
                reject(home, &item.name, item.name.as_ref(), &why, report);
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
    /// Not a valid command file: it belongs in `spool/bad`.
    Bad(String),
    /// Could not be read now (I/O error): left for the next pass.
    Unreadable(String),
}

/// Reads and checks one spool file.
fn examine(path: &Path) -> Verdict {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Verdict::Gone,
        Err(e) => return Verdict::Unreadable(format!("cannot read file metadata: {e}")),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Verdict::Bad("a symlink; spool files must be regular files".into());
    }
    if kind.is_dir() {
        return Verdict::Bad("a directory; spool files must be regular files".into());
    }
    if !kind.is_file() {
        return Verdict::Bad("not a regular file".into());
    }
    // O_NOFOLLOW: a symlink swapped in after the check is refused, never
    // followed to a file outside the spool.
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Verdict::Gone,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Verdict::Bad("a symlink; spool files must be regular files".into());
        }
        Err(e) => return Verdict::Unreadable(format!("cannot open: {e}")),
    };
    let meta = match file.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Verdict::Bad("not a regular file".into()),
        Err(e) => return Verdict::Unreadable(format!("cannot read file metadata: {e}")),
    };
    let mut bytes = Vec::new();
    if let Err(e) = (&mut file as &mut File)
        .take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
    {
        return Verdict::Unreadable(format!("cannot read: {e}"));
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
fn reject(home: &Home, name: &str, os_name: &std::ffi::OsStr, why: &str, report: &mut Report) {
    let bad_dir = home.spool_bad();
    let source = home.spool_new().join(os_name);
    let base = bad_name(name);
    let mut target = None;
    for attempt in 0..1000 {
        let candidate = if attempt == 0 {
            base.clone()
        } else {
            format!("{base}.{attempt}")
        };
        if fs::symlink_metadata(bad_dir.join(format!("{candidate}.why"))).is_ok() {
            continue;
        }
        match rename_noreplace(&source, &bad_dir.join(&candidate)) {
            Ok(()) => {
                target = Some(candidate);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return, // another ingester's
            Err(e) => {
                report
                    .deferred
                    .push((name.to_string(), format!("cannot move to spool/bad: {e}")));
                return;
            }
        }
    }
    let Some(target) = target else {
        report
            .deferred
            .push((name.to_string(), "no free name left in spool/bad".into()));
        return;
    };
    report.rejected.push((name.to_string(), why.to_string()));
    if let Err(e) = write_reason(&bad_dir, &target, why) {
        report.deferred.push((
            name.to_string(),
            format!("moved to spool/bad/{target}, but cannot write its .why: {e}"),
        ));
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

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(io::Error::from)
}

fn write_reason(bad_dir: &Path, target: &str, why: &str) -> io::Result<()> {
    let tmp = bad_dir.join(format!(".{target}.why.{}.tmp", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = file
        .write_all(format!("{why}\n").as_bytes())
        .and_then(|()| fs::rename(&tmp, bad_dir.join(format!("{target}.why"))));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Prints what a pass rejected, one `hcc:` line per file, for commands
/// that ingest on the side (`next`, `wait`).
pub fn warn_rejected(report: &Report) {
    for (name, why) in &report.rejected {
        eprintln!("hcc: spool: rejected `{}`: {why}", shown(name));
    }
    for (name, why) in &report.deferred {
        eprintln!(
            "hcc: spool: left `{}` for the next pass: {why}",
            shown(name)
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
