//! The settings in effect, typed: what every command past `run()` reads.
//!
//! Built from one [`Config`] (config.json, the environment, systemd's
//! credential, the defaults of [`KEYS`]): each key is looked up once,
//! through the table, and parsed into its field here. Nothing else looks a
//! setting up by name, and no default is written twice. Values were
//! checked when they were set or loaded; one that still does not parse
//! (an environment variable) is an [`Error::Invalid`], never a panic.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Config, Error, KEYS, Kind, Secret, key};
use crate::verb::shown;

/// Who may read `/metrics` of `hcc serve` (the `metrics` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Clients on this machine without a proxy in between, and admin keys.
    Loopback,
    /// Admin keys only.
    Admin,
    /// Not served: 404.
    Off,
}

/// How console pages connect (the `console_mode` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    /// Through `hcc serve`, which holds the console's URL and password.
    Broker,
    /// Straight to Hetzner, with the URL and password in the page.
    Direct,
}

/// How `hcc worker` and `hcc serve` write their log lines (the
/// `log_format` setting; log_format.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `hcc worker: MESSAGE`, as always.
    Text,
    /// One JSON object per line.
    Json,
}

/// Who checkpoints the WAL of `hcc.db` (the `wal_checkpoints` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalCheckpoints {
    /// hcc: the worker on a thread of its own, other connections as
    /// SQLite does by default.
    Hcc,
    /// A replication tool (Litestream) that must see every WAL frame
    /// before it is copied back: the connections that write steadily
    /// (every one a `Cloud` opens: the worker's, its syncs', hcc serve's
    /// Hetzner side) never checkpoint.
    External,
}

/// The settings of one state directory, resolved and typed. Field names
/// are the keys' names; empty text settings are empty strings.
#[derive(Clone)]
pub struct Settings {
    /// `HCLOUD_TOKEN`, systemd's credential or the `token` setting.
    pub token: Option<Secret>,
    /// Read at each use, when `token` is unset ([`Settings::token`]).
    pub token_file: Option<PathBuf>,
    pub endpoint: String,
    pub location: String,
    pub server_type: String,
    pub image: String,
    /// The label key marking the servers hcc may touch.
    pub label: String,
    /// What the names of new servers must begin with; may be empty.
    pub prefix: String,
    /// Printed before console URLs; may be empty.
    pub console_url: String,
    pub ring_size: u64,
    /// The verb spellings the queue runs.
    pub queue_verbs: Vec<String>,
    pub full_sync_every: u64,
    pub max_attempts: i64,
    /// Where customers reach `hcc serve`; `None`: the listen address.
    pub public_url: Option<String>,
    pub link_ttl: Duration,
    pub session_ttl: Duration,
    /// A CSP `frame-ancestors` source list.
    pub frame_ancestors: String,
    /// Websocket origins consoles may be at, as [`console_host`] writes
    /// them; empty: any. See [`Settings::console_host_allowed`].
    pub console_hosts: Vec<String>,
    /// Web origins besides hcc's own that may post to console pages and
    /// open their websockets, as [`web_origin`] writes them.
    pub allowed_origins: Vec<String>,
    pub metrics: MetricsAccess,
    pub trusted_proxies: Vec<IpAddr>,
    pub console_mode: ConsoleMode,
    pub console_idle_timeout: Duration,
    /// Percent of the Hetzner limit kept for queued commands.
    pub command_reserve: u64,
    pub console_refresh_every: Duration,
    pub console_requests_per_server: u64,
    /// 0: derived from the open-file limit.
    pub max_console_sessions: u64,
    pub max_console_sessions_per_server: u64,
    /// 0: half of the total.
    pub max_console_sessions_per_key: u64,
    /// How long `change-type` waits for an ACPI shutdown before it powers
    /// the server off hard.
    pub shutdown_timeout: Duration,
    /// Pages of servers a full sync asks for at once (1 to 16).
    pub sync_parallel: usize,
    /// Read when `hcc worker` or `hcc serve` starts.
    pub log_format: LogFormat,
    pub wal_checkpoints: WalCheckpoints,
    /// Each key's effective value, in the order of [`KEYS`]: what
    /// [`Settings::changed_from`] compares.
    effective: Vec<Option<String>>,
    /// The sha256 (hex) of config.json as it was read.
    digest: String,
}

/// Redacts the token, like every other way of showing a setting.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in KEYS.iter().zip(&self.effective) {
            match value {
                Some(v) if key.is_secret() => map.entry(&key.name, &Secret::new(v.clone())),
                Some(v) => map.entry(&key.name, v),
                None => map.entry(&key.name, &None::<String>),
            };
        }
        map.finish()
    }
}

