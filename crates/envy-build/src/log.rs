//! Build logs, one per derivation, laid out as Nix lays them out:
//!
//! ```text
//! <log dir>/drvs/<first 2 chars of the .drv base name>/<rest>      while the build runs
//! <log dir>/drvs/<first 2 chars of the .drv base name>/<rest>.zst  once it has finished
//! ```
//!
//! A log is written plainly while the builder runs (so `envy log` can follow a long build)
//! and compressed with zstd when it ends, whether the build succeeded or failed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::BuildError;

/// The directory holding every derivation's log.
#[derive(Debug, Clone)]
pub struct LogDir {
    dir: PathBuf,
}

impl LogDir {
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The uncompressed log path of a derivation given by its `.drv` base name.
    #[must_use]
    pub fn plain_path(&self, drv_base_name: &str) -> PathBuf {
        let split = drv_base_name.len().min(2);
        let (head, tail) = drv_base_name.split_at(split);
        self.dir.join("drvs").join(head).join(tail)
    }

    fn compressed_path(&self, drv_base_name: &str) -> PathBuf {
        let mut path = self.plain_path(drv_base_name).into_os_string();
        path.push(".zst");
        path.into()
    }

    /// Start a new log for a derivation, replacing an older one.
    ///
    /// # Errors
    /// The log file cannot be created.
    pub fn create(&self, drv_base_name: &str) -> Result<LogWriter, BuildError> {
        let path = self.plain_path(drv_base_name);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        let file = fs_err::File::create(&path)?;
        Ok(LogWriter {
            file,
            path,
            compressed: self.compressed_path(drv_base_name),
        })
    }

    /// The whole log of a derivation (finished or still running).
    ///
    /// # Errors
    /// [`BuildError::NoLog`] when there is none; I/O errors reading it.
    pub fn read(&self, drv_base_name: &str) -> Result<Vec<u8>, BuildError> {
        let plain = self.plain_path(drv_base_name);
        if plain.exists() {
            return Ok(fs_err::read(plain)?);
        }
        let compressed = self.compressed_path(drv_base_name);
        if !compressed.exists() {
            return Err(BuildError::NoLog {
                path: drv_base_name.to_string(),
            });
        }
        let mut out = Vec::new();
        zstd::Decoder::new(fs_err::File::open(&compressed)?)
            .and_then(|mut d| d.read_to_end(&mut out))
            .map_err(|source| BuildError::Io {
                path: compressed,
                source,
            })?;
        Ok(out)
    }

    /// How many builds of this derivation have been logged (0 or 1: a log is replaced by the
    /// next build). Tests use it to count builds.
    #[must_use]
    pub fn exists(&self, drv_base_name: &str) -> bool {
        self.plain_path(drv_base_name).exists() || self.compressed_path(drv_base_name).exists()
    }
}

/// An open log being written by a running build.
#[derive(Debug)]
pub struct LogWriter {
    file: fs_err::File,
    path: PathBuf,
    compressed: PathBuf,
}

impl LogWriter {
    /// Append builder output.
    ///
    /// # Errors
    /// The write fails (disk full…).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BuildError> {
        Ok(self.file.write_all(bytes)?)
    }

    /// The plain log's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Compress the finished log in place (temp file + rename, then drop the plain one).
    ///
    /// # Errors
    /// Reading, compressing or renaming fails.
    pub fn finish(self) -> Result<(), BuildError> {
        drop(self.file);
        let data = fs_err::read(&self.path)?;
        let packed = zstd::encode_all(&data[..], 3).map_err(|source| BuildError::Io {
            path: self.path.clone(),
            source,
        })?;
        let mut tmp = self.compressed.clone().into_os_string();
        tmp.push(".tmp");
        fs_err::write(&tmp, packed)?;
        fs_err::rename(&tmp, &self.compressed)?;
        fs_err::remove_file(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let logs = LogDir::new(tmp.path());
        let name = "qjid1icj33y7d7f8b5lw02iqzqfck9cm-triv.drv";
        assert!(matches!(logs.read(name), Err(BuildError::NoLog { .. })));
        let mut log = logs.create(name).unwrap();
        log.write(b"hello\n").unwrap();
        assert_eq!(
            logs.read(name).unwrap(),
            b"hello\n",
            "readable while running"
        );
        log.write(b"world\n").unwrap();
        log.finish().unwrap();
        assert!(
            tmp.path()
                .join("drvs/qj/id1icj33y7d7f8b5lw02iqzqfck9cm-triv.drv.zst")
                .is_file()
        );
        assert_eq!(logs.read(name).unwrap(), b"hello\nworld\n");
    }
}
