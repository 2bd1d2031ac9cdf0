//! The request pipeline: what every request goes through before and after
//! its handler, in this order, all under one lock:
//!
//! 1. count it (`/_sim/stats`);
//! 2. roll for an injected fault: a fault answers before the request has
//!    any effect and spends no token, so a client may retry anything;
//! 3. spend a token from the bucket, or answer 429 (unauthenticated
//!    requests spend too: "All requests, whether they are authenticated or
//!    not, are subject to rate limiting");
//! 4. check the bearer token, or answer 401;
//! 5. apply the effects of finished actions, then run the handler.
//!
//! `--latency` is served after the lock is released, so a slow answer
//! never holds up other clients.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use super::api_error::ApiError;
use super::bucket::{Bucket, Snapshot};
use super::catalog::Catalog;
use super::clock::Clock;
use super::console::{Consoles, URL_LIFETIME_MS};
use super::ctx::Ctx;
use super::faults::{Fault, Faults};
use super::options::{Options, Upstream};
use super::rng::Rng;
use super::routes;
use super::state::State;
use crate::http::{Reply, Request, Response};

#[derive(Debug, Default)]
pub struct Stats {
    /// Every request under `/v1`, answered or not.
    pub requests: u64,
    /// 429s sent, from the bucket or injected.
    pub rate_limited: u64,
    pub faults: u64,
    pub faults_by_kind: BTreeMap<String, u64>,
    pub by_route: BTreeMap<&'static str, u64>,
}

/// Everything that changes, behind the one lock.
pub struct Inner {
    pub state: State,
    pub bucket: Bucket,
    pub rng: Rng,
    pub stats: Stats,
    /// `POST /_sim/lose_next_answer`: the next request on this route (its
    /// stats label) takes effect, then its connection closes unanswered.
    pub lose_answer: Option<String>,
    /// API requests still to answer 429 (`POST /_sim/rate_limit_next`).
    pub rate_limit_next: u64,
}

pub struct Sim {
    inner: Mutex<Inner>,
    pub clock: Clock,
    pub catalog: Catalog,
    token: String,
    faults: Faults,
    latency: Duration,
    console_base: String,
    console_upstream: Option<Upstream>,
    action_feed: bool,
    /// `--time-scale`: simulated time runs this many times faster.
    time_scale: f64,
    /// The live consoles behind `/console/{id}`.
    pub consoles: Consoles,
}

impl Sim {
    pub fn new(
        options: &Options,
        state: State,
        rng: Rng,
        clock: Clock,
        token: String,
        console_base: String,
    ) -> Sim {
        Sim {
            inner: Mutex::new(Inner {
                state,
                bucket: Bucket::new(options.rate_limit, options.time_scale),
                rng,
                stats: Stats::default(),
                lose_answer: None,
                rate_limit_next: 0,
            }),
            clock,
            catalog: Catalog::new(),
            token,
            faults: options.faults.clone(),
            latency: options.latency,
            console_base,
            console_upstream: options.console_upstream.clone(),
            action_feed: options.action_feed,
            time_scale: options.time_scale,
            consoles: Consoles::default(),
        }
    }

    /// The lock; a panic in another request leaves the state usable.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `ws://HOST:PORT`, where the simulator's own consoles are served.
    pub fn console_base(&self) -> &str {
        &self.console_base
    }

    /// Whether a console URL issued at `issued_ms` can no longer be
    /// opened at `now_ms`: a minute has passed in the simulator's time,
    /// which `--time-scale` speeds up like the bucket's.
    pub fn console_expired(&self, issued_ms: u64, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(issued_ms) as f64 * self.time_scale;
        elapsed > URL_LIFETIME_MS as f64
    }

    /// An API request under `/v1`, through the whole pipeline; the
    /// `--latency` delay comes after the lock is released.
    pub fn api(&self, request: &Request) -> Reply {
        let reply = self.pipeline(request);
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        reply
    }

