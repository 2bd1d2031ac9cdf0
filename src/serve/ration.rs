//! Rationing what console pages make hcc spend at Hetzner. Every brokered
//! connect and every direct-mode refresh is one `request_console`, drawn
//! from the project's one rate budget; a customer who keeps reloading must
//! not take what the worker needs for queued commands, nor what other
//! customers' consoles need.
//!
//! Three limits, from the narrowest:
//! - a page session fetches fresh credentials at most every
//!   `console_refresh_every` seconds (the store counts its refreshes);
//! - a server gets at most [`PER_SERVER_BURST`] fetches at once and one
//!   more every [`PER_SERVER_EVERY`] (here, in this process): two tabs on
//!   one server reconnecting as fast as they may still fit, a script
//!   opening hundreds of sessions does not;
//! - console requests never take the shared budget below the reserve
//!   kept for commands (`command_reserve`, hetzner/budget.rs), and a page
//!   is told to come back instead of waiting for it.
//!
//! Hetzner documents a console URL as valid for one minute, not as good
//! for more than one connection, so credentials are never shared between
//! connects: each connect is rationed instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::reply::ApiError;

/// Fetches a server may have at once...
pub const PER_SERVER_BURST: f64 = 4.0;
/// ...and one more this often.
pub const PER_SERVER_EVERY: Duration = Duration::from_secs(5);
/// Servers not asked for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Per-server token buckets, shared by the request threads.
#[derive(Default)]
pub struct Ration {
    servers: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn at(self, now: Instant) -> Bucket {
        let refill = now.saturating_duration_since(self.at).as_secs_f64()
            / PER_SERVER_EVERY.as_secs_f64();
        Bucket {
            tokens: (self.tokens + refill).min(PER_SERVER_BURST),
            at: now,
        }
    }

    /// How long until it holds a token.
    fn wait(self) -> Duration {
        let short = 1.0 - self.tokens;
        if short > 0.0 {
            PER_SERVER_EVERY.mul_f64(short)
        } else {
            Duration::ZERO
        }
    }
}

impl Ration {
    /// Takes a fetch for `server` at `now`, or says how long to wait.
    pub fn take(&self, server: &str, now: Instant) -> Result<(), Duration> {
        self.with(server, now, true)
    }

    /// Whether a fetch for `server` would be given at `now`, taking none.
    pub fn check(&self, server: &str, now: Instant) -> Result<(), Duration> {
        self.with(server, now, false)
    }

    fn with(&self, server: &str, now: Instant, take: bool) -> Result<(), Duration> {
        let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        if servers.len() > 10_000 {
            servers.retain(|_, b| now.saturating_duration_since(b.at) < FORGET_AFTER);
        }
        let bucket = servers
            .get(server)
            .map_or(
                Bucket {
                    tokens: PER_SERVER_BURST,
                    at: now,
                },
                |b| *b,
            )
            .at(now);
        let wait = bucket.wait();
        if !wait.is_zero() {
            return Err(wait);
        }
        if take {
            servers.insert(
                server.to_string(),
                Bucket {
                    tokens: bucket.tokens - 1.0,
                    ..bucket
                },
            );
        }
        Ok(())
    }
}

/// The answer to a console request hcc will not pass on to Hetzner now:
/// 429, with when to come back; the console page shows the message and
/// counts down.
pub fn rationed(wait: Duration) -> ApiError {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::new(
        429,
        "rationed",
        format!("hcc is rationing requests to Hetzner; try again in {secs} s"),
    )
    .retry_after(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_gets_a_burst_then_one_fetch_per_interval() {
        let ration = Ration::default();
        let t = Instant::now();
        for _ in 0..4 {
            assert_eq!(ration.take("web1", t), Ok(()));
        }
        let wait = ration.take("web1", t).unwrap_err();
        assert_eq!(wait, PER_SERVER_EVERY);
        // Another server is not held back.
        assert_eq!(ration.take("web2", t), Ok(()));
        // Checking takes nothing.
        let later = t + PER_SERVER_EVERY;
        assert_eq!(ration.check("web1", later), Ok(()));
        assert_eq!(ration.take("web1", later), Ok(()));
        assert!(ration.take("web1", later).is_err());
    }

    #[test]
    fn the_answer_says_when_to_come_back() {
        let err = rationed(Duration::from_millis(4200));
        assert_eq!((err.status, err.code), (429, "rationed"));
        assert!(err.message.contains("in 5 s"), "{}", err.message);
    }
}
