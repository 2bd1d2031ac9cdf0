//! Who the client is: the connection's peer, or, when the peer is a
//! trusted proxy (setting `trusted_proxies`), the address its
//! `X-Forwarded-For` names. That address goes to the request log, the
//! per-client limit on requests under way, and `console_sessions.remote`.
//!
//! A proxy appends the address it saw to the list it got, so only the
//! entries added by trusted proxies can be believed: the client is the
//! right-most entry that is not itself a trusted proxy. What a client
//! writes into the header itself stays to the left of it and is ignored.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The client's address for a request from `peer` (None: unknown) with
/// these `X-Forwarded-For` values (several headers read as one list).
pub fn address<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !trusted.contains(&client) {
        return Some(client);
    }
    let entries: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
    for entry in entries.iter().rev() {
        // Anything but a plain address ends the trusted part of the list:
        // the hop that wrote it is the client as far as hcc can tell.
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !trusted.contains(&client) {
            break;
        }
    }
    Some(client)
}

/// Requests under way per client address: a client behind a proxy shares
/// the proxy's connections, so its share of the worker threads is limited
/// per request instead.
#[derive(Default)]
pub struct InFlight {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One request under way; counted until dropped.
pub struct Ticket {
    of: Arc<InFlight>,
    ip: IpAddr,
}

impl InFlight {
    /// A ticket, unless `ip` has `max` requests under way already.
    pub fn enter(self: &Arc<InFlight>, ip: IpAddr, max: usize) -> Option<Ticket> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Ticket {
            of: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self.of.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn client(peer: &str, forwarded: &[&str], trusted: &[&str]) -> String {
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| ip(t)).collect();
        address(Some(ip(peer)), forwarded.iter().copied(), &trusted)
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let local = ["127.0.0.1", "::1"];
        // No proxy: the peer, whatever it claims.
        assert_eq!(client("203.0.113.9", &["10.0.0.1"], &local), "203.0.113.9");
        // nginx on this machine.
        assert_eq!(client("127.0.0.1", &["203.0.113.9"], &local), "203.0.113.9");
        assert_eq!(
            client("::ffff:127.0.0.1", &["203.0.113.9"], &local),
            "203.0.113.9"
        );
        // A client's own entry stays to the left.
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, 203.0.113.9"], &local),
            "203.0.113.9"
        );
        // Two proxies, both trusted; two headers read as one list.
        assert_eq!(
            client(
                "10.0.0.2",
                &["6.6.6.6, 203.0.113.9", "10.0.0.3"],
                &["10.0.0.2", "10.0.0.3"]
            ),
            "203.0.113.9"
        );
        // Garbage ends the list: the last trusted hop is all that is known.
        assert_eq!(client("127.0.0.1", &["unknown"], &local), "127.0.0.1");
        assert_eq!(client("127.0.0.1", &[], &local), "127.0.0.1");
        // No trusted proxy: the header is ignored, loopback or not.
        assert_eq!(client("127.0.0.1", &["203.0.113.9"], &[]), "127.0.0.1");
    }

    #[test]
    fn tickets_count_requests_under_way() {
        let in_flight = Arc::new(InFlight::default());
        let a = in_flight.enter(ip("10.0.0.1"), 2).unwrap();
        let _b = in_flight.enter(ip("10.0.0.1"), 2).unwrap();
        assert!(in_flight.enter(ip("10.0.0.1"), 2).is_none());
        assert!(in_flight.enter(ip("10.0.0.2"), 2).is_some());
        drop(a);
        assert!(in_flight.enter(ip("10.0.0.1"), 2).is_some());
    }
}
