//! The `envy` command line.

mod cli {
    pub mod shell;
}
mod env_vars;
mod pkgs;
mod toolchain;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Automatic Nix flake dev-shell environments on `cd`.
#[derive(Parser)]
#[command(name = "envy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Shell(cli::shell::ShellArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Shell(args) => args.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