    fn pipeline(&self, request: &Request) -> Reply {
        let segments: Vec<&str> = request.path["/v1".len()..]
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let route = routes::resolve(&request.method, &segments);
        let mut guard = self.lock();
        let inner = &mut *guard;
        let now_secs = self.clock.now_secs();
        let now_ms = self.clock.now_ms();

        inner.stats.requests += 1;
        let label = route.as_ref().map_or("unknown", |(label, _)| label);
        *inner.stats.by_route.entry(label).or_default() += 1;

        let fault = if inner.rate_limit_next > 0 {
            inner.rate_limit_next -= 1;
            Some(Fault::RateLimited)
        } else {
            self.roll_fault(&mut inner.rng)
        };
        if let Some(fault) = fault {
            inner.stats.faults += 1;
            *inner
                .stats
                .faults_by_kind
                .entry(fault.to_string())
                .or_default() += 1;
            let snapshot = inner.bucket.peek(now_secs);
            return match fault {
                Fault::Reset => Reply::Reset,
                Fault::Gateway(status) => Reply::Answer(Response::html(
                    status,
                    &format!("<html><body><h1>{status}</h1></body></html>\n"),
                )),
                Fault::RateLimited => {
                    inner.stats.rate_limited += 1;
                    self.error(
                        &ApiError::rate_limited(snapshot.limit),
                        snapshot,
                        &mut inner.rng,
                    )
                }
                Fault::ServerError => {
                    self.error(&ApiError::server_error(), snapshot, &mut inner.rng)
                }
                Fault::Timeout => self.error(&ApiError::timeout(), snapshot, &mut inner.rng),
            };
        }

        let snapshot = match inner.bucket.take(now_secs) {
            Ok(snapshot) => snapshot,
            Err(snapshot) => {
                inner.stats.rate_limited += 1;
                return self.error(
                    &ApiError::rate_limited(snapshot.limit),
                    snapshot,
                    &mut inner.rng,
                );
            }
        };
        if !self.authorized(request) {
            return self.error(&ApiError::unauthorized(), snapshot, &mut inner.rng);
        }
        let route = match route {
            // `--no-action-feed`: the feed is answered as an unknown route.
            Ok((_, routes::Route::ListAllServerActions | routes::Route::GetAnyServerAction(_)))
                if !self.action_feed =>
            {
                return self.error(&ApiError::not_found("route"), snapshot, &mut inner.rng);
            }
            Ok((_, route)) => route,
            Err(error) => return self.error(&error, snapshot, &mut inner.rng),
        };

        inner.state.advance(now_ms);
        let mut ctx = Ctx {
            state: &mut inner.state,
            rng: &mut inner.rng,
            clock: &self.clock,
            catalog: &self.catalog,
            now_ms,
            console_base: &self.console_base,
            console_upstream: self.console_upstream.as_ref(),
            consoles: &self.consoles,
        };
        let outcome = routes::dispatch(route, &mut ctx, request);
        if inner.lose_answer.as_deref() == Some(label) {
            inner.lose_answer = None;
            return Reply::Reset;
        }
        match outcome {
            Ok((status, body)) => self.answer(status, &body, snapshot, &mut inner.rng),
            Err(error) => self.error(&error, snapshot, &mut inner.rng),
        }
    }

    fn roll_fault(&self, rng: &mut Rng) -> Option<Fault> {
        if self.faults.is_empty() {
            None
        } else {
            self.faults.pick(rng.f64())
        }
    }

    /// `Authorization: Bearer TOKEN`, compared without an early exit.
    fn authorized(&self, request: &Request) -> bool {
        let Some(given) = request
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
        else {
            return false;
        };
        let (a, b) = (given.trim().as_bytes(), self.token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn error(&self, error: &ApiError, snapshot: Snapshot, rng: &mut Rng) -> Reply {
        self.answer(error.status, &error.body(), snapshot, rng)
    }

    fn answer(&self, status: u16, body: &Value, snapshot: Snapshot, rng: &mut Rng) -> Reply {
        let mut response = Response::json(status, body);
        if status == 204 {
            // No Content: `DELETE /images/{id}`.
            response.body = crate::http::Body::Static(b"");
        }
        let now = self.clock.unix_now_secs();
        response.headers = vec![
            ("RateLimit-Limit", snapshot.limit.to_string()),
            ("RateLimit-Remaining", snapshot.remaining.to_string()),
            (
                "RateLimit-Reset",
                ((now + snapshot.full_in_secs).ceil() as i64).to_string(),
            ),
            // What Hetzner support asks for; hcloud-go shows it in errors.
            ("X-Correlation-Id", format!("{:016x}", rng.u64(..))),
        ];
        Reply::Answer(response)
    }

    pub fn stats_json(&self) -> Value {
        let inner = self.lock();
        let s = &inner.stats;
        json!({
            "requests": s.requests,
            "rate_limited": s.rate_limited,
            "faults": s.faults,
            "faults_by_kind": s.faults_by_kind,
            "by_route": s.by_route,
            "servers": inner.state.server_count(),
            "actions": inner.state.action_count(),
        })
    }
}
