//! A fetched source tree, hashed but not copied ("hash eagerly, copy lazily"): where its files
//! are read from (the user's directory, a git work tree, an unpacked archive in the fetch
//! cache), which of them belong to it (a git work tree holds only tracked files), and its NAR
//! hash and `source` store path as Nix computes them. Evaluation reads the files in place;
//! the copy into a store happens only when a build needs the path, through
//! [`SourceTree::path_filter`] and the store's own `add_path`.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use envy_store::hash::HashSink;
use envy_store::nar::{self, PathFilter};
use envy_store::{FileIngestionMethod, Hash, HashAlgo, LocalStore, StoreDir, StorePath};

use crate::FetchError;

/// The files of a git work tree that belong to its source: `git ls-files` output, relative
/// paths as bytes. A directory belongs when some file below it does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackedFiles {
    files: BTreeSet<Vec<u8>>,
}

impl TrackedFiles {
    /// From NUL-separated relative paths (`git ls-files -z`).
    #[must_use]
    pub fn from_nul_separated(out: &[u8]) -> TrackedFiles {
        TrackedFiles {
            files: out
                .split(|&b| b == 0)
                .filter(|p| !p.is_empty())
                .map(<[u8]>::to_vec)
                .collect(),
        }
    }

    /// Whether `rel` (relative to the tree root) belongs: a listed file, or a directory with a
    /// listed file below it.
    #[must_use]
    pub fn includes(&self, rel: &[u8], is_dir: bool) -> bool {
        if is_dir {
            let mut prefix = rel.to_vec();
            prefix.push(b'/');
            self.files
                .range(prefix.clone()..)
                .next()
                .is_some_and(|f| f.starts_with(&prefix))
        } else {
            self.files.contains(rel)
        }
    }

    /// Whether a listed path is named `name` (in any directory).
    #[must_use]
    pub fn has_file_named(&self, name: &[u8]) -> bool {
        self.files
            .iter()
            .any(|f| f.rsplit(|&b| b == b'/').next() == Some(name))
    }

    /// The listed files below `dir/`, relative to it.
    #[must_use]
    pub fn below(&self, dir: &[u8]) -> TrackedFiles {
        let mut prefix = dir.to_vec();
        prefix.push(b'/');
        TrackedFiles {
            files: self
                .files
                .range(prefix.clone()..)
                .take_while(|f| f.starts_with(&prefix))
                .map(|f| f[prefix.len()..].to_vec())
                .collect(),
        }
    }

    /// How many files are listed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether none are.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// A hashed source tree (or a single file, for `file` inputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTree {
    root: PathBuf,
    tracked: Option<Arc<TrackedFiles>>,
    method: FileIngestionMethod,
    nar_hash: Hash,
    nar_size: u64,
    store_path: StorePath,
    store_dir: StoreDir,
}

impl SourceTree {
    /// Hash the tree at `root` (everything, or only `tracked` files) as a `name` source.
    pub fn hash(
        root: &Path,
        tracked: Option<Arc<TrackedFiles>>,
        name: &str,
        store_dir: &StoreDir,
    ) -> Result<SourceTree, FetchError> {
        let (nar_hash, nar_size) = hash_tree(root, tracked.as_deref(), |_| {})?;
        SourceTree::from_known_hash(root, tracked, name, store_dir, nar_hash, nar_size)
    }

    /// A tree whose NAR hash is already known (from a cache).
    pub fn from_known_hash(
        root: &Path,
        tracked: Option<Arc<TrackedFiles>>,
        name: &str,
        store_dir: &StoreDir,
        nar_hash: Hash,
        nar_size: u64,
    ) -> Result<SourceTree, FetchError> {
        let store_path = store_dir
            .make_fixed_output_path(name, FileIngestionMethod::Recursive, &nar_hash, [], false)
            .map_err(|e| FetchError::BadInput {
                input: root.display().to_string(),
                reason: format!("invalid store path name `{name}`: {e}"),
            })?;
        Ok(SourceTree {
            root: root.to_owned(),
            tracked,
            method: FileIngestionMethod::Recursive,
            nar_hash,
            nar_size,
            store_path,
            store_dir: store_dir.clone(),
        })
    }

