//! The fixed catalogue: locations, datacenters, server types and images,
//! with realistic names, ids and prices, rendered in the API's shapes.
//!
//! The data is static and the JSON of each entry is built once at start-up
//! ([`Catalog::new`]) and cloned into answers; servers refer to entries by
//! index.

use serde_json::{Value, json};

pub struct Location {
    pub id: u64,
    pub name: &'static str,
    description: &'static str,
    country: &'static str,
    city: &'static str,
    latitude: f64,
    longitude: f64,
    network_zone: &'static str,
    /// Price factor in percent against the EU price list.
    price_percent: u64,
    /// Included traffic per server, in TB.
    pub traffic_tb: u64,
}

pub const LOCATIONS: &[Location] = &[
    Location {
        id: 1,
        name: "fsn1",
        description: "Falkenstein DC Park 1",
        country: "DE",
        city: "Falkenstein",
        latitude: 50.47612,
        longitude: 12.370071,
        network_zone: "eu-central",
        price_percent: 100,
        traffic_tb: 20,
    },
    Location {
        id: 2,
        name: "nbg1",
        description: "Nuremberg DC Park 1",
        country: "DE",
        city: "Nuremberg",
        latitude: 49.452102,
        longitude: 11.076665,
        network_zone: "eu-central",
        price_percent: 100,
        traffic_tb: 20,
    },
    Location {
        id: 3,
        name: "hel1",
        description: "Helsinki DC Park 1",
        country: "FI",
        city: "Helsinki",
        latitude: 60.169855,
        longitude: 24.938379,
        network_zone: "eu-central",
        price_percent: 100,
        traffic_tb: 20,
    },
    Location {
        id: 4,
        name: "ash",
        description: "Ashburn, VA",
        country: "US",
        city: "Ashburn, VA",
        latitude: 39.045821,
        longitude: -77.487073,
        network_zone: "us-east",
        price_percent: 120,
        traffic_tb: 1,
    },
    Location {
        id: 5,
        name: "hil",
        description: "Hillsboro, OR",
        country: "US",
        city: "Hillsboro, OR",
        latitude: 45.54222,
        longitude: -122.951924,
        network_zone: "us-west",
        price_percent: 120,
        traffic_tb: 1,
    },
    Location {
        id: 6,
        name: "sin",
        description: "Singapore",
        country: "SG",
        city: "Singapore",
        latitude: 1.283333,
        longitude: 103.833333,
        network_zone: "ap-southeast",
        price_percent: 130,
        traffic_tb: 1,
    },
];

pub struct Datacenter {
    pub id: u64,
    pub name: &'static str,
    description: &'static str,
    /// Index into [`LOCATIONS`].
    pub location: usize,
}

pub const DATACENTERS: &[Datacenter] = &[
    Datacenter {
        id: 2,
        name: "nbg1-dc3",
        description: "Nuremberg 1 virtual DC 3",
        location: 1,
    },
    Datacenter {
        id: 3,
        name: "hel1-dc2",
        description: "Helsinki 1 virtual DC 2",
        location: 2,
    },
    Datacenter {
        id: 4,
        name: "fsn1-dc14",
        description: "Falkenstein 1 virtual DC 14",
        location: 0,
    },
    Datacenter {
        id: 5,
        name: "ash-dc1",
        description: "Ashburn virtual DC 1",
        location: 3,
    },
    Datacenter {
        id: 6,
        name: "hil-dc1",
        description: "Hillsboro virtual DC 1",
        location: 4,
    },
    Datacenter {
        id: 7,
        name: "sin-dc1",
        description: "Singapore virtual DC 1",
        location: 5,
    },
];

/// Where new servers go when a create names no location: `fsn1-dc14`.
pub const RECOMMENDED_DATACENTER: usize = 2;

pub struct ServerType {
    pub id: u64,
    pub name: &'static str,
    cores: u32,
    memory_gb: f64,
    pub disk_gb: u64,
    cpu_type: &'static str,
    pub architecture: &'static str,
    /// Monthly net price in the EU, in 1/10000 EUR.
    monthly_net: u64,
    /// Offered in the EU only (the x86 "cx" line and Ampere "cax").
    eu_only: bool,
}

pub const SERVER_TYPES: &[ServerType] = &[
    ServerType {
        id: 22,
        name: "cpx11",
        cores: 2,
        memory_gb: 2.0,
        disk_gb: 40,
        cpu_type: "shared",
        architecture: "x86",
        monthly_net: 4_3500,
        eu_only: false,
    },
    ServerType {
        id: 23,
        name: "cpx21",
        cores: 3,
        memory_gb: 4.0,
        disk_gb: 80,
        cpu_type: "shared",
        architecture: "x86",
        monthly_net: 7_5500,
        eu_only: false,
    },
    ServerType {
        id: 45,
        name: "cax11",
        cores: 2,
        memory_gb: 4.0,
        disk_gb: 40,
        cpu_type: "shared",
        architecture: "arm",
        monthly_net: 3_7900,
        eu_only: true,
    },
    ServerType {
        id: 104,
        name: "cx22",
        cores: 2,
        memory_gb: 4.0,
        disk_gb: 40,
        cpu_type: "shared",
        architecture: "x86",
        monthly_net: 3_7900,
        eu_only: true,
    },
    ServerType {
        id: 105,
        name: "cx32",
        cores: 4,
        memory_gb: 8.0,
        disk_gb: 80,
        cpu_type: "shared",
        architecture: "x86",
        monthly_net: 6_8000,
        eu_only: true,
    },
];

