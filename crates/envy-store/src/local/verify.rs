//! Checking the store against its database: every valid path present on disk, its NAR hash
//! and size still those registered; and what lies on disk without being valid.

use super::LocalStore;
use super::error::{StoreError, io_err};
use crate::hash::Hash;
use crate::nar;
use crate::store_path::StorePath;

/// Problems `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Valid paths checked.
    pub checked: usize,
    /// Valid paths missing from disk.
    pub missing: Vec<StorePath>,
    /// Valid paths whose contents changed: (path, registered NAR hash, actual NAR hash).
    pub corrupt: Vec<(StorePath, Hash, Hash)>,
    /// Store-path-named entries on disk that are not valid (gc removes them).
    pub unregistered: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing is wrong (unregistered leftovers are not an error).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty()
    }
}

impl LocalStore {
    /// Verify every valid path; with `check_contents`, rehash each one. `progress` gets
    /// (done, total) after each path.
    pub fn verify(
        &self,
        check_contents: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<VerifyReport, StoreError> {
        let valid = self.all_valid_paths()?;
        let mut report = VerifyReport::default();
        for (i, path) in valid.iter().enumerate() {
            let real = self.real_path(path);
            if std::fs::symlink_metadata(&real).is_err() {
                report.missing.push(path.clone());
            } else if check_contents {
                let info = self.path_info(path)?;
                match nar::nar_hash_path(&real) {
                    Ok((hash, size)) if hash == info.nar_hash && size == info.nar_size => {}
                    Ok((hash, _)) => report.corrupt.push((path.clone(), info.nar_hash, hash)),
                    Err(source) => {
                        return Err(StoreError::Nar {
                            path: self.store_dir.print(path),
                            source,
                        });
                    }
                }
            }
            report.checked += 1;
            progress(i + 1, valid.len());
        }
        let dir = self.store_dir.as_path();
        let valid: std::collections::BTreeSet<&StorePath> = valid.iter().collect();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let name = entry
                .map_err(io_err(dir))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if let Ok(p) = StorePath::from_base_name(&name)
                && !valid.contains(&p)
            {
                report.unregistered.push(name);
            }
        }
        report.unregistered.sort();
        Ok(report)
    }
}
