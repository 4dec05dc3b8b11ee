//! Running out of memory ends as Nix's does: `error: out of memory` and exit status 1, not
//! Rust's abort (SIGABRT, status 134). Memory is limited with RLIMIT_AS, as `ulimit -v` does.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

fn eval_limited(expr: &str, limit: u64) -> std::process::Output {
    let mut cmd = Command::new(common::envy_bin());
    cmd.args(["eval", "-E", expr]).env("RUST_BACKTRACE", "0");
    // SAFETY: only setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

// Regression: an allocation failure aborted (exit 134, "memory allocation of … failed").
#[test]
fn out_of_memory_is_nix_error_and_exit_1() {
    // Doubling a string until an allocation fails: 2^40 bytes cannot fit in 3 GiB (the
    // evaluator's thread reserves 1 GiB of that for its stack).
    let expr = r#"builtins.stringLength (builtins.foldl' (acc: x: acc + acc) "x" (builtins.genList (x: x) 40))"#;
    let out = eval_limited(expr, 3 << 30);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.trim_end().ends_with("error: out of memory"), "{err}");
}

// A list no memory can hold fails before allocating (Nix: "out of memory" too).
#[test]
fn impossible_list_size_is_out_of_memory() {
    let out = eval_limited(
        "builtins.length (builtins.genList (x: x) 4000000000)",
        3 << 30,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: out of memory"), "{err}");
}
