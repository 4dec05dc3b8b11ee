//! `envy hook <shell>`: print the hook script to add to a shell's rc file.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::shell::HookShell;

/// Print the shell hook that runs `envy export` at every prompt
///
/// Add one line to your shell's start-up file:
///
///   bash  (~/.bashrc)                   eval "$(envy hook bash)"
///   zsh   (~/.zshrc)                    eval "$(envy hook zsh)"
///   fish  (~/.config/fish/config.fish)  envy hook fish | source
///
/// bash runs the hook from PROMPT_COMMAND (string or array, existing entries kept), zsh
/// from precmd and chpwd, fish on every prompt and every change of $PWD. The hook keeps
/// `$?`, and sourcing it twice is harmless.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Hook {
    /// The shell to hook into.
    #[arg(value_enum)]
    shell: HookShell,
}

impl Hook {
    pub fn run(self) -> Result<ExitCode> {
        let exe = std::env::current_exe().context("cannot find the path of the envy executable")?;
        print!("{}", self.shell.hook(&exe));
        Ok(ExitCode::SUCCESS)
    }
}
