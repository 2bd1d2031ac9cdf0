//! Read-only views of servers (for `hcc list` and `hcc serve`'s JSON API)
//! and commands (for the API). Secrets (console and root passwords) are
//! not selected at all, so no route can leak them by accident.

use rusqlite::{OptionalExtension, Row};

use super::{CommandId, Error, Store};
use crate::server::{Server, is_managed, name_ok};

/// A command as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandView {
    pub id: CommandId,
    pub cmd: String,
    pub arg: String,
    pub state: String,
    pub source: String,
    pub attempts: i64,
    /// JSON text, as the worker recorded it.
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub not_before: Option<i64>,
}

// `console_at` is a REAL column and may hold a fraction of a second (a
// panel may write one); the model has whole seconds, as every `*_at`.
const SERVER_COLUMNS: &str = "name, id, status, ipv4, ipv6, server_type, image, datacenter, \
     location, labels, created, stage, CAST(console_at AS INTEGER), synced_at";

/// A row of [`SERVER_COLUMNS`]; `label` is the managed label.
fn server(r: &Row, label: &str) -> rusqlite::Result<Server> {
    // Labels a panel wrote that are no JSON object of strings count as none.
    let labels: std::collections::BTreeMap<String, String> = r
        .get::<_, Option<String>>(9)?
        .and_then(|l| serde_json::from_str(&l).ok())
        .unwrap_or_default();
    let name: String = r.get(0)?;
    Ok(Server {
        name_ok: name_ok(&name),
        name,
        id: r.get(1)?,
        status: r.get(2)?,
        ip4: r.get(3)?,
        ip6: r.get(4)?,
        server_type: r.get(5)?,
        image: r.get(6)?,
        datacenter: r.get(7)?,
        location: r.get(8)?,
        managed: is_managed(&labels, label),
        labels,
        created: r.get(10)?,
        stage: r.get(11)?,
        console_at: r.get(12)?,
        synced_at: r.get(13)?,
    })
}

impl Store {
    /// Every server, by name; `label` is the managed label.
    pub fn servers(&self, label: &str) -> Result<Vec<Server>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SERVER_COLUMNS} FROM servers ORDER BY name"
            ))
            .map_err(self.err("read servers"))?;
        let rows = stmt
            .query_map([], |r| server(r, label))
            .map_err(self.err("read servers"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("read servers"))
    }

    /// One server by name; `label` is the managed label.
    pub fn server(&self, name: &str, label: &str) -> Result<Option<Server>, Error> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {SERVER_COLUMNS} FROM servers WHERE name = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([name], |r| server(r, label)).optional())
            .map_err(self.err("read a server"))
    }

    /// The full Hetzner object of server `name`, as the last sync or
    /// action stored it (`servers.api`); `None` before the first.
    pub fn server_api(&self, name: &str) -> Result<Option<serde_json::Value>, Error> {
        let text: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT api FROM servers WHERE name = ?1")
            .and_then(|mut stmt| stmt.query_row([name], |r| r.get(0)).optional())
            .map_err(self.err("read a server"))?;
        Ok(text
            .flatten()
            .and_then(|t| serde_json::from_str(&t).ok())
            .filter(serde_json::Value::is_object))
    }

    /// One command by id.
    pub fn command_view(&self, id: impl Into<CommandId>) -> Result<Option<CommandView>, Error> {
        let id = id.into();
        self.conn
            .prepare_cached(
                "SELECT id, cmd, arg, state, source, attempts, result, error, created_at,
                        started_at, finished_at, not_before
                 FROM commands WHERE id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([id], |r| {
                    Ok(CommandView {
                        id: r.get(0)?,
                        cmd: r.get(1)?,
                        arg: r.get(2)?,
                        state: r.get(3)?,
                        source: r.get(4)?,
                        attempts: r.get(5)?,
                        result: text(r, 6)?,
                        error: text(r, 7)?,
                        created_at: r.get(8)?,
                        started_at: r.get(9)?,
                        finished_at: r.get(10)?,
                        not_before: r.get(11)?,
                    })
                })
                .optional()
            })
            .map_err(self.err("read a command"))
    }
}

/// A column a panel may have filled with any type: numbers come back as
/// their text.
fn text(r: &Row, i: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
    })
}
