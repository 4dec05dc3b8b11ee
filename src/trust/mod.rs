//! Trust: envy never evaluates a flake the user has not allowed.
//!
//! An allow is keyed by a sha256 over the project's absolute path and the exact bytes of its
//! `flake.nix` and `flake.lock` ([`Snapshot::key`]); any change to either file (or moving the
//! project) makes the project blocked again until `envy allow`. A deny is keyed by the path
//! alone: it records a refusal that holds until `envy allow`, whatever the files say.
//!
//! The gate ([`gate()`]) covers every flake envy evaluates for a project: its own, and a local
//! flake that `envy use` points at (with that flake's own allow). What passes the gate is a
//! [`Snapshot`] per flake, and the backend evaluates exactly those bytes. An allow carries over
//! to a new `flake.lock` only when envy itself wrote that lock while evaluating the allowed
//! snapshot ([`TrustStore::carry_over`]).
//!
//! ```text
//! $XDG_DATA_HOME/envy/trust-v1/
//!   allow/<project-key>/<trust-key>   the project path, for humans; one per allowed content
//!   deny/<project-key>                the project path
//! ```

mod gate;
mod snapshot;

use std::path::{Path, PathBuf};

use anyhow::Result;

pub use gate::{Gate, gate, selected_flake};
pub use snapshot::{Snapshot, SnapshotError, read_regular_up_to};

use crate::project::Project;
use crate::util::fsutil;

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

    /// The trust state of `project` as its files are now (read once, safely).
    #[cfg(test)]
    pub fn check(&self, project: &Project) -> Result<Trust> {
        Ok(self.check_snapshot(&Snapshot::read(project)?))
    }

    /// The trust state of the files in `snapshot`.
    pub fn check_snapshot(&self, snapshot: &Snapshot) -> Trust {
        let key = crate::project::key_for_path(&snapshot.root);
        if self.deny_path(&key).exists() {
            return Trust::Denied;
        }
        let allow_dir = self.allow_dir(&key);
        if allow_dir.join(snapshot.key()).exists() {
            Trust::Allowed
        } else if allow_dir.is_dir() {
            Trust::Changed
        } else {
            Trust::NotAllowed
        }
    }

    /// Allow `project` with its current `flake.nix` and `flake.lock`; lifts a deny.
    pub fn allow(&self, project: &Project) -> Result<()> {
        self.allow_snapshot(&Snapshot::read(project)?)
    }

    /// Allow exactly the files in `snapshot`; lifts a deny.
    pub fn allow_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
        let key = crate::project::key_for_path(&snapshot.root);
        let _lock = self.lock()?;
        let deny = self.deny_path(&key);
        if deny.exists() {
            fs_err::remove_file(&deny)?;
        }
        let path = self.allow_dir(&key).join(snapshot.key());
        fsutil::write_atomic(&path, path_line(&snapshot.root).as_bytes())
    }

    /// envy wrote `lock` as the new `flake.lock` while evaluating `from`: carry `from`'s allow
    /// over to it. Only an allowed `from` carries over; an allow of a flake without a lock
    /// is used up by the lock it produced (so deleting that lock later does not relock to
    /// whatever the inputs are then). Returns whether the allow carried over.
    pub fn carry_over(&self, from: &Snapshot, lock: Vec<u8>) -> Result<bool> {
        if self.check_snapshot(from) != Trust::Allowed {
            return Ok(false);
        }
        let to = from.with_lock(lock);
        self.allow_snapshot(&to)?;
        if from.flake_lock.is_none() {
            let key = crate::project::key_for_path(&from.root);
            let old = self.allow_dir(&key).join(from.key());
            let _lock = self.lock()?;
            if old.exists() {
                fs_err::remove_file(&old)?;
            }
        }
        Ok(true)
    }

    /// Record a refusal for `project` and drop every allow it had.
    pub fn deny(&self, project: &Project) -> Result<()> {
        let key = project.key();
        let _lock = self.lock()?;
        let allow_dir = self.allow_dir(&key);
        if allow_dir.is_dir() {
            fs_err::remove_dir_all(&allow_dir)?;
        }
        fsutil::write_atomic(&self.deny_path(&key), path_line(project.root()).as_bytes())
    }

    fn lock(&self) -> Result<fsutil::FileLock> {
        fsutil::FileLock::acquire(&self.dir.join("lock"))
    }

    fn allow_dir(&self, key: &str) -> PathBuf {
        self.dir.join("allow").join(key)
    }

    fn deny_path(&self, key: &str) -> PathBuf {
        self.dir.join("deny").join(key)
    }
}

fn path_line(root: &Path) -> String {
    format!("{}\n", root.display())
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
    fn a_lock_carries_over_only_from_an_allowed_snapshot_and_a_lockless_allow_is_used_up() {
        let (_tmp, project, store) = setup();
        let lockless = Snapshot::read(&project).unwrap();
        // Not allowed: nothing carries over.
        assert!(!store.carry_over(&lockless, b"{}".to_vec()).unwrap());
        store.allow(&project).unwrap();
        assert!(store.carry_over(&lockless, b"{\"v\":1}".to_vec()).unwrap());
        fs_err::write(project.flake_lock(), b"{\"v\":1}").unwrap();
        assert_eq!(store.check(&project).unwrap(), Trust::Allowed);
        // Deleting the lock does not bring back the lockless allow.
        fs_err::remove_file(project.flake_lock()).unwrap();
        assert_eq!(store.check(&project).unwrap(), Trust::Changed);
        // Another lock than the one envy wrote is not allowed.
        fs_err::write(project.flake_lock(), b"{\"v\":2}").unwrap();
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
