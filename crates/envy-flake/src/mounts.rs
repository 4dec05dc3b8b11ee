//! Lazily mounted sources. A fetched tree gets its store path (`<store>/<hash>-source`) but
//! is not copied: [`MountIO`] serves reads under that path from where the tree really is
//! (the user's work tree with its git filter, an unpacked archive in the fetch cache), so
//! `import "${self}/x.nix"` and `./x.nix` inside a flake read the original files. The copy
//! into the store happens only when a build needs the path ([`Mounts::ensure_in_store`]).
//! Reads are recorded by the evaluator under the store path; [`Mounts::real_path`] maps them
//! back for the watch list.
//!
//! A caller can also pin files ([`Mounts::pin`]): reads of that real file are served from the
//! bytes it gives, never from the disk. envy pins an allowed project's `flake.nix` and
//! `flake.lock` to the bytes its trust decision read, so what is evaluated is exactly what
//! was allowed, whatever happens to the files meanwhile.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use envy_eval::{EvalIO, FileType};
use envy_fetch::{FetchError, SourceTree};
use envy_store::{LocalStore, StoreDir, StorePath};

/// The mounted trees, by store path base name.
#[derive(Debug)]
pub struct Mounts {
    store_dir: StoreDir,
    trees: RefCell<HashMap<String, SourceTree>>,
    pins: RefCell<HashMap<PathBuf, Option<Rc<[u8]>>>>,
}

impl Mounts {
    /// No mounts yet, for store paths under `store_dir`.
    #[must_use]
    pub fn new(store_dir: StoreDir) -> Rc<Mounts> {
        Rc::new(Mounts {
            store_dir,
            trees: RefCell::new(HashMap::new()),
            pins: RefCell::new(HashMap::new()),
        })
    }

    /// Serve reads of the real file `path` from `bytes` (`None`: as if it did not exist).
    /// The path is also pinned under its canonical form, so a tree whose root is the
    /// resolved path of a linked directory sees the pin too.
    pub fn pin(&self, path: &Path, bytes: Option<Vec<u8>>) {
        let bytes: Option<Rc<[u8]>> = bytes.map(Rc::from);
        let mut pins = self.pins.borrow_mut();
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name())
            && let Ok(canonical) = std::fs::canonicalize(dir)
        {
            pins.insert(canonical.join(name), bytes.clone());
        }
        pins.insert(path.to_path_buf(), bytes);
    }

    /// The pinned bytes of the real file `path`, if it is pinned.
    #[must_use]
    pub fn pinned(&self, path: &Path) -> Option<Option<Vec<u8>>> {
        let pins = self.pins.borrow();
        if pins.is_empty() {
            return None;
        }
        let found = pins.get(path).or_else(|| {
            let canonical = std::fs::canonicalize(path.parent()?).ok()?;
            pins.get(&canonical.join(path.file_name()?))
        })?;
        Some(found.as_deref().map(<[u8]>::to_vec))
    }

    /// The store directory.
    #[must_use]
    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// Mount `tree` at its store path; returns that path as a string.
    pub fn mount(&self, tree: &SourceTree) -> String {
        self.trees
            .borrow_mut()
            .entry(tree.store_path().base_name().to_string())
            .or_insert_with(|| tree.clone());
        self.store_dir.print(tree.store_path())
    }

    /// The tree mounted at `path`, if any.
    #[must_use]
    pub fn tree(&self, path: &StorePath) -> Option<SourceTree> {
        self.trees.borrow().get(path.base_name()).cloned()
    }

    /// Every mounted tree.
    #[must_use]
    pub fn trees(&self) -> Vec<SourceTree> {
        self.trees.borrow().values().cloned().collect()
    }

    /// `message` with the store paths of mounted trees replaced by where their files really
    /// are: a mounted tree is read in place (a lazy copy), so its store path may not exist,
    /// and the user wants to open the file the message names.
    #[must_use]
    pub fn user_paths(&self, message: &str) -> String {
        let mut out = message.to_string();
        for tree in self.trees() {
            let at = self.store_dir().print(tree.store_path());
            out = out.replace(&at, &tree.root().display().to_string());
        }
        out
    }

    /// An evaluation error as a user reads it: frames inside the evaluator's own Nix code
    /// (`«nix-internal»`, such as `derivation`'s wrapper) left out, and the mounted trees'
    /// store paths named by their real files.
    #[must_use]
    pub fn render_error(&self, e: &envy_eval::EvalError, show_trace: bool) -> String {
        let mut e = e.clone();
        e.frames.retain(|f| {
            f.pos
                .source()
                .is_none_or(|s| !matches!(s.origin, envy_eval::Origin::Internal(_)))
        });
        self.user_paths(&e.render(show_trace))
    }

    /// Split a path into (mounted tree, path inside it), if it is under a mount.
    #[must_use]
    pub fn split(&self, path: &Path) -> Option<(SourceTree, PathBuf)> {
        let rest = path.strip_prefix(self.store_dir.as_path()).ok()?;
        let mut comps = rest.components();
        let Some(Component::Normal(base)) = comps.next() else {
            return None;
        };
        let tree = self.trees.borrow().get(base.to_str()?).cloned()?;
        Some((tree, comps.as_path().to_owned()))
    }

    /// Where a path under a mount really is (`None`: not under a mount, or left out of the
    /// tree by its filter).
    #[must_use]
    pub fn real_path(&self, path: &Path) -> Option<PathBuf> {
        let (tree, rest) = self.split(path)?;
        tree.resolve(&rest)
    }

    /// Copy the mounted tree at `path` into `store` if it is not there yet (a build needs
    /// it). `Ok(false)` when `path` is not a mount.
    pub fn ensure_in_store(
        &self,
        path: &StorePath,
        store: &LocalStore,
    ) -> Result<bool, FetchError> {
        match self.tree(path) {
            Some(tree) => tree.ensure_in_store(store).map(|_| true),
            None => Ok(false),
        }
    }
}

