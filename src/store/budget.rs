//! The `rate_budget` table: one row holding the Hetzner bucket as the last
//! response described it, minus what processes on this machine reserved
//! since. Reserving runs in an IMMEDIATE transaction, so two processes never
//! both take the last token.

use std::time::Duration;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Error, Store};
use crate::hetzner::{Budget, Priority, RateState};

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
    fn reserve(&self, priority: Priority, now: f64) -> Result<Duration, String> {
        self.store
            .borrow_mut()
            .reserve_token(priority, now)
            .map_err(|e| e.to_string())
    }

    fn record(&self, state: RateState) -> Result<(), String> {
        self.store
            .borrow()
            .record_rate(state)
            .map_err(|e| e.to_string())
    }
}

/// The stored bucket, if any answer has described it yet.
fn read_rate(conn: &rusqlite::Connection) -> rusqlite::Result<Option<RateState>> {
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

impl Store {
    fn reserve_token(&mut self, priority: Priority, now: f64) -> Result<Duration, Error> {
        let path = self.path.clone();
        let err = |action| {
            let path = path.clone();
            move |source| Error::Sqlite {
                path,
                action,
                source,
            }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("reserve a request"))?;
        let state = read_rate(&tx).map_err(err("read the rate budget"))?;
        // Nothing known yet: the first answer will tell.
        let Some(state) = state else {
            return Ok(Duration::ZERO);
        };
        let (wait, after) = state.spend(priority, now);
        tx.execute(
            "UPDATE rate_budget SET remaining = ?1, observed_at = ?2",
            params![after.remaining, after.observed_at],
        )
        .map_err(err("update the rate budget"))?;
        tx.commit().map_err(err("commit the rate budget"))?;
        Ok(wait)
    }

    /// Stores what a response's `RateLimit-*` headers said.
    pub fn record_rate(&self, state: RateState) -> Result<(), Error> {
        self.conn
            .execute(
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
            )
            .map_err(self.err("record the rate budget"))?;
        Ok(())
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

    #[test]
    fn two_budgets_share_one_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hcc.db");
        let a = SharedBudget::new(Store::open(&path).unwrap());
        let b = SharedBudget::new(Store::open(&path).unwrap());
        assert_eq!(
            a.reserve(Priority::Background, 1000.0).unwrap(),
            Duration::ZERO
        );
        // 60/h, one a second, reserve 3: five tokens left.
        a.record(RateState {
            limit: 60.0,
            remaining: 5.0,
            reset_at: 1055.0,
            observed_at: 1000.0,
        })
        .unwrap();
        assert_eq!(
            a.reserve(Priority::Background, 1000.0).unwrap(),
            Duration::ZERO
        );
        assert_eq!(
            b.reserve(Priority::Background, 1000.0).unwrap(),
            Duration::ZERO
        );
        let wait = a.reserve(Priority::Background, 1000.0).unwrap();
        assert!(wait >= Duration::from_millis(900), "{wait:?}");
        assert_eq!(
            b.reserve(Priority::Interactive, 1000.0).unwrap(),
            Duration::ZERO
        );
    }
}
