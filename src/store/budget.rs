//! The `rate_budget` table: one row holding the Hetzner bucket as the
//! responses described it, minus what processes on this machine reserved
//! since. Reserving and recording run in IMMEDIATE transactions, so two
//! processes never both take the last token, and an answer is merged with
//! what others reserved meanwhile (`sync_state` key `rate_reserved` numbers
//! the reservations), never written over it.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::{Error, Store, sqlite_err};
use crate::hetzner::{Budget, Priority, RateState, Reservation};

/// The `sync_state` key counting reservations.
const RESERVED: &str = "rate_reserved";

/// The store as the client's budget. It has its own connection: the
/// client calls it between requests, while callers hold the main one.
pub struct SharedBudget {
    store: std::cell::RefCell<Store>,
}

impl SharedBudget {
    pub fn new(store: Store) -> SharedBudget {
        SharedBudget {
            store: std::cell::RefCell::new(store),
        }
    }
}

impl Budget for SharedBudget {
    fn reserve(
        &self,
        priority: Priority,
        command_share: f64,
        now: f64,
    ) -> Result<Reservation, String> {
        self.store
            .borrow_mut()
            .reserve_token(priority, command_share, now)
            .map_err(|e| e.to_string())
    }

    fn record(&self, state: RateState, reservation: Option<u64>) -> Result<(), String> {
        self.store
            .borrow_mut()
            .record_rate(state, reservation)
            .map_err(|e| e.to_string())
    }

    fn refund(&self, now: f64) -> Result<(), String> {
        self.store
            .borrow_mut()
            .refund_token(now)
            .map_err(|e| e.to_string())
    }

    /// Its own connection to the same file: the budget is the file's row.
    fn another(&self) -> Option<Box<dyn Budget + Send>> {
        let path = self.store.borrow().path.clone();
        Store::open(&path)
            .ok()
            .map(|store| Box::new(SharedBudget::new(store)) as Box<dyn Budget + Send>)
    }
}

/// The stored bucket, if any answer has described it yet. A row no answer
/// and no realistic number of waiting reservations can have left (a limit
/// below one request an hour, more than a whole bucket owed, a value that
/// is not finite: written by hand or by a panel sharing the file) counts as
/// nothing known, so the next answer tells again; its arithmetic would
/// panic or wait an hour.
fn read_rate(conn: &rusqlite::Connection) -> rusqlite::Result<Option<RateState>> {
    let sane = |s: &RateState| {
        s.limit >= 1.0
            && s.remaining >= -s.limit
            && [s.limit, s.remaining, s.reset_at, s.observed_at]
                .iter()
                .all(|v| v.is_finite())
    };
    read_row(conn).map(|state| state.filter(sane))
}

fn read_row(conn: &rusqlite::Connection) -> rusqlite::Result<Option<RateState>> {
    conn.query_row(
        "SELECT limit_per_hour, remaining, reset_at, observed_at FROM rate_budget",
        [],
        |row| {
            Ok(RateState {
                limit: row.get(0)?,
                remaining: row.get(1)?,
                reset_at: row.get(2)?,
                observed_at: row.get(3)?,
            })
        },
    )
    .optional()
}

fn write_rate(conn: &rusqlite::Connection, state: &RateState) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO rate_budget (id, limit_per_hour, remaining, reset_at, observed_at)
         VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET limit_per_hour = excluded.limit_per_hour,
           remaining = excluded.remaining, reset_at = excluded.reset_at,
           observed_at = excluded.observed_at",
        params![
            state.limit,
            state.remaining,
            state.reset_at,
            state.observed_at
        ],
    )?;
    Ok(())
}

/// How many reservations were ever made.
fn reserved(conn: &rusqlite::Connection) -> rusqlite::Result<u64> {
    let text: Option<String> = conn
        .query_row(
            "SELECT value FROM sync_state WHERE key = ?1",
            [RESERVED],
            |row| row.get(0),
        )
        .optional()?;
    Ok(text.and_then(|t| t.parse().ok()).unwrap_or(0))
}

impl Store {
    fn reserve_token(
        &mut self,
        priority: Priority,
        command_share: f64,
        now: f64,
    ) -> Result<Reservation, Error> {
        self.budget_transaction("reserve a request", |tx| {
            let number = reserved(tx)? + 1;
            tx.execute(
                "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![RESERVED, number.to_string()],
            )?;
            // Nothing known yet: the first answer will tell.
            let wait = match read_rate(tx)? {
                Some(state) => {
                    let (wait, after) = state.spend(priority, command_share, now);
                    write_rate(tx, &after)?;
                    wait
                }
                None => Duration::ZERO,
            };
            Ok(Reservation {
                wait,
                number: Some(number),
            })
        })
    }

