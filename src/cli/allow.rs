//! `envy allow [DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::cache::ProjectCache;
use crate::trust::TrustStore;

/// Trust a project's flake, so envy may evaluate it
///
/// The allow covers the project's path and the exact contents of its `flake.nix` and
/// `flake.lock`: after any change envy blocks the project again until you run `envy allow`
/// once more. Lifts an earlier `envy deny`. Shells in the project load it at their next
/// prompt.
///
/// envy writes `flake.lock` itself when the allowed `flake.nix` declares inputs the lock
/// lacks; the allow carries over to exactly that lock. A flake that `envy use` picks from a
/// directory on this machine is evaluated too, so it needs its own allow (`envy allow DIR`).
/// Files that `flake.nix` imports are not part of the allow (see the README's trust section).
///
/// Examples:
///   envy allow              # the project you are in
///   envy allow ~/src/app    # another one
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Allow {
    /// A directory in the project (default: the current directory).
    dir: Option<PathBuf>,
}

impl Allow {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let project = ctx.project(self.dir.as_deref())?;
        TrustStore::new(ctx.dirs.trust_dir()).allow(&project)?;
        ProjectCache::new(&ctx.dirs, &project).touch_stamp(&ctx.dirs)?;
        eprintln!("envy: allowed `{}`", project.flake_nix().display());
        Ok(ExitCode::SUCCESS)
    }
}
