//! Time in the simulator: one monotonic clock for everything that runs
//! (actions, the token bucket), mapped to wall-clock UNIX time for the
//! timestamps the API shows.

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
        crate::timestamp::rfc3339(self.unix_secs(ms))
    }
}
