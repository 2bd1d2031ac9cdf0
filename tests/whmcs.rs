//! The WHMCS module (examples/whmcs/modules/servers/hcc/) loaded as WHMCS
//! loads it: tests/whmcs/harness.php defines `WHMCS`, calls
//! `hcc_Function($params)` with WHMCS's documented parameters and records
//! what WHMCS itself would receive (logModuleCall, localAPI, tblhosting),
//! run by php-cli against a real `hcc serve`, `hcc worker` and `hcc sim`.
//! The whole life of a service, the console its single sign-on opens in
//! Chromium, wrong keys and an unreachable hcc; the client-area template
//! rendered by Smarty (Debian's smarty4) and clicked in Chromium; what 100
//! client-area views cost at Hetzner.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::browser::{node, on_a_real_console, shots};
use crate::support::serve::{Keys, Serve};
use crate::test::{Env, Sim, Worker, eventually, require};

const PASSWORD: &str = "whmcs!pw";
const DOMAIN: &str = "web1.example.com";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// php-cli with ext-curl, as scripts/test installs them; a failure under
/// CI, a SKIP otherwise.
fn php_ready() -> bool {
    let ready = Command::new("php")
        .args(["-r", "exit(extension_loaded('curl') ? 0 : 1);"])
        .status()
        .is_ok_and(|s| s.success());
    require(
        ready,
        "php-cli with ext-curl is missing (scripts/test installs php-cli and php-curl)",
    )
}

/// WHMCS's `$params` for service 42 on a WHMCS server record pointing at
/// `addr` (`host:port`) with `key` as its Access Hash.
fn params(addr: &str, key: &str) -> Value {
    let (host, port) = addr.rsplit_once(':').unwrap();
    json!({
        "serviceid": 42, "userid": 7, "pid": 3, "domain": DOMAIN,
        "username": "", "password": "", "producttype": "server",
        "moduletype": "hcc", "status": "Active",
        "configoption1": "cx22", "configoption2": "debian-12", "configoption3": "fsn1",
        "configoption4": "",
        "configoptions": {}, "customfields": {},
        "clientsdetails": {"userid": 7, "firstname": "Ada", "email": "ada@example.com", "language": "english"},
        "server": true, "serverid": 1, "serverip": "", "serverhostname": host,
        "serverport": port, "serversecure": false, "serverusername": "",
        "serverpassword": "", "serveraccesshash": key, "serverhttpprefix": "http",
    })
}

/// One call of the module through the harness: what it printed. Fails the
/// test when an exception escaped the module, PHP warned, or a secret in
/// `secrets` (the API key, passwords) reached WHMCS's module log.
fn call(dir: &Path, function: &str, params: &Value, extra: Value, secrets: &[&str]) -> Value {
    let mut request = json!({
        "function": function, "params": params,
        "session": dir.to_str().unwrap(),
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        request[k] = v.clone();
    }
    let mut child = Command::new("php")
        .arg(repo().join("tests/whmcs/harness.php"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run php");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{function}: no JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{function}: {answer}");
    assert_eq!(answer["threw"], Value::Null, "{function} threw: {answer}");
    assert_eq!(answer["warnings"], json!([]), "{function} warned");
    // What WHMCS writes to its module log (`replace` is the list of what
    // it masks, which holds the secrets by design).
    for entry in answer["log"].as_array().unwrap() {
        for field in ["action", "request", "response", "processed"] {
            let text = entry[field].as_str().unwrap_or("");
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                assert!(
                    !text.contains(secret),
                    "{function}: a secret reached the module log's {field}: {}",
                    entry["action"]
                );
            }
        }
    }
    answer
}

/// What WHMCS's module log got from a call (requests and responses).
fn logged(answer: &Value) -> String {
    answer["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["action"], e["request"], e["response"], e["processed"]
            )
        })
        .collect()
}

