//! Nix's base-32 encoding ("nix32"): the alphabet without `e`, `o`, `u`, `t`, consuming the
//! bytes from the end, as store path hash parts and `sha256:…` hashes are written.
//!
//! Only the encoding lives here; which lengths a hash may have is `hash`'s business.

use thiserror::Error;

/// The 32 characters, in digit order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Reverse table: ASCII byte to digit, `0xff` for bytes outside the alphabet.
const DIGITS: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 32 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// A string that is not valid nix32 for the requested length.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Nix32Error {
    #[error("invalid nix32 character `{}` in `{input}`", char::from(*.byte))]
    BadChar { input: String, byte: u8 },
    #[error("nix32 string `{input}` encodes more bits than its length allows")]
    Overflow { input: String },
}

/// Number of nix32 characters needed for `len` bytes.
#[must_use]
pub const fn encoded_len(len: usize) -> usize {
    if len == 0 { 0 } else { (len * 8 - 1) / 5 + 1 }
}

/// Number of bytes a nix32 string of `len` characters decodes to.
#[must_use]
pub const fn decoded_len(len: usize) -> usize {
    len * 5 / 8
}

/// Encode bytes as nix32.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    let len = encoded_len(bytes.len());
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let low = u16::from(bytes[i]) >> j;
        let high = if i + 1 < bytes.len() {
            u16::from(bytes[i + 1]) << (8 - j)
        } else {
            0
        };
        out.push(char::from(ALPHABET[usize::from((low | high) & 0x1f)]));
    }
    out
}

/// Decode a nix32 string; its length decides the number of bytes (`decoded_len`).
pub fn decode(input: &str) -> Result<Vec<u8>, Nix32Error> {
    let bytes = input.as_bytes();
    let size = decoded_len(bytes.len());
    let mut out = vec![0u8; size];
    for (n, &c) in bytes.iter().rev().enumerate() {
        let digit = DIGITS[usize::from(c)];
        if digit == 0xff {
            return Err(Nix32Error::BadChar {
                input: input.to_owned(),
                byte: c,
            });
        }
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let value = u16::from(digit) << j;
        if i < size {
            out[i] |= (value & 0xff) as u8;
        } else if value & 0xff != 0 {
            return Err(Nix32Error::Overflow {
                input: input.to_owned(),
            });
        }
        let carry = (value >> 8) as u8;
        if i + 1 < size {
            out[i + 1] |= carry;
        } else if carry != 0 {
            return Err(Nix32Error::Overflow {
                input: input.to_owned(),
            });
        }
    }
    Ok(out)
}

/// Whether every byte of `s` is a nix32 digit.
#[must_use]
pub fn is_nix32(s: &[u8]) -> bool {
    s.iter().all(|&c| DIGITS[usize::from(c)] != 0xff)
}

/// Whether `c` is a nix32 digit.
#[must_use]
pub fn is_digit(c: u8) -> bool {
    DIGITS[usize::from(c)] != 0xff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // sha256("") in nix32, as `nix-hash --type sha256 --flat --base32 /dev/null` prints it.
        let empty = [
            0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
            0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
            0x78, 0x52, 0xb8, 0x55,
        ];
        assert_eq!(
            encode(&empty),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(
            decode("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73").unwrap(),
            empty
        );
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0x1f]), "0z");
        assert_eq!(encode(&[0xff]), "7z");
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(text.len(), encoded_len(len));
            assert_eq!(decode(&text).unwrap(), bytes, "length {len}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            decode("0e"),
            Err(Nix32Error::BadChar { byte: b'e', .. })
        ));
        // Two characters hold 10 bits but decode to one byte: the top digit may not overflow it.
        assert!(matches!(decode("8z"), Err(Nix32Error::Overflow { .. })));
    }
}
