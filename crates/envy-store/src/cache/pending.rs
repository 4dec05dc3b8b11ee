//! The paths an automatic push could not upload, kept so that `envy store push URL` can
//! finish the job later: one file in the store's state directory, a line per path,
//! `URL<space>STORE-PATH`, rewritten whole (temporary file, fsync, rename) under a lock, so a
//! crash or two envy processes at once never lose or mangle an entry.
//!
//! ```text
//! <state>/push-v1/
//!   pending        http://cache.example.org /opt/envy/store/…-hello
//!   pending.lock   flock held while the file is read and rewritten
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::CacheError;
use super::transport::temp_name;
use crate::local::PathLock;
use crate::store_dir::StoreDir;
use crate::store_path::StorePath;

/// The leftovers file of one store.
#[derive(Debug, Clone)]
pub struct PendingPushes {
    dir: PathBuf,
    store_dir: StoreDir,
}

impl PendingPushes {
    /// The file for the store whose state directory is `state_dir`.
    #[must_use]
    pub fn new(state_dir: &Path, store_dir: &StoreDir) -> PendingPushes {
        PendingPushes {
            dir: state_dir.join("push-v1"),
            store_dir: store_dir.clone(),
        }
    }

    /// Where the entries are.
    #[must_use]
    pub fn file(&self) -> PathBuf {
        self.dir.join("pending")
    }

    /// Every entry, by cache URL.
    pub fn all(&self) -> Result<BTreeMap<String, BTreeSet<StorePath>>, CacheError> {
        let _lock = self.lock()?;
        self.read()
    }

    /// The paths left over for `url`.
    pub fn for_url(&self, url: &str) -> Result<BTreeSet<StorePath>, CacheError> {
        Ok(self.all()?.remove(key(url)).unwrap_or_default())
    }

    /// Remember `paths` as not pushed to `url`.
    pub fn add(&self, url: &str, paths: &[StorePath]) -> Result<(), CacheError> {
        if paths.is_empty() {
            return Ok(());
        }
        self.update(|entries| {
            entries
                .entry(key(url).to_owned())
                .or_default()
                .extend(paths.iter().cloned());
        })
    }

    /// Forget `paths` for `url` (they are in the cache now, or no longer valid).
    pub fn remove(&self, url: &str, paths: &[StorePath]) -> Result<(), CacheError> {
        if paths.is_empty() {
            return Ok(());
        }
        self.update(|entries| {
            if let Some(set) = entries.get_mut(key(url)) {
                for p in paths {
                    set.remove(p);
                }
                if set.is_empty() {
                    entries.remove(key(url));
                }
            }
        })
    }

    fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
        move |source| CacheError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn lock(&self) -> Result<PathLock, CacheError> {
        fs_err::create_dir_all(&self.dir).map_err(Self::io_err(&self.dir))?;
        let lock = PathLock::acquire(&self.dir.join("pending.lock"), true)?;
        Ok(lock.expect("a blocking lock is always taken"))
    }

    /// The entries on disk; lines that do not parse (another store dir, a damaged line) are
    /// dropped rather than failing every later push.
    fn read(&self) -> Result<BTreeMap<String, BTreeSet<StorePath>>, CacheError> {
        let file = self.file();
        let text = match fs_err::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Self::io_err(&file)(e)),
        };
        let mut entries: BTreeMap<String, BTreeSet<StorePath>> = BTreeMap::new();
        for line in text.lines() {
            let Some((url, path)) = line.split_once(' ') else {
                continue;
            };
            if let Ok(path) = self.store_dir.parse(path) {
                entries.entry(url.to_owned()).or_default().insert(path);
            }
        }
        Ok(entries)
    }

    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, BTreeSet<StorePath>>),
    ) -> Result<(), CacheError> {
        let _lock = self.lock()?;
        let mut entries = self.read()?;
        change(&mut entries);
        let mut text = String::new();
        for (url, paths) in &entries {
            for p in paths {
                text.push_str(&format!("{url} {}\n", self.store_dir.print(p)));
            }
        }
        let file = self.file();
        let tmp = temp_name(&file);
        let write = || -> std::io::Result<()> {
            let mut f = fs_err::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs_err::rename(&tmp, &file)
        };
        write().map_err(|e| {
            let _ = fs_err::remove_file(&tmp);
            Self::io_err(&file)(e)
        })
    }
}

/// The same cache however its URL is written: without options or a trailing slash.
fn key(url: &str) -> &str {
    url.split_once('?')
        .map_or(url, |(base, _)| base)
        .trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_and_are_kept_per_cache() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StoreDir::new("/opt/envy/store").unwrap();
        let pending = PendingPushes::new(dir.path(), &sd);
        let a = sd
            .parse("/opt/envy/store/7rjj86a15146cq1d3qy068lml7n8ykzm-a")
            .unwrap();
        let b = sd
            .parse("/opt/envy/store/8rjj86a15146cq1d3qy068lml7n8ykzm-b")
            .unwrap();
        assert!(pending.for_url("http://x").unwrap().is_empty());
        pending.add("http://x", &[a.clone(), b.clone()]).unwrap();
        pending.add("file:///y", std::slice::from_ref(&a)).unwrap();
        // A second handle (another process) reads what the first wrote.
        let again = PendingPushes::new(dir.path(), &sd);
        assert_eq!(
            again.for_url("http://x").unwrap(),
            BTreeSet::from([a.clone(), b.clone()])
        );
        again.remove("http://x/", std::slice::from_ref(&a)).unwrap();
        assert_eq!(pending.for_url("http://x").unwrap(), BTreeSet::from([b]));
        assert_eq!(pending.for_url("file:///y").unwrap(), BTreeSet::from([a]));
        // No temporary is left next to the file.
        let names: Vec<String> = fs_err::read_dir(dir.path().join("push-v1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["pending".to_owned()]);
    }
}
