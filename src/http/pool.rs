//! The worker threads that run requests whose head has arrived: started
//! when work waits and no thread is free, up to [`MAX_THREADS`], and ended
//! after a minute without work. A thread keeps what its handler keeps in
//! thread-locals (`hcc serve`'s SQLite connection) from one request to the
//! next.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Requests running at once; more wait in the queue. Each thread holds one
/// request (a console request may wait seconds for Hetzner), never an idle
/// connection.
pub const MAX_THREADS: usize = 256;
/// A thread without work for this long ends.
const IDLE_EXIT: Duration = Duration::from_secs(60);

pub struct Pool<J: Send + 'static> {
    shared: Arc<Shared<J>>,
}

struct Shared<J> {
    state: Mutex<State<J>>,
    ready: Condvar,
    name: &'static str,
    work: Box<dyn Work<J>>,
    /// Jobs waiting for a thread (`State::jobs`' length, read without the
    /// lock).
    queued: AtomicUsize,
}

/// What a thread does with a job; the second argument tells whether other
/// jobs wait for a thread meanwhile.
pub trait Work<J>: Fn(J, &dyn Fn() -> bool) + Send + Sync {}

impl<J, F: Fn(J, &dyn Fn() -> bool) + Send + Sync> Work<J> for F {}

struct State<J> {
    jobs: VecDeque<J>,
    threads: usize,
    idle: usize,
}

impl<J: Send + 'static> Pool<J> {
    /// Threads named `name` that run `work` on each job.
    pub fn new(name: &'static str, work: impl Work<J> + 'static) -> Pool<J> {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                }),
                ready: Condvar::new(),
                name,
                work: Box::new(work),
                queued: AtomicUsize::new(0),
            }),
        }
    }

    pub fn submit(&self, job: J) {
        let mut state = self.shared.lock();
        state.jobs.push_back(job);
        self.shared
            .queued
            .store(state.jobs.len(), Ordering::Relaxed);
        if state.idle > state.jobs.len() - 1 {
            drop(state);
            self.shared.ready.notify_one();
            return;
        }
        if state.threads >= MAX_THREADS {
            return;
        }
        state.threads += 1;
        drop(state);
        let shared = Arc::clone(&self.shared);
        let started = std::thread::Builder::new()
            .name(self.shared.name.into())
            .spawn(move || shared.work_loop());
        if started.is_err() {
            // No thread now: the job waits for a running one; with none
            // running it is dropped, which closes its connection.
            let mut state = self.shared.lock();
            state.threads -= 1;
            if state.threads == 0 {
                state.jobs.clear();
                self.shared.queued.store(0, Ordering::Relaxed);
            }
        }
    }
}

impl<J> Shared<J> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn work_loop(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                self.queued.store(state.jobs.len(), Ordering::Relaxed);
                drop(state);
                let crowded = || self.queued.load(Ordering::Relaxed) > 0;
                // A panicking handler costs its request (its connection
                // closes as the job unwinds) and this thread, whose
                // thread-locals may be half-updated; the others go on.
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    (self.work)(job, &crowded)
                }));
                state = self.lock();
                if run.is_err() {
                    state.threads -= 1;
                    return;
                }
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .ready
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.jobs.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }
}
