//! `envy store hash`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use envy_store::{HashAlgo, HashFormat, nar};

/// Print the hash of a path's NAR serialisation: sha256 in nix32 by default, as
/// `nix-hash --type sha256 --base32 PATH` does.
#[derive(clap::Args)]
pub struct HashCmd {
    /// The file or directory to hash (in the store or not).
    path: PathBuf,
    /// The hash algorithm.
    #[arg(long = "type", value_name = "ALGO", default_value = "sha256", value_parser = parse_algo)]
    algo: HashAlgo,
    /// Print hexadecimal instead of nix32.
    #[arg(long, conflicts_with = "sri")]
    base16: bool,
    /// Print an SRI hash (`sha256-…`).
    #[arg(long)]
    sri: bool,
}

fn parse_algo(s: &str) -> Result<HashAlgo, String> {
    HashAlgo::parse(s).map_err(|e| e.to_string())
}

impl HashCmd {
    pub fn run(self) -> Result<ExitCode> {
        let (hash, _) = nar::nar_hash_path_with(&self.path, self.algo)
            .with_context(|| format!("cannot hash `{}`", self.path.display()))?;
        let format = if self.sri {
            HashFormat::Sri
        } else if self.base16 {
            HashFormat::Base16
        } else {
            HashFormat::Nix32
        };
        println!("{}", hash.to_string_as(format, false));
        Ok(ExitCode::SUCCESS)
    }
}
