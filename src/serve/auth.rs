//! API keys and the other bearer secrets of `hcc serve` (link and session
//! tokens): random from the OS, shown once, stored as SHA-256.
//!
//! A plain hash is enough: every secret is 256 random bits, so there is
//! nothing to guess and no reason for a slow password hash on every
//! request.

use sha2::{Digest, Sha256};

use crate::error::Error;

/// The prefix of every API key, so a leaked key is easy to recognise.
pub const KEY_PREFIX: &str = "hcc_";

/// 32 random bytes as 64 lowercase hex digits.
pub fn random_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Failed(format!("cannot get random bytes from the system: {e}")))?;
    Ok(hex(&bytes))
}

pub fn new_api_key() -> Result<String, Error> {
    Ok(format!("{KEY_PREFIX}{}", random_token()?))
}

/// What is stored for a secret.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Whether `text` looks like a token from [`random_token`].
pub fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a route needs of the caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any key.
    Read,
    /// A key that may queue actions.
    Act,
    /// A key that may open consoles.
    Console,
    /// An admin key.
    Admin,
}

/// What an API key may do: stored as [`Scope::as_str`] in `api_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read servers, commands, status.
    Read,
    /// Read, and queue actions but `create` and `kill`.
    Act,
    /// Read, console credentials and one-time console links.
    Console,
    /// Everything.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Act => "act",
            Scope::Console => "console",
            Scope::Admin => "admin",
        }
    }

    pub fn from_stored(text: &str) -> Option<Scope> {
        Some(match text {
            "read" => Scope::Read,
            "act" => Scope::Act,
            "console" => Scope::Console,
            "admin" => Scope::Admin,
            _ => return None,
        })
    }

    pub fn allows(self, need: Need) -> bool {
        match need {
            Need::Read => true,
            Need::Act => matches!(self, Scope::Act | Scope::Admin),
            Need::Console => matches!(self, Scope::Console | Scope::Admin),
            Need::Admin => self == Scope::Admin,
        }
    }
}

/// The key in an `Authorization: Bearer KEY` header.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, key) = header.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty()).then(|| key.trim())
}

/// A key name: what `apikey add` accepts.
pub fn check_key_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "invalid key name `{}`: up to 64 letters, digits, `-`, `_`, `.`",
            crate::verb::shown(name)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hashes_are_stable() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert!(is_token(&a) && is_token(&b));
        assert_ne!(a, b);
        assert!(new_api_key().unwrap().starts_with("hcc_"));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!is_token("../etc/passwd"));
        assert!(!is_token(&a.to_uppercase()));
    }

    #[test]
    fn scopes_allow_what_they_name() {
        use Scope::*;
        for scope in [Read, Act, Console, Admin] {
            assert!(scope.allows(Need::Read));
            assert_eq!(Scope::from_stored(scope.as_str()), Some(scope));
        }
        assert!(!Read.allows(Need::Act) && !Read.allows(Need::Console));
        assert!(Act.allows(Need::Act) && !Act.allows(Need::Console));
        assert!(Console.allows(Need::Console) && !Console.allows(Need::Act));
        assert!(Admin.allows(Need::Act) && Admin.allows(Need::Console));
    }

    #[test]
    fn bearer_headers_and_key_names() {
        assert_eq!(bearer("Bearer hcc_x"), Some("hcc_x"));
        assert_eq!(bearer("bearer  hcc_x "), Some("hcc_x"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert!(check_key_name("whmcs-1.prod").is_ok());
        assert!(check_key_name("a b").is_err());
        assert!(check_key_name("").is_err());
    }
}
