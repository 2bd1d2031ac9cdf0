//! `hcc serve` under connection floods from this machine (where a proxy's
//! connections come from, so no per-address cap helps): idle connections
//! and heads sent a byte at a time cost no thread, are closed within
//! seconds, and never keep a normal request waiting. Also: heads that a
//! proxy could read differently, and whose `X-Forwarded-For` is believed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::serve::{Serve, keyed, link, raw, serving, setup, status_of};
use crate::test::{Env, HCC, Sim, cpu_ticks, eventually};

/// Room for a few thousand sockets in this process (the soft limit is
/// often 1024).
pub(crate) fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Each thread's name, state and kernel wait channel, for a failure
/// message.
fn thread_states(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return String::new();
    };
    tasks
        .flatten()
        .map(|task| {
            let read = |f: &str| std::fs::read_to_string(task.path().join(f)).unwrap_or_default();
            let stat = read("stat");
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_string();
            format!("{} {} {}", read("comm").trim(), state, read("wchan"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn connect(addr: &str) -> TcpStream {
    // A full accept queue drops a SYN now and then: the retry takes a second.
    TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

#[test]
fn a_request_is_answered_while_a_thousand_idle_and_a_thousand_slow_connections_are_held() {
    raise_fd_limit();
    let (_sim, _env, keys, serve) = serving(&["--servers", "3"]);
    let before = open_fds(serve.pid());

    let idle: Vec<TcpStream> = (0..1000).map(|_| connect(&serve.addr)).collect();
    let slow: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut stream = connect(&serve.addr);
            stream.write_all(b"G").expect("send a first byte");
            stream
        })
        .collect();
    // The slow ones go on sending their head, a byte every two seconds.
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut slow = slow;
            for &byte in b"ET / HTTP/1.1\r\nX-Slow: yes\r\n" {
                for _ in 0..20 {
                    if stop.load(Ordering::SeqCst) {
                        return slow.len();
                    }
                    // A byte per 2 s, in 100 ms steps to hear `stop` (the point).
                    std::thread::sleep(Duration::from_millis(100));
                }
                slow.retain_mut(|s| s.write_all(&[byte]).is_ok());
            }
            slow.len()
        })
    };
    let held = eventually(Duration::from_secs(20), || {
        open_fds(serve.pid()) >= before + 2000
    });
    assert!(
        held,
        "hcc serve holds {} descriptors, {before} before the flood; threads: {}\n{}",
        open_fds(serve.pid()),
        thread_states(serve.pid()),
        serve.log()
    );
    let threads = threads(serve.pid());
    assert!(
        threads < 64,
        "{threads} threads for 2000 connections without a request"
    );

    for _ in 0..5 {
        let start = Instant::now();
        let reply = serve.get("/api/v1/servers", &keys.read);
        let took = start.elapsed();
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.json()["servers"].as_array().map(Vec::len), Some(3));
        assert!(
            took < Duration::from_secs(2),
            "a request took {took:?} during the flood"
        );
    }
    stop.store(true, Ordering::SeqCst);
    let still_sending = trickle.join().expect("the trickling thread");
    assert!(
        still_sending > 900,
        "only {still_sending} of 1000 slow connections were held"
    );
    drop(idle);
}

