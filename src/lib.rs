//! hcc: the middleware between a hosting panel and the Hetzner Cloud API.
//!
//! `run` resolves the state directory and runs one subcommand; each has a
//! function here that wires the modules together. Output goes through
//! [`Output`] so that a closed pipe ends the program quietly.

mod apikey;
pub mod assets;
pub mod cli;
pub(crate) mod cloud;
pub mod config;
pub mod console;
mod consumer;
mod demo;
pub mod error;
pub mod hetzner;
pub mod home;
mod http;
pub mod man;
mod metrics;
pub mod safe_fs;
mod secret;
pub mod serve;
mod sessions;
mod setup;
pub mod sim;
pub mod spool;
pub mod store;
mod table;
mod timestamp;
pub mod verb;
pub mod vnc_auth;
mod wakeup;
mod worker;

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory;

use crate::cli::{Cli, Command, ConfigCommand, LeaseArgs, LeaseRef};
use crate::config::Config;
use crate::error::{EXIT_FAILED, Error};
use crate::home::Home;
use crate::store::{Finish, Store};
use crate::verb::CommandLine;
use crate::wakeup::Wakeup;

/// How often a blocked `next` or `wait` looks again without any event: a
/// safety net for dropped inotify events, not the way work is found.
const RESCAN: Duration = Duration::from_secs(30);

pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hcc", &mut script);
            Output::new().write(&String::from_utf8_lossy(&script))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            Output::new().write(&man::render())?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Sim(args) => return sim::run(args),
        Command::Demo { quick } => return demo::run(quick),
        _ => {}
    }
    let home = Home::open(Home::locate(cli.home)?)?;
    if home.is_new() {
        // A panel may open hcc.db right after `hcc setup`: give it tables.
        Store::open(&home.db_path())?;
    }
    match cli.command {
        Command::Setup => setup::run(&home),
        Command::Config(cmd) => config_command(&home, cmd),
        Command::Push { id, cmd, args } => push(&home, id, &cmd, &args),
        Command::Pull(lease) => pull(&home, &lease),
        Command::Next(lease) => next(&home, &lease),
        Command::Done { id, result } => done(&home, id, result),
        Command::Fail { id, reason } => fail(&home, id, &reason),
        Command::Put { msg } => put(&home, &msg),
        Command::Wait { progress } => wait(&home, progress.as_deref()),
        Command::Ingest => ingest(&home),
        Command::List { all, json } => cloud::list(&home, all, json),
        Command::Images(a) => cloud::images(&home, a.json),
        Command::Types(a) => cloud::server_types(&home, a.json),
        Command::Dc(a) => cloud::datacenters(&home, a.json),
        Command::Locations(a) => cloud::locations(&home, a.json),
        Command::Sync {
            name,
            changes,
            json,
        } => cloud::sync(&home, name.as_deref(), changes, json),
        Command::Create {
            name,
            server_type,
            image,
            location,
            opts,
        } => cloud::create(
            &home,
            cloud::CreateArgs {
                name: &name,
                server_type: server_type.as_deref(),
                image: image.as_deref(),
                location: location.as_deref(),
                no_wait: opts.no_wait,
                json: opts.json,
            },
        ),
        Command::Start(a) => power(&home, cloud::Verb::Start, a),
        Command::Stop(a) => power(&home, cloud::Verb::Stop, a),
        Command::Force(a) => power(&home, cloud::Verb::Force, a),
        Command::Reboot(a) => power(&home, cloud::Verb::Reboot, a),
        Command::Reset(a) => power(&home, cloud::Verb::Reset, a),
        Command::Kill { name, yes, no_wait } => cloud::kill(&home, &name, yes, no_wait),
        Command::Settag { name } => cloud::settag(&home, &name),
        Command::Deltag { name } => cloud::deltag(&home, &name),
        Command::Console { name, json } => cloud::console(&home, &name, json),
        Command::Vnc(args) => console::bridge::run(&home, &args),
        Command::Worker { cycle } => worker::run(&home, Duration::from_secs(cycle)),
        Command::Status { json } => worker::status::run(&home, json),
        Command::Serve(args) => serve::run(&home, args),
        Command::Apikey(cmd) => apikey::run(&home, cmd),
        Command::Sessions { live, json, limit } => sessions::list(&home, live, json, limit),
        Command::Revoke { name } => sessions::revoke(&home, &name),
        Command::Suspend { name } => sessions::suspend(&home, &name),
        Command::Resume { name } => sessions::resume(&home, &name),
        Command::Completions { .. } | Command::Man | Command::Sim(_) | Command::Demo { .. } => {
            unreachable!("handled above")
        }
    }
}

