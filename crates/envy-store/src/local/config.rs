//! Where the store lives: the store directory and the state directory, from flags, the
//! environment (`ENVY_STORE_DIR`, `ENVY_STATE_DIR`) or the XDG data directory.

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

    /// `store_dir` (e.g. from `--store-dir`) or `ENVY_STORE_DIR` or `$XDG_DATA_HOME/envy/store`;
    /// `ENVY_STATE_DIR` or `$XDG_DATA_HOME/envy/state`. `None` when no data directory is known
    /// (no `HOME`).
    #[must_use]
    pub fn from_env(store_dir: Option<&Path>) -> Option<StoreConfig> {
        let env = |key: &str| {
            std::env::var_os(key)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let data = || dirs::data_dir().map(|d| d.join("envy"));
        let store_dir = match store_dir {
            Some(dir) => dir.to_owned(),
            None => env(ENVY_STORE_DIR).or_else(|| data().map(|d| d.join("store")))?,
        };
        let state_dir = env(ENVY_STATE_DIR).or_else(|| data().map(|d| d.join("state")))?;
        Some(StoreConfig {
            store_dir,
            state_dir,
        })
    }
}