impl ServerType {
    pub fn offered_in(&self, location: &Location) -> bool {
        !self.eu_only || location.network_zone == "eu-central"
    }
}

pub struct Image {
    pub id: u64,
    pub name: &'static str,
    pub description: &'static str,
    pub os_flavor: &'static str,
    pub os_version: &'static str,
    created: &'static str,
    pub deprecated: Option<&'static str>,
}

pub const IMAGES: &[Image] = &[
    Image {
        id: 45_557_056,
        name: "debian-11",
        description: "Debian 11",
        os_flavor: "debian",
        os_version: "11",
        created: "2021-08-16T11:12:01+00:00",
        deprecated: None,
    },
    Image {
        id: 59_752_342,
        name: "centos-stream-8",
        description: "CentOS Stream 8",
        os_flavor: "centos",
        os_version: "stream-8",
        created: "2022-01-20T10:00:00+00:00",
        deprecated: Some("2024-06-01T00:00:00+00:00"),
    },
    Image {
        id: 67_794_396,
        name: "ubuntu-22.04",
        description: "Ubuntu 22.04",
        os_flavor: "ubuntu",
        os_version: "22.04",
        created: "2022-04-21T13:32:38+00:00",
        deprecated: None,
    },
    Image {
        id: 76_766_499,
        name: "rocky-9",
        description: "Rocky Linux 9",
        os_flavor: "rocky",
        os_version: "9",
        created: "2022-07-20T09:24:13+00:00",
        deprecated: None,
    },
    Image {
        id: 114_690_387,
        name: "debian-12",
        description: "Debian 12",
        os_flavor: "debian",
        os_version: "12",
        created: "2023-06-13T06:00:02+00:00",
        deprecated: None,
    },
    Image {
        id: 161_547_269,
        name: "ubuntu-24.04",
        description: "Ubuntu 24.04",
        os_flavor: "ubuntu",
        os_version: "24.04",
        created: "2024-04-25T13:26:27+00:00",
        deprecated: None,
    },
    Image {
        id: 250_613_874,
        name: "debian-13",
        description: "Debian 13",
        os_flavor: "debian",
        os_version: "13",
        created: "2025-08-11T08:15:42+00:00",
        deprecated: None,
    },
];

/// A public ISO a server can boot from (`GET /isos`).
pub struct Iso {
    pub id: u64,
    pub name: &'static str,
    description: &'static str,
    architecture: &'static str,
    /// (announced, unavailable_after) of a deprecated ISO.
    deprecation: Option<(&'static str, &'static str)>,
}

pub const ISOS: &[Iso] = &[
    Iso {
        id: 4711,
        name: "FreeBSD-11.0-RELEASE-amd64-dvd1",
        description: "FreeBSD 11.0 x64",
        architecture: "x86",
        deprecation: Some(("2023-06-01T00:00:00+00:00", "2023-09-01T00:00:00+00:00")),
    },
    Iso {
        id: 104_212,
        name: "FreeBSD-14.1-RELEASE-amd64-dvd1.iso",
        description: "FreeBSD 14.1 x64",
        architecture: "x86",
        deprecation: None,
    },
    Iso {
        id: 109_865,
        name: "ubuntu-24.04.1-live-server-amd64.iso",
        description: "Ubuntu 24.04.1 live server (amd64)",
        architecture: "x86",
        deprecation: None,
    },
    Iso {
        id: 109_866,
        name: "ubuntu-24.04.1-live-server-arm64.iso",
        description: "Ubuntu 24.04.1 live server (arm64)",
        architecture: "arm",
        deprecation: None,
    },
    Iso {
        id: 112_430,
        name: "virtio-win-0.1.262.iso",
        description: "virtio-win-0.1.262",
        architecture: "x86",
        deprecation: None,
    },
];

/// Finds an entry by id (all digits) or by name, as `POST /servers` takes
/// `server_type`, `image`, `location` and `datacenter`.
pub fn find<T>(
    list: &[T],
    key: &Value,
    id: impl Fn(&T) -> u64,
    name: impl Fn(&T) -> &str,
) -> Option<usize> {
    match key {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| list.iter().position(|e| id(e) == n)),
        Value::String(s) => match s.parse::<u64>() {
            Ok(n) => list.iter().position(|e| id(e) == n),
            Err(_) => list.iter().position(|e| name(e) == s),
        },
        _ => None,
    }
}

