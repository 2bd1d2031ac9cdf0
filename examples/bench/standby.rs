//! `bench HCC standby`: Litestream's replication lag while a panel queues
//! 100 commands a second (INSERTs into `commands`) and the worker runs
//! them against `hcc sim --action-ms 0`, with `wal_checkpoints =
//! external`, at docs/litestream.yml's intervals (1 s) and at the test's
//! (100 ms).
//!
//! How the lag is read: every tenth INSERT is a sample. Right after its
//! commit the bench reads the WAL's header (its salts: which generation
//! of the WAL) and walks its frame headers to the end of the last commit
//! of that generation: the sample's row lies before that offset. A thread
//! lists the replica's level-0 LTX files every 5 ms and reads each new
//! one's header (its WAL salts, offset and size). A sample has reached the
//! replica when a file of its WAL generation reaches past its offset, or a
//! file of a later generation follows one of its own (Litestream ships a
//! WAL in order); its lag is from its commit to when that file was first
//! seen. The figure errs long, never short: the offset may include the
//! worker's commits just after the sample's.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Sim, at, hcc_cmd, ms, synced_home};

/// Commands queued per second, and for how long.
const RATE: u32 = 100;
const SECONDS: u32 = 20;
/// Servers the `reboot`s go to in turn.
const SERVERS: usize = 50;

pub fn run(hcc: &str) {
    if Command::new("litestream").arg("version").output().is_err() {
        eprintln!("bench standby: `litestream` is not installed (scripts/peers installs it)");
        std::process::exit(1);
    }
    println!(
        "| replication lag at {RATE} commands/s ({SECONDS} s), commit to replica | samples | p50 | p90 | p99 | max | commands done | goal |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (monitor, sync) in [("1s", "1s"), ("100ms", "100ms")] {
        let (lags, done, queued) = lag(hcc, monitor, sync);
        println!(
            "| `monitor-interval: {monitor}`, `sync-interval: {sync}` | {} | {} | {} | {} | {} | {done} of {queued} | \
             at most about monitor + sync interval: the commits a standby may lose |",
            lags.len(),
            ms(at(&lags, 0.5)),
            ms(at(&lags, 0.9)),
            ms(at(&lags, 0.99)),
            ms(at(&lags, 1.0)),
        );
    }
}

/// Where a committed row lies in the WAL: its generation (the header's
/// salts) and an offset at or past the end of its commit.
#[derive(Clone, Copy)]
struct WalMark {
    salts: (u32, u32),
    end: u64,
}

/// One level-0 LTX file of the replica: what part of which WAL it holds.
struct Shipped {
    txid: u64,
    salts: (u32, u32),
    end: u64,
    seen: Instant,
}

