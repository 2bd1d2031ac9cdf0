//! The shared rate budget: Hetzner allows a project 3600 requests an hour,
//! refilling one a second, and reports the state in `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` (when the bucket is full
//! again). Every hcc process on the machine records the latest headers in
//! one place (SQLite, through [`Budget`]) and, before a request, reserves a
//! token there, waiting when the estimate says the bucket is too low
//! instead of earning a 429.
//!
//! Three classes draw from the one bucket, in order of who may go lowest:
//! queued commands (a customer's reboot), then interactive console
//! requests, then background syncs. Consoles never take the bucket below
//! the reserve kept for commands (`command_reserve`, a share of the
//! limit), and syncs leave a further share for consoles: however many
//! console pages a customer keeps reconnecting, the worker still runs the
//! queue.
//!
//! A response's headers are merged into the shared state, never written
//! over it: when the server answered, the requests other processes reserved
//! meanwhile were not all counted yet, and forgetting them over-spends.
//!
//! The arithmetic here is pure and tested offline; the storage is the
//! caller's.

use std::time::Duration;

/// Who is asking: the class a request draws from the bucket as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Queued commands and an operator's own commands: may spend the
    /// bucket to its last token.
    Command,
    /// Console credentials for a page, `hcc vnc` and the dashboard's
    /// lookups: stop at the commands' reserve.
    Console,
    /// Syncs: stop at the commands' reserve plus the consoles' share.
    Background,
}

/// The share of the limit that consoles and syncs leave for commands, when
/// nothing says otherwise (the `command_reserve` setting's default).
pub const DEFAULT_COMMAND_SHARE: f64 = 0.2;

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

/// One reserved token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// How long to wait before using it.
    pub wait: Duration,
    /// Its number among every reservation of the shared budget: the
    /// reservations numbered after it were made while its request was out.
    pub number: Option<u64>,
}

/// Where the budget lives; implemented by the store so that all processes
/// share it.
pub trait Budget {
    /// Reserves one token for `priority`, `command_share` of the limit
    /// being kept for commands.
    fn reserve(
        &self,
        priority: Priority,
        command_share: f64,
        now: f64,
    ) -> Result<Reservation, String>;
    /// Merges what the headers of the answer to `reservation`'s request
    /// said ([`RateState::merge`]).
    fn record(&self, state: RateState, reservation: Option<u64>) -> Result<(), String>;
    /// Gives back a token whose request was never sent (the wait was too
    /// long for the caller, or the connection was refused).
    fn refund(&self, now: f64) -> Result<(), String>;
    /// Another handle on the same budget, for a client on another thread
    /// (a parallel listing); `None` when this budget cannot be shared.
    fn another(&self) -> Option<Box<dyn Budget + Send>> {
        None
    }
}

/// A budget that never waits, for clients that need none (tests).
pub struct Unlimited;

impl Budget for Unlimited {
    fn reserve(&self, _: Priority, _: f64, _: f64) -> Result<Reservation, String> {
        Ok(Reservation {
            wait: Duration::ZERO,
            number: None,
        })
    }
    fn record(&self, _: RateState, _: Option<u64>) -> Result<(), String> {
        Ok(())
    }
    fn refund(&self, _: f64) -> Result<(), String> {
        Ok(())
    }
    fn another(&self) -> Option<Box<dyn Budget + Send>> {
        Some(Box::new(Unlimited))
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
        if self.tells_rate() {
            (self.limit - self.remaining) / (self.reset_at - self.observed_at)
        } else {
            self.limit / 3600.0
        }
    }

    /// Whether the headers told the refill rate: a token or more was
    /// missing, coming back a second or more later.
    fn tells_rate(&self) -> bool {
        self.limit - self.remaining >= 1.0 && self.reset_at - self.observed_at >= 1.0
    }

    /// Tokens in the bucket at `now`; negative while reservations wait
    /// for tokens still to come.
    pub fn estimate(&self, now: f64) -> f64 {
        let elapsed = (now - self.observed_at).max(0.0);
        (self.remaining + elapsed * self.refill_per_sec()).min(self.limit)
    }

    /// Tokens free at `now`, as shown to people: never below zero.
    pub fn available(&self, now: f64) -> f64 {
        self.estimate(now).max(0.0)
    }