impl Settings {
    /// Reads `config.json` at `path` and resolves it.
    pub fn load(path: &Path) -> Result<Settings, Error> {
        Config::load(path)?.settings()
    }

    pub(super) fn from_config(config: &Config) -> Result<Settings, Error> {
        let effective: Vec<Option<String>> = KEYS.iter().map(|k| config.lookup(k).0).collect();
        let values = Values {
            effective: &effective,
        };
        Ok(Settings {
            token: values.optional("token").map(Secret::new),
            token_file: values.optional("token_file").map(PathBuf::from),
            endpoint: values.text("endpoint"),
            location: values.text("location"),
            server_type: values.text("server_type"),
            image: values.text("image"),
            // An empty label would make every server or none hcc's: the
            // table's default stands in for it.
            label: values.or_default("label"),
            prefix: values.text("prefix"),
            console_url: values.text("console_url"),
            ring_size: values.count("ring_size")?,
            queue_verbs: values
                .text("queue_verbs")
                .split(',')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
            full_sync_every: values.count("full_sync_every")?,
            max_attempts: values.count("max_attempts")? as i64,
            public_url: values.optional("public_url"),
            link_ttl: Duration::from_secs(values.count("link_ttl")?),
            session_ttl: Duration::from_secs(values.count("session_ttl")?),
            frame_ancestors: values.text("frame_ancestors"),
            console_hosts: values
                .text("console_hosts")
                .split_whitespace()
                .map(console_host)
                .collect(),
            allowed_origins: values
                .text("allowed_origins")
                .split(' ')
                .filter_map(web_origin)
                .collect(),
            metrics: match values.text("metrics").as_str() {
                "admin" => MetricsAccess::Admin,
                "off" => MetricsAccess::Off,
                _ => MetricsAccess::Loopback,
            },
            // Checked when set; `none`, or a word that is no address,
            // trusts nobody.
            trusted_proxies: values
                .text("trusted_proxies")
                .split(' ')
                .filter_map(|w| w.parse().ok())
                .collect(),
            console_mode: match values.text("console_mode").as_str() {
                "direct" => ConsoleMode::Direct,
                _ => ConsoleMode::Broker,
            },
            console_idle_timeout: Duration::from_secs(values.count("console_idle_timeout")?),
            command_reserve: values.count("command_reserve")?,
            console_refresh_every: Duration::from_secs(values.count("console_refresh_every")?),
            console_requests_per_server: values.count("console_requests_per_server")?,
            max_console_sessions: values.count("max_console_sessions")?,
            max_console_sessions_per_server: values.count("max_console_sessions_per_server")?,
            max_console_sessions_per_key: values.count("max_console_sessions_per_key")?,
            shutdown_timeout: Duration::from_secs(values.count("shutdown_timeout")?),
            sync_parallel: values.count("sync_parallel")? as usize,
            log_format: match values.text("log_format").as_str() {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
            wal_checkpoints: match values.text("wal_checkpoints").as_str() {
                "external" => WalCheckpoints::External,
                _ => WalCheckpoints::Hcc,
            },
            digest: config.digest().to_string(),
            effective,
        })
    }

    /// The API token: `token` (environment, credential or file), else the
    /// file named by `token_file`, read now.
    pub fn token(&self) -> Result<Secret, Error> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        if let Some(path) = &self.token_file {
            // A token is some 64 bytes; a FIFO or /dev/zero planted at the
            // name must not hang hcc or fill its memory.
            let text = crate::safe_fs::read_small(path, 4096).map_err(|e| {
                Error::NoToken(format!(
                    "cannot read the token file `{}`: {e}",
                    path.display()
                ))
            })?;
            let token = text.trim();
            if !token.is_empty() {
                return Ok(Secret::new(token.to_string()));
            }
        }
        Err(Error::NoToken(
            "no API token: set HCLOUD_TOKEN, run `hcc config set token -`, or run `hcc setup`"
                .into(),
        ))
    }

    /// The share of the Hetzner bucket consoles and syncs leave for
    /// queued commands.
    pub fn command_share(&self) -> f64 {
        self.command_reserve as f64 / 100.0
    }

    /// Whether the queue may run `word` (a verb spelling).
    pub fn queue_allows(&self, word: &str) -> bool {
        self.queue_verbs.iter().any(|w| w == word)
    }

    /// The sha256 (hex) of config.json as it was read: how a running
    /// `hcc serve` says which version of the file it uses.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The names of the settings whose effective values differ.
    pub fn changed_from(&self, old: &Settings) -> Vec<&'static str> {
        KEYS.iter()
            .zip(self.effective.iter().zip(&old.effective))
            .filter(|(_, (new, old))| new != old)
            .map(|(key, _)| key.name)
            .collect()
    }
}

