//! Store paths: `<32 nix32 chars>-<name>`, validated with Nix's rules. A `StorePath` is only the
//! base name; `StoreDir` turns it into a full path and back.

use std::fmt;

use thiserror::Error;

use crate::nix32;

/// Length of a store path's hash part in nix32 characters (160 bits).
pub const HASH_PART_LEN: usize = 32;
/// Bytes of the compressed hash behind the hash part.
pub const HASH_BYTES: usize = 20;
/// Longest name Nix accepts.
pub const MAX_NAME_LEN: usize = 211;

/// Why a store path name is invalid. `nix_message` gives Nix's own wording, which the
/// evaluator reproduces in its errors.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("name must not be empty")]
    Empty,
    #[error("name `{name}` must be no longer than {MAX_NAME_LEN} characters")]
    TooLong { name: String },
    #[error("name `{name}` is not valid")]
    Invalid { name: String },
    #[error("name `{name}` is not valid: first dash-separated component must not be `{component}`")]
    DotComponent {
        name: String,
        component: &'static str,
    },
    #[error("name `{name}` contains illegal character `{}`", char::from(*.byte))]
    IllegalChar { name: String, byte: u8 },
}

impl NameError {
    /// The message as Nix words it (single quotes), e.g.
    /// `name '~wiggle~' contains illegal character '~'`.
    #[must_use]
    pub fn nix_message(&self) -> String {
        match self {
            NameError::Empty => "name must not be empty".to_owned(),
            NameError::TooLong { name } => {
                format!("name '{name}' must be no longer than {MAX_NAME_LEN} characters")
            }
            NameError::Invalid { name } => format!("name '{name}' is not valid"),
            NameError::DotComponent { name, component } => format!(
                "name '{name}' is not valid: first dash-separated component must not be '{component}'"
            ),
            NameError::IllegalChar { name, byte } => {
                format!(
                    "name '{name}' contains illegal character '{}'",
                    char::from(*byte)
                )
            }
        }
    }
}

/// A string that is not a store path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorePathError {
    #[error("`{path}` is too short to be a valid store path")]
    TooShort { path: String },
    #[error("store path `{path}` contains illegal nix32 character `{}`", char::from(*.byte))]
    BadHashChar { path: String, byte: u8 },
    #[error("store path `{path}` lacks a `-` after its hash part")]
    MissingDash { path: String },
    #[error("path `{path}` is not a valid store path: {source}")]
    BadName {
        path: String,
        #[source]
        source: NameError,
    },
    #[error("path `{path}` is not in the Nix store `{store_dir}`")]
    NotInStore { path: String, store_dir: String },
}

/// Check a name with Nix's rules (`checkName`).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err(NameError::Empty);
    }
    if bytes.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            name: name.to_owned(),
        });
    }
    if bytes[0] == b'.' {
        match (bytes.get(1), bytes.get(2)) {
            (None, _) | (Some(b'.'), None) => {
                return Err(NameError::Invalid {
                    name: name.to_owned(),
                });
            }
            (Some(b'-'), _) => {
                return Err(NameError::DotComponent {
                    name: name.to_owned(),
                    component: ".",
                });
            }
            (Some(b'.'), Some(b'-')) => {
                return Err(NameError::DotComponent {
                    name: name.to_owned(),
                    component: "..",
                });
            }
            _ => {}
        }
    }
    if let Some(&byte) = bytes.iter().find(|&&c| !is_name_byte(c)) {
        return Err(NameError::IllegalChar {
            name: name.to_owned(),
            byte,
        });
    }
    Ok(())
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_' | b'?' | b'=')
}

/// A store path's base name, `<hash part>-<name>`. Ordered as Nix orders store paths (by the
/// base name's bytes, which is the order of their full paths in one store).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath {
    base: String,
}

