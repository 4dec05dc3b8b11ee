//! `envy log`: print the build log of a derivation or of the derivation that built a path.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use envy_store::StorePath;

use super::build::BuildContext;

/// Print the build log of a store path, or a project's last background build
///
/// With a store path: the log of that `.drv`, or of the derivation that built that output.
/// With `--project [DIR]`: the whole output of the project's last background build (what the
/// prompt summarised in one error line).
///
/// Examples:
///   envy log ./result
///   envy log --project           # the project you are in
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct LogArgs {
    /// A store path (`.drv` or output), or a `result` symlink to one.
    #[arg(required_unless_present = "project")]
    pub path: Option<PathBuf>,
    /// The last background build of the project in DIR (default: the current directory).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".", conflicts_with = "path")]
    pub project: Option<PathBuf>,
}

impl LogArgs {
    pub fn run(self) -> Result<()> {
        if let Some(dir) = &self.project {
            let dirs = crate::util::dirs::Dirs::from_env()?;
            let dir = crate::project::resolve_dir(Some(dir))?;
            let project = crate::project::Project::find_or_err(&dir)?;
            let cache = crate::cache::ProjectCache::new(&dirs, &project);
            let log = fs_err::read(cache.build_log_path()).with_context(|| {
                format!(
                    "no background build of `{}` yet\nhint: it has one when the prompt builds it (or `envy wait`)",
                    project.root().display()
                )
            })?;
            std::io::stdout().write_all(&log)?;
            return Ok(());
        }
        let path = self.path.expect("clap requires a path without --project");
        let BuildContext { store, config } = BuildContext::from_env()?;
        let dir = store.store_dir();
        let resolved = match fs_err::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => fs_err::read_link(&path)?,
            _ => path.clone(),
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
