//! `hcc sim`'s options: checked values, converted here from the flags
//! cli.rs parses; a bad flag is one line.

use std::time::Duration;

use super::bucket::parse_limit;
use super::faults::Faults;
use crate::cli::SimArgs;

/// More servers than this would only exhaust memory.
const MAX_SERVERS: u32 = 1_000_000;

#[derive(Debug)]
pub struct Options {
    pub listen: String,
    pub token: Option<String>,
    pub servers: u32,
    pub rate_limit: u32,
    pub action_ms: u64,
    pub faults: Faults,
    pub latency: Duration,
    pub time_scale: f64,
    pub seed: Option<u64>,
    pub stop_on_eof: bool,
    pub console_upstream: Option<Upstream>,
    /// False with `--no-action-feed`.
    pub action_feed: bool,
}

/// A real console that `request_console` hands out instead of the
/// simulator's own: its websocket URL, exactly as given, and its VNC
/// password (a fresh random one per console when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub url: String,
    pub password: Option<String>,
}

/// Longer URLs or passwords are a mistake, not a console.
const MAX_UPSTREAM_LEN: usize = 2048;

impl TryFrom<SimArgs> for Options {
    type Error = String;

    /// Parses the flags that are text; `sim::run` checks the values.
    fn try_from(args: SimArgs) -> Result<Self, String> {
        Ok(Options {
            listen: args.listen,
            token: args.token,
            servers: args.servers,
            rate_limit: parse_limit(&args.rate_limit)?,
            action_ms: args.action_ms,
            faults: args
                .fail
                .as_deref()
                .map(Faults::parse)
                .transpose()?
                .unwrap_or_default(),
            latency: Duration::from_millis(args.latency),
            time_scale: args.time_scale,
            seed: args.seed,
            stop_on_eof: args.stop_on_eof,
            console_upstream: Upstream::from_flags(
                args.console_upstream.as_deref(),
                args.console_password.as_deref(),
            )?,
            action_feed: !args.no_action_feed,
        })
    }
}

impl Options {
    /// Refuses values the flags' types allow but the simulator does not.
    pub fn checked(self) -> Result<Options, String> {
        if let Some(token) = &self.token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err("invalid --token: want printable characters without spaces".into());
        }
        if self.servers > MAX_SERVERS {
            return Err(format!(
                "invalid --servers {}: at most {MAX_SERVERS}",
                self.servers
            ));
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(format!(
                "invalid --time-scale {}: want a positive factor",
                self.time_scale
            ));
        }
        if self.action_ms > 3_600_000 {
            return Err("invalid --action-ms: at most 3600000 (an hour)".into());
        }
        if self.latency > Duration::from_secs(60) {
            return Err("invalid --latency: at most 60000 ms".into());
        }
        Ok(self)
    }
}

impl Upstream {
    /// `--console-upstream` and `--console-password`, checked together.
    pub fn from_flags(
        url: Option<&str>,
        password: Option<&str>,
    ) -> Result<Option<Upstream>, String> {
        upstream(url, password)
    }
}

/// Checks `--console-upstream` and `--console-password` together.
fn upstream(url: Option<&str>, password: Option<&str>) -> Result<Option<Upstream>, String> {
    let Some(url) = url else {
        return match password {
            Some(_) => Err("invalid --console-password: it needs --console-upstream".into()),
            None => Ok(None),
        };
    };
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"));
    let host = rest
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    if rest.is_none()
        || host.is_empty()
        || url.len() > MAX_UPSTREAM_LEN
        || !url.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(
            "invalid --console-upstream: want a websocket URL such as ws://127.0.0.1:6080 \
             (ws:// or wss://, a host, no spaces)"
                .into(),
        );
    }
    if let Some(password) = password
        && (password.is_empty()
            || password.len() > MAX_UPSTREAM_LEN
            || !password.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err("invalid --console-password: want printable characters without spaces".into());
    }
    Ok(Some(Upstream {
        url: url.to_string(),
        password: password.map(str::to_string),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_args(args: &[&str]) -> SimArgs {
        use clap::Parser;
        let cli =
            crate::cli::Cli::try_parse_from(["hcc", "sim"].into_iter().chain(args.iter().copied()))
                .expect("valid arguments");
        let crate::cli::Command::Sim(args) = cli.command else {
            panic!("not sim");
        };
        args
    }

    #[test]
    fn sim_flags_become_sim_options_or_one_error() {
        let options = Options::try_from(sim_args(&["--latency", "20", "--no-action-feed"]))
            .expect("valid flags");
        assert_eq!(options.latency, Duration::from_millis(20));
        assert!(!options.action_feed);
        let err = Options::try_from(sim_args(&["--rate-limit", "0/h"])).unwrap_err();
        assert!(err.starts_with("invalid --rate-limit"), "{err}");
    }

    fn up(url: &str, password: Option<&str>) -> Upstream {
        Upstream {
            url: url.into(),
            password: password.map(Into::into),
        }
    }

    #[test]
    fn an_upstream_is_optional_and_kept_exactly_as_given() {
        assert_eq!(upstream(None, None), Ok(None));
        assert_eq!(
            upstream(Some("ws://127.0.0.1:6080"), Some("secret12")),
            Ok(Some(up("ws://127.0.0.1:6080", Some("secret12"))))
        );
        assert_eq!(
            upstream(Some("wss://console.example/ws?x=1"), None),
            Ok(Some(up("wss://console.example/ws?x=1", None)))
        );
    }

    #[test]
    fn a_bad_upstream_is_one_clear_error() {
        for url in [
            "",
            "http://127.0.0.1:6080",
            "127.0.0.1:6080",
            "ws://",
            "wss:///path",
            "ws://host /x",
            "ws://host\n",
            "WS://host",
        ] {
            let err = upstream(Some(url), None).unwrap_err();
            assert!(
                err.starts_with("invalid --console-upstream: "),
                "{url:?}: {err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
        let long = format!("ws://h/{}", "a".repeat(MAX_UPSTREAM_LEN));
        assert!(upstream(Some(&long), None).is_err());
    }

    #[test]
    fn a_password_needs_an_upstream_and_printable_characters() {
        let err = upstream(None, Some("secret12")).unwrap_err();
        assert!(err.contains("needs --console-upstream"), "{err}");
        for password in ["", "two words", "tab\there", "bell\u{7}", "pässword"] {
            let err = upstream(Some("ws://127.0.0.1:1"), Some(password)).unwrap_err();
            assert!(
                err.starts_with("invalid --console-password: "),
                "{password:?}: {err}"
            );
        }
    }
}