impl StorePath {
    /// Parse a base name (`hash-name`, no directory).
    pub fn from_base_name(base: &str) -> Result<StorePath, StorePathError> {
        let bytes = base.as_bytes();
        if bytes.len() < HASH_PART_LEN + 1 {
            return Err(StorePathError::TooShort {
                path: base.to_owned(),
            });
        }
        if let Some(&byte) = bytes[..HASH_PART_LEN]
            .iter()
            .find(|&&c| !nix32::is_digit(c))
        {
            return Err(StorePathError::BadHashChar {
                path: base.to_owned(),
                byte,
            });
        }
        if bytes[HASH_PART_LEN] != b'-' {
            return Err(StorePathError::MissingDash {
                path: base.to_owned(),
            });
        }
        validate_name(&base[HASH_PART_LEN + 1..]).map_err(|source| StorePathError::BadName {
            path: base.to_owned(),
            source,
        })?;
        Ok(StorePath {
            base: base.to_owned(),
        })
    }

    /// A store path from its 20-byte compressed hash and a name.
    pub fn from_hash(hash: &[u8; HASH_BYTES], name: &str) -> Result<StorePath, NameError> {
        validate_name(name)?;
        Ok(StorePath {
            base: format!("{}-{name}", nix32::encode(hash)),
        })
    }

    /// The 32-character hash part.
    #[must_use]
    pub fn hash_part(&self) -> &str {
        &self.base[..HASH_PART_LEN]
    }

    /// The name after the dash.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.base[HASH_PART_LEN + 1..]
    }

    /// `hash-name`.
    #[must_use]
    pub fn base_name(&self) -> &str {
        &self.base
    }

    /// Whether this is a derivation (`.drv`).
    #[must_use]
    pub fn is_derivation(&self) -> bool {
        self.base.ends_with(".drv")
    }

    /// The hash part decoded into its 20 bytes.
    #[must_use]
    pub fn hash_bytes(&self) -> [u8; HASH_BYTES] {
        let decoded = nix32::decode(self.hash_part()).expect("validated on construction");
        decoded.try_into().expect("32 nix32 chars are 20 bytes")
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({})", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_names() {
        let p = StorePath::from_base_name("hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv").unwrap();
        assert_eq!(p.hash_part(), "hxcnl7nh8wbfiwfzkfnac84cgnf766kc");
        assert_eq!(p.name(), "triv");
        assert!(!p.is_derivation());
        let again = StorePath::from_hash(&p.hash_bytes(), "triv").unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn rejects_bad_base_names() {
        assert!(matches!(
            StorePath::from_base_name("abc"),
            Err(StorePathError::TooShort { .. })
        ));
        assert!(matches!(
            StorePath::from_base_name("hxcnl7nh8wbfiwfzkfnac84cgnf766ke-triv"),
            Err(StorePathError::BadHashChar { byte: b'e', .. })
        ));
        assert!(matches!(
            StorePath::from_base_name("hxcnl7nh8wbfiwfzkfnac84cgnf766kc_triv"),
            Err(StorePathError::MissingDash { .. })
        ));
        assert!(matches!(
            StorePath::from_base_name("hxcnl7nh8wbfiwfzkfnac84cgnf766kc-"),
            Err(StorePathError::BadName {
                source: NameError::Empty,
                ..
            })
        ));
    }

    #[test]
    fn names_follow_nix_rules() {
        for ok in [
            "a",
            ".foo",
            "..foo",
            "foo-1.0",
            "a+b=c?d_e",
            ".a-b",
            &"x".repeat(211),
        ] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert!(matches!(
            validate_name(&"x".repeat(212)),
            Err(NameError::TooLong { .. })
        ));
        assert!(matches!(validate_name("."), Err(NameError::Invalid { .. })));
        assert!(matches!(
            validate_name(".."),
            Err(NameError::Invalid { .. })
        ));
        assert!(matches!(
            validate_name(".-x"),
            Err(NameError::DotComponent { component: ".", .. })
        ));
        assert!(matches!(
            validate_name("..-x"),
            Err(NameError::DotComponent {
                component: "..",
                ..
            })
        ));
        let err = validate_name("~wiggle~").unwrap_err();
        assert_eq!(
            err.nix_message(),
            "name '~wiggle~' contains illegal character '~'"
        );
        assert_eq!(
            err.to_string(),
            "name `~wiggle~` contains illegal character `~`"
        );
        assert!(matches!(
            validate_name("a b"),
            Err(NameError::IllegalChar { byte: b' ', .. })
        ));
        assert!(matches!(
            validate_name("caf\u{e9}"),
            Err(NameError::IllegalChar { byte: 0xc3, .. })
        ));
    }
}
