//! Opening names in the state directory, which the panel's group may write
//! into (docs/operations.md, "Sharing the state directory with a panel"): anyone in
//! that group can plant a symlink, a FIFO, a hard link or a directory of
//! their own under any name there, or rename hcc's directories away.
//!
//! So every open here is `O_NOFOLLOW` (a symlink at the last component is
//! refused, never followed), `O_NONBLOCK` (a FIFO cannot hang hcc) and
//! checked with `fstat` on the descriptor itself, never on the path: a
//! regular file, with one link and a trusted owner for files hcc writes or
//! chmods; a real directory with a trusted owner. Directories below the
//! state directory are opened one component at a time from a descriptor
//! (`openat`), so a component swapped for a link after a check is never
//! followed either. New files are created with `O_CREAT|O_EXCL` under a
//! fresh temporary name and renamed into place; modes are fixed with
//! `fchmod` on the checked descriptor.
//!
//! A refusal is [`Failure::Unsafe`]: callers turn it into one error line
//! naming the path (exit 2, [`crate::error::Error::Unsafe`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// Why opening a name failed.
#[derive(Debug)]
pub enum Failure {
    /// The name holds something hcc did not make: what it is.
    Unsafe(String),
    /// An ordinary I/O error (missing, permission denied, disk full).
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure::Io(err)
    }
}

impl From<Errno> for Failure {
    fn from(err: Errno) -> Self {
        Failure::Io(err.into())
    }
}

/// The one-line text of a refusal, shared by every error type that
/// carries one.
pub fn refusal(path: &Path, why: &str) -> String {
    format!(
        "refusing `{}`: it {why}; hcc never follows or writes through a name in its state directory that it did not make (anyone in the directory's group can plant one): remove it or fix it",
        crate::verb::escaped(&path.display().to_string())
    )
}

/// Whose files and directories hcc trusts: its own user, root, and the
/// owner of the state directory (a service user that root may act for).
#[derive(Debug, Clone, Copy)]
pub struct Owners {
    state_dir: u32,
}

impl Owners {
    pub fn new(state_dir_owner: u32) -> Owners {
        Owners {
            state_dir: state_dir_owner,
        }
    }

    /// The owners trusted for names in the directory holding `path`.
    pub fn of_parent(path: &Path) -> io::Result<Owners> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let meta = std::fs::metadata(dir)?;
        Ok(Owners::new(std::os::unix::fs::MetadataExt::uid(&meta)))
    }

    fn trusts(&self, uid: u32) -> bool {
        uid == 0 || uid == rustix::process::geteuid().as_raw() || uid == self.state_dir
    }
}

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only; any trusted or untrusted regular file (a spool file).
    Read,
    /// Read and write, created with `mode` if missing (a lock file).
    ReadWriteCreate(u32),
    /// Read, and its mode may be narrowed: one link, a trusted owner.
    ReadOwned,
}

/// What a mode says a name is, for messages.
fn kind_of(mode: u32) -> &'static str {
    match FileType::from_raw_mode(mode as _) {
        FileType::RegularFile => "is a regular file",
        FileType::Directory => "is a directory",
        FileType::Symlink => "is a symbolic link",
        FileType::Fifo => "is a FIFO",
        FileType::Socket => "is a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "is a device",
        FileType::Unknown => "is of an unknown kind",
    }
}

/// Classifies a name that an `O_NOFOLLOW` open refused (`ELOOP`, or
/// `ENOTDIR` for a directory open).
fn classify(dir: impl AsFd, name: &Path, err: Errno) -> Failure {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st)
            if matches!(
                err,
                Errno::LOOP | Errno::NOTDIR | Errno::NXIO | Errno::ISDIR
            ) =>
        {
            Failure::Unsafe(kind_of(st.st_mode).into())
        }
        _ => Failure::Io(err.into()),
    }
}