    /// A single regular file added flat (a `file` input): its store path is the fixed-output
    /// path of its contents' sha256.
    pub fn flat_file(
        path: &Path,
        name: &str,
        store_dir: &StoreDir,
    ) -> Result<SourceTree, FetchError> {
        let contents = fs_err::read(path).map_err(FetchError::io(path))?;
        let mut sink = HashSink::new(HashAlgo::Sha256);
        nar::dump_bytes(&contents, false, &mut sink).map_err(|source| FetchError::Nar {
            path: path.to_owned(),
            source,
        })?;
        let (nar_hash, nar_size) = sink.finish();
        let store_path = store_dir
            .make_fixed_output_path(
                name,
                FileIngestionMethod::Flat,
                &Hash::sha256(&contents),
                [],
                false,
            )
            .map_err(|e| FetchError::BadInput {
                input: path.display().to_string(),
                reason: format!("invalid store path name `{name}`: {e}"),
            })?;
        Ok(SourceTree {
            root: path.to_owned(),
            tracked: None,
            method: FileIngestionMethod::Flat,
            nar_hash,
            nar_size,
            store_path,
            store_dir: store_dir.clone(),
        })
    }

    /// Where the files are read from.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The tracked-files filter of a git work tree.
    #[must_use]
    pub fn tracked(&self) -> Option<&Arc<TrackedFiles>> {
        self.tracked.as_ref()
    }

    /// How the tree goes into a store (recursive for trees, flat for `file` inputs).
    #[must_use]
    pub fn method(&self) -> FileIngestionMethod {
        self.method
    }

    /// sha256 of the tree's NAR.
    #[must_use]
    pub fn nar_hash(&self) -> &Hash {
        &self.nar_hash
    }

    /// Size of the tree's NAR.
    #[must_use]
    pub fn nar_size(&self) -> u64 {
        self.nar_size
    }

    /// The store path the tree has (or will have once copied).
    #[must_use]
    pub fn store_path(&self) -> &StorePath {
        &self.store_path
    }

