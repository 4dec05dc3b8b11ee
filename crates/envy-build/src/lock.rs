//! Cross-process build locks: one `flock`ed file per output path, so that two envy processes
//! asking for the same output produce one build. The second waits, then finds the output
//! valid and builds nothing.
//!
//! Lock files live in their own directory (never in the store) and are kept: deleting a lock
//! file that another process is about to lock is how lock-file schemes go wrong.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::BuildError;

/// Held locks on a set of outputs; released on drop.
#[derive(Debug)]
pub struct OutputLocks {
    _held: Vec<Flock<File>>,
}

/// Lock files for outputs, in one directory.
#[derive(Debug, Clone)]
pub struct LockDir {
    dir: PathBuf,
}

impl LockDir {
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The lock file for an output, named by its store path's base name.
    #[must_use]
    pub fn file_for(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.lock"))
    }

    /// Try to lock every key without waiting: `None` if another process holds one of them.
    ///
    /// # Errors
    /// The lock directory or a lock file cannot be created.
    pub fn try_lock(&self, keys: &[String]) -> Result<Option<OutputLocks>, BuildError> {
        self.lock_all(keys, FlockArg::LockExclusiveNonblock)
    }

    /// Lock every key, waiting as long as it takes. Keys are locked in sorted order so two
    /// processes locking overlapping sets cannot deadlock.
    ///
    /// # Errors
    /// The lock directory or a lock file cannot be created.
    pub fn lock(&self, keys: &[String]) -> Result<OutputLocks, BuildError> {
        Ok(self
            .lock_all(keys, FlockArg::LockExclusive)?
            .expect("blocking lock always locks"))
    }

    fn lock_all(&self, keys: &[String], arg: FlockArg) -> Result<Option<OutputLocks>, BuildError> {
        fs_err::create_dir_all(&self.dir)?;
        let mut keys: Vec<&String> = keys.iter().collect();
        keys.sort();
        keys.dedup();
        let mut held = Vec::with_capacity(keys.len());
        for key in keys {
            let path = self.file_for(key);
            let file = open(&path)?;
            match Flock::lock(file, arg) {
                Ok(lock) => held.push(lock),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, errno)) => {
                    return Err(BuildError::Io {
                        path,
                        source: std::io::Error::from(errno),
                    });
                }
            }
        }
        Ok(Some(OutputLocks { _held: held }))
    }
}

fn open(path: &Path) -> Result<File, BuildError> {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    Ok(file.into_parts().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_locker_waits_for_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let locks = LockDir::new(tmp.path());
        let keys = vec!["abc-out".to_string(), "def-dev".to_string()];
        let held = locks.try_lock(&keys).unwrap().expect("free locks");
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process, as it would across processes.
        assert!(locks.try_lock(&keys[1..]).unwrap().is_none());
        drop(held);
        assert!(locks.try_lock(&keys).unwrap().is_some());
    }
}
