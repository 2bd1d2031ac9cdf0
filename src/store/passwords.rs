//! Root passwords that `create`, `rebuild`, `reset-password` and
//! `enable-rescue` get from Hetzner. The newest stays in
//! `servers.root_password` with its time, where a panel reading the
//! database finds it; a command queued through the API also keeps it in
//! its own row until the key that queued it has read it once.

use rusqlite::{OptionalExtension, params};

use super::command_state::DONE;
use super::{CommandId, Error, Store, now};

impl Store {
    /// Stores `password` as server `name`'s newest root password.
    pub fn record_new_root_password(&self, name: &str, password: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE servers SET root_password = ?2, root_password_at = ?3 WHERE name = ?1",
                params![name, password, now()],
            )
            .map_err(self.err("store the root password"))?;
        Ok(())
    }

    /// Keeps `password` in command `id`'s row for the key that queued it
    /// (commands queued otherwise keep nothing: their password is in
    /// `servers`).
    pub fn keep_command_password(&self, id: CommandId, password: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE commands SET root_password = ?2 WHERE id = ?1 AND created_by IS NOT NULL",
                params![id, password],
            )
            .map_err(self.err("keep a command's root password"))?;
        Ok(())
    }

    /// The root password command `id` got, for the key `key` that queued
    /// it, once the command is done: handed out once, then gone from the
    /// row. `None` for any other key, before the command is done, and
    /// after the first read.
    pub fn take_command_password(&self, id: CommandId, key: &str) -> Result<Option<String>, Error> {
        self.immediately("hand out a command's root password", || {
            let password: Option<String> = self
                .conn
                .query_row(
                    &format!(
                        "SELECT root_password FROM commands
                         WHERE id = ?1 AND created_by = ?2 AND state = {DONE}
                           AND root_password IS NOT NULL"
                    ),
                    params![id, key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(self.err("read a command's root password"))?;
            if password.is_some() {
                self.conn
                    .execute(
                        "UPDATE commands SET root_password = NULL WHERE id = ?1",
                        [id],
                    )
                    .map_err(self.err("forget a command's root password"))?;
            }
            Ok(password)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Source;
    use crate::verb::CommandLine;

    #[test]
    fn a_commands_password_goes_once_to_the_key_that_queued_it_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hcc.db")).unwrap();
        let line = CommandLine::parse_line("reset-password web1").unwrap();
        let id = store.queue_by(&line, Source::Api, Some("panel")).unwrap();
        let other = store.queue(&line, Source::Cli).unwrap();
        store.keep_command_password(id, "s3cret").unwrap();
        store.keep_command_password(other, "kept-nowhere").unwrap();
        assert_eq!(
            store.take_command_password(id, "panel").unwrap(),
            None,
            "not done yet"
        );
        store
            .conn
            .execute("UPDATE commands SET state = 'done' WHERE id = ?1", [id])
            .unwrap();
        assert_eq!(store.take_command_password(id, "intruder").unwrap(), None);
        assert_eq!(
            store.take_command_password(id, "panel").unwrap().as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            store.take_command_password(id, "panel").unwrap(),
            None,
            "once"
        );
        let left: Option<String> = store
            .conn
            .query_row(
                "SELECT group_concat(root_password) FROM commands",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, None, "no password left in any command row");
    }
}
