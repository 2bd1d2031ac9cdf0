//! The token bucket behind the `RateLimit-*` headers and the 429s.
//!
//! Pure arithmetic on a clock the caller passes in (real seconds since the
//! simulator started), so it is unit-tested without sleeping. The bucket
//! holds `limit` tokens, starts full, and refills `limit` per hour, as
//! Hetzner's does ("when your limit is 3600 requests per hour, the number
//! of remaining requests will increase by 1 every second"); `time_scale`
//! speeds that hour up so tests can watch a refill.

/// What the headers report after a request: `RateLimit-Limit`,
/// `RateLimit-Remaining`, and how long until the bucket is full again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub limit: u32,
    pub remaining: u32,
    /// Real seconds until the bucket holds `limit` tokens again.
    pub full_in_secs: f64,
}

#[derive(Debug)]
pub struct Bucket {
    limit: u32,
    /// Tokens added per real second.
    per_sec: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date, in real seconds.
    at: f64,
}

impl Bucket {
    /// A full bucket of `limit` tokens refilling `limit` per hour of
    /// simulated time, which runs `time_scale` times faster than real time.
    pub fn new(limit: u32, time_scale: f64) -> Bucket {
        Bucket {
            limit,
            per_sec: f64::from(limit) / 3600.0 * time_scale,
            tokens: f64::from(limit),
            at: 0.0,
        }
    }

    /// Spends one token if there is one; `Err` when the bucket is empty.
    /// Both carry the state to report in the headers.
    pub fn take(&mut self, now_secs: f64) -> Result<Snapshot, Snapshot> {
        self.refill(now_secs);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(self.snapshot())
        } else {
            Err(self.snapshot())
        }
    }

    /// The state without spending a token (for injected faults, which the
    /// budget never sees).
    pub fn peek(&mut self, now_secs: f64) -> Snapshot {
        self.refill(now_secs);
        self.snapshot()
    }

    fn refill(&mut self, now_secs: f64) {
        // A clock that steps back (it should not) must not drain the bucket.
        let elapsed = (now_secs - self.at).max(0.0);
        self.tokens = (self.tokens + elapsed * self.per_sec).min(f64::from(self.limit));
        self.at = self.at.max(now_secs);
    }

    fn snapshot(&self) -> Snapshot {
        let missing = f64::from(self.limit) - self.tokens;
        Snapshot {
            limit: self.limit,
            // Whole tokens only: a client may spend exactly this many.
            remaining: self.tokens.floor() as u32,
            full_in_secs: if missing <= 0.0 {
                0.0
            } else {
                missing / self.per_sec
            },
        }
    }
}

/// Parses `--rate-limit`: `N/h` or a plain `N`, at least 1.
pub fn parse_limit(text: &str) -> Result<u32, String> {
    let number = text.strip_suffix("/h").unwrap_or(text);
    match number.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "invalid --rate-limit `{text}`: want requests per hour, e.g. 3600/h"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_spends_down_to_a_refusal() {
        let mut bucket = Bucket::new(3, 1.0);
        assert_eq!(bucket.take(0.0).map(|s| s.remaining), Ok(2));
        assert_eq!(bucket.take(0.0).map(|s| s.remaining), Ok(1));
        assert_eq!(bucket.take(0.0).map(|s| s.remaining), Ok(0));
        let refused = bucket.take(0.0).unwrap_err();
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.limit, 3);
        // 3 per hour: one token every 1200 s, three to refill.
        assert!((refused.full_in_secs - 3600.0).abs() < 1e-6);
    }

    #[test]
    fn refills_one_token_per_share_of_the_hour() {
        let mut bucket = Bucket::new(3600, 1.0);
        for _ in 0..3600 {
            assert!(bucket.take(0.0).is_ok());
        }
        assert!(bucket.take(0.5).is_err());
        let snap = bucket.take(1.5).expect("one token after a second");
        assert_eq!(snap.remaining, 0);
        assert_eq!(bucket.peek(11.5).remaining, 10);
        // Never above the limit.
        assert_eq!(bucket.peek(1e9).remaining, 3600);
        assert_eq!(bucket.peek(1e9).full_in_secs, 0.0);
    }

    #[test]
    fn time_scale_speeds_the_refill() {
        let mut bucket = Bucket::new(60, 60.0);
        for _ in 0..60 {
            assert!(bucket.take(0.0).is_ok());
        }
        // 60/h at 60x: one per real second.
        assert_eq!(bucket.peek(1.0).remaining, 1);
        assert!((bucket.peek(1.0).full_in_secs - 59.0).abs() < 1e-6);
    }

    #[test]
    fn parses_limits() {
        assert_eq!(parse_limit("3600/h"), Ok(3600));
        assert_eq!(parse_limit("5"), Ok(5));
        for bad in ["", "0", "0/h", "-1/h", "5/m", "x/h", "1.5"] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }
}
