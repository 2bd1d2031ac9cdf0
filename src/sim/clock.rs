//! Time in the simulator: one monotonic clock for everything that runs
//! (actions, the token bucket), mapped to wall-clock UNIX time for the
//! timestamps the API shows, and RFC 3339 formatting without a date crate.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Clock {
    start: Instant,
    /// UNIX time of `start`, in milliseconds.
    start_unix_ms: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let start_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            start: Instant::now(),
            start_unix_ms,
        }
    }

    /// Milliseconds since the simulator started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Seconds since the simulator started, with sub-second precision.
    pub fn now_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The UNIX time now, with sub-second precision.
    pub fn unix_now_secs(&self) -> f64 {
        self.start_unix_ms as f64 / 1000.0 + self.now_secs()
    }

    /// The UNIX time (seconds) of a point given in milliseconds since start.
    pub fn unix_secs(&self, ms: u64) -> i64 {
        ((self.start_unix_ms + ms) / 1000) as i64
    }

    /// The RFC 3339 timestamp of a point given in milliseconds since start.
    pub fn rfc3339(&self, ms: u64) -> String {
        rfc3339(self.unix_secs(ms))
    }
}

/// `2016-01-30T23:55:00+00:00`, the form the API uses.
pub fn rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's
/// `civil_from_days` (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(1_454_198_100), "2016-01-30T23:55:00+00:00");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59+00:00");
    }
}
