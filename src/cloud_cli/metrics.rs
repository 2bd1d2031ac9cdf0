//! `hcc metrics NAME [--type cpu,disk,network] [--since 1h|24h|7d|30d]
//! [--json]`: a managed server's time series from Hetzner, summed up one
//! line per series (min, average, max, last and a sparkline), or
//! Hetzner's metrics object as JSON.

use std::process::ExitCode;

use serde_json::Value;

use super::print_json;
use crate::cloud::metrics::{self, Since, Window};
use crate::cloud::{Cloud, server};
use crate::config::Settings;
use crate::error::Error;
use crate::hetzner::Priority;
use crate::home::Home;
use crate::table::Table;

/// Characters of a sparkline, lowest first, and how many a line has.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const SPARK_WIDTH: usize = 30;

pub fn metrics(
    home: &Home,
    settings: &Settings,
    name: &str,
    types: &[String],
    since: &str,
    json_out: bool,
) -> Result<ExitCode, Error> {
    let types = metrics::types(types.iter().map(String::as_str)).map_err(Error::Input)?;
    let since = Since::parse(since).map_err(Error::Input)?;
    let cloud = Cloud::open(home, settings, Priority::Command)?;
    let (found, _) = server::managed(&cloud, name)?;
    let window = Window::at(since, crate::store::now());
    let answer = metrics::fetch(&cloud.client, found.id, &types, window)?;
    if json_out {
        print_json(&answer)?;
    } else {
        crate::output::print(&render(name, since, &answer["metrics"]))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary: a heading line, then one row per series.
fn render(name: &str, since: Since, metrics: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let mut out = format!(
        "{name}: last {}, {} to {}, a sample every {} s\n",
        since.word(),
        text(&metrics["start"]),
        text(&metrics["end"]),
        metrics["step"]
    );
    let mut table = Table::new(&["SERIES", "MIN", "AVG", "MAX", "LAST", "SAMPLES", "GRAPH"]);
    let empty = serde_json::Map::new();
    let series = metrics["time_series"].as_object().unwrap_or(&empty);
    for (series, data) in series {
        let values = values(data);
        let unit = Unit::of(series);
        let Some(last) = values.last().copied() else {
            table.row(vec![
                series.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "0".into(),
                String::new(),
            ]);
            continue;
        };
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = values.iter().sum::<f64>() / values.len() as f64;
        table.row(vec![
            series.clone(),
            unit.show(min),
            unit.show(avg),
            unit.show(max),
            unit.show(last),
            values.len().to_string(),
            sparkline(&values, SPARK_WIDTH),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// A series' values, in time order (Hetzner gives `[time, "value"]` pairs).
fn values(series: &Value) -> Vec<f64> {
    let Some(pairs) = series["values"].as_array() else {
        return Vec::new();
    };
    let mut points: Vec<(f64, f64)> = pairs
        .iter()
        .filter_map(|pair| {
            let time = pair.get(0)?.as_f64()?;
            let value = match pair.get(1)? {
                Value::String(s) => s.parse::<f64>().ok()?,
                v => v.as_f64()?,
            };
            value.is_finite().then_some((time, value))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.into_iter().map(|(_, v)| v).collect()
}

/// The values in `width` buckets (each its average), drawn between the
/// lowest and highest bucket.
fn sparkline(values: &[f64], width: usize) -> String {
    if values.is_empty() {
        return String::new();
    }
    let width = width.min(values.len());
    let buckets: Vec<f64> = (0..width)
        .map(|i| {
            let (from, to) = (i * values.len() / width, (i + 1) * values.len() / width);
            let part = &values[from..to.max(from + 1)];
            part.iter().sum::<f64>() / part.len() as f64
        })
        .collect();
    let low = buckets.iter().copied().fold(f64::INFINITY, f64::min);
    let high = buckets.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    buckets
        .iter()
        .map(|b| {
            let level = if high > low {
                ((b - low) / (high - low) * (BARS.len() - 1) as f64).round() as usize
            } else {
                0
            };
            BARS[level.min(BARS.len() - 1)]
        })
        .collect()
}

/// How a series' values read.
#[derive(Debug, PartialEq)]
enum Unit {
    Percent,
    BytesPerSecond,
    PerSecond,
}

impl Unit {
    fn of(series: &str) -> Unit {
        if series == "cpu" {
            Unit::Percent
        } else if series.contains(".bandwidth.") {
            Unit::BytesPerSecond
        } else {
            Unit::PerSecond
        }
    }

    fn show(&self, v: f64) -> String {
        match self {
            Unit::Percent => format!("{v:.1}%"),
            Unit::PerSecond => format!("{}/s", short(v)),
            Unit::BytesPerSecond => {
                const PREFIXES: [&str; 5] = ["", "k", "M", "G", "T"];
                let mut v = v;
                let mut i = 0;
                while v.abs() >= 1000.0 && i + 1 < PREFIXES.len() {
                    v /= 1000.0;
                    i += 1;
                }
                format!("{} {}B/s", short(v), PREFIXES[i])
            }
        }
    }
}

/// Three significant digits or so: 0.123, 12.3, 123, 1234.
fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn units_read_well() {
        assert_eq!(Unit::of("cpu").show(41.234), "41.2%");
        assert_eq!(
            Unit::of("disk.0.bandwidth.read").show(1_534_000.0),
            "1.53 MB/s"
        );
        assert_eq!(Unit::of("network.0.pps.in").show(412.4), "412/s");
        assert_eq!(Unit::of("disk.0.iops.write").show(7.0), "7.00/s");
    }

    #[test]
    fn sparklines_span_the_range() {
        assert_eq!(
            sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(sparkline(&[5.0; 100], 10), "▁".repeat(10));
        assert_eq!(sparkline(&[1.0, 2.0], 30).chars().count(), 2);
        assert_eq!(sparkline(&[], 30), "");
    }

    #[test]
    fn the_summary_has_a_row_per_series() {
        let metrics = json!({
            "start": "2026-12-06T08:00:00+00:00", "end": "2026-12-06T09:00:00+00:00", "step": 15,
            "time_series": {
                "cpu": {"values": [[30.0, "20"], [15.0, "10"], [45.0, "30"]]},
                "disk.0.iops.read": {"values": []},
            }
        });
        let shown = render("web1", Since::Hour, &metrics);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines[0],
            "web1: last 1h, 2026-12-06T08:00:00+00:00 to 2026-12-06T09:00:00+00:00, a sample every 15 s"
        );
        assert!(lines[1].starts_with("SERIES"), "{shown}");
        let cpu: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cpu, ["cpu", "10.0%", "20.0%", "30.0%", "30.0%", "3", "▁▅█"]);
        assert!(lines[3].starts_with("disk.0.iops.read"), "{shown}");
    }
}
