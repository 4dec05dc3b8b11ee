//! `envy reload [DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::cache::ProjectCache;
use crate::trust::{self, Gate, TrustStore};

/// Rebuild the project's environment now, even if nothing it watches changed.
///
/// Use it when the environment depends on something envy cannot see (a file outside the
/// flake, a network input). Shows progress and Nix's full error on failure; on success the
/// shells in the project load the result at their next prompt.
#[derive(clap::Args)]
pub struct Reload {
    /// A directory in the project (default: the current directory).
    dir: Option<PathBuf>,
}

impl Reload {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let project = ctx.project(self.dir.as_deref())?;
        let selection = crate::project::settings::selection(&ctx.dirs, &project)?;
        let store = TrustStore::new(ctx.dirs.trust_dir());
        let pins = match trust::gate(&store, &project, &selection)? {
            Gate::Open(pins) => pins,
            closed => anyhow::bail!("{}", closed.message(false).unwrap_or_default()),
        };
        let cache = ProjectCache::new(&ctx.dirs, &project);
        let backend = crate::backend::from_env()?;
        let env = ctx.user_env();
        let resolved = ctx
            .environments(backend.as_ref(), &env)
            .resolve(&project, &selection, true, &pins)?;
        let resolved = resolved.map_err(|e| anyhow::anyhow!("{}", e.message))?;
        cache.touch_stamp(&ctx.dirs)?;
        eprintln!(
            "envy: rebuilt `{}`: generation {}",
            project.root().display(),
            resolved.number
        );
        Ok(ExitCode::SUCCESS)
    }
}
