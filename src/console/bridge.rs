//! `hcc vnc NAME`: a server's console on a local TCP port for a native
//! VNC viewer. Each viewer connection gets fresh credentials from Hetzner
//! (they last a minute and serve one connection), hcc connects and
//! authenticates upstream (upstream.rs), offers the viewer RFB 3.8 with
//! security None, and relays (relay.rs). A listening address beyond this
//! machine needs `--allow-remote`, and then viewers must answer a VNC
//! challenge with a one-off password of hcc's own, printed once.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::relay::{End, Limits, Outcome, Side, TcpEnd, WsEnd, relay_ends};
use super::{rfb, upstream};
use crate::cli::VncArgs;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::verb::shown;

/// Viewers connected at once; more are turned away.
const MAX_VIEWERS: usize = 16;
/// Credentials fetched at start serve the first viewer this long.
const FIRST_CREDENTIALS_FOR: Duration = Duration::from_secs(45);
/// How often the accept loop looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// A viewer's handshake steps may take this long each.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// ...and all of them together this long (a person may be typing the
/// one-off password meanwhile).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Characters of the one-off password (VNC uses the first 8).
const PASSWORD_CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// What every viewer connection shares.
struct Bridge {
    home: Home,
    settings: Settings,
    name: String,
    password: Option<String>,
    idle: Duration,
    stop: Arc<AtomicBool>,
    viewers: AtomicUsize,
    /// The credentials fetched at start, for the first viewer.
    first: Mutex<Option<(String, String, Instant)>>,
}

pub fn run(home: &Home, settings: &Settings, args: &VncArgs) -> Result<ExitCode, Error> {
    let addr: SocketAddr = args
        .listen
        .to_socket_addrs()
        .map_err(|e| Error::Input(format!("invalid --listen `{}`: {e}", shown(&args.listen))))?
        .next()
        .ok_or_else(|| {
            Error::Input(format!(
                "--listen `{}` names no address",
                shown(&args.listen)
            ))
        })?;
    if !addr.ip().is_loopback() && !args.allow_remote {
        return Err(Error::Input(format!(
            "refusing to listen on {addr}, beyond this machine: pass --allow-remote \
             (viewers then need a one-off password), or listen on 127.0.0.1"
        )));
    }
    let idle = settings.console_idle_timeout;
    // Fails early, with Hetzner's or hcc's reason, for an unknown or
    // unmanaged server; the credentials serve the first viewer.
    let cloud = Cloud::open(home, settings, Priority::Console)?;
    let console = crate::cloud::console::fetch_managed(&cloud, &args.name)?;
    drop(cloud);
    let listener = TcpListener::bind(addr)
        .map_err(|e| Error::Failed(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .and_then(|a| listener.set_nonblocking(true).map(|()| a))
        .map_err(|e| Error::Failed(format!("cannot listen on {addr}: {e}")))?;
    let password = if args.allow_remote {
        Some(one_off_password()?)
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| Error::Failed(format!("cannot install signal handlers: {e}")))?;
    }
    let host = match bound {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let mut text = format!(
        "{}'s console is at {bound} until Ctrl-C; connect a viewer:\n    vncviewer {host}::{}\n",
        shown(&args.name),
        bound.port()
    );
    if let Some(pw) = &password {
        text.push_str(&format!(
            "viewers must give this one-off VNC password (shown only now): {pw}\n"
        ));
    }
    crate::output::print(&text)?;
    let bridge = Arc::new(Bridge {
        home: home.clone(),
        settings: settings.clone(),
        name: args.name.clone(),
        password,
        idle,
        stop: stop.clone(),
        viewers: AtomicUsize::new(0),
        first: Mutex::new(Some((console.wss_url, console.password, Instant::now()))),
    });
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => admit(&bridge, stream, peer),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(e) => {
                log(&format!("cannot accept a viewer: {e}"));
                std::thread::sleep(TICK);
            }
        }
    }
    // Viewers are told goodbye (their relays see the flag).
    let deadline = Instant::now() + Duration::from_secs(3);
    while bridge.viewers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(ExitCode::SUCCESS)
}

