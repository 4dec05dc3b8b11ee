//! Project detection: the nearest directory at or above the working directory that holds a
//! `flake.nix`. Nested projects resolve to the innermost one.
//!
//! Paths are the shell's logical paths (`$PWD`), never canonicalised, so a project reached
//! through a symbolic link is keyed by the path the user sees, and the fast path (which only
//! compares strings and calls `stat`) agrees with this module.

pub mod environment;
mod names;
pub mod settings;

pub use names::{FLAKE_LOCK, FLAKE_NIX};

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A project: a directory holding a `flake.nix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    root: PathBuf,
}

impl Project {
    /// The project at exactly `root` (which must hold a `flake.nix`).
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    /// The innermost project containing `dir` (`dir` itself included), if any.
    pub fn find(dir: &Path) -> Option<Self> {
        dir.ancestors()
            .find(|d| d.join(FLAKE_NIX).is_file())
            .map(|d| Self {
                root: d.to_path_buf(),
            })
    }

    /// The innermost project containing `dir`, or an error that says how to make one.
    pub fn find_or_err(dir: &Path) -> Result<Self> {
        Self::find(dir).with_context(|| {
            format!(
                "no `flake.nix` in `{}` or any directory above it\nhint: envy works in projects that have a `flake.nix`",
                dir.display()
            )
        })
    }

    /// The project's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/flake.nix`.
    pub fn flake_nix(&self) -> PathBuf {
        self.root.join(FLAKE_NIX)
    }

    /// `<root>/flake.lock` (may not exist).
    pub fn flake_lock(&self) -> PathBuf {
        self.root.join(FLAKE_LOCK)
    }

    /// A stable, file-name-safe key for this project: sha256 over its absolute path, 32 hex
    /// digits.
    pub fn key(&self) -> String {
        key_for_path(&self.root)
    }
}

/// The key of a project root path (see [`Project::key`]).
pub fn key_for_path(root: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut hex = crate::util::fsutil::sha256_hex(root.as_os_str().as_bytes());
    hex.truncate(32);
    hex
}

/// The directory the user is in: `$PWD` when it is absolute and names the current directory
/// (the shell's logical path), else the process's current directory.
pub fn current_dir() -> Result<PathBuf> {
    let pwd = std::env::var_os(crate::env::vars::PWD)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    if let Some(pwd) = &pwd
        && same_file(pwd, Path::new("."))
    {
        return Ok(pwd.clone());
    }
    match (std::env::current_dir(), pwd) {
        (Ok(cwd), _) => Ok(cwd),
        // The directory was deleted under the shell: its path is still the best answer.
        (Err(_), Some(pwd)) => Ok(pwd),
        (Err(e), None) => Err(e).context("cannot read the current directory"),
    }
}

/// Resolve a directory the user named on the command line (relative to [`current_dir`]),
/// without resolving symbolic links.
pub fn resolve_dir(dir: Option<&Path>) -> Result<PathBuf> {
    let cwd = current_dir()?;
    let Some(dir) = dir else { return Ok(cwd) };
    let out = normalize(&cwd.join(dir));
    if !out.is_dir() {
        anyhow::bail!("`{}` is not a directory", out.display());
    }
    Ok(out)
}

/// Remove `.` and `..` components without touching the file system (so symbolic links in the
/// path stay as the user wrote them, like the shell's logical `cd`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_flake_wins_and_subdirectories_belong_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let outer = tmp.path().join("outer");
        let inner = outer.join("inner");
        fs_err::create_dir_all(inner.join("src/deep")).unwrap();
        fs_err::write(outer.join(FLAKE_NIX), "{}").unwrap();
        fs_err::write(inner.join(FLAKE_NIX), "{}").unwrap();
        assert_eq!(
            Project::find(&inner.join("src/deep")).unwrap().root(),
            inner
        );
        assert_eq!(Project::find(&outer).unwrap().root(), outer);
        assert_eq!(Project::find(tmp.path()), None);
    }

    #[test]
    fn a_directory_named_flake_nix_is_not_a_project() {
        let tmp = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(tmp.path().join("flake.nix")).unwrap();
        assert_eq!(Project::find(tmp.path()), None);
    }

    #[test]
    fn keys_are_stable_and_distinct() {
        let a = key_for_path(Path::new("/a"));
        assert_eq!(a.len(), 32);
        assert_eq!(a, key_for_path(Path::new("/a")));
        assert_ne!(a, key_for_path(Path::new("/b")));
    }
}
