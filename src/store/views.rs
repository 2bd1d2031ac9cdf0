//! Read-only views of servers and commands for `hcc serve`'s JSON API.
//! Secrets (console and root passwords) are not selected at all, so no
//! route can leak them by accident.

use rusqlite::{OptionalExtension, Row};

use super::{Error, Store};

/// A server as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerView {
    pub name: String,
    pub id: Option<i64>,
    pub status: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub server_type: Option<String>,
    pub image: Option<String>,
    pub datacenter: Option<String>,
    pub location: Option<String>,
    /// JSON object.
    pub labels: String,
    pub created: Option<String>,
    pub stage: Option<String>,
    pub console_at: Option<f64>,
    pub synced_at: Option<i64>,
}

/// A command as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandView {
    pub id: i64,
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

const SERVER_COLUMNS: &str = "name, id, status, ipv4, ipv6, server_type, image, datacenter, \
     location, labels, created, stage, console_at, synced_at";

fn server_view(r: &Row) -> rusqlite::Result<ServerView> {
    Ok(ServerView {
        name: r.get(0)?,
        id: r.get(1)?,
        status: r.get(2)?,
        ipv4: r.get(3)?,
        ipv6: r.get(4)?,
        server_type: r.get(5)?,
        image: r.get(6)?,
        datacenter: r.get(7)?,
        location: r.get(8)?,
        labels: r
            .get::<_, Option<String>>(9)?
            .unwrap_or_else(|| "{}".into()),
        created: r.get(10)?,
        stage: r.get(11)?,
        console_at: r.get(12)?,
        synced_at: r.get(13)?,
    })
}

impl Store {
    /// Every server, by name.
    pub fn server_views(&self) -> Result<Vec<ServerView>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SERVER_COLUMNS} FROM servers ORDER BY name"
            ))
            .map_err(self.err("read servers"))?;
        let rows = stmt
            .query_map([], server_view)
            .map_err(self.err("read servers"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("read servers"))
    }

    /// One server by name.
    pub fn server_view(&self, name: &str) -> Result<Option<ServerView>, Error> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {SERVER_COLUMNS} FROM servers WHERE name = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([name], server_view).optional())
            .map_err(self.err("read a server"))
    }

    /// One command by id.
    pub fn command_view(&self, id: i64) -> Result<Option<CommandView>, Error> {
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
