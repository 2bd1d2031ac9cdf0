//! Prometheus metrics, as `hcc serve` answers them at `GET /metrics`.
//!
//! Two kinds. What only this process can see is counted here, in
//! process-wide counters: the HTTP answers of this `hcc serve` and the
//! Hetzner requests this process made (its console requests, and the
//! worker's when it runs inside, `--worker`). What lives in the database
//! (the queue, command durations, the shared rate budget, console links) is
//! read from it at each scrape ([`Snapshot`], filled by the store), so it is
//! right whichever process did the work: a separate `hcc worker`, cron's
//! `hcc sync`, a panel's INSERT.
//!
//! prometheus-client writes the exposition text; this module only says
//! what goes in it. It knows neither SQLite nor HTTP, so the Hetzner client
//! can count its requests here without depending on either.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The Prometheus text format, version 0.0.4: what every Prometheus and
/// every `curl | grep` understands.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the command duration buckets, in seconds. The
/// `commands` table records whole seconds, so finer buckets would only
/// pretend to a precision the data lacks.
pub const BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// The console link states shown by `hcc_console_links`.
pub const LINK_STATES: [&str; 3] = ["pending", "opened", "expired"];

type StatusLabel = [(&'static str, String); 1];

/// Answers of this `hcc serve`, by status.
static HTTP_REQUESTS: LazyLock<Family<StatusLabel, Counter>> = LazyLock::new(Family::default);
/// Hetzner API requests of this process, by the status of the answer.
static HETZNER_REQUESTS: LazyLock<Family<StatusLabel, Counter>> = LazyLock::new(Family::default);

/// Counts one answer of `hcc serve`.
pub fn http_request(status: u16) {
    HTTP_REQUESTS
        .get_or_create(&[("status", status.to_string())])
        .inc();
}

/// Counts one attempt of a Hetzner API request (each retry is one): the
/// answer's HTTP status, `None` when no answer came (a reset, a timeout,
/// an unreachable host). The Hetzner client calls it; this module knows
/// nothing of the client.
pub fn hetzner_request(status: Option<u16>) {
    let status = status.map_or_else(|| "none".to_string(), |status| status.to_string());
    HETZNER_REQUESTS.get_or_create(&[("status", status)]).inc();
}

/// One histogram: per-bucket counts (not cumulative; observations above
/// the last bound only in `count`), their sum and count.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: [u64; BUCKETS.len()],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    /// Records `times` observations of `secs` seconds.
    pub fn observe(&mut self, secs: f64, times: u64) {
        let secs = secs.max(0.0);
        if let Some(i) = BUCKETS.iter().position(|bound| secs <= *bound) {
            self.buckets[i] += times;
        }
        self.sum += secs * times as f64;
        self.count += times;
    }
}

/// Histograms by (verb, outcome).
pub type Histograms = BTreeMap<(&'static str, &'static str), Histogram>;

/// What the database says at one moment: filled by
/// `Store::metrics_snapshot`, encoded at the scrape.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Commands by state: the state's word and the count, every state in
    /// the order shown (the store names them: `store::CommandState`).
    pub commands: Vec<(&'static str, u64)>,
    /// Age of the oldest queued command, 0 when none is queued.
    pub oldest_queued_secs: f64,
    /// From queued (`created_at`) to finished, by verb and outcome.
    pub durations: Histograms,
    /// From the last start (`started_at`) to finished.
    pub runs: Histograms,
    /// The shared rate budget (limit per hour, tokens left now), once a
    /// Hetzner answer has described it.
    pub rate: Option<(f64, f64)>,
    /// Console links ever issued and ever opened (a console session
    /// began), from SQLite's AUTOINCREMENT counters, which never go back.
    pub links_issued: u64,
    pub links_opened: u64,
    /// Links the table keeps, one entry per [`LINK_STATES`].
    pub links: [u64; LINK_STATES.len()],
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "hcc_commands",
            "Commands in the queue table by state.",
            None,
            MetricType::Gauge,
        )?;
        for &(state, n) in &self.commands {
            metric
                .encode_family(&[("state", state)])?
                .encode_gauge(&n)?;
        }
        encoder
            .encode_descriptor(
                "hcc_queue_oldest_seconds",
                "Age of the oldest queued command, 0 when none waits.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.oldest_queued_secs)?;
        for (name, help, histograms) in [
            (
                "hcc_command_duration_seconds",
                "Finished commands: seconds from queued to finished, by verb and outcome (whole seconds).",
                &self.durations,
            ),
            (
                "hcc_command_run_seconds",
                "Finished commands: seconds from the last start to finished, by verb and outcome (whole seconds).",
                &self.runs,
            ),
        ] {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for ((verb, outcome), h) in histograms {
                let buckets: Vec<(f64, u64)> = BUCKETS.iter().copied().zip(h.buckets).collect();
                metric
                    .encode_family(&[("verb", *verb), ("outcome", *outcome)])?
                    .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
            }
        }
        if let Some((limit, remaining)) = self.rate {
            encoder
                .encode_descriptor(
                    "hcc_rate_budget_remaining",
                    "Hetzner API requests left in the shared budget now, as hcc estimates them.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&remaining)?;
            encoder
                .encode_descriptor(
                    "hcc_rate_budget_limit",
                    "Hetzner API requests allowed per hour, as the last answer said.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_gauge(&limit)?;
        }
        encoder
            .encode_descriptor(
                "hcc_console_links_issued",
                "One-time console links ever issued.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&self.links_issued, None)?;
        encoder
            .encode_descriptor(
                "hcc_console_links_opened",
                "One-time console links ever opened into a console session.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&self.links_opened, None)?;
        let mut metric = encoder.encode_descriptor(
            "hcc_console_links",
            "Console links hcc keeps (until 7 days past expiry) by state.",
            None,
            MetricType::Gauge,
        )?;
        for (state, n) in LINK_STATES.iter().zip(self.links) {
            metric
                .encode_family(&[("state", *state)])?
                .encode_gauge(&n)?;
        }
        Ok(())
    }
}

/// The whole exposition: this process's counters and the snapshot.
pub fn render(snapshot: Snapshot) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register(
        "hcc_http_requests",
        "Answers of this hcc serve process by HTTP status",
        HTTP_REQUESTS.clone(),
    );
    registry.register(
        "hcc_hetzner_requests",
        "Hetzner API requests of this process (retries included) by HTTP status of the answer; `none`: no answer",
        HETZNER_REQUESTS.clone(),
    );
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = Histogram::default();
        h.observe(0.0, 2);
        h.observe(1.0, 1);
        h.observe(3.0, 1);
        h.observe(-5.0, 1);
        h.observe(601.0, 1);
        assert_eq!(h.buckets[0], 4, "0, 1 and a negative are at most 1 s");
        assert_eq!(h.buckets[2], 1, "3 s is in the 5 s bucket");
        assert_eq!(h.buckets.iter().sum::<u64>(), 5, "601 s only in +Inf");
        assert_eq!((h.count, h.sum), (6, 605.0));
    }

    #[test]
    fn the_exposition_has_every_family_with_its_type() {
        let mut snapshot = Snapshot {
            commands: vec![("queued", 3), ("running", 1), ("done", 7), ("failed", 2)],
            rate: Some((3600.0, 3500.5)),
            links_issued: 4,
            links_opened: 1,
            links: [2, 1, 1],
            ..Snapshot::default()
        };
        let mut h = Histogram::default();
        h.observe(0.0, 6);
        h.observe(4.0, 1);
        snapshot.durations.insert(("start", "done"), h);
        // Statuses no other test counts: the counters are process-wide.
        http_request(418);
        hetzner_request(Some(599));
        hetzner_request(None);
        let text = render(snapshot).unwrap();
        for line in [
            "# TYPE hcc_commands gauge",
            "hcc_commands{state=\"queued\"} 3",
            "hcc_commands{state=\"failed\"} 2",
            "# TYPE hcc_command_duration_seconds histogram",
            "hcc_command_duration_seconds_bucket{verb=\"start\",outcome=\"done\",le=\"1\"} 6",
            "hcc_command_duration_seconds_bucket{verb=\"start\",outcome=\"done\",le=\"5\"} 7",
            "hcc_command_duration_seconds_bucket{verb=\"start\",outcome=\"done\",le=\"+Inf\"} 7",
            "hcc_command_duration_seconds_count{verb=\"start\",outcome=\"done\"} 7",
            "hcc_command_duration_seconds_sum{verb=\"start\",outcome=\"done\"} 4.0",
            "# TYPE hcc_command_run_seconds histogram",
            "hcc_rate_budget_remaining 3500.5",
            "hcc_rate_budget_limit 3600.0",
            "# TYPE hcc_console_links_issued_total counter",
            "hcc_console_links_issued_total 4",
            "hcc_console_links_opened_total 1",
            "hcc_console_links{state=\"pending\"} 2",
            "hcc_http_requests_total{status=\"418\"} 1",
            "hcc_hetzner_requests_total{status=\"599\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(
            text.contains("\nhcc_hetzner_requests_total{status=\"none\"} "),
            "{text}"
        );
    }
}
