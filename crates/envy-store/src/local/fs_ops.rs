//! File-system work on store paths: canonicalising a finished path (read-only, modification
//! time 1, no setuid/setgid/sticky bits, as Nix leaves them) and deleting a path, which needs
//! its read-only directories made writable first.

// Every error here goes through `io_err`, which names the path, so plain `std::fs` is enough.
#![allow(clippy::disallowed_methods)]

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::error::{StoreError, io_err};
use crate::sys;

/// The modification time of every file in the store (Nix uses 1: "1970-01-01 00:00:01").
pub const CANONICAL_MTIME: i64 = 1;

/// Make `path` and everything under it canonical: files `0444` (`0555` if the owner could
/// execute them), directories `0555`, times `CANONICAL_MTIME`. Symlinks only get their times.
pub fn canonicalise(path: &Path) -> Result<(), StoreError> {
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    let ty = meta.file_type();
    if ty.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io_err(path))? {
            let entry = entry.map_err(io_err(path))?;
            canonicalise(&entry.path())?;
        }
        set_mode(path, 0o555, meta.permissions().mode())?;
    } else if ty.is_file() {
        let exec = meta.permissions().mode() & 0o100 != 0;
        set_mode(
            path,
            if exec { 0o555 } else { 0o444 },
            meta.permissions().mode(),
        )?;
    } else if !ty.is_symlink() {
        return Err(StoreError::UnsupportedFileType {
            path: path.to_owned(),
        });
    }
    sys::set_times_nofollow(path, CANONICAL_MTIME).map_err(io_err(path))
}

fn set_mode(path: &Path, mode: u32, current: u32) -> Result<(), StoreError> {
    if current & 0o7777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io_err(path))?;
    }
    Ok(())
}

/// Delete `path` (file, symlink or tree, read-only or not). A missing path is fine.
pub fn delete_path(path: &Path) -> Result<(), StoreError> {
    delete_path_counting(path).map(|_| ())
}

/// Delete `path` like `delete_path`, returning the bytes of file contents freed.
pub fn delete_path_counting(path: &Path) -> Result<u64, StoreError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(path)(e)),
    };
    if meta.is_dir() {
        delete_dir(path, meta.permissions().mode())
    } else {
        unlink(path).map(|()| meta.len())
    }
}

fn delete_dir(path: &Path, mode: u32) -> Result<u64, StoreError> {
    if mode & 0o700 != 0o700 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err(path))?;
    }
    let mut freed = 0;
    for entry in std::fs::read_dir(path).map_err(io_err(path))? {
        let entry = entry.map_err(io_err(path))?;
        let child = entry.path();
        // The entry's type comes with the directory listing: no extra `lstat` for it.
        let is_dir = entry.file_type().map_err(io_err(&child))?.is_dir();
        if is_dir {
            let mode = entry
                .metadata()
                .map_err(io_err(&child))?
                .permissions()
                .mode();
            freed += delete_dir(&child, mode)?;
        } else {
            freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
            unlink(&child)?;
        }
    }
    match std::fs::remove_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(freed),
    }
}

fn unlink(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Total size in bytes of the regular files under `path` (what deleting it frees).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| disk_usage(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn canonicalise_then_delete() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        fs_err::create_dir_all(root.join("d")).unwrap();
        fs_err::write(root.join("d/f"), b"x").unwrap();
        fs_err::write(root.join("x"), b"#!").unwrap();
        fs_err::set_permissions(root.join("x"), std::fs::Permissions::from_mode(0o4775)).unwrap();
        std::os::unix::fs::symlink("d/f", root.join("l")).unwrap();
        canonicalise(&root).unwrap();
        let mode = |p: &str| fs_err::symlink_metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode(""), 0o555);
        assert_eq!(mode("d"), 0o555);
        assert_eq!(mode("d/f"), 0o444);
        assert_eq!(mode("x"), 0o555);
        for p in ["", "d", "d/f", "x", "l"] {
            assert_eq!(
                fs_err::symlink_metadata(root.join(p)).unwrap().mtime(),
                1,
                "{p}"
            );
        }
        // Two files (1 + 2 bytes) and a symlink of 3.
        assert_eq!(disk_usage(&root), 6);
        delete_path(&root).unwrap();
        assert!(!root.exists());
        delete_path(&root).unwrap();
    }
}
