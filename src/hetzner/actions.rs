//! Waiting for actions: every running action is polled together, one
//! request per tick (`GET /actions?id=..&id=..`, 25 ids at most per
//! request), on the hcloud CLI's schedule: 500 ms for the first ten polls,
//! then 1.5 times longer each time up to 2.5 s. An action that ends in
//! `error` ends the wait with its message; one that outlives the deadline
//! ends it with a timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::wire::Action;
use super::{Client, Error};

/// Ids per `GET /actions` request (hcloud-go's batch size).
const BATCH: usize = 25;

/// The interval before poll number `n` (0-based).
pub fn poll_interval(n: u32) -> Duration {
    if n < 10 {
        return Duration::from_millis(500);
    }
    let grown = 500.0 * 1.5f64.powi((n - 9) as i32);
    Duration::from_millis(grown.min(2500.0) as u64)
}

/// What to wait for.
#[derive(Debug, Clone)]
pub struct ActionWait {
    pub timeout: Duration,
}

impl Default for ActionWait {
    fn default() -> Self {
        ActionWait {
            timeout: Duration::from_secs(300),
        }
    }
}

/// Polls a set of actions until all succeed.
pub struct Waiter<'a> {
    client: &'a Client,
    options: ActionWait,
}

impl<'a> Waiter<'a> {
    pub fn new(client: &'a Client, options: ActionWait) -> Waiter<'a> {
        Waiter { client, options }
    }

    /// Waits for every action in `actions` (already known to be started).
    /// Returns the final state of each.
    pub fn wait(&self, actions: &[Action]) -> Result<Vec<Action>, Error> {
        let started = Instant::now();
        let mut pending: BTreeMap<i64, Action> = BTreeMap::new();
        let mut finished = Vec::new();
        for action in actions {
            settle(action.clone(), &mut pending, &mut finished)?;
        }
        let mut polls = 0;
        while !pending.is_empty() {
            if started.elapsed() > self.options.timeout {
                let (id, action) = pending.iter().next().expect("pending is not empty");
                return Err(Error::ActionTimeout {
                    id: *id,
                    command: action.command.clone(),
                    secs: self.options.timeout.as_secs(),
                });
            }
            std::thread::sleep(poll_interval(polls));
            polls += 1;
            let ids: Vec<i64> = pending.keys().copied().collect();
            for chunk in ids.chunks(BATCH) {
                for action in self.client.actions(chunk)? {
                    if pending.remove(&action.id).is_some() {
                        settle(action, &mut pending, &mut finished)?;
                    }
                }
            }
        }
        Ok(finished)
    }
}

/// Files an action under pending or finished; an error ends the wait.
fn settle(
    action: Action,
    pending: &mut BTreeMap<i64, Action>,
    finished: &mut Vec<Action>,
) -> Result<(), Error> {
    match action.status.as_str() {
        "success" => finished.push(action),
        "error" => {
            let (code, message) = action
                .error
                .map(|e| (e.code, e.message))
                .unwrap_or_else(|| ("action_failed".into(), "no reason given".into()));
            return Err(Error::ActionFailed {
                id: action.id,
                command: action.command,
                code,
                message,
            });
        }
        _ => {
            pending.insert(action.id, action);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_on_the_cli_schedule() {
        let waits: Vec<u64> = (0..16)
            .map(|n| poll_interval(n).as_millis() as u64)
            .collect();
        assert_eq!(waits[..10], [500; 10]);
        assert_eq!(waits[10..], [750, 1125, 1687, 2500, 2500, 2500]);
    }
}
