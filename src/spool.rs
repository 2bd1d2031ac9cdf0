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
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.queued == 0 && self.recovered == 0 && self.rejected.is_empty()
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
            )?;
            continue;
        };
        match examine(&new_dir.join(&name)) {
            Ok(Some((stamp, line))) => batch.push(SpoolItem { name, stamp, line }),
            Ok(None) => {} // taken by another ingester meanwhile
            Err(why) => reject(home, &name, &os_name, &why, &mut report)?,
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
                if matches!(outcome, SpoolOutcome::Queued(_)) {
                    report.queued += 1;
                } else {
                    report.recovered += 1;
                }
                let path = home.spool_new().join(&item.name);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove spool file", path, e)),
                }
            }
            SpoolOutcome::NameReused(id) => {
                let why = format!(
                    "the name was already used by command {id}; give every spool file a new unique name (maildir style: time.pid.host)"
                );
                reject(home, &item.name, item.name.as_ref(), &why, report)?;
            }
        }
    }
    Ok(())
}

/// Reads and checks one spool file. `Ok(None)`: it vanished (another
/// ingester took it). `Err(reason)`: it belongs in `spool/bad`.
fn examine(path: &Path) -> Result<Option<(String, CommandLine)>, String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read file metadata: {e}")),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err("a symlink; spool files must be regular files".into());
    }
    if kind.is_dir() {
        return Err("a directory; spool files must be regular files".into());
    }
    if !kind.is_file() {
        return Err("not a regular file".into());
    }
    // O_NOFOLLOW: a symlink swapped in after the check is refused, never
    // followed to a file outside the spool.
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read file metadata: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    (&mut file as &mut File)
        .take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(format!(
            "larger than {MAX_FILE_SIZE} bytes; a spool file holds one command line"
        ));
    }
    let line = parse(&bytes)?;
    let stamp = format!(
        "{}:{}:{}:{}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    Ok(Some((stamp, line)))
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

/// Moves `spool/new/NAME` to `spool/bad/` with a `.why` beside it. The
/// reason is written first, so a crash leaves at worst a reason without
/// its file, never a rejected file without its reason.
fn reject(
    home: &Home,
    name: &str,
    os_name: &std::ffi::OsStr,
    why: &str,
    report: &mut Report,
) -> Result<(), Error> {
    let bad_dir = home.spool_bad();
    let source = home.spool_new().join(os_name);
    let target = free_name(&bad_dir, name);
    let why_path = bad_dir.join(format!("{target}.why"));
    let tmp = bad_dir.join(format!(".{target}.why.tmp"));
    write_file(&tmp, format!("{why}\n").as_bytes())
        .and_then(|()| fs::rename(&tmp, &why_path))
        .map_err(|e| Error::io("write", &why_path, e))?;
    match fs::rename(&source, bad_dir.join(&target)) {
        Ok(()) => {
            report.rejected.push((name.to_string(), why.to_string()));
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Another ingester moved it first.
            let _ = fs::remove_file(&why_path);
            Ok(())
        }
        Err(e) => Err(Error::io("move to spool/bad", source, e)),
    }
}

/// A name in `bad/` that neither a file nor a reason uses yet.
fn free_name(bad_dir: &Path, name: &str) -> String {
    let taken = |n: &str| {
        fs::symlink_metadata(bad_dir.join(n)).is_ok()
            || fs::symlink_metadata(bad_dir.join(format!("{n}.why"))).is_ok()
    };
    // Non-UTF-8 names arrive lossily converted; keep them printable.
    let base: String = name
        .chars()
        .map(|c| if c.is_control() || c == '/' { '_' } else { c })
        .collect();
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}.{i}"))
        .find(|n| !taken(n))
        .unwrap_or(base)
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Prints what a pass rejected, one `hcc:` line per file, for commands
/// that ingest on the side (`next`, `wait`).
pub fn warn_rejected(report: &Report) {
    for (name, why) in &report.rejected {
        eprintln!("hcc: spool: rejected `{}`: {why}", shown(name));
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