/// Settings read when `hcc serve` starts and kept until it restarts.
pub const RESTART_KEYS: &[&str] = &["trusted_proxies", "log_format"];

/// Settings the worker reads when it starts (`hcc worker`, or the one
/// `hcc serve --worker` runs in its process).
pub const WORKER_KEYS: &[&str] = &[
    "token",
    "token_file",
    "endpoint",
    "location",
    "server_type",
    "image",
    "label",
    "prefix",
    "ring_size",
    "queue_verbs",
    "full_sync_every",
    "max_attempts",
    "command_reserve",
    "sync_parallel",
    "log_format",
    "wal_checkpoints",
];

/// The effective values being parsed, looked up through [`KEYS`].
struct Values<'a> {
    effective: &'a [Option<String>],
}

impl Values<'_> {
    /// The value of `name`; `None` when unset or empty.
    fn optional(&self, name: &'static str) -> Option<String> {
        let index = KEYS.iter().position(|k| k.name == name)?;
        self.effective[index].clone().filter(|v| !v.is_empty())
    }

    fn text(&self, name: &'static str) -> String {
        self.optional(name).unwrap_or_default()
    }

    /// The value of `name`, or the table's default when unset or empty.
    fn or_default(&self, name: &'static str) -> String {
        self.optional(name)
            .or_else(|| key(name).ok()?.default.map(str::to_string))
            .unwrap_or_default()
    }

    /// A `Count` setting: checked when it was set or loaded; a value the
    /// table's own default cannot make is refused, not guessed.
    fn count(&self, name: &'static str) -> Result<u64, Error> {
        let key = key(name)?;
        let value = self.text(name);
        match (key.kind, value.parse::<u64>()) {
            (Kind::Count { min, max }, Ok(n)) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Error::Invalid {
                key: key.name,
                why: format!("`{}` is not a whole number in range", shown(&value)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_of_the_table_make_settings() {
        let settings = Config::empty().settings().unwrap();
        assert_eq!(settings.location, "fsn1");
        assert_eq!(settings.label, "managed");
        assert_eq!(settings.ring_size, 1000);
        assert_eq!(settings.full_sync_every, 36);
        assert_eq!(settings.max_attempts, 5);
        assert_eq!(settings.link_ttl, Duration::from_secs(300));
        assert_eq!(settings.console_idle_timeout, Duration::from_secs(900));
        assert_eq!(settings.metrics, MetricsAccess::Loopback);
        assert_eq!(settings.console_mode, ConsoleMode::Broker);
        assert_eq!(settings.public_url, None);
        assert_eq!(settings.trusted_proxies.len(), 2);
        assert!(settings.queue_allows("start") && !settings.queue_allows("settag"));
    }

    #[test]
    fn set_values_are_typed_and_changes_are_named() {
        let before = Config::empty().settings().unwrap();
        let mut config = Config::empty();
        config.set("max_attempts", "3").unwrap();
        config.set("metrics", "off").unwrap();
        config.set("console_mode", "direct").unwrap();
        config.set("trusted_proxies", "none").unwrap();
        config.set("token", "abc123").unwrap();
        let after = config.settings().unwrap();
        assert_eq!(after.max_attempts, 3);
        assert_eq!(after.metrics, MetricsAccess::Off);
        assert_eq!(after.console_mode, ConsoleMode::Direct);
        assert!(after.trusted_proxies.is_empty());
        assert!(!format!("{after:?}").contains("abc123"));
        let changed = after.changed_from(&before);
        assert!(changed.contains(&"max_attempts") && changed.contains(&"metrics"));
        assert!(!changed.contains(&"location"));
    }
}

impl Settings {
    /// Whether hcc may connect to (or send a browser to) the console at
    /// `url`: `console_hosts` names the websocket origins consoles may be
    /// at; empty, any.
    pub fn console_host_allowed(&self, url: &str) -> bool {
        host_allowed(&self.console_hosts, url)
    }
}

/// [`Settings::console_host_allowed`] of `hosts`, as [`console_host`]
/// writes them.
fn host_allowed(hosts: &[String], url: &str) -> bool {
    hosts.is_empty()
        || websocket_origin(url)
            .map(|origin| console_host(&origin))
            .is_some_and(|origin| hosts.contains(&origin))
}

/// A websocket origin (one of `console_hosts`) as compared: lower case,
/// no trailing `/`, the scheme's default port left out.
pub fn console_host(origin: &str) -> String {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    match origin.strip_suffix(":443") {
        Some(bare) if bare.starts_with("wss://") => bare.to_string(),
        _ => match origin.strip_suffix(":80") {
            Some(bare) if bare.starts_with("ws://") => bare.to_string(),
            _ => origin,
        },
    }
}

/// The scheme and authority of a URL, without the user: what messages
/// name of a console URL (never its path or query, which carry tokens).
pub fn url_origin(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    Some((scheme, authority.rsplit('@').next().unwrap_or("")))
}

/// The websocket origin of a URL, `ws[s]://host[:port]` as written: the
/// console's origin in the page's CSP, the form the setting
/// `console_hosts` takes. `None` for another scheme or a host with
/// characters no origin has (nothing that could be stated unsafely).
pub fn websocket_origin(url: &str) -> Option<String> {
    let (scheme, authority) = url_origin(url)?;
    let safe = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    (matches!(scheme, "ws" | "wss") && safe).then(|| format!("{scheme}://{authority}"))
}

/// A web origin as a browser sends it in `Origin`, from an origin or a
/// URL without path (`https://Example.com:443/`): scheme and host in lower
/// case, the scheme's default port left out. `None` for anything else
/// (another scheme, a path, a user, a query, `null`).
pub fn web_origin(text: &str) -> Option<String> {
    let text = text.trim();
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
    let host_ok = |host: &str| {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    };
    if !host_ok(&authority) {
        return None;
    }
    // `host:port`, `[v6]:port`, `host`, `[v6]`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port))
            if !port.contains(']') && (!host.contains(':') || host.ends_with(']')) =>
        {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (host, Some(port.trim_start_matches('0')))
        }
        _ => (authority.as_str(), None),
    };
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return None;
    }
    Some(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod origin_tests {
    use super::{console_host, host_allowed, url_origin, web_origin, websocket_origin};

    #[test]
    fn a_websocket_urls_origin_is_stated_only_when_safe() {
        assert_eq!(
            websocket_origin("wss://web-console.hetzner.cloud/?server_id=1&token=x").as_deref(),
            Some("wss://web-console.hetzner.cloud")
        );
        assert_eq!(
            websocket_origin("ws://127.0.0.1:5901").as_deref(),
            Some("ws://127.0.0.1:5901")
        );
        assert_eq!(websocket_origin("wss://a b;script-src *"), None);
        assert_eq!(websocket_origin("javascript:alert(1)"), None);
        assert_eq!(websocket_origin("https://x"), None);
        assert_eq!(url_origin("ws://user:pw@h:1/x"), Some(("ws", "h:1")));
    }

    #[test]
    fn console_hosts_bound_where_a_console_may_be() {
        let hosts = |text: &str| {
            text.split_whitespace()
                .map(console_host)
                .collect::<Vec<_>>()
        };
        let url = "wss://web-console.hetzner.cloud/?server_id=1&token=x";
        assert!(host_allowed(&hosts(""), url));
        assert!(host_allowed(&hosts("wss://web-console.hetzner.cloud"), url));
        assert!(host_allowed(
            &hosts("ws://127.0.0.1:1 wss://WEB-console.hetzner.cloud:443"),
            url
        ));
        assert!(!host_allowed(&hosts("wss://other.example"), url));
        assert!(!host_allowed(
            &hosts("wss://web-console.hetzner.cloud"),
            "ws://web-console.hetzner.cloud/"
        ));
        assert!(!host_allowed(&hosts("wss://x"), "javascript:alert(1)"));
    }

    #[test]
    fn origins_are_compared_as_browsers_send_them() {
        let o = |t| web_origin(t);
        assert_eq!(
            o("https://Billing.Example.com"),
            Some("https://billing.example.com".into())
        );
        assert_eq!(
            o("https://billing.example.com:443/"),
            Some("https://billing.example.com".into())
        );
        assert_eq!(o("http://127.0.0.1:80"), Some("http://127.0.0.1".into()));
        assert_eq!(
            o("http://127.0.0.1:8479"),
            Some("http://127.0.0.1:8479".into())
        );
        assert_eq!(o("https://[::1]:8443"), Some("https://[::1]:8443".into()));
        assert_eq!(o("https://[::1]"), Some("https://[::1]".into()));
        for bad in [
            "null",
            "",
            "ftp://x",
            "https://",
            "https://x/path",
            "https://u@x",
            "https://x:",
            "https://x:8a",
            "https://::1",
            "https://x?q",
            "x.example",
        ] {
            assert_eq!(o(bad), None, "{bad}");
        }
    }
}
