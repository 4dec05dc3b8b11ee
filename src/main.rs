//! The `envy` command line.

use clap::Parser;

/// Automatic Nix flake dev-shell environments on `cd`.
#[derive(Parser)]
#[command(name = "envy", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
