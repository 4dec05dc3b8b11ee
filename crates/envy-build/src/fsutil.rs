//! File-system chores around outputs: canonicalising metadata the way Nix does before a path
//! becomes valid (read-only, mtime 1, no setuid/setgid), deleting read-only trees, and moving
//! a tree out of the sandbox root (rename, or copy across file systems).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::BuildError;

/// Nix's `canonicalisePathMetaData`: files `0444` or `0555` (if the owner could execute),
/// directories `0555`, every mtime 1 (symlinks' too). Children first, so a directory is made
/// read-only last.
///
/// # Errors
/// An I/O error on any entry.
pub fn canonicalise(path: &Path) -> Result<(), BuildError> {
    let meta = fs_err::symlink_metadata(path)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        for entry in fs_err::read_dir(path)? {
            canonicalise(&entry?.path())?;
        }
    }
    if !ft.is_symlink() {
        let mode = if ft.is_dir() || meta.mode() & 0o100 != 0 {
            0o555
        } else {
            0o444
        };
        if meta.mode() & 0o7777 != mode {
            fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    set_mtime_one(path)
}

fn set_mtime_one(path: &Path) -> Result<(), BuildError> {
    let times = [
        libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        },
    ];
    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
        .map_err(|e| BuildError::Io {
            path: path.into(),
            source: e.into(),
        })?;
    // SAFETY: plain system call on a NUL-terminated path and a stack array.
    let res = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if res != 0 {
        return Err(BuildError::Io {
            path: path.into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Delete a file or tree even where it was made read-only. Missing paths are fine.
///
/// # Errors
/// An I/O error other than "not found".
pub fn delete_path(path: &Path) -> Result<(), BuildError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BuildError::Io {
                path: path.into(),
                source,
            });
        }
    };
    if meta.is_dir() {
        make_writable(path)?;
        fs_err::remove_dir_all(path)?;
    } else {
        fs_err::remove_file(path)?;
    }
    Ok(())
}

fn make_writable(dir: &Path) -> Result<(), BuildError> {
    let meta = fs_err::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Ok(());
    }
    if meta.mode() & 0o700 != 0o700 {
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(meta.mode() | 0o700))?;
    }
    for entry in fs_err::read_dir(dir)? {
        make_writable(&entry?.path())?;
    }
    Ok(())
}

/// Move a tree to `to` (which must not exist): a rename, or a copy then delete when the two
/// are on different file systems.
///
/// # Errors
/// An I/O error while renaming or copying.
pub fn move_path(from: &Path, to: &Path) -> Result<(), BuildError> {
    // std, not fs_err: we need the raw errno to spot EXDEV; the error below names the path.
    #[allow(clippy::disallowed_methods)]
    let renamed = std::fs::rename(from, to);
    match renamed {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_tree(from, to)?;
            delete_path(from)
        }
        Err(source) => Err(BuildError::Io {
            path: from.into(),
            source,
        }),
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    let meta = fs_err::symlink_metadata(from)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        fs_err::os::unix::fs::symlink(fs_err::read_link(from)?, to)?;
    } else if ft.is_dir() {
        fs_err::create_dir(to)?;
        for entry in fs_err::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        fs_err::set_permissions(to, meta.permissions())?;
    } else {
        fs_err::copy(from, to)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalise_then_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        fs_err::create_dir_all(out.join("bin")).unwrap();
        fs_err::write(out.join("bin/tool"), "#!").unwrap();
        fs_err::set_permissions(
            out.join("bin/tool"),
            std::fs::Permissions::from_mode(0o4775),
        )
        .unwrap();
        fs_err::write(out.join("data"), "x").unwrap();
        fs_err::os::unix::fs::symlink("data", out.join("link")).unwrap();
        canonicalise(&out).unwrap();
        let mode = |p: &str| fs_err::symlink_metadata(out.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(
            (mode(""), mode("bin"), mode("bin/tool"), mode("data")),
            (0o555, 0o555, 0o555, 0o444)
        );
        for p in ["", "bin/tool", "data", "link"] {
            assert_eq!(
                fs_err::symlink_metadata(out.join(p)).unwrap().mtime(),
                1,
                "{p}"
            );
        }
        let moved = tmp.path().join("moved");
        move_path(&out, &moved).unwrap();
        delete_path(&moved).unwrap();
        assert!(!moved.exists());
        delete_path(&moved).unwrap();
    }
}
