//! ed25519 keys and signatures in Nix's formats: keys are `name:base64`, with 64 bytes (seed
//! and public key) for a secret key and 32 for a public one; a signature is `name:base64`
//! of the 64-byte signature over a path's fingerprint.

use data_encoding::BASE64;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

use super::error::CacheError;

/// A secret key (`nix key generate-secret` format).
#[derive(Clone)]
pub struct SecretKey {
    pub name: String,
    key: SigningKey,
}

/// A public key (`nix key convert-secret-to-public`, `trusted-public-keys` format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub name: String,
    key: VerifyingKey,
}

fn split(key: &str) -> Result<(&str, Vec<u8>), CacheError> {
    let bad = |detail: &str| CacheError::BadKey {
        key: redact(key),
        detail: detail.to_owned(),
    };
    let (name, data) = key
        .trim()
        .split_once(':')
        .ok_or_else(|| bad("expected `name:base64`"))?;
    if name.is_empty() {
        return Err(bad("the key name is empty"));
    }
    let bytes = BASE64
        .decode(data.as_bytes())
        .map_err(|_| bad("the key is not valid base64"))?;
    Ok((name, bytes))
}

/// Never echo secret material into error messages.
fn redact(key: &str) -> String {
    match key.split_once(':') {
        Some((name, _)) => format!("{name}:…"),
        None => "…".to_owned(),
    }
}

impl SecretKey {
    /// Parse `name:base64(64 bytes)`.
    pub fn parse(text: &str) -> Result<SecretKey, CacheError> {
        let (name, bytes) = split(text)?;
        let bad = |detail: &str| CacheError::BadKey {
            key: redact(text),
            detail: detail.to_owned(),
        };
        let bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|_| bad("a secret key has 64 bytes"))?;
        let key = SigningKey::from_keypair_bytes(&bytes)
            .map_err(|_| bad("the public half does not match the secret"))?;
        Ok(SecretKey {
            name: name.to_owned(),
            key,
        })
    }

    /// A key from a 32-byte seed.
    #[must_use]
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> SecretKey {
        SecretKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
        }
    }

    /// `name:base64(64 bytes)`.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!(
            "{}:{}",
            self.name,
            BASE64.encode(&self.key.to_keypair_bytes())
        )
    }

    /// The matching public key.
    #[must_use]
    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// `name:base64(signature)` over `fingerprint`.
    #[must_use]
    pub fn sign(&self, fingerprint: &str) -> String {
        let sig = self.key.sign(fingerprint.as_bytes());
        format!("{}:{}", self.name, BASE64.encode(&sig.to_bytes()))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({}:…)", self.name)
    }
}

impl PublicKey {
    /// Parse `name:base64(32 bytes)`.
    pub fn parse(text: &str) -> Result<PublicKey, CacheError> {
        let (name, bytes) = split(text)?;
        let bad = |detail: &str| CacheError::BadKey {
            key: text.trim().to_owned(),
            detail: detail.to_owned(),
        };
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("a public key has 32 bytes"))?;
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid ed25519 public key"))?;
        Ok(PublicKey {
            name: name.to_owned(),
            key,
        })
    }

    /// `name:base64(32 bytes)`.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.name, BASE64.encode(self.key.as_bytes()))
    }

    /// Whether `signature` (`name:base64`) is this key's signature of `fingerprint`.
    #[must_use]
    pub fn verify(&self, fingerprint: &str, signature: &str) -> bool {
        let Some((name, data)) = signature.split_once(':') else {
            return false;
        };
        if name != self.name {
            return false;
        }
        let Ok(bytes) = BASE64.decode(data.as_bytes()) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(&bytes) else {
            return false;
        };
        self.key.verify(fingerprint.as_bytes(), &sig).is_ok()
    }
}

/// Whether any of `keys` signed `fingerprint` among `signatures`.
pub fn trusted<'a>(
    keys: &[PublicKey],
    fingerprint: &str,
    signatures: impl IntoIterator<Item = &'a String>,
) -> bool {
    signatures
        .into_iter()
        .any(|s| keys.iter().any(|k| k.verify(fingerprint, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let sk = SecretKey::from_seed("test-1", &[7u8; 32]);
        let again = SecretKey::parse(&sk.to_text()).unwrap();
        assert_eq!(again.to_text(), sk.to_text());
        let pk = PublicKey::parse(&sk.public().to_text()).unwrap();
        let sig = sk.sign("1;/nix/store/x;sha256:y;1;");
        assert!(sig.starts_with("test-1:"));
        assert!(pk.verify("1;/nix/store/x;sha256:y;1;", &sig));
        assert!(!pk.verify("1;/nix/store/x;sha256:y;2;", &sig));
        let other = SecretKey::from_seed("test-1", &[8u8; 32]).public();
        assert!(!other.verify("1;/nix/store/x;sha256:y;1;", &sig));
        assert!(trusted(&[other, pk], "1;/nix/store/x;sha256:y;1;", &[sig]));
    }

    #[test]
    fn rejects_bad_keys_without_leaking_them() {
        assert!(PublicKey::parse("nocolon").is_err());
        assert!(PublicKey::parse("k:AAAA").is_err());
        let err = SecretKey::parse("k:c2VjcmV0").unwrap_err().to_string();
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }
}
