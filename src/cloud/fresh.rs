//! Which servers another thread of this process stored (or deleted) just
//! now. The worker runs a full sync on a thread beside its commands: a page
//! requested before the worker refetched a server after its action must not
//! overwrite that row with what Hetzner said before the action.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longer than any page request takes, retries and budget waits included.
const KEEP: Duration = Duration::from_secs(900);

/// Server ids and when they were last touched; cheap to clone and share.
#[derive(Clone, Default)]
pub struct Fresh(Arc<Mutex<HashMap<i64, Instant>>>);

impl Fresh {
    /// Server `id` was stored or deleted now.
    pub fn touch(&self, id: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, at| now.duration_since(*at) < KEEP);
        map.insert(id, now);
    }

    /// Was server `id` touched at or after `asked`?
    pub fn since(&self, id: i64, asked: Instant) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&id).is_some_and(|at| *at >= asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_touched_after_the_request_counts() {
        let fresh = Fresh::default();
        fresh.touch(1);
        let asked = Instant::now();
        assert!(!fresh.since(1, asked));
        fresh.clone().touch(2);
        assert!(fresh.since(2, asked));
        assert!(!fresh.since(3, asked));
    }
}
