//! The embedded path in real shells (bash, zsh, fish through tmux), with `nix` absent from
//! `PATH`: entering a flake whose devShell uses the package set's clang-musl stdenv gives a
//! `cc` that makes static binaries; editing a file the evaluation imported refreshes the
//! environment at the next prompt; touching a file it did not read causes no evaluation
//! (counted through `ENVY_EVAL_LOG`, not timed).
//!
//! The store is shared by the three shells (one musl build per run, made before the shells
//! start so that no prompt waits for it), under cargo's target tmp dir.

mod common;
#[path = "common/core.rs"]
mod corekit;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::flake::{PACKAGE_SET_FLAKE, PACKAGE_SET_SHELL, musl_mirror, path_without_nix};
use corekit::{Sandbox, Session, Sh, tick};

/// The shared store, state and `PATH`, with the devShell's inputs built.
struct Shared {
    dir: PathBuf,
    mirror: PathBuf,
}

impl Shared {
    fn bin(&self) -> PathBuf {
        path_without_nix(&self.dir)
    }

    /// Variables every envy run of these tests gets.
    fn vars(&self, eval_log: &Path) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), self.bin().display().to_string()),
            (
                "ENVY_STORE_DIR".into(),
                self.dir.join("store").display().to_string(),
            ),
            (
                "ENVY_STATE_DIR".into(),
                self.dir.join("state").display().to_string(),
            ),
            (
                "ENVY_HASHED_MIRRORS".into(),
                self.mirror.display().to_string(),
            ),
            ("ENVY_BACKEND".into(), String::new()),
            ("ENVY_EVAL_LOG".into(), eval_log.display().to_string()),
            // The host tools are found through that `PATH`, so builds must see its links.
            (
                "ENVY_SANDBOX_PATHS".into(),
                format!("/bin /usr /lib /lib64 {}", self.bin().display()),
            ),
        ]
    }
}

fn shared() -> Option<&'static Shared> {
    static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let mirror = musl_mirror()?;
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flake-shells");
            fs_err::create_dir_all(&dir).unwrap();
            let shared = Shared { dir, mirror };
            // Build the devShell's inputs once, outside any prompt.
            let sb = Sandbox::new();
            let project = sb.project("warm", PACKAGE_SET_FLAKE);
            fs_err::write(project.join("shell.nix"), PACKAGE_SET_SHELL).unwrap();
            fs_err::write(project.join("value.nix"), "\"warm\"\n").unwrap();
            let mut cmd = sb.envy(&project, &["print-dev-env", "--json"]);
            cmd.envs(shared.vars(&sb.root().join("eval.log")));
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "building the clang-musl devShell failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(shared)
        })
        .as_ref()
}

fn rc(shell: Sh, vars: &[(String, String)]) -> String {
    vars.iter()
        .map(|(k, v)| match shell {
            Sh::Fish if k == "PATH" => format!("set -gx PATH {v}"),
            Sh::Fish => format!("set -gx {k} '{v}'"),
            _ => format!("export {k}='{v}'"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn evaluations(log: &Path) -> usize {
    fs_err::read_to_string(log)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn embedded_shell(sh: Sh) {
    if !(common::have_tool("tmux") && common::have_tool(sh.name()) && common::have_tool("clang")) {
        return;
    }
    let Some(shared) = shared() else { return };
    let sb = Sandbox::new();
    let log = sb.root().join("eval.log");
    let project = sb.project("proj", PACKAGE_SET_FLAKE);
    fs_err::write(project.join("shell.nix"), PACKAGE_SET_SHELL).unwrap();
    fs_err::write(project.join("value.nix"), "\"one\"\n").unwrap();
    fs_err::write(project.join("README"), "read by nobody\n").unwrap();
    fs_err::write(
        project.join("hello.c"),
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
    )
    .unwrap();
    sb.envy_ok(&project, &["allow"]);
    let mut s = Session::start_with(&sb, sh, &sb.work, &rc(sh, &shared.vars(&log)), 1);
    assert_eq!(s.output("command -v nix").trim(), "", "nix is not on PATH");

    s.cd(&project);
    let env = s.env();
    assert_eq!(
        env.get("FOO").map(String::as_str),
        Some("one"),
        "{}",
        s.screen()
    );
    assert_eq!(evaluations(&log), 1, "{}", s.screen());
    assert!(
        project.join("flake.lock").is_file(),
        "the hook wrote the lock file"
    );
    let out = s.output("sh -c 'cc hello.c -o hello && file hello && ./hello'");
    assert!(out.contains("statically linked"), "{out}");
    assert!(out.contains("hello"), "{out}");

    // Touching a file the evaluation did not read: no evaluation.
    tick();
    fs_err::write(project.join("README"), "touched\n").unwrap();
    s.prompt();
    s.prompt();
    assert_eq!(evaluations(&log), 1, "README is not watched");

    // Editing an imported file: the next prompt has the new environment.
    tick();
    fs_err::write(project.join("value.nix"), "\"two\"\n").unwrap();
    s.prompt();
    let env = s.env();
    assert_eq!(
        env.get("FOO").map(String::as_str),
        Some("two"),
        "{}",
        s.screen()
    );
    assert_eq!(evaluations(&log), 2);
}

#[test]
fn bash_embedded() {
    embedded_shell(Sh::Bash);
}

#[test]
fn zsh_embedded() {
    embedded_shell(Sh::Zsh);
}

#[test]
fn fish_embedded() {
    embedded_shell(Sh::Fish);
}
