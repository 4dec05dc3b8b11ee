//! The `envy` command line.

mod cli {
    pub mod build;
    pub mod build_env_vars;
    pub mod log;
    pub mod shell;
}
mod env_vars;
mod pkgs;
mod toolchain;

use clap::{Parser, Subcommand};

/// Automatic Nix flake dev-shell environments on `cd`.
#[derive(Parser)]
#[command(name = "envy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    Build(cli::build::BuildArgs),
    Log(cli::log::LogArgs),
    Shell(cli::shell::ShellArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Build(args)) => args.run(),
        Some(Command::Log(args)) => args.run(),
        Some(Command::Shell(args)) => args.run(),
        None => Ok(()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
