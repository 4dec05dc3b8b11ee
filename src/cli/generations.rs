//! `envy generations`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::Context;
use crate::cache::ProjectCache;
use crate::util::humanize;

/// List the project's environment generations: number, time built, hash, size.
///
/// Every rebuild that changes the environment adds a generation; the current one is marked
/// with `*`. `envy rollback` goes back to an earlier one, `envy gc` frees old ones.
#[derive(clap::Args)]
pub struct Generations {
    /// Print JSON (an array of objects).
    #[arg(long)]
    json: bool,
    /// A directory in the project (default: the current directory).
    #[arg(long, short = 'C')]
    dir: Option<PathBuf>,
}

impl Generations {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let project = ctx.project(self.dir.as_deref())?;
        let cache = ProjectCache::new(&ctx.dirs, &project);
        let current = cache.current()?.map(|p| p.generation);
        let generations = cache.generations()?;
        if self.json {
            let list: Vec<_> = generations
                .iter()
                .map(|info| {
                    let g = &info.generation;
                    json!({
                        "generation": g.number,
                        "current": Some(g.number) == current,
                        "created": g.created,
                        "hash": g.env_hash_hex(),
                        "size": info.size,
                        "backend": g.backend,
                        "devShell": g.selection.display(),
                        "roots": g.roots.iter().map(|r| r.path.display().to_string()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
            return Ok(ExitCode::SUCCESS);
        }
        if generations.is_empty() {
            eprintln!(
                "envy: `{}` has no generations yet",
                project.root().display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "  {:>4}  {:<23}  {:<12}  {:>9}  DEVSHELL",
            "GEN", "BUILT", "HASH", "SIZE"
        );
        for info in &generations {
            let g = &info.generation;
            let mark = if Some(g.number) == current { '*' } else { ' ' };
            println!(
                "{mark} {:>4}  {:<23}  {:<12}  {:>9}  {}",
                g.number,
                humanize::time(g.created),
                &g.env_hash_hex()[..12],
                humanize::size(info.size),
                g.selection.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
