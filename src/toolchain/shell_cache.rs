//! The `envy shell` cache: a realised shell environment per request, so a second `envy shell`
//! with nothing changed starts with no evaluation and no build.
//!
//! ```text
//! <cache>/shell-v1/
//!   CACHEDIR.TAG
//!   <key>/                 key: sha256 over everything that decides the environment
//!     entry.json           ShellEntry (the EnvRecord and what the banner says), immutable
//!     nix-profile*         GC root of the environment (Nix backend)
//! ```
//!
//! The embedded engine's gc root is in envy's store instead: `<state>/roots/envy-shell-<key>`
//! points at the environment's `-env` store path, whose references are everything it needs.
//!
//! The key covers the package set's content (embedded in this binary), the host tools'
//! identities, the target, the `-p` packages, the backend and its store directory, so any
//! change to those is a new key. A hit is used only while the store paths it names still exist.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{HostTools, var};
use crate::env::record::EnvRecord;

/// Bumped when [`ShellEntry`] or the key's inputs change meaning.
const FORMAT: u32 = 2;

/// A toolchain target of `envy shell`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    #[value(name = "x86_64-linux-musl", alias = "x86_64-unknown-linux-musl")]
    X86_64,
    #[value(name = "aarch64-linux-musl", alias = "aarch64-unknown-linux-musl")]
    Aarch64,
}

impl Target {
    /// The machine's own architecture.
    pub fn host() -> Self {
        if std::env::consts::ARCH == "aarch64" {
            Self::Aarch64
        } else {
            Self::X86_64
        }
    }

    /// The full triple (nixpkgs' `hostPlatform.config`).
    pub fn triple(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-musl",
            Self::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The user-mode emulator that runs this target's binaries on another architecture.
    pub fn emulator(self) -> &'static str {
        match self {
            Self::X86_64 => "qemu-x86_64-static",
            Self::Aarch64 => "qemu-aarch64-static",
        }
    }
}

/// What `envy shell` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellRequest {
    pub target: Target,
    /// Attribute paths in the target's package set (`-p`), in order.
    pub packages: Vec<String>,
}

/// One realised shell environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellEntry {
    pub format: u32,
    /// The target triple.
    pub target: String,
    /// For the banner: `clang 14.0.6, musl 1.2.3`.
    pub toolchain: String,
    /// The environment, sanitized (no build-time leftovers such as `HOME` or `TMPDIR`).
    pub env: EnvRecord,
    /// Store paths the environment needs; the entry is stale when one is gone.
    pub requires: Vec<PathBuf>,
}

impl ShellEntry {
    /// An entry for `env` (sanitized here); `anchor` is the store path the backend's gc root
    /// keeps alive, if it is not one of the environment's own paths.
    pub fn new(
        target: Target,
        toolchain: String,
        mut env: EnvRecord,
        anchor: Option<PathBuf>,
    ) -> Self {
        env.sanitize();
        // The compiler wrapper and the stdenv are what every use of the environment touches.
        let requires = ["NIX_CC", "stdenv"]
            .iter()
            .filter_map(|v| var(&env, v))
            .map(PathBuf::from)
            .chain(anchor)
            .collect();
        Self {
            format: FORMAT,
            target: target.triple().to_owned(),
            toolchain,
            env,
            requires,
        }
    }
}

/// The cache key of a request.
/// The cache key of a request; `backend` names the backend and its store (store paths
/// depend on the store directory).
pub fn key(host_tools: &HostTools, request: &ShellRequest, backend: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "envy-shell-v{FORMAT}\0{}\0",
        crate::engine::pkgs::content_hash()
    ));
    h.update(host_tools.to_nix());
    h.update(format!("\0{}\0{backend}\0", request.target.triple()));
    for p in &request.packages {
        h.update(p.as_bytes());
        h.update([0]);
    }
    super::hex(&h.finalize())[..32].to_owned()
}

/// The directory of one entry.
pub fn entry_dir(cache_dir: &Path, key: &str) -> PathBuf {
    cache_dir.join("shell-v1").join(key)
}

/// The cached entry for `key`, if it exists, parses, and its store paths are all there.
pub fn load(cache_dir: &Path, key: &str) -> Option<ShellEntry> {
    let bytes = fs_err::read(entry_dir(cache_dir, key).join("entry.json")).ok()?;
    let entry: ShellEntry = serde_json::from_slice(&bytes).ok()?;
    (entry.format == FORMAT && entry.requires.iter().all(|p| p.exists())).then_some(entry)
}

/// Record `entry` under `key` (atomically; an existing entry is replaced).
pub fn store(cache_dir: &Path, key: &str, entry: &ShellEntry) -> std::io::Result<()> {
    let root = cache_dir.join("shell-v1");
    let tag = root.join("CACHEDIR.TAG");
    if !tag.exists() {
        fs_err::create_dir_all(&root)?;
        fs_err::write(
            &tag,
            "Signature: 8a477f597d28d172789f06886806bc55\n# envy's shell environment cache\n",
        )?;
    }
    let json = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    super::write_atomically(&entry_dir(cache_dir, key).join("entry.json"), &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::record::Variable;

    fn tools(version: &str) -> HostTools {
        HostTools {
            system: "x86_64-linux".into(),
            tools: vec![crate::toolchain::host_tools::HostTool {
                attr: "clang".into(),
                path: "/usr/bin/clang".into(),
                real_path: "/usr/lib/llvm-14/bin/clang".into(),
                version: version.into(),
                sha256: "00".into(),
            }],
        }
    }

    #[test]
    fn the_key_changes_with_every_input() {
        let req = ShellRequest {
            target: Target::X86_64,
            packages: vec![],
        };
        let base = key(&tools("14.0.6"), &req, "nix");
        assert_eq!(base, key(&tools("14.0.6"), &req, "nix"));
        assert_ne!(base, key(&tools("14.0.7"), &req, "nix"));
        assert_ne!(base, key(&tools("14.0.6"), &req, "embedded"));
        assert_ne!(
            base,
            key(
                &tools("14.0.6"),
                &ShellRequest {
                    target: Target::Aarch64,
                    ..req.clone()
                },
                "nix"
            )
        );
        assert_ne!(
            base,
            key(
                &tools("14.0.6"),
                &ShellRequest {
                    packages: vec!["hello".into()],
                    ..req
                },
                "nix"
            )
        );
    }

    #[test]
    fn entries_round_trip_and_go_stale_with_their_store_paths() {
        let cache = tempfile::tempdir().unwrap();
        let store_path = cache.path().join("store-path");
        fs_err::create_dir_all(&store_path).unwrap();
        let mut env = EnvRecord::default();
        env.variables.insert(
            "NIX_CC".into(),
            Variable::Exported(store_path.to_string_lossy().into_owned()),
        );
        env.variables
            .insert("TMPDIR".into(), Variable::Exported("/build".into()));
        let entry = ShellEntry::new(Target::X86_64, "clang 14".into(), env, None);
        assert!(
            !entry.env.variables.contains_key("TMPDIR"),
            "entries hold sanitized environments"
        );
        assert!(load(cache.path(), "k").is_none());
        store(cache.path(), "k", &entry).unwrap();
        assert_eq!(load(cache.path(), "k"), Some(entry));
        assert!(cache.path().join("shell-v1/CACHEDIR.TAG").is_file());
        fs_err::remove_dir(&store_path).unwrap();
        assert!(load(cache.path(), "k").is_none());
    }
}
