//! `hcc worker`: runs the queue against Hetzner and keeps `servers` fresh.
//!
//! One worker per state directory (`worker.lock`). The loop: ingest the
//! spool, lease every command it may start (one at a time per server, so a
//! server's commands run in order while different servers overlap; servers
//! take turns, and identical queued commands are leased together and run
//! once: `Store::lease_fair`), send
//! each command's first request, and poll all running actions together,
//! one request per tick. Every cycle it runs an incremental sync (one
//! request when nothing changed) and every `full_sync_every` cycles a full
//! one. Syncs, and a queued full `sync`, run on a thread of their own
//! (`syncer`), so commands start while 3,000 servers are being listed. It
//! sleeps on inotify in between (`wakeup`).
//!
//! Nothing is lost when it dies: its leases expire, and a new worker takes
//! them over at start. A retried `create` finds the server an earlier
//! attempt made and adopts it; a retried `kill` finds it gone. Transient
//! failures (network, 5xx, 429, `locked`) are retried with backoff up to
//! `max_attempts`; everything else ends `failed` with the reason. Every
//! outcome is also a message (`done ID`, `failed ID`) for `hcc wait`.
//!
//! Logs go to stderr, one line per event, never a secret.

mod checkpoints;
mod exec;
mod lock;
pub mod status;
mod syncer;
mod threaded;

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cloud::{self, Cloud, sync};
use crate::config::{Settings, WalCheckpoints};
use crate::error::Error;
use crate::hetzner::{self, Ended, Poller, Priority, retry};
use crate::home::Home;
use crate::log_format::{Level, Line};
use crate::spool;
use crate::store::{Checkpoints, Closer, CommandId, Finish, Owner, now};
use crate::verb::CommandLine;
use crate::wakeup::{Look, Wakeup};
use syncer::{Poke, Queued, Syncing};
use threaded::Threaded;

pub use lock::{ServeLock, WorkerLock, holder, serve_runs};

/// A lease long enough for most actions; renewed while one runs longer.
const LEASE_SECS: i64 = 300;
/// How long a command's actions may run at Hetzner (or stay unanswered)
/// before the command ends failed, so one stuck action never holds its
/// server's queue for good.
const ACTION_DEADLINE: Duration = Duration::from_secs(300);
/// The longest the worker loop sleeps for the rate budget.
const MAX_BUDGET_WAIT: Duration = Duration::from_secs(2);
/// How long one step may spend starting queued commands (a request or two
/// each) before it polls actions, renews leases and reads the spool again;
/// the next step goes on at once.
const START_SLICE: Duration = Duration::from_secs(1);

/// A command whose actions run at Hetzner (followed by the poller, under
/// the command's id).
struct InFlight {
    id: CommandId,
    line: CommandLine,
    target: Option<String>,
    server_id: Option<i64>,
    result: Value,
    lease_until: i64,
}

pub fn run(home: &Home, settings: &Settings, cycle: Duration) -> Result<ExitCode, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    run_locked(home, settings, cycle, lock(home)?, stop)
}

/// Takes the state directory's worker lock (exit 4 when another worker
/// holds it).
pub fn lock(home: &Home) -> Result<WorkerLock, Error> {
    WorkerLock::acquire(&home.root().join("worker.lock"))
}

/// `serve.lock` in the state directory (lock.rs).
pub fn serve_lock_path(home: &Home) -> std::path::PathBuf {
    home.root().join("serve.lock")
}

