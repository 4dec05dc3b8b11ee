//! The store directory and every store path Nix computes in it: text paths (`builtins.toFile`,
//! `.drv` files), source and fixed-output paths (flat and recursive, with references and
//! self-reference) and input-addressed output paths. A store path's hash covers the store
//! directory, so the same contents get different paths in `/nix/store` and in envy's store.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::content_address::{ContentAddress, ContentAddressMethod, FileIngestionMethod};
use crate::hash::{Hash, HashAlgo};
use crate::store_path::{HASH_BYTES, NameError, StorePath, StorePathError};

/// Nix's default store directory.
pub const NIX_STORE_DIR: &str = "/nix/store";

/// An absolute store directory without a trailing slash, such as `/nix/store`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreDir {
    dir: String,
}

/// A store directory that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreDirError {
    #[error("store directory `{dir}` is not an absolute path")]
    NotAbsolute { dir: String },
    #[error("store directory `{dir}` is not valid UTF-8")]
    NotUtf8 { dir: PathBuf },
}

impl StoreDir {
    /// A store directory; trailing slashes are dropped and `.`/`..`/`//` are not allowed.
    pub fn new(dir: impl AsRef<Path>) -> Result<StoreDir, StoreDirError> {
        let dir = dir.as_ref();
        let text = dir.to_str().ok_or_else(|| StoreDirError::NotUtf8 {
            dir: dir.to_owned(),
        })?;
        let trimmed = text.trim_end_matches('/');
        let canonical = trimmed
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..");
        if !text.starts_with('/') || trimmed.is_empty() || !canonical {
            return Err(StoreDirError::NotAbsolute {
                dir: text.to_owned(),
            });
        }
        Ok(StoreDir {
            dir: trimmed.to_owned(),
        })
    }

    /// `/nix/store`.
    #[must_use]
    pub fn nix_default() -> StoreDir {
        StoreDir {
            dir: NIX_STORE_DIR.to_owned(),
        }
    }

    /// The directory as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.dir
    }

    /// The directory as a path.
    #[must_use]
    pub fn as_path(&self) -> &Path {
        Path::new(&self.dir)
    }

    /// `<dir>/<hash>-<name>`.
    #[must_use]
    pub fn print(&self, path: &StorePath) -> String {
        format!("{}/{}", self.dir, path.base_name())
    }

    /// The full file-system path of a store path.
    #[must_use]
    pub fn full_path(&self, path: &StorePath) -> PathBuf {
        Path::new(&self.dir).join(path.base_name())
    }

    /// Parse a full store path (`<dir>/<hash>-<name>`, nothing after it).
    pub fn parse(&self, path: &str) -> Result<StorePath, StorePathError> {
        let not_in_store = || StorePathError::NotInStore {
            path: path.to_owned(),
            store_dir: self.dir.clone(),
        };
        let base = path
            .strip_prefix(self.dir.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(not_in_store)?;
        if base.contains('/') {
            return Err(not_in_store());
        }
        StorePath::from_base_name(base)
    }

    /// Parse a path inside the store, possibly below a store path (`<dir>/<hash>-<name>/bin/sh`),
    /// into the store path and the rest (`/bin/sh`, or empty).
    pub fn parse_with_subpath<'a>(
        &self,
        path: &'a str,
    ) -> Result<(StorePath, &'a str), StorePathError> {
        let not_in_store = || StorePathError::NotInStore {
            path: path.to_owned(),
            store_dir: self.dir.clone(),
        };
        let rest = path
            .strip_prefix(self.dir.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(not_in_store)?;
        let (base, sub) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        Ok((StorePath::from_base_name(base)?, sub))
    }

    /// Whether `path` is a store path or lies inside one.
    #[must_use]
    pub fn is_in_store(&self, path: &str) -> bool {
        self.parse_with_subpath(path).is_ok()
    }

    /// Nix's `makeStorePath`: the path for fingerprint `<ty>:sha256:<hex inner>:<dir>:<name>`.
    pub fn make_store_path(
        &self,
        ty: &str,
        inner: &Hash,
        name: &str,
    ) -> Result<StorePath, NameError> {
        let fingerprint = format!(
            "{ty}:{}:{}:{}:{name}",
            inner.algo(),
            inner.to_hex(),
            self.dir
        );
        let compressed = Hash::sha256(fingerprint.as_bytes()).compress(HASH_BYTES);
        StorePath::from_hash(&compressed.try_into().expect("20 bytes"), name)
    }

    /// `<ty>:<ref1>:<ref2>…[:self]`, references in store-path order.
    fn make_type<'a>(
        &self,
        ty: &str,
        references: impl IntoIterator<Item = &'a StorePath>,
        self_ref: bool,
    ) -> String {
        let refs: BTreeSet<&StorePath> = references.into_iter().collect();
        let mut out = ty.to_owned();
        for r in refs {
            out.push(':');
            out.push_str(&self.print(r));
        }
        if self_ref {
            out.push_str(":self");
        }
        out
    }

    /// A text path (`builtins.toFile`, `.drv` files): `hash` is the sha256 of the contents.
    pub fn make_text_path<'a>(
        &self,
        name: &str,
        hash: &Hash,
        references: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<StorePath, NameError> {
        debug_assert_eq!(hash.algo(), HashAlgo::Sha256, "text paths are sha256");
        self.make_store_path(&self.make_type("text", references, false), hash, name)
    }

    /// The text path of `contents`, hashing them here.
    pub fn text_path<'a>(
        &self,
        name: &str,
        contents: &[u8],
        references: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<StorePath, NameError> {
        self.make_text_path(name, &Hash::sha256(contents), references)
    }

    /// A fixed-output or source path. Recursive sha256 is a `source` path, which may carry
    /// references and a self-reference; every other combination is `output:out` over
    /// `fixed:out:<r:>algo:hex:` and has no references (these are ignored there, as Nix asserts
    /// they are empty).
    pub fn make_fixed_output_path<'a>(
        &self,
        name: &str,
        method: FileIngestionMethod,
        hash: &Hash,
        references: impl IntoIterator<Item = &'a StorePath>,
        self_ref: bool,
    ) -> Result<StorePath, NameError> {
        if method == FileIngestionMethod::Recursive && hash.algo() == HashAlgo::Sha256 {
            self.make_store_path(&self.make_type("source", references, self_ref), hash, name)
        } else {
            let r = if method == FileIngestionMethod::Recursive {
                "r:"
            } else {
                ""
            };
            let inner = format!("fixed:out:{r}{}:{}:", hash.algo(), hash.to_hex());
            self.make_store_path("output:out", &Hash::sha256(inner.as_bytes()), name)
        }
    }

    /// The path of a content-addressed object (text or fixed).
    pub fn make_fixed_output_path_from_ca<'a>(
        &self,
        name: &str,
        ca: &ContentAddress,
        references: impl IntoIterator<Item = &'a StorePath>,
        self_ref: bool,
    ) -> Result<StorePath, NameError> {
        match ca.method {
            ContentAddressMethod::Text => self.make_text_path(name, &ca.hash, references),
            ContentAddressMethod::Fixed(method) => {
                self.make_fixed_output_path(name, method, &ca.hash, references, self_ref)
            }
        }
    }

    /// An input-addressed output path: `output:<output>` over the derivation's hash modulo, named
    /// `<drv name>` for `out` and `<drv name>-<output>` otherwise.
    pub fn make_output_path(
        &self,
        output: &str,
        drv_hash: &Hash,
        drv_name: &str,
    ) -> Result<StorePath, NameError> {
        self.make_store_path(
            &format!("output:{output}"),
            drv_hash,
            &output_path_name(drv_name, output),
        )
    }
}

