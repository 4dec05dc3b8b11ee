//! What a trust decision reads of a project, and nothing more: `flake.nix` and `flake.lock`,
//! each read once, only when it is a regular file (following symbolic links, so a checkout's
//! link to a file inside it still works), and at most [`MAX_FILE`] bytes.
//!
//! A cloned repository is not trusted yet, so its files must not be able to hang or exhaust
//! the shell: a `flake.lock` that is a link to `/dev/tty`, `/dev/stdin` or a FIFO would block
//! a plain `read` (and eat what the user types), one to `/dev/zero` would read until memory
//! runs out. Files are opened non-blocking and checked with `fstat` before a byte is read.
//!
//! The bytes read here are the bytes evaluated: a [`Snapshot`] travels to the backend, which
//! evaluates exactly them (see `BuildRequest::pins`), so swapping `flake.nix` between the
//! check and the evaluation cannot load content nobody allowed.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::project::Project;
use crate::util::fsutil;

/// The largest `flake.nix` or `flake.lock` envy reads (nixpkgs' own `flake.nix` is 6 KiB,
/// large lock files a few hundred KiB).
pub const MAX_FILE: u64 = 8 << 20;

/// Why a project's files could not be read for a trust decision.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("`{}` is not a regular file (it is {kind})", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("`{}` is larger than {} MiB", path.display(), MAX_FILE >> 20)]
    TooLarge { path: PathBuf },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` does not exist", path.display())]
    Missing { path: PathBuf },
}

/// A project's `flake.nix` and `flake.lock` as they were read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The project's directory.
    pub root: PathBuf,
    /// `flake.nix`'s bytes.
    pub flake_nix: Vec<u8>,
    /// `flake.lock`'s bytes (`None`: there is none).
    pub flake_lock: Option<Vec<u8>>,
}

impl Snapshot {
    /// Read `project`'s `flake.nix` and `flake.lock`.
    pub fn read(project: &Project) -> Result<Snapshot, SnapshotError> {
        let nix_path = project.flake_nix();
        let flake_nix =
            read_regular(&nix_path)?.ok_or(SnapshotError::Missing { path: nix_path })?;
        let flake_lock = read_regular(&project.flake_lock())?;
        Ok(Snapshot {
            root: project.root().to_path_buf(),
            flake_nix,
            flake_lock,
        })
    }

    /// This snapshot with `flake.lock` replaced by `lock` (what envy just wrote).
    pub fn with_lock(&self, lock: Vec<u8>) -> Snapshot {
        Snapshot {
            flake_lock: Some(lock),
            ..self.clone()
        }
    }

    /// sha256 over the absolute path and the two files, each length-prefixed so that no two
    /// different inputs hash alike. The name of the allow record.
    pub fn key(&self) -> String {
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
        part(Some(self.root.as_os_str().as_bytes()));
        part(Some(&self.flake_nix));
        part(self.flake_lock.as_deref());
        fsutil::hex(&h.finalize())
    }

    /// The files as `(path, bytes)` for a backend to evaluate instead of reading them again
    /// (`None`: the file does not exist).
    pub fn pins(&self) -> [(PathBuf, Option<Vec<u8>>); 2] {
        [
            (
                self.root.join(crate::project::FLAKE_NIX),
                Some(self.flake_nix.clone()),
            ),
            (
                self.root.join(crate::project::FLAKE_LOCK),
                self.flake_lock.clone(),
            ),
        ]
    }
}

/// A regular file's bytes (`None`: it does not exist), refusing anything else and anything
/// over [`MAX_FILE`] without blocking: the file is opened with `O_NONBLOCK | O_NOCTTY` and
/// checked with `fstat` before reading.
pub fn read_regular(path: &Path) -> Result<Option<Vec<u8>>, SnapshotError> {
    read_regular_up_to(path, MAX_FILE)
}

/// [`read_regular`] with another cap (`u64::MAX`: none).
pub fn read_regular_up_to(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, SnapshotError> {
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(SnapshotError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    if meta.len() > cap {
        return Err(SnapshotError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The size can change under us: never read more than the cap.
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(SnapshotError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (Path::new("/dev/null"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            match read_regular(path) {
                Err(SnapshotError::NotRegular { kind: k, .. }) => assert_eq!(k, kind, "{path:?}"),
                other => panic!("{path:?}: {other:?}"),
            }
        }
        // A link to a device is judged by what it points to.
        let link = dir.path().join("flake.lock");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_regular(&link),
            Err(SnapshotError::NotRegular { .. })
        ));
    }

    #[test]
    fn regular_files_and_links_to_them_are_read_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("real");
        fs_err::write(&file, "abc").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_regular(&file).unwrap().unwrap(), b"abc");
        assert_eq!(read_regular(&link).unwrap().unwrap(), b"abc");
        assert_eq!(read_regular(&dir.path().join("none")).unwrap(), None);
    }

    #[test]
    fn files_over_the_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        let f = fs_err::File::create(&file).unwrap();
        f.set_len(MAX_FILE + 1).unwrap();
        assert!(matches!(
            read_regular(&file),
            Err(SnapshotError::TooLarge { .. })
        ));
    }
}