/// The worker loop, under a lock taken with [`lock`]; `hcc serve --worker`
/// takes it before it starts serving, so a second worker is refused at once.
/// The loop ends soon after `stop` is set: SIGTERM and SIGINT set it, and
/// `hcc serve` shares it (a signal that came before this loop watched for
/// signals is not missed).
pub fn run_locked(
    home: &Home,
    settings: &Settings,
    cycle: Duration,
    _lock: WorkerLock,
    stop: Arc<AtomicBool>,
) -> Result<ExitCode, Error> {
    // Queue work is interactive (a console request may spend the reserve)
    // and never sleeps in a request: a transient failure goes back to the
    // queue with a delay while other commands go on. The refresh cycle
    // (the sync thread) is background work.
    let mut cloud = Cloud::open_with(home, settings, Priority::Command, 0, Checkpoints::Deferred)?;
    // With `wal_checkpoints = external` Litestream checkpoints, and the
    // cloud's connections have theirs turned off (`Cloud::open_with`).
    let _checkpoints = match settings.wal_checkpoints {
        WalCheckpoints::Hcc => Some(checkpoints::Checkpointer::start(home)?),
        WalCheckpoints::External => None,
    };
    // Never sleep long for the rate budget on this loop: it must go on
    // polling, renewing leases and hearing SIGTERM. A command that would
    // wait goes back to the queue until the budget allows it.
    cloud.client = cloud.client.with_max_wait(MAX_BUDGET_WAIT);
    let owner = Owner::Explicit(format!("worker:{}", std::process::id()));
    let taken =
        cloud
            .store
            .reclaim_leases("id:worker:", settings.max_attempts, settings.ring_size)?;
    let wakeup = Wakeup::new(home)?;
    watch_signals(stop.clone(), wakeup.poker())?;
    let poke: Poke = Arc::new(wakeup.poker());
    log(&format!(
        "started (pid {}, cycle {} s, endpoint {}{}){}",
        std::process::id(),
        cycle.as_secs(),
        cloud.client.endpoint(),
        // Said at start: a WAL that grows without Litestream running is
        // then explained by the log.
        match settings.wal_checkpoints {
            WalCheckpoints::Hcc => "",
            WalCheckpoints::External => ", WAL checkpoints left to Litestream",
        },
        if taken > 0 {
            format!(", took over {taken} commands from a previous worker")
        } else {
            String::new()
        }
    ));
    let mut worker = Worker {
        inflight: Vec::new(),
        poller: Poller::new(ACTION_DEADLINE),
        last_refresh: Instant::now(),
        cycles: 0,
        owner,
        max_attempts: settings.max_attempts,
        full_every: settings.full_sync_every,
        settings: settings.clone(),
        syncing: None,
        threads: Vec::new(),
        fresh: cloud::Fresh::default(),
        poke,
        more: false,
    };
    wakeup.until(|_| {
        if stop.load(Ordering::SeqCst) {
            worker.shut_down(&cloud);
            return Ok(Look::Ready(ExitCode::SUCCESS));
        }
        if let Err(err) = worker.step(home, &mut cloud, cycle) {
            // The database locked by a panel, the disk full: report, go on.
            if err.is_transient() {
                warn(&format!("{err}; trying again"));
                std::thread::sleep(Duration::from_secs(1));
            } else {
                worker.shut_down(&cloud);
                return Err(err);
            }
        }
        Ok(Look::Again(worker.timeout(&cloud, cycle)))
    })
}

struct Worker {
    inflight: Vec<InFlight>,
    /// The running actions of every command in flight.
    poller: Poller<CommandId>,
    last_refresh: Instant,
    cycles: u64,
    owner: Owner,
    max_attempts: i64,
    full_every: u64,
    /// What the sync thread opens its own Hetzner client with.
    settings: Settings,
    /// The sync running on its thread, if any.
    syncing: Option<Syncing>,
    /// Commands running on threads of their own (`change-type`).
    threads: Vec<Threaded>,
    /// Servers this loop stored or removed, for the sync thread.
    fresh: cloud::Fresh,
    poke: Poke,
    /// The last step stopped starting commands before the queue ran dry.
    more: bool,
}

impl Worker {
    fn step(&mut self, home: &Home, cloud: &mut Cloud, cycle: Duration) -> Result<(), Error> {
        let report = spool::ingest(home, &mut cloud.store)?;
        spool::warn_rejected(&report);
        self.finish_sync(cloud)?;
        self.finish_threads(cloud)?;
        self.start_queued(home, cloud)?;
        if self.poller.due().is_some_and(|at| Instant::now() >= at) {
            self.poll(cloud)?;
        }
        self.keep_leases(cloud)?;
        if self.syncing.is_none() && self.last_refresh.elapsed() >= cycle {
            self.refresh(home);
        }
        Ok(())
    }

