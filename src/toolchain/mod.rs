//! envy's toolchains: discovering the host's clang/LLVM tools, materialising the embedded
//! package set next to them, realising `envy shell` environments (with envy's own engine,
//! `crate::engine`, or the installed Nix), caching the result as an [`EnvRecord`], and
//! entering it with the user's shell.
//!
//! The Nix side (stdenvs, compiler wrappers, musl) lives in `pkgs/` at the repository root and
//! is embedded by `crate::engine::pkgs`; nothing here knows Nix language internals.

pub mod embedded;
pub mod host_tools;
pub mod nix_backend;
pub mod shell_cache;
pub mod spawn;

use std::path::Path;

pub use host_tools::HostTools;

use crate::env::record::{EnvRecord, Variable};

/// A string variable's value (exported or not).
pub fn var<'a>(env: &'a EnvRecord, name: &str) -> Option<&'a str> {
    match env.variables.get(name)? {
        Variable::Exported(v) | Variable::Var(v) => Some(v),
        _ => None,
    }
}

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
