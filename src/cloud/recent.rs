//! The servers this process saw at Hetzner a moment ago, by name, so that
//! a burst of power verbs and console requests for one server costs one
//! request each instead of two (the lookup by name, then the action). In
//! a flooded queue the lookups were the most asked route of all.
//!
//! Only what Hetzner itself answered this process goes in, never the
//! `servers` table: the panel's group may write that table, and a row
//! naming another server's id must not steer a reboot past the guard.
//! An entry stands for [`Recent::FOR`]; a server released or replaced
//! behind hcc's back within that minute is caught by Hetzner's 404 (a
//! replaced server has a new id: the caller looks the name up again), but
//! a label removed elsewhere within it is not: hcc's own `deltag`, `kill`
//! and refreshes update the entry at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::hetzner::wire;

/// Entries kept at most; past it the oldest half go (a project with more
/// servers than that just looks up more often).
const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct Recent {
    seen: Mutex<HashMap<String, (Instant, wire::Server)>>,
}

impl Recent {
    /// How long what Hetzner said of a server stands in for asking again.
    pub const FOR: Duration = Duration::from_secs(60);

    /// The server named `name` as Hetzner described it within [`Recent::FOR`].
    pub fn get(&self, name: &str) -> Option<wire::Server> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(name)
            .filter(|(at, _)| at.elapsed() < Self::FOR)
            .map(|(_, server)| server.clone())
    }

    /// What Hetzner just answered about `server`.
    pub fn remember(&self, server: &wire::Server) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= CAPACITY && !seen.contains_key(&server.name) {
            seen.retain(|_, (at, _)| at.elapsed() < Self::FOR);
            if seen.len() >= CAPACITY {
                let mut ages: Vec<Instant> = seen.values().map(|(at, _)| *at).collect();
                ages.sort();
                let cut = ages[ages.len() / 2];
                seen.retain(|_, (at, _)| *at > cut);
            }
        }
        seen.insert(server.name.clone(), (Instant::now(), server.clone()));
    }

    /// Forgets `name`: gone, replaced or released.
    pub fn forget(&self, name: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.remove(name);
    }

    /// Forgets the server with Hetzner id `id`, whatever its name.
    pub fn forget_id(&self, id: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, (_, server)| server.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, id: i64) -> wire::Server {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "status": "running", "labels": {}
        }))
        .expect("a server")
    }

    #[test]
    fn remembers_forgets_and_stays_bounded() {
        let recent = Recent::default();
        assert!(recent.get("a").is_none());
        recent.remember(&server("a", 1));
        assert_eq!(recent.get("a").map(|s| s.id), Some(1));
        // A server replaced under the same name: the newer answer wins.
        recent.remember(&server("a", 2));
        assert_eq!(recent.get("a").map(|s| s.id), Some(2));
        recent.forget_id(2);
        assert!(recent.get("a").is_none());
        recent.remember(&server("b", 3));
        recent.forget("b");
        assert!(recent.get("b").is_none());
        for i in 0..(CAPACITY as i64 * 2) {
            recent.remember(&server(&format!("s{i}"), i));
        }
        let held = recent.seen.lock().unwrap().len();
        assert!(held <= CAPACITY, "{held}");
        // The newest is always there.
        let last = CAPACITY as i64 * 2 - 1;
        assert_eq!(recent.get(&format!("s{last}")).map(|s| s.id), Some(last));
    }
}
