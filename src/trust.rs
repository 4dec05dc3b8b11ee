//! Trust: envy never evaluates a flake the user has not allowed.
//!
//! An allow is keyed by a sha256 over the project's absolute path and the exact bytes of its
//! `flake.nix` and `flake.lock`; any change to either file (or moving the project) makes the
//! project blocked again until `envy allow`. A deny is keyed by the path alone: it records a
//! refusal that holds until `envy allow`, whatever the files say.
//!
//! ```text
//! $XDG_DATA_HOME/envy/trust-v1/
//!   allow/<project-key>/<trust-key>   the project path, for humans; one per allowed content
//!   deny/<project-key>                the project path
//! ```

use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::fsutil;
use crate::project::Project;

/// What the trust store says about a project as its files are now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Allowed with exactly these `flake.nix` / `flake.lock` contents.
    Allowed,
    /// Refused by `envy deny`.
    Denied,
    /// Never allowed.
    NotAllowed,
    /// Allowed once, but `flake.nix` or `flake.lock` changed since.
    Changed,
}

impl Trust {
    /// The word `envy status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Allowed => "allowed",
            Trust::Denied => "denied",
            Trust::NotAllowed => "not allowed",
            Trust::Changed => "changed since allowed",
        }
    }
}

/// The allow/deny records.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    /// The store under `dir` (`$XDG_DATA_HOME/envy/trust-v1`).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The trust state of `project` as its files are now.
    pub fn check(&self, project: &Project) -> Result<Trust> {
        let key = project.key();
        if self.deny_path(&key).exists() {
            return Ok(Trust::Denied);
        }
        let allow_dir = self.dir.join("allow").join(&key);
        if allow_dir.join(trust_key(project)?).exists() {
            Ok(Trust::Allowed)
        } else if allow_dir.is_dir() {
            Ok(Trust::Changed)
        } else {
            Ok(Trust::NotAllowed)
        }
    }

    /// Allow `project` with its current `flake.nix` and `flake.lock`; lifts a deny.
    pub fn allow(&self, project: &Project) -> Result<()> {
        let key = project.key();
        let deny = self.deny_path(&key);
        if deny.exists() {
            fs_err::remove_file(&deny)?;
        }
        let path = self.dir.join("allow").join(&key).join(trust_key(project)?);
        fsutil::write_atomic(&path, path_line(project).as_bytes())
    }

    /// Record a refusal for `project` and drop every allow it had.
    pub fn deny(&self, project: &Project) -> Result<()> {
        let key = project.key();
        let allow_dir = self.dir.join("allow").join(&key);
        if allow_dir.is_dir() {
            fs_err::remove_dir_all(&allow_dir)?;
        }
        fsutil::write_atomic(&self.deny_path(&key), path_line(project).as_bytes())
    }

    fn deny_path(&self, key: &str) -> PathBuf {
        self.dir.join("deny").join(key)
    }
}

fn path_line(project: &Project) -> String {
    format!("{}\n", project.root().display())
}

/// sha256 over the absolute path and the contents of `flake.nix` and `flake.lock`, each
/// length-prefixed so that no two different inputs hash alike.
pub fn trust_key(project: &Project) -> Result<String> {
    use std::os::unix::ffi::OsStrExt;
    let mut h = Sha256::new();
    h.update(b"envy-trust-v1\0");
    let mut part = |bytes: Option<&[u8]>| match bytes {
        Some(b) => {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
        None => h.update(u64::MAX.to_le_bytes()),
    };
    part(Some(project.root().as_os_str().as_bytes()));
    part(Some(&fs_err::read(project.flake_nix())?));
    part(read_optional(&project.flake_lock())?.as_deref());
    Ok(fsutil::hex(&h.finalize()))
}

/// A file's bytes, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs_err::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Project, TrustStore) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("proj");
        fs_err::create_dir_all(&root).unwrap();
        fs_err::write(root.join("flake.nix"), "{ outputs = _: {}; }").unwrap();
        let store = TrustStore::new(tmp.path().join("trust"));
        (tmp, Project::at(root), store)
    }

    #[test]
    fn allow_then_edit_then_allow_again() {
        let (_tmp, project, store) = setup();
        assert_eq!(store.check(&project).unwrap(), Trust::NotAllowed);
        store.allow(&project).unwrap();
        assert_eq!(store.check(&project).unwrap(), Trust::Allowed);
        fs_err::write(project.flake_nix(), "{ outputs = _: { x = 1; }; }").unwrap();
        assert_eq!(store.check(&project).unwrap(), Trust::Changed);
        store.allow(&project).unwrap();
        assert_eq!(store.check(&project).unwrap(), Trust::Allowed);
    }

    #[test]
    fn lock_file_is_part_of_the_key() {
        let (_tmp, project, store) = setup();
        store.allow(&project).unwrap();
        fs_err::write(project.flake_lock(), "{}").unwrap();
        assert_eq!(store.check(&project).unwrap(), Trust::Changed);
    }

    #[test]
    fn deny_wins_until_allow() {
        let (_tmp, project, store) = setup();
        store.allow(&project).unwrap();
        store.deny(&project).unwrap();
        assert_eq!(store.check(&project).unwrap(), Trust::Denied);
        store.allow(&project).unwrap();
        assert_eq!(store.check(&project).unwrap(), Trust::Allowed);
    }

    #[test]
    fn same_contents_at_another_path_are_not_allowed() {
        let (tmp, project, store) = setup();
        store.allow(&project).unwrap();
        let other = tmp.path().join("copy");
        fs_err::create_dir_all(&other).unwrap();
        fs_err::copy(project.flake_nix(), other.join("flake.nix")).unwrap();
        assert_eq!(store.check(&Project::at(other)).unwrap(), Trust::NotAllowed);
    }
}
