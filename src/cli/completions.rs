//! `envy completions <shell>`.

use std::process::ExitCode;

use anyhow::Result;

/// Print shell completions for envy
///
/// Examples:
///   envy completions bash > ~/.local/share/bash-completion/completions/envy
///   envy completions zsh > ~/.zfunc/_envy        # with ~/.zfunc in $fpath
///   envy completions fish > ~/.config/fish/completions/envy.fish
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Completions {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

impl Completions {
    pub fn run(self) -> Result<ExitCode> {
        let mut cmd = super::command();
        clap_complete::generate(self.shell, &mut cmd, "envy", &mut std::io::stdout());
        Ok(ExitCode::SUCCESS)
    }
}
