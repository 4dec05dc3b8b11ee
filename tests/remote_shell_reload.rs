//! `--builders` and `-j` on `envy shell` and `envy reload`: they reach the builds those
//! commands make with envy's own engine. A flake package (for `envy shell .#bad`) and a dev
//! shell's input (for `envy reload`) go to the build machine with `-j 0` (a real sshd running
//! Nix 2.8's `nix-store --serve`, tests/common/sshd.rs) and fail there with the machine's
//! log; `-j 0` without machines says so; a bad `--builders` fails before anything builds.
//! Kept cheap: nothing here builds the shell's toolchain.

mod common;

use common::build::BuildEnv;
use common::sshd::{BuildMachine, world_with_machine};

fn flake(system: &str) -> String {
    format!(
        r#"{{
  outputs = {{ self }}: let
    bad = derivation {{
      name = "shell-bad"; system = "{system}"; builder = "/bin/sh";
      args = [ "-c" "echo the machine ran it; exit 3" ];
    }};
  in {{
    packages.{system}.bad = bad;
    devShells.{system}.default = derivation {{
      name = "dev"; system = "{system}"; builder = "/bin/bash";
      outputs = [ "out" ]; PATH = "/usr/bin:/bin"; inherit bad;
    }};
  }};
}}
"#
    )
}

fn setup() -> Option<(BuildEnv, BuildMachine)> {
    let (env, machine) = world_with_machine("nix-store")?;
    let system = format!("{}-linux", std::env::consts::ARCH);
    fs_err::write(env.path("work/flake.nix"), flake(&system)).unwrap();
    Some((env, machine))
}

fn envy(env: &BuildEnv, machine: &BuildMachine, args: &[&str]) -> (bool, String) {
    let out = machine
        .envy(env)
        .env("ENVY_BACKEND", "embedded")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn shell_builds_on_the_machine_given_by_its_flags() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let (ok, stderr) = envy(
        &env,
        &machine,
        &[
            "shell",
            "--builders",
            "ssh://farm",
            "-j",
            "0",
            ".#bad",
            "--",
            "true",
        ],
    );
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("failed on `ssh://farm`"), "{stderr}");
    assert!(stderr.contains("the machine ran it"), "{stderr}");

    let (ok, stderr) = envy(&env, &machine, &["shell", "-j", "0", ".#bad", "--", "true"]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("local builds are off"), "{stderr}");

    let (ok, stderr) = envy(
        &env,
        &machine,
        &[
            "shell",
            "--builders",
            "ssh://farm x86_64-linux - many",
            "--",
            "true",
        ],
    );
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("max-jobs `many`"), "{stderr}");
}

#[test]
fn reload_builds_on_the_machine_given_by_its_flags() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let (ok, stderr) = envy(&env, &machine, &["allow"]);
    assert!(ok, "{stderr}");
    let (ok, stderr) = envy(
        &env,
        &machine,
        &["reload", "--builders", "ssh://farm", "-j", "0"],
    );
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("failed on `ssh://farm`"), "{stderr}");
    assert!(stderr.contains("the machine ran it"), "{stderr}");
}
