//! The schema, as an append-only list of migrations.
//!
//! Entry `i` upgrades a database from `user_version = i` to `i + 1`.
//! Compatibility: never edit, remove or reorder an entry once released;
//! add tables and columns, never drop or rename them, because panels read
//! these tables directly (docs/panels.md, "The database"). Defaults are written so
//! that a panel's plain `INSERT INTO commands (cmd, arg) VALUES (..)` gets a
//! complete queued row, and use only SQL that old SQLite libraries (PHP's,
//! the sqlite3 CLI) understand.

pub const MIGRATIONS: &[&str] = &[
    // 1: servers, the vms view, commands, messages.
    r#"
CREATE TABLE servers (
    name             TEXT PRIMARY KEY NOT NULL,
    id               INTEGER UNIQUE,
    status           TEXT,
    ipv4             TEXT,
    ipv6             TEXT,
    server_type      TEXT,
    image            TEXT,
    datacenter       TEXT,
    location         TEXT,
    labels           TEXT NOT NULL DEFAULT '{}',
    protection       TEXT,
    traffic_in       INTEGER,
    traffic_out      INTEGER,
    traffic_included INTEGER,
    created          TEXT,
    api              TEXT,
    stage            TEXT,
    console_url      TEXT,
    console_password TEXT,
    console_at       REAL,
    root_password    TEXT,
    synced_at        INTEGER
);

CREATE VIEW vms AS
SELECT name, id, status,
       ipv4 AS ip4, ipv6 AS ip6,
       console_url AS url, console_password AS auth, console_at AS ts,
       root_password AS pw, stage, labels
FROM servers;

CREATE TABLE commands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cmd         TEXT NOT NULL,
    arg         TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'done', 'failed')),
    source      TEXT NOT NULL DEFAULT 'sql',
    spool_name  TEXT UNIQUE,
    spool_stamp TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    lease_owner TEXT,
    result      TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    started_at  INTEGER,
    finished_at INTEGER
);

CREATE INDEX commands_by_state ON commands (state, id);

CREATE TABLE messages (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    msg TEXT NOT NULL,
    at  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
"#,
    // 2: the shared rate budget and the incremental sync's bookmark.
    r#"
CREATE TABLE rate_budget (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    limit_per_hour REAL NOT NULL,
    remaining      REAL NOT NULL,
    reset_at       REAL NOT NULL,
    observed_at    REAL NOT NULL
);

CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- `hcc list` reads only these columns; from this index it reads a few
-- compact pages instead of every row with its full API JSON.
CREATE INDEX servers_list ON servers
    (name, id, status, ipv4, ipv6, server_type, location, labels, stage, console_at);
"#,
    // 3: retry backoff for the worker.
    r#"
ALTER TABLE commands ADD COLUMN not_before INTEGER;
"#,
    // 4: hcc serve: API keys, one-time console links, console sessions.
    // Only hashes of keys and tokens are stored: a copy of this file
    // opens nothing.
    r#"
CREATE TABLE api_keys (
    name         TEXT PRIMARY KEY NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'act', 'console', 'admin')),
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE console_links (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT NOT NULL UNIQUE,
    server      TEXT NOT NULL,
    server_id   INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    opened_at   INTEGER,
    opened_from TEXT
);

CREATE TABLE console_sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_hash TEXT NOT NULL UNIQUE,
    server       TEXT NOT NULL,
    server_id    INTEGER NOT NULL,
    link_id      INTEGER,
    created_by   TEXT,
    remote       TEXT,
    started_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    refreshes    INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL
);

CREATE INDEX console_sessions_by_key ON console_sessions (created_by);
"#,
    // 5: the console broker: what a brokered session carried and how it
    // ended, its one-time websocket ticket, a request to end it (revoke,
    // suspend) that another process can make; suspended servers.
    r#"
ALTER TABLE console_sessions ADD COLUMN mode TEXT NOT NULL DEFAULT 'direct';
ALTER TABLE console_sessions ADD COLUMN user_agent TEXT;
ALTER TABLE console_sessions ADD COLUMN ticket_hash TEXT;
ALTER TABLE console_sessions ADD COLUMN ticket_expires_at INTEGER;
ALTER TABLE console_sessions ADD COLUMN connected_at INTEGER;
ALTER TABLE console_sessions ADD COLUMN ended_at INTEGER;
ALTER TABLE console_sessions ADD COLUMN end_reason TEXT;
ALTER TABLE console_sessions ADD COLUMN bytes_to_client INTEGER NOT NULL DEFAULT 0;
ALTER TABLE console_sessions ADD COLUMN bytes_from_client INTEGER NOT NULL DEFAULT 0;
ALTER TABLE console_sessions ADD COLUMN stop_requested TEXT;
CREATE UNIQUE INDEX console_sessions_by_ticket ON console_sessions (ticket_hash);
CREATE INDEX console_sessions_live ON console_sessions (server, ended_at);

CREATE TABLE suspended (
    server       TEXT PRIMARY KEY NOT NULL,
    suspended_at INTEGER NOT NULL,
    suspended_by TEXT
);
"#,
    // 6: page sessions and their connections. A console page is one page
    // session; each websocket it opens (a reload, a reconnect after a
    // reboot) is a row of its own, and `page_id` names the page session's
    // first row on every one of them (on that row, its own id), so that
    // the listing groups them and a new connection ends the page's
    // previous relay. Rows from before are grouped by their link (a link
    // opens one page session); a row without a link is a page session of
    // its own. `remote` and `user_agent` stay the page's (who opened it);
    // `connection_remote` and `connection_user_agent` are each
    // connection's own, which may differ (a ticket used from elsewhere).
    // Before this, a connection wrote its user agent over the page's: for
    // those rows it is the connection's.
    r#"
ALTER TABLE console_sessions ADD COLUMN page_id INTEGER;
ALTER TABLE console_sessions ADD COLUMN connection_remote TEXT;
ALTER TABLE console_sessions ADD COLUMN connection_user_agent TEXT;
-- For the backfill only: each row finds its link's first row at once
-- instead of scanning the table (months of sessions) once per row.
CREATE INDEX console_sessions_by_link_once ON console_sessions (link_id, id);
UPDATE console_sessions SET page_id = coalesce(
    (SELECT min(f.id) FROM console_sessions f WHERE f.link_id = console_sessions.link_id),
    id);
DROP INDEX console_sessions_by_link_once;
UPDATE console_sessions SET connection_user_agent = user_agent WHERE connected_at IS NOT NULL;
CREATE INDEX console_sessions_by_page ON console_sessions (page_id);
"#,
    // 7: root passwords from the client-area verbs. `root_password_at`
    // says when `servers.root_password` was set (by `create`, `rebuild`,
    // `reset-password` or `enable-rescue`); `created_by` names the API key
    // that queued a command; `root_password` holds the password a command
    // got until that key has read it once (then NULL).
    r#"
ALTER TABLE servers ADD COLUMN root_password_at INTEGER;
ALTER TABLE commands ADD COLUMN created_by TEXT;
ALTER TABLE commands ADD COLUMN root_password TEXT;
"#,
    // 8: coalescing. `merged_into` names the command whose run a queued
    // duplicate shares (NULL for a command that ran itself); the worker's
    // fair order reads when each server last started a command.
    r#"
ALTER TABLE commands ADD COLUMN merged_into INTEGER;
CREATE INDEX commands_by_merged ON commands (merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX commands_by_started ON commands (started_at) WHERE started_at IS NOT NULL;
"#,
];
