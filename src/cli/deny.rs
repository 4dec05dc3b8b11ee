//! `envy deny [DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::cache::ProjectCache;
use crate::trust::TrustStore;

/// Refuse a project: envy never evaluates it and stops asking
///
/// Drops every allow the project had. Shells in the project unload its environment at their
/// next prompt and say nothing more about it until you run `envy allow`.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Deny {
    /// A directory in the project (default: the current directory).
    dir: Option<PathBuf>,
}

impl Deny {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let project = ctx.project(self.dir.as_deref())?;
        TrustStore::new(ctx.dirs.trust_dir()).deny(&project)?;
        ProjectCache::new(&ctx.dirs, &project).touch_stamp(&ctx.dirs)?;
        eprintln!("envy: denied `{}`", project.flake_nix().display());
        Ok(ExitCode::SUCCESS)
    }
}
