//! `envy store add`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use envy_store::FileIngestionMethod;

use super::Opts;

/// Add a file or directory to the store and print its store path.
///
/// The path is the one `nix-store --add` gives (content-addressed over the NAR, named after
/// the file); `--flat` adds a single file by its contents' hash, as
/// `nix-store --add-fixed sha256` does.
#[derive(clap::Args)]
pub struct Add {
    /// What to add.
    path: PathBuf,
    /// The store path's name (default: the file name).
    #[arg(long)]
    name: Option<String>,
    /// Hash the file's contents instead of its NAR (regular files only).
    #[arg(long)]
    flat: bool,
}

impl Add {
    pub fn run(self, opts: &Opts) -> Result<ExitCode> {
        let store = opts.open()?;
        let abs = std::path::absolute(&self.path)
            .with_context(|| format!("bad path `{}`", self.path.display()))?;
        let name = match &self.name {
            Some(n) => n.clone(),
            None => abs
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| {
                    format!(
                        "`{}` has no file name\nhint: pass --name",
                        self.path.display()
                    )
                })?,
        };
        let method = if self.flat {
            FileIngestionMethod::Flat
        } else {
            FileIngestionMethod::Recursive
        };
        let spinner = super::progress::spinner(&format!("adding {}", self.path.display()));
        let info = store
            .add_path(&abs, &name, method, None)
            .with_context(|| format!("cannot add `{}` to the store", self.path.display()))?;
        spinner.finish_and_clear();
        println!("{}", store.store_dir().print(&info.path));
        Ok(ExitCode::SUCCESS)
    }
}
