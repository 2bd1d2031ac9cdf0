//! The JSON the simulator answers with, written from the reference's
//! samples (`reference/hetzner-cloud-api.md`) with `json!`: servers,
//! actions and the pagination meta. Nothing here is shared with hcc's own
//! API client, so a field misspelt on one side cannot pass on both.

use serde_json::{Value, json};

use super::catalog::{Catalog, DATACENTERS, LOCATIONS, SERVER_TYPES};
use super::clock::Clock;
use super::query::Page;
use super::state::{Action, Progress, Server};
use crate::timestamp::rfc3339;

pub fn server(s: &Server, catalog: &Catalog, locked: bool) -> Value {
    let serial = s.serial();
    let ipv4 = format!(
        "10.{}.{}.{}",
        (serial >> 16) & 0xff,
        (serial >> 8) & 0xff,
        serial & 0xff
    );
    let reversed: Vec<&str> = ipv4.rsplit('.').collect();
    let ipv6 = format!("2001:db8:{:x}:{:x}::/64", serial >> 16, serial & 0xffff);
    let location = &LOCATIONS[DATACENTERS[s.datacenter].location];
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
                "dns_ptr": format!("static.{}.clients.your-server.de", reversed.join(".")),
            },
            "ipv6": {
                "id": 60_000_000 + serial,
                "ip": ipv6,
                "blocked": false,
                "dns_ptr": [],
            },
            "floating_ips": [],
            "firewalls": [],
        },
        "private_net": [],
        "server_type": catalog.server_types[s.server_type],
        "datacenter": catalog.datacenters[s.datacenter],
        "image": catalog.images[s.image],
        "iso": null,
        "rescue_enabled": false,
        "locked": locked,
        "backup_window": null,
        "outgoing_traffic": 0,
        "ingoing_traffic": 0,
        "included_traffic": location.traffic_tb << 40,
        "protection": {"delete": false, "rebuild": false},
        "labels": s.labels,
        "volumes": [],
        "load_balancers": [],
        "primary_disk_size": SERVER_TYPES[s.server_type].disk_gb,
        "placement_group": null,
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
        let v = server(s, &Catalog::new(), false);
        assert_eq!(v["created"], "2016-01-30T23:45:00+00:00");
        assert_eq!(v["public_net"]["ipv4"]["ip"], "10.0.0.1");
        assert_eq!(v["public_net"]["ipv6"]["ip"], "2001:db8:0:1::/64");
        assert_eq!(v["datacenter"]["location"]["name"], "nbg1");
        assert_eq!(v["server_type"]["name"], "cpx11");
        assert_eq!(v["labels"]["managed"], "1");
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
