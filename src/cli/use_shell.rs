//! `envy use [FLAKE_REF#]NAME`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::backend::ShellSelection;
use crate::cache::ProjectCache;
use crate::project::settings;

/// Pick the devShell this project loads (instead of `default`)
///
/// NAME selects `devShells.<system>.NAME` of the project's own flake; FLAKE_REF#NAME takes it
/// from another flake (a path, `github:owner/repo`, …). `envy use default` goes back to the
/// project's default. The choice is kept in envy's data directory, not in your repository.
/// With no argument, prints the current choice.
///
/// Examples:
///   envy use ci                  # devShells.x86_64-linux.ci of ./flake.nix
///   envy use ../tools#python     # a devShell of a sibling flake
///   envy use default
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Use {
    /// `NAME` or `FLAKE_REF#NAME`.
    #[arg(value_name = "[FLAKE_REF#]NAME")]
    shell: Option<String>,
    /// A directory in the project (default: the current directory).
    #[arg(long, short = 'C')]
    dir: Option<PathBuf>,
}

impl Use {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let project = ctx.project(self.dir.as_deref())?;
        let Some(arg) = self.shell else {
            println!("{}", settings::selection(&ctx.dirs, &project)?.display());
            return Ok(ExitCode::SUCCESS);
        };
        let selection = if arg == "default" {
            ShellSelection::default_shell()
        } else {
            settings::parse_selection(&arg, &crate::project::current_dir()?)?
        };
        settings::set_selection(&ctx.dirs, &project, &selection)?;
        ProjectCache::new(&ctx.dirs, &project).touch_stamp(&ctx.dirs)?;
        eprintln!(
            "envy: `{}` uses `{}`; shells in it load it at their next prompt",
            project.root().display(),
            selection.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
