//! `hcc worker`: runs the queue against Hetzner and keeps `servers` fresh.
//!
//! One worker per state directory (`worker.lock`). The loop: ingest the
//! spool, lease every command it may start (one at a time per server, so a
//! server's commands run in order while different servers overlap), send
//! each command's first request, and poll all running actions together,
//! one request per tick. When nothing has happened for a cycle, it runs an
//! incremental sync (one request when nothing changed) and every
//! `full_sync_every` cycles a full one. It sleeps on inotify in between.
//!
//! Nothing is lost when it dies: its leases expire, and a new worker takes
//! them over at start. A retried `create` finds the server an earlier
//! attempt made and adopts it; a retried `kill` finds it gone. Transient
//! failures (network, 5xx, 429, `locked`) are retried with backoff up to
//! `max_attempts`; everything else ends `failed` with the reason. Every
//! outcome is also a message (`done ID`, `failed ID`) for `hcc wait`.
//!
//! Logs go to stderr, one line per event, never a secret.

mod exec;
mod lock;
pub mod status;

use std::collections::{BTreeSet, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cloud::{self, Cloud, sync};
use crate::error::Error;
use crate::hetzner::{Priority, retry};
use crate::home::Home;
use crate::spool;
use crate::store::{Closer, Finish, Owner, now};
use crate::verb::CommandLine;
use crate::wakeup::Wakeup;

pub use lock::WorkerLock;

/// A lease long enough for most actions; renewed while one runs longer.
const LEASE_SECS: i64 = 300;
/// How long a command's actions may run at Hetzner (or stay unanswered)
/// before the command ends failed, so one stuck action never holds its
/// server's queue for good.
const ACTION_DEADLINE: Duration = Duration::from_secs(300);
/// The longest sleep without any event: a safety net for lost events.
const RESCAN: Duration = Duration::from_secs(30);

/// A command whose actions run at Hetzner.
struct InFlight {
    /// When its first request went out; past `ACTION_DEADLINE` it fails.
    started: Instant,
    id: i64,
    line: CommandLine,
    target: Option<String>,
    pending: BTreeSet<i64>,
    server_id: Option<i64>,
    result: Value,
    lease_until: i64,
}

pub fn run(home: &Home, cycle: Duration) -> Result<ExitCode, Error> {
    run_locked(home, cycle, lock(home)?, Arc::new(AtomicBool::new(false)))
}

/// Takes the state directory's worker lock (exit 4 when another worker
/// holds it).
pub fn lock(home: &Home) -> Result<WorkerLock, Error> {
    WorkerLock::acquire(&home.root().join("worker.lock"))
}

/// The worker loop, under a lock taken with [`lock`]; `hcc serve --worker`
/// takes it before it starts serving, so a second worker is refused at once.
/// The loop ends soon after `stop` is set: SIGTERM and SIGINT set it, and
/// `hcc serve` shares it (a signal that came before this loop watched for
/// signals is not missed).
pub fn run_locked(
    home: &Home,
    cycle: Duration,
    _lock: WorkerLock,
    stop: Arc<AtomicBool>,
) -> Result<ExitCode, Error> {
    // Queue work is interactive (a console request may spend the reserve)
    // and never sleeps in a request: a transient failure goes back to the
    // queue with a delay while other commands go on. The refresh cycle is
    // background work.
    let mut cloud = Cloud::open_with(home, Priority::Interactive, 0)?;
    let mut background = Cloud::open(home, Priority::Background)?;
    let owner = Owner::Explicit(format!("worker:{}", std::process::id()));
    let taken = cloud
        .store
        .reclaim_leases("id:worker:", cloud.config.max_attempts())?;
    let wakeup = Wakeup::new(home)?;
    watch_signals(stop.clone(), wakeup.poker())?;
    log(&format!(
        "started (pid {}, cycle {} s, endpoint {}){}",
        std::process::id(),
        cycle.as_secs(),
        cloud.client.endpoint(),
        if taken > 0 {
            format!(", took over {taken} commands from a previous worker")
        } else {
            String::new()
        }
    ));
    let mut worker = Worker {
        inflight: Vec::new(),
        polls: 0,
        next_poll: None,
        last_refresh: Instant::now(),
        cycles: 0,
        owner,
        max_attempts: cloud.config.max_attempts(),
        full_every: cloud.config.full_sync_every(),
    };
    let mut woken = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            worker.shut_down(&cloud);
            return Ok(ExitCode::SUCCESS);
        }
        if let Err(err) = worker.step(home, &mut cloud, &mut background, cycle) {
            // The database locked by a panel, the disk full: report, go on.
            if is_transient(&err) {
                log(&format!("{err}; trying again"));
                std::thread::sleep(Duration::from_secs(1));
            } else {
                worker.shut_down(&cloud);
                return Err(err);
            }
        }
        let mut timeout = worker.timeout(&cloud, cycle);
        if woken {
            // A commit may become visible just after its event (wakeup.rs).
            timeout = timeout.min(crate::wakeup::FOLLOW_UP);
        }
        woken = wakeup.wait(timeout);
    }
}

