//! `envy-hook`: what the prompt hook runs, installed beside `envy`.
//!
//! At an unchanged prompt the hook's whole answer is "nothing to do", decided from
//! `__ENVY_STATE`, `$PWD` and a few `stat` calls (`hook/fast.rs`). `envy` decides that before
//! anything else starts too, but it is a 15 MB program: starting it touches pages spread over
//! its text, a few dozen page faults more than a small program. This executable holds only the
//! fast path, so an unchanged prompt costs what an empty Rust program costs; for anything else
//! (something changed, or any other command line) it `exec`s the `envy` beside it with the same
//! arguments, so the shell sees exactly what `envy export` prints.
//!
//! It shares the fast path's source with `envy` (the modules below are included by path), so
//! the two can never disagree about what "unchanged" means.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

#[path = "../hook/fast.rs"]
mod fast;
#[allow(dead_code)]
#[path = "../project/names.rs"]
mod names;
#[allow(dead_code)]
#[path = "../hook/state.rs"]
mod state;
#[allow(dead_code)]
#[path = "../env/vars.rs"]
mod vars;

// The paths the included modules use inside `envy`.
mod env {
    pub(crate) use super::vars;
}
mod project {
    pub(crate) use super::names::FLAKE_NIX;
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if let [cmd, shell] = args.as_slice()
        && cmd == "export"
        && fast::EXPORT_SHELLS.iter().any(|s| shell == s)
        && fast::unchanged()
    {
        return ExitCode::SUCCESS;
    }
    // Something to do: `envy`, beside this executable, does it.
    let envy = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name("envy"),
        Err(err) => {
            eprintln!("envy-hook: cannot find its own path to run envy: {err}");
            return ExitCode::FAILURE;
        }
    };
    let err = Command::new(&envy).args(&args).exec();
    eprintln!(
        "envy-hook: cannot run {}: {err}\nhint: envy-hook runs the `envy` installed beside it; reinstall envy, or run `envy hook SHELL` again",
        envy.display()
    );
    ExitCode::FAILURE
}
