//! `envy store dump`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};

/// Write the NAR serialisation of a path to standard output, as `nix-store --dump` does.
///
/// Works on any file, directory or symlink, in the store or not.
#[derive(clap::Args)]
pub struct Dump {
    /// The path to serialise.
    path: PathBuf,
}

impl Dump {
    pub fn run(self) -> Result<ExitCode> {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        match envy_store::nar::dump_path(&self.path, &mut out) {
            Err(envy_store::nar::NarError::Write(e))
                if e.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                return Ok(ExitCode::SUCCESS);
            }
            other => other.with_context(|| format!("cannot dump `{}`", self.path.display()))?,
        }
        super::stdout_ok(out.flush())?;
        Ok(ExitCode::SUCCESS)
    }
}
