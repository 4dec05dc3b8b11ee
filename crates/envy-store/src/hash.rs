//! Hashes as Nix writes them: the four algorithms (`md5`, `sha1`, `sha256`, `sha512`), parsing
//! every textual form Nix accepts (`algo:nix32|hex|base64`, bare digests given the algorithm,
//! SRI `algo-base64`) and printing each of them, streaming hashing, and the 160-bit "compressed"
//! hash store paths use.

use std::fmt;
use std::io;
use std::str::FromStr;

use data_encoding::BASE64;
use sha2::Digest as _;
use thiserror::Error;

use crate::nix32;

/// A hash algorithm Nix knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgo {
    /// Digest size in bytes.
    #[must_use]
    pub const fn size(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }

    /// The name Nix uses (`sha256`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// Parse an algorithm name (`md5`, `sha1`, `sha256`, `sha512`).
    pub fn parse(name: &str) -> Result<HashAlgo, HashError> {
        match name {
            "md5" => Ok(HashAlgo::Md5),
            "sha1" => Ok(HashAlgo::Sha1),
            "sha256" => Ok(HashAlgo::Sha256),
            "sha512" => Ok(HashAlgo::Sha512),
            _ => Err(HashError::UnknownAlgo {
                algo: name.to_owned(),
            }),
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgo {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashAlgo::parse(s)
    }
}

/// How a hash is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    /// nix32, Nix's default for `sha256:…`.
    Nix32,
    /// Lower-case hexadecimal.
    Base16,
    /// Standard base64 with padding.
    Base64,
    /// Subresource integrity: `sha256-<base64>` (the algorithm is always part of it).
    Sri,
}

/// A hash that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashError {
    #[error("unknown hash algorithm `{algo}`")]
    UnknownAlgo { algo: String },
    #[error("hash `{hash}` does not include a type")]
    MissingAlgo { hash: String },
    #[error("hash `{hash}` has wrong length for hash algorithm `{algo}`")]
    BadLength { hash: String, algo: HashAlgo },
    #[error("invalid {encoding} hash `{hash}`")]
    BadEncoding {
        hash: String,
        encoding: &'static str,
    },
    #[error("hash `{hash}` should have type `{expected}`")]
    WrongAlgo { hash: String, expected: HashAlgo },
}

/// A digest together with its algorithm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash {
    algo: HashAlgo,
    bytes: [u8; 64],
}

impl Hash {
    /// A hash from raw digest bytes; `None` when the length does not fit the algorithm.
    #[must_use]
    pub fn from_bytes(algo: HashAlgo, digest: &[u8]) -> Option<Hash> {
        if digest.len() != algo.size() {
            return None;
        }
        let mut bytes = [0u8; 64];
        bytes[..digest.len()].copy_from_slice(digest);
        Some(Hash { algo, bytes })
    }

    /// The algorithm.
    #[must_use]
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The raw digest.
    #[must_use]
    pub fn digest(&self) -> &[u8] {
        &self.bytes[..self.algo.size()]
    }

    /// Hash bytes in one go.
    #[must_use]
    pub fn of(algo: HashAlgo, data: &[u8]) -> Hash {
        let mut hasher = Hasher::new(algo);
        hasher.update(data);
        hasher.finish()
    }

    /// `sha256` of `data`, the common case.
    #[must_use]
    pub fn sha256(data: &[u8]) -> Hash {
        Hash::of(HashAlgo::Sha256, data)
    }

    /// Parse `algo:digest` or SRI `algo-base64`, where the digest may be nix32, hex or base64.
    pub fn parse_prefixed(s: &str) -> Result<Hash, HashError> {
        Hash::parse_impl(s, None, false)
    }

    /// Parse a hash with or without its algorithm prefix: prefixed and SRI forms must agree
    /// with `algo` when it is given; a bare digest needs `algo`.
    pub fn parse_any(s: &str, algo: Option<HashAlgo>) -> Result<Hash, HashError> {
        Hash::parse_impl(s, algo, true)
    }

    /// Parse a bare digest (nix32, hex or base64, told apart by length) of a known algorithm.
    pub fn parse_bare(s: &str, algo: HashAlgo) -> Result<Hash, HashError> {
        Hash::decode_digest(s, s, algo, false)
    }