    /// `remaining` tokens at `now`, refilling at `per_sec`: `reset_at`
    /// moves with every token spent, so the rate the state implies stays.
    fn at(&self, remaining: f64, now: f64, per_sec: f64) -> RateState {
        RateState {
            remaining,
            observed_at: now,
            reset_at: now + (self.limit - remaining).max(0.0) / per_sec,
            ..*self
        }
    }

    /// The shared state after an answer's headers (`told`): `since`
    /// reservations were made after the one the request was sent under.
    ///
    /// The headers are the server's count when it answered, which may miss
    /// reservations made after the request (taken as not yet counted); the
    /// stored state counts every reservation made here, but not requests
    /// from elsewhere (another machine, the `hcloud` CLI). Each may be too
    /// high, never too low, so the lower wins. The refill rate is the
    /// headers': the server's own.
    pub fn merge(&self, told: &RateState, since: u64, now: f64) -> RateState {
        let from_headers = told.estimate(now) - since as f64;
        let same_bucket = self.limit == told.limit;
        let remaining = if same_bucket {
            self.estimate(now).min(from_headers)
        } else {
            // Another bucket altogether (a new token, another project).
            from_headers
        };
        // An answer from a (nearly) full bucket cannot tell the rate: the
        // one known stays. Taking the documented hourly rate instead would
        // let a bucket that refills faster (a sped-up test) look slow for
        // good once the waiting it causes lets the server's bucket fill up.
        let rate = if same_bucket && !told.tells_rate() {
            self.refill_per_sec()
        } else {
            told.refill_per_sec()
        };
        told.at(remaining, now, rate)
    }

    /// Tokens background work leaves for consoles beyond the commands'
    /// reserve: 5% of the limit, at least 1 (180 of Hetzner's 3600).
    pub fn reserve(&self) -> f64 {
        (self.limit * 0.05).clamp(1.0, 200.0).floor()
    }

    /// The tokens `priority` must leave in the bucket: none for commands,
    /// `command_share` of the limit for consoles, that and
    /// [`RateState::reserve`] for syncs. Never the whole bucket: each
    /// class can always spend its last token eventually.
    pub fn floor(&self, priority: Priority, command_share: f64) -> f64 {
        let commands = (self.limit * command_share.clamp(0.0, 1.0)).floor();
        let floor = match priority {
            Priority::Command => 0.0,
            Priority::Console => commands,
            Priority::Background => commands + self.reserve(),
        };
        floor.min(self.limit - 1.0).max(0.0)
    }

    /// How long `priority` would wait at `now` for a token, without
    /// spending it.
    pub fn wait(&self, priority: Priority, command_share: f64, now: f64) -> Duration {
        let short = self.floor(priority, command_share) + 1.0 - self.estimate(now);
        if short > 0.0 {
            Duration::from_secs_f64((short / self.refill_per_sec()).min(3600.0))
        } else {
            Duration::ZERO
        }
    }

    /// Spends one token for `priority` at `now`: returns how long to wait
    /// until the bucket holds it, and the state after spending.
    pub fn spend(&self, priority: Priority, command_share: f64, now: f64) -> (Duration, RateState) {
        let wait = self.wait(priority, command_share, now);
        let estimate = self.estimate(now);
        (wait, self.at(estimate - 1.0, now, self.refill_per_sec()))
    }

