//! `envy store verify`.

use std::process::ExitCode;

use anyhow::Result;

use super::Opts;

/// Check the store: every valid path is on disk and (unless `--no-contents`) still has the
/// NAR hash it was registered with. Exits 1 when something is wrong.
#[derive(clap::Args)]
pub struct Verify {
    /// Only check that valid paths exist, without rehashing their contents.
    #[arg(long)]
    no_contents: bool,
}

impl Verify {
    pub fn run(self, opts: &Opts) -> Result<ExitCode> {
        let store = opts.open()?;
        let sd = store.store_dir().clone();
        let bar = super::progress::bar(0, "verifying");
        let report = store.verify(!self.no_contents, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
        bar.finish_and_clear();
        for p in &report.missing {
            println!("missing: {}", sd.print(p));
        }
        for (p, expected, got) in &report.corrupt {
            println!(
                "modified: {} (registered {expected}, now {got})",
                sd.print(p)
            );
        }
        for name in &report.unregistered {
            println!("not registered (gc removes it): {sd}/{name}");
        }
        eprintln!(
            "checked {} path{}: {} missing, {} modified",
            report.checked,
            if report.checked == 1 { "" } else { "s" },
            report.missing.len(),
            report.corrupt.len()
        );
        Ok(if report.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
