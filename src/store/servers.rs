//! The `servers` table: one row per Hetzner server, keyed by name, with the
//! API's fields in columns (and whole, as JSON, in `api`) plus hcc's own:
//! `stage`, console credentials, root password, `synced_at`.
//!
//! A refresh writes only the API columns, so hcc's own survive it. A server
//! renamed at Hetzner keeps its id: the row under the old name goes.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Error, Store, now, sqlite_err};

/// The API's view of one server, as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerRow {
    pub name: String,
    pub id: i64,
    pub status: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub server_type: Option<String>,
    pub image: Option<String>,
    pub datacenter: Option<String>,
    pub location: Option<String>,
    /// JSON object.
    pub labels: String,
    /// JSON object.
    pub protection: Option<String>,
    pub traffic_in: Option<i64>,
    pub traffic_out: Option<i64>,
    pub traffic_included: Option<i64>,
    pub created: Option<String>,
    /// The whole API object, as JSON.
    pub api: String,
}

/// What the table knows of a name: its Hetzner id (none while being
/// created) and its stage.
pub type Known = (Option<i64>, Option<String>);

/// What a full refresh changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refreshed {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
}

const UPSERT: &str = "INSERT INTO servers (name, id, status, ipv4, ipv6, server_type, image,
        datacenter, location, labels, protection, traffic_in, traffic_out, traffic_included,
        created, api, synced_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
    ON CONFLICT (name) DO UPDATE SET id = excluded.id, status = excluded.status,
        ipv4 = excluded.ipv4, ipv6 = excluded.ipv6, server_type = excluded.server_type,
        image = excluded.image, datacenter = excluded.datacenter,
        location = excluded.location, labels = excluded.labels,
        protection = excluded.protection, traffic_in = excluded.traffic_in,
        traffic_out = excluded.traffic_out, traffic_included = excluded.traffic_included,
        created = excluded.created, api = excluded.api, synced_at = excluded.synced_at,
        stage = CASE WHEN stage = 'new' THEN 'created' ELSE stage END";

/// Writes one row; returns true when it was new.
fn upsert(tx: &Transaction, row: &ServerRow, at: i64) -> rusqlite::Result<bool> {
    // Renamed at Hetzner: the old name's row is the same server.
    tx.execute(
        "DELETE FROM servers WHERE id = ?1 AND name != ?2",
        params![row.id, row.name],
    )?;
    let existed: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM servers WHERE name = ?1 AND id IS NOT NULL)",
        [&row.name],
        |r| r.get(0),
    )?;
    tx.prepare_cached(UPSERT)?.execute(params![
        row.name,
        row.id,
        row.status,
        row.ipv4,
        row.ipv6,
        row.server_type,
        row.image,
        row.datacenter,
        row.location,
        row.labels,
        row.protection,
        row.traffic_in,
        row.traffic_out,
        row.traffic_included,
        row.created,
        row.api,
        at,
    ])?;
    Ok(!existed)
}

impl Store {
    /// Stores a page of servers in one transaction; counts new and
    /// updated rows.
    pub fn refresh_servers(&mut self, rows: &[ServerRow]) -> Result<Refreshed, Error> {
        let path = self.path.clone();
        let err = |action| sqlite_err(&path, action);
        let tx = self.immediate("start storing servers")?;
        let at = now();
        let mut outcome = Refreshed::default();
        for row in rows {
            if upsert(&tx, row, at).map_err(err("store a server"))? {
                outcome.added += 1;
            } else {
                outcome.updated += 1;
            }
        }
        tx.commit().map_err(err("commit servers"))?;
        Ok(outcome)
    }