    /// Leases and starts the commands it may start now, for at most
    /// [`START_SLICE`]: the rest wait for the next step, which follows at once.
    fn start_queued(&mut self, home: &Home, cloud: &mut Cloud) -> Result<(), Error> {
        let began = Instant::now();
        self.more = false;
        loop {
            if began.elapsed() >= START_SLICE {
                self.more = true;
                return Ok(());
            }
            // One sync at a time: a queued `sync` waits for the running one.
            let sync_busy = self.syncing.is_some();
            let mut busy: HashSet<String> = self
                .inflight
                .iter()
                .filter_map(|f| f.target.clone())
                .chain(self.threads.iter().map(|t| t.target.clone()))
                .collect();
            // A server whose earlier command waits for a retry is busy too:
            // what was queued after it waits its turn.
            let mut eligible = |line: &CommandLine, delayed: bool| match exec::target(line) {
                Some(target) if delayed => {
                    busy.insert(target);
                    false
                }
                Some(target) => !busy.contains(&target),
                None => !(sync_busy && exec::is_full_sync(line)),
            };
            let Some(leased) = cloud.store.lease_fair(
                &self.owner,
                LEASE_SECS,
                self.max_attempts,
                &mut eligible,
            )?
            else {
                return Ok(());
            };
            let line = leased.line.clone();
            if !leased.merged.is_empty() {
                let ids: Vec<String> = leased.merged.iter().map(|id| id.to_string()).collect();
                log(&format!(
                    "command {} `{line}`: runs for the identical commands {} too",
                    leased.id,
                    ids.join(", ")
                ));
            }
            let started = exec::start(cloud, &line, leased.id, leased.attempts);
            // A server the command stored or removed (a kill, `sync NAME`):
            // a page the sync thread asked for earlier must not undo that.
            if let Ok(exec::Started::Done(result) | exec::Started::Waiting { result, .. }) =
                &started
                && let Some(id) = result["server_id"].as_i64()
            {
                self.fresh.touch(id);
            }
            // A command that goes on on a thread of its own, as the worker
            // follows it there.
            let queued = || Queued {
                id: leased.id,
                line: line.clone(),
                attempts: leased.attempts,
                lease_until: now() + LEASE_SECS,
            };
            match started {
                Ok(exec::Started::Done(result)) => self.done(cloud, leased.id, &line, result)?,
                Ok(exec::Started::Sync) => {
                    match Syncing::spawn(
                        home,
                        &self.settings,
                        sync::Mode::Full,
                        Some(queued()),
                        0,
                        self.fresh.clone(),
                        self.poke.clone(),
                    ) {
                        Ok(syncing) => {
                            log_command(Level::Info, leased.id, &line, "started", None, "started");
                            self.syncing = Some(syncing);
                        }
                        Err(err) => {
                            self.handle_error(cloud, leased.id, leased.attempts, &line, err)?
                        }
                    }
                }
                Ok(exec::Started::ChangeType(resize)) => {
                    match Threaded::change_type(
                        home,
                        &self.settings,
                        queued(),
                        resize,
                        self.poke.clone(),
                    ) {
                        Ok(thread) => {
                            log_command(Level::Info, leased.id, &line, "started", None, "started");
                            self.threads.push(thread);
                        }
                        Err(err) => {
                            self.handle_error(cloud, leased.id, leased.attempts, &line, err)?
                        }
                    }
                }
                Ok(exec::Started::Waiting {
                    actions,
                    server_id,
                    result,
                }) => {
                    log_command(Level::Info, leased.id, &line, "started", None, "started");
                    let flight = InFlight {
                        id: leased.id,
                        target: exec::target(&line),
                        line,
                        server_id,
                        result,
                        lease_until: now() + LEASE_SECS,
                    };
                    match self.poller.add(flight.id, &actions) {
                        None => self.inflight.push(flight),
                        Some(ended) => self.ended(cloud, flight, ended)?,
                    }
                }
                Err(err) => self.handle_error(cloud, leased.id, leased.attempts, &line, err)?,
            }
        }
    }

