//! Fault injection: parsing `--fail` and choosing a fault for a request.
//!
//! Pure: the caller rolls the dice (a seeded generator) and passes the
//! roll in, so a spec and a roll always give the same fault. A fault is
//! chosen before the request has any effect, so a client may safely retry
//! whatever a fault answered, POSTs included.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 `rate_limit_exceeded`, without spending a token.
    RateLimited,
    /// 500 `server_error` in the JSON envelope.
    ServerError,
    /// 502/503/504 with a plain HTML body, as a load balancer in front of
    /// the API sends them (hcloud-go retries 502/504 without a JSON body).
    Gateway(u16),
    /// 504 with the JSON code `timeout` ("please retry").
    Timeout,
    /// The connection closes without an answer.
    Reset,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::RateLimited => f.write_str("429"),
            Fault::ServerError => f.write_str("500"),
            Fault::Gateway(status) => write!(f, "{status}"),
            Fault::Timeout => f.write_str("timeout"),
            Fault::Reset => f.write_str("reset"),
        }
    }
}

/// The parsed `--fail` spec: faults with their probabilities.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Faults {
    faults: Vec<(Fault, f64)>,
}

impl Faults {
    /// Parses `KIND:P,...` with KIND one of 429, 500, 502, 503, 504,
    /// timeout, reset and P a probability; the probabilities may add up to
    /// at most 1.
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let bad = |why: &str| format!("invalid --fail `{spec}`: {why}");
        let mut faults = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (kind, p) = item
                .split_once(':')
                .ok_or_else(|| bad(&format!("`{item}` is not KIND:PROBABILITY")))?;
            let fault = match kind.trim() {
                "429" => Fault::RateLimited,
                "500" => Fault::ServerError,
                "502" => Fault::Gateway(502),
                "503" => Fault::Gateway(503),
                "504" => Fault::Gateway(504),
                "timeout" => Fault::Timeout,
                "reset" => Fault::Reset,
                other => {
                    return Err(bad(&format!(
                        "unknown fault `{other}` (want 429, 500, 502, 503, 504, timeout or reset)"
                    )));
                }
            };
            let p: f64 = p
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| bad(&format!("`{p}` is not a probability between 0 and 1")))?;
            if faults.iter().any(|(f, _)| *f == fault) {
                return Err(bad(&format!("`{kind}` given twice")));
            }
            faults.push((fault, p));
        }
        let total: f64 = faults.iter().map(|(_, p)| p).sum();
        if total > 1.0 + 1e-9 {
            return Err(bad("the probabilities add up to more than 1"));
        }
        Ok(Faults { faults })
    }

    pub fn is_empty(&self) -> bool {
        self.faults.iter().all(|(_, p)| *p == 0.0)
    }

    /// The fault for a request whose roll (uniform in [0, 1)) is `roll`:
    /// each fault owns a slice of [0, 1) as wide as its probability.
    pub fn pick(&self, roll: f64) -> Option<Fault> {
        let mut edge = 0.0;
        for (fault, p) in &self.faults {
            edge += p;
            if roll < edge {
                return Some(*fault);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let faults = Faults::parse("429:0.1,500:0.05,reset:0.02").unwrap();
        assert_eq!(faults.pick(0.0), Some(Fault::RateLimited));
        assert_eq!(faults.pick(0.099), Some(Fault::RateLimited));
        assert_eq!(faults.pick(0.12), Some(Fault::ServerError));
        assert_eq!(faults.pick(0.16), Some(Fault::Reset));
        assert_eq!(faults.pick(0.17), None);
        assert_eq!(faults.pick(0.999), None);
        assert!(!faults.is_empty());
    }

    #[test]
    fn certainty_always_fires() {
        let faults = Faults::parse("500:1.0").unwrap();
        assert_eq!(faults.pick(0.0), Some(Fault::ServerError));
        assert_eq!(faults.pick(0.999_999), Some(Fault::ServerError));
        let faults = Faults::parse("502:0.5, 504:0.25, timeout:0.25").unwrap();
        assert_eq!(faults.pick(0.6), Some(Fault::Gateway(504)));
        assert_eq!(faults.pick(0.9), Some(Fault::Timeout));
    }

    #[test]
    fn empty_and_zero_specs_inject_nothing() {
        assert!(Faults::parse("").unwrap().is_empty());
        assert!(Faults::parse("500:0").unwrap().is_empty());
        assert_eq!(Faults::parse("500:0").unwrap().pick(0.0), None);
    }

    #[test]
    fn refuses_bad_specs_in_one_line() {
        for bad in [
            "500",
            "418:0.1",
            "500:x",
            "500:1.5",
            "500:-0.1",
            "500:0.6,429:0.6",
            "500:0.1,500:0.1",
        ] {
            let err = Faults::parse(bad).unwrap_err();
            assert!(err.starts_with("invalid --fail"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
