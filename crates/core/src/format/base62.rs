//! The base62 digits of token bodies and the checksum they spell.

use crate::error::Error;
use crate::kind::CHECKSUM_LEN;
use crate::secret::SecretSource;
use zeroize::Zeroizing;

/// The body alphabet, in digit order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends `n` uniform base62 characters, drawing bytes from `rng` and
/// rejecting values ≥ 248 (= 4 × 62) so every character is equally likely.
pub(super) fn push_base62(out: &mut String, n: usize, rng: &dyn SecretSource) -> Result<(), Error> {
    let mut buf = Zeroizing::new([0u8; 64]);
    let mut written = 0;
    while written < n {
        rng.fill(&mut buf[..])?;
        for &b in buf.iter() {
            if written == n {
                break;
            }
            if b < 248 {
                out.push(base62_digit(u32::from(b)));
                written += 1;
            }
        }
    }
    Ok(())
}

/// The base62 digit for `value % 62`.
#[allow(clippy::indexing_slicing, reason = "value % 62 < 62 = BASE62.len()")]
pub(crate) fn base62_digit(value: u32) -> char {
    char::from(BASE62[(value % 62) as usize])
}

/// Each byte's base62 value, or 62 for a byte outside the alphabet.
#[allow(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an out-of-range index fails the build"
)]
pub(super) const DIGIT_VALUE: [u8; 256] = {
    let mut table = [62u8; 256];
    let mut value = 0;
    while value < 62 {
        table[BASE62[value] as usize] = value as u8;
        value += 1;
    }
    table
};

pub(super) fn digit_value(byte: u8) -> u8 {
    DIGIT_VALUE.get(usize::from(byte)).copied().unwrap_or(62)
}

/// Whether `byte` is a base62 digit: `[0-9A-Za-z]`. Range compares, not
/// the table: a fold of them over a token body compiles to SIMD compares.
pub(super) fn is_base62(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
}

/// Whether every byte of `text` is a base62 digit, without a branch per
/// byte (a token body is checked whole; the answer does not depend on
/// where a bad byte sits).
pub(super) fn all_base62(text: &[u8]) -> bool {
    text.iter().fold(true, |ok, &b| ok & is_base62(b))
}

/// Whether six base62 digits spell `crc`: decoded by multiply-add, which
/// is cheaper than encoding `crc` (six divisions). The encoding has fixed
/// width and 62^6 > 2^32, so each value has exactly one spelling.
pub(super) fn checksum_matches(crc: u32, digits: &[u8]) -> bool {
    let mut value = 0u64;
    for &byte in digits {
        let digit = digit_value(byte);
        if digit >= 62 {
            return false;
        }
        value = value * 62 + u64::from(digit);
    }
    digits.len() == CHECKSUM_LEN && value == u64::from(crc)
}

/// CRC32 as six base62 digits, most significant first (62^6 > 2^32).
pub(super) fn encode_checksum(mut crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = base62_digit(crc) as u8;
        crc /= 62;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_base62_exactly_when_each_byte_is() {
        let good = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        assert!(all_base62(good) && all_base62(b""));
        for byte in 0..=u8::MAX {
            let mut body = good.to_vec();
            body[40] = byte;
            assert_eq!(all_base62(&body), BASE62.contains(&byte), "{byte}");
        }
    }

    #[test]
    fn a_base62_digit_is_exactly_a_byte_of_the_alphabet() {
        for byte in 0..=u8::MAX {
            assert_eq!(is_base62(byte), BASE62.contains(&byte), "{byte}");
            assert_eq!(digit_value(byte) < 62, BASE62.contains(&byte), "{byte}");
        }
    }
}
