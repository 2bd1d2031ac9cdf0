//! Listings: the local `servers` table (`list`, no API call) and Hetzner's
//! catalog (`images`, `types`, `dc`, `locations`), as tables or JSON.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::print_json;
use crate::cloud::Cloud;
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::{Priority, wire};
use crate::home::Home;
use crate::server::Server;
use crate::store::Store;
use crate::table::Table;

/// `hcc list`: servers from the local table; managed ones unless `all`.
pub fn list(
    home: &Home,
    settings: &Settings,
    all: bool,
    json_out: bool,
) -> Result<ExitCode, Error> {
    let label = &settings.label;
    let store = Store::open(&home.db_path())?;
    let now = crate::store::now();
    let shown: Vec<Server> = store
        .servers(label)?
        .into_iter()
        .filter(|s| all || s.is_listed())
        .collect();
    if json_out {
        let list: Vec<Value> = shown
            .iter()
            .map(|s| serde_json::to_value(s.listed()).unwrap_or(Value::Null))
            .collect();
        print_json(&Value::Array(list))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        "NAME", "STATUS", "IPV4", "IPV6", "TYPE", "LOCATION", "CONSOLE",
    ]);
    for s in &shown {
        let status = s
            .status
            .clone()
            .or_else(|| s.stage.as_ref().map(|st| format!("({st})")))
            .unwrap_or_default();
        table.row(vec![
            s.name.clone(),
            status,
            dash(&s.ip4),
            dash(&s.ip6),
            dash(&s.server_type),
            dash(&s.location),
            s.console_at
                .map(|at| age(now - at))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    crate::output::print(&table.render())?;
    if shown.is_empty() {
        eprintln!("hcc: no servers in the local table yet: run `hcc sync`");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hcc images`: system images, by name.
pub fn images(home: &Home, settings: &Settings, json_out: bool) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Command)?;
    let images = cloud.client.images()?;
    if json_out {
        let list: Vec<Value> = images
            .iter()
            .map(|i| {
                json!({"id": i.id, "name": i.name, "description": i.description,
                       "os_flavor": i.os_flavor, "os_version": i.os_version,
                       "architecture": i.architecture})
            })
            .collect();
        print_json(&Value::Array(list))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["NAME", "DESCRIPTION", "OS", "VERSION", "ARCH", "ID"]);
    for i in &images {
        table.row(vec![
            i.name.clone().unwrap_or_else(|| "-".into()),
            i.description.clone(),
            i.os_flavor.clone(),
            dash(&i.os_version),
            i.architecture.clone(),
            i.id.to_string(),
        ]);
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

/// `hcc isos`: the ISOs a server may mount.
pub fn isos(home: &Home, settings: &Settings, json_out: bool) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Command)?;
    let isos = cloud.client.isos()?;
    if json_out {
        print_json(&serde_json::to_value(&isos).unwrap_or(Value::Null))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["NAME", "DESCRIPTION", "TYPE", "ARCH", "ID"]);
    for i in &isos {
        table.row(vec![
            dash(&i.name),
            dash(&i.description),
            dash(&i.kind),
            dash(&i.architecture),
            i.id.to_string(),
        ]);
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

/// `hcc snapshots`: the snapshots carrying the managed label.
pub fn snapshots(home: &Home, settings: &Settings, json_out: bool) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Command)?;
    let snapshots = cloud.client.snapshots(Some(&cloud.label))?;
    let from = |i: &wire::Image| {
        i.created_from
            .as_ref()
            .and_then(|c| c["name"].as_str())
            .map(str::to_string)
    };
    if json_out {
        let list: Vec<Value> = snapshots
            .iter()
            .map(|i| {
                json!({"id": i.id, "description": i.description, "created": i.created,
                       "created_from": from(i), "image_size_gb": i.image_size})
            })
            .collect();
        print_json(&Value::Array(list))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["ID", "DESCRIPTION", "FROM", "CREATED", "SIZE GB"]);
    for i in &snapshots {
        table.row(vec![
            i.id.to_string(),
            i.description.clone(),
            dash(&from(i)),
            dash(&i.created),
            i.image_size
                .map_or_else(|| "-".into(), |gb| format!("{gb:.1}")),
        ]);
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

/// `hcc types`: server types with cores, memory, disk and the monthly
/// gross price in the default location.
pub fn server_types(home: &Home, settings: &Settings, json_out: bool) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Command)?;
    let location = cloud.settings.location.clone();
    let types = cloud.client.server_types()?;
    let price = |t: &crate::hetzner::wire::ServerType| {
        t.prices
            .iter()
            .find(|p| p.location == location)
            .or(t.prices.first())
            .map(|p| (p.location.clone(), p.price_monthly.gross.clone()))
    };
    if json_out {
        let list: Vec<Value> = types
            .iter()
            .map(|t| {
                let (loc, gross) = price(t).unzip();
                json!({"id": t.id, "name": t.name, "description": t.description,
                       "cores": t.cores, "memory_gb": t.memory, "disk_gb": t.disk,
                       "cpu_type": t.cpu_type, "architecture": t.architecture,
                       "price_location": loc, "price_monthly_gross": gross})
            })
            .collect();
        print_json(&Value::Array(list))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        "NAME",
        "CORES",
        "MEMORY",
        "DISK",
        "CPU",
        "ARCH",
        "PRICE/MONTH",
    ]);
    for t in &types {
        let price = price(t)
            .map(|(loc, gross)| format!("{} ({loc})", money(&gross)))
            .unwrap_or_else(|| "-".into());
        table.row(vec![
            t.name.clone(),
            number(t.cores),
            format!("{} GB", number(t.memory)),
            format!("{} GB", number(t.disk)),
            t.cpu_type.clone(),
            t.architecture.clone(),
            price,
        ]);
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

/// `hcc dc`: datacenters.
pub fn datacenters(home: &Home, settings: &Settings, json_out: bool) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Command)?;
    let dcs = cloud.client.datacenters()?;
    if json_out {
        let list: Vec<Value> = dcs
            .iter()
            .map(|d| {
                json!({"id": d.id, "name": d.name, "description": d.description,
                       "location": d.location.name, "city": d.location.city})
            })
            .collect();
        print_json(&Value::Array(list))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["NAME", "DESCRIPTION", "LOCATION", "CITY"]);
    for d in &dcs {
        table.row(vec![
            d.name.clone(),
            d.description.clone(),
            d.location.name.clone(),
            d.location.city.clone(),
        ]);
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

/// `hcc locations`.
pub fn locations(home: &Home, settings: &Settings, json_out: bool) -> Result<ExitCode, Error> {
    let cloud = Cloud::open(home, settings, Priority::Command)?;
    let locations = cloud.client.locations()?;
    if json_out {
        let list: Vec<Value> = locations
            .iter()
            .map(|l| {
                json!({"id": l.id, "name": l.name, "description": l.description,
                       "city": l.city, "country": l.country, "network_zone": l.network_zone})
            })
            .collect();
        print_json(&Value::Array(list))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["NAME", "DESCRIPTION", "CITY", "COUNTRY", "ZONE"]);
    for l in &locations {
        table.row(vec![
            l.name.clone(),
            l.description.clone(),
            l.city.clone(),
            l.country.clone(),
            l.network_zone.clone(),
        ]);
    }
    crate::output::print(&table.render())?;
    Ok(ExitCode::SUCCESS)
}

fn dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

/// `4`, `0.5`: no trailing `.0`.
fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// `"4.5100000000"` -> `4.51 €`.
fn money(gross: &str) -> String {
    match gross.parse::<f64>() {
        Ok(v) => format!("{v:.2} €"),
        Err(_) => gross.to_string(),
    }
}

/// A console URL's age: `12s`, `3m`, `5h`, `2d` (valid for one minute).
fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}
