//! `.narinfo` files: a store path's metadata in a binary cache, printed field for field as
//! Nix prints them, and parsed as Nix parses them.

use std::collections::BTreeSet;

use super::error::CacheError;
use crate::content_address::ContentAddress;
use crate::hash::{Hash, HashAlgo};
use crate::path_info::{ValidPathInfo, now};
use crate::store_dir::StoreDir;
use crate::store_path::StorePath;

/// The contents of a `.narinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarInfo {
    pub path: StorePath,
    /// Where the (compressed) NAR is, relative to the cache.
    pub url: String,
    /// `xz`, `zstd`, `bzip2`, `none`.
    pub compression: String,
    pub file_hash: Option<Hash>,
    pub file_size: Option<u64>,
    pub nar_hash: Hash,
    pub nar_size: u64,
    pub references: BTreeSet<StorePath>,
    pub deriver: Option<StorePath>,
    pub signatures: BTreeSet<String>,
    pub ca: Option<ContentAddress>,
}

impl NarInfo {
    /// The `.narinfo` text.
    #[must_use]
    pub fn to_text(&self, store_dir: &StoreDir) -> String {
        let mut out = String::new();
        out.push_str(&format!("StorePath: {}\n", store_dir.print(&self.path)));
        out.push_str(&format!("URL: {}\n", self.url));
        out.push_str(&format!("Compression: {}\n", self.compression));
        if let Some(h) = &self.file_hash {
            out.push_str(&format!("FileHash: {}\n", h.to_prefixed_nix32()));
        }
        if let Some(s) = self.file_size {
            out.push_str(&format!("FileSize: {s}\n"));
        }
        out.push_str(&format!("NarHash: {}\n", self.nar_hash.to_prefixed_nix32()));
        out.push_str(&format!("NarSize: {}\n", self.nar_size));
        let refs: Vec<&str> = self.references.iter().map(StorePath::base_name).collect();
        out.push_str(&format!("References: {}\n", refs.join(" ")));
        if let Some(d) = &self.deriver {
            out.push_str(&format!("Deriver: {d}\n"));
        }
        for sig in &self.signatures {
            out.push_str(&format!("Sig: {sig}\n"));
        }
        if let Some(ca) = &self.ca {
            out.push_str(&format!("CA: {ca}\n"));
        }
        out
    }

    /// Parse a `.narinfo` fetched from `url`.
    pub fn parse(store_dir: &StoreDir, text: &str, url: &str) -> Result<NarInfo, CacheError> {
        let bad = |line: usize, detail: String| CacheError::BadFile {
            url: url.to_owned(),
            file: ".narinfo".to_owned(),
            line,
            detail,
        };
        let (mut path, mut nar_url, mut compression) = (None, None, None);
        let (mut file_hash, mut file_size, mut nar_hash, mut nar_size) = (None, None, None, None);
        let (mut references, mut deriver, mut signatures, mut ca) =
            (BTreeSet::new(), None, BTreeSet::new(), None);
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| bad(n, format!("expected `Key: value`, got `{line}`")))?;
            let value = value.trim();
            let base = |v: &str| StorePath::from_base_name(v).map_err(|e| bad(n, e.to_string()));
            let hash = |v: &str| {
                let h = Hash::parse_prefixed(v).map_err(|e| bad(n, e.to_string()))?;
                if h.algo() == HashAlgo::Sha256 {
                    Ok(h)
                } else {
                    Err(bad(n, format!("`{v}` is not a sha256 hash")))
                }
            };
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| bad(n, format!("`{v}` is not a number")))
            };
            match key {
                "StorePath" => {
                    path = Some(store_dir.parse(value).map_err(|e| bad(n, e.to_string()))?)
                }
                "URL" => nar_url = Some(value.to_owned()),
                "Compression" => compression = Some(value.to_owned()),
                "FileHash" => file_hash = Some(hash(value)?),
                "FileSize" => file_size = Some(number(value)?),
                "NarHash" => nar_hash = Some(hash(value)?),
                "NarSize" => nar_size = Some(number(value)?),
                "References" => {
                    for r in value.split_whitespace() {
                        references.insert(base(r)?);
                    }
                }
                "Deriver" if value != "unknown-deriver" => deriver = Some(base(value)?),
                "Sig" => {
                    signatures.insert(value.to_owned());
                }
                "CA" => ca = Some(ContentAddress::parse(value).map_err(|e| bad(n, e.to_string()))?),
                _ => {}
            }
        }
        let missing = |field: &str| bad(0, format!("missing `{field}`"));
        Ok(NarInfo {
            path: path.ok_or_else(|| missing("StorePath"))?,
            url: nar_url.ok_or_else(|| missing("URL"))?,
            compression: compression.unwrap_or_else(|| "bzip2".to_owned()),
            file_hash,
            file_size,
            nar_hash: nar_hash.ok_or_else(|| missing("NarHash"))?,
            nar_size: nar_size.ok_or_else(|| missing("NarSize"))?,
            references,
            deriver,
            signatures,
            ca,
        })
    }

    /// The store's view of this path (for registration after import).
    #[must_use]
    pub fn to_path_info(&self) -> ValidPathInfo {
        ValidPathInfo {
            path: self.path.clone(),
            deriver: self.deriver.clone(),
            nar_hash: self.nar_hash,
            nar_size: self.nar_size,
            references: self.references.clone(),
            registration_time: now(),
            signatures: self.signatures.clone(),
            ca: self.ca,
            ultimate: false,
        }
    }

    /// Whether the path follows from its content address (then it needs no signature, as in
    /// Nix).
    #[must_use]
    pub fn is_content_addressed(&self, store_dir: &StoreDir) -> bool {
        let Some(ca) = &self.ca else { return false };
        let refs = self.references.iter().filter(|r| **r != self.path);
        let self_ref = self.references.contains(&self.path);
        store_dir
            .make_fixed_output_path_from_ca(self.path.name(), ca, refs, self_ref)
            .is_ok_and(|p| p == self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "StorePath: /nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo
URL: nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz
Compression: xz
FileHash: sha256:1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3
FileSize: 4029176
NarHash: sha256:09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5lnznbh42gfsci5hcbqqm
NarSize: 34878
References: g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar n5wkd9frr45pa74if5gpz9j7mifg27fh-foo
Deriver: g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv
Sig: asdf:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
Sig: qwer:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==
CA: fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh
";

    #[test]
    fn round_trips_the_manuals_example() {
        let sd = StoreDir::nix_default();
        let info = NarInfo::parse(&sd, EXAMPLE, "file:///c/x.narinfo").unwrap();
        assert_eq!(info.references.len(), 2);
        assert_eq!(info.signatures.len(), 2);
        assert_eq!(info.to_text(&sd), EXAMPLE);
    }

    #[test]
    fn empty_references_and_errors() {
        let sd = StoreDir::nix_default();
        let text = "StorePath: /nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo\nURL: nar/x.nar\nCompression: none\nNarHash: sha256:09ymwqf5i9q7d4dm7x4pjjcqqj0qrcp5lnznbh42gfsci5hcbqqm\nNarSize: 1\nReferences: \n";
        let info = NarInfo::parse(&sd, text, "u").unwrap();
        assert!(info.references.is_empty());
        assert_eq!(info.to_text(&sd), text);
        let err = NarInfo::parse(&sd, "URL: x\n", "u").unwrap_err();
        assert!(err.to_string().contains("StorePath"), "{err}");
        let err = NarInfo::parse(&StoreDir::new("/other").unwrap(), text, "u").unwrap_err();
        assert!(matches!(err, CacheError::BadFile { line: 1, .. }), "{err}");
    }
}