/// Reads until the server closes the connection; what came, and when.
fn until_closed(mut stream: TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(limit))
        .expect("set a read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            // A signal to the test process (another test's child ending)
            // is no answer: wait on for what is left of the limit.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted && start.elapsed() < limit => {
                let left = limit.saturating_sub(start.elapsed());
                let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            }
            Err(e) => panic!(
                "still open after {:?} ({e}); got {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

#[test]
fn connections_without_a_complete_head_are_closed_within_seconds() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    let serve = Serve::start(&env, &sim, &[]);
    let limit = Duration::from_secs(30);

    // Connected, never a byte.
    let idle = connect(&serve.addr);
    // A head that never ends, however steadily it comes.
    let slow = connect(&serve.addr);
    let writer = slow.try_clone().expect("clone a socket");
    let trickle = std::thread::spawn(move || {
        let mut writer = writer;
        let mut sent = 0;
        let head = b"GET / HTTP/1.1\r\n";
        while writer.write_all(&head[sent % head.len()..][..1]).is_ok() && sent < 60 {
            sent += 1;
            // A slow head, a byte per 500 ms (the point).
            std::thread::sleep(Duration::from_millis(500));
        }
        sent
    });
    // A request answered, then nothing more on a kept-alive connection.
    let mut kept = connect(&serve.addr);
    kept.write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send a request");

    let idle = std::thread::spawn(move || until_closed(idle, limit));
    let kept = std::thread::spawn(move || until_closed(kept, limit));
    let (got, _) = until_closed(slow.try_clone().expect("clone a socket"), limit);
    assert_eq!(got, "", "the never-ending head was answered");
    let sent = trickle.join().expect("the trickling thread");
    assert!(sent < 60, "a head trickled on for {sent} bytes");
    let (got, took) = idle.join().expect("the idle reader");
    assert_eq!(got, "");
    assert!(
        took >= Duration::from_secs(1),
        "an idle connection was closed at once, not after a timeout"
    );
    let (got, _) = kept.join().expect("the kept-alive reader");
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    let _ = slow.shutdown(std::net::Shutdown::Both);
    // And the server answers as before.
    let doc = serve.request("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(doc.status, 200);
}

#[test]
fn heads_with_two_keys_or_control_characters_are_refused() {
    let (_sim, _env, keys, serve) = serving(&["--servers", "1"]);
    let (read, admin) = (&keys.read, &keys.admin);
    let cases = [
        format!(
            "GET /api/v1/servers HTTP/1.1\r\nAuthorization: Bearer {read}\r\nAuthorization: Bearer {admin}\r\n\r\n"
        ),
        format!(
            "GET /api/v1/servers HTTP/1.1\r\nauthorization: Bearer {read}\r\nAUTHORIZATION: Bearer {read}\r\n\r\n"
        ),
        format!("GET /api/v1/servers HTTP/1.1\r\nAuthorization: Bearer {read}\rX: y\r\n\r\n"),
        format!("GET /api/v1/servers HTTP/1.1\r\nAuthorization: Bearer {read}\0\r\n\r\n"),
        format!(
            "GET /api/v1/servers HTTP/1.1\r\nX-Name: a\x01b\r\nAuthorization: Bearer {read}\r\n\r\n"
        ),
    ];
    for request in &cases {
        let answer = raw(&serve.addr, request.as_bytes());
        assert_eq!(status_of(&answer), 400, "{request:?} -> {answer}");
        assert!(answer.contains("\"bad_request\""), "{answer}");
    }
    // A tab in a value is allowed, and one key works.
    let answer = raw(
        &serve.addr,
        format!("GET /api/v1/servers HTTP/1.1\r\nX-Name: a\tb\r\nAuthorization: Bearer {read}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(!serve.log().contains(read.as_str()), "{}", serve.log());
}

#[test]
fn only_a_trusted_proxy_names_the_client() {
    let sim = Sim::start(&["--servers", "1"]);
    let env = Env::new();
    let request = "GET /api/v1/openapi.json HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nConnection: close\r\n\r\n";

    // By default the proxy on this machine is trusted: its entry, the
    // right-most, names the client; the one the client wrote does not.
    let keys = setup(&env, &sim);
    let serve = Serve::start(&env, &sim, &[]);
    assert_eq!(status_of(&raw(&serve.addr, request.as_bytes())), 200);
    // The console session records the same address.
    let path = link(&serve, &keys.console, "srv-00001");
    let open = format!(
        "POST {path} HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&raw(&serve.addr, open.as_bytes())), 200);
    let remote: String = env.value("SELECT remote FROM console_sessions");
    assert_eq!(remote, "203.0.113.9");
    let logged = |serve: &Serve, who: &str| {
        serve
            .log()
            .contains(&format!("hcc serve: {who} GET /api/v1/openapi.json 200 "))
    };
    assert!(
        eventually(Duration::from_secs(5), || logged(&serve, "203.0.113.9")),
        "{}",
        serve.log()
    );
    assert!(!serve.log().contains("6.6.6.6"), "{}", serve.log());
    drop(serve);

    env.run(&["config", "set", "trusted_proxies", "localhost"])
        .fails(
            2,
            "hcc: invalid value for `trusted_proxies`: `localhost` is not an IP address like \
             127.0.0.1 or ::1",
        );
    env.ok(&["config", "set", "trusted_proxies", "none"]);
    let serve = Serve::start(&env, &sim, &[]);
    assert_eq!(status_of(&raw(&serve.addr, request.as_bytes())), 200);
    assert!(
        eventually(Duration::from_secs(5), || logged(&serve, "127.0.0.1")),
        "{}",
        serve.log()
    );
    assert!(!serve.log().contains("203.0.113.9"), "{}", serve.log());
}

/// With few file descriptors, connections take no more than their share:
/// the one idle longest makes way for a new one, a normal request is still
/// answered, and nothing spins.
#[test]
fn with_few_file_descriptors_idle_connections_make_way() {
    let sim = Sim::start(&["--servers", "3"]);
    let (env, keys) = keyed(&sim);
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "ulimit -n 400 && exec \"$0\" \"$@\""])
        .args([HCC, "serve", "--listen", "127.0.0.1:0"])
        .env("HCC_HOME", env.home())
        .envs(sim.client_env());
    let serve = Serve::start_command(&env, &mut cmd);
    let flood: Vec<TcpStream> = (0..600).map(|_| connect(&serve.addr)).collect();
    // Room is left for the database and the Hetzner client.
    let fds = open_fds(serve.pid());
    assert!(fds < 250, "hcc serve holds {fds} of its 400 descriptors");
    let ticks = cpu_ticks(serve.pid());
    // CPU used over 2 s idle: a measurement over time.
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(serve.pid()) - ticks;
    assert!(spent < 100, "{spent} ticks of CPU in 2 s while idle");
    for _ in 0..5 {
        let reply = serve.get("/api/v1/servers", &keys.read);
        assert_eq!(reply.status, 200, "{reply:?}\n{}", serve.log());
    }
    // The oldest of the flood were closed to make room.
    let mut first = flood.into_iter().next().expect("a connection");
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    let read = first.read(&mut [0u8; 1]);
    assert!(
        matches!(&read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the oldest connection is still open: {read:?}"
    );
}

/// Bodies sent slowly wait in the event loop, not on worker threads: 300
/// of them (more than there are workers) hold no thread, a normal request
/// is answered meanwhile, and a body that arrives in pieces, with a length
/// or chunked, is read whole.
#[test]
fn slow_bodies_hold_no_worker_thread() {
    let (_sim, _env, keys, serve) = serving(&["--servers", "3"]);
    let slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut stream = connect(&serve.addr);
            stream
                .write_all(b"POST /c/refresh HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
                .expect("send a head and a byte of its body");
            stream
        })
        .collect();
    let start = Instant::now();
    let reply = serve.get("/api/v1/servers", &keys.read);
    assert_eq!(reply.status, 200, "{reply:?}");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "a request took {took:?}");
    let threads = threads(serve.pid());
    assert!(threads < 64, "{threads} threads for 300 slow bodies");
    drop(slow);

    let path = "/api/v1/servers/srv-00001/console-link";
    let key = &keys.console;
    let pieces: [(String, &str); 2] = [
        (
            format!(
                "POST {path} HTTP/1.1\r\nAuthorization: Bearer {key}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{"
            ),
            "}",
        ),
        (
            format!(
                "POST {path} HTTP/1.1\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{{\r\n"
            ),
            "1\r\n}\r\n0\r\n\r\n",
        ),
    ];
    for (first, second) in pieces {
        let mut stream = connect(&serve.addr);
        stream
            .write_all(first.as_bytes())
            .expect("send the first piece");
        // A request in two pieces, apart in time (the point).
        std::thread::sleep(Duration::from_millis(700));
        stream.write_all(second.as_bytes()).expect("send the rest");
        let (answer, _) = until_closed(stream, Duration::from_secs(10));
        assert!(answer.starts_with("HTTP/1.1 201 "), "{first:?}: {answer}");
    }
}
