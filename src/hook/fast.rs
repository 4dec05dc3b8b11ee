//! The fast path: decide, before clap or anything else starts, whether `envy export` has
//! nothing to do. Compiled into `envy` and into the small `envy-hook` executable the prompt
//! runs (`src/bin/envy-hook.rs`, which includes this file, `state.rs`, `env/vars.rs` and
//! `project/names.rs` by path: keep their dependencies to each other and `std`). Budget: a few `getenv` and `stat` calls; no file reads (except a long watch
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

/// The shells `envy export` serves, as named on its command line (`envy-hook` checks its
/// arguments against it; `envy` parses them into `Shell`, and a test keeps the two in step).
#[cfg_attr(not(test), allow(dead_code))]
pub const EXPORT_SHELLS: [&str; 7] = ["bash", "zsh", "fish", "nu", "elvish", "xonsh", "json"];

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
