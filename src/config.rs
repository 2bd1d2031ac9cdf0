//! Settings: `config.json` in the state directory, overridden by
//! `HCLOUD_TOKEN` and `HCLOUD_ENDPOINT`, with built-in defaults.
//!
//! The file is a flat JSON object of known keys only; unknown keys and
//! invalid values are refused with the key named, whether they come from
//! `hcc config set`, `hcc setup` or a hand edit. It is written atomically
//! (temporary file, fsync, rename) with mode 0600 because it may hold the
//! API token. The token is never printed: every display path goes through
//! [`Secret`], whose `Debug` and `Display` are redacted.
//!
//! [`Config`] is the file as `hcc config` and `hcc setup` edit it, each
//! value with its source; [`Settings`] (settings.rs) is what the other
//! commands read: every key resolved once, typed. [`KEYS`] is the one
//! place that names a setting's default.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::verb::{check_server_name, is_hetzner_name, shown};

mod settings;

pub use settings::{
    ConsoleMode, LogFormat, MetricsAccess, RESTART_KEYS, Settings, WORKER_KEYS, WalCheckpoints,
    url_origin, web_origin, websocket_origin,
};

/// A setting's value that must never be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} characters>", self.0.chars().count())
    }
}

#[derive(Debug)]
pub enum Error {
    UnknownKey(String),
    Invalid {
        key: &'static str,
        why: String,
    },
    Read {
        path: PathBuf,
        why: String,
    },
    /// The file exists but this user may not read it.
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A symlink, hard link or foreign file where `config.json` belongs.
    Unsafe {
        path: PathBuf,
        why: String,
    },
    /// No API token anywhere, or its file cannot be read: what to do.
    NoToken(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownKey(key) => write!(
                f,
                "unknown setting `{}` (known: {})",
                shown(key),
                KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
            ),
            Error::Invalid { key, why } => write!(f, "invalid value for `{key}`: {why}"),
            Error::Read { path, why } => write!(
                f,
                "cannot read configuration `{}`: {why} (fix the file or run `hcc setup`)",
                path.display()
            ),
            Error::Unreadable { path, source } => write!(
                f,
                "cannot read configuration `{}`: {source} (it is private to its owner, mode 0600, as it may hold the API token: run hcc as that user)",
                path.display()
            ),
            Error::Unsafe { path, why } => f.write_str(&crate::safe_fs::refusal(path, why)),
            // Worded as it was when the Hetzner client raised it: scripts
            // and panels match this line.
            Error::NoToken(why) => write!(f, "hetzner: {why}"),
            Error::Write { path, source } => {
                write!(
                    f,
                    "cannot write configuration `{}`: {source}",
                    path.display()
                )
            }
        }
    }
}

/// The systemd credential holding the token: `LoadCredential=` copies it
/// into `$CREDENTIALS_DIRECTORY`, readable by that service only.
pub const CREDENTIAL: &str = "hcloud-token";

/// The token from `$CREDENTIALS_DIRECTORY/hcloud-token` when systemd
/// provides one; `None` without that variable or file, when it is empty,
/// or when it cannot be read (systemd makes it readable for the service;
/// anything else falls through to the settings and, failing those, to
/// "no API token").
fn credential_token() -> Option<Secret> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty())?;
    let text = crate::safe_fs::read_small(&Path::new(&dir).join(CREDENTIAL), 4096).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| Secret::new(token.to_string()))
}

/// How a key's value is checked and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Token,
    Path,
    Url,
    Name,
    LabelKey,
    Prefix,
    BaseUrl,
    Count {
        min: u64,
        max: u64,
    },
    VerbList,
    /// A CSP `frame-ancestors` source list.
    FrameAncestors,
    /// Websocket origins (`wss://host[:port]`), space-separated; empty: any.
    Origins,
    /// Web origins (`https://host[:port]`), separated by spaces or commas;
    /// empty: none.
    WebOrigins,
    /// One of a fixed list of words.
    OneOf(&'static [&'static str]),
    /// IP addresses, separated by spaces or commas, or `none`.
    Addresses,
}

