//! `hcc sim`'s server actions beyond power (rebuild, passwords, rescue,
//! change of type, reverse DNS, ISOs, images, backups, protection) and
//! metrics: driven by the official `hcloud` CLI, their errors over plain
//! HTTP, and the rescue system and rebuilt image on the simulated console.

use std::time::Duration;

use serde_json::{Value, json};

use crate::test::{Sim, eventually, require_program};

/// Waits for action `answer["action"]` to end; its final status.
fn finish(sim: &Sim, answer: &Value) -> String {
    let id = &answer["action"]["id"];
    assert!(id.is_u64(), "no action in {answer}");
    let mut status = String::new();
    eventually(Duration::from_secs(10), || {
        status = sim.get(&format!("/actions/{id}")).json()["action"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        status != "running"
    });
    status
}

/// `POST /servers/{id}/actions/{verb}`: (HTTP status, body).
fn act(sim: &Sim, id: u64, verb: &str, body: Value) -> (u16, Value) {
    let answer = sim.api(
        "POST",
        &format!("/servers/{id}/actions/{verb}"),
        Some(&body.to_string()),
    );
    (answer.status, answer.json())
}

/// An action that must start (201) and succeed.
fn done(sim: &Sim, id: u64, verb: &str, body: Value) -> Value {
    let (status, answer) = act(sim, id, verb, body);
    assert_eq!(status, 201, "{verb}: {answer}");
    assert_eq!(finish(sim, &answer), "success", "{verb}");
    answer
}

fn server(sim: &Sim, id: u64) -> Value {
    sim.get(&format!("/servers/{id}")).json()["server"].clone()
}

fn id_of(sim: &Sim, name: &str) -> u64 {
    sim.get(&format!("/servers?name={name}")).json()["servers"][0]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no server {name}"))
}

fn error_code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or_default()
}

/// The text rows of the server's simulated console.
fn screen(sim: &Sim, id: u64) -> Vec<String> {
    let console = sim
        .control("GET", &format!("/_sim/consoles/{id}"), None)
        .json();
    serde_json::from_value(console["screen"].clone()).expect("screen rows")
}

