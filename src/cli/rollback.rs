//! `envy rollback [--to N]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::Context;
use crate::backend;
use crate::cache::{KeyContext, Pointer, ProjectCache, cache_key};

/// Make the previous generation of the project's environment current
///
/// The shells in the project load it at their next prompt, and keep it until a file the
/// environment watches changes (then envy builds afresh). `envy generations` lists them.
///
/// Examples:
///   envy rollback           # one generation back
///   envy rollback --to 3    # to generation 3
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Rollback {
    /// The generation to make current (default: the one before the current).
    #[arg(long, value_name = "N")]
    to: Option<u64>,
    /// A directory in the project (default: the current directory).
    #[arg(long, short = 'C')]
    dir: Option<PathBuf>,
}

impl Rollback {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let project = ctx.project(self.dir.as_deref())?;
        let cache = ProjectCache::new(&ctx.dirs, &project);
        let _lock = cache.lock()?;
        let current = cache.current()?.with_context(|| {
            format!(
                "`{}` has no environment yet\nhint: `cd` into it (after `envy allow`) to build one",
                project.root().display()
            )
        })?;
        let numbers = cache.generation_numbers();
        let target = match self.to {
            Some(n) if numbers.contains(&n) => n,
            Some(n) => anyhow::bail!(
                "`{}` has no generation {n}\nhint: `envy generations` lists them",
                project.root().display()
            ),
            None => numbers
                .iter()
                .rev()
                .copied()
                .find(|&n| n < current.generation)
                .with_context(|| {
                    format!(
                        "generation {} is the oldest of `{}`: nothing to roll back to",
                        current.generation,
                        project.root().display()
                    )
                })?,
        };
        // Valid until the watched files change from how they are now.
        let backend = backend::from_env()?;
        let env = ctx.user_env();
        let selection = crate::project::settings::selection(&ctx.dirs, &project)?;
        let system = backend::current_system();
        let key_ctx = KeyContext {
            backend: backend.name(),
            system: &system,
            selection: &selection,
            env: &env,
            pinned: &[],
        };
        let key = cache_key(&current.watch, &key_ctx);
        cache.set_current(&Pointer {
            generation: target,
            key,
            watch: current.watch,
        })?;
        cache.touch_stamp(&ctx.dirs)?;
        eprintln!(
            "envy: `{}` is at generation {target} (was {}); shells in it load it at their next prompt",
            project.root().display(),
            current.generation
        );
        Ok(ExitCode::SUCCESS)
    }
}