fn power(home: &Home, verb: cloud::Verb, args: cli::ServerArgs) -> Result<ExitCode, Error> {
    cloud::power(home, verb, &args.name, args.opts.no_wait, args.opts.json)
}

/// Writes to stdout at once; a closed pipe becomes [`Error::Output`].
pub(crate) fn print(text: &str) -> Result<(), Error> {
    Output::new().write(text)
}

fn config_command(home: &Home, cmd: ConfigCommand) -> Result<ExitCode, Error> {
    let mut config = Config::load(&home.config_path())?;
    let mut out = Output::new();
    match cmd {
        ConfigCommand::Get { key } => {
            let key = config::key(&key)?;
            let (value, _) = config.display_value(key);
            out.line(&value)?;
        }
        ConfigCommand::Set { key, value } => {
            let value = if value == "-" && key == "token" {
                read_stdin_line()?
            } else {
                value
            };
            config.set(&key, &value)?;
            config.save()?;
            serve::pickup::report(home, &key);
        }
        ConfigCommand::Unset { key } => {
            config.unset(&key)?;
            config.save()?;
            serve::pickup::report(home, &key);
        }
        ConfigCommand::Show => {
            let width = config::KEYS.iter().map(|k| k.name.len()).max().unwrap_or(0);
            for key in config::KEYS {
                let (value, source) = config.display_value(key);
                out.line(&format!("{:width$}  {value}  ({source})", key.name))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn push(home: &Home, print_id: bool, cmd: &str, args: &[String]) -> Result<ExitCode, Error> {
    let line = CommandLine::from_words(cmd, args).map_err(Error::Input)?;
    let store = Store::open(&home.db_path())?;
    let id = store.queue(&line, store::Source::Cli)?;
    if print_id {
        Output::new().line(&id.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn pull(home: &Home, lease: &LeaseArgs) -> Result<ExitCode, Error> {
    let config = Config::load(&home.config_path())?;
    let mut store = Store::open(&home.db_path())?;
    let report = spool::ingest(home, &mut store)?;
    spool::warn_rejected(&report);
    let owner = consumer::lease_owner(lease.id || lease.handle);
    match store.lease_next(&owner, lease.lease, config.max_attempts())? {
        Some(leased) => {
            deliver(&store, &leased, lease)?;
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(EXIT_FAILED)),
    }
}

fn next(home: &Home, lease: &LeaseArgs) -> Result<ExitCode, Error> {
    let config = Config::load(&home.config_path())?;
    let mut store = Store::open(&home.db_path())?;
    // Watch before the first look, so nothing that lands in between is
    // missed (and after opening, which creates the WAL: not news).
    let wakeup = Wakeup::new(home)?;
    let owner = consumer::lease_owner(lease.id || lease.handle);
    let mut woken = false;
    loop {
        let look = (|| -> Result<(Option<store::Leased>, Option<i64>), Error> {
            let report = spool::ingest(home, &mut store)?;
            spool::warn_rejected(&report);
            let leased = store.lease_next(&owner, lease.lease, config.max_attempts())?;
            Ok((leased, store.next_lease_expiry()?))
        })();
        let timeout = match outlive(look)? {
            Some((Some(leased), _)) => {
                deliver(&store, &leased, lease)?;
                return Ok(ExitCode::SUCCESS);
            }
            // A running command whose lease expires becomes leasable
            // without any file event: wake up for that moment too.
            Some((None, Some(until))) => {
                let secs = (until - store::now() + 1).clamp(0, RESCAN.as_secs() as i64);
                Duration::from_secs(secs as u64)
            }
            Some((None, None)) => RESCAN,
            None => RETRY_AFTER_ERROR,
        };
        let timeout = if woken { wakeup::FOLLOW_UP } else { timeout };
        woken = wakeup.wait(timeout);
    }
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
        Err(Error::Store(err)) if err.is_transient() => {
            eprintln!("hcc: {err}; trying again");
            Ok(None)
        }
        Err(err @ Error::Io { .. }) => {
            eprintln!("hcc: {err}; trying again");
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

fn done(home: &Home, target: LeaseRef, result: Option<String>) -> Result<ExitCode, Error> {
    let result = result.map(
        |text| match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(json) => json.to_string(),
            Err(_) => serde_json::Value::String(text).to_string(),
        },
    );
    let store = Store::open(&home.db_path())?;
    store.finish(target.id, &closer(target), &Finish::Done { result })?;
    Ok(ExitCode::SUCCESS)
}

fn fail(home: &Home, target: LeaseRef, reason: &[String]) -> Result<ExitCode, Error> {
    let reason = one_line(&reason.join(" "));
    if reason.is_empty() {
        return Err(Error::Input("`fail` needs a reason".into()));
    }
    let store = Store::open(&home.db_path())?;
    store.finish(target.id, &closer(target), &Finish::Failed { reason })?;
    Ok(ExitCode::SUCCESS)
}

fn put(home: &Home, words: &[String]) -> Result<ExitCode, Error> {
    let line = CommandLine::from_words("notify", words).map_err(Error::Input)?;
    let config = Config::load(&home.config_path())?;
    let mut store = Store::open(&home.db_path())?;
    store.put_message(&line.arg, config.ring_size())?;
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

fn wait(home: &Home, progress: Option<&str>) -> Result<ExitCode, Error> {
    let progress = Progress::new(progress);
    let mut store = Store::open(&home.db_path())?;
    let wakeup = Wakeup::new(home)?;
    let mut out = Output::new();
    let mut last_message = store.last_message_id()?;
    let mut last_command = store.last_command_id()?;
    progress.show(Progress::STARTED, 1);
    let mut woken = false;
    loop {
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
        let timeout = match outlive(look)? {
            // Found nothing after an event: one follow-up look (wakeup.rs).
            Some(0) if woken => {
                progress.show(Progress::EMPTY_WAKEUP, 1);
                wakeup::FOLLOW_UP
            }
            Some(_) => RESCAN,
            None => RETRY_AFTER_ERROR,
        };
        let following_up = timeout == wakeup::FOLLOW_UP;
        woken = wakeup.wait(timeout);
        if !woken && !following_up {
            progress.show(Progress::IDLE, 1);
        }
    }
}

fn ingest(home: &Home) -> Result<ExitCode, Error> {
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

/// Reads one line from stdin (a token for `config set token -`).
fn read_stdin_line() -> Result<String, Error> {
    let mut text = String::new();
    io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| Error::Input(format!("cannot read standard input: {e}")))?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

/// Control characters become spaces: stored texts stay one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Stdout, flushed after every line so that `wait | while read` loops see
/// each line at once; write errors become [`Error::Output`].
struct Output {
    out: io::Stdout,
}

impl Output {
    fn new() -> Output {
        Output { out: io::stdout() }
    }

    fn write(&mut self, text: &str) -> Result<(), Error> {
        let mut out = self.out.lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(Error::Output)
    }

    fn line(&mut self, text: &str) -> Result<(), Error> {
        self.write(&format!("{text}\n"))
    }
}
