//! The fetch cache: what fetchers keep between runs so a locked input is not fetched or hashed
//! twice. Entries are written to a temporary directory and renamed into place, so readers
//! never see half an entry; a JSON `info.json` next to each tree records what was learnt
//! (NAR hash, `lastModified`, `revCount`, the download's validators).
//!
//! ```text
//! <cache_dir>/                     ($XDG_CACHE_HOME/envy/fetch-v1 for the envy binary)
//!   CACHEDIR.TAG
//!   git/<nix32 sha256(url)>/       bare clones of remote repositories
//!   git-export/<rev>[-submodules]/ info.json, tree/   a commit's files
//!   tarball/<nix32 sha256(url)>/   info.json, tree/<top>/ or file   unpacked downloads
//!   by-nar/<nix32 NAR hash>        where a tree with that NAR hash is (a path relative to
//!                                  the cache), so a locked input is found offline
//!   tmp/                           entries being built
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use envy_store::{Hash, nix32};
use serde_json::Value;

use crate::FetchError;

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by envy.\n";

/// The fetch cache rooted at one directory.
#[derive(Debug, Clone)]
pub struct FetchCache {
    dir: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl FetchCache {
    /// The cache at `dir` (created on first write).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> FetchCache {
        FetchCache { dir: dir.into() }
    }

    /// The root directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Nix's cache key for a URL: nix32 of its sha256.
    #[must_use]
    pub fn url_key(url: &str) -> String {
        nix32::encode(Hash::sha256(url.as_bytes()).digest())
    }

    /// The entry `kind/key`.
    #[must_use]
    pub fn entry(&self, kind: &str, key: &str) -> PathBuf {
        self.dir.join(kind).join(key)
    }

    /// Create the cache's root (with its `CACHEDIR.TAG`) and `kind/`.
    pub fn ensure(&self, kind: &str) -> Result<PathBuf, FetchError> {
        let d = self.dir.join(kind);
        fs_err::create_dir_all(&d).map_err(FetchError::io(&d))?;
        let tag = self.dir.join("CACHEDIR.TAG");
        if !tag.exists() {
            // Losing a race here only rewrites the same bytes.
            let _ = fs_err::write(&tag, CACHEDIR_TAG);
        }
        Ok(d)
    }

    /// A fresh empty directory to build an entry in.
    pub fn temp_dir(&self) -> Result<PathBuf, FetchError> {
        let tmp = self.ensure("tmp")?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let d = tmp.join(format!("{}-{n}", std::process::id()));
        if d.exists() {
            remove_tree(&d)?;
        }
        fs_err::create_dir(&d).map_err(FetchError::io(&d))?;
        Ok(d)
    }

    /// Move a finished entry built in `tmp` to `dest`, replacing what was there.
    pub fn install(&self, tmp: &Path, dest: &Path) -> Result<(), FetchError> {
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent).map_err(FetchError::io(parent))?;
        }
        if dest.exists() {
            let old = self.temp_dir()?;
            let aside = old.join("old");
            fs_err::rename(dest, &aside).map_err(FetchError::io(dest))?;
            let _ = remove_tree(&old);
        }
        match fs_err::rename(tmp, dest) {
            Ok(()) => Ok(()),
            // Someone else installed the same entry meanwhile: theirs is as good as ours.
            Err(_) if dest.exists() => remove_tree(tmp),
            Err(e) => Err(FetchError::Io {
                path: dest.to_owned(),
                source: e,
            }),
        }
    }

    /// `info.json` of an entry, if present and readable.
    #[must_use]
    pub fn read_info(entry: &Path) -> Option<Value> {
        let text = fs_err::read(entry.join("info.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Write `info.json` into an entry being built.
    pub fn write_info(entry: &Path, info: &Value) -> Result<(), FetchError> {
        let p = entry.join("info.json");
        fs_err::write(&p, info.to_string()).map_err(FetchError::io(&p))
    }
}

impl FetchCache {
    /// Remember that `root`, a whole tree (no tracked-files filter) inside one of this cache's
    /// entries, has the NAR hash `nar_hash`. Best effort: the index only saves fetches.
    pub fn index_nar_hash(&self, nar_hash: &Hash, root: &Path) {
        let Ok(rel) = root.strip_prefix(&self.dir) else {
            return;
        };
        let (Some(rel), Ok(dir)) = (rel.to_str(), self.ensure("by-nar")) else {
            return;
        };
        let key = nix32::encode(nar_hash.digest());
        let dest = dir.join(&key);
        if fs_err::read_to_string(&dest).is_ok_and(|old| old == rel) {
            return;
        }
        let tmp = dir.join(format!(
            ".{key}.{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if fs_err::write(&tmp, rel).is_err() || fs_err::rename(&tmp, &dest).is_err() {
            let _ = fs_err::remove_file(&tmp);
        }
    }

    /// The root of a cached tree whose NAR hash is `nar_hash`, with its NAR size, when the
    /// index names one and the entry holding it still records that hash (entries keyed by URL
    /// are replaced when the download changes).
    #[must_use]
    pub fn find_nar_hash(&self, nar_hash: &Hash) -> Option<(PathBuf, u64)> {
        let key = nix32::encode(nar_hash.digest());
        let rel = fs_err::read_to_string(self.dir.join("by-nar").join(key)).ok()?;
        let rel = Path::new(rel.trim_end());
        let mut parts = rel.components();
        let (Some(std::path::Component::Normal(kind)), Some(std::path::Component::Normal(name))) =
            (parts.next(), parts.next())
        else {
            return None;
        };
        let entry = self.dir.join(kind).join(name);
        let info = FetchCache::read_info(&entry)?;
        if info["narHash"].as_str()? != nar_hash.to_sri() {
            return None;
        }
        let root = self.dir.join(rel);
        root.exists()
            .then(|| (root, info["narSize"].as_u64().unwrap_or(0)))
    }
}

/// Remove a tree, making read-only directories writable first (unpacked archives may hold
/// some).
pub fn remove_tree(path: &Path) -> Result<(), FetchError> {
    use std::os::unix::fs::PermissionsExt;
    if fs_err::remove_dir_all(path).is_ok() || !path.exists() {
        return Ok(());
    }
    fn make_writable(p: &Path) {
        if let Ok(meta) = std::fs::symlink_metadata(p)
            && meta.is_dir()
        {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
    make_writable(path);
    fs_err::remove_dir_all(path).map_err(FetchError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_replaces_and_reads_back_info() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FetchCache::new(dir.path().join("c"));
        for n in 0..2 {
            let tmp = cache.temp_dir().unwrap();
            FetchCache::write_info(&tmp, &serde_json::json!({ "n": n })).unwrap();
            let dest = cache.entry("tarball", "k");
            cache.install(&tmp, &dest).unwrap();
            assert_eq!(FetchCache::read_info(&dest).unwrap()["n"], n);
        }
        assert!(dir.path().join("c/CACHEDIR.TAG").exists());
        assert_eq!(FetchCache::url_key("x").len(), 52);
    }
}
