//! Binary cache settings: `substituters`, `trusted-public-keys`, `hashed-mirrors`,
//! `post-build-push` and `push-secret-key-file`, from envy's config file
//! (`$XDG_CONFIG_HOME/envy/config.toml`) and the environment (`ENVY_SUBSTITUTERS`,
//! `ENVY_TRUSTED_PUBLIC_KEYS`, `ENVY_PUSH_TO`, `ENVY_PUSH_SECRET_KEY_FILE`; a set variable,
//! even empty, wins over the file). Lists are TOML arrays of strings or space-separated
//! strings, as in Nix.
//!
//! ```toml
//! substituters = ["https://cache.example.org", "file:///srv/cache"]
//! trusted-public-keys = ["cache.example.org-1:AbC…="]
//! hashed-mirrors = ["https://tarballs.example.org"]
//! post-build-push = "https://cache.example.org"
//! push-secret-key-file = "/etc/envy/cache.sec"
//! ```

use std::path::{Path, PathBuf};

use super::error::CacheError;
use super::signing::PublicKey;
use crate::env_vars::{
    ENVY_PUSH_SECRET_KEY_FILE, ENVY_PUSH_TO, ENVY_SUBSTITUTERS, ENVY_TRUSTED_PUBLIC_KEYS,
};

/// The settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheConfig {
    pub substituters: Vec<String>,
    pub trusted_public_keys: Vec<String>,
    pub hashed_mirrors: Vec<String>,
    /// The cache every built path is pushed to (`post-build-push`).
    pub post_build_push: Option<String>,
    /// The key pushed paths are signed with (`push-secret-key-file`).
    pub push_secret_key_file: Option<PathBuf>,
}

impl CacheConfig {
    /// `$XDG_CONFIG_HOME/envy/config.toml` (or `~/.config/…`).
    #[must_use]
    pub fn default_file() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("envy").join("config.toml"))
    }

    /// Read `file` (a missing file is an empty config), then apply the environment.
    pub fn load(file: Option<&Path>) -> Result<CacheConfig, CacheError> {
        let mut config = match file {
            Some(path) => match fs_err::read_to_string(path) {
                Ok(text) => CacheConfig::parse(&text, path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => CacheConfig::default(),
                Err(e) => {
                    return Err(CacheError::Io {
                        path: path.to_owned(),
                        source: e,
                    });
                }
            },
            None => CacheConfig::default(),
        };
        if let Some(v) = std::env::var_os(ENVY_SUBSTITUTERS) {
            config.substituters = v
                .to_string_lossy()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = std::env::var_os(ENVY_TRUSTED_PUBLIC_KEYS) {
            config.trusted_public_keys = v
                .to_string_lossy()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = std::env::var_os(ENVY_PUSH_TO) {
            let v = v.to_string_lossy().trim().to_owned();
            config.post_build_push = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = std::env::var_os(ENVY_PUSH_SECRET_KEY_FILE) {
            config.push_secret_key_file = (!v.is_empty()).then(|| PathBuf::from(v));
        }
        Ok(config)
    }

    /// Parse the config file's text (keys other than these are left to others).
    pub fn parse(text: &str, path: &Path) -> Result<CacheConfig, CacheError> {
        let bad = |detail: String| CacheError::Config {
            path: path.to_owned(),
            detail,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.to_string()))?;
        let list = |key: &str| -> Result<Vec<String>, CacheError> {
            match table.get(key) {
                None => Ok(Vec::new()),
                Some(toml::Value::String(s)) => {
                    Ok(s.split_whitespace().map(str::to_owned).collect())
                }
                Some(toml::Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(format!("`{key}` must hold strings")))
                    })
                    .collect(),
                Some(_) => Err(bad(format!(
                    "`{key}` must be a string or an array of strings"
                ))),
            }
        };
        let string = |key: &str| -> Result<Option<String>, CacheError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(bad(format!("`{key}` must be a string"))),
            }
        };
        // A relative key file is relative to the config file, as users write it there.
        let key_file = string("push-secret-key-file")?.map(|f| {
            let f = PathBuf::from(f);
            match path.parent() {
                Some(dir) if f.is_relative() => dir.join(f),
                _ => f,
            }
        });
        Ok(CacheConfig {
            substituters: list("substituters")?,
            trusted_public_keys: list("trusted-public-keys")?,
            hashed_mirrors: list("hashed-mirrors")?,
            post_build_push: string("post-build-push")?,
            push_secret_key_file: key_file,
        })
    }

    /// The trusted keys, parsed.
    pub fn trusted_keys(&self) -> Result<Vec<PublicKey>, CacheError> {
        self.trusted_public_keys
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arrays_and_strings() {
        let text = "substituters = [\"file:///a\", \"https://b\"]\ntrusted-public-keys = \"k1:x k2:y\"\nother = 1\n";
        let c = CacheConfig::parse(text, Path::new("config.toml")).unwrap();
        assert_eq!(c.substituters, vec!["file:///a", "https://b"]);
        assert_eq!(c.trusted_public_keys, vec!["k1:x", "k2:y"]);
        assert!(c.hashed_mirrors.is_empty());
        assert_eq!(c.post_build_push, None);
        let text =
            "post-build-push = \"http://cache:8080\"\npush-secret-key-file = \"keys/cache.sec\"\n";
        let c = CacheConfig::parse(text, Path::new("/etc/envy/config.toml")).unwrap();
        assert_eq!(c.post_build_push.as_deref(), Some("http://cache:8080"));
        assert_eq!(
            c.push_secret_key_file.as_deref(),
            Some(Path::new("/etc/envy/keys/cache.sec"))
        );
        let err = CacheConfig::parse("post-build-push = [1]", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("post-build-push"), "{err}");
        let err = CacheConfig::parse("substituters = 3", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("c.toml"), "{err}");
    }
}
