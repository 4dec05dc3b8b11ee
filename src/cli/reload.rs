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

    /// Build machines for what the environment needs built (envy's own backend), in Nix's machine syntax (as `envy build
    /// --builders`; default: `ENVY_BUILDERS`, else `builders` in config.toml; `""` disables
    /// them)
    #[arg(long = "builders", value_name = "MACHINES")]
    builders: Option<String>,

    /// How many derivations to build at once on this machine (default 1); 0 builds only on
    /// the build machines
    #[arg(short = 'j', long = "max-jobs", value_name = "N")]
    jobs: Option<usize>,
}

impl Reload {
    pub fn run(self) -> Result<ExitCode> {
        crate::engine::context::override_builds_from_flags(self.builders.clone(), self.jobs)?;
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