    /// Map `sub`, a path relative to the store path, to the file to read, or `None` when it
    /// is not part of the tree (an untracked file of a git work tree, `..`).
    #[must_use]
    pub fn resolve(&self, sub: &Path) -> Option<PathBuf> {
        let mut rel = Vec::new();
        for c in sub.components() {
            match c {
                Component::Normal(n) => {
                    if !rel.is_empty() {
                        rel.push(b'/');
                    }
                    rel.extend_from_slice(n.as_bytes());
                }
                Component::CurDir => {}
                _ => return None,
            }
        }
        if rel.is_empty() {
            return Some(self.root.clone());
        }
        if self.method == FileIngestionMethod::Flat {
            return None;
        }
        let full = self.root.join(sub);
        if let Some(tracked) = &self.tracked {
            let is_dir = std::fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir());
            if !tracked.includes(&rel, is_dir) {
                return None;
            }
        }
        Some(full)
    }

    /// The filter to add the tree to a store with (`LocalStore::add_path`): leaves out what
    /// is not part of the tree.
    #[must_use]
    pub fn path_filter(&self) -> Box<PathFilter<'_>> {
        let root = self.root.clone();
        let tracked = self.tracked.clone();
        Box::new(
            move |path: &Path, meta: &std::fs::Metadata| match &tracked {
                None => true,
                Some(t) => path
                    .strip_prefix(&root)
                    .is_ok_and(|rel| t.includes(rel.as_os_str().as_bytes(), meta.is_dir())),
            },
        )
    }

    /// Write the tree's NAR to `out`.
    pub fn dump_nar(&self, out: &mut impl Write) -> Result<(), FetchError> {
        let nar_err = |source| FetchError::Nar {
            path: self.root.clone(),
            source,
        };
        if self.method == FileIngestionMethod::Flat {
            let contents = fs_err::read(&self.root).map_err(FetchError::io(&self.root))?;
            return nar::dump_bytes(&contents, false, out).map_err(nar_err);
        }
        let mut filter = self.path_filter();
        nar::dump_path_filtered(&self.root, out, &mut *filter).map_err(nar_err)
    }

    /// Make sure the tree is in `store` — the lazy copy, made only when a build needs the
    /// path: nothing is read when the path is valid already (reused by hash). The path is
    /// kept alive for the life of this process (a temporary gc root).
    pub fn ensure_in_store(&self, store: &LocalStore) -> Result<StorePath, FetchError> {
        let store_err = |message: String| FetchError::Store {
            path: self.root.clone(),
            message,
        };
        if store.store_dir() != &self.store_dir() {
            return Err(store_err(format!(
                "the tree was hashed for store `{}`, not `{}`",
                self.store_dir().as_str(),
                store.store_dir().as_str()
            )));
        }
        store
            .add_temp_root(&self.store_path)
            .map_err(|e| store_err(e.to_string()))?;
        if store
            .is_valid(&self.store_path)
            .map_err(|e| store_err(e.to_string()))?
        {
            return Ok(self.store_path.clone());
        }
        let info = match self.method {
            FileIngestionMethod::Flat => {
                store.add_path(&self.root, self.store_path.name(), self.method, None)
            }
            FileIngestionMethod::Recursive => {
                let mut filter = self.path_filter();
                store.add_path(
                    &self.root,
                    self.store_path.name(),
                    self.method,
                    Some(&mut *filter),
                )
            }
        }
        .map_err(|e| store_err(e.to_string()))?;
        if info.path != self.store_path {
            // The tree changed between hashing and copying.
            return Err(store_err(format!(
                "it changed since it was hashed (now `{}`, was `{}`)",
                info.path.base_name(),
                self.store_path.base_name()
            )));
        }
        Ok(info.path)
    }

    /// The store directory the store path was computed for.
    #[must_use]
    pub fn store_dir(&self) -> StoreDir {
        self.store_dir.clone()
    }

    /// The subtree at `rel` (a relative path input of a flake in this tree), hashed.
    pub fn subtree(
        &self,
        rel: &Path,
        name: &str,
        store_dir: &StoreDir,
    ) -> Result<SourceTree, FetchError> {
        let root = self.resolve(rel).ok_or_else(|| FetchError::OutsideParent {
            path: rel.display().to_string(),
        })?;
        if !root.exists() {
            return Err(FetchError::NotFound { path: root });
        }
        let tracked = self.tracked.as_ref().map(|t| {
            let rel_bytes = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.as_bytes().to_vec()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(&b'/');
            Arc::new(t.below(&rel_bytes))
        });
        SourceTree::hash(&root, tracked, name, store_dir)
    }
}

