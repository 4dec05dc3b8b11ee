//! Unpacking a NAR onto the file system (Nix's `restorePath`). Files are created new (never
//! over an existing file), with plain permissions (`0644`/`0755` before the umask) — or, for
//! the store, directly in canonical form (read-only, modification time 1), which saves a
//! second walk over the tree.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{NarError, NarSink, parse};

/// A sink that recreates the archive's tree at `root` (which must not exist).
pub struct RestoreSink {
    root: PathBuf,
    buf: Vec<u8>,
    canonical: bool,
}

/// Modification time of canonical store files.
const CANONICAL_TIME: i64 = 1;

impl RestoreSink {
    #[must_use]
    pub fn new(root: &Path) -> RestoreSink {
        RestoreSink {
            root: root.to_owned(),
            buf: Vec::new(),
            canonical: false,
        }
    }

    /// A sink that leaves the tree canonical as the store wants it: files `0444`/`0555`,
    /// directories `0555`, every modification time 1.
    #[must_use]
    pub fn canonical(root: &Path) -> RestoreSink {
        RestoreSink {
            root: root.to_owned(),
            buf: Vec::new(),
            canonical: true,
        }
    }

    fn target(&self, path: &[u8]) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(OsStr::from_bytes(path))
        }
    }
}

/// The error for failing to create `path` (`Exists` when something is in the way).
pub(super) fn create_err(path: &Path) -> impl FnOnce(io::Error) -> NarError + '_ {
    move |source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            NarError::Exists {
                path: path.to_owned(),
            }
        } else {
            NarError::Create {
                path: path.to_owned(),
                source,
            }
        }
    }
}

impl NarSink for RestoreSink {
    fn directory(&mut self, path: &[u8]) -> Result<(), NarError> {
        let target = self.target(path);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&target)
            .map_err(create_err(&target))
    }

    fn regular_file(
        &mut self,
        path: &[u8],
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> Result<(), NarError> {
        let target = self.target(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(match (self.canonical, executable) {
                (false, false) => 0o644,
                (false, true) => 0o755,
                (true, false) => 0o444,
                (true, true) => 0o555,
            })
            .open(&target)
            .map_err(create_err(&target))?;
        if size > 0 {
            if self.buf.is_empty() {
                self.buf = vec![0u8; 1 << 18];
            }
            loop {
                let n = match contents.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(NarError::Input(e)),
                };
                file.write_all(&self.buf[..n])
                    .map_err(create_err(&target))?;
            }
        }
        if self.canonical {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(CANONICAL_TIME as u64);
            file.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
                .map_err(create_err(&target))?;
            // The umask may have cleared bits of the requested mode; the store wants exactly it.
            let mode = if executable { 0o555 } else { 0o444 };
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(create_err(&target))?;
        }
        Ok(())
    }

    fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<(), NarError> {
        let link = self.target(path);
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &link).map_err(create_err(&link))?;
        if self.canonical {
            crate::sys::set_times_nofollow(&link, CANONICAL_TIME).map_err(create_err(&link))?;
        }
        Ok(())
    }

    fn end_directory(&mut self, path: &[u8]) -> Result<(), NarError> {
        if self.canonical {
            let dir = self.target(path);
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555))
                .map_err(create_err(&dir))?;
            crate::sys::set_times_nofollow(&dir, CANONICAL_TIME).map_err(create_err(&dir))?;
        }
        Ok(())
    }
}

/// Unpack the NAR read from `input` at `dest` (which must not exist yet).
pub fn restore(input: impl Read, dest: &Path) -> Result<(), NarError> {
    parse(input, &mut RestoreSink::new(dest))
}
