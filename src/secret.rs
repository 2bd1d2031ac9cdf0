//! Bearer secrets: API keys, console-link, page-session and broker tokens.
//! Random from the OS, shown once, stored as SHA-256.
//!
//! A plain hash is enough: every secret is 256 random bits, so there is
//! nothing to guess and no reason for a slow password hash on every
//! request. This module neither stores nor checks secrets; `store` keeps
//! the hashes and `serve` compares them.

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

/// A new API key: [`KEY_PREFIX`] and a [`random_token`].
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
}