/// NAR-hash the tree at `root` (everything, or what `tracked` lists), calling `each` with the
/// `lstat` metadata of every entry included (the root too).
pub fn hash_tree(
    root: &Path,
    tracked: Option<&TrackedFiles>,
    mut each: impl FnMut(&std::fs::Metadata),
) -> Result<(Hash, u64), FetchError> {
    let meta = fs_err::symlink_metadata(root).map_err(FetchError::io(root))?;
    each(&meta);
    let mut sink = HashSink::new(HashAlgo::Sha256);
    let mut filter = |path: &Path, meta: &std::fs::Metadata| {
        let keep = match tracked {
            None => true,
            Some(t) => path
                .strip_prefix(root)
                .is_ok_and(|rel| t.includes(rel.as_os_str().as_bytes(), meta.is_dir())),
        };
        if keep {
            each(meta);
        }
        keep
    };
    nar::dump_path_filtered(root, &mut sink, &mut filter).map_err(|source| FetchError::Nar {
        path: root.to_owned(),
        source,
    })?;
    Ok(sink.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_files_include_parents_of_listed_files_only() {
        let t = TrackedFiles::from_nul_separated(b"a/b/c.nix\0flake.nix\0ab\0");
        assert!(t.includes(b"a", true));
        assert!(t.includes(b"a/b", true));
        assert!(t.includes(b"a/b/c.nix", false));
        assert!(!t.includes(b"a/b/d.nix", false));
        assert!(
            !t.includes(b"ab", true),
            "`ab` is a file, not a directory prefix"
        );
        assert!(!t.includes(b"x", true));
        assert!(t.has_file_named(b"c.nix"));
        assert_eq!(t.below(b"a").files.len(), 1);
        assert!(t.below(b"a").includes(b"b/c.nix", false));
    }

    #[test]
    fn tracked_filter_leaves_untracked_files_out_of_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreDir::nix_default();
        fs_err::write(dir.path().join("a"), "a").unwrap();
        let all = SourceTree::hash(dir.path(), None, "source", &store).unwrap();
        fs_err::write(dir.path().join("untracked"), "u").unwrap();
        fs_err::create_dir(dir.path().join("emptydir")).unwrap();
        let t = Arc::new(TrackedFiles::from_nul_separated(b"a\0"));
        let tracked = SourceTree::hash(dir.path(), Some(t), "source", &store).unwrap();
        assert_eq!(all.nar_hash(), tracked.nar_hash());
        assert_eq!(all.store_path(), tracked.store_path());
        assert!(tracked.resolve(Path::new("a")).is_some());
        assert!(tracked.resolve(Path::new("untracked")).is_none());
        assert!(tracked.resolve(Path::new("../x")).is_none());
        let mut nar = Vec::new();
        tracked.dump_nar(&mut nar).unwrap();
        assert_eq!(Hash::sha256(&nar), *tracked.nar_hash());
    }

    #[test]
    fn copied_lazily_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let store = LocalStore::open(&envy_store::StoreConfig::new(
            &store_dir,
            dir.path().join("state"),
        ))
        .unwrap();
        let src = dir.path().join("src");
        fs_err::create_dir_all(src.join("sub")).unwrap();
        fs_err::write(src.join("sub/a"), "a").unwrap();
        fs_err::write(src.join("untracked"), "u").unwrap();
        let t = Arc::new(TrackedFiles::from_nul_separated(b"sub/a\0"));
        let tree = SourceTree::hash(&src, Some(t), "source", store.store_dir()).unwrap();
        assert!(
            !store.is_valid(tree.store_path()).unwrap(),
            "hashing copies nothing"
        );
        let p = tree.ensure_in_store(&store).unwrap();
        let real = store.real_path(&p);
        assert_eq!(fs_err::read_to_string(real.join("sub/a")).unwrap(), "a");
        assert!(
            !real.join("untracked").exists(),
            "the filter applies to the copy"
        );
        // Reused by hash: a second call reads nothing (the source may even be gone).
        fs_err::remove_dir_all(&src).unwrap();
        assert_eq!(tree.ensure_in_store(&store).unwrap(), p);
    }

    #[test]
    fn store_path_is_the_source_path_of_the_nar_hash() {
        // `nix-store --add` of a directory holding one file `a` with contents `a`.
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("a"), "a").unwrap();
        let t = SourceTree::hash(dir.path(), None, "source", &StoreDir::nix_default()).unwrap();
        let mut nar = Vec::new();
        nar::dump_path(dir.path(), &mut nar).unwrap();
        assert_eq!(*t.nar_hash(), Hash::sha256(&nar));
        let expected = StoreDir::nix_default()
            .make_store_path("source", &Hash::sha256(&nar), "source")
            .unwrap();
        assert_eq!(*t.store_path(), expected);
    }
}
