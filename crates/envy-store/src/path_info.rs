//! What the store knows about a valid path (Nix's `ValidPathInfo`): references, deriver, NAR
//! hash and size, registration time, signatures and content address; and the fingerprint that
//! binary-cache signatures sign.

use std::collections::BTreeSet;

use crate::content_address::ContentAddress;
use crate::hash::Hash;
use crate::store_dir::StoreDir;
use crate::store_path::StorePath;

/// Metadata of a valid store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPathInfo {
    pub path: StorePath,
    pub deriver: Option<StorePath>,
    /// sha256 of the path's NAR serialisation.
    pub nar_hash: Hash,
    pub nar_size: u64,
    pub references: BTreeSet<StorePath>,
    /// Seconds since the Unix epoch.
    pub registration_time: i64,
    /// `name:base64` signatures over `fingerprint`.
    pub signatures: BTreeSet<String>,
    pub ca: Option<ContentAddress>,
    /// Built locally (as opposed to substituted).
    pub ultimate: bool,
}

impl ValidPathInfo {
    /// Info with no deriver, signatures or content address, registered now.
    #[must_use]
    pub fn new(path: StorePath, nar_hash: Hash, nar_size: u64) -> ValidPathInfo {
        ValidPathInfo {
            path,
            deriver: None,
            nar_hash,
            nar_size,
            references: BTreeSet::new(),
            registration_time: now(),
            signatures: BTreeSet::new(),
            ca: None,
            ultimate: false,
        }
    }

    /// `1;<path>;<narHash>;<narSize>;<ref>,<ref>,…` with full paths and `sha256:<nix32>`: the
    /// text a binary cache signature signs.
    #[must_use]
    pub fn fingerprint(&self, store_dir: &StoreDir) -> String {
        let refs: Vec<String> = self.references.iter().map(|r| store_dir.print(r)).collect();
        format!(
            "1;{};{};{};{}",
            store_dir.print(&self.path),
            self.nar_hash.to_prefixed_nix32(),
            self.nar_size,
            refs.join(",")
        )
    }

    /// References other than the path itself.
    pub fn references_without_self(&self) -> impl Iterator<Item = &StorePath> {
        self.references.iter().filter(move |r| **r != self.path)
    }
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_format() {
        let sd = StoreDir::nix_default();
        let p = StorePath::from_base_name("hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv").unwrap();
        let r = StorePath::from_base_name("qjid1icj33y7d7f8b5lw02iqzqfck9cm-dep").unwrap();
        let mut info = ValidPathInfo::new(p.clone(), Hash::sha256(b""), 120);
        info.references.insert(r);
        info.references.insert(p);
        assert_eq!(
            info.fingerprint(&sd),
            "1;/nix/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv;\
             sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73;120;\
             /nix/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv,/nix/store/qjid1icj33y7d7f8b5lw02iqzqfck9cm-dep"
        );
    }
}
