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
///   elvish (~/.config/elvish/rc.elv)    eval (envy hook elvish | slurp)
///   xonsh (~/.xonshrc)                  execx($(envy hook xonsh))
///   nu    (once, read at every start)   envy hook nu | save -f ($nu.user-autoload-dirs | first | path join envy.nu)
///
/// bash runs the hook from PROMPT_COMMAND (string or array, existing entries kept), zsh
/// from precmd and chpwd, fish on every prompt and every change of $PWD, nushell from
/// pre_prompt, elvish from edit:before-readline and after-chdir, xonsh from on_pre_prompt
/// and on_chdir. The hook keeps `$?` (nushell: $env.LAST_EXIT_CODE), and sourcing it twice
/// is harmless. fish, nushell, elvish and xonsh get a devShell's variables, not its
/// shellHook or bash functions.
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
