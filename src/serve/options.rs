//! `hcc serve`'s flags, checked.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::shared::log;
use crate::assets;
use crate::error::Error;
use crate::verb::shown;

/// How `hcc serve` runs: its flags, checked (`serve_options` in lib.rs converts them).
#[derive(Debug, Clone)]
pub struct Options {
    /// The address to listen on, as given.
    pub listen: String,
    /// Run the worker in this process, with this refresh cycle.
    pub worker: Option<Duration>,
    /// Overrides the `public_url` setting.
    pub public_url: Option<String>,
}

impl Options {
    /// The address to listen on, and whether any address `--listen` names
    /// is reachable from beyond this machine.
    pub fn address(&self) -> Result<(SocketAddr, bool), Error> {
        let addrs: Vec<SocketAddr> = self
            .listen
            .to_socket_addrs()
            .map_err(|e| Error::Input(format!("invalid --listen `{}`: {e}", shown(&self.listen))))?
            .collect();
        let Some(addr) = addrs.first().copied() else {
            return Err(Error::Input(format!(
                "--listen `{}` names no address",
                shown(&self.listen)
            )));
        };
        Ok((addr, addrs.iter().any(|a| !a.ip().is_loopback())))
    }

    /// `--public-url` is an http:// or https:// URL.
    pub fn check_public_url(&self) -> Result<(), Error> {
        match &self.public_url {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Err(Error::Input(format!(
                    "invalid --public-url `{}`: want an http:// or https:// URL",
                    shown(url)
                )))
            }
            _ => Ok(()),
        }
    }
}

/// What `hcc serve` warns of as it starts: an address other machines
/// reach (plain HTTP), console links naming the wildcard address, the
/// console's files missing from this build.
pub fn warn(exposed: bool, bound: SocketAddr, public_url: &str) {
    if exposed {
        log(
            "warning: this address is reachable from other machines and hcc speaks plain HTTP: put a TLS proxy in front (scripts/nginx/hcc.conf)",
        );
        if bound.ip().is_unspecified() && public_url.starts_with(&format!("http://{bound}")) {
            log(
                "warning: console links name the wildcard address; set --public-url (or `hcc config set public_url`) to the address customers reach",
            );
        }
    }
    if !assets::novnc_embedded() {
        log(&format!(
            "warning: {}; console pages answer 503 until then",
            assets::NOVNC_MISSING
        ));
    }
}
