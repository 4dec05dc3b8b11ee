//! A small file-based registry of valid paths, implementing [`BuildStore`] until envy-store's
//! `LocalStore` (SQLite database) lands; then the binary switches to it and this goes away.
//!
//! ```text
//! <state>/valid-v0/<store path base name>   one JSON record per valid path (temp + rename)
//! ```
//!
//! Registering several outputs writes one record each; each record appears atomically, and a
//! path without a record is invalid (deleted and rebuilt by the builder).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use envy_store::{ContentAddress, Hash, StoreDir, StorePath};
use serde_json::{Value, json};

use crate::build_store::{BuildStore, OutputInfo, StoreError};

/// Valid-path records in a directory.
#[derive(Debug, Clone)]
pub struct Registry {
    store_dir: StoreDir,
    dir: PathBuf,
}

impl Registry {
    /// Open (creating) the registry under a state directory.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(store_dir: StoreDir, state_dir: &Path) -> Result<Self, StoreError> {
        let dir = state_dir.join("valid-v0");
        fs_err::create_dir_all(&dir)?;
        fs_err::create_dir_all(store_dir.as_path())?;
        Ok(Self { store_dir, dir })
    }

    /// The record of a valid path.
    ///
    /// # Errors
    /// The record exists but cannot be read or parsed.
    pub fn info(&self, path: &StorePath) -> Result<Option<OutputInfo>, StoreError> {
        let file = self.dir.join(path.base_name());
        let text = match fs_err::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let v: Value = serde_json::from_str(&text)?;
        let s = |key: &str| v[key].as_str().unwrap_or_default().to_string();
        let references = v["references"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().and_then(|r| StorePath::from_base_name(r).ok()))
            .collect();
        Ok(Some(OutputInfo {
            path: path.clone(),
            nar_hash: Hash::parse_prefixed(&s("narHash"))?,
            nar_size: v["narSize"].as_u64().unwrap_or_default(),
            references,
            deriver: v["deriver"]
                .as_str()
                .and_then(|d| StorePath::from_base_name(d).ok()),
            ca: v["ca"].as_str().map(ContentAddress::parse).transpose()?,
        }))
    }

    /// Every valid path.
    ///
    /// # Errors
    /// The registry directory cannot be read.
    pub fn all(&self) -> Result<Vec<StorePath>, StoreError> {
        let mut paths = Vec::new();
        for entry in fs_err::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(path) = name
                .to_str()
                .and_then(|n| StorePath::from_base_name(n).ok())
            {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths)
    }

    /// Add a regular file to the store as a text path (how a `.drv` file is imported).
    ///
    /// # Errors
    /// The path cannot be computed or written.
    pub fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        let path = self
            .store_dir
            .text_path(name, contents, references.iter())?;
        if self.is_valid(&path)? {
            return Ok(path);
        }
        let real = self.store_dir.full_path(&path);
        crate::fsutil::delete_path(&real)?;
        fs_err::write(&real, contents)?;
        crate::fsutil::canonicalise(&real)?;
        let (nar_hash, nar_size) = envy_store::nar::nar_hash_path(&real)?;
        self.register_outputs(&[OutputInfo {
            path: path.clone(),
            nar_hash,
            nar_size,
            references: references.clone(),
            deriver: None,
            ca: None,
        }])?;
        Ok(path)
    }
}

impl BuildStore for Registry {
    fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    fn is_valid(&self, path: &StorePath) -> Result<bool, StoreError> {
        Ok(self.dir.join(path.base_name()).is_file())
    }

    fn references(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self.info(path)?.map(|i| i.references).unwrap_or_default())
    }

    fn register_outputs(&self, outputs: &[OutputInfo]) -> Result<(), StoreError> {
        for info in outputs {
            let record = json!({
                "narHash": info.nar_hash.to_prefixed_nix32(),
                "narSize": info.nar_size,
                "references": info.references.iter().map(StorePath::base_name).collect::<Vec<_>>(),
                "deriver": info.deriver.as_ref().map(StorePath::base_name),
                "ca": info.ca.as_ref().map(ToString::to_string),
            });
            let file = self.dir.join(info.path.base_name());
            let tmp = self.dir.join(format!(
                ".{}.tmp-{}",
                info.path.base_name(),
                std::process::id()
            ));
            let mut f = fs_err::File::create(&tmp)?;
            f.write_all(record.to_string().as_bytes())?;
            f.sync_all()?;
            fs_err::rename(&tmp, &file)?;
        }
        Ok(())
    }
}