    /// One poll of every running action, in as few requests as possible.
    fn poll(&mut self, cloud: &mut Cloud) -> Result<(), Error> {
        let (ended, failure) = self.poller.poll(&cloud.client);
        if let Some(err) = failure {
            warn(&format!("polling actions: {err}; polling again later"));
        }
        self.close_ended(cloud, ended)
    }

    /// Closes the commands whose actions ended.
    fn close_ended(
        &mut self,
        cloud: &mut Cloud,
        ended: Vec<Ended<CommandId>>,
    ) -> Result<(), Error> {
        for end in ended {
            let (Ended::Succeeded(id, _) | Ended::Failed(id, _)) = &end;
            let Some(index) = self.inflight.iter().position(|f| f.id == *id) else {
                continue;
            };
            let flight = self.inflight.remove(index);
            self.ended(cloud, flight, end)?;
        }
        Ok(())
    }

    /// A command's actions ended: done when all succeeded; failed (its
    /// server refetched, as the action may have changed it) otherwise.
    fn ended(
        &mut self,
        cloud: &mut Cloud,
        flight: InFlight,
        end: Ended<CommandId>,
    ) -> Result<(), Error> {
        match end {
            Ended::Succeeded(..) => self.complete(cloud, flight),
            Ended::Failed(_, err) => {
                if let Some(id) = flight.server_id {
                    let _ = cloud::refetch(cloud, id);
                    self.fresh.touch(id);
                }
                self.failed(cloud, flight.id, &flight.line, &err.to_string())
            }
        }
    }

    /// Long actions keep their lease; actions past the deadline end their
    /// command failed.
    fn keep_leases(&mut self, cloud: &mut Cloud) -> Result<(), Error> {
        let t = now();
        if let Some(queued) = self.syncing.as_mut().and_then(|s| s.command.as_mut())
            && queued.lease_until - t < 60
        {
            queued.lease_until = t + LEASE_SECS;
            cloud.store.renew_lease(queued.id, queued.lease_until)?;
        }
        for queued in self.threads.iter_mut().map(|t| &mut t.queued) {
            if queued.lease_until - t < 60 {
                queued.lease_until = t + LEASE_SECS;
                cloud.store.renew_lease(queued.id, queued.lease_until)?;
            }
        }
        for flight in &mut self.inflight {
            if flight.lease_until - t < 60 {
                flight.lease_until = t + LEASE_SECS;
                cloud.store.renew_lease(flight.id, flight.lease_until)?;
            }
        }
        let late = self.poller.expire();
        self.close_ended(cloud, late)
    }

    /// All actions of a command succeeded: refresh its server, record it.
    fn complete(&mut self, cloud: &mut Cloud, flight: InFlight) -> Result<(), Error> {
        let mut result = flight.result;
        if let Some(id) = flight.server_id {
            let refetched = cloud::refetch(cloud, id);
            self.fresh.touch(id);
            match refetched {
                Ok(cloud::Refetched::Stored(server)) => {
                    result["status"] = Value::from(server.status)
                }
                Ok(cloud::Refetched::Gone { .. }) => {}
                Err(err) => warn(&format!("refreshing server {id}: {err}")),
            }
        }
        self.done(cloud, flight.id, &flight.line, result)
    }

    fn done(
        &mut self,
        cloud: &mut Cloud,
        id: CommandId,
        line: &CommandLine,
        result: Value,
    ) -> Result<(), Error> {
        let ring = cloud.settings.ring_size;
        let outcome = cloud.store.finish_and_notify(
            id,
            &Closer::Owner(self.owner.clone()),
            &Finish::Done {
                result: Some(result.to_string()),
            },
            &format!("done {id}"),
            ring,
        );
        log_command(Level::Info, id, line, "done", None, "done");
        closed_elsewhere(id, outcome)
    }