/// Opens the directory `name` under `dir` (or an absolute path with
/// [`rustix::fs::CWD`]): a real directory, not a link, owned by a trusted
/// user.
pub fn open_dir(dir: impl AsFd, name: &Path, owners: &Owners) -> Result<OwnedFd, Failure> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(err @ (Errno::LOOP | Errno::NOTDIR)) => {
            return Err(match classify(&dir, name, err) {
                Failure::Unsafe(kind) => Failure::Unsafe(format!("{kind}, not a directory")),
                other => other,
            });
        }
        Err(err) => return Err(err.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    check_owner(st.st_uid, owners)?;
    Ok(fd)
}

/// Creates the directory `name` under `dir` with mode 0700 unless
/// something exists there; then opens it as [`open_dir`] does.
pub fn make_dir(dir: impl AsFd, name: &Path, owners: &Owners) -> Result<OwnedFd, Failure> {
    match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(err) => return Err(err.into()),
    }
    open_dir(dir, name, owners)
}

fn check_owner(uid: impl Into<u64>, owners: &Owners) -> Result<(), Failure> {
    let uid = uid.into() as u32;
    if owners.trusts(uid) {
        Ok(())
    } else {
        Err(Failure::Unsafe(format!(
            "is owned by uid {uid}, neither hcc's user, root nor the state directory's owner"
        )))
    }
}

/// Opens the file `name` under `dir`: never through a symlink, never
/// blocking on a FIFO, and only if the descriptor is a regular file.
pub fn open_file(
    dir: impl AsFd,
    name: &Path,
    access: Access,
    owners: &Owners,
) -> Result<File, Failure> {
    let base = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let (flags, mode) = match access {
        Access::Read | Access::ReadOwned => (OFlags::RDONLY | base, 0),
        Access::ReadWriteCreate(mode) => (OFlags::RDWR | OFlags::CREATE | base, mode),
    };
    let fd = match rustix::fs::openat(&dir, name, flags, Mode::from_raw_mode(mode as _)) {
        Ok(fd) => fd,
        // ELOOP: a symlink; ENXIO: a socket or a FIFO without a reader;
        // EISDIR: a directory opened for writing.
        Err(err @ (Errno::LOOP | Errno::NXIO | Errno::ISDIR)) => {
            return Err(classify(&dir, name, err));
        }
        Err(err) => return Err(err.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    let kind = FileType::from_raw_mode(st.st_mode as _);
    if kind != FileType::RegularFile {
        return Err(Failure::Unsafe(format!(
            "{}, not a regular file",
            kind_of(st.st_mode)
        )));
    }
    if access != Access::Read {
        if st.st_nlink != 1 {
            return Err(Failure::Unsafe(format!(
                "has {} hard links: another name shares its contents",
                st.st_nlink
            )));
        }
        check_owner(st.st_uid, owners)?;
    }
    // Regular files ignore O_NONBLOCK; it only kept the open from hanging.
    Ok(File::from(fd))
}

/// Narrows an open file to 0600 if group or others may read it, through
/// its descriptor: a name swapped meanwhile is not touched.
pub fn restrict_to_owner(file: &File) -> io::Result<()> {
    let st = rustix::fs::fstat(file)?;
    if st.st_mode & 0o077 != 0 {
        rustix::fs::fchmod(file, Mode::from_raw_mode(0o600))?;
    }
    Ok(())
}

/// A fresh name for a temporary file beside `name`: a dot (so spool
/// listings and panels skip it), the pid and random bits.
pub fn temp_name(name: &OsStr) -> std::path::PathBuf {
    let mut random = [0u8; 6];
    let _ = getrandom::fill(&mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut tmp = b".".to_vec();
    tmp.extend_from_slice(name.as_bytes());
    tmp.extend_from_slice(format!(".{}.{hex}.tmp", std::process::id()).as_bytes());
    std::path::PathBuf::from(OsStr::from_bytes(&tmp))
}

/// Creates `name` under `dir` anew (`O_EXCL`: an existing name, a symlink
/// included, is an error) with `mode`.
pub fn create_new(dir: impl AsFd, name: &Path, mode: u32) -> io::Result<File> {
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(mode as _))?;
    Ok(File::from(fd))
}

/// Writes `contents` to `name` under `dir` atomically: a new temporary
/// file (mode `mode`), fsync, then a rename that replaces whatever the name
/// held (a planted symlink is replaced, not followed).
pub fn write_atomic(dir: impl AsFd, name: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let tmp = temp_name(name.as_os_str());
    let mut file = create_new(&dir, &tmp, mode)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| rustix::fs::renameat(&dir, &tmp, &dir, name).map_err(io::Error::from));
    if written.is_err() {
        let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
    }
    written
}

/// Renames `from` under `from_dir` to `to` under `to_dir` unless `to`
/// exists (`RENAME_NOREPLACE`).
pub fn rename_noreplace(
    from_dir: impl AsFd,
    from: &Path,
    to_dir: impl AsFd,
    to: &Path,
) -> io::Result<()> {
    rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE)
        .map_err(io::Error::from)
}

