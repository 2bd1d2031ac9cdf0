//! UNIX seconds shown as text: the API's RFC 3339 form (the simulator's
//! JSON) and the tables of `hcc apikey list` and `hcc sessions`, which
//! cut it down. Always UTC.

use jiff::Timestamp;

/// `2016-01-30T23:55:00+00:00`, the form the Hetzner API uses.
///
/// Outside jiff's range (years -9999 to 9999) the nearest end of it is
/// shown: these are database and clock values, never that far off.
pub fn rfc3339(unix_secs: i64) -> String {
    let at = Timestamp::from_second(unix_secs).unwrap_or(if unix_secs < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    at.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
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
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59+00:00");
    }

    #[test]
    fn out_of_range_does_not_panic() {
        assert!(rfc3339(i64::MAX).starts_with("9999-"));
        assert!(rfc3339(i64::MIN).starts_with("-"), "{}", rfc3339(i64::MIN));
    }
}
