//! Moving a built output out of the sandbox root to its place in the store: a rename, or a
//! copy across file systems. (Canonicalising and deleting store paths is envy-store's.)

use std::path::Path;

use envy_store::local::delete_path;

use crate::error::BuildError;

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
            Ok(delete_path(from)?)
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
    fn copy_tree_keeps_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("from");
        fs_err::create_dir_all(from.join("bin")).unwrap();
        fs_err::write(from.join("bin/tool"), "#!").unwrap();
        fs_err::set_permissions(
            from.join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs_err::os::unix::fs::symlink("bin/tool", from.join("link")).unwrap();
        let to = tmp.path().join("to");
        copy_tree(&from, &to).unwrap();
        let mode = fs_err::metadata(to.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs_err::read_link(to.join("link")).unwrap(),
            Path::new("bin/tool")
        );
        let moved = tmp.path().join("moved");
        move_path(&to, &moved).unwrap();
        assert!(!to.exists() && moved.join("bin/tool").is_file());
    }
}
