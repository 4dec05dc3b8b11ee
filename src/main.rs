//! The `envy` command line.

mod cli {
    pub mod store;
}

use std::process::ExitCode;

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
    Store(cli::store::Store),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Store(c)) => c.run(),
        None => Ok(ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let text = format!("{e:#}");
            let (hints, lines): (Vec<&str>, Vec<&str>) =
                text.lines().partition(|l| l.starts_with("hint:"));
            eprintln!("envy: error: {}", lines.join("\n  "));
            for hint in hints {
                eprintln!("{hint}");
            }
            ExitCode::FAILURE
        }
    }
}