/// The harness's dir (PHP's session, kept across calls as WHMCS's is).
fn session_dir(env: &Env) -> PathBuf {
    let dir = env.path("whmcs-session");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The password stored with localAPI('UpdateClientProduct'), if any.
fn stored_password(answer: &Value) -> Option<String> {
    answer["localapi"]
        .as_array()?
        .iter()
        .filter(|c| c["command"] == "UpdateClientProduct")
        .find_map(|c| c["values"]["servicepassword"].as_str().map(String::from))
}

fn sim_server(sim: &Sim, name: &str) -> Option<Value> {
    let found = sim.get(&format!("/servers?name={name}")).json();
    found["servers"].as_array()?.first().cloned()
}

/// hcc serve, its worker and a sim with a real VNC console; the keys.
struct Whmcs {
    _vnc: crate::support::vnc::VncServer,
    sim: Sim,
    env: Env,
    keys: Keys,
    serve: Serve,
    _worker: Worker,
}

fn whmcs() -> Option<Whmcs> {
    if !php_ready() {
        return None;
    }
    let (vnc, sim, env, keys) =
        on_a_real_console(PASSWORD, &["--servers", "1", "--action-ms", "50"])?;
    let worker = Worker::start(&env, &sim, "3600");
    let serve = Serve::start(&env, &sim, &[]);
    Some(Whmcs {
        _vnc: vnc,
        sim,
        env,
        keys,
        serve,
        _worker: worker,
    })
}

#[test]
fn a_service_lives_its_whole_life_through_the_whmcs_module() {
    let Some(w) = whmcs() else { return };
    let dir = session_dir(&w.env);
    let p = params(&w.serve.addr, &w.keys.admin);
    let key = w.keys.admin.as_str();
    let call =
        |function: &str, params: &Value, extra: Value| call(&dir, function, params, extra, &[key]);

    let meta = call("MetaData", &p, json!({}))["result"].clone();
    assert_eq!(meta["APIVersion"], "1.1");
    assert_eq!(meta["RequiresServer"], true);
    assert!(meta["ServiceSingleSignOnLabel"].is_string(), "{meta}");
    let options = call("ConfigOptions", &p, json!({}))["result"].clone();
    assert_eq!(options["server_type"]["Type"], "dropdown", "{options}");
    assert!(options["image"]["Options"]["debian-12"].is_string());
    assert!(options["location"]["Options"]["fsn1"].is_string());
    assert_eq!(
        call("TestConnection", &p, json!({}))["result"],
        json!({"success": true, "error": ""})
    );

    // Create: named after the domain, with the product's options; returns
    // when hcc's worker has it running; the root password is stored as
    // the service's, never logged.
    let began = Instant::now();
    let created = call("CreateAccount", &p, json!({}));
    let create_ms = began.elapsed().as_millis();
    assert_eq!(created["result"], "success", "{created}");
    let root = stored_password(&created).expect("the root password stored");
    assert_eq!(root.len(), 20, "{root}");
    assert!(!logged(&created).contains(&root));
    let remote = sim_server(&w.sim, DOMAIN).expect("the server at the sim");
    assert_eq!(remote["status"], "running");
    assert_eq!(remote["server_type"]["name"], "cx22");
    assert_eq!(remote["image"]["name"], "debian-12");
    assert_eq!(remote["datacenter"]["location"]["name"], "fsn1");
    let update = &created["localapi"][0]["values"];
    assert_eq!(update["domain"], DOMAIN);
    assert!(
        update["dedicatedip"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty())
    );
    eprintln!("MEASURE whmcs CreateAccount -> running: {create_ms} ms");

    // The admin's service tab, and the client area's overview.
    let tab = call("AdminServicesTabFields", &p, json!({}))["result"].clone();
    let tab_text = tab.to_string();
    assert!(
        tab_text.contains(DOMAIN) && tab_text.contains("running"),
        "{tab}"
    );
    let area = call("ClientArea", &p, json!({}))["result"].clone();
    assert_eq!(area["tabOverviewReplacementTemplate"], "templates/overview");
    let vars = &area["templateVariables"];
    assert_eq!(vars["server"]["name"], DOMAIN, "{vars}");
    assert_eq!(vars["server"]["status"], "running");
    assert!(
        vars["images"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["name"] == "debian-13"))
    );
    assert_eq!(vars["graphs"].as_array().map(Vec::len), Some(2), "{vars}");

    // Single sign-on: a one-time console link, connected in Chromium.
    let began = Instant::now();
    let sso = call("ServiceSingleSignOn", &p, json!({}))["result"].clone();
    let sso_ms = began.elapsed().as_millis();
    assert_eq!(sso["success"], true, "{sso}");
    let url = sso["redirectTo"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("http://{}/c/", w.serve.addr)),
        "{url}"
    );
    let shot = shots().join("whmcs-sso.png");
    let report = node(
        "console.mjs",
        &[
            "--url",
            &url,
            "--expect-colour",
            crate::support::vnc::ROOT_COLOUR,
            "--screenshot",
            shot.to_str().unwrap(),
        ],
        || "the WHMCS single sign-on link".into(),
    );
    let page_ms = report["timings"]["connected"].as_u64().unwrap()
        - report["timings"]["launched"].as_u64().unwrap();
    eprintln!(
        "MEASURE whmcs SSO click -> connected console: {} ms (SSO call {sso_ms} ms, page {page_ms} ms)",
        sso_ms as u64 + page_ms
    );
    let admin_sso = call("AdminSingleSignOn", &p, json!({}))["result"].clone();
    assert_eq!(admin_sso["success"], true, "{admin_sso}");

    // Client-area buttons: reboot; rebuild with the picked image (a new
    // password, stored and shown once); reset the root password.
    let id = w.sim.get(&format!("/servers?name={DOMAIN}")).json()["servers"][0]["id"]
        .as_i64()
        .unwrap();
    let buttons = call("ClientAreaCustomButtonArray", &p, json!({}))["result"].clone();
    for f in ["reboot", "rebuild", "resetpassword", "start", "poweroff"] {
        assert!(
            buttons.as_object().unwrap().values().any(|v| v == f),
            "{buttons}"
        );
    }
    assert_eq!(call("reboot", &p, json!({}))["result"], "success");
    let rebuilt = call("rebuild", &p, json!({"post": {"hcc_image": "debian-13"}}));
    assert_eq!(rebuilt["result"], "success", "{rebuilt}");
    let rebuilt_password = stored_password(&rebuilt).expect("the rebuild's password stored");
    assert_ne!(rebuilt_password, root);
    assert_eq!(
        w.sim.get(&format!("/servers/{id}")).json()["server"]["image"]["name"],
        "debian-13"
    );
    let shown = call("ClientArea", &p, json!({}))["result"]["templateVariables"].clone();
    assert_eq!(
        shown["shown_password"]["password"],
        rebuilt_password.as_str()
    );
    let again = call("ClientArea", &p, json!({}))["result"]["templateVariables"].clone();
    assert_eq!(again["shown_password"], "", "a password is shown once");
    assert_eq!(
        call("rebuild", &p, json!({}))["result"],
        "Pick the image to reinstall with."
    );
    let reset = call("resetpassword", &p, json!({}));
    assert_eq!(reset["result"], "success", "{reset}");
    let reset_password = stored_password(&reset).expect("the reset password stored");
    assert_ne!(reset_password, rebuilt_password);
    assert!(!logged(&reset).contains(&reset_password));
    let changed = call("ChangePassword", &p, json!({}))["result"].clone();
    assert!(
        changed
            .as_str()
            .is_some_and(|s| s.contains("Hetzner cannot set a chosen root password")),
        "{changed}"
    );
    let rdns = call(
        "rdns",
        &p,
        json!({"post": {"hcc_ip": update["dedicatedip"], "hcc_hostname": "mail.example.com"}}),
    );
    assert_eq!(rdns["result"], "success", "{rdns}");

    // Suspend: consoles suspended (links refused), the server powered off.
    let suspended = call(
        "SuspendAccount",
        &{
            let mut s = p.clone();
            s["suspendreason"] = json!("Overdue on Payment");
            s
        },
        json!({}),
    );
    assert_eq!(suspended["result"], "success", "{suspended}");
    assert_eq!(sim_server(&w.sim, DOMAIN).unwrap()["status"], "off");
    let refused = call("ServiceSingleSignOn", &p, json!({}))["result"].clone();
    assert_eq!(refused["success"], false, "{refused}");
    assert!(
        refused["errorMsg"]
            .as_str()
            .is_some_and(|m| m.starts_with("hcc: ") && m.contains("suspended")),
        "{refused}"
    );
    let link = w.serve.post(
        &format!("/api/v1/servers/{DOMAIN}/console-link"),
        &w.keys.admin,
    );
    assert_eq!(link.status, 403, "{}", link.body);

    // Unsuspend: consoles back, the server running.
    assert_eq!(call("UnsuspendAccount", &p, json!({}))["result"], "success");
    assert_eq!(sim_server(&w.sim, DOMAIN).unwrap()["status"], "running");
    assert_eq!(
        call("ServiceSingleSignOn", &p, json!({}))["result"]["success"],
        true
    );

    // Change package: the new product's type.
    let mut bigger = p.clone();
    bigger["configoption1"] = json!("cx32");
    let changed = call("ChangePackage", &bigger, json!({}));
    assert_eq!(changed["result"], "success", "{changed}");
    assert!(eventually(Duration::from_secs(30), || {
        sim_server(&w.sim, DOMAIN).unwrap()["server_type"]["name"] == "cx32"
    }));
    assert_eq!(call("Renew", &p, json!({}))["result"], "success");

    // Usage: traffic into WHMCS's bandwidth figures (tblhosting, in MB).
    let rows = json!([
        {"id": 42, "server": 1, "domain": DOMAIN, "domainstatus": "Active", "bwusage": 0, "bwlimit": 0},
        {"id": 43, "server": 2, "domain": "other.example.com", "domainstatus": "Active", "bwusage": 0, "bwlimit": 0},
    ]);
    let usage = call("UsageUpdate", &p, json!({"tblhosting": rows}));
    assert_eq!(usage["result"], "success", "{usage}");
    let row = &usage["tblhosting"][0];
    assert!(row["bwlimit"].as_f64().is_some_and(|l| l > 0.0), "{usage}");
    assert!(
        row["bwusage"].is_number() && row["lastupdate"].is_string(),
        "{usage}"
    );
    assert!(
        usage["tblhosting"][1]["lastupdate"].is_null(),
        "another server's service untouched"
    );

    // Terminate: the server is gone, and so is hcc's record of it.
    assert_eq!(call("TerminateAccount", &p, json!({}))["result"], "success");
    assert!(sim_server(&w.sim, DOMAIN).is_none());
    assert_eq!(
        w.serve
            .get(&format!("/api/v1/servers/{DOMAIN}"), &w.keys.admin)
            .status,
        404
    );
    // Terminating again has nothing to do.
    assert_eq!(call("TerminateAccount", &p, json!({}))["result"], "success");
}