fn log(message: &str) {
    eprintln!("hcc vnc: {}", crate::output::one_line(message));
}

fn one_off_password() -> Result<String, Error> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Failed(format!("cannot get random bytes from the system: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| PASSWORD_CHARS[usize::from(*b) % PASSWORD_CHARS.len()] as char)
        .collect())
}

/// A viewer connected: its own thread, unless too many are.
fn admit(bridge: &Arc<Bridge>, stream: TcpStream, peer: SocketAddr) {
    if bridge.viewers.fetch_add(1, Ordering::SeqCst) >= MAX_VIEWERS {
        bridge.viewers.fetch_sub(1, Ordering::SeqCst);
        log(&format!(
            "turned away {peer}: {MAX_VIEWERS} viewers are connected"
        ));
        return;
    }
    let bridge2 = bridge.clone();
    let spawned = std::thread::Builder::new()
        .name("hcc-vnc".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let outcome = viewer(&bridge2, stream);
            log(&format!(
                "viewer {peer} ended: {} ({} bytes to it, {} from it)",
                outcome.end.reason(),
                outcome.to_client,
                outcome.from_client
            ));
            bridge2.viewers.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        bridge.viewers.fetch_sub(1, Ordering::SeqCst);
        log(&format!("cannot serve {peer}: {e}"));
    } else {
        log(&format!("viewer {peer} connected"));
    }
}

/// One viewer: its handshake first (a wrong password costs no console
/// request), then the console's, then the relay.
fn viewer(bridge: &Bridge, mut stream: TcpStream) -> Outcome {
    let failed = |why: String| Outcome {
        end: End::Error(why),
        to_client: 0,
        from_client: 0,
    };
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(STEP_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(STEP_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true));
    if let Err(e) = setup {
        return failed(format!("cannot set up the viewer's connection: {e}"));
    }
    // A viewer that trickles its handshake (a byte just within each
    // read's timeout) would hold its place among the few for minutes.
    let watch = match super::deadline::watch(&stream, HANDSHAKE_TIMEOUT) {
        Ok(watch) => watch,
        Err(e) => return failed(format!("cannot set up the viewer's connection: {e}")),
    };
    if let Err(why) = rfb::server_handshake(&mut stream, bridge.password.as_deref()) {
        if watch.fired() {
            return failed("the viewer did not complete its handshake in time".into());
        }
        return failed(why);
    }
    drop(watch);
    let (url, password) = match credentials(bridge) {
        Ok(c) => c,
        Err(why) => return failed(why),
    };
    let upstream = match upstream::connect(&url, &password) {
        Ok(u) => u,
        Err(why) => return failed(why),
    };
    let limits = Limits {
        idle: bridge.idle,
        stop_every: Duration::from_millis(250),
    };
    relay_ends(
        (TcpEnd::new(stream, Side::Client), Vec::new()),
        (WsEnd::new(upstream.ws, Side::Upstream), upstream.rest),
        limits,
        |_, _| {
            bridge
                .stop
                .load(Ordering::SeqCst)
                .then(|| crate::store::EndReason::error("hcc vnc stopped"))
        },
    )
}

/// The console's URL and password for one connection: the ones fetched
/// at start while they are fresh, else new ones.
fn credentials(bridge: &Bridge) -> Result<(String, String), String> {
    let first = bridge.first.lock().ok().and_then(|mut f| f.take());
    if let Some((url, password, at)) = first
        && at.elapsed() < FIRST_CREDENTIALS_FOR
    {
        return Ok((url, password));
    }
    let cloud = Cloud::open(&bridge.home, &bridge.settings, Priority::Console)
        .map_err(|e| e.to_string())?;
    let console =
        crate::cloud::console::fetch_managed(&cloud, &bridge.name).map_err(|e| e.to_string())?;
    Ok((console.wss_url, console.password))
}