/// One setting: its key, what `hcc setup` shows, its default.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub title: &'static str,
    pub hint: &'static str,
    pub default: Option<&'static str>,
    /// An environment variable that overrides the file.
    pub env: Option<&'static str>,
    kind: Kind,
}

impl Key {
    pub fn is_secret(&self) -> bool {
        self.kind == Kind::Token
    }
}

pub const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";

/// Every verb but `settag` and `deltag`, which adopt or release servers:
/// an operator's decision, not a panel's (derived from verb.rs).
pub const DEFAULT_QUEUE_VERBS: &str = crate::verb::QUEUE_DEFAULT;

/// Every setting, in the order `hcc setup` asks for them.
pub const KEYS: &[Key] = &[
    Key {
        name: "token",
        title: "API token",
        hint: "create one in the Hetzner Cloud Console: project, Security, API tokens",
        default: None,
        env: Some("HCLOUD_TOKEN"),
        kind: Kind::Token,
    },
    Key {
        name: "token_file",
        title: "API token file",
        hint: "absolute path of a file holding the token, read at each use (used when `token` is empty)",
        default: None,
        env: None,
        kind: Kind::Path,
    },
    Key {
        name: "endpoint",
        title: "API endpoint",
        hint: "base URL of the Hetzner Cloud API",
        default: Some(DEFAULT_ENDPOINT),
        env: Some("HCLOUD_ENDPOINT"),
        kind: Kind::Url,
    },
    Key {
        name: "location",
        title: "Default location",
        hint: "where new servers are created, e.g. fsn1, nbg1, hel1, ash, hil, sin",
        default: Some("fsn1"),
        env: None,
        kind: Kind::Name,
    },
    Key {
        name: "server_type",
        title: "Default server type",
        hint: "type of new servers, e.g. cx22, cpx11, cax11",
        default: Some("cx22"),
        env: None,
        kind: Kind::Name,
    },
    Key {
        name: "image",
        title: "Default image",
        hint: "image of new servers, e.g. debian-12, ubuntu-24.04",
        default: Some("debian-12"),
        env: None,
        kind: Kind::Name,
    },
    Key {
        name: "label",
        title: "Managed label",
        hint: "label key marking the servers hcc may touch",
        default: Some("managed"),
        env: None,
        kind: Kind::LabelKey,
    },
    Key {
        name: "prefix",
        title: "Name prefix",
        hint: "names of new servers must begin with it, e.g. m-; empty for none",
        default: Some(""),
        env: None,
        kind: Kind::Prefix,
    },
    Key {
        name: "console_url",
        title: "Console base URL",
        hint: "printed before console URLs, e.g. https://panel.example.org/vnc/l.html? ; empty for none",
        default: Some(""),
        env: None,
        kind: Kind::BaseUrl,
    },
    Key {
        name: "ring_size",
        title: "Message ring size",
        hint: "how many notifications the message ring keeps",
        default: Some("1000"),
        env: None,
        kind: Kind::Count {
            min: 10,
            max: 1_000_000,
        },
    },
    Key {
        name: "queue_verbs",
        title: "Verbs the queue accepts",
        hint: "commands the worker runs from the queue, comma-separated; others end failed",
        default: Some(DEFAULT_QUEUE_VERBS),
        env: None,
        kind: Kind::VerbList,
    },
    Key {
        name: "full_sync_every",
        title: "Full sync every N cycles",
        hint: "the worker's idle cycles between full syncs; incremental syncs in between",
        default: Some("36"),
        env: None,
        kind: Kind::Count {
            min: 1,
            max: 100_000,
        },
    },
    Key {
        name: "max_attempts",
        title: "Attempts per command",
        hint: "how often a command is handed out before it ends failed (leases that expire, transient failures)",
        default: Some("5"),
        env: None,
        kind: Kind::Count { min: 1, max: 100 },
    },
    Key {
        name: "public_url",
        title: "Public URL of hcc serve",
        hint: "where customers reach `hcc serve`, the start of console links, e.g. https://console.example.com ; empty: the listen address",
        default: Some(""),
        env: None,
        kind: Kind::BaseUrl,
    },
    Key {
        name: "link_ttl",
        title: "Console link lifetime",
        hint: "seconds a one-time console link stays valid until it is opened",
        default: Some("300"),
        env: None,
        kind: Kind::Count {
            min: 10,
            max: 86_400,
        },
    },
    Key {
        name: "session_ttl",
        title: "Console session lifetime",
        hint: "seconds an opened console page may fetch fresh credentials without a new link",
        default: Some("28800"),
        env: None,
        kind: Kind::Count {
            min: 60,
            max: 604_800,
        },
    },
    Key {
        name: "frame_ancestors",
        title: "Pages that may embed the console",
        hint: "CSP frame-ancestors: 'none', 'self', or origins such as https://panel.example.com",
        default: Some("'none'"),
        env: None,
        kind: Kind::FrameAncestors,
    },
    Key {
        name: "console_hosts",
        title: "Consoles hcc may reach",
        hint: "websocket origins consoles may be at (the old l.html?wss://... form and console links), e.g. wss://web-console.hetzner.cloud ; empty: any",
        default: Some(""),
        env: None,
        kind: Kind::Origins,
    },
    Key {
        name: "allowed_origins",
        title: "Other sites that may use console pages",
        hint: "origins besides hcc's own whose pages may open console links and their websockets (a billing system that embeds the console), e.g. https://billing.example.com ; empty: none",
        default: Some(""),
        env: None,
        kind: Kind::WebOrigins,
    },
    Key {
        name: "metrics",
        title: "Who may read /metrics",
        hint: "loopback: clients on this machine without a proxy in between, and admin keys; admin: admin keys only; off: 404",
        default: Some("loopback"),
        env: None,
        kind: Kind::OneOf(&["loopback", "admin", "off"]),
    },
    Key {
        name: "trusted_proxies",
        title: "Trusted proxies",
        hint: "addresses of proxies in front of hcc serve whose X-Forwarded-For names the client, or none",
        default: Some("127.0.0.1 ::1"),
        env: None,
        kind: Kind::Addresses,
    },
    Key {
        name: "console_mode",
        title: "How console pages connect",
        hint: "broker: the browser connects to hcc, which holds the console's URL and password; direct: the browser gets them and connects to Hetzner",
        default: Some("broker"),
        env: None,
        kind: Kind::OneOf(&["broker", "direct"]),
    },
    Key {
        name: "console_idle_timeout",
        title: "Idle brokered consoles end after",
        hint: "seconds a brokered console session may pass no data either way before hcc ends it",
        default: Some("900"),
        env: None,
        kind: Kind::Count {
            min: 1,
            max: 604_800,
        },
    },
    Key {
        name: "command_reserve",
        title: "Share of the Hetzner budget kept for queued commands",
        hint: "percent of the Hetzner rate limit that console requests and syncs never spend, so that queued commands run however many consoles are open",
        default: Some("20"),
        env: None,
        kind: Kind::Count { min: 0, max: 90 },
    },
    Key {
        name: "console_refresh_every",
        title: "Fresh console credentials per page, after the first three, at most every",
        hint: "seconds between two Hetzner console requests of one console page once it has made three in a row (each reconnect is one)",
        default: Some("10"),
        env: None,
        kind: Kind::Count { min: 1, max: 600 },
    },
    Key {
        name: "console_requests_per_server",
        title: "Console requests per server and minute at most",
        hint: "Hetzner console requests hcc serve makes for one server in a minute, a third of them at once; more wait (the page counts down)",
        default: Some("12"),
        env: None,
        kind: Kind::Count { min: 1, max: 3600 },
    },
    Key {
        name: "max_console_sessions",
        title: "Live brokered consoles at most",
        hint: "in one hcc serve; 0: as many as its open-file limit allows (four descriptors each)",
        default: Some("0"),
        env: None,
        kind: Kind::Count {
            min: 0,
            max: 1_000_000,
        },
    },
    Key {
        name: "max_console_sessions_per_server",
        title: "Live brokered consoles per server at most",
        hint: "a customer with a few tabs open is well within it; a script opening hundreds is not",
        default: Some("4"),
        env: None,
        kind: Kind::Count {
            min: 1,
            max: 1_000_000,
        },
    },
    Key {
        name: "max_console_sessions_per_key",
        title: "Live brokered consoles per API key at most",
        hint: "consoles opened through one API key's links and requests; 0: half of max_console_sessions, so one leaked key cannot take them all",
        default: Some("0"),
        env: None,
        kind: Kind::Count {
            min: 0,
            max: 1_000_000,
        },
    },
    Key {
        name: "shutdown_timeout",
        title: "Seconds a server may take to shut down for change-type",
        hint: "change-type asks a running server to shut down (ACPI) and powers it off hard when it is still running after this many seconds",
        default: Some("60"),
        env: None,
        kind: Kind::Count { min: 1, max: 3600 },
    },
    Key {
        name: "sync_parallel",
        title: "Pages a full sync asks Hetzner for at once",
        hint: "a full sync reads the first page of servers, then up to this many of the rest at once (each request from the same rate budget); 1: one after another",
        default: Some("4"),
        env: None,
        kind: Kind::Count { min: 1, max: 16 },
    },
    Key {
        name: "log_format",
        title: "Log format of hcc worker and hcc serve",
        hint: "text: one line of words each; json: one JSON object per line (time, level, source, event, message and the line's fields)",
        default: Some("text"),
        env: None,
        kind: Kind::OneOf(&["text", "json"]),
    },
    Key {
        name: "wal_checkpoints",
        title: "Who checkpoints the WAL of hcc.db",
        hint: "hcc: the worker, on a thread of its own; external: a replication tool such as Litestream, and the worker's connections never checkpoint (see docs/operations.md, A standby with Litestream)",
        default: Some("hcc"),
        env: None,
        kind: Kind::OneOf(&["hcc", "external"]),
    },
];

