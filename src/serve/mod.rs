//! `hcc serve`: console pages, one-time console links and the JSON API.
//!
//! Requests run on crate::http's worker threads; each borrows a SQLite
//! connection and, once it asks Hetzner, a Hetzner client from bounded
//! pools (pool.rs), so a burst holds no more descriptors than the pools
//! allow. The threads share the settings (re-read on SIGHUP and when
//! config.json changes: reload.rs), the rendered server list (listing.rs),
//! the checked API keys and rendered servers kept while the database is
//! unchanged (answers.rs),
//! the count of requests under way per client (client.rs) and what console
//! requests each page and server may still make (ration.rs); what the
//! handlers share of these is in shared.rs. router.rs holds the routing
//! table and what every request goes through once (its log line, its
//! metrics). This file only starts the server and stops it.

mod adopt;
mod answers;
mod api;
mod auth;
mod broker;
mod catalog;
mod client;
mod gate;
mod links;
mod listing;
mod manage;
mod metrics;
mod options;
mod origin;
mod pages;
mod password;
mod pool;
mod power;
mod ration;
mod redact;
mod reload;
mod reply;
mod request;
mod router;
mod server_metrics;
mod sessions;
mod shared;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::config;
use crate::error::Error;
use crate::home::Home;
use crate::http;
use crate::pickup;
use crate::store::Store;
pub use options::Options;
use shared::{MAX_BODY, Settings, log};

/// How often the main thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(200);

pub fn run(home: &Home, config: &config::Settings, args: Options) -> Result<ExitCode, Error> {
    let (addr, exposed) = args.address()?;
    if exposed && Store::open(&home.db_path())?.api_key_count()? == 0 {
        return Err(Error::Input(format!(
            "refusing to listen on {addr}, beyond this machine, while no API key exists: \
             create one first (`hcc apikey add NAME --scope admin`) or listen on 127.0.0.1"
        )));
    }
    args.check_public_url()?;
    let worker_lock = if args.worker.is_some() {
        Some(crate::worker::lock(home)?)
    } else {
        None
    };
    let listener = TcpListener::bind(addr)
        .map_err(|e| Error::Failed(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Failed(format!("cannot listen on {addr}: {e}")))?;
    // Watching before the first read: a change in between is not missed.
    let triggers = reload::Triggers::start(home)?;
    let settings = Arc::new(Settings::new(
        home,
        config.clone(),
        args.public_url.as_deref(),
        bound,
        None,
    ));
    // Before the first request: `hcc config set` may ask from now on.
    pickup::publish(home, settings.config.digest());
    let live = Arc::new(reload::Live::new(settings.clone()));
    let reloader = reload::Reloader {
        live: live.clone(),
        public_url: args.public_url.clone(),
        bound,
        worker: args.worker.is_some(),
    };
    // A change between run()'s read and the watch is caught up on now,
    // quietly when there was none.
    reloader.reload(reload::SINCE_START);
    log(&format!(
        "listening on http://{bound} (pid {}, console links {}/c/...)",
        std::process::id(),
        settings.public_url
    ));
    options::warn(exposed, bound, &settings.public_url);

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| Error::Failed(format!("cannot install signal handlers: {e}")))?;
    }
    let busy = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (live, busy) = (live.clone(), busy.clone());
        let router = router::Router::new();
        Arc::new(move |request: &http::Request| {
            busy.fetch_add(1, Ordering::SeqCst);
            let reply = router.serve(live.get(), request);
            busy.fetch_sub(1, Ordering::SeqCst);
            reply
        })
    };
    let limits = http::Limits {
        max_body: MAX_BODY,
        thread_name: "hcc-serve",
        error: router::request_error,
        uncapped: settings.trusted_proxies.clone(),
        upgraded_extra: 1,
    };
    let server = http::Server::new(listener, limits, handler)
        .map_err(|e| Error::Failed(format!("cannot serve on {bound}: {e}")))?;
    spawn("hcc-accept", move || server.run())?;
    let worker = match worker_lock {
        Some(lock) => {
            let (home, stop) = (home.clone(), stop.clone());
            let config = settings.config.clone();
            let cycle = args.worker.unwrap_or_default();
            Some(spawn("hcc-worker", move || {
                let outcome = crate::worker::run_locked(&home, &config, cycle, lock, stop.clone());
                // The worker ends on the same signal; if it ends on its own,
                // serving goes down with it so that systemd restarts both.
                stop.store(true, Ordering::SeqCst);
                outcome
            })?)
        }
        None => None,
    };
    let mut next_sweep = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if let Some(why) = triggers.due() {
            reloader.reload(why);
        }
        // Session ends that could not be written when they happened.
        broker::record_pending(&settings.consoles);
        if Instant::now() >= next_sweep {
            broker::sweep(&settings.consoles);
            next_sweep = Instant::now() + broker::SWEEP_EVERY;
        }
        std::thread::sleep(TICK);
    }
    log("stopping");
    pickup::withdraw(home);
    // Requests under way may finish (a console request waits on Hetzner).
    let deadline = Instant::now() + Duration::from_secs(10);
    while busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    broker::stop_all(&settings.consoles);
    let outcome = match worker {
        Some(worker) => match worker.join() {
            Ok(Ok(_)) => Ok(ExitCode::SUCCESS),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(Error::Failed(
                "the worker thread stopped unexpectedly".into(),
            )),
        },
        None => Ok(ExitCode::SUCCESS),
    };
    log("stopped");
    outcome
}

/// A named thread; the system refusing one is an error, not a panic.
fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, Error> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map_err(|e| Error::Failed(format!("cannot start a thread: {e}")))
}