/// An [`EvalIO`] that serves mounted trees and passes everything else to `inner`.
pub struct MountIO {
    inner: Box<dyn EvalIO>,
    mounts: Rc<Mounts>,
}

impl MountIO {
    /// Wrap `inner`.
    #[must_use]
    pub fn new(inner: Box<dyn EvalIO>, mounts: Rc<Mounts>) -> MountIO {
        MountIO { inner, mounts }
    }

    /// The real path to use for `path`: mapped when under a mount.
    fn map(&self, path: &Path) -> io::Result<PathBuf> {
        match self.mounts.split(path) {
            None => Ok(path.to_owned()),
            Some((tree, rest)) => tree.resolve(&rest).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "No such file or directory")
            }),
        }
    }
}

impl EvalIO for MountIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let real = self.map(path)?;
        match self.mounts.pinned(&real) {
            Some(Some(bytes)) => Ok(bytes),
            Some(None) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "No such file or directory",
            )),
            None => self.inner.read_file(&real),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        let entries = self.inner.read_dir(&self.map(path)?)?;
        match self.mounts.split(path) {
            None => Ok(entries),
            Some((tree, rest)) => Ok(entries
                .into_iter()
                .filter(|(name, _)| tree.resolve(&rest.join(name)).is_some())
                .collect()),
        }
    }

    fn symlink_type(&self, path: &Path) -> io::Result<FileType> {
        self.inner.symlink_type(&self.map(path)?)
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        match self.mounts.split(path) {
            // Symlinks inside a mount resolve inside the store path, as in a store copy.
            Some(_) => {
                let mut p = path.to_path_buf();
                for _ in 0..40 {
                    match self.symlink_type(&p)? {
                        FileType::Symlink => {
                            let target = self.read_link(&p)?;
                            p = match p.parent() {
                                Some(dir) => dir.join(target),
                                None => target,
                            };
                        }
                        t => return Ok(t),
                    }
                }
                Err(io::Error::other("too many levels of symbolic links"))
            }
            None => self.inner.file_type(path),
        }
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        self.inner.read_link(&self.map(path)?)
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        self.inner.is_executable(&self.map(path)?)
    }

    fn env_var(&self, name: &str) -> Option<String> {
        self.inner.env_var(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn reads_under_a_mount_go_to_the_tree_and_respect_its_filter() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("sub")).unwrap();
        fs_err::write(dir.path().join("sub/a.nix"), "1").unwrap();
        fs_err::write(dir.path().join("untracked"), "u").unwrap();
        let store_dir = StoreDir::nix_default();
        let tracked = Arc::new(envy_fetch::TrackedFiles::from_nul_separated(b"sub/a.nix\0"));
        let tree = SourceTree::hash(dir.path(), Some(tracked), "source", &store_dir).unwrap();
        let mounts = Mounts::new(store_dir);
        let at = PathBuf::from(mounts.mount(&tree));
        let io = MountIO::new(Box::new(envy_eval::RealIO), mounts.clone());
        assert_eq!(io.read_file(&at.join("sub/a.nix")).unwrap(), b"1");
        assert!(io.read_file(&at.join("untracked")).is_err());
        let names: Vec<String> = io
            .read_dir(&at)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["sub"]);
        assert_eq!(
            mounts.real_path(&at.join("sub/a.nix")),
            Some(dir.path().join("sub/a.nix"))
        );
        assert_eq!(mounts.real_path(Path::new("/etc/passwd")), None);
        assert_eq!(io.file_type(&at.join("sub")).unwrap(), FileType::Directory);
    }

    #[test]
    fn pinned_files_are_served_from_their_bytes_whatever_the_disk_says() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("flake.nix"), "allowed").unwrap();
        let store_dir = StoreDir::nix_default();
        let tree = SourceTree::hash(dir.path(), None, "source", &store_dir).unwrap();
        let mounts = Mounts::new(store_dir);
        let at = PathBuf::from(mounts.mount(&tree));
        mounts.pin(&dir.path().join("flake.nix"), Some(b"allowed".to_vec()));
        mounts.pin(&dir.path().join("flake.lock"), None);
        fs_err::write(dir.path().join("flake.nix"), "swapped").unwrap();
        fs_err::write(dir.path().join("flake.lock"), "{}").unwrap();
        let io = MountIO::new(Box::new(envy_eval::RealIO), mounts.clone());
        assert_eq!(io.read_file(&at.join("flake.nix")).unwrap(), b"allowed");
        assert_eq!(
            io.read_file(&at.join("flake.lock")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
