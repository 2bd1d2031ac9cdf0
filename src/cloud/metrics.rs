//! A server's metrics (Hetzner's CPU, disk and network time series), as
//! `hcc metrics` and `GET /api/v1/servers/{name}/metrics` ask for them:
//! the types and ranges they take, and the window asked of Hetzner. The
//! window's step fits its range (at most 360 points, for a graph) and its
//! end is aligned to a multiple of the step, so that every request within
//! one step asks the same question (`hcc serve` answers them from one
//! fetch).

use serde_json::Value;

use crate::hetzner::{Client, Error};
use crate::timestamp::rfc3339;

/// The metric types, in the order shown.
pub const TYPES: [&str; 3] = ["cpu", "disk", "network"];

/// How far back a graph reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Since {
    Hour,
    Day,
    Week,
    Month,
}

impl Since {
    pub const WORDS: &'static str = "1h, 24h, 7d, 30d";

    pub fn parse(word: &str) -> Result<Since, String> {
        match word {
            "1h" => Ok(Since::Hour),
            "24h" | "1d" => Ok(Since::Day),
            "7d" => Ok(Since::Week),
            "30d" => Ok(Since::Month),
            _ => Err(format!(
                "unknown range `{}` (known: {})",
                crate::verb::shown(word),
                Since::WORDS
            )),
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Since::Hour => "1h",
            Since::Day => "24h",
            Since::Week => "7d",
            Since::Month => "30d",
        }
    }

    /// The range, in seconds.
    pub fn secs(self) -> i64 {
        match self {
            Since::Hour => 3600,
            Since::Day => 86_400,
            Since::Week => 7 * 86_400,
            Since::Month => 30 * 86_400,
        }
    }

    /// Seconds between two samples: 240 to 360 points per range.
    pub fn step(self) -> i64 {
        match self {
            Since::Hour => 15,
            Since::Day => 300,
            Since::Week => 1800,
            Since::Month => 7200,
        }
    }
}

/// The types named by a comma list (or several), each once, in the order
/// of [`TYPES`] and joined by commas as Hetzner takes them: `cpu,network`.
/// An empty list is every type.
pub fn types<'a>(lists: impl IntoIterator<Item = &'a str>) -> Result<String, String> {
    let mut wanted = [false; TYPES.len()];
    for word in lists.into_iter().flat_map(|l| l.split(',')) {
        let word = word.trim();
        if word.is_empty() {
            continue;
        }
        let i = TYPES.iter().position(|t| *t == word).ok_or_else(|| {
            format!(
                "unknown metric type `{}` (known: {})",
                crate::verb::shown(word),
                TYPES.join(", ")
            )
        })?;
        wanted[i] = true;
    }
    if !wanted.contains(&true) {
        wanted = [true; TYPES.len()];
    }
    Ok(TYPES
        .iter()
        .zip(wanted)
        .filter(|(_, w)| *w)
        .map(|(t, _)| *t)
        .collect::<Vec<_>>()
        .join(","))
}

/// What is asked of Hetzner, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    /// A multiple of `step`: the same for every request within one step.
    pub end: i64,
    pub step: i64,
}

impl Window {
    /// The range `since` ending at the last multiple of its step at or
    /// before `now`.
    pub fn at(since: Since, now: i64) -> Window {
        let step = since.step();
        let end = now - now.rem_euclid(step);
        Window {
            start: end - since.secs(),
            end,
            step,
        }
    }

    /// When the next window begins: what is fetched for this one is good
    /// until then.
    pub fn expires(&self) -> i64 {
        self.end + self.step
    }
}

/// Hetzner's answer, `{"metrics": {start, end, step, time_series}}`: one
/// request.
pub fn fetch(client: &Client, id: i64, types: &str, window: Window) -> Result<Value, Error> {
    client.server_metrics(
        id,
        types,
        &rfc3339(window.start),
        &rfc3339(window.end),
        window.step as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_canonical() {
        assert_eq!(types(["network,cpu"]).unwrap(), "cpu,network");
        assert_eq!(types(["disk", "cpu,disk"]).unwrap(), "cpu,disk");
        assert_eq!(types([]).unwrap(), "cpu,disk,network");
        assert_eq!(types([""]).unwrap(), "cpu,disk,network");
        assert!(types(["cpu,memory"]).unwrap_err().contains("`memory`"));
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(Since::parse("7d"), Ok(Since::Week));
        assert_eq!(Since::parse("24h").unwrap().word(), "24h");
        assert!(Since::parse("2h").is_err());
    }

    #[test]
    fn windows_align_to_the_step() {
        for since in [Since::Hour, Since::Day, Since::Week, Since::Month] {
            let w = Window::at(since, 1_765_000_007);
            assert_eq!(w.end % w.step, 0);
            assert!(w.end <= 1_765_000_007 && 1_765_000_007 < w.expires());
            let points = (w.end - w.start) / w.step + 1;
            assert!((200..=361).contains(&points), "{since:?}: {points}");
            // Every moment of one step asks the same.
            assert_eq!(Window::at(since, w.end), w);
            assert_eq!(Window::at(since, w.expires() - 1), w);
            assert_ne!(Window::at(since, w.expires()), w);
        }
    }
}
