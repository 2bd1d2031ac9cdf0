//! The server actions that take a body or change more than the power
//! state: rebuild, root password, rescue, change of type, reverse DNS,
//! ISOs, images, backups and protection. Each checks its input, starts an
//! action of `--action-ms` (`locked` while another runs on the server)
//! and applies its effect at once; the server shows the change while the
//! action runs, as the API's objects do. An action that will end in
//! `error` (`/_sim/fail_next_action`) changes nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use super::api_error::ApiError;
use super::catalog::{self, ISOS, SERVER_TYPES};
use super::ctx::{Answer, Ctx, body_json};
use super::json;
use super::rng;
use super::state::{Labels, Snapshot, Verb, check_labels, labels_from};

/// Root passwords the API hands out: 20 alphanumerics, like `create`'s.
const PASSWORD_LEN: usize = 20;

/// The backup window Hetzner assigns (UTC hours).
const BACKUP_WINDOW: &str = "22-02";

pub fn act(ctx: &mut Ctx<'_>, id: u64, verb: Verb, body: &[u8]) -> Answer {
    ctx.state.server(id)?;
    // Actions without a request body accept an empty one.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        body_json(body)?
    };
    match verb {
        Verb::Rebuild => rebuild(ctx, id, &body),
        Verb::ResetPassword => with_password(ctx, id, verb),
        Verb::EnableRescue => enable_rescue(ctx, id, &body),
        Verb::DisableRescue => {
            let action = begin(ctx, id, verb)?;
            if let Some(server) = ctx.state.effect(action, id) {
                server.rescue_enabled = false;
            }
            answer(ctx, action, json!({}))
        }
        Verb::ChangeType => change_type(ctx, id, &body),
        Verb::ChangeDnsPtr => change_dns_ptr(ctx, id, &body),
        Verb::AttachIso => attach_iso(ctx, id, &body),
        Verb::DetachIso => {
            let action = begin(ctx, id, verb)?;
            if let Some(server) = ctx.state.effect(action, id) {
                server.iso = None;
            }
            answer(ctx, action, json!({}))
        }
        Verb::CreateImage => create_image(ctx, id, &body),
        Verb::EnableBackup | Verb::DisableBackup => {
            let action = begin(ctx, id, verb)?;
            let window = (verb == Verb::EnableBackup).then_some(BACKUP_WINDOW);
            let Some(server) = ctx.state.effect(action, id) else {
                return answer(ctx, action, json!({}));
            };
            server.backup_window = window;
            if window.is_none() {
                // "This immediately removes all existing backups."
                let backups: Vec<u64> = ctx
                    .state
                    .images()
                    .filter(|i| i.bound_to == Some(id))
                    .map(|i| i.id)
                    .collect();
                for backup in backups {
                    ctx.state.delete_image(backup);
                }
            }
            answer(ctx, action, json!({}))
        }
        Verb::ChangeProtection => change_protection(ctx, id, &body),
        _ => Err(ApiError::not_found("route")),
    }
}

fn begin(ctx: &mut Ctx<'_>, id: u64, verb: Verb) -> Result<u64, ApiError> {
    ctx.state.begin(id, verb.command(), None, ctx.now_ms)
}

/// `{"action": ..., <extra>}` with 201, as every server action answers.
fn answer(ctx: &Ctx<'_>, action: u64, mut extra: Value) -> Answer {
    extra["action"] = ctx
        .state
        .action(action)
        .map(|a| json::action(a, ctx.clock, ctx.now_ms))
        .unwrap_or(Value::Null);
    Ok((201, extra))
}

fn password(ctx: &mut Ctx<'_>) -> String {
    rng::alphanumeric(ctx.rng, PASSWORD_LEN)
}

/// `reset_password`: the reference asks for a running server but names no
/// error for one that is not, so any status is taken.
fn with_password(ctx: &mut Ctx<'_>, id: u64, verb: Verb) -> Answer {
    let action = begin(ctx, id, verb)?;
    let root_password = password(ctx);
    answer(ctx, action, json!({ "root_password": root_password }))
}

fn rebuild(ctx: &mut Ctx<'_>, id: u64, body: &Value) -> Answer {
    let key = body
        .get("image")
        .filter(|v| !v.is_null())
        .ok_or_else(|| ApiError::invalid_input("image", "is required"))?;
    let image = ctx
        .state
        .find_image(key)
        .ok_or_else(|| ApiError::invalid_input("image", "image not found"))?;
    let action = ctx.state.rebuild(id, image, ctx.now_ms)?;
    // The machine goes away while its disk is rewritten.
    ctx.consoles.stop(id);
    // Hetzner gives null for an image with SSH keys; a password here.
    let root_password = password(ctx);
    answer(ctx, action, json!({ "root_password": root_password }))
}