#[test]
fn a_service_without_a_hostname_is_named_by_its_id_with_hccs_prefix() {
    let Some(w) = whmcs() else { return };
    let dir = session_dir(&w.env);
    w.env.ok(&["config", "set", "prefix", "cust-"]);
    let mut serve = Serve::start(&w.env, &w.sim, &[]);
    let mut p = params(&serve.addr, &w.keys.admin);
    p["domain"] = json!("Not a hostname!");
    // The customer's configurable option overrides the product's location.
    p["configoptions"] = json!({"Location": "hel1"});
    let created = call(&dir, "CreateAccount", &p, json!({}), &[&w.keys.admin]);
    assert_eq!(created["result"], "success", "{created}");
    let remote = sim_server(&w.sim, "cust-svc42").expect("cust-svc42 at the sim");
    assert_eq!(remote["datacenter"]["location"]["name"], "hel1");
    assert_eq!(created["localapi"][0]["values"]["domain"], "cust-svc42");
    serve.stop();
}

#[test]
fn a_wrong_key_a_small_key_and_an_unreachable_hcc_give_whmcs_shaped_errors() {
    if !php_ready() {
        return;
    }
    let (sim, env, keys, serve) = crate::support::serve::serving(&["--servers", "1"]);
    let _ = &sim;
    let dir = session_dir(&env);
    let wrong = params(&serve.addr, "hcc_wrongkey");
    let secrets = ["hcc_wrongkey"];
    let tested = call(&dir, "TestConnection", &wrong, json!({}), &secrets)["result"].clone();
    assert_eq!(tested["success"], false);
    assert!(
        tested["error"]
            .as_str()
            .unwrap()
            .contains("unknown or revoked API key"),
        "{tested}"
    );
    let created = call(&dir, "CreateAccount", &wrong, json!({}), &secrets)["result"].clone();
    assert!(
        created
            .as_str()
            .is_some_and(|s| s.contains("unknown or revoked API key")),
        "{created}"
    );
    let sso = call(&dir, "ServiceSingleSignOn", &wrong, json!({}), &secrets)["result"].clone();
    assert_eq!(sso["success"], false);
    assert!(
        sso["errorMsg"]
            .as_str()
            .unwrap()
            .contains("unknown or revoked")
    );
    let area = call(&dir, "ClientArea", &wrong, json!({}), &secrets)["result"].clone();
    assert!(
        area["templateVariables"]["error"]
            .as_str()
            .unwrap()
            .contains("unknown or revoked"),
        "{area}"
    );
    // The whole module log of a failed call is masked as well.
    let logged = call(&dir, "TestConnection", &wrong, json!({}), &secrets);
    assert!(
        logged["log"][0]["replace"]
            .as_array()
            .is_some_and(|r| r.iter().any(|s| s == "hcc_wrongkey")),
        "{logged}"
    );

    // A key of a smaller scope works but cannot create: said.
    let small = params(&serve.addr, &keys.act);
    let tested = call(&dir, "TestConnection", &small, json!({}), &[&keys.act])["result"].clone();
    assert_eq!(tested["success"], false);
    assert!(
        tested["error"].as_str().unwrap().contains("scope `act`"),
        "{tested}"
    );

    // No worker runs here: TestConnection says commands would wait.
    let admin = params(&serve.addr, &keys.admin);
    let tested = call(&dir, "TestConnection", &admin, json!({}), &[&keys.admin])["result"].clone();
    assert_eq!(tested["success"], false);
    assert!(
        tested["error"].as_str().unwrap().contains("no hcc worker"),
        "{tested}"
    );

    // Nothing listens: every function answers in WHMCS's shape.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let gone = params(&addr, &keys.admin);
    let s = [keys.admin.as_str()];
    let tested = call(&dir, "TestConnection", &gone, json!({}), &s)["result"].clone();
    assert_eq!(tested["success"], false);
    assert!(
        tested["error"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{tested}"
    );
    for function in [
        "CreateAccount",
        "SuspendAccount",
        "UnsuspendAccount",
        "TerminateAccount",
        "ChangePackage",
        "reboot",
    ] {
        let said = call(&dir, function, &gone, json!({}), &s)["result"].clone();
        assert!(
            said.as_str()
                .is_some_and(|m| m.contains("cannot be reached")),
            "{function}: {said}"
        );
    }
    let sso = call(&dir, "AdminSingleSignOn", &gone, json!({}), &s)["result"].clone();
    assert_eq!(sso["success"], false, "{sso}");
    let options = call(&dir, "ConfigOptions", &gone, json!({}), &s)["result"].clone();
    assert_eq!(options["server_type"]["Type"], "text", "{options}");
    let fields = call(&dir, "AdminServicesTabFields", &gone, json!({}), &s)["result"].clone();
    assert!(fields.to_string().contains("cannot be reached"), "{fields}");
    let usage = call(
        &dir,
        "UsageUpdate",
        &gone,
        json!({"tblhosting": [{"id": 42, "server": 1, "domain": DOMAIN, "domainstatus": "Active"}]}),
        &s,
    );
    assert!(usage["result"].is_string(), "{usage}");
}

/// `php -S` serving tests/whmcs/clientarea.php (WHMCS's client area,
/// standing in) for the service whose `$params` are in `params`; stopped
/// when dropped.
struct ClientArea {
    child: std::process::Child,
    addr: String,
}

impl ClientArea {
    fn start(env: &Env, params: &Value) -> ClientArea {
        let file = env.path("whmcs-params.json");
        std::fs::write(&file, params.to_string()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(env.path("clientarea.log")).unwrap();
        let child = Command::new("php")
            .args(["-S", &addr])
            .arg(repo().join("tests/whmcs/clientarea.php"))
            .env("HCC_WHMCS_PARAMS", &file)
            .env("TMPDIR", env.home())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("php -S");
        let up = eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        assert!(up, "php -S never listened on {addr}");
        ClientArea { child, addr }
    }
}

impl Drop for ClientArea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_client_area_template_rendered_by_smarty_works_in_chromium() {
    if !require(
        Path::new("/usr/share/php/smarty4/Smarty.class.php").exists(),
        "Smarty is missing (scripts/test installs smarty4)",
    ) {
        return;
    }
    let Some(w) = whmcs() else { return };
    let dir = session_dir(&w.env);
    let p = params(&w.serve.addr, &w.keys.admin);
    let created = call(&dir, "CreateAccount", &p, json!({}), &[&w.keys.admin]);
    assert_eq!(created["result"], "success", "{created}");
    let area = ClientArea::start(&w.env, &p);
    let shot = shots().join("whmcs-client-area.png");
    let report = node(
        "whmcs.mjs",
        &[
            "--url",
            &format!(
                "http://{}/clientarea.php?action=productdetails&id=42",
                area.addr
            ),
            "--image",
            "ubuntu-24.04",
            "--image-text",
            "Ubuntu 24.04",
            "--hostname",
            "mail.example.com",
            "--screenshot",
            shot.to_str().unwrap(),
        ],
        || {
            format!(
                "the client area; its log: {}",
                std::fs::read_to_string(w.env.path("clientarea.log")).unwrap_or_default()
            )
        },
    );
    assert_eq!(report["name"], DOMAIN, "{report}");
    // What the page did happened at the sim.
    let remote = sim_server(&w.sim, DOMAIN).unwrap();
    assert_eq!(remote["image"]["name"], "ubuntu-24.04");
    assert_eq!(remote["status"], "running");
    assert_eq!(remote["public_net"]["ipv4"]["ip"], report["rdns"]["ip"]);
    assert_eq!(
        remote["public_net"]["ipv4"]["dns_ptr"], "mail.example.com",
        "{remote}"
    );
    let actions = w.sim.stats()["by_route"].clone();
    assert!(actions.to_string().contains("reboot"), "{actions}");
    eprintln!(
        "MEASURE whmcs client area Console click -> connected console: {} ms",
        report["clickToConnectedMs"]
    );
}

/// The routes `hcc sim` answered between two of its `by_route` counts.
fn requests_between(before: &Value, after: &Value) -> Vec<(String, u64)> {
    after
        .as_object()
        .unwrap()
        .iter()
        .map(|(route, n)| {
            let was = before[route].as_u64().unwrap_or(0);
            (route.clone(), n.as_u64().unwrap_or(0) - was)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn a_hundred_client_area_views_cost_hetzner_only_what_hcc_needs_anyway() {
    let Some(w) = whmcs() else { return };
    let dir = session_dir(&w.env);
    let p = params(&w.serve.addr, &w.keys.admin);
    let created = call(&dir, "CreateAccount", &p, json!({}), &[&w.keys.admin]);
    assert_eq!(created["result"], "success", "{created}");
    let before = w.sim.stats()["by_route"].clone();
    let began = Instant::now();
    for _ in 0..100 {
        let area = call(&dir, "ClientArea", &p, json!({}), &[&w.keys.admin]);
        let vars = &area["result"]["templateVariables"];
        assert_eq!(vars["server"]["status"], "running", "{vars}");
        assert!(
            vars["graphs"][0]["lines"][0]["points"].is_string(),
            "{vars}"
        );
    }
    let took = began.elapsed();
    assert!(took < Duration::from_secs(60), "100 views took {took:?}");
    let spent = requests_between(&before, &w.sim.stats()["by_route"]);
    let total: u64 = spent.iter().map(|(_, n)| n).sum();
    eprintln!(
        "MEASURE whmcs 100 client-area views in {} ms: {total} Hetzner requests {spent:?}",
        took.as_millis()
    );
    // The page reads hcc's table (no Hetzner request), its image list
    // from hcc's catalog (fetched when the service was created, cached 5
    // minutes) and its graphs' 24h series, cached by hcc for the range's
    // 5-minute step: at most two fetches when a step begins during the run.
    for (route, n) in &spent {
        assert_eq!(route, "GET /servers/{id}/metrics", "{spent:?}");
        assert!(*n <= 2, "{spent:?}");
    }
}
