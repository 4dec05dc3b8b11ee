//! Where the store lives: the store directory and the state directory, from flags, the
//! environment (`ENVY_STORE_DIR`, `ENVY_STATE_DIR`), envy's config file (`store-dir` and
//! `state-dir` in `$XDG_CONFIG_HOME/envy/config.toml`, written by `envy store init`) or the
//! XDG data directory.

use std::path::{Path, PathBuf};

use crate::env_vars::{ENVY_STATE_DIR, ENVY_STORE_DIR};

/// A store's two directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Where store paths live (part of every store path's hash).
    pub store_dir: PathBuf,
    /// Database, gc roots, temporary roots and locks.
    pub state_dir: PathBuf,
}

impl StoreConfig {
    /// Explicit directories.
    #[must_use]
    pub fn new(store_dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            store_dir: store_dir.into(),
            state_dir: state_dir.into(),
        }
    }

    /// `store_dir` (e.g. from `--store-dir`) or `ENVY_STORE_DIR` or the config file's
    /// `store-dir` or `$XDG_DATA_HOME/envy/store`; `ENVY_STATE_DIR` or the config file's
    /// `state-dir` or `$XDG_DATA_HOME/envy/state` (the config file's `state-dir` only with its
    /// `store-dir`: a state directory belongs to one store). `None` when no data directory is
    /// known (no `HOME`).
    #[must_use]
    pub fn from_env(store_dir: Option<&Path>) -> Option<StoreConfig> {
        let env = |key: &str| {
            std::env::var_os(key)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let data = || dirs::data_dir().map(|d| d.join("envy"));
        let configured = ConfiguredStore::load();
        let explicit = store_dir
            .map(Path::to_owned)
            .or_else(|| env(ENVY_STORE_DIR));
        let (store_dir, configured_state) = match explicit {
            Some(dir) if configured.store_dir.as_deref() == Some(&dir) => {
                (dir, configured.state_dir)
            }
            Some(dir) => (dir, None),
            None => match configured.store_dir {
                Some(dir) => (dir, configured.state_dir),
                None => (data()?.join("store"), None),
            },
        };
        let state_dir = env(ENVY_STATE_DIR)
            .or(configured_state)
            .or_else(|| data().map(|d| d.join("state")))?;
        Some(StoreConfig {
            store_dir,
            state_dir,
        })
    }
}

/// `store-dir` and `state-dir` from `$XDG_CONFIG_HOME/envy/config.toml`, if set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfiguredStore {
    pub store_dir: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl ConfiguredStore {
    /// Read the config file; a missing or unreadable file configures nothing (the cache
    /// settings, read from the same file, report a broken one).
    #[must_use]
    pub fn load() -> ConfiguredStore {
        let Some(file) = crate::cache::CacheConfig::default_file() else {
            return ConfiguredStore::default();
        };
        let Ok(text) = fs_err::read_to_string(file) else {
            return ConfiguredStore::default();
        };
        ConfiguredStore::parse(&text)
    }

    #[must_use]
    pub fn parse(text: &str) -> ConfiguredStore {
        let Ok(table) = text.parse::<toml::Table>() else {
            return ConfiguredStore::default();
        };
        let dir = |key: &str| {
            table
                .get(key)
                .and_then(toml::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        ConfiguredStore {
            store_dir: dir("store-dir"),
            state_dir: dir("state-dir"),
        }
    }
}
