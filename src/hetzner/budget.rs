//! The shared rate budget: Hetzner allows a project 3600 requests an hour,
//! refilling one a second, and reports the state in `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` (when the bucket is full
//! again). Every hcc process on the machine records the latest headers in
//! one place (SQLite, through [`Budget`]) and, before a request, reserves a
//! token there, waiting when the estimate says the bucket is too low
//! instead of earning a 429. Background work (sync) keeps a reserve free
//! for interactive work (console), which may spend it.
//!
//! The arithmetic here is pure and tested offline; the storage is the
//! caller's.

use std::time::Duration;

/// Who is asking: interactive work may spend the reserve, background work
/// may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Interactive,
    Background,
}

/// The bucket as last seen, plus what this machine spent since.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateState {
    pub limit: f64,
    pub remaining: f64,
    /// Unix seconds when the bucket will be full again.
    pub reset_at: f64,
    /// Unix seconds when `remaining` was true.
    pub observed_at: f64,
}

/// Where the budget lives; implemented by the store so that all processes
/// share it.
pub trait Budget {
    /// Reserves one token for `priority` and says how long to wait before
    /// using it.
    fn reserve(&self, priority: Priority, now: f64) -> Result<Duration, String>;
    /// Records what a response's headers said.
    fn record(&self, state: RateState) -> Result<(), String>;
}

/// A budget that never waits, for clients that need none (tests).
pub struct Unlimited;

impl Budget for Unlimited {
    fn reserve(&self, _: Priority, _: f64) -> Result<Duration, String> {
        Ok(Duration::ZERO)
    }
    fn record(&self, _: RateState) -> Result<(), String> {
        Ok(())
    }
}

impl RateState {
    /// Reads the three headers; None when any is missing or malformed.
    pub fn from_headers(
        limit: Option<&str>,
        remaining: Option<&str>,
        reset: Option<&str>,
        now: f64,
    ) -> Option<RateState> {
        let limit: f64 = limit?.trim().parse().ok()?;
        let remaining: f64 = remaining?.trim().parse().ok()?;
        let reset_at: f64 = reset?.trim().parse().ok()?;
        (limit > 0.0).then_some(RateState {
            limit,
            remaining: remaining.clamp(0.0, limit),
            reset_at,
            observed_at: now,
        })
    }

    /// Tokens per second. The headers tell it (the missing tokens come back
    /// by `reset_at`); when the bucket was full they cannot, and Hetzner's
    /// documented rate (the limit per hour) applies.
    pub fn refill_per_sec(&self) -> f64 {
        let missing = self.limit - self.remaining;
        let until_full = self.reset_at - self.observed_at;
        if missing >= 1.0 && until_full >= 1.0 {
            missing / until_full
        } else {
            self.limit / 3600.0
        }
    }

    /// Tokens in the bucket at `now`.
    pub fn estimate(&self, now: f64) -> f64 {
        let elapsed = (now - self.observed_at).max(0.0);
        (self.remaining + elapsed * self.refill_per_sec()).min(self.limit)
    }

    /// Tokens background work leaves for interactive work: 5% of the
    /// limit, at least 1 (180 of Hetzner's 3600).
    pub fn reserve(&self) -> f64 {
        (self.limit * 0.05).clamp(1.0, 200.0).floor()
    }

    /// Spends one token for `priority` at `now`: returns how long to wait
    /// until the bucket holds it, and the state after spending.
    pub fn spend(&self, priority: Priority, now: f64) -> (Duration, RateState) {
        let floor = match priority {
            Priority::Interactive => 0.0,
            Priority::Background => self.reserve(),
        };
        let estimate = self.estimate(now);
        let short = floor + 1.0 - estimate;
        let wait = if short > 0.0 {
            Duration::from_secs_f64((short / self.refill_per_sec()).min(3600.0))
        } else {
            Duration::ZERO
        };
        let after = RateState {
            remaining: estimate - 1.0,
            observed_at: now,
            ..*self
        };
        (wait, after)
    }

    /// How long until one token is there: what a 429 waits.
    pub fn next_token_in(&self, now: f64) -> Duration {
        let short = 1.0 - self.estimate(now);
        if short > 0.0 {
            Duration::from_secs_f64((short / self.refill_per_sec()).min(3600.0))
        } else {
            Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(limit: f64, remaining: f64, reset_in: f64) -> RateState {
        RateState {
            limit,
            remaining,
            reset_at: 1000.0 + reset_in,
            observed_at: 1000.0,
        }
    }

    #[test]
    fn reads_headers() {
        let s = RateState::from_headers(Some("3600"), Some("3590"), Some("1010"), 1000.0).unwrap();
        assert_eq!((s.limit, s.remaining), (3600.0, 3590.0));
        assert!((s.refill_per_sec() - 1.0).abs() < 1e-9);
        assert!(RateState::from_headers(Some("x"), Some("1"), Some("1"), 0.0).is_none());
        assert!(RateState::from_headers(None, Some("1"), Some("1"), 0.0).is_none());
    }

    #[test]
    fn refills_at_the_rate_the_headers_imply() {
        // 60/h bucket sped up: 30 missing, full in 30 s: one a second.
        let s = state(60.0, 30.0, 30.0);
        assert!((s.estimate(1010.0) - 40.0).abs() < 1e-9);
        assert_eq!(s.estimate(5000.0), 60.0);
        // A full bucket: Hetzner's documented rate.
        assert!((state(3600.0, 3600.0, 0.0).refill_per_sec() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn background_work_keeps_the_reserve() {
        let s = state(3600.0, 181.0, 3419.0);
        assert_eq!(s.reserve(), 180.0);
        let (wait, after) = s.spend(Priority::Background, 1000.0);
        assert_eq!(wait, Duration::ZERO);
        let (wait, _) = after.spend(Priority::Background, 1000.0);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        let (wait, _) = after.spend(Priority::Interactive, 1000.0);
        assert_eq!(wait, Duration::ZERO);
    }

    #[test]
    fn reservations_queue_up() {
        let mut s = state(60.0, 4.0, 56.0); // one token a second, reserve 3
        let mut waits = Vec::new();
        for _ in 0..3 {
            let (wait, after) = s.spend(Priority::Background, 1000.0);
            waits.push(wait.as_secs_f64().round() as u64);
            s = after;
        }
        assert_eq!(waits, [0, 1, 2]);
        assert_eq!(
            state(60.0, 0.0, 60.0).next_token_in(1000.0),
            Duration::from_secs(1)
        );
    }
}
