//! `bench HCC whmcs`: the WHMCS module (examples/whmcs/) as WHMCS calls it
//! (tests/whmcs/harness.php, php-cli) against `hcc serve`, `hcc worker`
//! and `hcc sim`: from CreateAccount to a running server, from the single
//! sign-on click to a connected console in headless Chromium (the
//! simulator's own console), and what 100 client-area views of one
//! service in a minute cost at Hetzner, by route.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Serve, Sim, at, hcc_cmd, ms, synced_home};

const CREATES: usize = 5;
const OPENS: usize = 5;
const VIEWS: usize = 100;
/// The simulator console's banner colour (tests/browser.rs `SIM_BANNER`).
const SIM_BANNER: &str = "#3c8d5a";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn run(hcc: &str) {
    let php = Command::new("php")
        .args(["-r", "exit(extension_loaded('curl') ? 0 : 1);"])
        .status()
        .is_ok_and(|s| s.success());
    if !php {
        println!("(whmcs skipped: php-cli with ext-curl is missing; scripts/test installs it)");
        return;
    }
    println!("| WHMCS module, `hcc sim --action-ms A` | n | p50 | p90 | max |");
    println!("|---|---|---|---|---|");
    let mut views = None;
    for action_ms in ["0", "500"] {
        let sim = Sim::start(hcc, &["--servers", "1", "--action-ms", action_ms]);
        let home = synced_home(hcc, &sim);
        let key = hcc_cmd(
            hcc,
            home.path(),
            &["apikey", "add", "whmcs", "--scope", "admin"],
        )
        .output()
        .expect("hcc apikey add");
        assert!(key.status.success(), "apikey add: {key:?}");
        let key = String::from_utf8_lossy(&key.stdout).trim().to_string();
        let mut worker = hcc_cmd(hcc, home.path(), &["worker"])
            .envs(sim.env())
            .stderr(Stdio::null())
            .spawn()
            .expect("hcc worker");
        let serve = Serve::start(hcc, home.path(), &sim);
        let session = home.path().join("session");
        std::fs::create_dir_all(&session).expect("session dir");

        let mut created = Vec::new();
        for i in 1..=CREATES {
            let p = params(&serve.addr, &key, i);
            let began = Instant::now();
            let out = call(&session, "CreateAccount", &p);
            assert_eq!(out["result"], "success", "CreateAccount: {out}");
            created.push(began.elapsed());
        }
        print_row(
            &format!("CreateAccount -> server running, A = {action_ms} ms"),
            &created,
        );

        let p = params(&serve.addr, &key, 1);
        match sso_to_connected(&session, &p) {
            Ok(opens) => print_row(
                &format!(
                    "single sign-on click -> console connected in Chromium, A = {action_ms} ms"
                ),
                &opens,
            ),
            Err(why) => println!("| single sign-on in Chromium skipped: {why} | | | | |"),
        }

        if action_ms == "0" {
            let before = sim.stats()["by_route"].clone();
            let began = Instant::now();
            for _ in 0..VIEWS {
                let out = call(&session, "ClientArea", &p);
                assert_eq!(
                    out["result"]["templateVariables"]["server"]["status"], "running",
                    "ClientArea: {out}"
                );
            }
            let took = began.elapsed();
            let after = sim.stats()["by_route"].clone();
            views = Some((took, before, after));
        }
        let _ = worker.kill();
        let _ = worker.wait();
    }

    if let Some((took, before, after)) = views {
        println!();
        println!(
            "| {VIEWS} client-area views of one service in {:.1} s: Hetzner requests by route | n |",
            took.as_secs_f64()
        );
        println!("|---|---|");
        let mut total = 0;
        for (route, n) in after.as_object().into_iter().flatten() {
            let n = n.as_u64().unwrap_or(0) - before[route].as_u64().unwrap_or(0);
            if n > 0 {
                println!("| `{route}` | {n} |");
                total += n;
            }
        }
        println!("| all (goal: what hcc needs anyway, not one per view) | {total} |");
    }
}

fn print_row(what: &str, samples: &[Duration]) {
    println!(
        "| {what} | {} | {} | {} | {} |",
        samples.len(),
        ms(at(samples, 0.5)),
        ms(at(samples, 0.9)),
        ms(at(samples, 1.0))
    );
}

/// WHMCS's `$params` of service `id` on a server record pointing at hcc.
fn params(addr: &str, key: &str, id: usize) -> Value {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    json!({
        "serviceid": id, "userid": 1, "pid": 1, "domain": format!("web{id}.example.com"),
        "producttype": "server", "moduletype": "hcc", "status": "Active",
        "configoption1": "cx22", "configoption2": "debian-12", "configoption3": "fsn1",
        "clientsdetails": {"userid": 1, "language": "english"},
        "server": true, "serverid": 1, "serverhostname": host, "serverport": port,
        "serversecure": false, "serveraccesshash": key,
    })
}

/// One module call through tests/whmcs/harness.php: its JSON answer.
fn call(session: &Path, function: &str, params: &Value) -> Value {
    use std::io::Write;
    let request = json!({"function": function, "params": params, "session": session});
    let mut child = Command::new("php")
        .arg(repo().join("tests/whmcs/harness.php"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("php");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write request");
    let out = child.wait_with_output().expect("php");
    serde_json::from_slice(&out.stdout).expect("the harness's JSON")
}

/// The single sign-on call's time plus Chromium's, from going to the link
/// to the console page's title saying connected (tests/browser/console.mjs).
fn sso_to_connected(session: &Path, p: &Value) -> Result<Vec<Duration>, String> {
    let driver = repo().join("tests/browser/console.mjs");
    if !Path::new("/usr/bin/chromium").exists()
        || !repo()
            .join("tests/browser/node_modules/playwright-core")
            .exists()
    {
        return Err("chromium or playwright-core is missing".into());
    }
    let mut opens = Vec::new();
    for _ in 0..OPENS {
        let began = Instant::now();
        let sso = call(session, "ServiceSingleSignOn", p);
        let took = began.elapsed();
        let url = sso["result"]["redirectTo"]
            .as_str()
            .ok_or_else(|| format!("no redirectTo: {sso}"))?
            .to_string();
        let out = Command::new("timeout")
            .args(["60", "node"])
            .arg(&driver)
            .args(["--url", &url, "--expect-colour", SIM_BANNER])
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        if report["ok"] != true {
            return Err(format!("console.mjs: {}", report["error"]));
        }
        let page = report["timings"]["connected"].as_u64().unwrap_or(0)
            - report["timings"]["launched"].as_u64().unwrap_or(0);
        opens.push(took + Duration::from_millis(page));
    }
    Ok(opens)
}
