//! `envy export <shell>`: what the hook calls at every prompt.

use std::process::ExitCode;

use anyhow::Result;

use crate::shell::Shell;

/// Print the shell code that brings this shell up to date (what the hook runs)
///
/// Prints nothing when nothing changed: that decision takes a few `stat` calls. Otherwise it
/// loads, reloads or unloads the project environment for the current directory. Messages go
/// to standard error; standard output carries only shell code (or JSON for `json`).
#[derive(clap::Args)]
pub struct Export {
    /// The shell to write code for (`json`: an object of variables to set, null to unset).
    #[arg(value_enum)]
    shell: Shell,
}

impl Export {
    pub fn run(self) -> Result<ExitCode> {
        crate::hook::slow::export(self.shell)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `envy export <shell>` as the hook calls it, without parsing the command line again.
pub fn run_hook(shell: Shell) -> ExitCode {
    match crate::hook::slow::export(shell) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            super::report_error(&err);
            ExitCode::FAILURE
        }
    }
}
