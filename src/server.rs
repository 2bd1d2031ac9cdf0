//! One server as hcc shows it: an object of `GET /api/v1/servers` and of
//! `hcc list --json`, read from the local `servers` table (the store reads
//! it, without secrets). Also the guard's two tests (DESIGN.md): a server
//! is managed when it carries the managed label; a new server's name must
//! begin with the configured prefix.

use std::collections::BTreeMap;

use serde::Serialize;

/// A server from the local table. Field names are the API's (and so the
/// OpenAPI document's `Server`); times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Server {
    pub name: String,
    /// None while hcc creates it.
    pub id: Option<i64>,
    pub status: Option<String>,
    pub ip4: Option<String>,
    pub ip6: Option<String>,
    pub server_type: Option<String>,
    pub image: Option<String>,
    pub datacenter: Option<String>,
    pub location: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Carries the managed label ([`is_managed`]).
    pub managed: bool,
    /// The name follows hcc's name rules ([`name_ok`]). A server that
    /// Hetzner (or an API answer that is broken or hostile) names
    /// otherwise is kept and listed, but hcc offers no action on it: every
    /// route and command takes a server by a name that passes the rules.
    pub name_ok: bool,
    pub created: Option<String>,
    /// hcc's creation stage: `new` before the create call, `created` after.
    pub stage: Option<String>,
    pub console_at: Option<i64>,
    pub synced_at: Option<i64>,
}

impl Server {
    /// Shown by `hcc list` without `--all`: managed, or being created by
    /// hcc (a row in stage `new` has no labels yet). Unlike [`is_managed`],
    /// this does not let hcc act on the server.
    pub fn is_listed(&self) -> bool {
        self.managed || self.stage.as_deref() == Some("new")
    }

    /// As `hcc list --json` prints it: the API's names, plus the names
    /// it printed before (`ipv4`, `ipv6`), deprecated, kept for one
    /// release so that older consumers go on working.
    pub fn listed(&self) -> Listed<'_> {
        Listed {
            server: self,
            ipv4: self.ip4.as_deref(),
            ipv6: self.ip6.as_deref(),
        }
    }
}

/// A [`Server`] with the deprecated names of `hcc list --json`.
#[derive(Serialize)]
pub struct Listed<'a> {
    #[serde(flatten)]
    server: &'a Server,
    ipv4: Option<&'a str>,
    ipv6: Option<&'a str>,
}

/// Whether a server with these labels is managed: it carries the label key
/// `label` (the setting `label`), whatever its value. hcc acts only on
/// managed servers.
pub fn is_managed(labels: &BTreeMap<String, String>, label: &str) -> bool {
    labels.contains_key(label)
}

/// Whether hcc can act on a server of this name: it passes
/// [`crate::verb::check_server_name`], Hetzner's own rules for a name.
pub fn name_ok(name: &str) -> bool {
    crate::verb::check_server_name(name).is_ok()
}

/// Whether `name` may be the name of a new server: it begins with the
/// configured prefix (the setting `prefix`; empty allows any name).
pub fn has_prefix(name: &str, prefix: &str) -> bool {
    name.starts_with(prefix)
}

/// What the dashboard's server detail shows beyond the row, read from
/// the server's Hetzner object (`servers.api`): rescue, ISO, backups,
/// protection, traffic, the type's size, every address with its reverse
/// DNS, the image. Never a secret: the object holds none.
pub fn detail(api: &serde_json::Value) -> serde_json::Value {
    use serde_json::{Value, json};
    let net = &api["public_net"];
    let mut addresses = Vec::new();
    if let Some(ip) = net["ipv4"]["ip"].as_str() {
        addresses.push(json!({"ip": ip, "dns_ptr": net["ipv4"]["dns_ptr"]}));
    }
    if let Some(entries) = net["ipv6"]["dns_ptr"].as_array() {
        for entry in entries {
            addresses.push(json!({"ip": entry["ip"], "dns_ptr": entry["dns_ptr"]}));
        }
    }
    let network = net["ipv6"]["ip"].clone();
    // The network's first address, the one a server usually answers on,
    // so that its reverse DNS can be set before it has an entry.
    if let Some(first) = network
        .as_str()
        .and_then(|n| n.strip_suffix("/64"))
        .map(|prefix| format!("{prefix}1"))
        .filter(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        && !addresses.iter().any(|a| a["ip"] == first.as_str())
    {
        addresses.push(json!({"ip": first, "dns_ptr": null}));
    }
    let kind = &api["server_type"];
    json!({
        "rescue_enabled": api["rescue_enabled"].as_bool().unwrap_or(false),
        "iso": api["iso"].get("name").cloned().or_else(|| api["iso"].get("description").cloned()).unwrap_or(Value::Null),
        "backup_window": api["backup_window"],
        "protection": {
            "delete": api["protection"]["delete"].as_bool().unwrap_or(false),
            "rebuild": api["protection"]["rebuild"].as_bool().unwrap_or(false),
        },
        "traffic": {
            "outgoing": api["outgoing_traffic"],
            "ingoing": api["ingoing_traffic"],
            "included": api["included_traffic"],
        },
        "disk": api["primary_disk_size"].as_f64().or_else(|| kind["disk"].as_f64()),
        "cores": kind["cores"],
        "memory": kind["memory"],
        "ipv6_network": network,
        "addresses": addresses,
        "image": {
            "id": api["image"]["id"],
            "name": api["image"]["name"],
            "description": api["image"]["description"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        Server {
            name: "m-1".into(),
            id: Some(7),
            status: Some("running".into()),
            ip4: Some("192.0.2.1".into()),
            ip6: Some("2001:db8::/64".into()),
            server_type: None,
            image: None,
            datacenter: None,
            location: None,
            labels: BTreeMap::from([("managed".into(), "1".into())]),
            managed: true,
            name_ok: true,
            created: None,
            stage: None,
            console_at: Some(1_700_000_000),
            synced_at: None,
        }
    }

    #[test]
    fn the_list_prints_the_api_names_and_the_deprecated_ones() {
        let s = server();
        let api = serde_json::to_value(&s).unwrap();
        let listed = serde_json::to_value(s.listed()).unwrap();
        assert_eq!(api["ip4"], "192.0.2.1");
        assert!(api.get("ipv4").is_none());
        assert_eq!(listed["ipv4"], listed["ip4"]);
        assert_eq!(listed["ipv6"], listed["ip6"]);
        let mut without_aliases = listed.as_object().unwrap().clone();
        without_aliases.remove("ipv4");
        without_aliases.remove("ipv6");
        assert_eq!(serde_json::Value::Object(without_aliases), api);
        assert_eq!(listed["console_at"], 1_700_000_000);
    }

    #[test]
    fn a_server_being_created_is_listed_but_not_managed() {
        let mut s = server();
        s.labels.clear();
        s.managed = is_managed(&s.labels, "managed");
        assert!(!s.managed && !s.is_listed());
        s.stage = Some("new".into());
        assert!(!s.managed && s.is_listed());
    }

    #[test]
    fn the_guard_tests_the_label_key_and_the_prefix() {
        let labels = BTreeMap::from([("example.com/managed".into(), String::new())]);
        assert!(is_managed(&labels, "example.com/managed"));
        assert!(!is_managed(&labels, "managed"));
        assert!(has_prefix("m-web", "m-"));
        assert!(!has_prefix("web", "m-"));
        assert!(has_prefix("web", ""));
    }
}