fn enable_rescue(ctx: &mut Ctx<'_>, id: u64, body: &Value) -> Answer {
    match body.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "linux64" => {}
        Some(_) => return Err(ApiError::invalid_input("type", "must be linux64")),
    }
    match body.get("ssh_keys") {
        None | Some(Value::Null) | Some(Value::Array(_)) => {}
        Some(_) => {
            return Err(ApiError::invalid_input(
                "ssh_keys",
                "must be a list of SSH key ids",
            ));
        }
    }
    let action = begin(ctx, id, Verb::EnableRescue)?;
    if let Some(server) = ctx.state.effect(action, id) {
        server.rescue_enabled = true;
    }
    let root_password = password(ctx);
    answer(ctx, action, json!({ "root_password": root_password }))
}

fn change_type(ctx: &mut Ctx<'_>, id: u64, body: &Value) -> Answer {
    let key = body
        .get("server_type")
        .filter(|v| !v.is_null())
        .ok_or_else(|| ApiError::invalid_input("server_type", "is required"))?;
    let new = catalog::find(SERVER_TYPES, key, |t| t.id, |t| t.name)
        .ok_or_else(|| ApiError::invalid_input("server_type", "server type not found"))?;
    let upgrade_disk = match body.get("upgrade_disk") {
        Some(Value::Bool(b)) => *b,
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_input("upgrade_disk", "is required"));
        }
        Some(_) => {
            return Err(ApiError::invalid_input("upgrade_disk", "must be a boolean"));
        }
    };
    let server = ctx.state.server(id)?;
    if server.status != "off" {
        return Err(ApiError::server_not_stopped());
    }
    let (old, new_type) = (&SERVER_TYPES[server.server_type], &SERVER_TYPES[new]);
    if new_type.architecture != old.architecture {
        return Err(ApiError::invalid_server_type(&format!(
            "server type {} has another architecture ({}) than the server's ({})",
            new_type.name, new_type.architecture, old.architecture
        )));
    }
    if new_type.disk_gb < server.disk_gb {
        return Err(ApiError::invalid_server_type(&format!(
            "server type {} has a smaller disk ({} GB) than the server ({} GB)",
            new_type.name, new_type.disk_gb, server.disk_gb
        )));
    }
    let action = begin(ctx, id, Verb::ChangeType)?;
    if let Some(server) = ctx.state.effect(action, id) {
        server.server_type = new;
        if upgrade_disk {
            server.disk_gb = server.disk_gb.max(new_type.disk_gb);
        }
    }
    answer(ctx, action, json!({}))
}

fn change_dns_ptr(ctx: &mut Ctx<'_>, id: u64, body: &Value) -> Answer {
    let ip = body
        .get("ip")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_input("ip", "is required"))?;
    let ptr = match body.get("dns_ptr") {
        None => return Err(ApiError::invalid_input("dns_ptr", "is required")),
        Some(Value::Null) => None,
        Some(Value::String(s)) if valid_hostname(s) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::invalid_input(
                "dns_ptr",
                "must be a valid hostname or null",
            ));
        }
    };
    let server = ctx.state.server(id)?;
    let ip = own_address(ip, server.ipv4(), server.ipv6_net()).ok_or_else(|| {
        ApiError::invalid_input("ip", "is not a primary IP address of this server")
    })?;
    let action = begin(ctx, id, Verb::ChangeDnsPtr)?;
    if let Some(server) = ctx.state.effect(action, id) {
        match ptr {
            Some(ptr) => {
                server.rdns.insert(ip, ptr);
            }
            // Back to the default: the v4 one is computed, v6 has none.
            None => {
                server.rdns.remove(&ip);
            }
        }
    }
    answer(ctx, action, json!({}))
}

/// `ip` in canonical form if it is the server's IPv4 address or inside
/// its IPv6 /64.
fn own_address(ip: &str, v4: Ipv4Addr, v6_net: Ipv6Addr) -> Option<String> {
    if let Ok(addr) = ip.parse::<Ipv4Addr>() {
        return (addr == v4).then(|| addr.to_string());
    }
    let addr = ip.parse::<Ipv6Addr>().ok()?;
    let prefix = |a: Ipv6Addr| u128::from(a) >> 64;
    (prefix(addr) == prefix(v6_net)).then(|| addr.to_string())
}

/// A reverse DNS name: a hostname, a final dot allowed.
fn valid_hostname(name: &str) -> bool {
    super::state::is_hostname(name.strip_suffix('.').unwrap_or(name))
}

