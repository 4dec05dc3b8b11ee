//! Locks between envy processes, all `flock`s on files in the state directory:
//!
//! - a path lock (`locks/<hash part>.lock`, exclusive) is held while a store path is being
//!   created — added, imported, substituted or built — or deleted, so two processes never
//!   write the same path and gc never deletes one that is being made. Lock files are removed
//!   when released; a waiter that then gets a removed file (marked by a byte written into it
//!   first) opens the path afresh.
//! - the gc lock (`gc.lock`) is held exclusively by a collection and shared by whoever makes
//!   a path valid or adds a temporary root, so gc sees either all or none of such a change.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::{StoreError, io_err};
use crate::sys;

/// An exclusive lock on one store path; released (and its file removed) on drop.
#[derive(Debug)]
pub struct PathLock {
    file: File,
    lock_path: PathBuf,
}

impl PathLock {
    /// Take the lock at `lock_path`; `None` without `block` when someone else holds it.
    pub(crate) fn acquire(lock_path: &Path, block: bool) -> Result<Option<PathLock>, StoreError> {
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(lock_path)
                .map_err(io_err(lock_path))?;
            if !sys::flock(&file, true, block).map_err(io_err(lock_path))? {
                return Ok(None);
            }
            // A non-empty lock file was released for deletion by its holder: start over.
            if file.metadata().map_err(io_err(lock_path))?.size() != 0 {
                continue;
            }
            return Ok(Some(PathLock {
                file,
                lock_path: lock_path.to_owned(),
            }));
        }
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        // Mark the file stale before unlinking, so a process already waiting on this inode
        // knows to retry; the lock itself goes with the descriptor.
        let _ = self.file.write_all(b"d");
        let _ = fs_err::remove_file(&self.lock_path);
    }
}

/// The gc lock, shared or exclusive; released on drop.
#[derive(Debug)]
pub struct GcLock {
    _file: File,
}

impl GcLock {
    pub(crate) fn acquire(path: &Path, exclusive: bool) -> Result<GcLock, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err(path))?;
        sys::flock(&file, exclusive, true).map_err(io_err(path))?;
        Ok(GcLock { _file: file })
    }
}
