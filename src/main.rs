//! The `envy` command line.
//!
//! `main` first tries the hook's fast path (`envy export <shell>` with nothing changed),
//! which decides from `__ENVY_STATE`, `$PWD` and a few `stat` calls before anything else is
//! set up — no clap, no directory lookups. Everything else goes through `cli`.

mod alloc;
mod backend;
mod cache;
mod cli;
mod dirs;
mod engine;
mod env_diff;
mod env_record;
mod env_vars;
mod environment;
mod fsutil;
mod gc;
mod hook;
mod humanize;
mod pkgs;
mod progress;
mod project;
mod settings;
mod shell;
mod toolchain;
mod trust;

use std::process::ExitCode;

// The evaluator allocates many small, short-lived objects; mimalloc serves them faster than
// glibc's allocator (about 10% of evaluation time).
#[global_allocator]
static GLOBAL: alloc::MiMalloc = alloc::MiMalloc;

fn main() -> ExitCode {
    if is_plain_export() && hook::fast::unchanged() {
        return ExitCode::SUCCESS;
    }
    cli::main()
}

/// `envy export <shell>` and nothing else.
fn is_plain_export() -> bool {
    let mut args = std::env::args_os().skip(1);
    matches!(
        (args.next(), args.next(), args.next()),
        (Some(cmd), Some(shell), None) if cmd == "export" && hook::fast::is_export_target(&shell)
    )
}

#[cfg(test)]
mod tests_support {
    /// Whether a test needing `tool` must skip (it is missing and tools are not required).
    pub fn skip_without(tool: &str) -> bool {
        if which::which(tool).is_ok() {
            return false;
        }
        if std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_some() {
            panic!("`{tool}` is required for this test (ENVY_TEST_REQUIRE_TOOLS is set)");
        }
        eprintln!("skipping: `{tool}` is not installed");
        true
    }
}
