//! The client-area verbs: what a customer does to their own server
//! besides power and the console (reinstall, root password, rescue,
//! resize, reverse DNS, ISO, snapshots, backups). Named as the official
//! hcloud CLI names them; each is one Hetzner server action, except
//! `change-type`, which also shuts the server down and starts it again.

use std::net::IpAddr;

use super::{check_server_name, is_hetzner_name, shown};

/// The client-area verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageVerb {
    Rebuild,
    ResetPassword,
    EnableRescue,
    DisableRescue,
    ChangeType,
    SetRdns,
    AttachIso,
    DetachIso,
    CreateImage,
    EnableBackup,
    DisableBackup,
}

/// What a key must be allowed to do a verb, as the API and the console
/// page check it: `act` keys press buttons that lose nothing; `admin` keys
/// also rebuild (the disk is wiped), resize (the price changes), and make
/// snapshots and backups (they cost money).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearance {
    Act,
    Admin,
}

/// A client-area command's arguments, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manage {
    /// `rebuild NAME IMAGE`: a system image or a snapshot, by name or id.
    Rebuild {
        image: String,
    },
    ResetPassword,
    /// `enable-rescue NAME [TYPE]`.
    EnableRescue {
        kind: String,
    },
    DisableRescue,
    /// `change-type NAME TYPE [keep-disk]`.
    ChangeType {
        server_type: String,
        keep_disk: bool,
    },
    /// `set-rdns NAME IP [HOSTNAME]`: no hostname, Hetzner's default.
    SetRdns {
        ip: IpAddr,
        hostname: Option<String>,
    },
    AttachIso {
        iso: String,
    },
    DetachIso,
    /// `create-image NAME [DESCRIPTION]`: a snapshot.
    CreateImage {
        description: Option<String>,
    },
    EnableBackup,
    DisableBackup,
}

/// The rescue system `enable-rescue` boots when none is named.
pub const DEFAULT_RESCUE: &str = "linux64";
/// The word after TYPE that keeps the disk as it is on `change-type`.
pub const KEEP_DISK: &str = "keep-disk";
/// The longest snapshot description, in characters.
pub const MAX_DESCRIPTION: usize = 200;

impl ManageVerb {
    pub fn clearance(self) -> Clearance {
        match self {
            ManageVerb::Rebuild
            | ManageVerb::ChangeType
            | ManageVerb::CreateImage
            | ManageVerb::EnableBackup
            | ManageVerb::DisableBackup => Clearance::Admin,
            _ => Clearance::Act,
        }
    }

    /// Whether it hands back a root password (once).
    pub fn gives_password(self) -> bool {
        matches!(
            self,
            ManageVerb::Rebuild | ManageVerb::ResetPassword | ManageVerb::EnableRescue
        )
    }

