//! Content addresses: how a store object's path follows from its contents (`text:`, flat
//! `fixed:`, recursive `fixed:r:`), in Nix's textual forms — the `ca` field of path info
//! (`fixed:r:sha256:<nix32>`) and a derivation output's `hashAlgo` (`r:sha256`).

use std::fmt;

use thiserror::Error;

use crate::hash::{Hash, HashAlgo, HashError};

/// How file system data is turned into bytes to hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileIngestionMethod {
    /// The single regular file's contents.
    Flat,
    /// The NAR serialisation of the whole tree.
    Recursive,
}

/// A content-addressing method, including `text` (flat file contents, may refer to other paths,
/// only sha256), used by `builtins.toFile` and `.drv` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentAddressMethod {
    Text,
    Fixed(FileIngestionMethod),
}

impl ContentAddressMethod {
    /// The prefix written before the algorithm in a derivation output (`""`, `"r:"`, `"text:"`).
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            ContentAddressMethod::Text => "text:",
            ContentAddressMethod::Fixed(FileIngestionMethod::Flat) => "",
            ContentAddressMethod::Fixed(FileIngestionMethod::Recursive) => "r:",
        }
    }

    /// Split a derivation output's `hashAlgo` (`r:sha256`) into method and algorithm.
    pub fn parse_with_algo(s: &str) -> Result<(ContentAddressMethod, HashAlgo), HashError> {
        let (method, algo) = if let Some(rest) = s.strip_prefix("r:") {
            (
                ContentAddressMethod::Fixed(FileIngestionMethod::Recursive),
                rest,
            )
        } else if let Some(rest) = s.strip_prefix("text:") {
            (ContentAddressMethod::Text, rest)
        } else {
            (ContentAddressMethod::Fixed(FileIngestionMethod::Flat), s)
        };
        Ok((method, HashAlgo::parse(algo)?))
    }

    /// `r:sha256` and friends.
    #[must_use]
    pub fn print_with_algo(self, algo: HashAlgo) -> String {
        format!("{}{algo}", self.prefix())
    }
}

/// A method with the hash of the contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentAddress {
    pub method: ContentAddressMethod,
    pub hash: Hash,
}

/// A `ca` string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContentAddressError {
    #[error("content address `{ca}` does not start with `text:` or `fixed:`")]
    BadPrefix { ca: String },
    #[error("text content address `{ca}` must use sha256")]
    TextNotSha256 { ca: String },
    #[error("bad hash in content address `{ca}`: {source}")]
    Hash {
        ca: String,
        #[source]
        source: HashError,
    },
}

impl ContentAddress {
    /// Parse `text:sha256:…`, `fixed:sha1:…`, `fixed:r:sha256:…`.
    pub fn parse(ca: &str) -> Result<ContentAddress, ContentAddressError> {
        let hash = |rest: &str| {
            Hash::parse_prefixed(rest).map_err(|source| ContentAddressError::Hash {
                ca: ca.to_owned(),
                source,
            })
        };
        if let Some(rest) = ca.strip_prefix("text:") {
            let hash = hash(rest)?;
            if hash.algo() != HashAlgo::Sha256 {
                return Err(ContentAddressError::TextNotSha256 { ca: ca.to_owned() });
            }
            Ok(ContentAddress {
                method: ContentAddressMethod::Text,
                hash,
            })
        } else if let Some(rest) = ca.strip_prefix("fixed:") {
            let (method, rest) = match rest.strip_prefix("r:") {
                Some(rest) => (FileIngestionMethod::Recursive, rest),
                None => (FileIngestionMethod::Flat, rest),
            };
            Ok(ContentAddress {
                method: ContentAddressMethod::Fixed(method),
                hash: hash(rest)?,
            })
        } else {
            Err(ContentAddressError::BadPrefix { ca: ca.to_owned() })
        }
    }
}

/// `text:sha256:<nix32>` / `fixed:r:sha256:<nix32>`, as in `.narinfo` `CA:` lines.
impl fmt::Display for ContentAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.method {
            ContentAddressMethod::Text => write!(f, "text:{}", self.hash),
            ContentAddressMethod::Fixed(method) => {
                let r = if method == FileIngestionMethod::Recursive {
                    "r:"
                } else {
                    ""
                };
                write!(f, "fixed:{r}{}", self.hash)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh",
            "fixed:sha1:0bx5y3kpafpgfzq4dwbv0bgqs6fbldvq",
            "text:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh",
        ] {
            assert_eq!(ContentAddress::parse(s).unwrap().to_string(), s);
        }
        assert!(ContentAddress::parse("nope:sha256:x").is_err());
        assert!(matches!(
            ContentAddress::parse("text:sha1:0bx5y3kpafpgfzq4dwbv0bgqs6fbldvq"),
            Err(ContentAddressError::TextNotSha256 { .. })
        ));
    }

    #[test]
    fn output_hash_algo_strings() {
        for s in ["r:sha256", "sha1", "text:sha256", "r:sha512"] {
            let (m, a) = ContentAddressMethod::parse_with_algo(s).unwrap();
            assert_eq!(m.print_with_algo(a), s);
        }
    }
}
