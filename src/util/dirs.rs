//! Where envy keeps its files: XDG cache and data directories, each subdirectory versioned.
//!
//! ```text
//! $XDG_CACHE_HOME/envy/                    (~/.cache/envy; CACHEDIR.TAG: backup tools skip it)
//!   env-v1/<project-key>/
//!     root                                 the project's absolute path (for `gc` and listings)
//!     stamp                                touched by allow/deny/use/reload/rollback
//!     lock                                 flock: one build or cache update at a time
//!     current                              Pointer → the generation in use (atomic rename)
//!     builds/<key>                         Pointer per cache key seen (key → generation)
//!     generations/<n>.env                  Generation (postcard), immutable
//!     roots/                               the backend's GC roots for this project
//!   restore-v1/<id>                        values to restore on leaving, content-addressed
//!   watch-v1/<id>                          long watch lists, content-addressed
//!   live-v1/<pid>                          which generation a live shell uses (a lease)
//! $XDG_DATA_HOME/envy/                     (~/.local/share/envy)
//!   trust-v1/allow/<path-key>/<trust-key>  one file per allowed (path, flake.nix, flake.lock)
//!   trust-v1/deny/<path-key>               a recorded refusal
//!   projects-v1/<project-key>.json         per-project settings (`envy use`)
//! ```
//!
//! A project key is a sha256 over the project's absolute path (see `project.rs`). Nothing
//! here is read on the hook's fast path, which never resolves directories at all.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The content of `CACHEDIR.TAG` (<https://bford.info/cachedir/>).
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by envy.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

/// envy's two base directories.
#[derive(Debug, Clone)]
pub struct Dirs {
    cache: PathBuf,
    data: PathBuf,
}

impl Dirs {
    /// The user's directories: `ENVY_CACHE_DIR` or `$XDG_CACHE_HOME/envy`, and
    /// `$XDG_DATA_HOME/envy` (XDG variables default to directories under `HOME`).
    pub fn from_env() -> Result<Self> {
        use crate::env::vars::{ENVY_CACHE_DIR, XDG_CACHE_HOME, XDG_DATA_HOME};
        let data = dirs::data_dir().with_context(|| {
            format!("cannot find a data directory: neither `{XDG_DATA_HOME}` nor `HOME` is set")
        })?;
        if let Some(cache) = std::env::var_os(ENVY_CACHE_DIR).filter(|d| !d.is_empty()) {
            return Ok(Self::new(PathBuf::from(cache), data.join("envy")));
        }
        let cache = dirs::cache_dir().with_context(|| {
            format!("cannot find a cache directory: neither `{XDG_CACHE_HOME}` nor `HOME` is set")
        })?;
        Ok(Self::new(cache.join("envy"), data.join("envy")))
    }

    /// Explicit roots (tests).
    pub fn new(cache: PathBuf, data: PathBuf) -> Self {
        Self { cache, data }
    }

    /// `$XDG_CACHE_HOME/envy`.
    pub fn cache_root(&self) -> &Path {
        &self.cache
    }

    /// `$XDG_DATA_HOME/envy`.
    pub fn data_root(&self) -> &Path {
        &self.data
    }

    /// Per-project environment caches.
    pub fn env_dir(&self) -> PathBuf {
        self.cache.join("env-v1")
    }

    /// Content-addressed restore files.
    pub fn restore_dir(&self) -> PathBuf {
        self.cache.join("restore-v1")
    }

    /// Content-addressed watch lists too long for the state variable.
    pub fn watch_dir(&self) -> PathBuf {
        self.cache.join("watch-v1")
    }

    /// One lease per live shell.
    pub fn live_dir(&self) -> PathBuf {
        self.cache.join("live-v1")
    }

    /// Allow and deny records.
    pub fn trust_dir(&self) -> PathBuf {
        self.data.join("trust-v1")
    }

    /// Per-project settings.
    pub fn projects_dir(&self) -> PathBuf {
        self.data.join("projects-v1")
    }

    /// Create the cache root with its `CACHEDIR.TAG` (idempotent).
    pub fn ensure_cache_root(&self) -> Result<()> {
        let tag = self.cache.join("CACHEDIR.TAG");
        if !tag.exists() {
            fs_err::create_dir_all(&self.cache)?;
            crate::util::fsutil::write_atomic(&tag, CACHEDIR_TAG.as_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_root_gets_a_cachedir_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(tmp.path().join("c/envy"), tmp.path().join("d/envy"));
        dirs.ensure_cache_root().unwrap();
        dirs.ensure_cache_root().unwrap();
        let tag = fs_err::read_to_string(tmp.path().join("c/envy/CACHEDIR.TAG")).unwrap();
        assert!(tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55"));
        assert!(dirs.env_dir().ends_with("envy/env-v1"));
        assert!(dirs.trust_dir().starts_with(tmp.path().join("d")));
    }
}
