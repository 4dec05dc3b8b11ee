//! Unpacking a NAR onto the file system (Nix's `restorePath`). Files are created new (never
//! over an existing file); permissions are plain (`0644`/`0755` before the umask) until the
//! store canonicalises them.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{NarError, NarSink, parse};

/// A sink that recreates the archive's tree at `root` (which must not exist).
pub struct RestoreSink {
    root: PathBuf,
    buf: Vec<u8>,
}

impl RestoreSink {
    #[must_use]
    pub fn new(root: &Path) -> RestoreSink {
        RestoreSink {
            root: root.to_owned(),
            buf: Vec::new(),
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

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> NarError + '_ {
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
            .mode(if executable { 0o755 } else { 0o644 })
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
        Ok(())
    }

    fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<(), NarError> {
        let link = self.target(path);
        std::os::unix::fs::symlink(OsStr::from_bytes(target), &link).map_err(create_err(&link))
    }
}

/// Unpack the NAR read from `input` at `dest` (which must not exist yet).
pub fn restore(input: impl Read, dest: &Path) -> Result<(), NarError> {
    parse(input, &mut RestoreSink::new(dest))
}
