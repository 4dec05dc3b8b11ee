//! envy's toolchains: discovering the host's clang/LLVM tools, materialising the embedded
//! package set next to them, realising `envy shell` environments with a backend, capturing a
//! dev-shell derivation's environment (the `nix print-dev-env --json` shape), caching the
//! result, and entering it with the user's shell.
//!
//! The Nix side (stdenvs, compiler wrappers, musl) lives in `pkgs/` at the repository root and
//! is embedded by `crate::pkgs`; nothing here knows Nix language internals.

// The embedded backend builds capturing derivations with it once envy's engine is wired in;
// until then only its tests (against real Nix) use it.
#[allow(dead_code)]
pub mod capture;
pub mod dev_env;
pub mod host_tools;
pub mod nix_backend;
pub mod progress;
pub mod shell_cache;
pub mod spawn;

use std::path::{Path, PathBuf};

pub use dev_env::DevEnv;
pub use host_tools::HostTools;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Write `contents` to `path` through a temporary file in the same directory and a rename,
/// so readers never see half a file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    {
        use std::io::Write;
        let mut f = fs_err::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs_err::rename(&tmp, path)
}

/// envy's cache directory: `ENVY_CACHE_DIR`, else `$XDG_CACHE_HOME/envy`, else `~/.cache/envy`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(crate::env_vars::ENVY_CACHE_DIR).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    dirs::cache_dir().map(|d| d.join("envy"))
}
