//! Bounded pools of what request threads and console sessions share: the
//! SQLite connections and the Hetzner clients. A request borrows one for
//! as long as it runs and gives it back; nothing is kept per thread, so a
//! burst of hundreds of requests or sessions holds at most `max` of each
//! (each SQLite connection is two or three file descriptors, each Hetzner
//! client two connections and a TLS socket) instead of one per thread at
//! the burst's peak. Past `max`, a borrower waits a moment for one to be
//! given back, then is told the server is busy.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct Pool<T> {
    state: Mutex<State<T>>,
    freed: Condvar,
    max: usize,
    wait: Duration,
}

struct State<T> {
    /// Items given back, with the generation of the settings they were
    /// made with.
    idle: Vec<(u64, T)>,
    /// Items in existence: idle and borrowed.
    open: usize,
}

/// Why nothing could be borrowed.
pub enum Shortage<E> {
    /// All `max` are borrowed, and none came back in time.
    Busy,
    /// Making a new one failed.
    Failed(E),
}

/// A borrowed item; given back when dropped.
pub struct Pooled<T> {
    pool: Arc<Pool<T>>,
    item: Option<(u64, T)>,
}

impl<T> Pool<T> {
    pub fn new(max: usize, wait: Duration) -> Pool<T> {
        Pool {
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max: max.max(1),
            wait,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An item made for settings `generation` (older ones are dropped),
    /// made with `make` when none is idle and fewer than `max` exist.
    pub fn get<E>(
        self: &Arc<Self>,
        generation: u64,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Pooled<T>, Shortage<E>> {
        self.get_within(generation, self.wait, make)
    }

    /// As [`Pool::get`], waiting at most `wait` for one to come back.
    pub fn get_within<E>(
        self: &Arc<Self>,
        generation: u64,
        wait: Duration,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Pooled<T>, Shortage<E>> {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        loop {
            // Made with older settings: dropped, making room.
            let before = state.idle.len();
            state.idle.retain(|(g, _)| *g == generation);
            let stale = before - state.idle.len();
            state.open -= stale;
            if let Some(item) = state.idle.pop() {
                return Ok(self.lend(item));
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match make() {
                    Ok(item) => Ok(self.lend((generation, item))),
                    Err(err) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(Shortage::Failed(err))
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Shortage::Busy);
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn lend(self: &Arc<Self>, item: (u64, T)) -> Pooled<T> {
        Pooled {
            pool: Arc::clone(self),
            item: Some(item),
        }
    }

    /// Items in existence now (idle and borrowed).
    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().open
    }
}

impl<T> Pooled<T> {
    /// Drops the item instead of giving it back (it may be broken).
    #[cfg(test)]
    pub fn discard(mut self) {
        if self.item.take().is_some() {
            self.pool.lock().open -= 1;
            self.pool.freed.notify_one();
        }
    }
}

impl<T> Deref for Pooled<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.item.as_ref().expect("a pooled item until dropped").1
    }
}

impl<T> DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.item.as_mut().expect("a pooled item until dropped").1
    }
}

impl<T> Drop for Pooled<T> {
    fn drop(&mut self) {
        if let Some(item) = self.item.take() {
            self.pool.lock().idle.push(item);
            self.pool.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(n: &mut u32) -> Result<u32, ()> {
        *n += 1;
        Ok(*n)
    }

    #[test]
    fn items_are_reused_and_bounded() {
        let pool = Arc::new(Pool::new(2, Duration::from_millis(50)));
        let mut n = 0;
        let a = pool.get(0, || made(&mut n)).ok().unwrap();
        let b = pool.get(0, || made(&mut n)).ok().unwrap();
        assert_eq!((*a, *b), (1, 2));
        // Both borrowed: the third waits, then is told it is busy.
        assert!(matches!(pool.get(0, || made(&mut n)), Err(Shortage::Busy)));
        drop(a);
        let c = pool.get(0, || made(&mut n)).ok().unwrap();
        assert_eq!(*c, 1, "the one given back is lent again");
        assert_eq!(pool.open(), 2);
    }

    #[test]
    fn items_of_older_settings_are_replaced() {
        let pool = Arc::new(Pool::new(1, Duration::from_millis(50)));
        let mut n = 0;
        drop(pool.get(0, || made(&mut n)).ok().unwrap());
        let newer = pool.get(1, || made(&mut n)).ok().unwrap();
        assert_eq!(*newer, 2);
        assert_eq!(pool.open(), 1);
    }

    #[test]
    fn a_failed_make_frees_its_place() {
        let pool: Arc<Pool<u32>> = Arc::new(Pool::new(1, Duration::from_millis(50)));
        assert!(matches!(
            pool.get(0, || Err("no")),
            Err(Shortage::Failed("no"))
        ));
        assert_eq!(pool.open(), 0);
        let held = pool.get(0, || Ok::<_, ()>(7)).ok().unwrap();
        assert_eq!(pool.open(), 1);
        held.discard();
        assert_eq!(pool.open(), 0);
    }
}
