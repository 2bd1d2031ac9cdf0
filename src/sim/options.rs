//! `hcc sim`'s flags resolved into checked values; a bad flag is one line.

use std::time::Duration;

use super::bucket::parse_limit;
use super::faults::Faults;
use crate::cli::SimArgs;

/// More servers than this would only exhaust memory.
const MAX_SERVERS: u32 = 1_000_000;

#[derive(Debug)]
pub struct Options {
    pub listen: String,
    pub token: Option<String>,
    pub servers: u32,
    pub rate_limit: u32,
    pub action_ms: u64,
    pub faults: Faults,
    pub latency: Duration,
    pub time_scale: f64,
    pub seed: Option<u64>,
    pub stop_on_eof: bool,
}

impl Options {
    pub fn from_args(args: &SimArgs) -> Result<Options, String> {
        if let Some(token) = &args.token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err("invalid --token: want printable characters without spaces".into());
        }
        if args.servers > MAX_SERVERS {
            return Err(format!(
                "invalid --servers {}: at most {MAX_SERVERS}",
                args.servers
            ));
        }
        if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
            return Err(format!(
                "invalid --time-scale {}: want a positive factor",
                args.time_scale
            ));
        }
        if args.action_ms > 3_600_000 {
            return Err("invalid --action-ms: at most 3600000 (an hour)".into());
        }
        if args.latency > 60_000 {
            return Err("invalid --latency: at most 60000 ms".into());
        }
        Ok(Options {
            listen: args.listen.clone(),
            token: args.token.clone(),
            servers: args.servers,
            rate_limit: parse_limit(&args.rate_limit)?,
            action_ms: args.action_ms,
            faults: args
                .fail
                .as_deref()
                .map(Faults::parse)
                .transpose()?
                .unwrap_or_default(),
            latency: Duration::from_millis(args.latency),
            time_scale: args.time_scale,
            seed: args.seed,
            stop_on_eof: args.stop_on_eof,
        })
    }
}