    /// Merges what a response's `RateLimit-*` headers said into the
    /// stored budget; `reservation` is the one its request was sent under.
    pub fn record_rate(&mut self, told: RateState, reservation: Option<u64>) -> Result<(), Error> {
        self.budget_transaction("record the rate budget", |tx| {
            let since = match reservation {
                Some(n) => reserved(tx)?.saturating_sub(n),
                None => 0,
            };
            let merged = match read_rate(tx)? {
                Some(stored) => {
                    stored.merge(&told, since, told.observed_at.max(stored.observed_at))
                }
                None => RateState {
                    remaining: told.remaining - since as f64,
                    ..told
                },
            };
            write_rate(tx, &merged)
        })
    }

    fn refund_token(&mut self, now: f64) -> Result<(), Error> {
        self.budget_transaction("give back a request", |tx| match read_rate(tx)? {
            Some(state) => write_rate(tx, &state.refunded(now)),
            None => Ok(()),
        })
    }

    /// Runs `body` in an IMMEDIATE transaction: read, then write, with no
    /// other process in between.
    fn budget_transaction<T>(
        &mut self,
        action: &'static str,
        body: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let path = self.path.clone();
        let err = sqlite_err(&path, action);
        let tx = self.immediate(action)?;
        let value = body(&tx).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(value)
    }

    /// The budget as last recorded, if any.
    pub fn rate_state(&self) -> Result<Option<RateState>, Error> {
        read_rate(&self.conn).map_err(self.err("read the rate budget"))
    }

    /// A value of the `sync_state` table.
    pub fn sync_value(&self, key: &str) -> Result<Option<String>, Error> {
        self.conn
            .query_row(
                "SELECT value FROM sync_state WHERE key = ?1",
                [key],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.err("read the sync state"))
    }

    pub fn set_sync_value(&self, key: &str, value: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(self.err("write the sync state"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(budget: &SharedBudget, priority: Priority) -> Duration {
        budget.reserve(priority, 0.0, 1000.0).unwrap().wait
    }

    fn told(remaining: f64) -> RateState {
        // 60/h, one a second.
        RateState {
            limit: 60.0,
            remaining,
            reset_at: 1000.0 + 60.0 - remaining,
            observed_at: 1000.0,
        }
    }

    fn budgets() -> (tempfile::TempDir, SharedBudget, SharedBudget) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hcc.db");
        let a = SharedBudget::new(Store::open(&path).unwrap());
        let b = SharedBudget::new(Store::open(&path).unwrap());
        (dir, a, b)
    }

    fn remaining(budget: &SharedBudget) -> f64 {
        let state = budget.store.borrow().rate_state().unwrap().unwrap();
        state.estimate(1000.0)
    }

    #[test]
    fn two_budgets_share_one_bucket() {
        let (_dir, a, b) = budgets();
        let first = a.reserve(Priority::Background, 0.0, 1000.0).unwrap();
        assert_eq!(first.wait, Duration::ZERO);
        // Reserve 3: five tokens left.
        a.record(told(5.0), first.number).unwrap();
        assert_eq!(wait(&a, Priority::Background), Duration::ZERO);
        assert_eq!(wait(&b, Priority::Background), Duration::ZERO);
        let later = wait(&a, Priority::Background);
        assert!(later >= Duration::from_millis(900), "{later:?}");
        assert_eq!(wait(&b, Priority::Command), Duration::ZERO);
    }

    #[test]
    fn an_answer_keeps_what_others_reserved_meanwhile() {
        let (_dir, a, b) = budgets();
        let first = a.reserve(Priority::Command, 0.0, 1000.0).unwrap();
        a.record(told(40.0), first.number).unwrap();
        // a's request goes out; b reserves twice before a's answer lands.
        let mine = a.reserve(Priority::Command, 0.0, 1000.0).unwrap();
        b.reserve(Priority::Command, 0.0, 1000.0).unwrap();
        b.reserve(Priority::Command, 0.0, 1000.0).unwrap();
        assert_eq!(remaining(&a), 37.0);
        // The server counted a's request only: 39. Written over, the
        // budget would say 39 and b's two tokens would be spent twice.
        a.record(told(39.0), mine.number).unwrap();
        assert_eq!(remaining(&a), 37.0);
        // A request from elsewhere shows in the headers: they win.
        let next = b.reserve(Priority::Command, 0.0, 1000.0).unwrap();
        b.record(told(30.0), next.number).unwrap();
        assert_eq!(remaining(&b), 30.0);
    }

    #[test]
    fn a_refund_gives_the_token_back() {
        let (_dir, a, _b) = budgets();
        let first = a.reserve(Priority::Command, 0.0, 1000.0).unwrap();
        a.record(told(10.0), first.number).unwrap();
        a.reserve(Priority::Command, 0.0, 1000.0).unwrap();
        assert_eq!(remaining(&a), 9.0);
        a.refund(1000.0).unwrap();
        assert_eq!(remaining(&a), 10.0);
    }
}
