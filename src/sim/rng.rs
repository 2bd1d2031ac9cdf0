//! The simulator's random numbers: a seeded `fastrand::Rng` for fault
//! rolls and generated data (repeatable with `--seed`), and the system
//! generator for secrets that must not be guessable from a seed (the API
//! token).

pub use fastrand::Rng;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `len` characters from [A-Za-z0-9] from a seeded generator: generated
/// data such as root passwords, never the simulator's own token.
pub fn alphanumeric(rng: &mut Rng, len: usize) -> String {
    std::iter::repeat_with(|| rng.alphanumeric())
        .take(len)
        .collect()
}

/// `len` characters from [A-Za-z0-9] from the system generator, without
/// modulo bias (bytes of 248 and above are drawn again).
pub fn secret_alphanumeric(len: usize) -> Result<String, String> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| format!("cannot generate a token: {e}"))?;
        for &b in &buf {
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHANUMERIC[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats() {
        let mut a = Rng::with_seed(7);
        let mut b = Rng::with_seed(7);
        assert_eq!(a.u64(..), b.u64(..));
        assert_eq!(alphanumeric(&mut a, 20), alphanumeric(&mut b, 20));
        assert_ne!(Rng::with_seed(8).u64(..), Rng::with_seed(7).u64(..));
    }

    #[test]
    fn generated_text_is_alphanumeric() {
        let text = alphanumeric(&mut Rng::with_seed(1), 200);
        assert_eq!(text.len(), 200);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn secrets_are_alphanumeric() {
        let token = secret_alphanumeric(64).unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(token, secret_alphanumeric(64).unwrap());
    }
}