/// Reads a small text file named by a setting (a token file): opened
/// `O_NONBLOCK` so a FIFO cannot hang hcc, refused unless `fstat` says it
/// is a regular file, and read only up to `max` bytes, so a link to
/// `/dev/zero` or a huge file cannot fill memory. Links are followed: the
/// operator chose the path.
pub fn read_small(path: &Path, max: u64) -> io::Result<String> {
    use std::io::Read;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode as _) != FileType::RegularFile {
        return Err(io::Error::other(format!(
            "it {}, not a regular file",
            kind_of(st.st_mode)
        )));
    }
    let mut text = String::new();
    File::from(fd).take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::other(format!("it is larger than {max} bytes")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn owners() -> Owners {
        Owners::new(rustix::process::geteuid().as_raw())
    }

    fn unsafe_why(result: Result<impl std::fmt::Debug, Failure>) -> String {
        match result {
            Err(Failure::Unsafe(why)) => why,
            other => panic!("want a refusal, got {other:?}"),
        }
    }

    #[test]
    fn links_fifos_and_hard_links_are_refused_on_the_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let at = |name: &str| dir.path().join(name);
        symlink(&victim, at("link")).unwrap();
        std::fs::hard_link(&victim, at("hard")).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, at("fifo"), Mode::from_raw_mode(0o600)).unwrap();
        let open = |name: &str, access| open_file(rustix::fs::CWD, &at(name), access, &owners());
        let rw = Access::ReadWriteCreate(0o600);
        assert!(unsafe_why(open("link", rw)).contains("symbolic link"));
        assert!(unsafe_why(open("link", Access::Read)).contains("symbolic link"));
        assert!(unsafe_why(open("fifo", rw)).contains("FIFO"));
        assert!(unsafe_why(open("fifo", Access::Read)).contains("FIFO"));
        assert!(unsafe_why(open("hard", rw)).contains("2 hard links"));
        // Reading a spool file through a second link is harmless.
        assert!(open("hard", Access::Read).is_ok());
        let dir_fd = open_dir(rustix::fs::CWD, dir.path(), &owners()).unwrap();
        assert!(
            unsafe_why(open_dir(&dir_fd, Path::new("link"), &owners())).contains("symbolic link")
        );
        assert!(unsafe_why(open_dir(&dir_fd, Path::new("fifo"), &owners())).contains("FIFO"));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn an_atomic_write_replaces_a_planted_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        symlink(&victim, dir.path().join("config.json")).unwrap();
        let dir_fd = open_dir(rustix::fs::CWD, dir.path(), &owners()).unwrap();
        write_atomic(&dir_fd, Path::new("config.json"), b"{}\n", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(dir.path().join("config.json")).unwrap();
        assert!(meta.is_file());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
        // Nothing left behind under a temporary name.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2);
    }
}