pub fn key(name: &str) -> Result<&'static Key, Error> {
    KEYS.iter()
        .find(|k| k.name == name)
        .ok_or_else(|| Error::UnknownKey(name.to_string()))
}

/// Where a setting's effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Env(&'static str),
    /// systemd's `$CREDENTIALS_DIRECTORY/hcloud-token` (the token only).
    Credential,
    File,
    Default,
    Unset,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env(var) => write!(f, "from {var}"),
            Source::Credential => write!(f, "from $CREDENTIALS_DIRECTORY/{CREDENTIAL}"),
            Source::File => f.write_str("from config.json"),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("not set"),
        }
    }
}

/// The settings of one state directory.
#[derive(Clone)]
pub struct Config {
    path: PathBuf,
    file: BTreeMap<String, String>,
    /// What the file held when it was read (sha256, hex): how a running
    /// `hcc serve` says which version of the file it uses.
    digest: String,
}

/// Redacts secrets, like every other way of showing a setting.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for key in KEYS {
            if let Some(value) = self.file.get(key.name) {
                if key.is_secret() {
                    map.entry(&key.name, &Secret::new(value.clone()));
                } else {
                    map.entry(&key.name, value);
                }
            }
        }
        map.finish()
    }
}

impl Config {
    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let read_err = |why: String| Error::Read {
            path: path.to_path_buf(),
            why,
        };
        let io_err = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                Error::Unreadable {
                    path: path.to_path_buf(),
                    source: e,
                }
            } else {
                read_err(e.to_string())
            }
        };
        // The panel's group may rename its own file over this one (an
        // endpoint of theirs would receive the token) or plant a link: only
        // a regular file with one link, of a trusted owner, is read.
        let owners = crate::safe_fs::Owners::of_parent(path).map_err(io_err)?;
        let mut file = crate::safe_fs::open_file(
            rustix::fs::CWD,
            path,
            crate::safe_fs::Access::ReadOwned,
            &owners,
        )
        .map_err(|failure| match failure {
            crate::safe_fs::Failure::Unsafe(why) => Error::Unsafe {
                path: path.to_path_buf(),
                why,
            },
            crate::safe_fs::Failure::Io(e) => io_err(e),
        })?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io_err)?;
        let digest = digest(text.as_bytes());
        let object: Map<String, Value> = if text.trim().is_empty() {
            Map::new()
        } else {
            serde_json::from_str(&text).map_err(|e| read_err(format!("not a JSON object: {e}")))?
        };
        let mut file = BTreeMap::new();
        for (name, value) in object {
            let key = key(&name).map_err(|e| read_err(e.to_string()))?;
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Null => continue,
                other => {
                    let shown = if key.is_secret() {
                        "something else".to_string()
                    } else {
                        other.to_string()
                    };
                    return Err(read_err(format!(
                        "`{name}` must be a string or number, not {shown}"
                    )));
                }
            };
            let text = check(key, &text).map_err(|e| read_err(e.to_string()))?;
            file.insert(name, text);
        }
        Ok(Config {
            path: path.to_path_buf(),
            file,
            digest,
        })
    }

    /// No file: every setting at its default (or the environment's).
    #[cfg(test)]
    fn empty() -> Config {
        Config {
            path: PathBuf::from("/nonexistent/config.json"),
            file: BTreeMap::new(),
            digest: String::new(),
        }
    }

    /// The sha256 (hex) of the file as it was read.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The effective value and where it comes from.
    fn lookup(&self, key: &Key) -> (Option<String>, Source) {
        if let Some(var) = key.env
            && let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty())
        {
            return (Some(value), Source::Env(var));
        }
        // systemd hands the token over as a credential (LoadCredential=),
        // so a unit needs no shell that puts it into the environment.
        if key.kind == Kind::Token
            && let Some(token) = credential_token()
        {
            return (Some(token.expose().to_string()), Source::Credential);
        }
        if let Some(value) = self.file.get(key.name) {
            return (Some(value.clone()), Source::File);
        }
        match key.default {
            Some(value) => (Some(value.to_string()), Source::Default),
            None => (None, Source::Unset),
        }
    }

    /// The effective value as it may be shown: secrets redacted.
    pub fn display_value(&self, key: &Key) -> (String, Source) {
        let (value, source) = self.lookup(key);
        let shown = match value {
            None => "<not set>".to_string(),
            Some(v) if key.is_secret() => Secret::new(v).to_string(),
            Some(v) if v.is_empty() => "<empty>".to_string(),
            // An endpoint may carry `user:PASSWORD@`.
            Some(v) if matches!(key.kind, Kind::Url | Kind::BaseUrl) => {
                crate::hetzner::shown_url(&v)
            }
            Some(v) => v,
        };
        (shown, source)
    }

    /// Checks and stores a value (not yet saved). An empty value clears a
    /// key that has no default or an empty one; other keys refuse it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let key = key(name)?;
        if value.is_empty() && key.default.is_none_or(str::is_empty) {
            self.file.remove(key.name);
            return Ok(());
        }
        let value = check(key, value)?;
        self.file.insert(key.name.to_string(), value);
        Ok(())
    }

    /// Removes a key from the file, so its default applies again.
    pub fn unset(&mut self, name: &str) -> Result<(), Error> {
        let key = key(name)?;
        self.file.remove(key.name);
        Ok(())
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self) -> Result<(), Error> {
        let write_err = |source| Error::Write {
            path: self.path.clone(),
            source,
        };
        let mut object = Map::new();
        for key in KEYS {
            if let Some(value) = self.file.get(key.name) {
                let json = match key.kind {
                    Kind::Count { .. } => value
                        .parse::<u64>()
                        .map(Value::from)
                        .unwrap_or_else(|_| Value::from(value.clone())),
                    _ => Value::from(value.clone()),
                };
                object.insert(key.name.to_string(), json);
            }
        }
        let mut text = serde_json::to_string_pretty(&Value::Object(object))
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        text.push('\n');
        // A new file under a fresh name, renamed over the old one: a link
        // planted at either name is replaced, never written through.
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = self.path.file_name().map(Path::new).unwrap_or(&self.path);
        let dir = std::fs::File::open(dir).map_err(write_err)?;
        crate::safe_fs::write_atomic(&dir, name, text.as_bytes(), 0o600).map_err(write_err)
    }

    /// The settings in effect, typed: each key's effective value
    /// ([`Config::lookup`]) parsed once.
    pub fn settings(&self) -> Result<Settings, Error> {
        Settings::from_config(self)
    }
}

