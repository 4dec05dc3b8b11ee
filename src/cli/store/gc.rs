//! `envy store gc`.

use std::process::ExitCode;

use anyhow::Result;
use envy_store::local::GcOptions;

use super::Opts;
use crate::util::humanize::size as human_size;

/// Delete store paths no gc root keeps alive, and print each one.
///
/// Roots: symlinks registered by envy (the environments of projects, `--out-link`s), paths
/// in use by running envy processes, and whatever they refer to. Leftovers of interrupted
/// work are removed too. `envy gc` runs this after freeing old environment generations.
#[derive(clap::Args)]
pub struct Gc {
    /// Only print what would be deleted.
    #[arg(long, short = 'n')]
    dry_run: bool,
}

impl Gc {
    pub fn run(self, opts: &Opts) -> Result<ExitCode> {
        let store = opts.open()?;
        let spinner = super::progress::spinner("collecting garbage");
        let report = store.collect_garbage(&GcOptions {
            dry_run: self.dry_run,
            ..GcOptions::default()
        })?;
        spinner.finish_and_clear();
        let sd = store.store_dir();
        for p in &report.deleted {
            println!("{}", sd.print(p));
        }
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        eprintln!(
            "{verb} {} store path{}, {} freed{}",
            report.deleted.len(),
            if report.deleted.len() == 1 { "" } else { "s" },
            human_size(report.bytes_freed),
            match report.leftovers.len() {
                0 => String::new(),
                n => format!(
                    " (and {n} leftover{} of interrupted work)",
                    if n == 1 { "" } else { "s" }
                ),
            }
        );
        Ok(ExitCode::SUCCESS)
    }
}