struct Worker {
    inflight: Vec<InFlight>,
    polls: u32,
    next_poll: Option<Instant>,
    last_refresh: Instant,
    cycles: u64,
    owner: Owner,
    max_attempts: i64,
    full_every: u64,
}

impl Worker {
    fn step(
        &mut self,
        home: &Home,
        cloud: &mut Cloud,
        background: &mut Cloud,
        cycle: Duration,
    ) -> Result<(), Error> {
        let report = spool::ingest(home, &mut cloud.store)?;
        spool::warn_rejected(&report);
        self.start_queued(cloud, background)?;
        if self.next_poll.is_some_and(|at| Instant::now() >= at) {
            self.poll(cloud)?;
        }
        self.keep_leases(cloud)?;
        if self.inflight.is_empty() && self.last_refresh.elapsed() >= cycle {
            self.refresh(background);
        }
        Ok(())
    }

    /// Leases and starts every command it may start now.
    fn start_queued(&mut self, cloud: &mut Cloud, background: &mut Cloud) -> Result<(), Error> {
        loop {
            let mut busy: HashSet<String> = self
                .inflight
                .iter()
                .filter_map(|f| f.target.clone())
                .collect();
            // A server whose earlier command waits for a retry is busy too:
            // what was queued after it waits its turn.
            let mut eligible = |line: &CommandLine, delayed: bool| match exec::target(line) {
                Some(target) if delayed => {
                    busy.insert(target);
                    false
                }
                Some(target) => !busy.contains(&target),
                None => true,
            };
            let Some(leased) = cloud.store.lease_first(
                &self.owner,
                LEASE_SECS,
                self.max_attempts,
                &mut eligible,
            )?
            else {
                return Ok(());
            };
            let line = leased.line.clone();
            match exec::start(cloud, background, &line, leased.id, leased.attempts) {
                Ok(exec::Started::Done(result)) => self.done(cloud, leased.id, &line, result)?,
                Ok(exec::Started::Waiting {
                    actions,
                    server_id,
                    result,
                }) => {
                    let pending: BTreeSet<i64> = actions
                        .iter()
                        .filter(|a| a.status == "running")
                        .map(|a| a.id)
                        .collect();
                    if let Some(failed) = actions.iter().find(|a| a.status == "error") {
                        let why = action_error(failed);
                        self.failed(cloud, leased.id, &line, &why)?;
                        continue;
                    }
                    log(&format!("command {} `{line}`: started", leased.id));
                    let flight = InFlight {
                        started: Instant::now(),
                        id: leased.id,
                        target: exec::target(&line),
                        line,
                        pending,
                        server_id,
                        result,
                        lease_until: now() + LEASE_SECS,
                    };
                    if flight.pending.is_empty() {
                        self.complete(cloud, flight)?;
                    } else {
                        self.inflight.push(flight);
                        self.polls = 0;
                        // Never push a due poll back: a stream of new
                        // commands must not starve the ones in flight.
                        let soon = Instant::now() + crate::hetzner::poll_interval(0);
                        self.next_poll = Some(self.next_poll.map_or(soon, |at| at.min(soon)));
                    }
                }
                Err(err) => self.handle_error(cloud, leased.id, leased.attempts, &line, err)?,
            }
        }
    }

    /// One poll of every running action, in as few requests as possible.
    fn poll(&mut self, cloud: &mut Cloud) -> Result<(), Error> {
        let ids: Vec<i64> = self
            .inflight
            .iter()
            .flat_map(|f| f.pending.iter().copied())
            .collect();
        let mut states = Vec::new();
        for chunk in ids.chunks(25) {
            match cloud.client.actions(chunk) {
                Ok(actions) => states.extend(actions),
                Err(err) => {
                    log(&format!("polling actions: {err}; polling again later"));
                    break;
                }
            }
        }
        self.polls += 1;
        for action in states {
            let Some(index) = self
                .inflight
                .iter()
                .position(|f| f.pending.contains(&action.id))
            else {
                continue;
            };
            match action.status.as_str() {
                "success" => {
                    self.inflight[index].pending.remove(&action.id);
                    if self.inflight[index].pending.is_empty() {
                        let flight = self.inflight.remove(index);
                        self.complete(cloud, flight)?;
                    }
                }
                "error" => {
                    let flight = self.inflight.remove(index);
                    if let Some(id) = flight.server_id {
                        let _ = cloud::server::refresh(cloud, id);
                    }
                    self.failed(cloud, flight.id, &flight.line, &action_error(&action))?;
                }
                _ => {}
            }
        }
        self.next_poll = (!self.inflight.is_empty())
            .then(|| Instant::now() + crate::hetzner::poll_interval(self.polls));
        Ok(())
    }

