//! The JSON the simulator answers with, written from the reference's
//! samples (`reference/hetzner-cloud-api.md`) with `json!`: servers,
//! actions and the pagination meta. Nothing here is shared with hcc's own
//! API client, so a field misspelt on one side cannot pass on both.

use serde_json::{Value, json};

use super::catalog::{Catalog, DATACENTERS, LOCATIONS};
use super::clock::Clock;
use super::query::Page;
use super::state::{Action, Progress, Server, Snapshot, State};
use crate::timestamp::rfc3339;

pub fn server(s: &Server, state: &State, catalog: &Catalog, now_ms: u64) -> Value {
    let serial = s.serial();
    let ipv4 = s.ipv4().to_string();
    let ipv6 = format!("{}/64", s.ipv6_net());
    let location = &LOCATIONS[DATACENTERS[s.datacenter].location];
    let ipv4_ptr = s
        .rdns
        .get(&ipv4)
        .cloned()
        .unwrap_or_else(|| default_ptr(&ipv4));
    let ipv6_ptrs: Vec<Value> = s
        .rdns
        .iter()
        .filter(|(ip, _)| ip.contains(':'))
        .map(|(ip, ptr)| json!({"ip": ip, "dns_ptr": ptr}))
        .collect();
    json!({
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "created": rfc3339(s.created),
        "public_net": {
            "ipv4": {
                "id": 50_000_000 + serial,
                "ip": ipv4,
                "blocked": false,
                "dns_ptr": ipv4_ptr,
            },
            "ipv6": {
                "id": 60_000_000 + serial,
                "ip": ipv6,
                "blocked": false,
                "dns_ptr": ipv6_ptrs,
            },
            "floating_ips": [],
            "firewalls": [],
        },
        "private_net": [],
        "server_type": catalog.server_types[s.server_type],
        "datacenter": catalog.datacenters[s.datacenter],
        "image": image_of(state, catalog, s.image, now_ms),
        "iso": s.iso.map(|i| catalog.isos[i].clone()),
        "rescue_enabled": s.rescue_enabled,
        "locked": state.is_locked(s.id, now_ms),
        "backup_window": s.backup_window,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": location.traffic_tb << 40,
        "protection": {"delete": s.protect_delete, "rebuild": s.protect_rebuild},
        "labels": s.labels,
        "volumes": [],
        "load_balancers": [],
        "primary_disk_size": s.disk_gb,
        "placement_group": null,
    })
}

/// Hetzner's reverse DNS of an IPv4 address nobody has set one for.
pub fn default_ptr(ipv4: &str) -> String {
    let reversed: Vec<&str> = ipv4.rsplit('.').collect();
    format!("static.{}.clients.your-server.de", reversed.join("."))
}

/// Image `id` as the API shows it: a system image of the catalogue, an
/// image of this project, or null once that is deleted.
pub fn image_of(state: &State, catalog: &Catalog, id: u64, now_ms: u64) -> Value {
    if let Some(system) = catalog.images.iter().find(|i| i["id"] == id) {
        return system.clone();
    }
    state
        .image(id)
        .map(|i| snapshot(i, now_ms))
        .unwrap_or(Value::Null)
}

/// An image made from a server: `creating` until its action ends.
pub fn snapshot(i: &Snapshot, now_ms: u64) -> Value {
    json!({
        "id": i.id,
        "type": i.kind,
        "status": if now_ms >= i.ready_ms { "available" } else { "creating" },
        "name": null,
        "description": i.description,
        "image_size": i.image_size,
        "disk_size": i.disk_size,
        "created": rfc3339(i.created),
        "created_from": {"id": i.from.0, "name": i.from.1},
        "bound_to": i.bound_to,
        "os_flavor": i.os_flavor,
        "os_version": i.os_version,
        "rapid_deploy": false,
        "protection": {"delete": false},
        "deprecated": null,
        "deleted": null,
        "labels": i.labels,
        "architecture": i.architecture,
    })
}

pub fn action(a: &Action, clock: &Clock, now_ms: u64) -> Value {
    let (status, progress, finished, error) = match a.progress(now_ms) {
        Progress::Running(p) => ("running", p, None, Value::Null),
        Progress::Success => ("success", 100, Some(a.ends_ms), Value::Null),
        Progress::Error => (
            "error",
            100,
            Some(a.ends_ms),
            json!({"code": "action_failed", "message": "Action failed"}),
        ),
    };
    json!({
        "id": a.id,
        "command": a.command,
        "status": status,
        "progress": progress,
        "started": clock.rfc3339(a.started_ms),
        "finished": finished.map(|ms| clock.rfc3339(ms)),
        "resources": [{"id": a.server, "type": "server"}],
        "error": error,
    })
}

/// `{"<key>": [items], "meta": {"pagination": ...}}` for one page.
pub fn page(key: &str, items: Vec<Value>, page: Page, total: usize) -> Value {
    let mut body = json!({ "meta": { "pagination": pagination(page, total) } });
    body[key] = Value::Array(items);
    body
}

pub fn pagination(page: Page, total: usize) -> Value {
    json!({
        "page": page.page,
        "per_page": page.per_page,
        "previous_page": page.previous_page(),
        "next_page": page.next_page(total),
        "last_page": page.last_page(total),
        "total_entries": total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::state::State;

    #[test]
    fn pagination_meta_matches_the_reference() {
        let page = Page::from_params(Some("2"), Some("25")).unwrap();
        assert_eq!(
            pagination(page, 100),
            json!({"page": 2, "per_page": 25, "previous_page": 1, "next_page": 3,
                   "last_page": 4, "total_entries": 100})
        );
        let first = Page::from_params(None, None).unwrap();
        assert_eq!(
            pagination(first, 0),
            json!({"page": 1, "per_page": 25, "previous_page": null, "next_page": null,
                   "last_page": 1, "total_entries": 0})
        );
    }

    #[test]
    fn servers_have_every_field_clients_read() {
        let mut state = State::new(10);
        state.seed(1, 1_454_198_100);
        let s = state.server_by_name("srv-00001").unwrap();
        let v = server(s, &state, &Catalog::new(), 0);
        assert_eq!(v["created"], "2016-01-30T23:45:00+00:00");
        assert_eq!(v["public_net"]["ipv4"]["ip"], "10.0.0.1");
        assert_eq!(v["public_net"]["ipv6"]["ip"], "2001:db8:0:1::/64");
        assert_eq!(v["datacenter"]["location"]["name"], "nbg1");
        assert_eq!(v["server_type"]["name"], "cpx11");
        assert_eq!(v["labels"]["managed"], "1");
        assert_eq!(
            v["public_net"]["ipv4"]["dns_ptr"],
            "static.1.0.0.10.clients.your-server.de"
        );
        assert_eq!(v["primary_disk_size"], 40);
        assert_eq!(v["image"]["type"], "system");
        for key in [
            "image",
            "iso",
            "protection",
            "private_net",
            "placement_group",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }
}
