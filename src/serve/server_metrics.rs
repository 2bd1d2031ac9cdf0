//! `GET /servers/{name}/metrics?type=cpu,disk,network&since=1h`: a
//! managed server's time series, for graphs, as Hetzner answers them
//! (`{"metrics": {start, end, step, time_series}}`) with `fetched_at`.
//!
//! Dashboards poll these. The window's end is aligned to its step
//! (cloud/metrics.rs), so every request within one step asks the same
//! question: the answer is kept in memory per (server, types, range,
//! window) until the next window begins, shared by every request thread,
//! and fetched under that key's lock, so that requests that come meanwhile
//! wait for the one fetch. Ten dashboards showing one server's graphs cost
//! one Hetzner request per step and type set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::reply::{self, ApiError, Reply};
use super::request::{Call, managed_server};
use super::shared::Ctx;
use crate::cloud::metrics::{self, Since, Window};
use crate::error::Error;
use crate::verb::shown;

/// Windows kept at most (a few hundred bytes to some kilobytes each):
/// past this, the ones ending first go.
const MAX_ENTRIES: usize = 2000;
/// How long a failed fetch is answered from memory, at most (never past
/// its window).
const FAILED_FOR: Duration = Duration::from_secs(5);

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    server: i64,
    /// Canonical: `cpu,network`.
    types: String,
    since: Since,
    /// The window's end: a new window is a new key.
    end: i64,
}

struct Cached {
    at: Instant,
    fetched_at: i64,
    outcome: Result<Arc<Value>, ApiError>,
}

type Slot = Arc<Mutex<Option<Cached>>>;

/// The answers in memory: one per process, kept by every re-read of the
/// settings.
#[derive(Default)]
pub struct Cache(Mutex<HashMap<Key, (i64, Slot)>>);

impl Cache {
    /// The slot of `key` (made if missing), whose window ends its use at
    /// `expires`. Making one first drops the slots of past windows and, past
    /// [`MAX_ENTRIES`], those that expire first.
    fn slot(&self, key: Key, expires: i64, now: i64) -> Slot {
        let mut map = lock(&self.0);
        if let Some((_, slot)) = map.get(&key) {
            return slot.clone();
        }
        map.retain(|_, (until, _)| *until > now);
        if map.len() >= MAX_ENTRIES {
            let mut ends: Vec<i64> = map.values().map(|(until, _)| *until).collect();
            ends.sort_unstable();
            let cut = ends[map.len() - MAX_ENTRIES / 2];
            map.retain(|_, (until, _)| *until > cut);
        }
        let slot = Slot::default();
        map.insert(key, (expires, slot.clone()));
        slot
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.0).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The query: `type` (a comma list, or repeated; default every type) and
/// `since` (default 1h).
fn query(raw: &str) -> Result<(String, Since), ApiError> {
    let mut types = Vec::new();
    let mut since = Since::Hour;
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "type" => types.push(value.into_owned()),
            "since" => {
                since =
                    Since::parse(&value).map_err(|why| ApiError::bad_request("bad_query", why))?;
            }
            _ => {
                return Err(ApiError::bad_request(
                    "bad_query",
                    format!(
                        "unknown query parameter `{}` (known: type, since)",
                        shown(&key)
                    ),
                ));
            }
        }
    }
    let types = metrics::types(types.iter().map(String::as_str))
        .map_err(|why| ApiError::bad_request("bad_query", why))?;
    Ok((types, since))
}

pub fn get(ctx: &mut Ctx, call: &Call) -> Result<Reply, ApiError> {
    let (types, since) = query(call.query)?;
    let (_, id) = managed_server(ctx, call.params[0])?;
    let now = crate::store::now();
    let window = Window::at(since, now);
    let key = Key {
        server: id,
        types,
        since,
        end: window.end,
    };
    let cache = ctx.settings.server_metrics.clone();
    let slot = cache.slot(key.clone(), window.expires(), now);
    // Held while fetching: requests for the same window wait for this
    // answer instead of asking Hetzner too; other keys are not held up.
    let mut slot = lock(&slot);
    let fresh = slot
        .as_ref()
        .filter(|c| c.outcome.is_ok() || c.at.elapsed() < FAILED_FOR);
    let (metrics, fetched_at) = match fresh {
        Some(c) => (c.outcome.clone()?, c.fetched_at),
        None => {
            let outcome = fetch(ctx, &key, window);
            let cached = slot.insert(Cached {
                at: Instant::now(),
                fetched_at: crate::store::now(),
                outcome,
            });
            (cached.outcome.clone()?, cached.fetched_at)
        }
    };
    drop(slot);
    let body = json!({ "metrics": metrics["metrics"], "fetched_at": fetched_at });
    Ok(reply::json(200, &body))
}

fn fetch(ctx: &mut Ctx, key: &Key, window: Window) -> Result<Arc<Value>, ApiError> {
    let client = &ctx.hetzner()?.client;
    metrics::fetch(client, key.server, &key.types, window)
        .map(Arc::new)
        .map_err(|err| {
            let mut err = ApiError::from(Error::Hetzner(err));
            err.message = format!("cannot load the metrics from Hetzner: {}", err.message);
            err
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(server: i64, end: i64) -> Key {
        Key {
            server,
            types: "cpu".into(),
            since: Since::Hour,
            end,
        }
    }

    #[test]
    fn the_query_is_checked() {
        assert_eq!(query("").unwrap(), ("cpu,disk,network".into(), Since::Hour));
        assert_eq!(
            query("type=network%2Ccpu&since=7d").unwrap(),
            ("cpu,network".into(), Since::Week)
        );
        assert_eq!(query("type=disk&type=cpu").unwrap().0, "cpu,disk");
        for bad in ["type=ram", "since=2h", "step=5"] {
            let err = query(bad).unwrap_err();
            assert_eq!((err.status, err.code), (400, "bad_query"), "{bad}");
        }
    }

    #[test]
    fn one_slot_per_key_and_past_windows_go() {
        let cache = Cache::default();
        let a = cache.slot(key(1, 100), 115, 100);
        let again = cache.slot(key(1, 100), 115, 101);
        assert!(Arc::ptr_eq(&a, &again));
        let other = cache.slot(key(2, 100), 115, 101);
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(cache.len(), 2);
        // The next window: the past ones are dropped.
        cache.slot(key(1, 115), 130, 115);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_count_is_bounded() {
        let cache = Cache::default();
        for server in 0..(MAX_ENTRIES as i64 * 3) {
            cache.slot(key(server, 100), 1000 + server, 100);
        }
        assert!(cache.len() <= MAX_ENTRIES, "{}", cache.len());
    }
}