    fn failed(
        &mut self,
        cloud: &mut Cloud,
        id: CommandId,
        line: &CommandLine,
        why: &str,
    ) -> Result<(), Error> {
        let ring = cloud.settings.ring_size;
        let outcome = cloud.store.finish_and_notify(
            id,
            &Closer::Owner(self.owner.clone()),
            &Finish::Failed {
                reason: why.to_string(),
            },
            &format!("failed {id}"),
            ring,
        );
        closed_elsewhere(id, outcome)?;
        log_command(
            Level::Error,
            id,
            line,
            "failed",
            Some(why),
            &format!("failed: {why}"),
        );
        Ok(())
    }

    /// A command's first request failed: retry later if that may help.
    fn handle_error(
        &mut self,
        cloud: &mut Cloud,
        id: CommandId,
        attempts: i64,
        line: &CommandLine,
        err: Error,
    ) -> Result<(), Error> {
        let max = self.max_attempts;
        if let Error::Hetzner(hetzner::Error::BudgetSpent { secs }) = &err {
            // Nothing was sent: the command waits in the queue, not on
            // this loop, and keeps its attempts.
            let why = format!("{err}; waiting for it (this attempt is not counted)");
            cloud.store.defer(id, now() + (*secs).max(1) as i64, &why)?;
            log_command(Level::Info, id, line, "waiting", Some(&why), &why);
            return Ok(());
        }
        if !err.is_transient() {
            return self.failed(cloud, id, line, &err.to_string());
        }
        if attempts >= max {
            // The error column says what became of the command, not what
            // the error would lead to while attempts remain.
            let why = format!("{err}; gave up after {attempts} attempts (setting max_attempts)");
            return self.failed(cloud, id, line, &why);
        }
        // 1 s, then up to 2, 4, 8 s: later commands on the same server
        // wait behind this one, so the delay stays short.
        let wait = retry::backoff((attempts - 1).clamp(0, 3) as u32, crate::hetzner::jitter());
        let secs = wait.as_secs().max(1);
        let why = format!("{err}; attempt {attempts} of {max}, retrying in {secs} s");
        cloud.store.retry_later(id, now() + secs as i64, &why)?;
        log_command(Level::Warn, id, line, "retrying", Some(&why), &why);
        Ok(())
    }

    /// The refresh cycle: incremental, with a full sync every few cycles,
    /// on the sync thread.
    fn refresh(&mut self, home: &Home) {
        self.cycles += 1;
        let mode = if self.cycles.is_multiple_of(self.full_every) {
            sync::Mode::Full
        } else {
            sync::Mode::Changes
        };
        match Syncing::spawn(
            home,
            &self.settings,
            mode,
            None,
            self.cycles,
            self.fresh.clone(),
            self.poke.clone(),
        ) {
            Ok(syncing) => self.syncing = Some(syncing),
            Err(err) => {
                warn(&format!("cycle {}: sync failed: {err}", self.cycles));
                self.last_refresh = Instant::now();
            }
        }
    }

    /// A sync that ended on its thread: close its command or log its cycle.
    /// Either way the next cycle counts from now.
    fn finish_sync(&mut self, cloud: &mut Cloud) -> Result<(), Error> {
        if !self.syncing.as_ref().is_some_and(Syncing::is_finished) {
            return Ok(());
        }
        let Some(syncing) = self.syncing.take() else {
            return Ok(());
        };
        self.last_refresh = Instant::now();
        match syncing.join() {
            (Some(q), _, Ok(summary)) => {
                self.done(cloud, q.id, &q.line, exec::sync_result(&summary))
            }
            (Some(q), _, Err(err)) => self.handle_error(cloud, q.id, q.attempts, &q.line, err),
            (None, cycle, Ok(summary)) => {
                log(&format!("cycle {cycle}: {}", summary.text));
                Ok(())
            }
            (None, cycle, Err(err)) => {
                warn(&format!("cycle {cycle}: sync failed: {err}"));
                Ok(())
            }
        }
    }

