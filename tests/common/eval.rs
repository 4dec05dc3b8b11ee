//! Helpers for the evaluator's tests: running `envy eval` like `nix-instantiate`, and a
//! private real Nix 2.8 for oracle tests (its own store dir, state, config, HOME and caches).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use crate::common::envy_bin;

/// `envy eval` with a clean environment: only PATH, the given HOME and `extra` variables.
pub fn envy_eval(cwd: &Path, home: &Path, extra: &[(&str, &str)], args: &[String]) -> Command {
    let mut c = Command::new(envy_bin());
    c.current_dir(cwd).env_clear();
    if let Some(p) = std::env::var_os("PATH") {
        c.env("PATH", p);
    }
    c.env("HOME", home);
    for (k, v) in extra {
        c.env(k, v);
    }
    c.arg("eval").args(args);
    c
}

/// stdout then stderr of a finished process, as text.
pub fn combined(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// The last `error: …` line of Nix-style error output (what the conformance target compares).
pub fn final_error_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim_start)
        .find(|l| l.starts_with("error: "))
        .map(str::to_string)
}

/// A real Nix 2.8 with everything private under a temporary directory.
pub use crate::common::nix::PrivateNix as Nix;

impl Nix {
    /// `nix-instantiate` with only this Nix's environment, computing paths for `store_dir`.
    pub fn instantiate(&self, store_dir: &Path) -> Command {
        let mut c = Command::new("nix-instantiate");
        c.env_clear();
        if let Some(p) = std::env::var_os("PATH") {
            c.env("PATH", p);
        }
        self.set_env(&mut c)
            .arg("--store")
            .arg(self.store_url_for(store_dir));
        c
    }
}