/// `name` for `out`, `name-output` otherwise.
#[must_use]
pub fn output_path_name(drv_name: &str, output: &str) -> String {
    if output == "out" {
        drv_name.to_owned()
    } else {
        format!("{drv_name}-{output}")
    }
}

/// The placeholder for a derivation's own output (`builtins.placeholder`):
/// `/` + nix32(sha256("nix-output:<output>")).
#[must_use]
pub fn hash_placeholder(output: &str) -> String {
    format!(
        "/{}",
        Hash::sha256(format!("nix-output:{output}").as_bytes()).to_nix32()
    )
}

/// The placeholder for an output of another content-addressed derivation whose path is not
/// known yet: `/` + nix32(sha256("nix-upstream-output:<drv hash part>:<output path name>")).
#[must_use]
pub fn downstream_placeholder(drv_path: &StorePath, output: &str) -> String {
    let drv_name = drv_path
        .name()
        .strip_suffix(".drv")
        .unwrap_or(drv_path.name());
    let clear = format!(
        "nix-upstream-output:{}:{}",
        drv_path.hash_part(),
        output_path_name(drv_name, output)
    );
    format!("/{}", Hash::sha256(clear.as_bytes()).to_nix32())
}

impl fmt::Display for StoreDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir)
    }
}

impl fmt::Debug for StoreDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreDir({})", self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_dir_forms() {
        assert_eq!(StoreDir::new("/nix/store/").unwrap().as_str(), "/nix/store");
        assert!(StoreDir::new("nix/store").is_err());
        assert!(StoreDir::new("/").is_err());
        assert!(StoreDir::new("/a/../b").is_err());
        assert!(StoreDir::new("/a//b").is_err());
    }

    #[test]
    fn parses_full_paths() {
        let sd = StoreDir::nix_default();
        let p = sd
            .parse("/nix/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv")
            .unwrap();
        assert_eq!(
            sd.print(&p),
            "/nix/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv"
        );
        assert!(matches!(
            sd.parse("/gnu/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv"),
            Err(StorePathError::NotInStore { .. })
        ));
        assert!(
            sd.parse("/nix/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv/bin")
                .is_err()
        );
        let (p2, sub) = sd
            .parse_with_subpath("/nix/store/hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv/bin/sh")
            .unwrap();
        assert_eq!((p2, sub), (p, "/bin/sh"));
    }

    #[test]
    fn placeholders() {
        // Nix documents the placeholder of `out`.
        assert_eq!(
            hash_placeholder("out"),
            "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"
        );
    }

    #[test]
    fn text_path_matches_nix() {
        // `nix-instantiate --eval -E 'builtins.toFile "foo" "bar"'` (Nix 2.8), in both stores.
        let p = StoreDir::nix_default()
            .text_path("foo", b"bar", [])
            .unwrap();
        assert_eq!(p.base_name(), "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo");
        let p = StoreDir::new("/tmp/nixt/store")
            .unwrap()
            .text_path("foo", b"bar", [])
            .unwrap();
        assert_eq!(p.base_name(), "cyvc9amaw7vd5dpqb6sxcz0ajiiyn371-foo");
    }
}