/// The sha256 of a file's contents, hex.
fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Validates a value for `key`, returning it as it is stored.
fn check(key: &Key, value: &str) -> Result<String, Error> {
    let invalid = |why: String| Error::Invalid { key: key.name, why };
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(invalid("control characters are not allowed".into()));
    }
    match key.kind {
        Kind::Token => {
            if value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "a token is up to 256 printable ASCII characters without spaces".into(),
                ));
            }
        }
        Kind::Path => {
            if !Path::new(value).is_absolute() {
                return Err(invalid(format!(
                    "`{}` is not an absolute path",
                    shown(value)
                )));
            }
        }
        Kind::Url | Kind::BaseUrl => {
            let empty_ok = key.kind == Kind::BaseUrl && value.is_empty();
            let scheme_ok = value.starts_with("http://") || value.starts_with("https://");
            if !empty_ok && (!scheme_ok || value.contains(char::is_whitespace)) {
                return Err(invalid(format!(
                    "`{}` is not an http:// or https:// URL",
                    shown(&crate::hetzner::shown_url(value))
                )));
            }
        }
        Kind::Name => {
            if !is_hetzner_name(value) {
                return Err(invalid(format!(
                    "`{}` is not a Hetzner name (letters, digits, `-`, `_`, `.`)",
                    shown(value)
                )));
            }
        }
        Kind::LabelKey => check_label_key(value).map_err(invalid)?,
        Kind::Prefix => {
            if !value.is_empty() {
                // A prefix must itself be the start of a valid name.
                let probe = format!("{value}x");
                check_server_name(&probe).map_err(|_| {
                    invalid(format!(
                        "`{}` cannot begin a server name (letters, digits, dashes, dots; no leading dash)",
                        shown(value)
                    ))
                })?;
            }
        }
        Kind::VerbList => {
            let mut words = Vec::new();
            for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                if crate::verb::Verb::from_word(word).is_none() {
                    return Err(invalid(format!(
                        "`{}` is not a command (known: {})",
                        shown(word),
                        crate::verb::Verb::spellings()
                    )));
                }
                words.push(word);
            }
            return Ok(words.join(","));
        }
        Kind::Origins => {
            let origin_ok = |o: &str| settings::websocket_origin(o).as_deref() == Some(o);
            let origins: Vec<&str> = value.split_whitespace().collect();
            if let Some(bad) = origins.iter().find(|o| !origin_ok(o)) {
                return Err(invalid(format!(
                    "`{}` is not a websocket origin like wss://web-console.hetzner.cloud",
                    shown(bad)
                )));
            }
            return Ok(origins.join(" "));
        }
        Kind::WebOrigins => {
            let mut origins = Vec::new();
            for word in value.split([' ', ',']).filter(|w| !w.is_empty()) {
                let Some(origin) = settings::web_origin(word) else {
                    return Err(invalid(format!(
                        "`{}` is not an origin like https://billing.example.com (scheme, host and port only)",
                        shown(word)
                    )));
                };
                origins.push(origin);
            }
            return Ok(origins.join(" "));
        }
        Kind::FrameAncestors => {
            let sources: Vec<&str> = value.split_whitespace().collect();
            let source_ok = |s: &str| {
                matches!(s, "'self'" | "'none'")
                    || (!s.is_empty()
                        && s.bytes().all(|b| {
                            b.is_ascii_alphanumeric()
                                || matches!(b, b'.' | b'-' | b':' | b'/' | b'*')
                        }))
            };
            let none_alone = !sources.contains(&"'none'") || sources.len() == 1;
            if sources.is_empty() || !none_alone || !sources.iter().all(|s| source_ok(s)) {
                return Err(invalid(format!(
                    "`{}` is not a frame-ancestors list: 'none', 'self' or origins like https://panel.example.com, separated by spaces",
                    shown(value)
                )));
            }
            return Ok(sources.join(" "));
        }
        Kind::OneOf(words) => {
            if !words.contains(&value) {
                return Err(invalid(format!(
                    "`{}` is not one of {}",
                    shown(value),
                    words.join(", ")
                )));
            }
        }
        Kind::Addresses => {
            if value == "none" {
                return Ok(value.to_string());
            }
            let words: Vec<&str> = value.split([' ', ',']).filter(|w| !w.is_empty()).collect();
            if let Some(bad) = words
                .iter()
                .find(|w| w.parse::<std::net::IpAddr>().is_err())
            {
                return Err(invalid(format!(
                    "`{}` is not an IP address like 127.0.0.1 or ::1",
                    shown(bad)
                )));
            }
            return Ok(words.join(" "));
        }
        Kind::Count { min, max } => {
            let n: u64 = value
                .parse()
                .map_err(|_| invalid(format!("`{}` is not a whole number", shown(value))))?;
            if !(min..=max).contains(&n) {
                return Err(invalid(format!("{n} is outside {min}..={max}")));
            }
            return Ok(n.to_string());
        }
    }
    Ok(value.to_string())
}

