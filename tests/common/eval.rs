//! Helpers for the evaluator's tests: running `envy eval` like `nix-instantiate`, and a
//! private real Nix 2.8 for oracle tests (its own store dir, state, config, HOME and caches).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
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
pub struct Nix {
    pub root: tempfile::TempDir,
}

impl Nix {
    pub fn new() -> Nix {
        let root = tempfile::Builder::new()
            .prefix("envy-eval-nix-")
            .tempdir()
            .unwrap();
        let r = root.path();
        for d in [
            "conf",
            "home",
            "cache",
            "config",
            "data",
            "state",
            "log",
            "nix/store",
        ] {
            fs_err::create_dir_all(r.join(d)).unwrap();
        }
        fs_err::write(r.join("registry.json"), r#"{"flakes":[],"version":2}"#).unwrap();
        fs_err::write(
            r.join("conf/nix.conf"),
            format!(
                "experimental-features = nix-command flakes\nsandbox = false\nsubstituters =\n\
                 build-users-group =\nflake-registry = {}\n",
                r.join("registry.json").display()
            ),
        )
        .unwrap();
        Nix { root }
    }

    /// The store directory of this Nix.
    pub fn store_dir(&self) -> PathBuf {
        self.root.path().join("nix/store")
    }

    /// `nix-instantiate` with this environment, computing paths for `store_dir`.
    pub fn instantiate(&self, store_dir: &Path) -> Command {
        let r = self.root.path();
        let mut c = Command::new("nix-instantiate");
        c.env_clear();
        if let Some(p) = std::env::var_os("PATH") {
            c.env("PATH", p);
        }
        c.env("NIX_CONF_DIR", r.join("conf"))
            .env("HOME", r.join("home"))
            .env("XDG_CACHE_HOME", r.join("cache"))
            .env("XDG_CONFIG_HOME", r.join("config"))
            .env("XDG_DATA_HOME", r.join("data"))
            .arg("--store")
            .arg(format!(
                "local?store={}&state={}&log={}",
                store_dir.display(),
                r.join("state").display(),
                r.join("log").display()
            ));
        c
    }
}
