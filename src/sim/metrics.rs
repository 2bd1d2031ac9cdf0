//! `GET /servers/{id}/metrics`: made-up but plausible time series, a
//! function of the server, the series and the timestamp alone (a daily
//! sine wave plus hash noise), so the same question always gets the same
//! answer. Series names, the sample cap of 500 and the default of at most
//! 200 samples are the reference's.

use serde_json::{Map, Value, json};

use super::api_error::ApiError;
use super::ctx::{Answer, Ctx};
use super::query::Query;
use crate::timestamp::rfc3339;

/// The most samples one answer carries; a smaller step is widened.
pub const MAX_SAMPLES: i64 = 500;
/// Samples when no step is asked for.
const DEFAULT_SAMPLES: i64 = 200;

/// Each type's series, with the size of their typical values.
const SERIES: &[(&str, &[(&str, f64)])] = &[
    ("cpu", &[("cpu", 40.0)]),
    (
        "disk",
        &[
            ("disk.0.iops.read", 30.0),
            ("disk.0.iops.write", 80.0),
            ("disk.0.bandwidth.read", 1_500_000.0),
            ("disk.0.bandwidth.write", 3_000_000.0),
        ],
    ),
    (
        "network",
        &[
            ("network.0.pps.in", 400.0),
            ("network.0.pps.out", 300.0),
            ("network.0.bandwidth.in", 600_000.0),
            ("network.0.bandwidth.out", 250_000.0),
        ],
    ),
];

pub fn get(ctx: &mut Ctx<'_>, id: u64, q: &Query) -> Answer {
    ctx.state.server(id)?;
    let types: Vec<&str> = q
        .all("type")
        .into_iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .collect();
    if types.is_empty() {
        return Err(ApiError::invalid_param("type", "is required"));
    }
    let mut series = Vec::new();
    for t in &types {
        let found = SERIES
            .iter()
            .find(|(name, _)| name == t)
            .ok_or_else(|| ApiError::invalid_param("type", &format!("unknown type `{t}`")))?;
        series.extend(found.1.iter().copied());
    }
    let start = time(q, "start")?;
    let end = time(q, "end")?;
    if end < start {
        return Err(ApiError::invalid_param("end", "must not be before start"));
    }
    let span = end - start;
    let step = match q.get("step") {
        None | Some("") => ceil_div(span, DEFAULT_SAMPLES - 1),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 1.0)
            .map(|s| s as i64)
            .ok_or_else(|| ApiError::invalid_param("step", "must be a positive number"))?,
    }
    .max(1);
    // Widened so that no more than MAX_SAMPLES come back.
    let step = step.max(ceil_div(span, MAX_SAMPLES - 1));
    let count = span / step + 1;

    let mut time_series = Map::new();
    for (name, scale) in series {
        let values: Vec<Value> = (0..count)
            .map(|i| {
                let ts = start + i * step;
                json!([ts as f64, format_value(value(id, name, scale, ts))])
            })
            .collect();
        time_series.insert(name.to_string(), json!({ "values": values }));
    }
    Ok((
        200,
        json!({
            "metrics": {
                "start": rfc3339(start),
                "end": rfc3339(end),
                "step": step,
                "time_series": time_series,
            }
        }),
    ))
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// A required RFC 3339 time parameter as UNIX seconds. A `+` left
/// unescaped in the query arrives as a space and is taken back.
fn time(q: &Query, name: &str) -> Result<i64, ApiError> {
    let raw = q
        .get(name)
        .ok_or_else(|| ApiError::invalid_param(name, "is required"))?;
    raw.replace(' ', "+")
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| ApiError::invalid_param(name, "must be an RFC 3339 time"))
}

/// The value of series `name` of server `server` at `ts`: around `scale`,
/// following the time of day, with noise.
pub fn value(server: u64, name: &str, scale: f64, ts: i64) -> f64 {
    let seed = hash(server, name, 0);
    let phase = (seed % 1000) as f64 / 1000.0 * std::f64::consts::TAU;
    let day = (ts.rem_euclid(86_400)) as f64 / 86_400.0 * std::f64::consts::TAU;
    let noise = (hash(server, name, ts) % 10_000) as f64 / 10_000.0;
    let v = scale * (0.5 + 0.35 * (day + phase).sin() + 0.3 * (noise - 0.5));
    v.max(0.0)
}

fn format_value(v: f64) -> String {
    let rounded = (v * 1000.0).round() / 1000.0;
    format!("{rounded}")
}

/// FNV-1a over the server, the series name and the timestamp.
fn hash(server: u64, name: &str, ts: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = server
        .to_le_bytes()
        .into_iter()
        .chain(name.bytes())
        .chain(ts.to_le_bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Spread the low bits, which the modulo keeps.
    h ^= h >> 29;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_repeatable_and_plausible() {
        for ts in (0..86_400).step_by(600) {
            let v = value(4_200_001, "cpu", 40.0, ts);
            assert_eq!(v, value(4_200_001, "cpu", 40.0, ts));
            assert!((0.0..=40.0).contains(&v), "{v}");
        }
        assert_ne!(
            value(4_200_001, "cpu", 40.0, 600),
            value(4_200_002, "cpu", 40.0, 600)
        );
        assert_eq!(format_value(1.23456), "1.235");
    }
}