    /// After a full listing (sorted by id) that began at `listed_from`:
    /// removes rows of servers not in `seen`. Rows without a Hetzner id (a
    /// create in flight) stay, and so do servers created while the listing
    /// ran (stored since it began, with an id above every listed one: ids
    /// only grow), whose row holds the root password. Returns how many went.
    pub fn remove_servers_except(
        &mut self,
        seen: &HashSet<i64>,
        listed_from: i64,
    ) -> Result<usize, Error> {
        let path = self.path.clone();
        let err = |action| sqlite_err(&path, action);
        let tx = self.immediate("start removing servers")?;
        let known: Vec<i64> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id FROM servers WHERE id IS NOT NULL
                     AND NOT (id > ?1 AND synced_at >= ?2)",
                )
                .map_err(err("read servers"))?;
            let newest = seen.iter().copied().max().unwrap_or(0);
            stmt.query_map([newest, listed_from], |r| r.get(0))
                .map_err(err("read servers"))?
                .collect::<Result<_, _>>()
                .map_err(err("read servers"))?
        };
        let mut removed = 0;
        for id in known.into_iter().filter(|id| !seen.contains(id)) {
            tx.execute("DELETE FROM servers WHERE id = ?1", [id])
                .map_err(err("remove a server"))?;
            removed += 1;
        }
        tx.commit().map_err(err("commit the removals"))?;
        Ok(removed)
    }

    /// Replaces the table's view of Hetzner with `rows` (a full listing).
    #[cfg(test)]
    pub fn refresh_all_servers(&mut self, rows: &[ServerRow]) -> Result<Refreshed, Error> {
        let mut outcome = self.refresh_servers(rows)?;
        let seen = rows.iter().map(|r| r.id).collect();
        outcome.removed = self.remove_servers_except(&seen, i64::MAX)?;
        Ok(outcome)
    }

    /// Upserts one server's row.
    pub fn refresh_server(&mut self, row: &ServerRow) -> Result<(), Error> {
        let path = self.path.clone();
        let err = |action| sqlite_err(&path, action);
        let tx = self.immediate("start storing a server")?;
        upsert(&tx, row, now()).map_err(err("store a server"))?;
        tx.commit().map_err(err("store a server"))
    }

    /// Removes a server's row by Hetzner id; true if there was one.
    pub fn remove_server_id(&self, id: i64) -> Result<bool, Error> {
        let n = self
            .conn
            .execute("DELETE FROM servers WHERE id = ?1", [id])
            .map_err(self.err("remove a server"))?;
        Ok(n > 0)
    }

    /// Removes a server's row by name; true if there was one.
    pub fn remove_server_name(&self, name: &str) -> Result<bool, Error> {
        let n = self
            .conn
            .execute("DELETE FROM servers WHERE name = ?1", [name])
            .map_err(self.err("remove a server"))?;
        Ok(n > 0)
    }

    /// Marks a server as being created (`stage = 'new'`) before the API
    /// call, so a panel sees it at once.
    pub fn mark_creating(&self, name: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO servers (name, stage) VALUES (?1, 'new')
                 ON CONFLICT (name) DO UPDATE SET stage = 'new'",
                [name],
            )
            .map_err(self.err("record a server being created"))?;
        Ok(())
    }

    /// Stores the root password Hetzner returned at creation.
    pub fn record_root_password(&self, name: &str, password: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE servers SET root_password = ?2, root_password_at = ?3, stage = 'created'
                 WHERE name = ?1",
                params![name, password, super::now()],
            )
            .map_err(self.err("store the root password"))?;
        Ok(())
    }

    /// Stores fresh console credentials, creating the row if needed;
    /// returns when, in Unix seconds like every other `*_at`.
    pub fn record_console(&self, name: &str, url: &str, password: &str) -> Result<i64, Error> {
        let at = now();
        self.conn
            .execute(
                "INSERT INTO servers (name, console_url, console_password, console_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET console_url = excluded.console_url,
                     console_password = excluded.console_password,
                     console_at = excluded.console_at",
                params![name, url, password, at],
            )
            .map_err(self.err("store console credentials"))?;
        Ok(at)
    }

    /// The Hetzner id stored for `name`, and its stage.
    pub fn server_id(&self, name: &str) -> Result<Option<Known>, Error> {
        self.conn
            .query_row(
                "SELECT id, stage FROM servers WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err("read a server"))
    }

    /// The panel's view of a console: `<console_url><wss_url>#<password>`
    /// needs the base from the settings; this is the stored URL and password.
    pub fn console_url(&self, name: &str) -> Result<Option<String>, Error> {
        self.conn
            .query_row(
                "SELECT console_url || '#' || console_password FROM servers WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(self.err("read a server"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, id: i64, status: &str) -> ServerRow {
        ServerRow {
            name: name.into(),
            id,
            status: status.into(),
            labels: "{}".into(),
            api: "{}".into(),
            ..ServerRow::default()
        }
    }

    #[test]
    fn a_full_refresh_adds_updates_and_removes_but_keeps_hccs_columns() {
        let (_dir, mut store) = Store::scratch();
        store
            .refresh_all_servers(&[row("a", 1, "running"), row("b", 2, "off")])
            .unwrap();
        store.record_console("a", "wss://x", "pw").unwrap();
        store.mark_creating("c").unwrap();
        let outcome = store
            .refresh_all_servers(&[row("a", 1, "off"), row("renamed", 2, "off")])
            .unwrap();
        assert_eq!(
            outcome,
            Refreshed {
                added: 1,
                updated: 1,
                removed: 0
            }
        );
        let listed = store.servers("managed").unwrap();
        let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "renamed"]);
        assert_eq!(listed[0].status.as_deref(), Some("off"));
        assert!(listed[0].console_at.is_some());
        let outcome = store.refresh_all_servers(&[row("a", 1, "off")]).unwrap();
        assert_eq!(outcome.removed, 1);
    }
}
