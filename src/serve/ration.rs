//! Rationing what console pages make hcc spend at Hetzner. Every brokered
//! connect and every direct-mode refresh is one `request_console`, drawn
//! from the project's one rate budget; a customer who keeps reloading must
//! not take what the worker needs for queued commands, nor what other
//! customers' consoles need.
//!
//! Three limits, from the narrowest:
//! - a page session fetches fresh credentials a few times at once (a
//!   reload or two) and then once every `console_refresh_every` seconds;
//! - a server gets `console_requests_per_server` fetches a minute, a
//!   third of them at once (here, in this process): two tabs on one
//!   server reconnecting as fast as they may still fit, a script opening
//!   hundreds of sessions does not;
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
use crate::store::SessionId;

/// Servers not asked for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Per-server token buckets, shared by the request threads.
#[derive(Default)]
pub struct Ration {
    buckets: Mutex<HashMap<Holder, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// An allowance: `burst` fetches at once, then one `every`.
#[derive(Clone, Copy)]
pub struct Rate {
    burst: f64,
    every: Duration,
}

/// Fetches a page session may make at once (a reload or two).
const PAGE_BURST: f64 = 3.0;

impl Rate {
    /// A server's: `per_minute`, a third of them at once.
    pub fn per_server(per_minute: u64) -> Rate {
        Rate {
            burst: (per_minute as f64 / 3.0).floor().max(1.0),
            every: Duration::from_secs_f64(60.0 / per_minute.max(1) as f64),
        }
    }

    /// A page session's: [`PAGE_BURST`], then one `every`.
    pub fn per_page(every: Duration) -> Rate {
        Rate {
            burst: PAGE_BURST,
            every: every.max(Duration::from_secs(1)),
        }
    }

    fn burst(self) -> f64 {
        self.burst
    }

    fn every(self) -> Duration {
        self.every
    }
}

/// What an allowance is for.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    Server(String),
    /// A page session, by the id of its first row.
    Page(SessionId),
}

impl Bucket {
    fn at(self, now: Instant, rate: Rate) -> Bucket {
        let refill =
            now.saturating_duration_since(self.at).as_secs_f64() / rate.every().as_secs_f64();
        Bucket {
            tokens: (self.tokens + refill).min(rate.burst()),
            at: now,
        }
    }

    /// How long until it holds a token.
    fn wait(self, rate: Rate) -> Duration {
        let short = 1.0 - self.tokens;
        if short > 0.0 {
            rate.every().mul_f64(short)
        } else {
            Duration::ZERO
        }
    }
}

impl Ration {
    /// Takes a fetch for `holder` at `now`, or says how long to wait.
    pub fn take(&self, holder: Holder, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.with(holder, rate, now, true)
    }

    /// Whether a fetch for `holder` would be given at `now`, taking none.
    pub fn check(&self, holder: Holder, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.with(holder, rate, now, false)
    }

    fn with(&self, holder: Holder, rate: Rate, now: Instant, take: bool) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < FORGET_AFTER);
        }
        let bucket = buckets
            .get(&holder)
            .map_or(
                Bucket {
                    tokens: rate.burst(),
                    at: now,
                },
                |b| *b,
            )
            .at(now, rate);
        let wait = bucket.wait(rate);
        if !wait.is_zero() {
            return Err(wait);
        }
        if take {
            buckets.insert(
                holder,
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
        let rate = Rate::per_server(12);
        let every = Duration::from_secs(5);
        let web = |name: &str| Holder::Server(name.into());
        let t = Instant::now();
        for _ in 0..4 {
            assert_eq!(ration.take(web("web1"), rate, t), Ok(()));
        }
        let wait = ration.take(web("web1"), rate, t).unwrap_err();
        assert_eq!(wait, every);
        // Another server is not held back.
        assert_eq!(ration.take(web("web2"), rate, t), Ok(()));
        // Checking takes nothing.
        let later = t + every;
        assert_eq!(ration.check(web("web1"), rate, later), Ok(()));
        assert_eq!(ration.take(web("web1"), rate, later), Ok(()));
        assert!(ration.take(web("web1"), rate, later).is_err());
    }

    #[test]
    fn a_page_may_reload_twice_then_waits_its_turn() {
        let ration = Ration::default();
        let rate = Rate::per_page(Duration::from_secs(10));
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                ration.take(Holder::Page(SessionId::new(7)), rate, t),
                Ok(())
            );
        }
        assert_eq!(
            ration.take(Holder::Page(SessionId::new(7)), rate, t),
            Err(Duration::from_secs(10))
        );
        assert_eq!(
            ration.take(Holder::Page(SessionId::new(8)), rate, t),
            Ok(())
        );
    }

    #[test]
    fn the_answer_says_when_to_come_back() {
        let err = rationed(Duration::from_millis(4200));
        assert_eq!((err.status, err.code), (429, "rationed"));
        assert!(err.message.contains("in 5 s"), "{}", err.message);
    }
}
