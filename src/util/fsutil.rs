//! Small file-system primitives every writer in envy uses: atomic replace (temp file, fsync,
//! rename), advisory locks, content hashes and sizes.
//!
//! Readers never see half a file: everything envy writes goes through [`write_atomic`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// Write `bytes` to `path` so that readers see either the old content or the new, never a
/// mix: a temporary file in the same directory, fsync, rename. Creates the parent directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .context("cannot write a file without a parent directory")?;
    fs_err::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> Result<()> {
        let mut file = fs_err::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs_err::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&tmp);
    }
    result
}

/// Write a content-addressed file unless it already exists (its name is its hash, so an
/// existing file already holds these bytes).
pub fn write_immutable(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    write_atomic(path, bytes)
}

/// An exclusive advisory lock on a file, released on drop.
pub struct FileLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl FileLock {
    /// Block until the lock on `path` (created if missing) is ours.
    pub fn acquire(path: &Path) -> Result<Self> {
        Ok(Self::take(path, true)?.expect("a blocking lock is always taken"))
    }

    /// The lock on `path` if nobody holds it now (`None`: someone does).
    pub fn try_acquire(path: &Path) -> Result<Option<Self>> {
        Self::take(path, false)
    }

    /// [`FileLock::try_acquire`], trying again for a moment: a process that only looks whether
    /// the lock is held (`envy status`, the hook) holds it for microseconds, and must not make
    /// the process that wants it for a long time give up.
    pub fn try_acquire_patiently(path: &Path) -> Result<Option<Self>> {
        for _ in 0..20 {
            if let Some(lock) = Self::take(path, false)? {
                return Ok(Some(lock));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(None)
    }

    fn take(path: &Path, wait: bool) -> Result<Option<Self>> {
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?
            .into_parts()
            .0;
        let arg = if wait {
            nix::fcntl::FlockArg::LockExclusive
        } else {
            nix::fcntl::FlockArg::LockExclusiveNonblock
        };
        match nix::fcntl::Flock::lock(file, arg) {
            Ok(lock) => Ok(Some(Self { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if !wait => Ok(None),
            Err((_, errno)) => {
                Err(errno).with_context(|| format!("cannot lock `{}`", path.display()))
            }
        }
    }
}

/// Update a file's modification time to now, creating it if needed: the hook's fast path
/// notices and re-decides at the next prompt.
pub fn touch(path: &Path) -> Result<()> {
    // Rewriting the content (a counter) guarantees a new mtime or size even on file systems
    // with coarse timestamps.
    let previous = fs_err::read(path).unwrap_or_default();
    let n: u64 = std::str::from_utf8(&previous)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    write_atomic(path, format!("{}\n", n + 1).as_bytes())
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Total size in bytes of a file, or of every file below a directory (symbolic links count
/// as their own size, never followed).
pub fn disk_size(path: &Path) -> u64 {
    let Ok(meta) = fs_err::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = fs_err::read_dir(path) else {
        return 0;
    };
    entries.flatten().map(|e| disk_size(&e.path())).sum()
}

/// The entries of a directory, or nothing when it does not exist.
pub fn list_dir(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub/file");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"two");
        assert_eq!(list_dir(&tmp.path().join("sub")), vec![path]);
    }

    #[test]
    fn touch_changes_the_signature() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("stamp");
        touch(&path).unwrap();
        let a = fs_err::read(&path).unwrap();
        touch(&path).unwrap();
        assert_ne!(a, fs_err::read(&path).unwrap());
    }

    #[test]
    fn lock_is_reentrant_across_handles_only_after_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let first = FileLock::acquire(&path).unwrap();
        drop(first);
        let _second = FileLock::acquire(&path).unwrap();
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
