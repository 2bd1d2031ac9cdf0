//! VNC authentication (RFC 6143 7.2.2): the server sends a random 16-byte
//! challenge, the client answers it encrypted with DES, the key being the
//! password's first 8 bytes (zero-padded) with the bits of each byte
//! reversed, a quirk of the original VNC code that every server keeps.
//!
//! One function for both sides: the simulator's console checks an answer
//! by computing the same one, and the broker answers a real server with it.

use des::Des;
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};

/// Length of the challenge and of the answer.
pub const CHALLENGE_LEN: usize = 16;

/// The answer to `challenge` for `password`. Passwords longer than 8
/// bytes are cut there, as every VNC server does.
pub fn response(password: &str, challenge: &[u8; CHALLENGE_LEN]) -> [u8; CHALLENGE_LEN] {
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(password.as_bytes()) {
        *k = b.reverse_bits();
    }
    let cipher = Des::new(&Array::from(key));
    let mut answer = *challenge;
    for block in answer.chunks_exact_mut(8) {
        let mut b = Array::try_from(&*block).expect("8-byte block");
        cipher.encrypt_block(&mut b);
        block.copy_from_slice(&b);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_openssl_des_ecb_with_the_reversed_key() {
        // openssl enc -des-ecb -nopad -K cea6c64ea62e8c4c ("secret12",
        // bits reversed) of "0123456789abcdef".
        let answer = response("secret12", b"0123456789abcdef");
        let expected = [
            0x5f, 0x15, 0xf4, 0xf0, 0xe1, 0x68, 0x4c, 0xdc, 0x26, 0x0e, 0xa9, 0x62, 0xab, 0x82,
            0xfa, 0x3b,
        ];
        assert_eq!(answer, expected);
    }

    #[test]
    fn a_long_password_counts_up_to_eight_bytes_and_a_short_one_is_padded() {
        let challenge = [7u8; CHALLENGE_LEN];
        assert_eq!(
            response("secret12-and-more", &challenge),
            response("secret12", &challenge)
        );
        assert_ne!(
            response("secret", &challenge),
            response("secret\u{1}", &challenge)
        );
    }
}