/// The samples' lags, and the commands done of those queued.
fn lag(hcc: &str, monitor: &str, sync: &str) -> (Vec<Duration>, i64, i64) {
    let sim = Sim::start(
        hcc,
        &[
            "--servers",
            &SERVERS.to_string(),
            "--action-ms",
            "0",
            "--rate-limit",
            "100000000/h",
        ],
    );
    let home = synced_home(hcc, &sim);
    let set = hcc_cmd(
        hcc,
        home.path(),
        &["config", "set", "wal_checkpoints", "external"],
    )
    .stderr(Stdio::null())
    .status()
    .expect("hcc config set");
    assert!(set.success(), "hcc config set failed");
    let scratch = tempfile::tempdir().expect("temporary directory");
    let replica = scratch.path().join("replica");
    let config = scratch.path().join("litestream.yml");
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    monitor-interval: {monitor}\n    replica:\n      type: file\n      \
             path: {}\n      sync-interval: {sync}\n",
            home.path().join("hcc.db").display(),
            replica.display()
        ),
    )
    .expect("write litestream.yml");
    let mut litestream = Command::new("litestream")
        .args(["replicate", "-config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("litestream replicate");
    let level0 = replica.join("ltx/0");
    let started = Instant::now();
    while std::fs::read_dir(&level0).map_or(true, |mut d| d.next().is_none()) {
        assert!(started.elapsed() < Duration::from_secs(30), "no snapshot");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut worker = hcc_cmd(hcc, home.path(), &["worker", "--cycle", "3600"])
        .envs(sim.env())
        .stderr(Stdio::null())
        .spawn()
        .expect("hcc worker");

    let wal = home.path().join("hcc.db-wal");
    let samples: Mutex<Vec<(Instant, WalMark)>> = Mutex::new(Vec::new());
    let shipped: Mutex<Vec<Shipped>> = Mutex::new(Vec::new());
    let watching = AtomicBool::new(true);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut known = std::collections::HashSet::new();
            while watching.load(Ordering::SeqCst) {
                for entry in std::fs::read_dir(&level0).into_iter().flatten().flatten() {
                    let name = entry.file_name();
                    if known.contains(&name) {
                        continue;
                    }
                    // A file still being written has no full header yet:
                    // the next round reads it.
                    if let Some(file) = ltx_header(&entry.path()) {
                        known.insert(name);
                        shipped.lock().unwrap().push(Shipped {
                            seen: Instant::now(),
                            ..file
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let db = rusqlite::Connection::open(home.path().join("hcc.db")).expect("hcc.db");
        db.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        let start = Instant::now();
        for n in 0..RATE * SECONDS {
            let due = start + Duration::from_secs(1) * n / RATE;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let server = format!("srv-{:05}", n as usize % SERVERS + 1);
            db.execute(
                "INSERT INTO commands (cmd, arg) VALUES ('reboot', ?1)",
                [&server],
            )
            .expect("INSERT");
            if n % 10 == 0 {
                let committed = Instant::now();
                if let Some(mark) = wal_mark(&wal) {
                    samples.lock().unwrap().push((committed, mark));
                }
            }
        }
        // Until the last sample is shipped, or a minute.
        let last = samples.lock().unwrap().last().map(|s| s.1);
        let waited = Instant::now();
        while let Some(mark) = last {
            let mut files = shipped.lock().unwrap();
            files.sort_by_key(|f| f.txid);
            if arrival(&files, mark).is_some() || waited.elapsed() > Duration::from_secs(60) {
                break;
            }
            drop(files);
            std::thread::sleep(Duration::from_millis(20));
        }
        watching.store(false, Ordering::SeqCst);
    });
    let mut files = shipped.into_inner().unwrap();
    files.sort_by_key(|f| f.txid);
    let mut lags: Vec<Duration> = samples
        .into_inner()
        .unwrap()
        .into_iter()
        .filter_map(|(committed, mark)| {
            arrival(&files, mark).map(|seen| seen.saturating_duration_since(committed))
        })
        .collect();
    let db = rusqlite::Connection::open(home.path().join("hcc.db")).expect("hcc.db");
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(0);
    // Give the worker a moment to finish what was queued last.
    let settled = Instant::now();
    while count("SELECT count(*) FROM commands WHERE state IN ('queued', 'running')") > 0
        && settled.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let done = count("SELECT count(*) FROM commands WHERE state = 'done'");
    let queued = count("SELECT count(*) FROM commands");
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = litestream.kill();
    let _ = litestream.wait();
    if lags.is_empty() {
        lags.push(Duration::ZERO);
    }
    (lags, done, queued)
}

/// When the replica first held the row at `mark`: the first file (in
/// TXID order) of its WAL generation reaching past it, or of a later
/// generation after one of its own.
fn arrival(files: &[Shipped], mark: WalMark) -> Option<Instant> {
    let mut own_generation_seen = false;
    for file in files {
        if file.salts == mark.salts {
            if file.end >= mark.end {
                return Some(file.seen);
            }
            own_generation_seen = true;
        } else if own_generation_seen {
            return Some(file.seen);
        }
    }
    None
}

/// The WAL's generation and the end of its last commit, read from its
/// header and frame headers (SQLite's WAL format: a 32-byte header, then
/// frames of a 24-byte header and a page; a frame belongs to the current
/// generation when its salts match the header's, and ends a commit when
/// its second word, the database size, is not 0).
fn wal_mark(wal: &Path) -> Option<WalMark> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(wal).ok()?;
    let mut header = [0u8; 32];
    file.read_exact(&mut header).ok()?;
    let word = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let page_size = u64::from(word(&header, 8));
    let salts = (word(&header, 16), word(&header, 20));
    let mut offset = 32u64;
    let mut end = 32u64;
    let mut frame = [0u8; 24];
    loop {
        if file.seek(SeekFrom::Start(offset)).is_err() || file.read_exact(&mut frame).is_err() {
            break;
        }
        if (word(&frame, 8), word(&frame, 12)) != salts {
            break;
        }
        offset += 24 + page_size;
        if word(&frame, 4) != 0 {
            end = offset;
        }
    }
    Some(WalMark { salts, end })
}

/// The header of an LTX file (big-endian: MaxTXID at 24, WALOffset at 48,
/// WALSize at 56, the WAL's salts at 64 and 68).
fn ltx_header(path: &Path) -> Option<Shipped> {
    use std::io::Read;
    let mut header = [0u8; 100];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    if &header[..4] != b"LTX1" {
        return None;
    }
    let long = |at: usize| u64::from_be_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    let word = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap_or([0; 4]));
    Some(Shipped {
        txid: long(24),
        salts: (word(64), word(68)),
        end: long(48) + long(56),
        seen: Instant::now(),
    })
}
