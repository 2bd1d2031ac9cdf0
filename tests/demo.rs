//! `hcc demo` as a person runs it: it keeps the simulator, the worker and
//! `hcc serve` running, prints the dashboard's URL (with an admin key in
//! its fragment) and a one-time console link on which the simulated
//! console really works, and on SIGINT stops every process it started and
//! removes its state directory. (`hcc demo --quick` is in worker.rs.)

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use crate::daemon::{Daemon, group_alive};
use crate::test::{Env, eventually, http};

/// The words of `text` that start with `prefix` and contain `needle`.
fn urls<'a>(text: &'a str, prefix: &str, needle: &str) -> Vec<&'a str> {
    text.split_whitespace()
        .filter(|w| w.starts_with(prefix) && w.contains(needle))
        .collect()
}

#[test]
fn the_demo_serves_a_working_console_until_interrupted() {
    let env = Env::new();
    let (mut demo, stdout) =
        Daemon::spawn_piped("hcc demo", &env.cmd(&["demo"]), &env.path("demo.log"));
    // Read to the end, always: the demo must never block on a full pipe.
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut sink = sink.lock().unwrap();
            sink.push_str(&line);
            sink.push('\n');
        }
    });
    let printed = || out.lock().unwrap().clone();
    assert!(
        eventually(Duration::from_secs(120), || printed()
            .contains("Ctrl-C ends the demo")),
        "the demo did not get to serving:\n{}\n{}",
        printed(),
        demo.log()
    );
    let text = printed();
    let dir = text
        .lines()
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .to_string();
    assert!(std::path::Path::new(&dir).is_dir(), "{text}");
    let sim = urls(&text, "http://127.0.0.1:", "/v1")[0]
        .trim_start_matches("http://")
        .trim_end_matches("/v1,")
        .to_string();
    let dashboard = urls(&text, "http://127.0.0.1:", "/#key=hcc_")[0].to_string();
    let (base, key) = dashboard.split_once("/#key=").unwrap();
    let serve = base.trim_start_matches("http://").to_string();
    // The link made after step 8: the first one (step 7) is used up.
    let link = urls(&text, base, "/c/").last().unwrap().to_string();
    assert_eq!(urls(&text, base, "/c/").len(), 2, "{text}");

    // The dashboard's page, and the API with the printed key: an admin key
    // that lists the demo's servers and its console sessions.
    let page = http(&serve, "GET", "/", None, None).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("index.js"), "{}", page.body);
    let bearer = format!("Bearer {key}");
    let servers = http(&serve, "GET", "/api/v1/servers", None, Some(&bearer)).unwrap();
    assert_eq!(servers.status, 200, "{}", servers.body);
    for name in ["demo-web", "srv-00001", "srv-00005"] {
        assert!(servers.body.contains(name), "{}", servers.body);
    }
    let sessions = http(&serve, "GET", "/api/v1/sessions", None, Some(&bearer)).unwrap();
    assert_eq!(sessions.status, 200, "{}", sessions.body);

    let console = |server: &str| {
        let answer = http(&sim, "GET", &format!("/_sim/consoles/{server}"), None, None).unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    };
    if crate::support::browser::browser_ready() {
        // The printed link: a person types into demo-web's console.
        let shot = crate::support::browser::shots().join("demo-link.png");
        crate::support::browser::node(
            "type.mjs",
            &[
                "--url",
                &link,
                "--text",
                "root",
                "--screenshot",
                shot.to_str().unwrap(),
            ],
            || format!("the demo's console link\n{}", demo.log()),
        );
        assert!(
            eventually(Duration::from_secs(5), || console("demo-web")["typed"]
                == "root"),
            "{}",
            console("demo-web")
        );
        // The printed dashboard URL: signed in by its fragment; a
        // server's Console button connects.
        let shot = crate::support::browser::shots().join("demo-dashboard-console.png");
        let report = crate::support::browser::node(
            "demo.mjs",
            &[
                "--url",
                &dashboard,
                "--key",
                key,
                "--server",
                "srv-00004",
                "--screenshot",
                shot.to_str().unwrap(),
            ],
            || format!("the demo's dashboard\n{}", demo.log()),
        );
        assert_eq!(report["keyForm"], false, "{report}");
        assert!(report["rows"].as_array().unwrap().len() == 6, "{report}");
        assert_eq!(console("srv-00004")["logins"], 1);
    } else {
        // Without a browser: the link still opens, once, with a POST.
        let path = link.trim_start_matches(base);
        assert_eq!(http(&serve, "POST", path, None, None).unwrap().status, 200);
        assert_eq!(http(&serve, "POST", path, None, None).unwrap().status, 410);
    }

    // Ctrl-C: everything it started stops and its directory goes.
    kill_process(Pid::from_raw(demo.pid() as i32).unwrap(), Signal::INT).unwrap();
    assert!(
        eventually(Duration::from_secs(20), || demo.exited()),
        "the demo did not end on SIGINT:\n{}",
        printed()
    );
    reader.join().unwrap();
    let text = printed();
    assert!(text.contains("9. cleaning up"), "{text}");
    assert!(text.trim_end().ends_with("README.md"), "{text}");
    assert!(!group_alive(demo.pgid()), "processes of the demo are left");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is left behind");
    for addr in [&sim, &serve] {
        assert!(
            std::net::TcpStream::connect(addr.as_str()).is_err(),
            "{addr} still answers"
        );
    }
}
