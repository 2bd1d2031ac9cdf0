//! `GET /metrics`: Prometheus metrics (crate::metrics), for whom the
//! setting `metrics` allows: `loopback` (the default) lets in a client on
//! this machine that no proxy relays, and admin keys from anywhere;
//! `admin` only admin keys; `off` nobody (404).
//!
//! A request relayed by a proxy on this machine (nginx) comes from
//! loopback too, so "on this machine" also means: no `X-Forwarded-For`,
//! `Forwarded` or `X-Real-IP` header; otherwise anyone on the internet
//! would be local through the proxy.

use super::reply::{ApiError, Reply};
use super::request;
use super::shared::{Ctx, Incoming};
use crate::config::MetricsAccess;
use crate::store::Scope;

pub const PATH: &str = "/metrics";

pub fn handle(ctx: &mut Ctx, req: &Incoming) -> Reply {
    answer(ctx, req).unwrap_or_else(|err| err.to_json())
}

fn answer(ctx: &mut Ctx, req: &Incoming) -> Result<Reply, ApiError> {
    let access = ctx.settings.config.metrics;
    if access == MetricsAccess::Off {
        return Err(ApiError::not_found(
            "metrics are off here (setting `metrics`)",
        ));
    }
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        return Err(ApiError::new(405, "method_not_allowed", "use GET, HEAD").allow("GET, HEAD"));
    }
    let open = access == MetricsAccess::Loopback && req.local;
    if !open {
        let key = request::authenticate(ctx, req)?;
        if Scope::from_stored(&key.scope) != Some(Scope::Admin) {
            return Err(ApiError::new(
                403,
                "forbidden",
                format!(
                    "the API key `{}` has scope `{}`; /metrics needs `admin`{}",
                    key.name,
                    key.scope,
                    if access == MetricsAccess::Loopback {
                        " (or a client on this machine, not through a proxy)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    let snapshot = ctx.store()?.metrics_snapshot(crate::hetzner::now())?;
    let text = crate::metrics::render(snapshot)
        .map_err(|_| ApiError::new(500, "internal", "cannot write the metrics"))?;
    Ok(Reply {
        status: 200,
        content_type: crate::metrics::CONTENT_TYPE,
        body: crate::http::Body::Owned(text.into_bytes()),
        headers: vec![("Cache-Control", "no-store".into())],
    })
}
