//! The `envy` command line.

mod alloc;
mod cli {
    pub mod eval;
}

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: alloc::MiMalloc = alloc::MiMalloc;

/// Automatic Nix flake dev-shell environments on `cd`.
#[derive(Parser)]
#[command(name = "envy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate a Nix expression like `nix-instantiate --eval`
    Eval(cli::eval::EvalArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Eval(args)) => args.run(),
        None => Ok(ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
