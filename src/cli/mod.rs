//! The command line: one file per subcommand, each an `Args` struct whose doc comment is its
//! help and a `run` method. `main.rs` has already tried the hook's fast path before any of
//! this is built.

mod allow;
pub(crate) mod build;
mod completions;
mod deny;
mod eval;
pub mod export;
pub mod flake;
mod gc;
mod generations;
mod hook;
mod init;
mod log;
mod print_dev_env;
mod reload;
mod rollback;
mod shell;
mod status;
mod store;
mod use_shell;
mod wait;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Automatic Nix flake dev-shell environments on `cd`.
///
/// Add the hook to your shell once; from then on, entering a directory with a `flake.nix`
/// (or any directory below it) loads that flake's devShell environment, and leaving restores
/// your shell exactly as it was. A flake is evaluated only after you `envy allow` it.
#[derive(Parser)]
#[command(
    name = "envy",
    version,
    about,
    long_about,
    after_long_help = "\
Set-up (one line in your shell's rc file):
  bash  ~/.bashrc                     eval \"$(envy hook bash)\"
  zsh   ~/.zshrc                      eval \"$(envy hook zsh)\"
  fish  ~/.config/fish/config.fish    envy hook fish | source

Then:
  cd ~/src/project      # envy: `~/src/project/flake.nix` is not allowed: run `envy allow` …
  envy allow            # trust its flake.nix + flake.lock; it loads at the next prompt
  envy status           # what is loaded, from which generation, and what envy watches"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Hook(hook::Hook),
    Export(export::Export),
    Allow(allow::Allow),
    Deny(deny::Deny),
    Status(status::Status),
    Reload(reload::Reload),
    Use(use_shell::Use),
    PrintDevEnv(print_dev_env::PrintDevEnv),
    Generations(generations::Generations),
    Rollback(rollback::Rollback),
    Gc(gc::Gc),
    Completions(completions::Completions),
    Build(build::BuildArgs),
    Log(log::LogArgs),
    Flake(flake::FlakeArgs),
    Shell(shell::ShellArgs),
    Init(init::Init),
    Store(store::Store),
    Eval(eval::EvalArgs),
    Wait(wait::Wait),
    Exec(wait::Exec),
    /// The background build worker the hook starts (internal).
    #[command(name = "__build", hide = true)]
    Worker {
        dir: std::path::PathBuf,
    },
    /// The per-project file watcher the hook starts (internal).
    #[command(name = "__watch", hide = true)]
    Watcher {
        dir: std::path::PathBuf,
    },
}

/// Parse the command line, run it, and report errors envy-style.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hook(c) => c.run(),
        Command::Export(c) => c.run(),
        Command::Allow(c) => c.run(),
        Command::Deny(c) => c.run(),
        Command::Status(c) => c.run(),
        Command::Reload(c) => c.run(),
        Command::Use(c) => c.run(),
        Command::PrintDevEnv(c) => c.run(),
        Command::Generations(c) => c.run(),
        Command::Rollback(c) => c.run(),
        Command::Gc(c) => c.run(),
        Command::Completions(c) => c.run(),
        Command::Build(c) => c.run().map(|()| ExitCode::SUCCESS),
        Command::Log(c) => c.run().map(|()| ExitCode::SUCCESS),
        Command::Flake(c) => c.run().map(|()| ExitCode::SUCCESS),
        Command::Shell(c) => c.run().map(|()| ExitCode::SUCCESS),
        Command::Init(c) => c.run(),
        Command::Store(c) => c.run(),
        Command::Eval(c) => c.run(),
        Command::Wait(c) => c.run(),
        Command::Exec(c) => c.run(),
        Command::Worker { dir } => crate::hook::background::work(&dir).map(|()| ExitCode::SUCCESS),
        Command::Watcher { dir } => crate::hook::watch::run(&dir).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report_error(&err);
            ExitCode::FAILURE
        }
    }
}

/// `envy: error: …`, its causes, and any `hint:` lines (kept last).
pub fn report_error(err: &anyhow::Error) {
    let mut hints = Vec::new();
    let mut lines = Vec::new();
    for (i, cause) in err.chain().enumerate() {
        for line in cause.to_string().lines() {
            if line.starts_with("hint:") {
                hints.push(line.to_string());
            } else if i == 0 || !lines.contains(&line.to_string()) {
                lines.push(line.to_string());
            }
        }
    }
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_prefix("error: ").unwrap_or(line);
        if i == 0 && line == "error:" {
            // Nix's traced form already starts with `error:`; never `error: error:`.
            text.push_str("envy: error:\n");
            continue;
        }
        if i == 0 {
            text.push_str(&format!("envy: error: {line}\n"));
        } else {
            text.push_str(&format!("  {line}\n"));
        }
    }
    for hint in hints {
        text.push_str(&format!("{hint}\n"));
    }
    eprint!("{text}");
}

/// The clap command (for completions).
pub fn command() -> clap::Command {
    Cli::command()
}

/// The everyday context of a command: envy's directories and the project the user is in.
pub struct Context {
    pub dirs: crate::util::dirs::Dirs,
}

impl Context {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            dirs: crate::util::dirs::Dirs::from_env()?,
        })
    }

    /// The project at `dir` (or the current directory).
    pub fn project(
        &self,
        dir: Option<&std::path::Path>,
    ) -> anyhow::Result<crate::project::Project> {
        let dir = crate::project::resolve_dir(dir)?;
        crate::project::Project::find_or_err(&dir)
    }

    /// The user's environment without the project environment envy loaded in this shell
    /// (what an evaluation should see).
    pub fn user_env(&self) -> std::collections::BTreeMap<String, String> {
        let env = crate::hook::slow::process_env();
        let restore = crate::hook::slow::loaded_state().and_then(|(_, loaded)| {
            crate::cache::restore::Restore::load(&self.dirs, &loaded.restore).ok()
        });
        crate::env::diff::base_env(&env, restore.as_ref())
    }

    /// An environment resolver over `backend` and `env`.
    pub fn environments<'a>(
        &'a self,
        backend: &'a dyn crate::backend::Backend,
        env: &'a std::collections::BTreeMap<String, String>,
    ) -> crate::project::environment::Environments<'a> {
        crate::project::environment::Environments {
            dirs: &self.dirs,
            backend,
            env,
            system: crate::backend::current_system(),
            progress: crate::util::progress::Mode::from_env(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        super::command().debug_assert();
    }
}