    /// Long actions keep their lease; actions past the deadline end their
    /// command failed.
    fn keep_leases(&mut self, cloud: &mut Cloud) -> Result<(), Error> {
        let t = now();
        for flight in &mut self.inflight {
            if flight.lease_until - t < 60 {
                flight.lease_until = t + LEASE_SECS;
                cloud.store.renew_lease(flight.id, flight.lease_until)?;
            }
        }
        while let Some(index) = self
            .inflight
            .iter()
            .position(|f| f.started.elapsed() > ACTION_DEADLINE)
        {
            let flight = self.inflight.remove(index);
            if let Some(id) = flight.server_id {
                let _ = cloud::server::refresh(cloud, id);
            }
            let why = format!(
                "hetzner: actions {:?} still unfinished after {} s; they may still finish (`hcc sync` shows the outcome)",
                flight.pending,
                ACTION_DEADLINE.as_secs()
            );
            self.failed(cloud, flight.id, &flight.line, &why)?;
        }
        Ok(())
    }

    /// All actions of a command succeeded: refresh its server, record it.
    fn complete(&mut self, cloud: &mut Cloud, flight: InFlight) -> Result<(), Error> {
        let mut result = flight.result;
        if let Some(id) = flight.server_id {
            match cloud::server::refresh(cloud, id) {
                Ok(Some(server)) => result["status"] = Value::from(server.status),
                Ok(None) => {}
                Err(err) => log(&format!("refreshing server {id}: {err}")),
            }
        }
        self.done(cloud, flight.id, &flight.line, result)
    }

    fn done(
        &mut self,
        cloud: &mut Cloud,
        id: i64,
        line: &CommandLine,
        result: Value,
    ) -> Result<(), Error> {
        let ring = cloud.config.ring_size();
        let outcome = cloud.store.finish_and_notify(
            id,
            &Closer::Owner(self.owner.clone()),
            &Finish::Done {
                result: Some(result.to_string()),
            },
            &format!("done {id}"),
            ring,
        );
        log(&format!("command {id} `{line}`: done"));
        closed_elsewhere(id, outcome)
    }

    fn failed(
        &mut self,
        cloud: &mut Cloud,
        id: i64,
        line: &CommandLine,
        why: &str,
    ) -> Result<(), Error> {
        let ring = cloud.config.ring_size();
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
        log(&format!("command {id} `{line}`: failed: {why}"));
        Ok(())
    }

    /// A command's first request failed: retry later if that may help.
    fn handle_error(
        &mut self,
        cloud: &mut Cloud,
        id: i64,
        attempts: i64,
        line: &CommandLine,
        err: Error,
    ) -> Result<(), Error> {
        if is_transient(&err) && attempts < self.max_attempts {
            // 1 s, then up to 2, 4, 8 s: later commands on the same server
            // wait behind this one, so the delay stays short.
            let wait = retry::backoff((attempts - 1).clamp(0, 3) as u32, crate::hetzner::jitter());
            let at = now() + wait.as_secs().max(1) as i64;
            cloud.store.retry_later(id, at, &err.to_string())?;
            log(&format!(
                "command {id} `{line}`: {err}; attempt {attempts} of {}, retrying in {} s",
                self.max_attempts,
                wait.as_secs().max(1)
            ));
            return Ok(());
        }
        self.failed(cloud, id, line, &err.to_string())
    }

    /// The refresh cycle: incremental, with a full sync every few cycles.
    fn refresh(&mut self, background: &mut Cloud) {
        self.cycles += 1;
        let mode = if self.cycles.is_multiple_of(self.full_every) {
            sync::Mode::Full
        } else {
            sync::Mode::Changes
        };
        match sync::run(background, mode) {
            Ok(summary) => log(&format!("cycle {}: {}", self.cycles, summary.text)),
            Err(err) => log(&format!("cycle {}: sync failed: {err}", self.cycles)),
        }
        self.last_refresh = Instant::now();
    }

    /// How long to sleep: until the next poll, retry, lease expiry or
    /// cycle, whichever comes first.
    fn timeout(&self, cloud: &Cloud, cycle: Duration) -> Duration {
        let mut timeout = RESCAN;
        if let Some(at) = self.next_poll {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        if self.inflight.is_empty() {
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
        let held = self.inflight.len();
        for flight in self.inflight.drain(..) {
            let _ = cloud.store.hand_back(flight.id);
        }
        log(&format!(
            "stopping; {held} running commands returned to the queue"
        ));
    }
}

/// Someone else (`hcc done`/`hcc fail`, a panel's UPDATE) closed the
/// command meanwhile: their word stands; the worker notes it and goes on.
fn closed_elsewhere(id: i64, outcome: Result<(), crate::store::Error>) -> Result<(), Error> {
    match outcome {
        Err(crate::store::Error::Command(why) | crate::store::Error::StaleLease(why)) => {
            log(&format!("command {id}: {why}; leaving it as it is"));
            Ok(())
        }
        other => Ok(other?),
    }
}

fn action_error(action: &crate::hetzner::wire::Action) -> String {
    let (code, message) = action
        .error
        .as_ref()
        .map(|e| (e.code.as_str(), e.message.as_str()))
        .unwrap_or(("action_failed", "no reason given"));
    format!(
        "hetzner: action {} ({}) failed: {code}: {message}",
        action.command, action.id
    )
}

fn is_transient(err: &Error) -> bool {
    match err {
        Error::Hetzner(e) => e.is_transient(),
        Error::Store(e) => e.is_transient(),
        Error::Io { .. } => true,
        _ => false,
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

fn log(message: &str) {
    eprintln!("hcc worker: {message}");
}
