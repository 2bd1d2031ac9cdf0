//! The `messages` table: a capped ring of notifications. Waiters remember
//! the last id they printed and read what came after; `put` trims the ring
//! to its configured size. Messages are signals, not data: a waiter that
//! falls more than a ring behind misses the oldest ones.

use rusqlite::params;
use rusqlite::types::ValueRef;

use super::{Error, Store, now, sqlite_err};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub msg: String,
}

impl Store {
    /// Appends a message and trims the ring to `ring_size` entries.
    pub fn put_message(&mut self, msg: &str, ring_size: u64) -> Result<i64, Error> {
        let path = self.path.clone();
        let err = |action| sqlite_err(&path, action);
        // One transaction, one commit: waiters wake once.
        let tx = self.immediate("add a message")?;
        tx.execute(
            "INSERT INTO messages (msg, at) VALUES (?1, ?2)",
            params![msg, now()],
        )
        .map_err(err("add a message"))?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "DELETE FROM messages WHERE id <= ?1",
            params![id - ring_size as i64],
        )
        .map_err(err("trim the message ring"))?;
        tx.commit().map_err(err("add a message"))?;
        Ok(id)
    }

    /// Appends and trims inside a transaction the caller holds.
    pub(super) fn put_message_in_transaction(
        &self,
        msg: &str,
        ring_size: u64,
    ) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO messages (msg, at) VALUES (?1, ?2)",
                params![msg, now()],
            )
            .map_err(self.err("add a message"))?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .execute(
                "DELETE FROM messages WHERE id <= ?1",
                params![id - ring_size as i64],
            )
            .map_err(self.err("trim the message ring"))?;
        Ok(())
    }

    /// Messages with an id above `after`, oldest first.
    pub fn messages_after(&self, after: i64) -> Result<Vec<Message>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, msg FROM messages WHERE id > ?1 ORDER BY id")
            .map_err(self.err("read messages"))?;
        let rows = stmt
            .query_map([after], |row| {
                // Panels may insert anything; a message is shown, not parsed.
                let msg = match row.get_ref(1)? {
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                    ValueRef::Integer(n) => n.to_string(),
                    ValueRef::Real(x) => x.to_string(),
                    ValueRef::Null => String::new(),
                };
                Ok(Message {
                    id: row.get(0)?,
                    msg,
                })
            })
            .map_err(self.err("read messages"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("read messages"))
    }

    /// The id of the newest message (0 when there is none).
    pub fn last_message_id(&self) -> Result<i64, Error> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) FROM messages", [], |row| {
                row.get(0)
            })
            .map_err(self.err("read messages"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest() {
        let (_dir, mut store) = Store::scratch();
        for i in 0..25 {
            store.put_message(&format!("m{i}"), 10).unwrap();
        }
        let all = store.messages_after(0).unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(all[0].msg, "m15");
        assert_eq!(all[9].msg, "m24");
        assert_eq!(
            store.messages_after(all[8].id).unwrap(),
            vec![all[9].clone()]
        );
    }
}
