//! `envy log`: print the build log of a derivation or of the derivation that built a path.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use envy_store::StorePath;

use super::build::BuildContext;

/// Print the build log of a store path: a `.drv`, or an output of one built by envy.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// A store path (`.drv` or output), or a `result` symlink to one.
    pub path: PathBuf,
}

impl LogArgs {
    pub fn run(self) -> Result<()> {
        let BuildContext { store, config } = BuildContext::from_env()?;
        let dir = store.store_dir();
        let resolved = match fs_err::symlink_metadata(&self.path) {
            Ok(meta) if meta.file_type().is_symlink() => fs_err::read_link(&self.path)?,
            _ => self.path.clone(),
        };
        let text = resolved.to_string_lossy();
        let path = if text.contains('/') {
            dir.parse(&text)
                .with_context(|| format!("`{text}` is not in envy's store `{dir}`"))?
        } else {
            StorePath::from_base_name(&text)
                .with_context(|| format!("`{text}` is not a store path"))?
        };
        let drv = if path.is_derivation() {
            path
        } else {
            match store.query_path_info(&path)?.and_then(|i| i.deriver) {
                Some(drv) => drv,
                None => bail!(
                    "`{}` was not built by envy, so it has no build log",
                    dir.print(&path)
                ),
            }
        };
        let log = config
            .logs
            .read(drv.base_name())
            .with_context(|| format!("no build log for `{}`", dir.print(&drv)))?;
        std::io::stdout().write_all(&log)?;
        Ok(())
    }
}