/// Hetzner's label key rules: an optional DNS-subdomain prefix and `/`,
/// then a name of at most 63 characters that begins and ends with an
/// alphanumeric and has `-`, `_`, `.` or alphanumerics between.
fn check_label_key(value: &str) -> Result<(), String> {
    let (prefix, name) = match value.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    let edge_ok = |s: &str| {
        s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    let name_ok = name.len() <= 63
        && edge_ok(name)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && edge_ok(label)
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a Hetzner label key (e.g. `managed` or `example.com/managed`)",
            shown(value)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::empty()
    }

    #[test]
    fn secrets_never_display() {
        let s = Secret::new("abc123".into());
        assert!(!format!("{s} {s:?}").contains("abc123"));
        let mut c = cfg();
        c.set("token", "abc123").unwrap();
        assert!(!format!("{c:?}").contains("abc123"));
    }

    #[test]
    fn values_are_checked_per_key() {
        let mut c = cfg();
        assert!(c.set("location", "nbg1").is_ok());
        assert!(matches!(
            c.set("location", "n b g"),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(c.set("colour", "red"), Err(Error::UnknownKey(_))));
        assert!(c.set("endpoint", "ftp://x").is_err());
        assert!(c.set("endpoint", "http://127.0.0.1:8080/v1").is_ok());
        assert!(c.set("console_url", "").is_ok());
        assert!(c.set("ring_size", "5").is_err());
        assert!(c.set("ring_size", "many").is_err());
        assert!(c.set("ring_size", "50").is_ok());
        assert!(c.set("label", "example.com/managed").is_ok());
        assert!(c.set("label", "-managed").is_err());
        assert!(c.set("label", "bad key").is_err());
        assert!(c.set("prefix", "m-").is_ok());
        assert!(c.set("prefix", "-m").is_err());
        assert!(c.set("token_file", "relative/path").is_err());
        assert!(c.set("token", "has space").is_err());
        assert_eq!(c.settings().unwrap().ring_size, 50);
    }

    #[test]
    fn empty_resets_to_default() {
        let mut c = cfg();
        c.set("location", "hel1").unwrap();
        c.set("location", "").unwrap_err();
        c.unset("location").unwrap();
        let (value, source) = c.lookup(key("location").unwrap());
        assert_eq!((value.as_deref(), source), (Some("fsn1"), Source::Default));
    }

    #[test]
    fn metrics_access_is_one_of_three_words() {
        let mut c = cfg();
        assert_eq!(
            c.lookup(key("metrics").unwrap()).0.as_deref(),
            Some("loopback")
        );
        for word in ["loopback", "admin", "off"] {
            assert!(c.set("metrics", word).is_ok(), "{word}");
        }
        assert!(c.set("metrics", "public").is_err());
        assert!(c.set("metrics", "Admin").is_err());
    }
}