    /// The words after the server name, for help and errors.
    pub fn usage(self) -> &'static str {
        match self {
            ManageVerb::Rebuild => "IMAGE",
            ManageVerb::EnableRescue => "[TYPE]",
            ManageVerb::ChangeType => "TYPE [keep-disk]",
            ManageVerb::SetRdns => "IP [HOSTNAME]",
            ManageVerb::AttachIso => "ISO",
            ManageVerb::CreateImage => "[DESCRIPTION]",
            _ => "",
        }
    }

    /// Checks the words after the server name (`cmd` as written, for
    /// messages).
    pub fn parse(self, cmd: &str, words: &[&str]) -> Result<Manage, String> {
        let usage = || {
            let usage = self.usage();
            if usage.is_empty() {
                format!("`{cmd}` takes one server name")
            } else {
                format!("`{cmd}` takes a server name and {usage}")
            }
        };
        let arity = match self {
            ManageVerb::Rebuild | ManageVerb::AttachIso => 1..=1,
            ManageVerb::EnableRescue => 0..=1,
            ManageVerb::ChangeType | ManageVerb::SetRdns => 1..=2,
            ManageVerb::CreateImage => 0..=usize::MAX,
            _ => 0..=0,
        };
        if !arity.contains(&words.len()) {
            return Err(format!("{}, got {} words after it", usage(), words.len()));
        }
        let catalog = |what: &str, word: &str| -> Result<String, String> {
            if is_hetzner_name(word) {
                Ok(word.to_string())
            } else {
                Err(format!(
                    "invalid {what} `{}`: expected a Hetzner name or id (letters, digits, `-`, `_`, `.`)",
                    shown(word)
                ))
            }
        };
        Ok(match self {
            ManageVerb::Rebuild => Manage::Rebuild {
                image: catalog("image", words[0])?,
            },
            ManageVerb::ResetPassword => Manage::ResetPassword,
            ManageVerb::EnableRescue => Manage::EnableRescue {
                kind: match words.first() {
                    Some(kind) => catalog("rescue type", kind)?,
                    None => DEFAULT_RESCUE.to_string(),
                },
            },
            ManageVerb::DisableRescue => Manage::DisableRescue,
            ManageVerb::ChangeType => Manage::ChangeType {
                server_type: catalog("server type", words[0])?,
                keep_disk: match words.get(1) {
                    None => false,
                    Some(&KEEP_DISK) => true,
                    Some(other) => {
                        return Err(format!(
                            "`{cmd}` takes `{KEEP_DISK}` after the type, not `{}`",
                            shown(other)
                        ));
                    }
                },
            },
            ManageVerb::SetRdns => Manage::SetRdns {
                ip: words[0]
                    .parse()
                    .map_err(|_| format!("`{}` is not an IP address", shown(words[0])))?,
                hostname: match words.get(1) {
                    None => None,
                    Some(host) => {
                        check_server_name(host).map_err(|why| {
                            why.replacen("invalid server name", "invalid hostname", 1)
                        })?;
                        Some(host.to_string())
                    }
                },
            },
            ManageVerb::AttachIso => Manage::AttachIso {
                iso: catalog("ISO", words[0])?,
            },
            ManageVerb::DetachIso => Manage::DetachIso,
            ManageVerb::CreateImage => Manage::CreateImage {
                description: check_description(&words.join(" "))?,
            },
            ManageVerb::EnableBackup => Manage::EnableBackup,
            ManageVerb::DisableBackup => Manage::DisableBackup,
        })
    }
}

impl Manage {
    pub fn verb(&self) -> ManageVerb {
        match self {
            Manage::Rebuild { .. } => ManageVerb::Rebuild,
            Manage::ResetPassword => ManageVerb::ResetPassword,
            Manage::EnableRescue { .. } => ManageVerb::EnableRescue,
            Manage::DisableRescue => ManageVerb::DisableRescue,
            Manage::ChangeType { .. } => ManageVerb::ChangeType,
            Manage::SetRdns { .. } => ManageVerb::SetRdns,
            Manage::AttachIso { .. } => ManageVerb::AttachIso,
            Manage::DetachIso => ManageVerb::DetachIso,
            Manage::CreateImage { .. } => ManageVerb::CreateImage,
            Manage::EnableBackup => ManageVerb::EnableBackup,
            Manage::DisableBackup => ManageVerb::DisableBackup,
        }
    }

    /// The words after the server name, as the queue keeps them.
    pub fn words(&self) -> Vec<String> {
        match self {
            Manage::Rebuild { image } => vec![image.clone()],
            Manage::EnableRescue { kind } => vec![kind.clone()],
            Manage::ChangeType {
                server_type,
                keep_disk,
            } => {
                let mut words = vec![server_type.clone()];
                if *keep_disk {
                    words.push(KEEP_DISK.into());
                }
                words
            }
            Manage::SetRdns { ip, hostname } => {
                let mut words = vec![ip.to_string()];
                words.extend(hostname.clone());
                words
            }
            Manage::AttachIso { iso } => vec![iso.clone()],
            Manage::CreateImage { description } => description.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// A snapshot's description: printable, at most [`MAX_DESCRIPTION`]
/// characters; empty is none.
fn check_description(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(format!(
            "description longer than {MAX_DESCRIPTION} characters"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("description contains control characters".into());
    }
    Ok(Some(text.to_string()))
}