/// The JSON of every catalogue entry, built once.
pub struct Catalog {
    pub locations: Vec<Value>,
    pub datacenters: Vec<Value>,
    pub server_types: Vec<Value>,
    pub images: Vec<Value>,
    pub isos: Vec<Value>,
}

impl Catalog {
    pub fn new() -> Catalog {
        let locations: Vec<Value> = LOCATIONS.iter().map(location_json).collect();
        let datacenters = DATACENTERS
            .iter()
            .map(|dc| datacenter_json(dc, &locations[dc.location]))
            .collect();
        Catalog {
            locations,
            datacenters,
            server_types: SERVER_TYPES.iter().map(server_type_json).collect(),
            images: IMAGES.iter().map(image_json).collect(),
            isos: ISOS.iter().map(iso_json).collect(),
        }
    }
}

fn location_json(l: &Location) -> Value {
    json!({
        "id": l.id,
        "name": l.name,
        "description": l.description,
        "country": l.country,
        "city": l.city,
        "latitude": l.latitude,
        "longitude": l.longitude,
        "network_zone": l.network_zone,
    })
}

fn datacenter_json(dc: &Datacenter, location: &Value) -> Value {
    let offered: Vec<u64> = SERVER_TYPES
        .iter()
        .filter(|t| t.offered_in(&LOCATIONS[dc.location]))
        .map(|t| t.id)
        .collect();
    json!({
        "id": dc.id,
        "name": dc.name,
        "description": dc.description,
        "location": location,
        "server_types": {
            "supported": offered,
            "available": offered,
            "available_for_migration": offered,
        },
    })
}

/// A price as the API writes it: net with 10 decimals, gross (19% VAT)
/// with 16, computed in 1/10000 EUR so no float noise shows.
fn price(net: u64) -> Value {
    let gross = (net * 119).div_ceil(100);
    json!({
        "net": format!("{}.{:04}000000", net / 10_000, net % 10_000),
        "gross": format!("{}.{:04}000000000000", gross / 10_000, gross % 10_000),
    })
}

fn server_type_json(t: &ServerType) -> Value {
    let prices: Vec<Value> = LOCATIONS
        .iter()
        .filter(|l| t.offered_in(l))
        .map(|l| {
            let monthly = t.monthly_net * l.price_percent / 100;
            json!({
                "location": l.name,
                // Hetzner bills per hour up to the monthly cap; ~640 h.
                "price_hourly": price(monthly.div_ceil(640)),
                "price_monthly": price(monthly),
                "included_traffic": l.traffic_tb << 40,
                "price_per_tb_traffic": price(1_0000),
            })
        })
        .collect();
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.name.to_uppercase(),
        "cores": t.cores,
        "memory": t.memory_gb,
        "disk": t.disk_gb,
        "deprecated": false,
        "prices": prices,
        "storage_type": "local",
        "cpu_type": t.cpu_type,
        "architecture": t.architecture,
        "deprecation": null,
    })
}

fn iso_json(i: &Iso) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "description": i.description,
        "type": "public",
        "deprecation": i.deprecation.map(|(announced, unavailable_after)| json!({
            "announced": announced,
            "unavailable_after": unavailable_after,
        })),
        "architecture": i.architecture,
    })
}

fn image_json(i: &Image) -> Value {
    json!({
        "id": i.id,
        "type": "system",
        "status": "available",
        "name": i.name,
        "description": i.description,
        "image_size": null,
        "disk_size": 5,
        "created": i.created,
        "created_from": null,
        "bound_to": null,
        "os_flavor": i.os_flavor,
        "os_version": i.os_version,
        "rapid_deploy": true,
        "protection": {"delete": false},
        "deprecated": i.deprecated,
        "deleted": null,
        "labels": {},
        "architecture": "x86",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_have_the_api_form() {
        assert_eq!(
            price(3_7900),
            json!({"net": "3.7900000000", "gross": "4.5101000000000000"})
        );
    }

    #[test]
    fn finds_by_id_or_name() {
        assert_eq!(
            find(SERVER_TYPES, &json!("cx22"), |t| t.id, |t| t.name),
            Some(3)
        );
        assert_eq!(
            find(SERVER_TYPES, &json!(104), |t| t.id, |t| t.name),
            Some(3)
        );
        assert_eq!(
            find(SERVER_TYPES, &json!("104"), |t| t.id, |t| t.name),
            Some(3)
        );
        assert_eq!(
            find(SERVER_TYPES, &json!("cx99"), |t| t.id, |t| t.name),
            None
        );
        assert_eq!(find(SERVER_TYPES, &json!(null), |t| t.id, |t| t.name), None);
    }

    #[test]
    fn the_cx_line_is_eu_only() {
        let catalog = Catalog::new();
        let ash = &catalog.datacenters[3];
        assert_eq!(ash["name"], "ash-dc1");
        assert_eq!(ash["server_types"]["available"], json!([22, 23]));
        assert_eq!(
            catalog.datacenters[0]["server_types"]["available"]
                .as_array()
                .map(Vec::len),
            Some(5)
        );
    }
}
