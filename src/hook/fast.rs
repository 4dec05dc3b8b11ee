//! The fast path: decide, before clap or anything else starts, whether `envy export` has
//! nothing to do. Budget: a few `getenv` and `stat` calls; no file reads (except a long watch
//! list's one small file), no directory lookups, no allocation worth the name.
//!
//! Unchanged means: `$PWD` is still inside the state's root, no `flake.nix` appeared between
//! `$PWD` and that root, the shell is the one that applied the state, and the digest over
//! every watched path's `stat` signature and watched variable is the same. With no state at
//! all, unchanged means no `flake.nix` in `$PWD` or any directory above it.

use std::path::Path;

use super::state::{State, digest};
use crate::env::vars::{__ENVY_PID, __ENVY_STATE, PWD};
use crate::project::FLAKE_NIX;
use crate::shell::Shell;

/// The shell named on `envy export`'s command line, if it is one the hook serves.
pub fn export_target(shell: &std::ffi::OsStr) -> Option<Shell> {
    Some(match shell.to_str()? {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        "nu" => Shell::Nu,
        "elvish" => Shell::Elvish,
        "xonsh" => Shell::Xonsh,
        "json" => Shell::Json,
        _ => return None,
    })
}

/// `true` when `envy export` can print nothing and exit.
pub fn unchanged() -> bool {
    let Some(pwd) = std::env::var_os(PWD) else {
        return false;
    };
    let pwd = Path::new(&pwd);
    if !pwd.is_absolute() {
        return false;
    }
    match std::env::var(__ENVY_STATE) {
        Err(std::env::VarError::NotPresent) => !pwd.ancestors().any(has_flake),
        Err(std::env::VarError::NotUnicode(_)) => false,
        Ok(text) => State::decode(&text).is_some_and(|state| state_holds(&state, pwd)),
    }
}

fn state_holds(state: &State, pwd: &Path) -> bool {
    if let Ok(pid) = std::env::var(__ENVY_PID)
        && pid.parse::<u32>().ok() != Some(state.pid)
    {
        return false;
    }
    if !pwd.starts_with(&state.root) {
        return false;
    }
    if pwd
        .ancestors()
        .take_while(|d| *d != state.root)
        .any(has_flake)
    {
        return false;
    }
    digest(&state.root, state.watch.entries(), &|name| {
        std::env::var(name).ok()
    }) == state.digest
}

fn has_flake(dir: &Path) -> bool {
    std::fs::metadata(dir.join(FLAKE_NIX)).is_ok_and(|m| m.is_file())
}