    /// Parse an SRI hash `algo-base64` only.
    pub fn parse_sri(s: &str) -> Result<Hash, HashError> {
        match s.split_once('-') {
            Some((algo, rest)) => Hash::decode_digest(s, rest, HashAlgo::parse(algo)?, true),
            None => Err(HashError::MissingAlgo { hash: s.to_owned() }),
        }
    }

    fn parse_impl(
        s: &str,
        expected: Option<HashAlgo>,
        allow_bare: bool,
    ) -> Result<Hash, HashError> {
        let (algo, rest, sri) = if let Some((algo, rest)) = s.split_once(':') {
            (Some(HashAlgo::parse(algo)?), rest, false)
        } else if let Some((algo, rest)) = s.split_once('-')
            && let Ok(algo) = HashAlgo::parse(algo)
        {
            (Some(algo), rest, true)
        } else {
            (None, s, false)
        };
        let algo = match (algo, expected) {
            (Some(found), Some(expected)) if found != expected => {
                return Err(HashError::WrongAlgo {
                    hash: s.to_owned(),
                    expected,
                });
            }
            (Some(found), _) => found,
            (None, Some(expected)) if allow_bare => expected,
            (None, _) => return Err(HashError::MissingAlgo { hash: s.to_owned() }),
        };
        Hash::decode_digest(s, rest, algo, sri)
    }

    fn decode_digest(
        whole: &str,
        rest: &str,
        algo: HashAlgo,
        sri: bool,
    ) -> Result<Hash, HashError> {
        let size = algo.size();
        let bad = |encoding| HashError::BadEncoding {
            hash: whole.to_owned(),
            encoding,
        };
        let bytes = if !sri && rest.len() == size * 2 {
            decode_hex(rest).ok_or_else(|| bad("base-16"))?
        } else if !sri && rest.len() == nix32::encoded_len(size) {
            nix32::decode(rest).map_err(|_| bad("nix32"))?
        } else if sri || rest.len() == BASE64.encode_len(size) {
            let decoded = BASE64.decode(rest.as_bytes()).map_err(|_| bad("base-64"))?;
            if decoded.len() != size {
                return Err(HashError::BadLength {
                    hash: whole.to_owned(),
                    algo,
                });
            }
            decoded
        } else {
            return Err(HashError::BadLength {
                hash: whole.to_owned(),
                algo,
            });
        };
        Ok(Hash::from_bytes(algo, &bytes).expect("length checked above"))
    }

    /// Print in `format`, with `algo:` in front when `with_algo` (SRI always has it).
    #[must_use]
    pub fn to_string_as(&self, format: HashFormat, with_algo: bool) -> String {
        let digest = match format {
            HashFormat::Nix32 => nix32::encode(self.digest()),
            HashFormat::Base16 => encode_hex(self.digest()),
            HashFormat::Base64 | HashFormat::Sri => BASE64.encode(self.digest()),
        };
        match format {
            HashFormat::Sri => format!("{}-{digest}", self.algo),
            _ if with_algo => format!("{}:{digest}", self.algo),
            _ => digest,
        }
    }

    /// Lower-case hex, no prefix.
    #[must_use]
    pub fn to_hex(&self) -> String {
        encode_hex(self.digest())
    }

    /// nix32, no prefix.
    #[must_use]
    pub fn to_nix32(&self) -> String {
        nix32::encode(self.digest())
    }

    /// `algo:nix32`, as Nix prints NAR hashes in `.narinfo` files and its database.
    #[must_use]
    pub fn to_prefixed_nix32(&self) -> String {
        self.to_string_as(HashFormat::Nix32, true)
    }

    /// `algo-base64`.
    #[must_use]
    pub fn to_sri(&self) -> String {
        self.to_string_as(HashFormat::Sri, true)
    }

    /// XOR-fold the digest into `size` bytes (Nix's `compressHash`; store paths use 20).
    #[must_use]
    pub fn compress(&self, size: usize) -> Vec<u8> {
        let mut out = vec![0u8; size];
        for (i, b) in self.digest().iter().enumerate() {
            out[i % size] ^= b;
        }
        out
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo, self.to_hex())
    }
}

