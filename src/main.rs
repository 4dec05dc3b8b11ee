//! The `envy` command line.
//!
//! `main` first tries the hook's fast path (`envy export <shell>` with nothing changed),
//! which decides from `__ENVY_STATE`, `$PWD` and a few `stat` calls before anything else is
//! set up — no clap, no directory lookups. Everything else goes through `cli`.

mod alloc;
mod backend;
mod cache;
mod cli;
mod engine;
mod env;
mod hook;
mod project;
mod shell;
mod toolchain;
mod trust;
mod util;

use std::process::ExitCode;

// glibc's malloc on the hook's fast path, mimalloc for everything else (see `alloc.rs`).
#[global_allocator]
static GLOBAL: alloc::EnvyAlloc = alloc::EnvyAlloc;

fn main() -> ExitCode {
    if let Some(shell) = plain_export() {
        if hook::fast::unchanged() {
            return ExitCode::SUCCESS;
        }
        // The hook's slow path, straight away: building the whole command line (every
        // subcommand's arguments) would cost more than the rest of a cached re-entry. It
        // stays on glibc's allocator; a backend that evaluates in-process switches.
        return cli::export::run_hook(shell);
    }
    alloc::use_mimalloc();
    cli::main()
}

/// `envy export <shell>` and nothing else: the shell.
fn plain_export() -> Option<shell::Shell> {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next(), args.next()) {
        (Some(cmd), Some(shell), None) if cmd == "export" => shell::Shell::from_export_arg(&shell),
        _ => None,
    }
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