#[test]
fn the_hcloud_cli_drives_the_server_actions() {
    if !require_program("hcloud") {
        return;
    }
    let sim = Sim::start(&["--servers", "2", "--action-ms", "50"]);
    let run = |args: &[&str]| sim.hcloud(args);
    let hcloud = |args: &[&str]| sim.hcloud_ok(args);
    let describe = |name: &str| -> Value {
        serde_json::from_str(&hcloud(&["server", "describe", name, "-o", "json"]))
            .expect("server describe -o json is JSON")
    };
    let s = "srv-00001";
    let before = describe(s);
    assert_eq!(before["rescue_enabled"], false);
    assert_eq!(before["primary_disk_size"], 40);
    assert_eq!(
        before["protection"],
        json!({"delete": false, "rebuild": false})
    );
    assert_eq!(before["backup_window"], Value::Null);
    assert_eq!(before["iso"], Value::Null);

    // Rebuild.
    let out = hcloud(&["server", "rebuild", "--image", "ubuntu-24.04", s]);
    assert!(out.contains("rebuilt"), "{out}");
    let d = describe(s);
    assert_eq!(d["image"]["name"], "ubuntu-24.04");
    assert_eq!(d["status"], "running");

    // Root password.
    let out = hcloud(&["server", "reset-password", s]);
    assert!(out.to_lowercase().contains("password"), "{out}");

    // Rescue.
    let out = hcloud(&["server", "enable-rescue", s]);
    assert!(out.to_lowercase().contains("password"), "{out}");
    assert_eq!(describe(s)["rescue_enabled"], true);
    hcloud(&["server", "disable-rescue", s]);
    assert_eq!(describe(s)["rescue_enabled"], false);

    // Reverse DNS, IPv4 and an address of the IPv6 /64.
    let ipv4 = d["public_net"]["ipv4"]["ip"].as_str().unwrap().to_string();
    assert!(
        d["public_net"]["ipv4"]["dns_ptr"]
            .as_str()
            .unwrap()
            .ends_with(".clients.your-server.de")
    );
    hcloud(&[
        "server",
        "set-rdns",
        "--ip",
        &ipv4,
        "--hostname",
        "web.example.com",
        s,
    ]);
    let v6 = d["public_net"]["ipv6"]["ip"]
        .as_str()
        .unwrap()
        .replace("::/64", "::1");
    hcloud(&[
        "server",
        "set-rdns",
        "--ip",
        &v6,
        "--hostname",
        "v6.example.com",
        s,
    ]);
    let d = describe(s);
    assert_eq!(d["public_net"]["ipv4"]["dns_ptr"], "web.example.com");
    assert_eq!(
        d["public_net"]["ipv6"]["dns_ptr"],
        json!([{"ip": v6, "dns_ptr": "v6.example.com"}])
    );

    // ISOs.
    hcloud(&[
        "server",
        "attach-iso",
        s,
        "ubuntu-24.04.1-live-server-amd64.iso",
    ]);
    assert_eq!(
        describe(s)["iso"]["name"],
        "ubuntu-24.04.1-live-server-amd64.iso"
    );
    hcloud(&["server", "detach-iso", s]);
    assert_eq!(describe(s)["iso"], Value::Null);

    // A snapshot, listed, then rebuilt from.
    let out = hcloud(&[
        "server",
        "create-image",
        "--type",
        "snapshot",
        "--description",
        "before-upgrade",
        "--label",
        "env=test",
        s,
    ]);
    assert!(out.contains("created"), "{out}");
    let snapshots: Value = serde_json::from_str(&hcloud(&[
        "image", "list", "--type", "snapshot", "-o", "json",
    ]))
    .expect("image list -o json is JSON");
    let snapshots = snapshots.as_array().expect("a list");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let snapshot = &snapshots[0];
    assert_eq!(snapshot["description"], "before-upgrade");
    assert_eq!(snapshot["created_from"]["name"], s);
    assert_eq!(snapshot["labels"]["env"], "test");
    let by_label = hcloud(&["image", "list", "-l", "env=test"]);
    assert!(by_label.contains("before-upgrade"), "{by_label}");
    let snapshot_id = snapshot["id"].to_string();
    hcloud(&["server", "rebuild", "--image", &snapshot_id, s]);
    assert_eq!(describe(s)["image"]["type"], "snapshot");

    // Backups.
    hcloud(&["server", "enable-backup", s]);
    assert_eq!(describe(s)["backup_window"], "22-02");
    hcloud(&["server", "disable-backup", s]);
    assert_eq!(describe(s)["backup_window"], Value::Null);

    // Change of type: off first; --keep-disk keeps the way back.
    hcloud(&["server", "poweroff", s]);
    hcloud(&["server", "change-type", "--keep-disk", s, "cpx21"]);
    let d = describe(s);
    assert_eq!(d["server_type"]["name"], "cpx21");
    assert_eq!(d["primary_disk_size"], 40);
    hcloud(&["server", "change-type", s, "cpx11"]);
    assert_eq!(describe(s)["server_type"]["name"], "cpx11");
    hcloud(&["server", "change-type", s, "cpx21"]);
    let d = describe(s);
    assert_eq!(d["server_type"]["name"], "cpx21");
    assert_eq!(d["primary_disk_size"], 80);
    // Now the disk is too big to go back.
    let back = run(&["server", "change-type", s, "cpx11"]);
    assert!(!back.status.success());
    assert_eq!(describe(s)["server_type"]["name"], "cpx21");

    // Metrics.
    let out = hcloud(&[
        "server",
        "metrics",
        "--type",
        "cpu",
        "--start",
        "2026-01-01T00:00:00Z",
        "--end",
        "2026-01-01T01:00:00Z",
        "-o",
        "json",
        s,
    ]);
    let metrics: Value = serde_json::from_str(&out).expect("metrics -o json is JSON");
    let values = metrics["time_series"]["cpu"]["values"]
        .as_array()
        .or_else(|| metrics["metrics"]["time_series"]["cpu"]["values"].as_array())
        .unwrap_or_else(|| panic!("no cpu series in {metrics}"));
    assert!(!values.is_empty());

    // Protection: a protected server is not deleted.
    let p = "srv-00002";
    hcloud(&["server", "enable-protection", p, "delete", "rebuild"]);
    assert_eq!(
        describe(p)["protection"],
        json!({"delete": true, "rebuild": true})
    );
    let refused = run(&["server", "delete", p]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("protected"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    hcloud(&["server", "disable-protection", p, "delete", "rebuild"]);
    assert_eq!(describe(p)["protection"]["delete"], false);
    hcloud(&["server", "delete", p]);
}

#[test]
fn the_actions_refuse_as_the_api_does() {
    let sim = Sim::start(&["--servers", "2", "--action-ms", "300"]);
    let id = id_of(&sim, "srv-00001");

    // A running server keeps its type.
    let (status, answer) = act(
        &sim,
        id,
        "change_type",
        json!({"server_type": "cpx21", "upgrade_disk": true}),
    );
    assert_eq!((status, error_code(&answer)), (409, "server_not_stopped"));
    assert_eq!(server(&sim, id)["server_type"]["name"], "cpx11");

    done(&sim, id, "poweroff", json!({}));
    done(
        &sim,
        id,
        "change_type",
        json!({"server_type": "cpx21", "upgrade_disk": true}),
    );
    assert_eq!(server(&sim, id)["primary_disk_size"], 80);
    let (status, answer) = act(
        &sim,
        id,
        "change_type",
        json!({"server_type": "cpx11", "upgrade_disk": false}),
    );
    assert_eq!((status, error_code(&answer)), (400, "invalid_server_type"));
    let (status, answer) = act(
        &sim,
        id,
        "change_type",
        json!({"server_type": "cax11", "upgrade_disk": false}),
    );
    assert_eq!((status, error_code(&answer)), (400, "invalid_server_type"));
    let (status, answer) = act(
        &sim,
        id,
        "change_type",
        json!({"server_type": "nope", "upgrade_disk": false}),
    );
    assert_eq!((status, error_code(&answer)), (400, "invalid_input"));

    // Reverse DNS for someone else's addresses.
    for ip in ["10.9.9.9", "2001:db8:ffff:1::1", "not an ip"] {
        let (status, answer) = act(
            &sim,
            id,
            "change_dns_ptr",
            json!({"ip": ip, "dns_ptr": "x.example.com"}),
        );
        assert_eq!(
            (status, error_code(&answer)),
            (400, "invalid_input"),
            "{ip}"
        );
    }
    // Set, then reset to the default with null.
    let ipv4 = server(&sim, id)["public_net"]["ipv4"]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let default = server(&sim, id)["public_net"]["ipv4"]["dns_ptr"].clone();
    done(
        &sim,
        id,
        "change_dns_ptr",
        json!({"ip": ipv4, "dns_ptr": "a.example.com"}),
    );
    assert_eq!(
        server(&sim, id)["public_net"]["ipv4"]["dns_ptr"],
        "a.example.com"
    );
    done(
        &sim,
        id,
        "change_dns_ptr",
        json!({"ip": ipv4, "dns_ptr": null}),
    );
    assert_eq!(server(&sim, id)["public_net"]["ipv4"]["dns_ptr"], default);

    // Protection: both levels alike; then rebuild and delete refused.
    let (status, answer) = act(
        &sim,
        id,
        "change_protection",
        json!({"delete": true, "rebuild": false}),
    );
    assert_eq!((status, error_code(&answer)), (400, "invalid_input"));
    done(
        &sim,
        id,
        "change_protection",
        json!({"delete": true, "rebuild": true}),
    );
    let (status, answer) = act(&sim, id, "rebuild", json!({"image": "debian-12"}));
    assert_eq!((status, error_code(&answer)), (403, "protected"));
    let deleted = sim.api("DELETE", &format!("/servers/{id}"), None);
    assert_eq!(
        (deleted.status, error_code(&deleted.json())),
        (403, "protected")
    );

    // Rebuild: a known image; `rebuilding` and locked while it runs.
    let other = id_of(&sim, "srv-00002");
    let (status, answer) = act(&sim, other, "rebuild", json!({"image": "windows-95"}));
    assert_eq!((status, error_code(&answer)), (400, "invalid_input"));
    let (status, rebuild) = act(&sim, other, "rebuild", json!({"image": "ubuntu-22.04"}));
    let answer = rebuild.clone();
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["root_password"].as_str().map(str::len), Some(20));
    assert_eq!(answer["action"]["command"], "rebuild_server");
    let during = server(&sim, other);
    assert_eq!(
        (during["status"].as_str(), during["locked"].as_bool()),
        (Some("rebuilding"), Some(true))
    );
    let (status, answer) = act(&sim, other, "reset_password", json!({}));
    assert_eq!((status, error_code(&answer)), (423, "locked"));
    assert_eq!(finish(&sim, &rebuild), "success");
    assert!(eventually(
        Duration::from_secs(5),
        || server(&sim, other)["status"] == "running"
    ));
    assert_eq!(server(&sim, other)["image"]["name"], "ubuntu-22.04");
    let answer = done(&sim, other, "reset_password", json!({}));
    assert_eq!(answer["root_password"].as_str().map(str::len), Some(20));

    // ISOs: the catalogue and its filters; an unknown one refused.
    let isos = sim.get("/isos").json();
    assert!(isos["isos"].as_array().unwrap().len() >= 4, "{isos}");
    assert_eq!(isos["meta"]["pagination"]["page"], 1);
    let arm = sim.get("/isos?architecture=arm").json();
    assert!(
        arm["isos"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["architecture"] == "arm")
    );
    let named = sim.get("/isos?name=FreeBSD-11.0-RELEASE-amd64-dvd1").json();
    assert_eq!(named["isos"][0]["type"], "public");
    assert!(named["isos"][0]["deprecation"]["unavailable_after"].is_string());
    let iso_id = named["isos"][0]["id"].as_u64().unwrap();
    assert_eq!(
        sim.get(&format!("/isos/{iso_id}")).json()["iso"]["id"],
        iso_id
    );
    assert_eq!(sim.get("/isos/1").status, 404);
    let (status, answer) = act(&sim, other, "attach_iso", json!({"iso": "nope.iso"}));
    assert_eq!((status, error_code(&answer)), (400, "invalid_input"));
    done(&sim, other, "attach_iso", json!({"iso": iso_id}));
    assert_eq!(server(&sim, other)["iso"]["id"], iso_id);

    // Images: creating, then available; found by type and label; deleted.
    let (status, answer) = act(
        &sim,
        other,
        "create_image",
        json!({"description": "snap", "type": "snapshot", "labels": {"env": "ci"}}),
    );
    assert_eq!(status, 201, "{answer}");
    let image = answer["image"].clone();
    assert_eq!(image["status"], "creating");
    assert_eq!(image["type"], "snapshot");
    assert_eq!(image["created_from"]["id"], other);
    assert_eq!(image["disk_size"], 80);
    assert!(image["image_size"].as_f64().is_some_and(|s| s > 0.0));
    assert_eq!(finish(&sim, &answer), "success");
    let image_id = image["id"].as_u64().unwrap();
    assert_eq!(
        sim.get(&format!("/images/{image_id}")).json()["image"]["status"],
        "available"
    );
    let listed = sim
        .get("/images?type=snapshot&label_selector=env%3Dci")
        .json();
    assert_eq!(listed["images"][0]["id"], image_id);
    assert_eq!(
        sim.get("/images?type=snapshot&label_selector=env%3Dprod")
            .json()["images"],
        json!([])
    );
    assert_eq!(
        sim.api("DELETE", &format!("/images/{image_id}"), None)
            .status,
        204
    );
    assert_eq!(sim.get(&format!("/images/{image_id}")).status, 404);

    // An action that fails changes nothing.
    sim.control("POST", "/_sim/fail_next_action", None);
    let (status, answer) = act(&sim, other, "enable_backup", json!({}));
    assert_eq!(status, 201);
    assert_eq!(finish(&sim, &answer), "error");
    assert_eq!(server(&sim, other)["backup_window"], Value::Null);
    done(&sim, other, "enable_backup", json!({}));
    assert_eq!(server(&sim, other)["backup_window"], "22-02");

    // The stats count the new routes by name.
    let stats = sim.stats();
    for route in [
        "POST /servers/{id}/actions/change_type",
        "POST /servers/{id}/actions/rebuild",
        "GET /isos",
        "DELETE /images/{id}",
    ] {
        assert!(
            stats["by_route"][route].as_u64().is_some_and(|n| n > 0),
            "{route}"
        );
    }
}

#[test]
fn metrics_follow_start_end_and_step() {
    let sim = Sim::start(&["--servers", "1"]);
    let id = id_of(&sim, "srv-00001");
    let metrics = |query: &str| sim.get(&format!("/servers/{id}/metrics?{query}"));
    let points = |body: &Value, series: &str| {
        body["metrics"]["time_series"][series]["values"]
            .as_array()
            .map_or(0, Vec::len)
    };

    let hour = "start=2026-01-01T00:00:00Z&end=2026-01-01T01:00:00Z";
    let answer = metrics(&format!("type=cpu&{hour}&step=60"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(points(&body, "cpu"), 61);
    assert_eq!(body["metrics"]["step"], 60);
    assert_eq!(body["metrics"]["start"], "2026-01-01T00:00:00+00:00");
    let first = &body["metrics"]["time_series"]["cpu"]["values"][0];
    assert_eq!(first[0].as_f64(), Some(1_767_225_600.0));
    let value: f64 = first[1].as_str().unwrap().parse().unwrap();
    assert!((0.0..=100.0).contains(&value), "{value}");
    // The same question, the same answer.
    assert_eq!(metrics(&format!("type=cpu&{hour}&step=60")).json(), body);

    // Every series of a type; no step: at most 200 samples.
    let body = metrics(&format!("type=disk,network&{hour}")).json();
    for series in [
        "disk.0.iops.read",
        "disk.0.iops.write",
        "disk.0.bandwidth.read",
        "disk.0.bandwidth.write",
        "network.0.pps.in",
        "network.0.pps.out",
        "network.0.bandwidth.in",
        "network.0.bandwidth.out",
    ] {
        let n = points(&body, series);
        assert!((2..=200).contains(&n), "{series}: {n}");
    }
    assert!(body["metrics"]["time_series"]["cpu"].is_null());

    // A day at one second: capped at 500 samples, the step widened.
    let day = "start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z";
    let body = metrics(&format!("type=cpu&{day}&step=1")).json();
    assert!(points(&body, "cpu") <= 500, "{}", points(&body, "cpu"));
    assert!(body["metrics"]["step"].as_u64().unwrap() >= 86_400 / 499);

    for bad in [
        format!("type=gpu&{hour}"),
        hour.to_string(),
        "type=cpu&start=yesterday&end=2026-01-01T01:00:00Z".to_string(),
        "type=cpu&start=2026-01-01T01:00:00Z&end=2026-01-01T00:00:00Z".to_string(),
        format!("type=cpu&{hour}&step=0"),
    ] {
        let answer = metrics(&bad);
        assert_eq!(
            (answer.status, error_code(&answer.json())),
            (400, "invalid_input"),
            "{bad}"
        );
    }
    assert_eq!(
        sim.get(&format!("/servers/1/metrics?type=cpu&{hour}"))
            .status,
        404
    );
}

#[test]
fn the_console_shows_rescue_after_a_reboot_and_the_rebuilt_image() {
    let sim = Sim::start(&["--servers", "1", "--action-ms", "50"]);
    let id = id_of(&sim, "srv-00001");
    let normal = screen(&sim, id);
    assert!(!normal[0].contains("Rescue"), "{normal:?}");
    assert!(normal[4].starts_with("srv-00001 login:"), "{normal:?}");

    let answer = done(
        &sim,
        id,
        "enable_rescue",
        json!({"type": "linux64", "ssh_keys": []}),
    );
    assert_eq!(answer["root_password"].as_str().map(str::len), Some(20));
    assert_eq!(server(&sim, id)["rescue_enabled"], true);
    // Nothing changes before the next boot.
    assert_eq!(screen(&sim, id), normal);

    done(&sim, id, "reboot", json!({}));
    let rescue = screen(&sim, id);
    assert!(rescue[0].contains("Hetzner Rescue System"), "{rescue:?}");
    assert!(rescue[4].starts_with("root@rescue ~ #"), "{rescue:?}");
    // Rescue mode ends with the boot into it, as at Hetzner.
    assert_eq!(server(&sim, id)["rescue_enabled"], false);

    // Enabled and disabled again: the next reboot is the normal system.
    done(&sim, id, "enable_rescue", json!({}));
    done(&sim, id, "disable_rescue", json!({}));
    done(&sim, id, "reset", json!({}));
    assert_eq!(screen(&sim, id), normal);

    done(&sim, id, "rebuild", json!({"image": "ubuntu-24.04"}));
    let rebuilt = screen(&sim, id);
    assert!(rebuilt[0].contains("Ubuntu 24.04"), "{rebuilt:?}");
    assert!(rebuilt[2].contains("Ubuntu 24.04"), "{rebuilt:?}");
    assert_eq!(
        sim.control("GET", &format!("/_sim/consoles/{id}"), None)
            .json()["system"],
        "Ubuntu 24.04"
    );
}