/// `algo:nix32` (Nix's usual printing, e.g. for `sha256`); SRI is `to_sri`.
impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_prefixed_nix32())
    }
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn encode_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Decode hex (either case); `None` on odd length or a bad digit.
#[must_use]
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A streaming hasher for any of the algorithms; also an `io::Write` sink.
#[derive(Clone)]
pub enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher.
    #[must_use]
    pub fn new(algo: HashAlgo) -> Hasher {
        match algo {
            HashAlgo::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest.
    #[must_use]
    pub fn finish(self) -> Hash {
        match self {
            Hasher::Md5(h) => Hash::from_bytes(HashAlgo::Md5, &h.finalize()),
            Hasher::Sha1(h) => Hash::from_bytes(HashAlgo::Sha1, &h.finalize()),
            Hasher::Sha256(h) => Hash::from_bytes(HashAlgo::Sha256, &h.finalize()),
            Hasher::Sha512(h) => Hash::from_bytes(HashAlgo::Sha512, &h.finalize()),
        }
        .expect("digest sizes match their algorithms")
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink that hashes and counts what is written (NAR hash and size in one pass).
pub struct HashSink {
    hasher: Hasher,
    len: u64,
}

impl HashSink {
    #[must_use]
    pub fn new(algo: HashAlgo) -> HashSink {
        HashSink {
            hasher: Hasher::new(algo),
            len: 0,
        }
    }

    /// The hash and the number of bytes written.
    #[must_use]
    pub fn finish(self) -> (Hash, u64) {
        (self.hasher.finish(), self.len)
    }
}

impl io::Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256_HEX: &str =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_every_form() {
        let h = Hash::sha256(b"");
        assert_eq!(h.to_hex(), EMPTY_SHA256_HEX);
        let forms = [
            format!("sha256:{EMPTY_SHA256_HEX}"),
            "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73".to_owned(),
            "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".to_owned(),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".to_owned(),
        ];
        for form in &forms {
            assert_eq!(Hash::parse_prefixed(form).unwrap(), h, "{form}");
            assert_eq!(
                Hash::parse_any(form, Some(HashAlgo::Sha256)).unwrap(),
                h,
                "{form}"
            );
        }
        assert_eq!(
            Hash::parse_any(EMPTY_SHA256_HEX, Some(HashAlgo::Sha256)).unwrap(),
            h
        );
        assert_eq!(
            Hash::parse_bare(&h.to_nix32(), HashAlgo::Sha256).unwrap(),
            h
        );
        assert_eq!(
            h.to_sri(),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            h.to_string(),
            "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(
            h.to_string_as(HashFormat::Base64, false),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn other_algorithms() {
        assert_eq!(
            Hash::of(HashAlgo::Md5, b"abc").to_hex(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            Hash::of(HashAlgo::Sha1, b"abc").to_hex(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let sha512 = Hash::of(HashAlgo::Sha512, b"abc");
        assert!(sha512.to_hex().starts_with("ddaf35a193617aba"));
        for h in [
            Hash::of(HashAlgo::Md5, b"x"),
            Hash::of(HashAlgo::Sha1, b"x"),
            sha512,
        ] {
            for format in [
                HashFormat::Nix32,
                HashFormat::Base16,
                HashFormat::Base64,
                HashFormat::Sri,
            ] {
                let text = h.to_string_as(format, true);
                assert_eq!(Hash::parse_prefixed(&text).unwrap(), h, "{text}");
            }
        }
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Hash::parse_prefixed("sha257:abc"),
            Err(HashError::UnknownAlgo { .. })
        ));
        assert!(matches!(
            Hash::parse_prefixed("abc"),
            Err(HashError::MissingAlgo { .. })
        ));
        assert!(matches!(
            Hash::parse_prefixed("sha256:abc"),
            Err(HashError::BadLength { .. })
        ));
        assert!(matches!(
            Hash::parse_any(
                "sha1:a9993e364706816aba3e25717850c26c9cd0d89d",
                Some(HashAlgo::Sha256)
            ),
            Err(HashError::WrongAlgo { .. })
        ));
        let bad_hex = format!("sha256:{}", "g".repeat(64));
        assert!(matches!(
            Hash::parse_prefixed(&bad_hex),
            Err(HashError::BadEncoding { .. })
        ));
        assert_eq!(
            HashError::UnknownAlgo { algo: "x".into() }.to_string(),
            "unknown hash algorithm `x`"
        );
    }

    #[test]
    fn compress_folds_into_twenty_bytes() {
        let h = Hash::sha256(b"");
        let c = h.compress(20);
        assert_eq!(c.len(), 20);
        let d = h.digest();
        assert_eq!(c[0], d[0] ^ d[20]);
        assert_eq!(c[12], d[12]);
    }
}
