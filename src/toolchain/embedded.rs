//! Realising an `envy shell` environment with envy's own engine (`crate::engine`): evaluate
//! the materialised package set's `shell.nix` with envy-eval, build what it needs with
//! envy-build (musl's source comes from the hashed mirrors, `ENVY_HASHED_MIRRORS`), capture
//! the environment, and keep it alive with a gc root in the store's roots directory, so
//! `envy store gc` and `envy gc` leave cached shells alone.

use std::path::{Path, PathBuf};

use crate::engine::{Arg, Engine, EngineError, EvalRequest};
use crate::env::record::EnvRecord;

use super::shell_cache::ShellRequest;

/// A realised shell environment.
pub struct Realised {
    /// The captured environment, sanitized (`EnvRecord::sanitize`).
    pub env: EnvRecord,
    /// The `-env` store path the gc root points at (on disk).
    pub anchor: PathBuf,
    /// Evaluation traces and warnings, rendered.
    pub diagnostics: Vec<String>,
}

/// The gc root of the cached shell with cache key `key`: `<state>/roots/<name>`.
pub fn root_name(key: &str) -> String {
    format!("envy-shell-{key}")
}

/// Evaluate and build the shell for `request` from the package set in `pkgs_dir`, and root
/// it as `root_name`.
pub fn realise(
    engine: &Engine,
    pkgs_dir: &Path,
    request: &ShellRequest,
    root_name: &str,
) -> Result<Realised, EngineError> {
    let eval = EvalRequest::call_file(
        &pkgs_dir.join("shell.nix"),
        &[
            ("target", Arg::Str(request.target.triple().to_owned())),
            ("packages", Arg::StrList(request.packages.clone())),
        ],
        &[],
    );
    let drv = engine.instantiate(eval)?;
    let mut env = engine.capture_env(&drv.drv_path)?;
    // Sanitized before it is recorded, so the `-env` path depends on the environment only,
    // not on when or where it was captured (bash's `EPOCHSECONDS`, the build's `TMPDIR`):
    // every `envy shell` of the same request shares one root and one anchor.
    env.sanitize();
    let anchor = engine.keep_env(&drv.drv_path, &env)?;
    engine.store().add_direct_root(root_name, &anchor)?;
    Ok(Realised {
        env,
        anchor: engine.store().real_path(&anchor),
        diagnostics: drv.diagnostics,
    })
}
