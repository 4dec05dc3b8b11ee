//! `envy gc`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::Context;
use crate::cache::gc::{self, Policy};
use crate::util::humanize;

/// Free old environment generations, their GC roots, and orphaned cache files
///
/// Keeps, per project: the current generation, the N newest (`--keep`, default 2: the
/// current and one previous), and with `--older-than` every generation younger than that.
/// Never frees what a live shell uses. Projects whose directory is gone lose everything.
/// Dropping a Nix GC root lets `nix-collect-garbage` reclaim the store paths.
///
/// Examples:
///   envy gc --dry-run              # list what would go, with sizes
///   envy gc                        # current + one previous per project
///   envy gc --keep 5 --older-than 30d
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Gc {
    /// Only list what would be freed.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Generations to keep per project, newest first (the current one always stays).
    #[arg(long, value_name = "N", default_value_t = 2)]
    keep: usize,
    /// Only free generations older than this (`30d`, `12h`, `2w`).
    #[arg(long, value_name = "DURATION", value_parser = gc::parse_duration)]
    older_than: Option<Duration>,
}

impl Gc {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let policy = Policy {
            keep: self.keep,
            older_than: self.older_than,
        };
        let report = gc::run(&ctx.dirs, &policy, self.dry_run)?;
        let verb = if self.dry_run { "would free" } else { "freed" };
        for item in &report.freed {
            let roots = match item.roots.len() {
                0 => String::new(),
                n => format!(", {n} GC root{}", if n == 1 { "" } else { "s" }),
            };
            println!(
                "{verb} {} ({}{roots})",
                item.what,
                humanize::size(item.size)
            );
        }
        println!(
            "{verb} {} in {} item{}{}",
            humanize::size(report.bytes()),
            report.freed.len(),
            if report.freed.len() == 1 { "" } else { "s" },
            match report.roots() {
                0 => String::new(),
                n => format!(
                    "; {n} GC root{} {}",
                    if n == 1 { "" } else { "s" },
                    if self.dry_run {
                        "would be dropped"
                    } else {
                        "dropped (`nix-collect-garbage` reclaims their store paths)"
                    }
                ),
            }
        );
        Ok(ExitCode::SUCCESS)
    }
}