    /// Closes the commands whose threads ended.
    fn finish_threads(&mut self, cloud: &mut Cloud) -> Result<(), Error> {
        let (ended, running): (Vec<Threaded>, Vec<Threaded>) =
            self.threads.drain(..).partition(Threaded::is_finished);
        self.threads = running;
        for thread in ended {
            match thread.join() {
                (q, Ok(result)) => self.done(cloud, q.id, &q.line, result)?,
                (q, Err(err)) => self.handle_error(cloud, q.id, q.attempts, &q.line, err)?,
            }
        }
        Ok(())
    }

    /// How long to sleep: until the next poll, retry, lease expiry or
    /// cycle, whichever comes first.
    fn timeout(&self, cloud: &Cloud, cycle: Duration) -> Duration {
        if self.more {
            return Duration::ZERO;
        }
        // Nothing due: until the next event (or wakeup's rescan).
        let mut timeout = Duration::MAX;
        if let Some(at) = self.poller.due() {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        // A running sync wakes the loop when it ends.
        if self.syncing.is_none() {
            timeout = timeout.min(cycle.saturating_sub(self.last_refresh.elapsed()));
        }
        let t = now();
        for at in [
            cloud.store.next_retry_at().ok().flatten(),
            cloud.store.next_lease_expiry().ok().flatten(),
        ]
        .into_iter()
        .flatten()
        {
            timeout = timeout.min(Duration::from_secs((at - t + 1).max(0) as u64));
        }
        timeout
    }

    /// Stops: what it holds goes back to the queue for the next worker
    /// (actions already started at Hetzner go on; a retry finds them).
    fn shut_down(&mut self, cloud: &Cloud) {
        let mut held = self.inflight.len();
        for flight in self.inflight.drain(..) {
            self.poller.forget(&flight.id);
            let _ = cloud.store.hand_back(flight.id);
        }
        // Threads are left to end with the process; their commands run
        // again under the next worker (a `change-type` finds how far it
        // got).
        for thread in self.threads.drain(..) {
            let _ = cloud.store.hand_back(thread.queued.id);
            held += 1;
        }
        if let Some(queued) = self.syncing.take().and_then(|s| s.command) {
            let _ = cloud.store.hand_back(queued.id);
            held += 1;
        }
        log(&format!(
            "stopping; {held} running commands returned to the queue"
        ));
    }
}

/// Someone else (`hcc done`/`hcc fail`, a panel's UPDATE) closed the
/// command meanwhile: their word stands; the worker notes it and goes on.
fn closed_elsewhere(id: CommandId, outcome: Result<(), crate::store::Error>) -> Result<(), Error> {
    match outcome {
        Err(crate::store::Error::Command(why) | crate::store::Error::StaleLease(why)) => {
            log(&format!("command {id}: {why}; leaving it as it is"));
            Ok(())
        }
        other => Ok(other?),
    }
}

/// SIGTERM and SIGINT ask the loop to stop; it finishes its step first.
fn watch_signals(stop: Arc<AtomicBool>, poke: impl Fn() + Send + 'static) -> Result<(), Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| Error::Failed(format!("cannot install signal handlers: {e}")))?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            stop.store(true, Ordering::SeqCst);
            poke();
        }
    });
    Ok(())
}

/// A plain line of the worker's log (log_format.rs).
pub(super) fn log(message: &str) {
    Line::new("worker", Level::of(message), message).emit();
}

/// A line about something that went wrong and is tried again.
pub(super) fn warn(message: &str) {
    Line::new("worker", Level::Warn, message).emit();
}

/// A line about one command: `command ID `LINE`: TAIL` in text; its id,
/// command line and `step` (started, done, failed, waiting, retrying) as
/// fields in JSON, with `reason` when there is one.
pub(super) fn log_command(
    level: Level,
    id: CommandId,
    line: &dyn std::fmt::Display,
    step: &'static str,
    reason: Option<&str>,
    tail: &str,
) {
    let mut entry = Line::new("worker", level, format!("command {id} `{line}`: {tail}"))
        .event("command")
        .field("command_id", id.get())
        .field("command", line.to_string())
        .field("step", step);
    if let Some(reason) = reason {
        entry = entry.field("reason", reason);
    }
    entry.emit();
}
