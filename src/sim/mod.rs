//! `hcc sim`: a Hetzner Cloud API simulator for tests and the demo.
//!
//! It serves the part of the API that hcc and the official `hcloud` CLI
//! use, with the reference's JSON shapes and error envelopes, pagination,
//! label selectors, actions that take `--action-ms`, a real token bucket
//! behind the `RateLimit-*` headers, and injected faults. It shares no
//! types with hcc's API client: it writes JSON as the reference shows it.
//!
//! This file starts it: check the flags, bind, build the state, print the
//! one line a caller needs (`HCLOUD_ENDPOINT=... HCLOUD_TOKEN=...`), then
//! serve until killed (or, with `--stop-on-eof`, until stdin closes). It
//! logs nothing: requests carry the token and query strings.

mod actions;
mod api_error;
mod bucket;
mod catalog;
mod catalog_routes;
mod clock;
mod console;
mod control;
mod ctx;
mod faults;
mod front;
mod json;
mod metrics;
mod options;
mod query;
mod rng;
mod routes;
mod selector;
mod servers;
mod service;
mod state;
mod verbs;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use crate::error::Error;

pub use self::bucket::parse_limit;
pub use self::faults::Faults;
pub use self::options::{Options, Upstream};

use self::clock::Clock;
use self::rng::Rng;
use self::service::Sim;
use self::state::State;

/// Length of a generated API token: Hetzner's are 64 characters.
const TOKEN_LEN: usize = 64;

pub fn run(options: Options) -> Result<ExitCode, Error> {
    let options = options.checked().map_err(Error::Input)?;
    let listener = TcpListener::bind(&options.listen)
        .map_err(|e| Error::Failed(format!("cannot listen on `{}`: {e}", options.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Failed(format!("cannot read the listening address: {e}")))?;
    let addr = reachable(addr);

    let token = match options.token.clone() {
        Some(token) => token,
        None => rng::secret_alphanumeric(TOKEN_LEN).map_err(Error::Failed)?,
    };
    let rng = match options.seed {
        Some(seed) => Rng::with_seed(seed),
        None => Rng::new(),
    };
    let clock = Clock::new();
    let mut state = State::new(options.action_ms);
    state.seed(options.servers, clock.unix_secs(0));
    let sim = Sim::new(
        &options,
        state,
        rng,
        clock,
        token.clone(),
        format!("ws://{addr}"),
    );

    // The one line a caller reads; flushed before anything is served, so
    // a caller that has read it can connect at once.
    let mut out = io::stdout().lock();
    writeln!(out, "HCLOUD_ENDPOINT=http://{addr}/v1 HCLOUD_TOKEN={token}")
        .and_then(|()| out.flush())
        .map_err(Error::Output)?;
    drop(out);

    if options.stop_on_eof {
        // Whoever started us holds stdin; when it goes away, so do we.
        std::thread::spawn(|| {
            let mut sink = [0u8; 256];
            let mut stdin = io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }

    let sim = Arc::new(sim);
    let limits = crate::http::Limits {
        max_body: 1024 * 1024,
        thread_name: "sim-conn",
        error: crate::http::text_error,
        uncapped: Vec::new(),
        upgraded_extra: 0,
    };
    crate::http::Server::new(
        listener,
        limits,
        Arc::new(move |request| front::handle(&sim, request)),
    )
    .map_err(|e| Error::Failed(format!("cannot serve: {e}")))?
    .run();
    Ok(ExitCode::SUCCESS)
}

/// The address clients should use: a wildcard bind is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}
