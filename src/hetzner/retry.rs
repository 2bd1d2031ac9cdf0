//! When to retry a request and how long to wait first: pure functions,
//! table-tested offline.
//!
//! hcloud-go's policy (see STYLE.md): up to 5 retries; backoff from 1 s
//! doubling to a 60 s cap with full jitter (several hcc processes share a
//! project, and jitter keeps them from retrying in step). Retried: network
//! failures, 502/503/504, and the API codes `conflict`,
//! `rate_limit_exceeded`, `bad_gateway`, `timeout`. hcc differs in two
//! ways: a 429 waits for the next token of the bucket (the headers say
//! when) instead of guessing, and a request that changes something (POST,
//! PUT, DELETE) is retried only when the API answered with a retry code,
//! never after a transport failure, where it may already have been applied.

use std::time::Duration;

/// Retries after the first attempt.
pub const MAX_RETRIES: u32 = 5;

const BASE: Duration = Duration::from_secs(1);
const CAP: Duration = Duration::from_secs(60);

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request may have been sent but no answer came: a reset, a
    /// timeout, a connection closed early. Worth another try.
    Transport,
    /// Nothing could be sent: the name does not resolve, the port refuses.
    /// Retrying in seconds rarely helps; the user should know at once.
    Unreachable,
    /// An HTTP status; `code` from the error envelope if there was one.
    Status { status: u16, code: Option<String> },
}

impl Outcome {
    /// The answer's HTTP status; `None` when no answer came.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Status { status, .. } => Some(*status),
            Outcome::Transport | Outcome::Unreachable => None,
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Give up and report the failure.
    Fail,
}

/// Decides whether attempt number `retries + 1` happens.
///
/// `idempotent`: GET (safe to resend whatever happened). `rate_wait`: how
/// long until the bucket has a token again, from the last headers.
/// `jitter`: a number in [0, 1) drawn by the caller.
pub fn decide(
    outcome: &Outcome,
    idempotent: bool,
    retries: u32,
    rate_wait: Option<Duration>,
    jitter: f64,
) -> Decision {
    decide_with(outcome, idempotent, retries, MAX_RETRIES, rate_wait, jitter)
}

/// [`decide`] with another retry limit (0: never retry; the worker
/// schedules its own retries instead of sleeping in a request).
pub fn decide_with(
    outcome: &Outcome,
    idempotent: bool,
    retries: u32,
    max_retries: u32,
    rate_wait: Option<Duration>,
    jitter: f64,
) -> Decision {
    if retries >= max_retries {
        return Decision::Fail;
    }
    let retryable = match outcome {
        Outcome::Transport => idempotent,
        Outcome::Unreachable => false,
        Outcome::Status { status, code } => match code.as_deref() {
            Some("conflict" | "rate_limit_exceeded" | "bad_gateway" | "timeout") => true,
            // A read is safe to repeat after any server-side failure.
            _ if idempotent && *status >= 500 => true,
            Some(_) => false,
            // No envelope: a proxy or load balancer answered.
            None => matches!(status, 502..=504),
        },
    };
    if !retryable {
        return Decision::Fail;
    }
    let is_429 = matches!(outcome, Outcome::Status { status: 429, .. })
        || matches!(outcome, Outcome::Status { code: Some(c), .. } if c == "rate_limit_exceeded");
    if is_429 && let Some(wait) = rate_wait {
        // The next token, plus a little jitter so waiters do not collide.
        return Decision::Retry(wait.min(CAP) + Duration::from_millis((jitter * 500.0) as u64));
    }
    Decision::Retry(backoff(retries, jitter))
}

/// Full jitter between the base and the capped exponential value:
/// retry 0 waits 1 s, retry 1 up to 2 s, retry 2 up to 4 s, ...
pub fn backoff(retries: u32, jitter: f64) -> Duration {
    let exp = BASE.saturating_mul(2u32.saturating_pow(retries)).min(CAP);
    let span = exp.saturating_sub(BASE);
    BASE + span.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<&str>) -> Outcome {
        Outcome::Status {
            status,
            code: code.map(str::to_string),
        }
    }

    #[test]
    fn retried_failures() {
        let cases = [
            (Outcome::Transport, true, true),
            (Outcome::Transport, false, false),
            (status(502, None), false, true),
            (status(504, None), true, true),
            (status(500, None), true, true),
            (status(500, None), false, false),
            (status(500, Some("server_error")), true, true),
            (status(500, Some("server_error")), false, false),
            (Outcome::Unreachable, true, false),
            (status(409, Some("conflict")), false, true),
            (status(429, Some("rate_limit_exceeded")), false, true),
            (status(503, Some("timeout")), false, true),
            (status(409, Some("locked")), true, false),
            (status(404, Some("not_found")), true, false),
            (status(401, Some("unauthorized")), true, false),
            (status(400, Some("invalid_input")), false, false),
        ];
        for (outcome, idempotent, want) in cases {
            let got = decide(&outcome, idempotent, 0, None, 0.5) != Decision::Fail;
            assert_eq!(got, want, "{outcome:?} idempotent={idempotent}");
        }
    }

    #[test]
    fn gives_up_after_five_retries() {
        assert_ne!(
            decide(&Outcome::Transport, true, 4, None, 0.0),
            Decision::Fail
        );
        assert_eq!(
            decide(&Outcome::Transport, true, 5, None, 0.0),
            Decision::Fail
        );
    }

    #[test]
    fn backoff_doubles_with_full_jitter_up_to_the_cap() {
        assert_eq!(backoff(0, 0.9), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(10, 1.0), Duration::from_secs(60));
        let total: Duration = (0..5).map(|r| backoff(r, 1.0)).sum();
        assert_eq!(total, Duration::from_secs(31));
    }

    #[test]
    fn a_429_waits_for_the_next_token() {
        let d = decide(
            &status(429, Some("rate_limit_exceeded")),
            false,
            0,
            Some(Duration::from_secs(3)),
            0.0,
        );
        assert_eq!(d, Decision::Retry(Duration::from_secs(3)));
        let d = decide(
            &status(429, Some("rate_limit_exceeded")),
            true,
            0,
            Some(Duration::from_secs(600)),
            0.0,
        );
        assert_eq!(d, Decision::Retry(Duration::from_secs(60)));
    }
}
