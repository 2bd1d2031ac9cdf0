//! The simulator's random numbers: a seeded SplitMix64 for fault rolls and
//! generated data (repeatable with `--seed`), and the system generator for
//! secrets that must not be guessable from a seed (the API token).

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to
/// roll dice for faults; not for secrets.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// Seeded from the system generator, for runs without `--seed`.
    pub fn from_system() -> Result<Rng, String> {
        getrandom::u64()
            .map(Rng::new)
            .map_err(|e| format!("cannot seed the random generator: {e}"))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        // The top 53 bits fill a double's mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `len` characters from [A-Za-z0-9].
    pub fn alphanumeric(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(ALPHANUMERIC[(self.next_u64() % 62) as usize]))
            .collect()
    }
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
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_eq!(a.alphanumeric(20), b.alphanumeric(20));
        assert_ne!(Rng::new(8).next_u64(), Rng::new(7).next_u64());
    }

    #[test]
    fn floats_stay_in_the_unit_interval() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn secrets_are_alphanumeric() {
        let token = secret_alphanumeric(64).unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(token, secret_alphanumeric(64).unwrap());
    }
}
