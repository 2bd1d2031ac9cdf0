//! Litestream (0.5) replicating a state directory's `hcc.db` to a file
//! replica, as docs/litestream.yml does, with short intervals so that a
//! test does not wait long; killed with SIGKILL when dropped or told to.
//!
//! ```ignore
//! let Some(mut litestream) = Litestream::start(&env) else { return }; // SKIP (fails under CI)
//! litestream.restore(&new_dir.join("hcc.db"));
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::test::{Env, eventually, require_program};

/// How often Litestream looks at the WAL (`monitor-interval`) and ships
/// what it found to the replica (`sync-interval`): the replication
/// interval is about their sum.
pub const MONITOR: Duration = Duration::from_millis(100);
pub const SYNC: Duration = Duration::from_millis(100);

pub struct Litestream {
    child: Option<Child>,
    dir: TempDir,
}

impl Litestream {
    /// `litestream replicate` of `env`'s hcc.db, once it has written its
    /// first snapshot to the replica; None (a SKIP line) when litestream
    /// is not installed.
    pub fn start(env: &Env) -> Option<Litestream> {
        if !require_program("litestream") {
            return None;
        }
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let config = dir.path().join("litestream.yml");
        std::fs::write(
            &config,
            format!(
                "dbs:\n  - path: {db}\n    monitor-interval: {monitor}ms\n    replica:\n      \
                 type: file\n      path: {replica}\n      sync-interval: {sync}ms\n",
                db = env.path("hcc.db").display(),
                monitor = MONITOR.as_millis(),
                replica = dir.path().join("replica").display(),
                sync = SYNC.as_millis(),
            ),
        )
        .expect("write litestream.yml");
        let log = std::fs::File::create(dir.path().join("litestream.log")).expect("create a log");
        let child = Command::new("litestream")
            .args(["replicate", "-config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone a file handle"))
            .stderr(log)
            .spawn()
            .expect("spawn litestream");
        let litestream = Litestream {
            child: Some(child),
            dir,
        };
        let level0 = litestream.replica().join("ltx/0");
        let started = eventually(Duration::from_secs(30), || {
            std::fs::read_dir(&level0).is_ok_and(|mut files| files.next().is_some())
        });
        assert!(
            started,
            "litestream wrote no snapshot: {}",
            litestream.log()
        );
        Some(litestream)
    }

    /// The replica's directory (`file://` URL: [`Litestream::url`]).
    pub fn replica(&self) -> PathBuf {
        self.dir.path().join("replica")
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.replica().display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("litestream.log")).unwrap_or_default()
    }

    /// SIGKILL: no last sync.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `litestream restore -o OUT file://REPLICA`: the replica's latest
    /// state as a database at `out`, which must not exist yet.
    pub fn restore(&self, out: &Path) {
        let run = Command::new("litestream")
            .args(["restore", "-o"])
            .arg(out)
            .arg(self.url())
            .output()
            .expect("run litestream restore");
        assert!(
            run.status.success(),
            "litestream restore failed: {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

impl Drop for Litestream {
    fn drop(&mut self) {
        self.kill();
    }
}
