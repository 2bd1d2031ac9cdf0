//! The queue verbs a consumer or a panel runs: `push`, `pull`, `next`,
//! `done`, `fail`, `put`, `wait`, `ingest`. Each reads the spool first, so
//! a consumer needs no worker to see what a panel dropped there.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{LeaseArgs, LeaseRef};
use crate::config::Settings;
use crate::consumer;
use crate::error::{EXIT_FAILED, Error};
use crate::home::Home;
use crate::output::Output;
use crate::spool;
use crate::store::{self, CommandId, Finish, Store};
use crate::verb::CommandLine;
use crate::wakeup::{Look, Wake, Wakeup};

pub fn push(home: &Home, print_id: bool, cmd: &str, args: &[String]) -> Result<ExitCode, Error> {
    let line = CommandLine::from_words(cmd, args).map_err(Error::Input)?;
    let store = Store::open(&home.db_path())?;
    let id = store.queue(&line, store::Source::Cli)?;
    if print_id {
        Output::new().line(&id.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pull(home: &Home, settings: &Settings, lease: &LeaseArgs) -> Result<ExitCode, Error> {
    let mut store = Store::open(&home.db_path())?;
    let report = spool::ingest(home, &mut store)?;
    spool::warn_rejected(&report);
    let owner = consumer::lease_owner(lease.id || lease.handle);
    match store.lease_next(&owner, lease.lease, settings.max_attempts)? {
        Some(leased) => {
            deliver(&store, &leased, lease)?;
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(EXIT_FAILED)),
    }
}

pub fn next(home: &Home, settings: &Settings, lease: &LeaseArgs) -> Result<ExitCode, Error> {
    let mut store = Store::open(&home.db_path())?;
    // Watch before the first look, so nothing that lands in between is
    // missed (and after opening, which creates the WAL: not news).
    let wakeup = Wakeup::new(home)?;
    let owner = consumer::lease_owner(lease.id || lease.handle);
    wakeup.until(|_| {
        let look = (|| -> Result<(Option<store::Leased>, Option<i64>), Error> {
            let report = spool::ingest(home, &mut store)?;
            spool::warn_rejected(&report);
            let leased = store.lease_next(&owner, lease.lease, settings.max_attempts)?;
            Ok((leased, store.next_lease_expiry()?))
        })();
        Ok(match outlive(look)? {
            Some((Some(leased), _)) => {
                deliver(&store, &leased, lease)?;
                Look::Ready(ExitCode::SUCCESS)
            }
            // A running command whose lease expires becomes leasable
            // without any file event: wake up for that moment too.
            Some((None, Some(until))) => {
                let secs = (until - store::now() + 1).max(0);
                Look::Again(Duration::from_secs(secs as u64))
            }
            Some((None, None)) => Look::Idle,
            None => Look::Again(RETRY_AFTER_ERROR),
        })
    })
}

/// How soon a waiting loop looks again after a transient failure.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// For the long-running loops (`next`, `wait`): a transient failure (the
/// database locked by another process's long transaction, a full disk, a
/// spool file system error) is reported and outlived (`Ok(None)`); anything
/// else ends the loop.
fn outlive<T>(result: Result<T, Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_transient() => {
            eprintln!(
                "hcc: {}; trying again",
                crate::output::one_line(&err.to_string())
            );
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Prints a leased command; if it cannot be printed (closed or full
/// output), the lease goes back so the command is not lost.
fn deliver(store: &Store, leased: &store::Leased, how: &LeaseArgs) -> Result<(), Error> {
    let text = if how.handle {
        format!("{}:{} {}", leased.id, leased.attempts, leased.line)
    } else if how.id {
        format!("{} {}", leased.id, leased.line)
    } else {
        leased.line.to_string()
    };
    let printed = Output::new().line(&text);
    if printed.is_err() {
        store.release(leased.id)?;
    }
    printed
}

/// Which lease `done`/`fail` mean: the handle's, or the asking consumer's.
fn closer(target: LeaseRef) -> store::Closer {
    match target.lease {
        Some(n) => store::Closer::Lease(n),
        None => store::Closer::Owner(consumer::lease_owner(true)),
    }
}

pub fn done(home: &Home, target: LeaseRef, result: Option<String>) -> Result<ExitCode, Error> {
    let result = result.map(
        |text| match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(json) => json.to_string(),
            Err(_) => serde_json::Value::String(text).to_string(),
        },
    );
    let store = Store::open(&home.db_path())?;
    store.finish(
        CommandId::from(target.id),
        &closer(target),
        &Finish::Done { result },
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn fail(home: &Home, target: LeaseRef, reason: &[String]) -> Result<ExitCode, Error> {
    let reason = one_line(&reason.join(" "));
    if reason.is_empty() {
        return Err(Error::Input("`fail` needs a reason".into()));
    }
    let store = Store::open(&home.db_path())?;
    store.finish(
        CommandId::from(target.id),
        &closer(target),
        &Finish::Failed { reason },
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn put(home: &Home, settings: &Settings, words: &[String]) -> Result<ExitCode, Error> {
    let line = CommandLine::from_words("notify", words).map_err(Error::Input)?;
    let mut store = Store::open(&home.db_path())?;
    store.put_message(&line.arg, settings.ring_size)?;
    Ok(ExitCode::SUCCESS)
}

/// Progress characters for `wait`, after the original's debug string.
struct Progress {
    chars: Option<[char; 5]>,
}

impl Progress {
    const IDLE: usize = 0;
    const MESSAGE: usize = 1;
    const EMPTY_WAKEUP: usize = 2;
    const STARTED: usize = 3;
    const SKIPPED: usize = 4;

    fn new(spec: Option<&str>) -> Progress {
        let chars = spec.map(|spec| {
            let mut chars = ['.', 'x', '_', ':', '-'];
            for (slot, c) in chars.iter_mut().zip(spec.chars()) {
                *slot = c;
            }
            chars
        });
        Progress { chars }
    }

    fn show(&self, what: usize, times: usize) {
        if let Some(chars) = self.chars {
            let text: String = std::iter::repeat_n(chars[what], times).collect();
            let mut err = io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }
}

pub fn wait(home: &Home, progress: Option<&str>) -> Result<ExitCode, Error> {
    let progress = Progress::new(progress);
    let mut store = Store::open(&home.db_path())?;
    let wakeup = Wakeup::new(home)?;
    let mut out = Output::new();
    let mut last_message = store.last_message_id()?;
    let mut last_command = store.last_command_id()?;
    progress.show(Progress::STARTED, 1);
    wakeup.until(|wake| -> Result<Look<ExitCode>, Error> {
        if wake == Wake::Timeout {
            progress.show(Progress::IDLE, 1);
        }
        let look = (|| -> Result<usize, Error> {
            let report = spool::ingest(home, &mut store)?;
            spool::warn_rejected(&report);
            let mut printed = 0;
            for message in store.messages_after(last_message)? {
                // Ids are consecutive; a gap means the ring dropped messages
                // before this waiter could read them.
                let skipped = (message.id - last_message - 1).max(0) as usize;
                progress.show(Progress::SKIPPED, skipped.min(1000));
                progress.show(Progress::MESSAGE, 1);
                out.line(&message.msg)?;
                last_message = message.id;
                printed += 1;
            }
            let newest_command = store.last_command_id()?;
            if newest_command > last_command {
                progress.show(Progress::MESSAGE, 1);
                out.line("cmd")?;
                last_command = newest_command;
                printed += 1;
            }
            Ok(printed)
        })();
        Ok(match outlive(look)? {
            Some(printed) => {
                if printed == 0 && wake == Wake::Event {
                    progress.show(Progress::EMPTY_WAKEUP, 1);
                }
                Look::Idle
            }
            None => Look::Again(RETRY_AFTER_ERROR),
        })
    })
}

pub fn ingest(home: &Home) -> Result<ExitCode, Error> {
    let mut store = Store::open(&home.db_path())?;
    let report = spool::ingest(home, &mut store)?;
    spool::warn_rejected(&report);
    if !report.is_empty() {
        let mut summary = format!("queued {}", report.queued);
        if report.recovered > 0 {
            summary.push_str(&format!(", recovered {}", report.recovered));
        }
        if !report.rejected.is_empty() {
            summary.push_str(&format!(
                ", rejected {} (see spool/bad)",
                report.rejected.len()
            ));
        }
        if !report.deferred.is_empty() {
            summary.push_str(&format!(
                ", left {} for the next pass",
                report.deferred.len()
            ));
        }
        Output::new().line(&summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Control characters become spaces: stored texts stay one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}
