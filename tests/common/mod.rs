//! Helpers shared by the integration tests in `tests/`. Each area keeps its own helpers in a
//! sibling module (`tests/common/<area>.rs`); only what every area needs lives here.
#![allow(dead_code)]

pub mod build;
pub mod daemon;
pub mod flake;
pub mod http_cache;
pub mod nix;
pub mod remote;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The envy binary built for this test run.
pub fn envy_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_envy"))
}

/// The envy binary in `dir` with only the environment `env` (and `PWD`).
pub fn envy_in<K, V>(dir: &Path, args: &[&str], env: impl IntoIterator<Item = (K, V)>) -> Command
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(envy_bin());
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .env("PWD", dir);
    cmd
}

/// Make `tmux` (a command running tmux) start a detached session `session` on the private
/// server `socket`, with no user configuration and a 200x50 window; the caller appends the
/// session's options and command.
pub fn tmux_new_session<'c>(tmux: &'c mut Command, socket: &str, session: &str) -> &'c mut Command {
    tmux.args([
        "-L",
        socket,
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        session,
    ])
    .args(["-x", "200", "-y", "50"])
}

/// Fail with the command's output unless it succeeded; `what` names it.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `../shared` next to the project (conformance data, bench data), or `ENVY_TEST_SHARED`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("ENVY_TEST_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    }
}

/// `rel` under [`shared_dir`] when it is there. When it is not, a test that needs it skips: it
/// prints `SKIPPED` with the reason on stderr and the caller returns early. Under
/// `ENVY_TEST_REQUIRE_SHARED` (scripts/test sets it when `../shared` exists) a missing file
/// fails the test instead, so a run that has the data cannot skip by accident.
#[must_use]
pub fn shared_data(rel: &str, needed_for: &str) -> Option<PathBuf> {
    let path = shared_dir().join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("ENVY_TEST_REQUIRE_SHARED").is_some() {
        panic!(
            "{} is missing ({needed_for}); ENVY_TEST_REQUIRE_SHARED is set",
            path.display()
        );
    }
    let why = format!(
        "SKIPPED: {needed_for}: no {} (../shared is not next to this clone; \
         set ENVY_TEST_SHARED to where it is)\n",
        path.display()
    );
    std::io::Write::write_all(&mut std::io::stderr(), why.as_bytes()).unwrap();
    None
}

/// Whether a real tool the test needs is on PATH (and, for Nix's tools, can work here: see
/// [`nix::chroot_escape`]). When `ENVY_TEST_REQUIRE_TOOLS` is set (the test command and CI set
/// it) a missing tool fails the test; otherwise the test prints why it skips and the caller
/// returns early.
#[must_use]
pub fn have_tool(name: &str) -> bool {
    let broken = if which(name).is_none() {
        format!("`{name}` is not installed (scripts/test installs it)")
    } else if let Some(why) = name.starts_with("nix").then(nix::chroot_escape).flatten() {
        format!("`{name}` cannot work here: {why}")
    } else {
        return true;
    };
    if std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_some() {
        panic!("{broken}; this test requires it (ENVY_TEST_REQUIRE_TOOLS is set)");
    }
    eprintln!("skipping: {broken}");
    false
}

/// Look a program up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
