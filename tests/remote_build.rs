//! `envy build` on Nix build machines: a real sshd on 127.0.0.1 whose forced command runs
//! real Nix 2.8's `nix-store --serve --write` on its own store (tests/common/sshd.rs).
//! With `-j 0` a 3-derivation chain builds remotely (the remote store has it, envy's store
//! gets it, `envy store verify` passes); an `aarch64-linux` derivation goes to the machine
//! declaring that system; a machine that is down is skipped with one warning; a remote
//! failure's log reaches the user.

mod common;

use common::build::{BuildEnv, assert_success};
use common::sshd::{BuildMachine, have_sshd};

const EXPR: &str = r#"
let
  sh = system: name: script: derivation {
    inherit name system; builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  };
in rec {
  a = sh "x86_64-linux" "remote-a" "echo a > $out";
  b = sh "x86_64-linux" "remote-b" "echo building b remotely; cat ${a} > $out; echo b >> $out";
  c = sh "x86_64-linux" "remote-c" "cat ${b} > $out; echo ${b} >> $out";
  arm = sh "aarch64-linux" "remote-arm" "echo arm; cat ${a} > $out";
  bad = sh "x86_64-linux" "remote-bad" "echo the remote says why; exit 7";
}
"#;

fn setup() -> Option<(BuildEnv, BuildMachine)> {
    if !common::have_tool("nix-store") || !have_sshd() {
        return None;
    }
    let env = BuildEnv::new();
    fs_err::write(env.path("work/default.nix"), EXPR).unwrap();
    let machine = BuildMachine::start(&env.path("machine"), &env.store_dir());
    Some((env, machine))
}

fn envy_build(
    env: &BuildEnv,
    machine: &BuildMachine,
    attr: &str,
    args: &[&str],
) -> std::process::Output {
    env.envy()
        .env("NIX_SSHOPTS", machine.sshopts())
        .args(["build", "--no-out-link", "default.nix", "-A", attr])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn chain_builds_on_the_machine_with_j0() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let out = envy_build(
        &env,
        &machine,
        "c",
        &["-j", "0", "--builders", "ssh://farm x86_64-linux - 2 1"],
    );
    assert_success(&out, "envy build -j 0 on the build machine");
    let c = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let sd = env.store_dir();
    assert!(machine.has(&sd, &c), "the remote store has {c}");
    let store = env.store();
    let info = store.path_info(&common::build::store_path(&c)).unwrap();
    let b = info.references.iter().next().expect("c refers to b");
    let b = env.store_dir().join(b.to_string());
    assert!(machine.has(&sd, &b.to_string_lossy()));
    let text = fs_err::read_to_string(&c).unwrap();
    assert_eq!(text, format!("a\nb\n{}\n", b.display()));
    // Nothing was built locally: each derivation ran on the machine.
    let commands = fs_err::read_to_string(machine.dir.join("commands")).unwrap();
    assert!(commands.contains("nix-store --serve --write"), "{commands}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    env.verify();

    // `-j 0` without build machines: nowhere to build, said clearly.
    fs_err::write(
        env.path("work/default.nix"),
        EXPR.replace("echo a > $out", "echo a2 > $out"),
    )
    .unwrap();
    let out = envy_build(&env, &machine, "a", &["-j", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("local builds are off"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn aarch64_goes_to_its_machine_and_a_down_machine_is_skipped() {
    let Some((env, machine)) = setup() else {
        return;
    };
    // `down` (closed port) is the fastest x86_64 machine: tried first, skipped with one
    // warning, and `a` builds locally; `arm` can only go to `farm-arm`.
    let out = envy_build(
        &env,
        &machine,
        "arm",
        &[
            "-j",
            "1",
            "--builders",
            "ssh://down x86_64-linux - 1 2; ssh://farm-arm aarch64-linux",
        ],
    );
    assert_success(&out, "envy build of an aarch64-linux derivation");
    let arm = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ssh://down"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning line for the down machine: {stderr}"
    );
    assert!(warnings[0].contains("skipping it"), "{stderr}");
    let sd = env.store_dir();
    assert!(
        machine.has(&sd, &arm),
        "built on the machine declaring aarch64-linux"
    );
    assert_eq!(fs_err::read_to_string(&arm).unwrap(), "a\n");
    env.verify();

    // Without a machine declaring it, an aarch64-linux derivation cannot build here.
    fs_err::write(
        env.path("work/default.nix"),
        EXPR.replace("echo arm;", "echo arm2;"),
    )
    .unwrap();
    let out = envy_build(
        &env,
        &machine,
        "arm",
        &["--builders", "ssh://farm x86_64-linux"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no build machine declares `aarch64-linux`"),
        "{stderr}"
    );
}

#[test]
fn a_remote_failure_shows_the_remote_log() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let out = envy_build(
        &env,
        &machine,
        "bad",
        &["-j", "0", "--builders", "ssh://farm"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed on `ssh://farm`"), "{stderr}");
    assert!(stderr.contains("the remote says why"), "{stderr}");
}