fn attach_iso(ctx: &mut Ctx<'_>, id: u64, body: &Value) -> Answer {
    let key = body
        .get("iso")
        .filter(|v| !v.is_null())
        .ok_or_else(|| ApiError::invalid_input("iso", "is required"))?;
    let iso = catalog::find(ISOS, key, |i| i.id, |i| i.name)
        .ok_or_else(|| ApiError::invalid_input("iso", "iso not found"))?;
    let action = begin(ctx, id, Verb::AttachIso)?;
    if let Some(server) = ctx.state.effect(action, id) {
        // An attached ISO is replaced.
        server.iso = Some(iso);
    }
    answer(ctx, action, json!({}))
}

fn create_image(ctx: &mut Ctx<'_>, id: u64, body: &Value) -> Answer {
    let kind = match body.get("type") {
        None | Some(Value::Null) => "snapshot",
        Some(Value::String(t)) if t == "snapshot" => "snapshot",
        Some(Value::String(t)) if t == "backup" => "backup",
        Some(_) => {
            return Err(ApiError::invalid_input(
                "type",
                "must be snapshot or backup",
            ));
        }
    };
    let labels: Labels = match body.get("labels") {
        None | Some(Value::Null) => Labels::new(),
        Some(v) => labels_from(v)?,
    };
    check_labels(&labels)?;
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::invalid_input("description", "must be a string"));
        }
    };
    let server = ctx.state.server(id)?;
    let now_unix = ctx.clock.unix_secs(ctx.now_ms);
    let (os_flavor, os_version) = ctx.state.image_os(server.image);
    let description = description
        .unwrap_or_else(|| format!("{}-{}", server.name, crate::timestamp::rfc3339(now_unix)));
    // A plausible size: a tenth of the disk plus a little per server.
    let image_size = (server.disk_gb as f64 / 10.0 + (server.serial() % 10) as f64 / 10.0 * 0.5)
        .clamp(0.5, server.disk_gb as f64);
    let image = Snapshot {
        id: 0,
        kind,
        description,
        created: now_unix,
        from: (server.id, server.name.clone()),
        bound_to: (kind == "backup").then_some(server.id),
        labels,
        disk_size: server.disk_gb,
        image_size: (image_size * 100.0).round() / 100.0,
        ready_ms: 0,
        os_flavor,
        os_version,
        architecture: SERVER_TYPES[server.server_type].architecture,
    };
    let action = begin(ctx, id, Verb::CreateImage)?;
    if ctx.state.effect(action, id).is_none() {
        // A failed action makes no image.
        return answer(ctx, action, json!({ "image": null }));
    }
    let ready_ms = ctx.state.action(action).map_or(ctx.now_ms, |a| a.ends_ms);
    let image = ctx.state.add_image(Snapshot { ready_ms, ..image });
    let image = ctx
        .state
        .image(image)
        .map(|i| json::snapshot(i, ctx.now_ms))
        .unwrap_or(Value::Null);
    answer(ctx, action, json!({ "image": image }))
}

fn change_protection(ctx: &mut Ctx<'_>, id: u64, body: &Value) -> Answer {
    let flag = |field: &str| match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_input(field, "must be a boolean")),
    };
    let (delete, rebuild) = (flag("delete")?, flag("rebuild")?);
    // "currently delete and rebuild attribute needs to have the same
    // value": one given alone sets both.
    let value = match (delete, rebuild) {
        (Some(d), Some(r)) if d != r => {
            return Err(ApiError::invalid_input(
                "rebuild",
                "delete and rebuild must have the same value",
            ));
        }
        (Some(v), _) | (None, Some(v)) => v,
        (None, None) => {
            return Err(ApiError::invalid_input(
                "delete",
                "delete or rebuild is required",
            ));
        }
    };
    let action = begin(ctx, id, Verb::ChangeProtection)?;
    if let Some(server) = ctx.state.effect(action, id) {
        server.protect_delete = value;
        server.protect_rebuild = value;
    }
    answer(ctx, action, json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_dns_only_for_own_addresses() {
        let v4 = Ipv4Addr::new(10, 0, 0, 1);
        let v6: Ipv6Addr = "2001:db8:0:1::".parse().unwrap();
        assert_eq!(own_address("10.0.0.1", v4, v6).as_deref(), Some("10.0.0.1"));
        assert_eq!(own_address("10.0.0.2", v4, v6), None);
        assert_eq!(
            own_address("2001:db8:0:1:0::1", v4, v6).as_deref(),
            Some("2001:db8:0:1::1")
        );
        assert_eq!(own_address("2001:db8:0:2::1", v4, v6), None);
        assert_eq!(own_address("nonsense", v4, v6), None);
        assert!(valid_hostname("server01.example.com"));
        assert!(!valid_hostname("bad host"));
    }
}
