//! Following actions: every running action is polled together, one
//! request per tick (`GET /actions?id=..&id=..`, 25 ids at most per
//! request), on the hcloud CLI's schedule: 500 ms for the first ten polls,
//! then 1.5 times longer each time up to 2.5 s.
//!
//! [`Poller`] never blocks: its owner (the worker) adds the actions each of
//! its jobs started, polls when [`Poller::due`] says so, and hears which
//! jobs ended: all their actions succeeded, one ended in `error`
//! ([`Error::ActionFailed`]), or they outlived the deadline
//! ([`Error::ActionTimeout`]). [`Waiter`] is the blocking form the CLI uses.

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

/// How a job's actions ended.
#[derive(Debug)]
pub enum Ended<K> {
    /// Every action succeeded; their final states.
    Succeeded(K, Vec<Action>),
    /// One failed or the deadline passed; the job's other actions are no
    /// longer followed.
    Failed(K, Error),
}

/// One job: its actions still running, those done, when it began.
struct Job {
    running: BTreeMap<i64, Action>,
    finished: Vec<Action>,
    since: Instant,
}

/// The running actions of many jobs (keyed by `K`), polled together.
pub struct Poller<K> {
    jobs: BTreeMap<K, Job>,
    deadline: Duration,
    polls: u32,
    next: Option<Instant>,
}

impl<K: Ord + Clone> Poller<K> {
    /// A job whose actions run longer than `deadline` ends failed.
    pub fn new(deadline: Duration) -> Poller<K> {
        Poller {
            jobs: BTreeMap::new(),
            deadline,
            polls: 0,
            next: None,
        }
    }

    /// Follows the actions job `key` started. Actions that already ended
    /// are settled at once: the job may end here, without a request.
    pub fn add(&mut self, key: K, actions: &[Action]) -> Option<Ended<K>> {
        let mut job = Job {
            running: BTreeMap::new(),
            finished: Vec::new(),
            since: Instant::now(),
        };
        for action in actions {
            if let Err(err) = settle(action.clone(), &mut job) {
                return Some(Ended::Failed(key, err));
            }
        }
        if job.running.is_empty() {
            return Some(Ended::Succeeded(key, job.finished));
        }
        self.jobs.insert(key, job);
        // A new job is polled soon, but a due poll is never pushed back: a
        // stream of new jobs must not starve the ones already running.
        self.polls = 0;
        let soon = Instant::now() + poll_interval(0);
        self.next = Some(self.next.map_or(soon, |at| at.min(soon)));
        None
    }

    /// When the next poll is due; `None` when nothing runs.
    pub fn due(&self) -> Option<Instant> {
        self.next
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Stops following a job (its owner gave it up).
    pub fn forget(&mut self, key: &K) {
        self.jobs.remove(key);
        if self.jobs.is_empty() {
            self.next = None;
        }
    }

    /// One poll of every running action, in as few requests as possible;
    /// returns the jobs that ended. A failed request leaves every job as it
    /// was (the next poll asks again) and is returned after what the
    /// earlier requests settled.
    pub fn poll(&mut self, client: &Client) -> (Vec<Ended<K>>, Option<Error>) {
        let ids: Vec<i64> = self
            .jobs
            .values()
            .flat_map(|job| job.running.keys().copied())
            .collect();
        let mut states = Vec::new();
        let mut failure = None;
        for chunk in ids.chunks(BATCH) {
            match client.actions(chunk) {
                Ok(actions) => states.extend(actions),
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        self.polls += 1;
        let mut ended = Vec::new();
        for action in states {
            let Some(key) = self
                .jobs
                .iter()
                .find(|(_, job)| job.running.contains_key(&action.id))
                .map(|(key, _)| key.clone())
            else {
                continue;
            };
            let job = self.jobs.get_mut(&key).expect("found above");
            job.running.remove(&action.id);
            match settle(action, job) {
                Err(err) => {
                    self.jobs.remove(&key);
                    ended.push(Ended::Failed(key, err));
                }
                Ok(()) if job.running.is_empty() => {
                    let job = self.jobs.remove(&key).expect("found above");
                    ended.push(Ended::Succeeded(key, job.finished));
                }
                Ok(()) => {}
            }
        }
        self.next = (!self.jobs.is_empty()).then(|| Instant::now() + poll_interval(self.polls));
        (ended, failure)
    }

    /// Jobs past the deadline end failed ([`Error::ActionTimeout`], naming
    /// one action still running).
    pub fn expire(&mut self) -> Vec<Ended<K>> {
        let late: Vec<K> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.since.elapsed() > self.deadline)
            .map(|(key, _)| key.clone())
            .collect();
        let mut ended = Vec::new();
        for key in late {
            let job = self.jobs.remove(&key).expect("listed above");
            if let Some(action) = job.running.values().next() {
                ended.push(Ended::Failed(
                    key,
                    Error::ActionTimeout {
                        id: action.id,
                        command: action.command.clone(),
                        secs: self.deadline.as_secs(),
                    },
                ));
            }
        }
        if self.jobs.is_empty() {
            self.next = None;
        }
        ended
    }
}

/// Polls a set of actions until all succeed: a [`Poller`] and a sleep.
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
        let mut poller = Poller::new(self.options.timeout);
        let mut ended = poller.add((), actions);
        while ended.is_none() {
            if let Some(at) = poller.due() {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            let (mut done, failure) = poller.poll(self.client);
            if let Some(err) = failure {
                return Err(err);
            }
            done.extend(poller.expire());
            ended = done.pop();
        }
        match ended {
            Some(Ended::Succeeded((), finished)) => Ok(finished),
            Some(Ended::Failed((), err)) => Err(err),
            None => Ok(Vec::new()),
        }
    }
}

/// Files an action of `job` under running or finished; an error is the
/// job's end.
fn settle(action: Action, job: &mut Job) -> Result<(), Error> {
    match action.status.as_str() {
        "success" => job.finished.push(action),
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
            job.running.insert(action.id, action);
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

    fn action(id: i64, status: &str) -> Action {
        serde_json::from_value(serde_json::json!({
            "id": id, "command": "poweron", "status": status,
            "error": (status == "error").then(|| serde_json::json!({"code": "boom", "message": "it broke"})),
        }))
        .unwrap()
    }

    #[test]
    fn actions_that_already_ended_settle_without_a_poll() {
        let mut poller = Poller::new(Duration::from_secs(300));
        assert!(matches!(
            poller.add(1, &[action(10, "success")]),
            Some(Ended::Succeeded(1, done)) if done.len() == 1
        ));
        match poller.add(2, &[action(11, "running"), action(12, "error")]) {
            Some(Ended::Failed(2, err)) => assert_eq!(
                err.to_string(),
                "hetzner: action poweron (12) failed: boom: it broke"
            ),
            other => panic!("{other:?}"),
        }
        assert!(poller.is_empty() && poller.due().is_none());
        assert!(poller.add(3, &[action(13, "running")]).is_none());
        assert!(poller.due().is_some());
        poller.forget(&3);
        assert!(poller.is_empty() && poller.due().is_none());
    }

    #[test]
    fn a_job_past_the_deadline_ends_with_a_timeout() {
        let mut poller = Poller::new(Duration::ZERO);
        assert!(poller.add("a", &[action(7, "running")]).is_none());
        std::thread::sleep(Duration::from_millis(5));
        match poller.expire().as_slice() {
            [Ended::Failed("a", Error::ActionTimeout { id: 7, .. })] => {}
            other => panic!("{other:?}"),
        }
        assert!(poller.is_empty() && poller.due().is_none());
    }
}