    /// The state with one token given back at `now`.
    pub fn refunded(&self, now: f64) -> RateState {
        let remaining = (self.estimate(now) + 1.0).min(self.limit);
        self.at(remaining, now, self.refill_per_sec())
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

    const SHARE: f64 = DEFAULT_COMMAND_SHARE;

    #[test]
    fn each_class_keeps_the_reserve_of_the_ones_above_it() {
        // 3600/h: commands keep 720, consoles 180 more.
        let s = state(3600.0, 901.0, 2699.0);
        assert_eq!(s.floor(Priority::Command, SHARE), 0.0);
        assert_eq!(s.floor(Priority::Console, SHARE), 720.0);
        assert_eq!(s.floor(Priority::Background, SHARE), 900.0);
        let (wait, after) = s.spend(Priority::Background, SHARE, 1000.0);
        assert_eq!(wait, Duration::ZERO);
        let (wait, _) = after.spend(Priority::Background, SHARE, 1000.0);
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(after.wait(Priority::Console, SHARE, 1000.0), Duration::ZERO);
        // Consoles stop at the commands' reserve; commands go on.
        let low = state(3600.0, 720.0, 2880.0);
        assert!(low.wait(Priority::Console, SHARE, 1000.0) >= Duration::from_millis(900));
        assert_eq!(low.wait(Priority::Command, SHARE, 1000.0), Duration::ZERO);
        // A share of nothing: consoles may spend what commands may.
        assert_eq!(low.wait(Priority::Console, 0.0, 1000.0), Duration::ZERO);
    }

    #[test]
    fn a_tiny_bucket_never_reserves_all_of_itself() {
        let s = state(2.0, 2.0, 0.0);
        assert!(s.floor(Priority::Background, 0.9) <= 1.0);
        assert_eq!(s.wait(Priority::Background, 0.9, 1000.0), Duration::ZERO);
    }

    #[test]
    fn spending_keeps_the_refill_rate() {
        // 60/h sped up: one a second. Ten spent must not make the
        // remaining ones come back faster.
        let mut s = state(60.0, 50.0, 10.0);
        for _ in 0..10 {
            s = s.spend(Priority::Command, SHARE, 1000.0).1;
        }
        assert_eq!(s.remaining, 40.0);
        assert!((s.refill_per_sec() - 1.0).abs() < 1e-9);
        assert!((s.estimate(1005.0) - 45.0).abs() < 1e-9);
    }

    #[test]
    fn an_answer_from_a_full_bucket_keeps_the_known_rate() {
        // 60/h sped up to one a second, then an answer from a full bucket
        // (no token missing: no rate in it).
        let stored = state(60.0, 10.0, 50.0);
        let full = state(60.0, 60.0, 0.0);
        let merged = stored.merge(&full, 0, 1000.0);
        assert!((merged.refill_per_sec() - 1.0).abs() < 1e-9);
        assert_eq!(merged.remaining, 10.0);
        // Another bucket: its own (documented) rate.
        let other = stored.merge(&state(3600.0, 3600.0, 0.0), 0, 1000.0);
        assert!((other.refill_per_sec() - 1.0).abs() < 1e-9);
        assert_eq!(other.remaining, 3600.0);
    }

    #[test]
    fn headers_merge_with_reservations_made_meanwhile() {
        // Stored: 50 left; the request went out, then three more were
        // reserved here (47). The answer says 49: it counted the request
        // and one of the three, or none; the three count as not yet seen.
        let stored = state(60.0, 47.0, 13.0);
        let told = state(60.0, 49.0, 11.0);
        let merged = stored.merge(&told, 3, 1000.0);
        assert_eq!(merged.remaining, 46.0);
        // Overwriting would have said 49: three tokens spent twice.
        // Requests from elsewhere the store never saw: the headers win.
        let merged = stored.merge(&state(60.0, 20.0, 40.0), 0, 1000.0);
        assert_eq!(merged.remaining, 20.0);
        // Headers that say more than the store knows: the store wins (its
        // reservations may still be on their way).
        let merged = stored.merge(&state(60.0, 58.0, 2.0), 0, 1000.0);
        assert_eq!(merged.remaining, 47.0);
        // The rate is the server's: 1 a second, whatever was spent.
        assert!((merged.refill_per_sec() - 1.0).abs() < 1e-9);
        // Another bucket (a new limit): the headers, less what is out.
        let merged = stored.merge(&state(3600.0, 3000.0, 600.0), 2, 1000.0);
        assert_eq!(merged.remaining, 2998.0);
    }

    #[test]
    fn the_budget_shown_is_never_negative() {
        let (_, after) = state(60.0, 0.0, 60.0).spend(Priority::Command, SHARE, 1000.0);
        assert!(after.estimate(1000.0) < 0.0);
        assert_eq!(after.available(1000.0), 0.0);
    }

    #[test]
    fn reservations_queue_up() {
        let mut s = state(60.0, 4.0, 56.0); // one token a second, reserve 3
        let mut waits = Vec::new();
        for _ in 0..3 {
            let (wait, after) = s.spend(Priority::Background, 0.0, 1000.0);
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
